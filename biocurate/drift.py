"""Drift watch: ask the calls of the latest published version again and compare.

The upstream databases change every release. A drift check re-executes the calls behind the
latest published version (all of them, or ``[drift] sample_size`` at a time, the calls
checked longest ago first), through the same executor and therefore within the same
per-host rate limits, and compares each new observation with the one that was published:

- ``unchanged``: same body; ``body_changed``: the body differs but not the published
  observation (nothing to review);
- ``changed``: the observation differs. Every question about the call (reviewers' edits aside)
  gets a new version: a new ``queries`` row with the same question, bound to the new
  observation (``query_replacements`` links the two). The next judge, quality and review push
  stages take it like any new question; the old row, its judgments and its checks are kept as
  they were (nothing is deleted or updated). Each published item about the call is *held*:
  publish leaves it out until a reviewer annotates its new version, which it then publishes
  under the item's first id;
- ``gone``: a definite non-answer now (404, empty, API error, a body the builder no longer
  understands): the items are held until a later check finds the call answering as published;
- ``failed``: no definite answer (timeout, 5xx, 429): nothing held, asked again next time.

Everything is recorded in ``drift_checks``, ``drift_results`` and ``drift_holds``; the
``drift_open_holds`` view is what publish leaves out, and ``biocurate drift report`` shows it.
"""

from __future__ import annotations

import asyncio
import difflib
import gzip
from collections import Counter
from dataclasses import dataclass, field

import duckdb
import polars as pl

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.execute import ExecuteSummary, _fetch_batch, build_observations
from biocurate.hashing import content_hash
from biocurate.observations import build_observation
from biocurate.outcomes import OK, is_definite
from biocurate.snapshot import Snapshot
from biocurate.store import insert_new, release, utcnow

UNCHANGED, BODY_CHANGED, CHANGED, GONE, FAILED = "unchanged", "body_changed", "changed", "gone", "failed"
STATUSES = (UNCHANGED, BODY_CHANGED, CHANGED, GONE, FAILED)


@dataclass
class DriftSummary:
    check_id: str
    version_id: str | None = None
    calls_in_version: int = 0
    checked: int = 0
    statuses: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    held: int = 0  # published items newly held out of publishing
    replaced: int = 0  # questions given a new version bound to the new observation
    http_requests: int = 0
    message: str = ""


def status_of(outcome: str, status_code: int | None, same_observation: bool | None, same_body: bool) -> str:
    """The status of a new answer compared with an earlier one (also the BioTool import's
    comparison with the observation BioTool published, ``biocurate.biotool_compare``).

    ``same_observation``: the new answer says what the earlier one said (None: the new answer
    gave no observation to compare); ``same_body``: the raw bodies are equal too.
    """
    if outcome == OK and same_observation is not None:
        if not same_observation:
            return CHANGED
        return UNCHANGED if same_body else BODY_CHANGED
    return GONE if is_definite(outcome, status_code) else FAILED


def latest_version(con: duckdb.DuckDBPyConnection) -> str | None:
    rows = con.execute("select max(version_id) from dataset_versions").fetchall()
    return rows[0][0] if rows else None


def calls_to_check(con: duckdb.DuckDBPyConnection, version_id: str, sample_size: int) -> tuple[list, int]:
    """(call_id, function, arguments) to check, and how many calls the version has.

    A sample takes the calls whose last check is oldest (never checked first), so that
    successive checks go round the whole version.
    """
    rows = con.execute(
        """
        with calls as (select distinct call_id from dataset_items where version_id = ?),
        last as (select call_id, max(checked_at) as checked_at from drift_results group by call_id)
        select c.call_id, c.function, c.arguments::varchar
        from calls
        join candidate_calls c using (call_id)
        left join last l using (call_id)
        order by l.checked_at nulls first, hash(c.call_id), c.call_id
        """,
        [version_id],
    ).fetchall()
    total = len(rows)
    return (rows[:sample_size] if sample_size else rows), total


def _published(con: duckdb.DuckDBPyConnection, version_id: str, call_ids: list[str]) -> pl.DataFrame:
    """Per published item of these calls: its observation as published and the response behind it."""
    con.register("_ids", pl.DataFrame({"call_id": call_ids}, schema={"call_id": pl.String}))
    try:
        return con.sql(
            """
            select d.item_id, d.call_id, d.observation, o.observation_id,
                   o.response_id as old_response_id, r.body_sha256 as old_body_sha256
            from dataset_items d
            join _ids using (call_id)
            -- the observation as published (an item published from a drift replacement has
            -- its first version's id but the replacement's observation)
            left join observations o on o.call_id = d.call_id and o.text = d.observation
            left join api_responses r on r.response_id = o.response_id
            where d.version_id = $version
            order by d.item_id
            """,
            params={"version": version_id},
        ).pl()
    finally:
        con.unregister("_ids")


