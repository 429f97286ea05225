"""The quality stage: which questions to check, what they are checked on, what is recorded.

The rules are Great Expectations suites (``expectations/*.json``, loaded and run by
``biocurate.gx``); this module builds the frames they validate and writes the verdicts. A
suite's ``level`` says what it looks at:

* ``row``: one row per question not yet checked under this QC configuration, with its call,
  observation and latest judgment (the ``query_context`` and ``latest_judgments`` views;
  suites calls, observations, queries, judgments);
* ``dataset``: the same rows plus what the rest of the dataset says about them: exact and
  near-duplicate questions (``biocurate.near_dup``), computed after the row suites so that a
  question failing them never keeps a good twin out;
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
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.gx import GXRunner, catalog_value, load_suites, resolve_kwargs, severities
from biocurate.hashing import content_hash
from biocurate.mentions import MentionRules, MentionSet, mention_rules
from biocurate.near_dup import exact_key, find_duplicates, signature, tokens
from biocurate.set_quality import add_set_facts, key_words, set_identifiers
from biocurate.store import insert_new, observation_texts, release

# Bump when a check's meaning changes in code: every question is then checked again.
QC_RULES_VERSION = "qc-3"
# Questions validated at a time (with their observations): bounds the stage's memory.
CHUNK_ROWS = 20_000


# --- settings -------------------------------------------------------------------------------


def rules_for(config: Config) -> MentionRules:
    """The mention rules of the configured catalog and seeds (catalog/mentions.yaml)."""
    return mention_rules(config.path(config.sample.catalog_dir), config.path(config.sample.seeds_dir))


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


# --- frames --------------------------------------------------------------------------------


class _Calls:
    """Per-call facts (schema check, mention requirements, key words), computed once per distinct call."""

    def __init__(self, catalog: Catalog, rules: MentionRules):
        import jsonschema

        self.catalog = catalog
        self.rules = rules
        self._validators: dict[str, Any] = {}
        self._cache: dict[tuple[str, str], tuple] = {}
        self._jsonschema = jsonschema

    def facts(self, function: str, arguments: str) -> tuple[bool, str | None, tuple, list[str]]:
        key = (function, arguments)
        if key not in self._cache:
            self._cache[key] = self._facts(function, arguments)
        return self._cache[key]

    def _facts(self, function: str, arguments: str) -> tuple[bool, str | None, tuple, list[str]]:
        """(function known, schema error, mention rows, key words)."""
        tool = self.catalog.tools.get(function)
        if tool is None:
            return False, None, (), []
        try:
            args = json.loads(arguments)
        except ValueError as exc:
            return True, f"arguments are not valid JSON: {exc}", (), []
        if function not in self._validators:
            self._validators[function] = self._jsonschema.Draft202012Validator(tool.validation_schema())
        errors = sorted(self._validators[function].iter_errors(args), key=lambda e: list(e.path))
        error = None
        if errors:
            where = ".".join(str(p) for p in errors[0].path) or "(arguments)"
            error = f"parameter {where}: {errors[0].message}"
        mentions = self.rules.mentions(tool, args) if isinstance(args, dict) else ()
        key = hashlib.blake2b(f"{function}\x1f{arguments}".encode(), digest_size=8).hexdigest()
        rows = MentionSet((m.row() for m in mentions), key)
        return True, error, rows, key_words(mentions)


def query_frame(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, qc_hash: str, config: Config, observations: bool = True
) -> pd.DataFrame:
    """Questions not yet checked under this QC config, with the columns the suites look at.
    Questions replaced by a newer version (``qc_replaced_queries``) are marked superseded.
    ``observations=False``: the observation's id instead of its text (``with_observations`` adds
    the text to a chunk of rows; at 2,000 characters each they are most of the frame)."""
    observation = "x.observation" if observations else "x.observation_id"
    frame = con.execute(
        f"""
        select x.query_id as item_id, x.call_id, x.text, x.created_at, x.generator,
               x.query_id in (select query_id from qc_replaced_queries) as superseded,
               x.function, x.arguments::varchar as arguments, x.database, x.category, x.kind,
               {observation}, r.outcome, j.verdict, j.score
        from query_context x
        left join api_responses r on r.response_id = x.response_id
        left join latest_judgments j on j.query_id = x.query_id
        where not exists (select 1 from qc_results k where k.item_id = x.query_id and k.qc_config_hash = ?)
        order by x.created_at, x.query_id
        """,
        [qc_hash],
    ).df()
    if frame.empty:
        return frame
    _add_call_facts(frame, _Calls(catalog, rules_for(config)))
    frame["outcome"] = frame["outcome"].astype(object)
    add_set_facts(con, frame, catalog, rules_for(config))
    frame["words"] = frame["text"].str.split().str.len()
    frame["text_chars"] = frame["text"].str.len()
    if observations:
        frame["observation"] = frame["set_observation"].where(frame["set_observation"].notna(), frame["observation"])
        frame["observation_chars"] = frame["observation"].str.len()
    frame["outcome"] = frame["outcome"].fillna("missing")
    frame["verdict"] = frame["verdict"].fillna("missing")
    frame["score"] = frame["score"].astype("float64")  # missing: verdict_present fails, the score checks skip it
    return frame


def with_observations(con: duckdb.DuckDBPyConnection, chunk: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``chunk`` (a slice of ``query_frame(..., observations=False)``) with the
    observation text and its length."""
    chunk = chunk.copy()
    texts = observation_texts(con, chunk["observation_id"])
    chunk["observation"] = chunk["observation_id"].map(texts).astype(object)
    # a set question's row checks its longest step observation (biocurate.set_quality)
    chunk["observation"] = chunk["set_observation"].where(chunk["set_observation"].notna(), chunk["observation"])
    chunk["observation_chars"] = chunk["observation"].str.len()
    return chunk


