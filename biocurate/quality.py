"""The quality stage: which questions to check, what they are checked on, what is recorded.

The rules are Great Expectations suites (``expectations/*.json``, loaded and run by
``biocurate.gx``); this module builds the frames they validate and writes the verdicts. A
suite's ``level`` says what it looks at:

* ``row``: one row per question not yet checked under this QC configuration, with its call,
  observation and latest judgment (the ``query_context`` and ``latest_judgments`` views;
  suites calls, observations, queries, judgments);
* ``dataset``: what the rest of the dataset says about each question: exact and
  near-duplicate questions (``biocurate.near_dup``), computed after the row suites so that a
  question failing them never keeps a good twin out (columns item_id, call_id, kind and those
  of ``quality_frames.DUPLICATE_COLUMNS`` with ``duplicate_text``);
* ``balance``: one row per database, category and tool with its share of the survivors
  (recorded with item_kind ``dataset``; these describe the dataset and block no question).

``qc_results`` gets, under the QC config's hash: a ``checked`` row per question (suite
``qc``), a row per failing question and expectation (severity and the reason, with what
exactly was wrong), a row per dataset-level item and expectation (passed or not), and per run
a summary row per expectation (item_kind ``expectation``, item_id the kind of items it
checks). Passing question rows are not stored: at a hundred thousand questions they would be
millions of rows saying nothing. Survivors (the ``survivors`` view) are the checked questions
with no blocking failure; the reports over them are in ``biocurate.quality_report``. Each
run's validation results are rendered as Data Docs (HTML) into ``[quality] data_docs_dir``.
The stage's memory does not grow with the number of questions (``run_quality``; the frames,
a chunk at a time, are in ``biocurate.quality_frames``).
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.gx import GXRunner, SuiteCheck, catalog_value, load_suites, resolve_suite, severities
from biocurate.hashing import content_hash
from biocurate.mentions import rules_for
from biocurate.near_dup import keys_frame, question_key_columns
from biocurate.quality_frames import (
    CallFacts,
    balance_frame,
    chunk_frame,
    count_values,
    dataset_frame,
    find_dataset_duplicates,
    pending,
    reference_ids,
    reference_keys,
)
from biocurate.store import insert_new, memory_capped, release
from biocurate.workers import aside

# Bump when a check's meaning changes in code: every question is then checked again.
QC_RULES_VERSION = "qc-3"
# Questions validated at a time (with their observations): bounds the stage's memory.
CHUNK_ROWS = 20_000
# Questions from which a worker process makes the duplicate-search keys while the row suites run
# (below it, starting the worker, about a second, is not repaid). At 100k calls (400,000 questions)
# the stage alone took 58.6 s against 70.0 s (keys 8.7 -> 0.6 s), the same qc_results; the worker
# adds 40 to 60 MB to the stage's peak at every size from this one, 10k calls (40,000 questions)
# included, so the 100k/10k ratio of the bench's peaks stays within the memory target (x1.32).
KEYS_WORKER_MIN_QUESTIONS = 20_000
# DuckDB's memory while the stage reads chunks (the row suites and the duplicate search): it keeps
# the blocks each chunk's queries read until the store is released, as many as its limit allows,
# and the chunk frames need none of them afterwards. At 100k calls a chunk frame raised the
# process by 230 MB at the store's 1 GB, 139 MB so, in the same time.
READ_MEMORY = "128MB"
# Questions whose results are stored in one transaction (whole chunks): at 100k calls (400,000
# questions), 20 transactions took 10 s, most of it opening and closing the store between them;
# 4 of 100,000 raised the stage's peak to 847 MiB (the rows, their keys, DuckDB's insert), 8 of
# 50,000 to 790 MiB.
RESULTS_ROWS = 50_000


# --- settings -------------------------------------------------------------------------------


def qc_config_hash(config: Config, suites: list[dict]) -> str:
    """What decides a verdict: the rules version, [quality] settings, the suites, the mention
    rules and the catalog names a natural question never holds."""
    settings = config.quality.model_dump(mode="json", exclude={"data_docs_dir", "suites_dir"})
    return content_hash(
        QC_RULES_VERSION,
        settings,
        config.execute.observation_max_chars,
        [{k: v for k, v in s.items() if k != "file"} for s in suites],
        rules_for(config).version,
        catalog_value("code_names", config),
        length=16,
    )


# --- the stage -----------------------------------------------------------------------------


@dataclass
class QualitySummary:
    checked: int = 0
    survivors: int = 0
    failing: dict[str, int] = field(default_factory=dict)  # "suite.expectation" -> items
    warnings: dict[str, int] = field(default_factory=dict)  # same, for warning-only expectations
    data_docs: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> seconds


def _detail(spec: dict, row: dict) -> str | None:
    """The spec's ``detail`` format string filled from the failing row ("missing symbol 'BRCA1'
    verbatim", "query syntax field:value 'gene:TP53'")."""
    from biocurate.mentions import missing_mentions
    from biocurate.naturalness import describe, problems

    template = spec.get("detail")
    if not template:
        return None
    if "{missing}" in template:
        row["missing"] = "; ".join(missing_mentions(row["text"], row["mentions"]))
    if "{unnatural}" in template:
        kw = spec["kwargs"]
        words = [*(kw.get("api_words") or ()), *(kw.get("jargon") or ())]
        row["unnatural"] = describe(problems(row["text"], kw.get("code_names") or (), words))
    try:
        return template.format_map(row)
    except (KeyError, ValueError, TypeError, IndexError):
        return None