def _where_changed(old: str, new: str, width: int = 160) -> str:
    """A short description of the first difference between two observation texts."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            start = max(0, i1 - 30)
            return (
                f"observation changed at char {i1}: …{old[start : i2 + 30][:width]!r} → "
                f"…{new[max(0, j1 - 30) : j2 + 30][:width]!r}"
            )
    return "observation changed"


REPLACED_COLUMNS = ("call_id", "text", "style", "generator", "model", "prompt_version", "temperature", "seed")


def new_versions(
    con: duckdb.DuckDBPyConnection, found: list[tuple], label: str, run_id: str, now
) -> tuple[dict[str, str], int]:
    """A new version of each question in ``found``, bound to another observation: a ``queries``
    row with the old one's ``REPLACED_COLUMNS``, and a ``query_replacements`` link that marks the
    old one superseded. The one way a question moves to a new observation (the drift watch, and
    the binding of imported BioTool questions in ``biocurate.biotool_compare``).

    ``found``: rows (item id, query id, new observation id, drift id, *REPLACED_COLUMNS values).
    The new id is the content hash of ``label``, the old id and the observation, so doing it again
    adds nothing. Append-only: the old rows, their judgments and checks stay. Returns
    ({item id: its new version}, links newly written).
    """
    versions, links = [], []
    for item_id, query_id, observation_id, drift_id, *values in found:
        new_id = content_hash(label, query_id, observation_id)
        versions.append(
            {
                **dict(zip(REPLACED_COLUMNS, values, strict=True)),
                "query_id": new_id,
                "observation_id": observation_id,
                "run_id": run_id,
                "created_at": now,
            }
        )
        links.append(
            {
                "query_id": query_id,
                "replacement_query_id": new_id,
                "item_id": item_id,
                "drift_id": drift_id,
                "run_id": run_id,
                "created_at": now,
            }
        )
    insert_new(con, "queries", versions)
    written = insert_new(con, "query_replacements", links)
    return {link["item_id"]: link["replacement_query_id"] for link in links}, written


def _replace(
    con: duckdb.DuckDBPyConnection, call_id: str, observation_id: str, drift_id: str, run_id: str, now
) -> dict[str, str]:
    """A new version of every current question about the call, bound to the new observation
    (``new_versions``). Reviewers' edits are not carried over (the new version is reviewed
    afresh). Returns {item id: its new version}.
    """
    rows = con.execute(
        f"""
        select c.item_id, c.query_id, ?, ?, {", ".join("c." + col for col in REPLACED_COLUMNS)}
        from current_items c
        where c.call_id = ? and c.observation_id <> ?
        order by c.query_id
        """,
        [observation_id, drift_id, call_id, observation_id],
    ).fetchall()
    return new_versions(con, rows, "drift replacement", run_id, now)[0]


def check_drift(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, sample_size: int | None = None
) -> DriftSummary:
    """Re-execute the calls of the latest published version and record what changed."""
    summary = DriftSummary(check_id=run_id)
    version_id = latest_version(con)
    if version_id is None:
        summary.message = "nothing published yet: no calls to check"
        return summary
    size = config.drift.sample_size if sample_size is None else sample_size
    calls, summary.calls_in_version = calls_to_check(con, version_id, size)
    summary.version_id = version_id
    started = utcnow()
    con.execute(
        "insert into drift_checks (check_id, version_id, started_at, transport, calls_in_version, "
        "calls_checked) values (?, ?, ?, ?, ?, 0) on conflict do nothing",
        [run_id, version_id, started, config.execute.transport, summary.calls_in_version],
    )
    replay = Snapshot(config.path(config.execute.snapshot_dir)) if config.execute.transport == "replay" else None
    batch_size = config.execute.batch_size
    for start in range(0, len(calls), batch_size):
        batch = calls[start : start + batch_size]
        network: Counter[str] = Counter()
        release(con)  # the store is free while the batch is asked again
        rows = asyncio.run(_fetch_batch(config, catalog, batch, run_id, replay, network))
        insert_new(con, "api_responses", rows)
        build_observations(config, con, catalog, run_id, ExecuteSummary())
        if config.execute.transport != "replay":
            summary.http_requests += network["sent"]  # answered; connection failures are no requests
        _compare(config, con, catalog, summary, version_id, rows, {c[0]: c[1] for c in batch})
        summary.checked += len(batch)
        # Each batch is recorded before the next one is asked: a crash keeps what was compared.
        con.execute(
            "update drift_checks set calls_checked = ?, unchanged = ?, body_changed = ?, changed = ?, gone = ?, "
            "failed = ? where check_id = ?",
            [summary.checked, *(summary.statuses[s] for s in STATUSES), run_id],
        )
    con.execute("update drift_checks set finished_at = ? where check_id = ?", [utcnow(), run_id])
    counts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in summary.statuses.items() if n)
    summary.message = (
        f"checked {summary.checked} of {summary.calls_in_version} calls of {version_id}"
        f"{': ' + counts if counts else ''}; {summary.held} published items held for re-review"
    )
    return summary


def _compare(
    config: Config,
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    summary: DriftSummary,
    version_id: str,
    rows: list[dict],
    functions: dict[str, str],
) -> None:
    published = _published(con, version_id, [r["call_id"] for r in rows])
    by_call: dict[str, list[dict]] = {}
    for item in published.iter_rows(named=True):
        by_call.setdefault(item["call_id"], []).append(item)
    now = utcnow()
    results, holds = [], []
    for row in rows:
        call_id, items = row["call_id"], by_call.get(row["call_id"], [])
        # The outcome after observation building (a body the builder rejects became invalid_body).
        outcome, error = con.execute(
            "select outcome, error from api_responses where response_id = ?", [row["response_id"]]
        ).fetchall()[0]
        observation = []
        if outcome == OK:
            # Built again from the new body (the same text as before has the same observation row,
            # which keeps the response it was first built from).
            tool = catalog[functions[call_id]]
            _, text = build_observation(
                tool.function.observation,
                tool.function.response,
                gzip.decompress(row["body"]),
                config.execute.observation_max_chars,
            )
            observation = con.execute(
                "select observation_id, text from observations where call_id = ? and text = ?", [call_id, text]
            ).fetchall()
        old_sha = next((i["old_body_sha256"] for i in items if i["old_body_sha256"]), None)
        old_response = next((i["old_response_id"] for i in items if i["old_response_id"]), None)
        new_observation_id, detail = None, error
        if outcome == OK and observation:
            new_observation_id, text = observation[0]
            differing = [i for i in items if i["observation"] != text]
            if differing:
                detail = _where_changed(differing[0]["observation"], text)
            status = status_of(outcome, row["status_code"], not differing, row["body_sha256"] == old_sha)
        else:
            status = status_of(outcome, row["status_code"], None, False)
            detail = f"{outcome}: {error}" if error else outcome
        drift_id = content_hash("drift", summary.check_id, call_id)
        results.append(
            {
                "drift_id": drift_id,
                "check_id": summary.check_id,
                "version_id": version_id,
                "call_id": call_id,
                "function": functions[call_id],
                "status": status,
                "old_response_id": old_response,
                "new_response_id": row["response_id"],
                "old_body_sha256": old_sha,
                "new_body_sha256": row["body_sha256"],
                "new_outcome": outcome,
                "new_observation_id": new_observation_id,
                "items": len(items),
                "detail": detail,
                "checked_at": now,
            }
        )
        summary.statuses[status] += 1
        replaced = {}
        if status == CHANGED and new_observation_id is not None:
            replaced = _replace(con, call_id, new_observation_id, drift_id, summary.check_id, now)
            summary.replaced += len(replaced)
        if status in (CHANGED, GONE):
            holds += [
                {
                    "hold_id": content_hash("hold", drift_id, i["item_id"]),
                    "query_id": i["item_id"],
                    "drift_id": drift_id,
                    "check_id": summary.check_id,
                    "version_id": version_id,
                    "call_id": call_id,
                    "reason": status,
                    "replacement_query_id": replaced.get(i["item_id"]),
                    "created_at": now,
                }
                for i in items
            ]
    insert_new(con, "drift_results", results)
    summary.held += insert_new(con, "drift_holds", holds)


def open_holds(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Published items publish leaves out until they are reviewed again (or answer again)."""
    return con.sql("select * from drift_open_holds order by created_at, query_id").pl()


def report(con: duckdb.DuckDBPyConnection, check_id: str | None = None) -> dict:
    """The latest (or a given) drift check: its counts, what changed, and the items on hold."""
    checks = con.sql("select * from drift_checks order by started_at desc").pl()
    if checks.is_empty():
        return {"checks": checks, "check": None, "results": pl.DataFrame(), "holds": open_holds(con)}
    check = checks.filter(pl.col("check_id") == check_id) if check_id else checks.head(1)
    if check.is_empty():
        raise KeyError(check_id)
    chosen = check.row(0, named=True)["check_id"]
    results = con.sql(
        "select status, function, call_id, items, new_outcome, detail from drift_results "
        "where check_id = $c and status <> 'unchanged' order by status, function, call_id",
        params={"c": chosen},
    ).pl()
    return {"checks": checks, "check": check.row(0, named=True), "results": results, "holds": open_holds(con)}
