"""Evaluation reports: compare scored runs side by side, as tables and as Markdown with PNG plots.

Reads what ``biocurate.evaluate`` stored (``eval_runs``, ``eval_scores``); scores nothing itself.
A report shows the overall scores with their confidence intervals, a table per item kind (items,
exact match, partial credit as call F1, and the per-call metrics that apply) and a breakdown per
database, category, tool or function (``--by``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from biocurate.config import Config, mask_secrets
from biocurate.eval_items import EvalError
from biocurate.hashing import content_hash
from biocurate.metrics import KINDS, LEVELS, METRICS

METRIC_TITLES = {
    "exact_match": "exact match",
    "name_accuracy": "name accuracy",
    "arg_precision": "arg precision",
    "arg_recall": "arg recall",
    "schema_validity": "schema validity",
    "api_success": "API success",
    "similarity": "response similarity",
    "call_precision": "call precision",
    "call_recall": "call recall",
    "call_f1": "call F1 (partial)",
}
# The per-kind table: exact, partial (call F1) and the existing metrics that apply to sets.
KIND_COLUMNS = ("exact_match", "call_f1", "call_precision", "call_recall", "name_accuracy", "api_success", "similarity")
KIND_HEADER = [
    "kind",
    "run",
    "items",
    "exact",
    "partial (call F1)",
    "call precision",
    "call recall / steps",
    "name accuracy",
    "API success",
    "similarity",
]


def find_runs(con: duckdb.DuckDBPyConnection, refs: list[str]) -> list[dict]:
    """Runs by id or unique id prefix, in the order given."""
    out = []
    for ref in refs:
        rows = (
            con.sql("select * from eval_runs where starts_with(run_id, ?) order by run_id", params=[ref])
            .pl()
            .to_dicts()
        )
        exact = [r for r in rows if r["run_id"] == ref]
        if exact:
            rows = exact
        if not rows:
            known = [
                r for (r,) in con.execute("select run_id from eval_runs order by started_at desc limit 5").fetchall()
            ]
            raise EvalError(
                f"no evaluation run {ref!r} (latest: {', '.join(known) or 'none; run `biocurate eval run`'})"
            )
        if len(rows) > 1:
            raise EvalError(f"{ref!r} names {len(rows)} runs: {', '.join(r['run_id'] for r in rows[:5])}")
        if rows[0]["status"] != "completed":
            error = mask_secrets(rows[0]["error"] or "not finished")  # rows stored before errors were masked
            raise EvalError(f"run {rows[0]['run_id']} is {rows[0]['status']}: {error}")
        out.append(rows[0])
    return out


def _cell(score: dict | None) -> str:
    if score is None or score["value"] is None:
        return "-"
    if score["ci_low"] is None:
        return f"{score['value']:.3f}"
    return f"{score['value']:.3f} [{score['ci_low']:.3f}, {score['ci_high']:.3f}]"


@dataclass
class Report:
    runs: list[dict]
    overall: list[list[str]]  # metric, then one cell per run
    by_kind: list[list[str]]  # kind, run, items, then KIND_COLUMNS
    by_level: dict[str, list[list[str]]]  # level -> rows: key, metric..., one block per run
    path: Path
    plots: list[Path]


def _scores(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[tuple, dict]:
    rows = con.sql("select * from eval_scores where run_id in (select unnest(?))", params=[run_ids]).pl().to_dicts()
    return {(r["run_id"], r["level"], r["key"], r["metric"]): r for r in rows}


def report(
    con: duckdb.DuckDBPyConnection, refs: list[str], out_dir: Path, levels: tuple[str, ...] = ("database", "category")
) -> Report:
    """Compare runs: tables (overall, and per level: database, category, tool or function) and a
    Markdown report with plots."""
    unknown = [level for level in levels if level not in LEVELS or level == "overall"]
    if unknown:
        raise EvalError(f"unknown breakdown {unknown[0]!r}: choose from kind, database, category, tool, function")
    runs = find_runs(con, refs)
    ids = [r["run_id"] for r in runs]
    labels = [r["label"] for r in runs]
    for r in runs:  # two runs of one model: tell them apart
        if labels.count(r["label"]) > 1:
            r["label"] = f"{r['label']} ({r['run_id'][-6:]})"
    scores = _scores(con, ids)
    overall = [[METRIC_TITLES[m], *(_cell(scores.get((i, "overall", "all", m))) for i in ids)] for m in METRICS]
    kind_order = {k: n for n, k in enumerate(KINDS)}
    by_kind = [
        [
            key,
            r["label"],
            str((scores.get((r["run_id"], "kind", key, "exact_match")) or {}).get("n", 0)),
            *(_cell(scores.get((r["run_id"], "kind", key, m))) for m in KIND_COLUMNS),
        ]
        for key in sorted({k[2] for k in scores if k[1] == "kind"}, key=lambda k: (kind_order.get(k, 99), k))
        for r in runs
    ]
    by_level: dict[str, list[list[str]]] = {}
    shown = ("exact_match", "name_accuracy", "api_success", "similarity")
    for level in levels:
        keys = sorted({k[2] for k in scores if k[1] == level})
        by_level[level] = [
            [
                key,
                r["label"],
                *(_cell(scores.get((r["run_id"], level, key, m))) for m in shown),
                str((scores.get((r["run_id"], level, key, "exact_match")) or {}).get("n", 0)),
            ]
            for key in keys
            for r in runs
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    conf = json.loads(runs[0]["settings"]).get("confidence", 0.95)
    plots = _plots(runs, scores, out_dir, conf, levels)
    lines = ["# biocurate evaluation report", ""]
    lines += _md_table(
        ["run", "label", "model", "version", "split", "tools", "items", "similarity model", "transport"],
        [
            [
                r["run_id"],
                r["label"],
                r["model"],
                r["version_id"],
                r["split"],
                r["tools_mode"],
                str(r["items"]),
                r["embedder"],
                r["transport"],
            ]
            for r in runs
        ],
    )
    lines += [
        "",
        f"Scores with {conf:.0%} confidence intervals (Wilson for proportions, percentile bootstrap "
        "over items for precision, recall and similarity). Definitions: `biocurate/metrics.py` and "
        "`biocurate/evaluate.py`; every prediction is in `eval_predictions`.",
        "",
    ]
    lines += _md_table(["metric", *[r["label"] for r in runs]], overall)
    lines += ["", f"![overall scores]({plots[0].name})", ""]
    lines += ["## By item kind", ""]
    lines += [
        "single: the first call; parallel: the calls as a set (order free); multi_step: a conversation, the "
        "model seeing each observation from our executor, a step right only after right steps (call recall = "
        "the share of the chain done right); no_tool: right when there is no call (per-call metrics do not apply).",
        "",
    ]
    lines += _md_table(KIND_HEADER, by_kind)
    lines += [""]
    for level, rows in by_level.items():
        lines += [f"## By {level}", ""]
        lines += _md_table([level, "run", *(METRIC_TITLES[m] for m in shown), "items"], rows)
        lines += ["", f"![exact match by {level}](by_{level}.png)", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return Report(runs, overall, by_kind, by_level, path, plots)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
    ]


def _plots(runs: list[dict], scores: dict, out_dir: Path, confidence: float, levels: tuple[str, ...]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    def bars(ax, labels: list[str], level: str, metrics_or_keys: list[str], by_metric: bool):
        height = 0.8 / len(runs)
        for j, run in enumerate(runs):
            values, lows, highs = [], [], []
            for x in metrics_or_keys:
                key = (run["run_id"], "overall", "all", x) if by_metric else (run["run_id"], level, x, "exact_match")
                s = scores.get(key) or {}
                v = s.get("value") or 0.0
                values.append(v)
                lows.append(max(0.0, v - (s["ci_low"] if s.get("ci_low") is not None else v)))
                highs.append(max(0.0, (s["ci_high"] if s.get("ci_high") is not None else v) - v))
            ys = [i + j * height for i in range(len(metrics_or_keys))]
            ax.barh(ys, values, height=height, xerr=[lows, highs], capsize=2, label=run["label"])
        ax.set_yticks([i + 0.4 - height / 2 for i in range(len(labels))], labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)

    written = []
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(METRICS) * max(1, len(runs) / 2) + 1.2))
    bars(ax, [METRIC_TITLES[m] for m in METRICS], "overall", list(METRICS), True)
    ax.set_title(f"overall scores ({confidence:.0%} confidence intervals)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8)
    fig.tight_layout()
    written.append(out_dir / "overall.png")
    fig.savefig(written[-1], dpi=100, metadata={"Software": None})
    plt.close(fig)
    for level in levels:
        keys = sorted({k[2] for k in scores if k[1] == level})
        fig, ax = plt.subplots(figsize=(7, 0.45 * max(1, len(keys)) * max(1, len(runs) / 2) + 1.2))
        if keys:
            bars(ax, keys, level, keys, False)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8)
        ax.set_title(f"exact match by {level} ({confidence:.0%} confidence intervals)")
        fig.tight_layout()
        written.append(out_dir / f"by_{level}.png")
        fig.savefig(written[-1], dpi=100, metadata={"Software": None})
        plt.close(fig)
    return written


def default_report_dir(config: Config, refs: list[str]) -> Path:
    """data/out/eval/<run> for one run, data/out/eval/compare-<hash> for several (beside the versions)."""
    root = config.path(config.publish.out_dir).parent / "eval"
    return root / (refs[0] if len(refs) == 1 else "compare-" + content_hash(sorted(refs), length=10))
