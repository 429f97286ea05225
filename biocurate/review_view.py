"""What a reviewer sees in Label Studio: the guide as the project's instructions, and each task's
question, call(s), observation and judge line, laid out for reading (annotations/label_config.xml
shows these fields)."""

from __future__ import annotations

import json

from biocurate.config import Config
from biocurate.errors import ReviewError


def instructions_html(config: Config) -> str:
    """The reviewer guide (config.review.instructions, Markdown) as the HTML Label Studio shows."""
    from markdown_it import MarkdownIt

    path = config.path(config.review.instructions)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReviewError(f"the reviewer guide {path} (review.instructions) cannot be read: {exc}") from exc
    html = MarkdownIt("commonmark").enable("table").render(text).strip()
    # Label Studio keeps class attributes and <style> but drops style attributes (bleach), and its
    # page styles reset lists, paragraph spacing and table borders: restore them for the guide.
    return f'<div class="bc-guide"><style>{INSTRUCTION_CSS}</style>\n{html}\n</div>'


INSTRUCTION_CSS = (
    ".bc-guide p { margin: 0 0 0.6em; } "
    ".bc-guide ul { list-style: disc; padding-left: 1.5em; margin: 0 0 0.6em; } "
    ".bc-guide ol { list-style: decimal; padding-left: 1.5em; margin: 0 0 0.6em; } "
    ".bc-guide h2 { margin: 0.8em 0 0.3em; } "
    ".bc-guide table { border-collapse: collapse; margin: 0 0 0.8em; } "
    ".bc-guide th, .bc-guide td { border: 1px solid #d9d9d9; padding: 3px 6px; text-align: left; vertical-align: top; }"
)


def _pretty(text: str | None) -> str:
    """JSON text indented (one key a line, so that it wraps); other text as it is."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        return text


def _calls_text(row: dict) -> str:
    """The call, pretty-printed; an item with several calls (a ``calls`` list) shows each, in order."""
    calls = row.get("calls")
    if isinstance(calls, str):
        calls = json.loads(calls)
    if not calls:
        calls = [{"name": row["function"], "arguments": row["arguments"]}]
    shown = []
    for n, call in enumerate(calls, 1):
        arguments = call.get("arguments", {})
        arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        text = json.dumps({"name": call.get("name") or call.get("function"), "arguments": arguments}, indent=2)
        shown.append(text if len(calls) == 1 else f"Call {n} of {len(calls)}:\n{text}")
    return "\n\n".join(shown)


JUDGE_REASON_CHARS = 160


def _judge_line(row: dict) -> str:
    """The judge's opinion in one short line (the reason cut at JUDGE_REASON_CHARS)."""
    if row["verdict"] is None:
        return "Automatic judge: no judgment yet."
    reason = " ".join((row["reason"] or "").split())
    if len(reason) > JUDGE_REASON_CHARS:
        reason = reason[: JUDGE_REASON_CHARS - 1].rstrip() + "…"
    score = f", score {row['score']:.2f}" if row["score"] is not None else ""
    return f"Automatic judge ({row['model']}): {row['verdict']}{score}" + (f". Reason: {reason}" if reason else ".")


def task_data(row: dict) -> dict:
    """The task's data fields from an ITEMS_SQL row (biocurate.review)."""
    return {
        "ext_id": row["query_id"],
        "query": row["text"],
        "call": _calls_text(row),
        "observation": _pretty(row["observation"]),
        "judge": _judge_line(row),
        "judge_verdict": row["verdict"],
        "tool": row["function"],
        "database": row["database"],
        "tool_group": row["tool_group"],
        "category": row["category"],
        "priority": row["priority"],
    }
