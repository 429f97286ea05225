"""Runs: every job (``biocurate.jobs``) is a row in ``runs`` with its config hash, code version,
counts and summary."""
from __future__ import annotations

import json
import uuid

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from biocurate.config import Config
from biocurate.store import Store, table_counts, utcnow
from biocurate.version import code_version


def start_run(config: Config, flow: str) -> str:
    run_id = utcnow().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    with Store(config.path(config.store.path)).open() as con:
        con.execute(
            "insert into runs (run_id, flow, started_at, status, config_hash, code_version) values (?, ?, ?, 'running', ?, ?)",
            [run_id, flow, utcnow(), config.config_hash(), code_version()],
        )
    return run_id


def close_interrupted(config: Config, holder: dict | None = None) -> list[str]:
    """Mark runs still 'running' as 'interrupted'; call only while holding the job lock.

    Every job that records runs holds the store's job lock (``biocurate.lock``) for its whole
    length, so with the lock in hand a 'running' row belongs to a process that died.
    """
    who = f" (pid {holder.get('pid')} on {holder.get('host')})" if holder else ""
    with Store(config.path(config.store.path)).open() as con:
        ids = [r[0] for r in con.execute("select run_id from runs where status = 'running'").fetchall()]
        if ids:
            con.execute(
                "update runs set status = 'interrupted', error = ? where status = 'running'",
                [f"the process{who} stopped before the run finished; the next run resumed its work"])
    return ids


def finish_run(config: Config, run_id: str, status: str, reports: list[dict], error: str | None = None) -> dict:
    with Store(config.path(config.store.path)).open() as con:
        counts = table_counts(con)
        con.execute(
            "update runs set finished_at = ?, status = ?, counts = ?, summary = ?, error = ? where run_id = ?",
            [utcnow(), status, json.dumps(counts), json.dumps(reports), error, run_id],
        )
    return counts


def summary_rows(reports: list[dict]) -> list[dict]:
    """One row per stage for the printed table and the Prefect artifact."""
    rows = []
    for r in reports:
        failures = sum(r["failures"].values())
        top = sorted(r["failures"].items(), key=lambda kv: -kv[1])[:3]
        rows.append({
            "stage": r["stage"], "in": r["rows_in"], "new": r["rows_new"], "reused": r["reused"],
            "failed": failures, "requests": r.get("requests", 0),
            "top failure reasons": "; ".join(f"{k} ({v})" for k, v in top),
            "seconds": r["seconds"],
        })
    return rows


def print_summary(run_id: str, reports: list[dict], console: Console | None = None) -> None:
    console = console or Console(stderr=False)
    table = Table(title=f"run {run_id}")
    numeric = ("in", "new", "reused", "failed", "requests", "seconds")
    for column in ("stage", "in", "new", "reused", "failed", "requests", "top failure reasons", "seconds"):
        table.add_column(column, overflow="fold", justify="right" if column in numeric else "left")
    for row in summary_rows(reports):
        table.add_row(*(escape(str(v)) for v in row.values()))
    console.print(table)
    for r in reports:
        for note in r.get("notes", []):
            console.print(f"  [dim]{r['stage']}:[/dim] {escape(note)}")
    console.print(incremental_line(reports))


def incremental_line(reports: list[dict]) -> str:
    """One line: how much of the run was new work and how much was reused from the store."""
    new = sum(r["rows_new"] for r in reports)
    reused = sum(r["reused"] for r in reports)
    requests = sum(r.get("requests", 0) for r in reports)
    return (f"{new} new rows, {reused} reused from the store; "
            f"{requests} requests to the APIs and LLM endpoints")
