"""The quality stage's frames (``biocurate.quality`` runs the suites on them), a chunk at a time.

The stage keeps, for every question it checks, only ``pending``'s few columns (ids, kind, flags,
and what the balance counts) and the duplicate search's keys (``near_dup.question_keys``: no
text); everything a suite reads is built for one chunk of questions at a time (``chunk_frame``,
from the store by id) and dropped when the chunk is checked, so its memory does not grow with the
number of questions. Earlier survivors (the duplicate search's reference) are read the same way
(``reference_ids``, ``reference_keys``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import duckdb
import pandas as pd
import polars as pl

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.mentions import MentionRules, MentionSet
from biocurate.near_dup import KEYED_COLUMNS, candidate_batches, find_duplicates, question_keys
from biocurate.set_quality import add_set_facts, key_words, set_identifiers
from biocurate.store import past_the_cap, registered, release


class ArgumentsCheck:
    """A call's arguments against its function's JSON Schema (``Tool.validation_schema``): the
    first error (by path) as jsonschema gives it, or None.

    Most calls are valid, and jsonschema is slow at saying so (the stage's largest cost at 100,000
    calls), so validity is settled first from parts that calls share: an object schema holds
    when each argument's value holds for its property's schema and the rest of the schema (the
    properties as ``true``) holds for the whole; both verdicts are kept (a bounded number of
    values; the rest, by the argument names alone, when it looks at nothing else). jsonschema
    lists the errors only of a call that fails. Schemas with references or keywords that
    depend on the properties' verdicts (``unevaluatedProperties``) are checked whole."""

    KEPT = 65_536  # value verdicts kept per function (then forgotten at once)
    # Keywords whose verdict depends only on an object's names (``properties`` all ``true``).
    BY_NAMES = frozenset({"type", "properties", "required", "additionalProperties", "anyOf"})

    def __init__(self, schema: dict):
        from jsonschema import Draft202012Validator

        self.whole = Draft202012Validator(schema)
        props = schema.get("properties")
        text = json.dumps(schema)
        self.parts: dict[str, Any] | None = None
        self.rest, self.by_names = self.whole, False
        if isinstance(props, dict) and '"$' not in text and "unevaluated" not in text:  # no $ref, $defs...
            checker = Draft202012Validator.TYPE_CHECKER
            self.parts = {name: _TypesOnly.of(sub, checker) or Draft202012Validator(sub) for name, sub in props.items()}
            shape = {**schema, "properties": dict.fromkeys(props, True)}
            self.rest = Draft202012Validator(shape)
            self.by_names = (
                set(shape) <= self.BY_NAMES
                and shape.get("type") == "object"
                and isinstance(shape.get("additionalProperties", True), bool)
                and all(isinstance(a, dict) and set(a) <= {"required"} for a in shape.get("anyOf", []))
            )
        self.values: dict[tuple[str, str], bool] = {}
        self.names: dict[tuple[str, ...], bool] = {}

    def error(self, args: Any) -> str | None:
        if self.parts is not None and self._valid(args):
            return None
        errors = sorted(self.whole.iter_errors(args), key=lambda e: list(e.path))
        if not errors:
            return None
        where = ".".join(str(p) for p in errors[0].path) or "(arguments)"
        return f"parameter {where}: {errors[0].message}"

    def _valid(self, args: Any) -> bool:
        parts = self.parts or {}
        if not isinstance(args, dict):
            return self.rest.is_valid(args)
        names = tuple(args)
        if self.by_names:
            if names not in self.names:
                if len(self.names) >= self.KEPT:
                    self.names.clear()
                self.names[names] = self.rest.is_valid(args)
            if not self.names[names]:
                return False
        elif not self.rest.is_valid(args):
            return False
        for name, value in args.items():
            part = parts.get(name)
            if part is None:
                continue
            if isinstance(part, _TypesOnly):  # a type check: cheaper than keeping its verdict
                if not part.is_valid(value):
                    return False
                continue
            key = (name, json.dumps(value, sort_keys=True))
            verdict = self.values.get(key)
            if verdict is None:
                if len(self.values) >= self.KEPT:
                    self.values.clear()
                verdict = self.values[key] = part.is_valid(value)
            if not verdict:
                return False
        return True


