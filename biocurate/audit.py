"""The audit of data imported from BioTool (`biocurate audit`): what BioTool's records turn out to
be once our pipeline has run over them (import, then rebuild: execute, compare, judge, quality).

Every section is a SQL view in ``sql/views/audit_*.sql``, so each figure can be queried:

- records per file: imported or malformed (``audit_malformed``: file, record number, problem);
- calls by state (``audit_calls``): rejected by the catalog, not executed yet, or our latest
  answer against the observation BioTool published, in the drift watch's statuses. The calls
  that no longer answer (``gone``), whose answer changed (``changed``: claimed facts missing, or
  none of them checkable), and without a definite answer (``failed``) are listed;
- quality rules (``audit_rule_failures``): per rule, the imported questions failing it, with
  examples;
- leakage (``audit_leakage``): calls published in two splits (BioTool's random split puts
  paraphrases of one call on both sides), with each pair of questions.

``audit_report`` returns plain data (``biocurate audit --json``); ``render`` prints it as tables.
"""

from __future__ import annotations

from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

STATES = ("rejected", "not executed", "unchanged", "body_changed", "changed", "gone", "failed", "answers (no claim)")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    result = con.execute(sql, params or [])
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchall()[0][0]


def audit_report(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Every section of the audit, as plain data."""
    files = _rows(
        con,
        """
        select file_name as file, any_value(format) filter (where format is not null) as format,
               any_value(split) as split, count(record_number) as records,
               count(*) filter (where status = 'imported') as imported,
               count(*) filter (where status = 'malformed') as malformed
        from biotool_records group by file_name order by file_name""",
    )
    calls = _rows(
        con,
        """
        select call_id, function, arguments::varchar as arguments, state, status, basis, detail, outcome,
               invalid_reason, items, splits, first_record, facts_checked, facts_missing
        from audit_calls order by function, call_id""",
    )
    items = _rows(
        con,
        """
        select i.item_id, i.query_id, i.call_id, i.function, i.text as question, i.splits, i.records,
               i.bound_to_claim,
               i.query_id in (select item_id from qc_results where item_kind = 'query') as quality_checked,
               i.query_id in (select query_id from survivors) as passing_quality,
               list(f.suite || '.' || f.expectation order by f.suite, f.expectation)
                   filter (where f.suite is not null) as rules_failed
        from audit_items i left join audit_rule_failures f on f.query_id = i.query_id
        group by all order by i.function, i.item_id""",
    )
    summary = {
        "files": len(files),
        "records": sum(f["records"] for f in files),
        "imported_records": sum(f["imported"] for f in files),
        "malformed_records": sum(f["malformed"] for f in files),
        "calls": len(calls),
        "items": len(items),
        "items_bound_to_our_observation": sum(1 for i in items if not i["bound_to_claim"]),
        "items_quality_checked": sum(1 for i in items if i["quality_checked"]),
        "items_passing_quality": sum(1 for i in items if i["passing_quality"]),
        "items_published": _one(
            con, "select count(distinct item_id) from dataset_items where item_id in (select item_id from audit_items)"
        ),
        "items_by_split": dict(
            con.execute(
                "select coalesce(array_to_string(splits, '+'), '(none)') as split, count(*) from audit_items "
                "group by all order by all"
            ).fetchall()
        ),
    }
    states = {state: sum(1 for c in calls if c["state"] == state) for state in STATES}
    summary["calls_changed_facts_missing"] = sum(1 for c in calls if c["state"] == "changed" and c["basis"] == "facts")
    summary["calls_changed_not_checkable"] = states["changed"] - summary["calls_changed_facts_missing"]
    rules = []
    for rule in _rows(
        con,
        """
            select suite, expectation, severity, count(*) as items_failing
            from audit_rule_failures group by all order by items_failing desc, suite, expectation""",
    ):
        rule["failures"] = _rows(
            con,
            """
            select item_id, question, reason, records from audit_rule_failures
            where suite = ? and expectation = ? order by example_rank""",
            [rule["suite"], rule["expectation"]],
        )
        rules.append(rule)
    leakage = _rows(
        con,
        """
        select call_id, function, first_split, first_question, first_record, second_split, second_question,
               second_record, same_question
        from audit_leakage order by function, call_id, first_record, second_record""",
    )
    return {
        "summary": summary,
        "files": files,
        "calls_by_state": states,
        "malformed": _rows(
            con,
            """
            select file_name as file, record_number as record, format, problem from audit_malformed
            order by file_name, record_number nulls first""",
        ),
        "calls": calls,
        "items": items,
        "rejected": [c for c in calls if c["state"] == "rejected"],
        "gone": [c for c in calls if c["state"] == "gone"],
        "changed": [c for c in calls if c["state"] == "changed"],
        "failed": [c for c in calls if c["state"] == "failed"],
        "rules": rules,
        "leakage": {
            "calls": len({p["call_id"] for p in leakage}),
            "pairs": len(leakage),
            "same_question_pairs": sum(1 for p in leakage if p["same_question"]),
            "pairs_list": leakage,
        },
    }


def _table(console: Console, title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def _short(text: Any, width: int = 90) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _specific(reason: str | None) -> str:
    """A quality reason's own detail (its last parenthesised part), else the reason."""
    text = (reason or "").rstrip()
    if not text.endswith(")"):
        return text
    depth = 0
    for at in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[at], 0)
        if depth == 0:
            return text[at + 1 : -1] or text
    return text