_SCHEMA = {
    "item_kind": pl.String,
    "item_id": pl.String,
    "suite": pl.String,
    "expectation": pl.String,
    "passed": pl.Boolean,
    "severity": pl.String,
    "reason": pl.String,
}


def _rows(
    frame: pd.DataFrame,
    kind: str,
    suite: dict,
    failing: dict[str, list[str]],
    severity: dict[str, str],
    config: Config,
    run_id: str,
) -> list[pl.DataFrame]:
    """qc_results rows of one suite: per expectation, the failing items with their reasons (for
    dataset-level items, few, the passing ones too) and a summary row (``_summary_rows``)."""
    items = _item_rows(frame, kind, resolve_suite(suite, config), failing, severity)
    failed = {name: len(dict.fromkeys(ids)) for name, ids in failing.items()}
    summaries = _summary_rows(kind, suite, failed, len(frame), severity, run_id)
    return [part for pair in zip(items, summaries, strict=True) for part in pair]


def _item_rows(
    frame: pd.DataFrame, kind: str, suite: dict, failing: dict[str, list[str]], severity: dict[str, str]
) -> list[pl.DataFrame]:
    """Per expectation of ``suite`` (resolved: ``gx.resolve_suite``), the rows of ``frame`` it fails
    with their reasons (for dataset-level items, the passing ones too); ``frame`` may be one chunk of
    the items checked."""
    out = []
    failing_rows = {i for names in failing.values() for i in names}
    by_id = (
        {r["item_id"]: r for r in frame[frame["item_id"].isin(failing_rows)].to_dict("records")} if failing_rows else {}
    )
    for spec in suite["expectations"]:
        name = spec["name"]
        reasons = {}
        for item_id in failing.get(name, []):
            detail = _detail(spec, dict(by_id[item_id]))
            reasons[item_id] = f"{spec['reason']} ({detail})" if detail else spec["reason"]
        ids = frame["item_id"].tolist() if kind == "dataset" else list(reasons)
        out.append(
            pl.DataFrame(
                {
                    "item_kind": [kind] * len(ids),
                    "item_id": ids,
                    "suite": suite["name"],
                    "expectation": name,
                    "passed": [i not in reasons for i in ids],
                    "severity": severity[name],
                    "reason": [reasons.get(i) for i in ids],
                },
                schema=_SCHEMA,
            )
        )
    return out


def _summary_rows(
    kind: str, suite: dict, failed: dict[str, int], total: int, severity: dict[str, str], run_id: str
) -> list[pl.DataFrame]:
    """Per expectation, its summary row: item_kind 'expectation', item_id the kind of items
    checked, how many of the ``total`` items failed (``failed``: per expectation)."""
    out = []
    for spec in suite["expectations"]:
        name = spec["name"]
        count = failed.get(name, 0)
        out.append(
            pl.DataFrame(
                {
                    "item_kind": ["expectation"],
                    "item_id": [kind],
                    "suite": suite["name"],
                    "expectation": name,
                    "passed": [not count],
                    "severity": severity[name],
                    "reason": [f"run {run_id}: {count} of {total} failed" if count else None],
                },
                schema=_SCHEMA,
            )
        )
    return out


def _checked_rows(item_ids: list[str]) -> pl.DataFrame:
    """One passing row per checked question: it was checked under this config (failures are
    separate rows), which is what the survivors view needs to know."""
    return pl.DataFrame(
        {
            "item_kind": ["query"] * len(item_ids),
            "item_id": item_ids,
            "suite": "qc",
            "expectation": "checked",
            "passed": True,
            "severity": "blocking",
            "reason": None,
        },
        schema=_SCHEMA,
    )


