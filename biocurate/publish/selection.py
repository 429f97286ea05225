"""Which queries are exported, with which text, and why the others are not.

Only queries a reviewer accepted (or accepted with an edit, exported with the edited text once
that text passed the quality checks) are exported; every other query is counted under the
reason it was left out. The review state is the one of the configured rule
(``review_resolution`` view, column picked by ``biocurate.review.state_column``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Generator, Iterator
from contextlib import closing

import duckdb
import polars as pl

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.hashing import canonical_json
from biocurate.publish.common import sql, within_publish_memory
from biocurate.review import state_column
from biocurate.store import owned, registered

# Why a query is not exported; the order is the order of the report.
NOT_CHECKED = "not yet quality-checked"
FAILED_QC = "failed quality checks"
NOT_PUSHED = "not yet reviewed (not pushed to Label Studio)"
PENDING = "review pending (no annotation yet)"
REJECTED = "rejected by a reviewer"
CONFLICTING = "reviewers disagree (conflicting)"
ACCEPTED_FAILS_QC = "accepted, but fails the current quality checks"
CALL_EDITED = "reviewer changed the call (needs re-execution)"
EDIT_NOT_CHECKED = "edited question not yet quality-checked"
EDIT_FAILED_QC = "edited question failed quality checks"
NOT_IN_CATALOG = "function no longer in the catalog"
MISSING_ROWS = "call or observation missing from the store"
DRIFT_HELD = "changed upstream since published (drift check): awaiting a new review"
SPLIT_CONFLICT = "its calls are in groups earlier versions put in different splits"
REASONS = (
    NOT_CHECKED,
    FAILED_QC,
    NOT_PUSHED,
    PENDING,
    REJECTED,
    CONFLICTING,
    ACCEPTED_FAILS_QC,
    CALL_EDITED,
    EDIT_NOT_CHECKED,
    EDIT_FAILED_QC,
    DRIFT_HELD,
    NOT_IN_CATALOG,
    SPLIT_CONFLICT,
    MISSING_ROWS,
)


def _call_changed(edited_call: str | None, function: str | None, arguments: str | None) -> bool:
    """Did the reviewer's edited call differ from the call that was executed? For a call set
    (no call of its own: ``function`` None) any edited call is a change: its calls were executed
    as sampled and chained, so an edit needs a new set."""
    if edited_call is None:
        return False
    if function is None or arguments is None:
        try:
            edited_set = json.loads(edited_call)
        except json.JSONDecodeError:
            return True
        return edited_set not in ("", None, [], {})
    try:
        edited = json.loads(edited_call)
    except json.JSONDecodeError:
        return True
    if isinstance(edited, str):  # stored as typed when it was not JSON
        try:
            edited = json.loads(edited)
        except json.JSONDecodeError:
            return bool(edited.strip())
    if not isinstance(edited, dict):
        return True
    original = {"name": function, "arguments": json.loads(arguments)}
    edited_parts = {"name": edited.get("name"), "arguments": edited.get("arguments")}
    return canonical_json(edited_parts) != canonical_json(original)


def _verdict(row: dict) -> tuple[str | None, str | None]:
    """(reason it is not exported, None) or (None, id of the query whose text is exported)."""
    state = row["state"]
    if state is None:
        if not row["checked"]:
            return NOT_CHECKED, None
        return (FAILED_QC if not row["survives"] else NOT_PUSHED), None
    if state == "pending":
        return PENDING, None
    if state == "rejected":
        return REJECTED, None
    if state == "conflicting":
        return CONFLICTING, None
    if state == "accepted":
        return (None, row["query_id"]) if row["survives"] else (ACCEPTED_FAILS_QC, None)
    if state == "edited":
        if _call_changed(row["edited_call"], row["function"], row["arguments"]):
            return CALL_EDITED, None
        if row["edit_id"] is None:  # accepted with an unchanged (or empty) question
            return (None, row["query_id"]) if row["survives"] else (ACCEPTED_FAILS_QC, None)
        if not row["edit_checked"]:
            return EDIT_NOT_CHECKED, None
        if not row["edit_survives"]:
            return EDIT_FAILED_QC, None
        return None, row["edit_id"]
    return f"review state {state}", None


# Rows DuckDB hands over at a time: a result is streamed, never held whole in DuckDB's memory
# (``[store] memory_limit``; at 100k calls the selection alone would not fit).
STREAM_ROWS = 50_000


# Chosen items whose details (details.sql) are fetched at a time.
DETAILS_ROWS = 20_000


def _streamed(con: duckdb.DuckDBPyConnection, query: str) -> Generator[Iterator[dict], None, None]:
    """The query's rows, STREAM_ROWS at a time, each batch's a dict at a time, on one DuckDB thread:
    each thread of a streamed query holds join tables of its own, and at 100k calls the selection
    needed 224 to 256 MB on two threads (under ``PUBLISH_MEMORY``, 256 MB, one run in four failed:
    out of memory) and less than 128 MB on one; its rows are taken a dict at a time anyway, slower
    than DuckDB makes them on one thread (4.7 s for 400,000)."""
    (threads,) = con.execute("select current_setting('threads')").fetchall()[0]
    con.execute("set threads = 1")
    try:
        reader = con.sql(query).to_arrow_reader(STREAM_ROWS)
        try:
            for batch in reader:
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                yield frame.iter_rows(named=True)
        finally:
            reader.close()  # a stream an error left: its result goes before the setting comes back
    finally:
        con.execute(f"set threads = {int(threads)}")


_CHOSEN = {
    "item_id": pl.String,
    "query_id": pl.String,
    "user_query": pl.String,
    "text_query_id": pl.String,
    "state": pl.String,
}


def _choose(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog | None, held: set[str]
) -> tuple[list[pl.DataFrame], Counter[str]]:
    """The selection's rows (``_selection_items``) decided: the chosen items, a frame per streamed
    batch (compact, not a dict per item), and the count per refusal reason."""
    rule = state_column(config)
    refused: Counter[str] = Counter()
    chosen: list[pl.DataFrame] = []
    with closing(_streamed(con, sql("selection"))) as streamed:  # closed (its settings back) on an error too
        for rows in streamed:
            batch: dict[str, list] = {k: [] for k in _CHOSEN}
            for row in rows:
                row["state"] = row[rule]
                reason, text_id = _verdict(row)
                if reason is None and catalog is not None and any(f not in catalog for f in row["functions"]):
                    reason = NOT_IN_CATALOG
                if row["item_id"] in held:  # its new version awaits a review, whatever its state
                    reason = DRIFT_HELD
                if reason:
                    refused[reason] += 1
                    continue
                batch["item_id"].append(row["item_id"])
                batch["query_id"].append(row["query_id"])
                batch["user_query"].append(row["edit_text"] if text_id != row["query_id"] else row["text"])
                batch["text_query_id"].append(text_id)
                batch["state"].append(row["state"])
            chosen.append(pl.DataFrame(batch, schema=_CHOSEN))
    return chosen, refused


def select_items(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog | None = None, details_rows: int = DETAILS_ROWS
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The exportable items (one row each, with the text to export) and the count per refusal reason.

    Every query that is not itself a reviewer's edit is either exported or counted under one
    reason, so exported + refused = all such queries.
    """
    # Drift watch (biocurate.drift): items whose call answers differently now wait for a new review.
    held = {q for (q,) in con.execute("select query_id from drift_open_holds").fetchall()}
    # current_items copied first: joined in place with the rest, DuckDB's join tables for 400k
    # questions (100k calls) outgrow [store] memory_limit (1 GB).
    con.execute(
        "create or replace temp table _selection_items as "
        "select item_id, query_id, text, call_id, parent_query_id from current_items"
    )
    # under publish's lowered memory limit; a store too large for it is read again at the store's
    chosen, refused = within_publish_memory(con, config, lambda: _choose(config, con, catalog, held))
    con.execute("drop table if exists _selection_items")  # a temp table: gone with the connection anyway
    frame = pl.concat(chosen) if chosen else pl.DataFrame(schema=_CHOSEN)
    del chosen
    # The details a slice of the chosen items at a time, in item_id order: DuckDB's joins and sort
    # for every item at once outgrow [store] memory_limit (and the process's memory) at 100k calls.
    frame = frame.sort("item_id")
    scripted = [email.lower() for email in config.review.scripted_annotators]
    parts = []
    for start in range(0, max(frame.height, 1), details_rows):
        # with its rows of queries, judgments and annotations (_chosen_queries, ...), which details.sql
        # reads through the views' table macros: DuckDB joins and ranks the slice's alone
        with registered(con, "_chosen", frame.slice(start, details_rows), rows_of="query_id"):
            part = pl.from_arrow(
                within_publish_memory(
                    con,
                    config,
                    lambda: con.sql(sql("details"), params=[scripted]).to_arrow_reader(STREAM_ROWS).read_all(),
                )
            )
            assert isinstance(part, pl.DataFrame)
            parts.append(owned(part))
    items = pl.concat(parts)
    del parts
    if items.height < frame.height:  # cannot happen through the stages; say so rather than drop silently
        refused[MISSING_ROWS] += frame.height - items.height
    order = {r: i for i, r in enumerate(REASONS)}
    return items, dict(sorted(refused.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
