"""Custom Great Expectations (1.x) for questions: row-wise checks the built-in ones cannot express.

* ``expect_query_to_mention_arguments`` (column pair: question text, mentions): the question
  mentions every argument of its call as the value's kind requires (``biocurate.mentions``,
  rules in ``catalog/mentions.yaml``): identifiers verbatim, a species by any of its names, a
  query string by the entities in it, codes in words.
* ``expect_query_to_read_naturally`` (column: question text): no query syntax, machine names,
  API words, lower-case sentence starts or template residue (``biocurate.naturalness``).

Each is a map metric provider (the row-wise condition, pandas engine) plus an expectation that
uses it. Importing this module registers them with GX, so it must be imported before a suite
holding them is built or loaded (GX silently drops unknown expectation types from a loaded
suite); ``biocurate.gx.GXRunner`` imports it when it starts. The plain functions
``mentions.mentioned``/``missing_mentions`` and ``naturalness.unnatural``/``problems`` hold the
logic; the metrics apply them and ``biocurate.quality`` calls them again on failing rows to say
exactly what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)
from great_expectations.render.renderer_configuration import RendererConfiguration, RendererValueType

from biocurate.mentions import mentioned
from biocurate.naturalness import unnatural


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


class ColumnPairQueryMentionsArguments(ColumnPairMapMetricProvider):
    """Row-wise: column_A (text) meets every mention requirement in column_B."""

    condition_metric_name = "column_pair_values.query_mentions_arguments"
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_A",
        "column_B",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )
    condition_value_keys = ()

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs) -> pd.Series:
        return pd.Series(mentioned(column_A, column_B), index=column_A.index, dtype=bool)


class ColumnValuesReadNaturally(ColumnMapMetricProvider):
    """Row-wise: the text breaks no naturalness rule (catalog names and API words as given)."""

    condition_metric_name = "column_values.reads_naturally"
    condition_value_keys = ("code_names", "api_words", "jargon")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, code_names=(), api_words=(), jargon=(), **kwargs) -> pd.Series:
        return ~unnatural(column, as_list(code_names), [*as_list(api_words), *as_list(jargon)])


class ExpectQueryToMentionArguments(ColumnPairMapExpectation):
    """Every mention requirement listed in column_B (label, pattern, absent) holds for column_A."""

    # Without this default GX fails with 'Unrecognized value of ignore_row_if ("None")'.
    ignore_row_if: str = "either_value_is_missing"
    map_metric = "column_pair_values.query_mentions_arguments"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    args_keys = ("column_A", "column_B")

    @classmethod
    def _prescriptive_template(cls, renderer_configuration: RendererConfiguration) -> RendererConfiguration:
        renderer_configuration.add_param(name="column_A", param_type=RendererValueType.STRING)
        renderer_configuration.add_param(name="column_B", param_type=RendererValueType.STRING)
        renderer_configuration.template_str = (
            "$column_A must mention every argument of its call as $column_B requires (catalog/mentions.yaml)."
        )
        return renderer_configuration


class ExpectQueryToReadNaturally(ColumnMapExpectation):
    """The question in ``column`` reads like a biologist's: no query syntax, machine names or
    API words (``code_names``, ``api_words``, ``jargon``), no lower-case sentence start, no
    template residue."""

    code_names: list[str] = []
    api_words: list[str] = []
    jargon: list[str] = []
    map_metric = "column_values.reads_naturally"
    success_keys = ("column", "mostly", "code_names", "api_words", "jargon")
    args_keys = ("column",)

    @classmethod
    def _prescriptive_template(cls, renderer_configuration: RendererConfiguration) -> RendererConfiguration:
        renderer_configuration.add_param(name="column", param_type=RendererValueType.STRING)
        renderer_configuration.template_str = (
            "$column must read like a biologist's question: no query syntax, "
            "machine names, API words or template residue."
        )
        return renderer_configuration