class _TypesOnly:
    """A property's schema that says only which types its value may have (``{"type": ...}``, or
    ``anyOf`` such branches; annotations aside), or nothing at all: its verdict by jsonschema's own
    type checker, without a validator (most catalog identifiers are a string or a number, and each
    value is new: at 100k calls, checking them took 4 s of the quality stage)."""

    ANNOTATIONS = frozenset({"description", "title", "default", "examples"})

    def __init__(self, types: tuple[str, ...] | None, checker: Any):
        self.types, self.checker = types, checker  # types None: any value

    @classmethod
    def of(cls, schema: Any, checker: Any) -> _TypesOnly | None:
        if not isinstance(schema, dict):
            return None
        branches = schema.get("anyOf") if set(schema) - cls.ANNOTATIONS == {"anyOf"} else [schema]
        if not isinstance(branches, list) or not branches:
            return None
        types: list[str] = []
        for branch in branches:
            keys = set(branch) - cls.ANNOTATIONS if isinstance(branch, dict) else None
            if keys == set() and branch is schema:
                return cls(None, checker)
            if keys != {"type"}:
                return None
            named = branch["type"]
            named = [named] if isinstance(named, str) else named
            if not isinstance(named, list) or not named or not all(cls._known(t, checker) for t in named):
                return None
            types += named
        return cls(tuple(dict.fromkeys(types)), checker)

    @staticmethod
    def _known(name: Any, checker: Any) -> bool:
        from jsonschema.exceptions import UndefinedTypeCheck

        try:
            checker.is_type(None, name)
            return True
        except (UndefinedTypeCheck, TypeError):  # not a type jsonschema knows: the validator says why
            return False

    def is_valid(self, value: Any) -> bool:
        return self.types is None or any(self.checker.is_type(value, t) for t in self.types)


class CallFacts:
    """Per-call facts (schema check, mention requirements, key words), computed once per distinct
    call of a chunk (``new_chunk`` forgets them: a call's questions are checked together)."""

    def __init__(self, catalog: Catalog, rules: MentionRules):
        self.catalog = catalog
        self.rules = rules
        self._validators: dict[str, ArgumentsCheck] = {}
        self._cache: dict[tuple[str, str], tuple] = {}
        self._words: dict[tuple[str, str], list[str]] = {}

    def new_chunk(self) -> None:
        self._cache.clear()
        self._words.clear()

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
            self._validators[function] = ArgumentsCheck(tool.validation_schema())
        error = self._validators[function].error(args)
        mentions = self.rules.mentions(tool, args) if isinstance(args, dict) else ()
        key = hashlib.blake2b(f"{function}\x1f{arguments}".encode(), digest_size=8).hexdigest()
        rows = MentionSet((m.row() for m in mentions), key)
        return True, error, rows, key_words(mentions)

    def identifiers(self, function: str | None, arguments: str | None) -> list[str]:
        """The call's key words alone (no schema check): an earlier survivor's identifiers."""
        if not isinstance(function, str) or not isinstance(arguments, str):
            return []
        key = (function, arguments)
        if key not in self._words:
            tool = self.catalog.tools.get(function)
            try:
                args = json.loads(arguments)
            except ValueError:
                args = None
            self._words[key] = key_words(self.rules.mentions(tool, args)) if tool and isinstance(args, dict) else []
        return self._words[key]


