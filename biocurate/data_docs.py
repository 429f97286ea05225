"""Data Docs that read without network: GX's pages load Bootstrap, jQuery, bootstrap-table and
Font Awesome from CDNs, and its index lists the validation runs only through bootstrap-table (so,
offline, the list is empty). After each build this rewrites every page of the site: the CDN tags
go, a local stylesheet (``static/styles/biocurate.css``, written here) comes in, and the index
gets a plain HTML table of every stored validation run (time, run, suite, result, a link to its
page), read from the validation results stored beside the site (``.results/``)."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

STYLESHEET = "static/styles/biocurate.css"
CSS = """\
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2328; line-height: 1.4; }
a { color: #0b5cad; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.show-scrollbars { max-height: 30rem; overflow: auto; }
.biocurate-runs td.failed { color: #b3261e; font-weight: 600; }
.biocurate-runs td.passed { color: #1a7f37; font-weight: 600; }
nav, .ge-index-page-site-name-title, .modal, .sticky-footer, #section-1-content-block-2-1-body-table { display: none; }
img { max-width: 20rem; }
pre, code { white-space: pre-wrap; word-break: break-word; }
"""
# Tags that load from the network: stylesheets, scripts and images with an http(s) address.
REMOTE_TAGS = re.compile(
    r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>"
    r"|<script\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>"
    r"|<img\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>",
    re.IGNORECASE,
)
RUNS_MARK = "<!-- biocurate validation runs -->"


def validation_runs(docs_dir: Path) -> list[dict]:
    """Every stored validation result with its page: newest first."""
    runs = []
    for result in sorted((docs_dir / ".results").glob("*/*/*/*.json")):
        suite, run_name, run_time = result.parts[-4:-1]
        page = docs_dir / "validations" / suite / run_name / run_time / f"{result.stem}.html"
        data = json.loads(result.read_text())
        stats = data.get("statistics", {})
        runs.append(
            {
                "run_time": run_time,
                "run_name": run_name,
                "suite": suite,
                "success": bool(data.get("success")),
                "passed": stats.get("successful_expectations"),
                "evaluated": stats.get("evaluated_expectations"),
                "page": page.relative_to(docs_dir).as_posix() if page.exists() else None,
            }
        )
    return sorted(runs, key=lambda r: (r["run_time"], r["suite"]), reverse=True)


def runs_table(runs: list[dict]) -> str:
    rows = []
    for r in runs:
        result = "passed" if r["success"] else "failed"
        counts = f" ({r['passed']} of {r['evaluated']} expectations)" if r["evaluated"] is not None else ""
        link = f'<a href="{html.escape(r["page"])}">open</a>' if r["page"] else "page not built"
        rows.append(
            f"<tr><td>{html.escape(r['run_time'])}</td><td>{html.escape(r['run_name'])}</td>"
            f'<td>{html.escape(r["suite"])}</td><td class="{result}">{result}{counts}</td><td>{link}</td></tr>'
        )
    return (
        f'{RUNS_MARK}<section class="biocurate-runs"><h2>Validation runs ({len(runs)})</h2>'
        "<table><thead><tr><th>run time (UTC)</th><th>run</th><th>suite</th><th>result</th><th>page</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>{RUNS_MARK}"
    )


def make_offline(docs_dir: Path) -> None:
    """Rewrite the site's pages to read without network; list every validation run in the index."""
    css = docs_dir / STYLESHEET
    css.parent.mkdir(parents=True, exist_ok=True)
    css.write_text(CSS)
    index = docs_dir / "index.html"
    for page in docs_dir.rglob("*.html"):
        original = page.read_text()
        text = REMOTE_TAGS.sub("", original)
        href = os.path.relpath(css, page.parent)
        if href not in text:
            text = text.replace("</head>", f'<link rel="stylesheet" href="{href}">\n</head>', 1)
        if page == index:
            text = re.sub(re.escape(RUNS_MARK) + ".*?" + re.escape(RUNS_MARK), "", text, flags=re.DOTALL)
            text = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + runs_table(validation_runs(docs_dir)), text, count=1)
        if text != original:  # pages of earlier runs are already done
            page.write_text(text)