def _add_call_facts(frame: pd.DataFrame, calls: _Calls) -> None:
    facts = [calls.facts(f, a) for f, a in zip(frame["function"], frame["arguments"], strict=True)]
    frame["function_known"] = [f[0] for f in facts]
    frame["call_schema_error"] = pd.Series([f[1] for f in facts], index=frame.index, dtype=object)
    frame["mentions"] = pd.Series([f[2] for f in facts], index=frame.index, dtype=object)
    frame["identifiers"] = pd.Series([f[3] for f in facts], index=frame.index, dtype=object)


def reference_frame(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, qc_hash: str, rules: MentionRules
) -> pd.DataFrame:
    """Questions that already survived under this QC config (and are not replaced by a newer version)."""
    frame = con.execute(
        """
        with checked as (
            select item_id, bool_or(not passed and severity = 'blocking') as blocked
            from qc_results where qc_config_hash = ? and item_kind = 'query' group by item_id
        )
        select q.query_id as item_id, q.call_id, q.text, q.created_at, c.function,
               c.arguments::varchar as arguments, c.database, c.category, coalesce(s.kind, 'single') as kind
        from checked k
        join queries q on q.query_id = k.item_id
        left join candidate_calls c using (call_id)
        left join call_sets s on s.set_id = q.call_id
        where (c.call_id is not null or s.set_id is not null) and not k.blocked
          and q.query_id not in (select query_id from qc_replaced_queries)
        order by q.created_at, q.query_id
        """,
        [qc_hash],
    ).df()
    idents: dict[tuple[str, str], list[str]] = {}
    sets = frame.loc[frame["kind"] != "single", "call_id"].unique().tolist()
    by_set = set_identifiers(con, sets, catalog, rules) if sets else {}
    for function, arguments in zip(frame["function"], frame["arguments"], strict=True):
        if function is None or (isinstance(function, float) and function != function):
            continue
        if (function, arguments) not in idents:
            tool = catalog.tools.get(function)
            try:
                args = json.loads(arguments)
            except ValueError:
                args = None
            idents[function, arguments] = (
                key_words(rules.mentions(tool, args)) if tool and isinstance(args, dict) else []
            )
    keys = zip(frame["function"], frame["arguments"], frame["call_id"], frame["kind"], strict=True)
    frame["identifiers"] = pd.Series(
        [by_set.get(c, []) if k != "single" else idents[f, a] for f, a, c, k in keys], index=frame.index, dtype=object
    )
    return frame