def _polars(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> pl.DataFrame:
    return con.sql(sql, params=params).pl()


def pending(con: duckdb.DuckDBPyConnection, qc_hash: str) -> pl.DataFrame:
    """Questions not yet checked under this QC config, in the order they are checked: the columns
    the stage keeps for all of them. Questions replaced by a newer version
    (``qc_replaced_queries``) are marked superseded. A call's questions are next to each other, so
    a chunk works out each call's facts once (``CallFacts``): by id alone, a synthesis batch's
    questions spread each call over two chunks, and at 100k calls the stage took 58.6 -> 54.0 s
    once they were together, with the same results."""
    return _polars(
        con,
        """
        select x.query_id as item_id, x.call_id, x.kind, x.generator = 'human_edit' as human_edit,
               x.query_id in (select query_id from qc_replaced_queries) as superseded,
               x.database, x.category, x.function
        from query_context x
        where not exists (select 1 from qc_results k where k.item_id = x.query_id and k.qc_config_hash = ?)
        order by x.created_at, x.call_id, x.query_id
        """,
        [qc_hash],
    )


def _by_ids(con: duckdb.DuckDBPyConnection, ids: pl.DataFrame, sql: str, with_rows: bool = False) -> pd.DataFrame:
    """``sql`` over the registered ``_qc_ids`` (item_id, pos: the rows' order); ``with_rows``: and
    the temporary views ``_qc_ids_queries``, ``_qc_ids_observations``, ... of its questions' rows
    (``store.registered``)."""
    frame = ids.select("item_id", pl.int_range(pl.len()).alias("pos"))
    with registered(con, "_qc_ids", frame, rows_of="item_id" if with_rows else None):
        return past_the_cap(con, lambda: con.execute(sql).df())


def chunk_frame(
    con: duckdb.DuckDBPyConnection, ids: pl.DataFrame, catalog: Catalog, rules: MentionRules, calls: CallFacts
) -> pd.DataFrame:
    """The columns the row suites look at, for the questions of ``ids`` (a slice of ``pending``, in
    its order): call, observation, latest judgment and the facts derived from them."""
    frame = _by_ids(
        con,
        ids,
        """
        select x.query_id as item_id, x.call_id, x.text, x.created_at, x.generator,
               x.function, x.arguments::varchar as arguments, x.database, x.category, x.kind,
               x.observation, r.outcome, j.verdict, j.score
        from _qc_ids i
        join query_context_of('_qc_ids_queries', observed := '_qc_ids_observations') x on x.query_id = i.item_id
        left join api_responses r on r.response_id = x.response_id
        left join latest_judgments_of('_qc_ids_judgments') j on j.query_id = x.query_id
        order by i.pos
        """,
        with_rows=True,  # the views' joins and ranking over the chunk's rows alone
    )
    superseded = dict(zip(ids["item_id"], ids["superseded"], strict=True))
    frame["superseded"] = frame["item_id"].map(superseded).astype(bool)
    if frame.empty:
        return frame
    calls.new_chunk()
    # tolist: iterating a column of pandas' Arrow strings is slow, value by value
    pairs = zip(frame["function"].tolist(), frame["arguments"].tolist(), strict=True)
    facts = [calls.facts(f, a) for f, a in pairs]
    frame["function_known"] = [f[0] for f in facts]
    frame["call_schema_error"] = pd.Series([f[1] for f in facts], index=frame.index, dtype=object)
    frame["mentions"] = pd.Series([f[2] for f in facts], index=frame.index, dtype=object)
    frame["identifiers"] = pd.Series([f[3] for f in facts], index=frame.index, dtype=object)
    frame["outcome"] = frame["outcome"].astype(object)
    add_set_facts(con, frame, catalog, rules)
    frame["words"] = frame["text"].str.split().str.len()
    frame["text_chars"] = frame["text"].str.len()
    # a set question's row checks its longest step observation (biocurate.set_quality)
    frame["observation"] = frame["set_observation"].where(frame["set_observation"].notna(), frame["observation"])
    frame["observation_chars"] = frame["observation"].str.len()
    frame["outcome"] = frame["outcome"].fillna("missing")
    frame["verdict"] = frame["verdict"].fillna("missing")
    frame["score"] = frame["score"].astype("float64")  # missing: verdict_present fails, the score checks skip it
    return frame


def reference_ids(con: duckdb.DuckDBPyConnection, qc_hash: str) -> pl.DataFrame:
    """Questions that already survived under this QC config (and are not replaced by a newer
    version): the duplicate search's reference, and what the balance counts of them."""
    return _polars(
        con,
        """
        with checked as (
            select item_id, bool_or(not passed and severity = 'blocking') as blocked
            from qc_results where qc_config_hash = ? and item_kind = 'query' group by item_id
        )
        select q.query_id as item_id, q.call_id, coalesce(s.kind, 'single') as kind,
               c.database, c.category, c.function
        from checked k
        join queries q on q.query_id = k.item_id
        left join candidate_calls c using (call_id)
        left join call_sets s on s.set_id = q.call_id
        where (c.call_id is not null or s.set_id is not null) and not k.blocked
          and q.query_id not in (select query_id from qc_replaced_queries)
        order by q.created_at, q.query_id
        """,
        [qc_hash],
    )


def reference_keys(
    con: duckdb.DuckDBPyConnection, ids: pl.DataFrame, catalog: Catalog, rules: MentionRules, calls: CallFacts
) -> pl.DataFrame:
    """``question_keys`` of the earlier survivors ``ids`` (a slice of ``reference_ids``), with
    item_id, call_id and kind."""
    frame = _by_ids(
        con,
        ids,
        """
        select q.query_id as item_id, q.text, c.function, c.arguments::varchar as arguments
        from _qc_ids i
        join queries q on q.query_id = i.item_id
        left join candidate_calls c using (call_id)
        order by i.pos
        """,
    )
    meta = ids.join(pl.from_pandas(frame[["item_id"]]), on="item_id", how="semi")
    kinds, call_ids = meta["kind"].to_list(), meta["call_id"].to_list()
    sets = sorted({c for c, k in zip(call_ids, kinds, strict=True) if k != "single"})
    by_set = set_identifiers(con, sets, catalog, rules) if sets else {}
    calls.new_chunk()
    identifiers = [
        by_set.get(c, []) if k != "single" else calls.identifiers(f, a)
        for f, a, c, k in zip(frame["function"].tolist(), frame["arguments"].tolist(), call_ids, kinds, strict=True)
    ]
    keys = question_keys(frame["text"].tolist(), identifiers, kinds, call_ids)
    return pl.concat([meta.select("item_id", "call_id", "kind"), keys], how="horizontal")


def balance_frame(counts: dict[str, Counter], total: int, catalog: Catalog) -> pd.DataFrame:
    """One row per database, category and tool: its surviving questions and their share
    (``counts``: per column database, category, function, the survivors' values)."""
    rows = []
    for dimension, column, values in (
        ("database", "database", sorted({t.database for t in catalog})),
        ("category", "category", sorted({t.category for t in catalog})),
        ("tool", "function", sorted(t.name for t in catalog)),
    ):
        found = {k: v for k, v in counts[column].items() if k is not None and v} if total else {}
        for value in sorted(set(values) | set(found)):
            items = int(found.get(value, 0))
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


def count_values(counts: dict[str, Counter], rows: pl.DataFrame) -> None:
    """Add ``rows``' database, category and function values to ``counts``."""
    for column in ("database", "category", "function"):
        counts[column].update(rows[column].to_list())


# --- the duplicate search -------------------------------------------------------------------

DUPLICATE_COLUMNS = ("exact_duplicate_of", "near_duplicate_in_call_of", "near_duplicate_of", "similarity")


def find_dataset_duplicates(
    con: duckdb.DuckDBPyConnection, parts: list[pl.DataFrame], config: Config, batch_rows: int
) -> pl.DataFrame:
    """The flagged questions among the candidates, frames ``parts`` (earlier survivors and this
    run's questions, with ``near_dup.question_keys``, ``rank`` and ``reference``): item_id,
    DUPLICATE_COLUMNS and ``duplicate_text`` (the text of the question it repeats). ``parts`` is
    emptied once they are sorted together, so that the candidates are held once during the
    search (at 100k calls, 400,000 questions' keys).

    Priority: questions that already survived, then this run's questions that fail no other
    blocking check (reviewers' edits before generated questions), then the rest; within each,
    by id. Not by when a question was written: that is an accident of batching (insert batches,
    Dask slices of whole functions) and of history (a run killed mid-synthesis and resumed), and a
    resumed or distributed rebuild must keep the same questions as an undisturbed one. Questions
    that survived an earlier check keep their place through the first rank. Questions replaced
    by a reviewer's edit take no part (the caller leaves them out).

    Only questions linked by a shared key are compared (``near_dup.candidate_batches``): their
    texts are read a batch at a time, and each batch's result is the result over all questions.
    """
    candidates = pl.concat(parts).sort(["rank", "item_id"])
    parts.clear()
    found: list[pl.DataFrame] = []
    for rows in candidate_batches(candidates, batch_rows):
        batch = candidates[rows].select("item_id", "call_id", "kind", "reference", *KEYED_COLUMNS).to_pandas()
        con.register("_qc_dup_ids", batch[["item_id"]])
        try:
            texts = dict(
                con.execute(
                    "select query_id, text from queries where query_id in (select item_id from _qc_dup_ids)"
                ).fetchall()
            )
        finally:
            con.unregister("_qc_dup_ids")
        release(con)
        batch["text"] = batch["item_id"].map(texts)
        result = find_duplicates(
            batch, config.quality.near_duplicate_within_call, config.quality.near_duplicate_in_dataset
        )
        kept = (
            result["exact_duplicate_of"].fillna(result["near_duplicate_in_call_of"]).fillna(result["near_duplicate_of"])
        )
        result["duplicate_text"] = kept.map(texts)
        flagged = result[kept.notna()]
        found.append(
            pl.DataFrame(
                {
                    **{c: [v if isinstance(v, str) else None for v in flagged[c]] for c in _FOUND if c != "similarity"},
                    "similarity": flagged["similarity"].astype("float64").tolist(),
                },
                schema=_FOUND,
            )
        )
    return pl.concat(found) if found else pl.DataFrame(schema=_FOUND)


_FOUND = {
    "item_id": pl.String,
    **{c: pl.String for c in DUPLICATE_COLUMNS[:3]},
    "similarity": pl.Float64,
    "duplicate_text": pl.String,
}


def dataset_frame(ids: pl.DataFrame, found: pl.DataFrame) -> pd.DataFrame:
    """What the dataset suites see of the questions ``ids`` (a slice of ``pending``): item_id,
    call_id, kind and the duplicate columns (null when the question repeats nothing)."""
    frame = (
        ids.select("item_id", "call_id", "kind")
        .with_row_index("_pos")
        .join(found, on="item_id", how="left")
        .sort("_pos")
        .drop("_pos")
        .to_pandas()
    )
    for column in (*DUPLICATE_COLUMNS, "duplicate_text"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