def _insert_results(con: duckdb.DuckDBPyConnection, parts: list[pl.DataFrame], qc_hash: str, run_id: str) -> int:
    """Insert qc_results. The key is a content hash of (kind, item, suite, expectation, QC
    config) and, for dataset and expectation rows, of the verdict (a changed balance is a new
    row); computed in DuckDB, as the rows of a large run number in the hundreds of thousands."""
    if not parts:
        return 0
    frame = pl.concat(parts).with_columns(pl.lit(qc_hash).alias("qc_config_hash"), pl.lit(run_id).alias("run_id"))
    con.register("_qc_incoming", frame)
    try:
        keyed = con.sql(
            """
            select substr(sha256(concat_ws(chr(31), 'qc', item_kind, item_id, suite, expectation, qc_config_hash,
                   case when item_kind in ('dataset', 'expectation') then coalesce(reason, 'passed') else '' end)),
                   1, 20) as qc_id, *
            from _qc_incoming
            """
        ).pl()
    finally:
        con.unregister("_qc_incoming")
    return insert_new(con, "qc_results", keyed)


def run_quality(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, chunk_rows: int = CHUNK_ROWS
) -> QualitySummary:
    """Check every question not yet checked under this QC configuration; record why any failed.

    Memory does not grow with the questions: they are checked ``chunk_rows`` at a time, each
    chunk built from the store (``quality_frames.chunk_frame``) and dropped once the row suites
    have seen it, keeping only its duplicate-search keys and failure rows; the duplicate search
    reads texts a batch of linked questions at a time (``find_dataset_duplicates``); the results
    are those of one validation of every question (``gx.SuiteCheck``). Every chunk's qc_results
    (with its ``checked`` rows) are written together once all its verdicts are known, so a run
    killed on the way leaves the rest unchecked for the next run to check."""
    clock = _Clock()
    rules = rules_for(config)
    rules.check(catalog)
    suites = load_suites(config.path(config.quality.suites_dir))
    severity = severities(config, suites)
    qc_hash = qc_config_hash(config, suites)
    todo = pending(con, qc_hash)
    summary = QualitySummary(checked=todo.height)
    summary.seconds["frame"] = clock.lap()
    docs_dir = config.path(config.quality.data_docs_dir)
    if todo.is_empty():
        if not (docs_dir / "index.html").exists():
            summary.data_docs = GXRunner(docs_dir).build_docs()
        summary.survivors = con.execute("select count(*) from survivors").fetchall()[0][0]
        return summary

    release(con)  # validating needs no store: others read and write meanwhile (reopened on use)
    gx = GXRunner(docs_dir)
    summary.seconds["gx context"] = clock.lap()
    # What the process holds by now (Great Expectations' modules: some 300,000 objects) is left
    # out of the garbage collector's full passes while the questions are checked: each would scan
    # it all again (some 15% of the stage's time at 10,000 calls).
    gc.freeze()
    reads = ExitStack()
    try:
        reads.enter_context(memory_capped(con, READ_MEMORY))  # until the duplicate search is done
        calls = CallFacts(catalog, rules)
        blocked = np.zeros(todo.height, dtype=bool)
        starts = range(0, todo.height, chunk_rows)
        chunk_rows_of = [todo.slice(start, chunk_rows) for start in starts]
        failures: list[list[pl.DataFrame]] = [[] for _ in starts]  # per chunk, its failure rows until stored
        final: list[pl.DataFrame] = []  # summary and balance rows, stored with the last chunk

        def check(checks: dict[str, SuiteCheck], frame: pd.DataFrame, k: int) -> None:
            at = dict(
                zip(chunk_rows_of[k]["item_id"].to_list(), range(starts[k], starts[k] + chunk_rows), strict=False)
            )
            for name, suite_check in checks.items():
                failing = suite_check.check(frame)
                for expectation, ids in failing.items():
                    if severity[expectation] == "blocking":
                        blocked[[at[i] for i in ids]] = True
                failures[k].extend(_item_rows(frame, "query", suite_check.suite, failing, severity))
                summary.seconds[f"suite {name}"] = summary.seconds.get(f"suite {name}", 0) + clock.lap()

        def finish(checks: dict[str, SuiteCheck]) -> None:
            for suite_check in checks.values():
                suite_check.finish()
                for name, count in suite_check.failed.items():
                    target = summary.failing if severity[name] == "blocking" else summary.warnings
                    target[f"{suite_check.suite['name']}.{name}"] = count
                final.extend(
                    _summary_rows("query", suite_check.suite, suite_check.failed, todo.height, severity, run_id)
                )

        # 1. row suites, a chunk at a time; keep each chunk's duplicate-search keys
        row_checks = {s["name"]: SuiteCheck(gx, s, config, severity, run_id) for s in suites if s["level"] == "row"}
        keys: list[pl.DataFrame] = []
        # A very large run's duplicate-search keys are made by a worker process while the suites run here.
        with aside(enabled=todo.height >= KEYS_WORKER_MIN_QUESTIONS) as keys_maker:
            for k, ids in enumerate(chunk_rows_of):
                frame = chunk_frame(con, ids, catalog, rules, calls)
                release(con)
                summary.seconds["frame"] += clock.lap()
                live = frame.loc[
                    ~frame["superseded"], ["item_id", "generator", "text", "kind", "call_id", "identifiers"]
                ]
                kinds, call_ids = live["kind"].tolist(), live["call_id"].tolist()
                keys_maker.start(
                    question_key_columns, (live["text"].tolist(), live["identifiers"].tolist(), kinds, call_ids)
                )
                check(row_checks, frame, k)
                del frame
                at = blocked[starts[k] : starts[k] + ids.height]
                failed = dict(zip(ids["item_id"].to_list(), at.tolist(), strict=True))
                rank = [
                    1 + 2 * failed[i] + (g != "human_edit")
                    for i, g in zip(live["item_id"].tolist(), live["generator"].tolist(), strict=True)
                ]
                keys.append(
                    pl.concat(
                        [
                            pl.DataFrame(
                                {"item_id": live["item_id"].tolist(), "call_id": call_ids, "kind": kinds},
                                schema={"item_id": pl.String, "call_id": pl.String, "kind": pl.String},
                            ),
                            keys_frame(keys_maker.result()),
                            pl.DataFrame(
                                {"rank": rank, "reference": [False] * len(rank)},
                                schema={"rank": pl.Int8, "reference": pl.Boolean},
                            ),
                        ],
                        how="horizontal",
                    )
                )
                del live
                summary.seconds["duplicate keys"] = summary.seconds.get("duplicate keys", 0) + clock.lap()
        finish(row_checks)

        # 2. the duplicate search, against earlier survivors that could be repeated
        candidates = pl.concat(keys)
        del keys
        reference = reference_ids(con, qc_hash)
        release(con)
        exact, sigs = candidates["exact_key"].unique().to_numpy(), candidates["sig_hash"].unique().to_numpy()
        earlier = []
        for start in range(0, reference.height, chunk_rows):
            part = reference_keys(con, reference.slice(start, chunk_rows), catalog, rules, calls)
            release(con)
            # only earlier questions with the same text or the same identifiers can be repeated
            part = part.filter(
                np.isin(part["exact_key"].to_numpy(), exact) | np.isin(part["sig_hash"].to_numpy(), sigs)
            )
            earlier.append(part.with_columns(rank=pl.lit(0, pl.Int8), reference=pl.lit(True)))
        keyed = [*earlier, candidates]
        del candidates, earlier
        found = find_dataset_duplicates(con, keyed, config, chunk_rows)  # empties keyed
        reads.close()
        summary.seconds["duplicate search"] = clock.lap()

        # 3. dataset suites, a chunk at a time; then the balance of all survivors
        dataset_checks = {
            s["name"]: SuiteCheck(gx, s, config, severity, run_id) for s in suites if s["level"] == "dataset"
        }
        for k, ids in enumerate(chunk_rows_of):
            check(dataset_checks, dataset_frame(ids, found), k)
        finish(dataset_checks)
        counts: dict[str, Counter] = {c: Counter() for c in ("database", "category", "function")}
        count_values(counts, reference)
        survivors = todo.filter(pl.Series(~blocked) & ~pl.col("superseded"))
        count_values(counts, survivors)
        balance = balance_frame(counts, reference.height + survivors.height, catalog)
        for suite in (s for s in suites if s["level"] == "balance"):
            failing = gx.validate(suite, balance, config, severity, run_id)
            for name, failed_ids in failing.items():
                target = summary.failing if severity[name] == "blocking" else summary.warnings
                target[f"{suite['name']}.{name}"] = len(failed_ids)
            final.extend(_rows(balance, "dataset", suite, failing, severity, config, run_id))
            summary.seconds[f"suite {suite['name']}"] = clock.lap()

        # 4. whole chunks' results together (the last with the run's summary and balance rows), in
        # transactions of RESULTS_ROWS questions or more: each opening of the store and its closing
        # (a checkpoint) cost more than its insert
        parts: list[pl.DataFrame] = []
        questions = 0
        for k, ids in enumerate(chunk_rows_of):
            parts += [*failures[k], _checked_rows(ids["item_id"].to_list())]
            failures[k] = []
            questions += ids.height
            if questions >= RESULTS_ROWS or k == len(starts) - 1:
                _insert_results(con, [*parts, *(final if k == len(starts) - 1 else [])], qc_hash, run_id)
                release(con)
                parts, questions = [], 0
        summary.seconds["store results"] = clock.lap()
        summary.data_docs = gx.build_docs()
        summary.seconds["data docs"] = clock.lap()
        summary.survivors = con.execute("select count(*) from survivors").fetchall()[0][0]
        return summary

    finally:
        reads.close()
        gc.unfreeze()


class _Clock:
    def __init__(self):
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        lap, self.last = now - self.last, now
        return round(lap, 3)
