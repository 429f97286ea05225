"""What the quality checks found, read from the views over ``qc_results``: the pass/fail table
per expectation (``qc_expectations``) and the most frequent failures with examples
(``qc_failures``), for `biocurate qc report` and the rebuild flow's Prefect artifact."""

from __future__ import annotations

import duckdb

from biocurate.config import Config
from biocurate.store import Store


def _dicts(result: duckdb.DuckDBPyConnection) -> list[dict]:
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def expectation_table(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Pass/fail counts per expectation under the latest QC configuration (the qc_expectations view)."""
    return _dicts(con.execute("select * from qc_expectations"))


def expectation_report(config: Config) -> list[dict]:
    """``expectation_table`` read from the configured store (for the flow's Prefect artifact)."""
    with Store(config.path(config.store.path)).open(read_only=True) as con:
        return expectation_table(con)


def top_rejections(con: duckdb.DuckDBPyConnection, limit: int = 10, examples: int = 3) -> list[dict]:
    """The most frequent failures under the latest QC configuration, each with example rows."""
    return _dicts(
        con.execute(
            """
        select suite, expectation, severity, items_failing,
               list({'item_id': item_id, 'reason': reason, 'text': text} order by example_rank) as examples
        from qc_failures
        where example_rank <= ?
        group by suite, expectation, severity, items_failing
        order by (severity = 'blocking') desc, items_failing desc, suite, expectation
        limit ?
        """,
            [examples, limit],
        )
    )
