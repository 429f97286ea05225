"""Custom Great Expectations (1.x) for questions: row-wise checks the built-in ones cannot express.

* ``expect_query_to_contain_identifiers`` (column pair: question text, identifiers): every
  identifier from the call's arguments appears verbatim in the question.
* ``expect_query_to_not_leak_api`` (column pair: question text, API terms): the question names
  no function, code-like parameter name, URL or API jargon.

Each is a ``ColumnPairMapMetricProvider`` (the row-wise condition, pandas engine) plus a
``ColumnPairMapExpectation`` that uses it. Importing this module registers both with GX, so it
must be imported before a suite holding them is built or loaded (GX silently drops unknown
expectation types from a loaded suite); ``biocurate.gx.GXRunner`` imports it when it starts. The plain functions ``missing_identifiers`` and
``leaked_terms`` hold the logic; the metrics apply them and ``biocurate.quality`` calls them
again on failing rows to say exactly what was missing or leaked.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, ClassVar, Iterable

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnPairMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnPairMapMetricProvider,
    column_pair_condition_partial,
)
from great_expectations.render.renderer_configuration import RendererConfiguration, RendererValueType

# A URL or a bare host name: questions are asked by people, not by HTTP clients. URL_FOUND
# spells out what was found (for the reason); the search itself uses the cheaper form.
URL_FOUND = re.compile(r"https?://\S*|\bwww\.\S*|\b[\w-]+(?:\.[\w-]+)*\.(?:org|gov|com|net|edu|io)\b", re.I)
URL_SEARCH = r"https?://|\bwww\.|\w\.(?:org|gov|com|net|edu|io)\b"


def as_list(value: Any) -> list[str]:
    """A list of strings from a list, a JSON list, a single string or a missing value."""
    if isinstance(value, (list, tuple)):
        return [v if isinstance(v, str) else str(v) for v in value]
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return [str(v) for v in json.loads(text)]
            except ValueError:
                pass
        return [value] if text else []
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


def missing_identifiers(text: str, identifiers: Any) -> list[str]:
    """The identifiers that do not appear verbatim (case-sensitive) in the text."""
    return [i for i in as_list(identifiers) if i and i not in text]


@lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern:
    # Whole words, case-insensitive; "_" counts as part of a word (so "so_term" never matches "so").
    return re.compile(rf"(?<![\w]){re.escape(term)}(?![\w])", re.I)


@lru_cache(maxsize=64)
def leak_regex(jargon: tuple[str, ...]) -> str:
    """URLs or jargon words (whole words, any case), as a regex pandas can run vectorised:
    no look-arounds, flags inline (pandas then uses pyarrow's RE2 on string columns)."""
    words = "|".join(re.escape(w) for w in sorted(jargon, key=len, reverse=True) if w)
    return "(?i)" + URL_SEARCH + (rf"|\b(?:{words})\b" if words else "")


def leaked_terms(text: str, terms: Any, jargon: Iterable[str] = ()) -> list[str]:
    """What of the API the text gives away, as written and in order: URLs, jargon words and the
    given terms (whole words, any case)."""
    found = [(m.start(), m.group(0)) for m in URL_FOUND.finditer(text)]
    lower = text.lower()
    for term in [*jargon, *as_list(terms)]:
        if term and term.lower() in lower:
            found += [(m.start(), m.group(0)) for m in _term_pattern(term).finditer(text)]
    return [word for _, word in sorted(set(found))]


def leaks(texts: pd.Series, terms: pd.Series, jargon: Iterable[str] = ()) -> pd.Series:
    """Row-wise: does the text leak anything (vectorised URL/jargon search, then the row's terms)."""
    hits = texts.astype(str).str.contains(leak_regex(tuple(jargon)), regex=True).to_numpy()
    out = []
    for hit, text, row_terms in zip(hits, texts, terms):
        if not hit:
            lower = str(text).lower()
            hit = any(t and t.lower() in lower and _term_pattern(t).search(text) for t in as_list(row_terms))
        out.append(bool(hit))
    return pd.Series(out, index=texts.index, dtype=bool)


class ColumnPairQueryContainsIdentifiers(ColumnPairMapMetricProvider):
    """Row-wise: column_A (text) contains every identifier in column_B (list or JSON list)."""

    condition_metric_name = "column_pair_values.query_contains_identifiers"
    condition_domain_keys = ("batch_id", "table", "column_A", "column_B", "row_condition",
                             "condition_parser", "ignore_row_if")
    condition_value_keys = ()

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs) -> pd.Series:
        return pd.Series([not missing_identifiers(str(text), ids) for text, ids in zip(column_A, column_B)],
                         index=column_A.index, dtype=bool)


class ColumnPairQueryLeaksNothing(ColumnPairMapMetricProvider):
    """Row-wise: column_A (text) holds no URL, no term of column_B (list or JSON list) and no jargon."""

    condition_metric_name = "column_pair_values.query_leaks_no_api"
    condition_domain_keys = ("batch_id", "table", "column_A", "column_B", "row_condition",
                             "condition_parser", "ignore_row_if")
    condition_value_keys = ("jargon",)

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, jargon=(), **kwargs) -> pd.Series:
        return ~leaks(column_A, column_B, tuple(jargon or ()))


class _QueryPairExpectation(ColumnPairMapExpectation):
    # Without this default GX fails with 'Unrecognized value of ignore_row_if ("None")'.
    ignore_row_if: str = "either_value_is_missing"
    template: ClassVar[str] = ""

    @classmethod
    def _prescriptive_template(cls, renderer_configuration: RendererConfiguration) -> RendererConfiguration:
        renderer_configuration.add_param(name="column_A", param_type=RendererValueType.STRING)
        renderer_configuration.add_param(name="column_B", param_type=RendererValueType.STRING)
        renderer_configuration.template_str = cls.template
        return renderer_configuration


class ExpectQueryToContainIdentifiers(_QueryPairExpectation):
    """Every identifier listed in column_B appears verbatim in the question in column_A."""

    map_metric = "column_pair_values.query_contains_identifiers"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys = ("column_A", "column_B")
    template: ClassVar[str] = "Every identifier in $column_B must appear verbatim in $column_A."


class ExpectQueryToNotLeakApi(_QueryPairExpectation):
    """The question in column_A names no URL, no term listed in column_B and no jargon word."""

    jargon: list[str] = []
    map_metric = "column_pair_values.query_leaks_no_api"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly", "jargon")
    args_keys = ("column_A", "column_B")
    template: ClassVar[str] = ("$column_A must not name a URL, API jargon or any term in $column_B "
                               "(function and parameter names).")