def render(report: dict[str, Any], console: Console, examples: int = 3) -> None:
    """The audit as tables: figures first, then the calls, rules and pairs behind them."""
    s = report["summary"]
    if not s["records"] and not report["malformed"]:
        console.print("nothing imported yet: run `biocurate import biotool PATH...` first")
        return
    _table(
        console,
        "BioTool files",
        ["file", "format", "split", "records", "imported", "malformed"],
        [
            [f["file"], f["format"], f["split"] or "", f["records"], f["imported"], f["malformed"]]
            for f in report["files"]
        ],
    )
    figures = [
        ("questions imported", s["items"]),
        ("calls imported", s["calls"]),
        ("questions bound to our observation (their call answers)", s["items_bound_to_our_observation"]),
        ("questions quality-checked", s["items_quality_checked"]),
        ("questions passing the quality checks", s["items_passing_quality"]),
        ("questions published", s["items_published"]),
        *((f"calls {state}", n) for state, n in report["calls_by_state"].items()),
        ("  changed: claimed facts missing from the answer", s["calls_changed_facts_missing"]),
        ("  changed: no claimed fact could be looked up in the answer", s["calls_changed_not_checkable"]),
        ("calls in two splits (leakage)", report["leakage"]["calls"]),
        ("question pairs across splits", report["leakage"]["pairs"]),
    ]
    _table(console, "audit", ["figure", "value"], [list(f) for f in figures])
    if report["malformed"]:
        _table(
            console,
            f"malformed records ({len(report['malformed'])})",
            ["file", "record", "problem"],
            [[m["file"], "(file)" if m["record"] is None else m["record"], m["problem"]] for m in report["malformed"]],
        )
    sections = (
        ("rejected", "calls the catalog rejects", "invalid_reason"),
        ("gone", "calls that no longer answer", "detail"),
        ("changed", "calls whose answer changed since BioTool published it", "detail"),
        ("failed", "calls without a definite answer (asked again next rebuild)", "detail"),
    )
    for key, title, why in sections:
        if report[key]:
            _table(
                console,
                f"{title} ({len(report[key])})",
                ["function", "arguments", "why", "questions", "record"],
                [
                    [c["function"], _short(c["arguments"], 60), _short(c[why], 120), c["items"], c["first_record"]]
                    for c in report[key]
                ],
            )
    if report["rules"]:
        rows = []
        for rule in report["rules"]:
            for i, failure in enumerate(rule["failures"][:examples]):
                rows.append(
                    [
                        f"{rule['suite']}.{rule['expectation']}" if i == 0 else "",
                        rule["severity"] if i == 0 else "",
                        rule["items_failing"] if i == 0 else "",
                        _short(failure["question"]),
                        _short(_specific(failure["reason"]), 100),
                        ", ".join(failure["records"] or []),
                    ]
                )
        _table(
            console,
            "quality rules failed by imported questions (with examples)",
            ["rule", "severity", "questions failing", "example question", "reason", "records"],
            rows,
        )
    pairs = report["leakage"]["pairs_list"]
    if pairs:
        _table(
            console,
            f"calls in two splits: {report['leakage']['calls']} calls, {len(pairs)} question pairs",
            ["function", "split", "question", "split ", "question ", "same"],
            [
                [
                    p["function"],
                    p["first_split"],
                    _short(p["first_question"], 70),
                    p["second_split"],
                    _short(p["second_question"], 70),
                    "yes" if p["same_question"] else "",
                ]
                for p in pairs
            ],
        )