def add_duplicate_columns(frame: pd.DataFrame, reference: pd.DataFrame, blocked: set[str], config: Config) -> None:
    """Exact and near-duplicate columns on ``frame`` (null when the question repeats nothing).

    Priority: questions that already survived, then this run's questions that fail no other
    blocking check (reviewers' edits before generated questions), then the rest; within each,
    by id. Not by when a question was written: that is an accident of batching (insert batches,
    Dask slices of whole functions) and of history (a run killed mid-synthesis and resumed), and a
    resumed or distributed rebuild must keep the same questions as an undisturbed one. Questions
    that survived an earlier check keep their place through the first rank. Questions replaced
    by a reviewer's edit take no part.
    """
    live = frame[~frame["superseded"]]
    if len(reference) > 4 * len(live):
        # A small run against a large store: only earlier questions with the same text or the
        # same identifiers can be repeated (the search never compares other pairs).
        keys = {exact_key(t) for t in live["text"]}
        sigs = {signature(tokens(t), i) for t, i in zip(live["text"], live["identifiers"], strict=True)}
        reference = reference[
            [
                exact_key(t) in keys or signature(tokens(t), i) in sigs
                for t, i in zip(reference["text"], reference["identifiers"], strict=True)
            ]
        ]
    rank = 1 + 2 * live["item_id"].isin(blocked).astype(int) + (live["generator"] != "human_edit").astype(int)
    candidates = pd.concat(
        [
            reference.assign(reference=True, rank=0),
            live.assign(reference=False, rank=rank),
        ],
        ignore_index=True,
    )
    candidates = candidates.sort_values(["rank", "item_id"], kind="stable")
    found = find_duplicates(
        candidates[["item_id", "call_id", "text", "identifiers", "reference", "kind"]],
        config.quality.near_duplicate_within_call,
        config.quality.near_duplicate_in_dataset,
    )
    found = found.set_index("item_id")
    texts = dict(zip(candidates["item_id"], candidates["text"], strict=True))
    for column in ("exact_duplicate_of", "near_duplicate_in_call_of", "near_duplicate_of", "similarity"):
        frame[column] = frame["item_id"].map(found[column]).astype(object).where(lambda s: s.notna(), None)
    kept = frame["exact_duplicate_of"].fillna(frame["near_duplicate_in_call_of"]).fillna(frame["near_duplicate_of"])
    frame["duplicate_text"] = kept.map(texts).astype(object).where(lambda s: s.notna(), None)


