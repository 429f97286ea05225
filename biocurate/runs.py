"""Runs: every job (``biocurate.jobs``) is a row in ``runs`` with its config hash, code version,
counts, summary and status.

A run's status is decided in one place, ``run_status``, from its stage reports: ``completed``;
``degraded`` when a stage could not use its outside service (Label Studio down inside a rebuild);
``failed`` when a stage asked a service for work and not one unit was answered (an LLM endpoint
or the APIs down for every call), or when the job raised. Both name what to fix in the run's
error, in the printed summary, and give the commands a non-zero exit. Every text kept or shown
here is masked (``config.mask_secrets``).
"""

from __future__ import annotations

import json
import uuid

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from biocurate.config import Config, mask_secrets
from biocurate.log import output_console
from biocurate.store import Store, table_counts, utcnow
from biocurate.version import code_version


def start_run(config: Config, flow: str) -> str:
    run_id = utcnow().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    with Store(config.path(config.store.path)).open() as con:
        con.execute(
            "insert into runs (run_id, flow, started_at, status, config_hash, code_version) "
            "values (?, ?, ?, 'running', ?, ?)",
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
                [f"the process{who} stopped before the run finished; the next run resumed its work"],
            )
    return ids


COMPLETED, DEGRADED, FAILED = "completed", "degraded", "failed"


def stage_problem(report: dict) -> tuple[str, str] | None:
    """(the run status this stage calls for, what to fix), or None when it did its work. Some
    units without an answer are not a problem of the run: they are counted as failures and asked
    again by the next run."""
    attempted, unanswered = report.get("attempted", 0), report.get("unanswered", 0)
    if attempted and unanswered >= attempted:
        top = max(report["failures"].items(), key=lambda kv: kv[1])[0] if report["failures"] else "no answer"
        return FAILED, (
            f"{report['stage']}: none of the {attempted} items sent to {report.get('service') or 'its service'} "
            f"got an answer (top failure: {top}); check that it is reachable and configured, then run "
            "again (what is stored is kept and only the unanswered work is asked again)"
        )
    if report.get("unreachable"):
        return DEGRADED, f"{report['stage']}: {report['unreachable']}"
    return None


def run_status(reports: list[dict]) -> tuple[str, list[str]]:
    """The status of a run that ran all its stages (completed, degraded or failed) and what to fix."""
    problems = [found for found in map(stage_problem, reports) if found]
    fixes = [mask_secrets(line) for _, line in problems]
    if any(status == FAILED for status, _ in problems):
        return FAILED, fixes
    return (DEGRADED if problems else COMPLETED), fixes


def finish_run(config: Config, run_id: str, status: str, reports: list[dict], error: str | None = None) -> dict:
    with Store(config.path(config.store.path)).open() as con:
        counts = table_counts(con)
        con.execute(
            "update runs set finished_at = ?, status = ?, counts = ?, summary = ?, error = ? where run_id = ?",
            [
                utcnow(),
                status,
                json.dumps(counts),
                mask_secrets(json.dumps(reports)),
                None if error is None else mask_secrets(error),
                run_id,
            ],
        )
    return counts


def summary_rows(reports: list[dict]) -> list[dict]:
    """One row per stage for the printed table and the Prefect artifact."""
    rows = []
    for r in reports:
        failures = sum(r["failures"].values())
        top = sorted(r["failures"].items(), key=lambda kv: -kv[1])[:3]
        rows.append(
            {
                "stage": r["stage"],
                "in": r["rows_in"],
                "new": r["rows_new"],
                "reused": r["reused"],
                "failed": failures,
                "requests": r.get("requests", 0),
                "top failure reasons": mask_secrets("; ".join(f"{k} ({v})" for k, v in top)),
                "seconds": r["seconds"],
            }
        )
    return rows


def print_summary(run_id: str, reports: list[dict], console: Console | None = None) -> None:
    console = console or output_console()
    table = Table(title=f"run {run_id}")
    numeric = ("in", "new", "reused", "failed", "requests", "seconds")
    for column in ("stage", "in", "new", "reused", "failed", "requests", "top failure reasons", "seconds"):
        table.add_column(column, overflow="fold", justify="right" if column in numeric else "left")
    for row in summary_rows(reports):
        table.add_row(*(escape(str(v)) for v in row.values()))
    console.print(table)
    for r in reports:
        for note in r.get("notes", []):
            console.print(f"  [dim]{r['stage']}:[/dim] {escape(mask_secrets(note))}")
    console.print(incremental_line(reports))
    console.print(status_line(run_id, reports), soft_wrap=True)


def status_line(run_id: str, reports: list[dict]) -> str:
    """The run's status (``run_status``) and, unless completed, what to fix, as printed lines."""
    status, fixes = run_status(reports)
    if status == COMPLETED:
        return f"run {run_id} completed"
    colour = "red" if status == FAILED else "yellow"
    return "\n".join(
        [
            f"[bold {colour}]run {run_id} {status}[/bold {colour}]: what to fix:",
            *(f"  - {escape(fix)}" for fix in fixes),
        ]
    )


def incremental_line(reports: list[dict]) -> str:
    """One line: how much of the run was new work and how much was reused from the store."""
    new = sum(r["rows_new"] for r in reports)
    reused = sum(r["reused"] for r in reports)
    requests = sum(r.get("requests", 0) for r in reports)
    replayed = sum(r.get("replayed", 0) for r in reports)
    line = f"{new} new rows, {reused} reused from the store; {requests} requests to the APIs and LLM endpoints"
    return f"{line} ({replayed} calls replayed from recorded responses)" if replayed else line