def balance_frame(survivors: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """One row per database, category and tool: its surviving questions and their share."""
    total = len(survivors)
    rows = []
    for dimension, column, values in (
        ("database", "database", sorted({t.database for t in catalog})),
        ("category", "category", sorted({t.category for t in catalog})),
        ("tool", "function", sorted(t.name for t in catalog)),
    ):
        counts = survivors[column].value_counts().to_dict() if total else {}
        for value in sorted(set(values) | set(counts)):
            items = int(counts.get(value, 0))
            rows.append(
                {
                    "item_id": f"{dimension}={value}",
                    "dimension": dimension,
                    "value": value,
                    "items": items,
                    "total": total,
                    "share": items / total if total else 0.0,
                }
            )
    frame = pd.DataFrame(rows)
    for dimension in ("database", "category", "tool"):
        frame[f"{dimension}_share"] = frame["share"].where(frame["dimension"] == dimension)
    frame["tool_items"] = frame["items"].where(frame["dimension"] == "tool")
    return frame


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
    items = _item_rows(frame, kind, suite, failing, severity, config)
    summaries = _summary_rows(kind, suite, failing, len(frame), severity, run_id)
    return [part for pair in zip(items, summaries, strict=True) for part in pair]


def _item_rows(
    frame: pd.DataFrame,
    kind: str,
    suite: dict,
    failing: dict[str, list[str]],
    severity: dict[str, str],
    config: Config,
) -> list[pl.DataFrame]:
    """Per expectation, the rows of ``frame`` it fails with their reasons (for dataset-level
    items, the passing ones too); ``frame`` may be one chunk of the items checked."""
    out = []
    failing_rows = {i for names in failing.values() for i in names}
    by_id = (
        {r["item_id"]: r for r in frame[frame["item_id"].isin(failing_rows)].to_dict("records")} if failing_rows else {}
    )
    for spec in suite["expectations"]:
        name = spec["name"]
        resolved = {**spec, "kwargs": resolve_kwargs(spec["kwargs"], config)}
        reasons = {}
        for item_id in failing.get(name, []):
            detail = _detail(resolved, dict(by_id[item_id]))
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
    kind: str, suite: dict, failing: dict[str, list[str]], total: int, severity: dict[str, str], run_id: str
) -> list[pl.DataFrame]:
    """Per expectation, its summary row: item_kind 'expectation', item_id the kind of items
    checked, how many of the ``total`` items failed."""
    out = []
    for spec in suite["expectations"]:
        name = spec["name"]
        failed = len(dict.fromkeys(failing.get(name, [])))
        out.append(
            pl.DataFrame(
                {
                    "item_kind": ["expectation"],
                    "item_id": [kind],
                    "suite": suite["name"],
                    "expectation": name,
                    "passed": [not failed],
                    "severity": severity[name],
                    "reason": [f"run {run_id}: {failed} of {total} failed" if failed else None],
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

    The question-level suites see ``chunk_rows`` questions at a time, each chunk with its
    observations (most of a question's bytes), so memory does not grow with them; the results
    are those of one validation of every question (``GXRunner.validate_chunks``)."""
    clock = _Clock()
    rules_for(config).check(catalog)
    suites = load_suites(config.path(config.quality.suites_dir))
    severity = severities(config, suites)
    qc_hash = qc_config_hash(config, suites)
    frame = query_frame(con, catalog, qc_hash, config, observations=False)
    summary = QualitySummary(checked=len(frame))
    summary.seconds["frame"] = clock.lap()
    docs_dir = config.path(config.quality.data_docs_dir)
    if frame.empty:
        if not (docs_dir / "index.html").exists():
            summary.data_docs = GXRunner(docs_dir).build_docs()
        summary.survivors = con.execute("select count(*) from survivors").fetchall()[0][0]
        return summary

    release(con)  # validating needs no store: others read and write meanwhile (reopened on use)
    gx = GXRunner(docs_dir)
    summary.seconds["gx context"] = clock.lap()
    parts: list[pl.DataFrame] = []
    blocked: set[str] = set()

    def record(suite: dict, data: pd.DataFrame, kind: str) -> None:
        failing = gx.validate(suite, data, config, severity, run_id)
        for name, ids in failing.items():
            target = summary.failing if severity[name] == "blocking" else summary.warnings
            target[f"{suite['name']}.{name}"] = len(ids)
            if severity[name] == "blocking" and kind == "query":
                blocked.update(ids)
        parts.extend(_rows(data, kind, suite, failing, severity, config, run_id))
        summary.seconds[f"suite {suite['name']}"] = clock.lap()

    def chunks() -> Iterator[pd.DataFrame]:
        for start in range(0, len(frame), chunk_rows):
            chunk = with_observations(con, frame.iloc[start : start + chunk_rows])
            release(con)
            yield chunk

    def record_chunks(suite: dict) -> None:
        def each(chunk: pd.DataFrame, failing: dict[str, list[str]]) -> None:
            parts.extend(_item_rows(chunk, "query", suite, failing, severity, config))

        failing = gx.validate_chunks(suite, chunks(), config, severity, run_id, each)
        for name, ids in failing.items():
            target = summary.failing if severity[name] == "blocking" else summary.warnings
            target[f"{suite['name']}.{name}"] = len(ids)
            if severity[name] == "blocking":
                blocked.update(ids)
        parts.extend(_summary_rows("query", suite, failing, len(frame), severity, run_id))
        summary.seconds[f"suite {suite['name']}"] = clock.lap()

    for suite in (s for s in suites if s["level"] == "row"):
        record_chunks(suite)
    reference = reference_frame(con, catalog, qc_hash, rules_for(config))
    add_duplicate_columns(frame, reference, blocked, config)
    summary.seconds["duplicate search"] = clock.lap()
    for suite in (s for s in suites if s["level"] == "dataset"):
        record_chunks(suite)
    survivors = pd.concat(
        [
            reference[["item_id", "database", "category", "function"]],
            frame.loc[
                ~frame["item_id"].isin(blocked) & ~frame["superseded"], ["item_id", "database", "category", "function"]
            ],
        ],
        ignore_index=True,
    )
    balance = balance_frame(survivors, catalog)
    for suite in (s for s in suites if s["level"] == "balance"):
        record(suite, balance, "dataset")
    parts.append(_checked_rows(frame["item_id"].tolist()))
    _insert_results(con, parts, qc_hash, run_id)
    release(con)
    summary.seconds["store results"] = clock.lap()
    summary.data_docs = gx.build_docs()
    summary.seconds["data docs"] = clock.lap()
    summary.survivors = con.execute("select count(*) from survivors").fetchall()[0][0]
    return summary


class _Clock:
    def __init__(self):
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        lap, self.last = now - self.last, now
        return round(lap, 3)
