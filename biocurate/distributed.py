"""Fan the execute and synthesize stages out to workers, with the store kept single-writer.

A worker never opens the DuckDB store: DuckDB allows one writing process per file, and a
store on one machine's disk is not reachable from a cluster anyway. Instead the writer (the
flow's own process) cuts the pending work into slices, and each slice carries exactly the rows
its stage reads. The worker loads them into a scratch in-memory DuckDB with the same schema,
runs the very same stage function there (``execute_calls`` or ``synthesize``), and hands back
the rows that the stage added. The writer inserts them with ``insert_new`` as each slice comes
back, so a crash loses at most the slices in flight and a re-run picks up the rest.

Because a worker sees the same rows the local stage would see, a distributed run writes the
same rows. Synthesis slices hold whole functions (the template generator rotates phrasings by
a call's rank among its function's calls). Rate limits stay honest: at most ``parallelism``
slices run at once and each gets that share of every host's and LLM endpoint's rate.

``fan_out`` is any callable that maps ``run_slice`` over an iterable of slices and yields the
results in order: ``local_fan_out`` here, or the Prefect/Dask one in ``flows/run.py``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import duckdb
import polars as pl

from biocurate.catalog import Catalog, load_catalog
from biocurate.config import Config
from biocurate.errors import ConfigError
from biocurate.execute import ExecuteSummary, execute_calls, pending_calls
from biocurate.store import PRIMARY_KEYS, insert_new, migrate
from biocurate.synthesis import (
    SynthesisSummary,
    current_versions,
    observed_calls_without_queries,
    synthesize,
    with_sets,
)

OUTPUTS = {"execute": ("api_responses", "observations"), "synthesize": ("queries", "llm_calls", "generation_failures")}


@dataclass
class Slice:
    """One unit of distributed work: a stage and the store rows it reads."""

    stage: str
    tables: dict[str, pl.DataFrame]
    calls: int


FanOut = Callable[[Iterable[Slice]], Iterator[dict]]


def parallelism(config: Config) -> int:
    """Slices in flight at once (the window), whatever the size of the cluster."""
    return config.runner.dask_workers * config.runner.dask_threads_per_worker


def worker_config(config: Config) -> Config:
    """The config a worker runs with: its share of every rate limit and concurrency cap."""
    share = parallelism(config)
    if share == 1:
        return config
    ex = config.execute
    hosts = {
        h: limit.model_copy(update={"max_concurrency": max(1, limit.max_concurrency // share)})
        for h, limit in ex.hosts.items()
    }
    llm = {
        name: cfg.model_copy(
            update={
                "requests_per_second": cfg.requests_per_second / share,
                "max_concurrency": max(1, math.ceil(cfg.max_concurrency / share)),
            }
        )
        for name, cfg in (("generator", config.synthesis.generator), ("judge", config.synthesis.judge))
    }
    return config.model_copy(
        update={
            "execute": ex.model_copy(update={"rate_safety": ex.rate_safety / share, "hosts": hosts}),
            "synthesis": config.synthesis.model_copy(update=llm),
        }
    )


def check_distributable(config: Config) -> None:
    if config.execute.transport == "record":
        raise ConfigError(
            '[runner] task_runner = "dask" cannot record: `record` rewrites the snapshot '
            "index from one process. Record with the default runner, then replay or go live."
        )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _select(con: duckdb.DuckDBPyConnection, sql: str, **frames: pl.DataFrame) -> pl.DataFrame:
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        return con.sql(sql).pl()
    finally:
        for name in frames:
            con.unregister(name)


def execute_slices(config: Config, con: duckdb.DuckDBPyConnection) -> tuple[list[Slice], int]:
    """Pending calls in slices of ``chunk_size``, and how many valid calls the store already answers."""
    todo = pending_calls(con, config)
    total_valid = con.execute("select count(*) from candidate_calls where valid").fetchall()[0][0]
    slices = []
    for chunk in _chunks(todo, config.runner.chunk_size):
        ids = pl.DataFrame({"call_id": [c[0] for c in chunk]})
        calls = _select(con, "select c.* from candidate_calls c join _ids using (call_id) order by call_id", _ids=ids)
        slices.append(Slice("execute", {"candidate_calls": calls}, len(chunk)))
    return slices, total_valid - len(todo)


def synthesize_slices(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog) -> Iterator[Slice]:
    """Functions with pending calls, grouped into slices of about ``chunk_size`` pending calls,
    each with every row ``synthesize`` reads for those functions."""
    gen = config.synthesis.generator
    todo = observed_calls_without_queries(con, gen.provider, gen.model, current_versions(config, catalog))
    pending = Counter(row[1] for row in todo)
    groups, current, size = [], [], 0
    for function, count in sorted(pending.items()):
        current.append(function)
        size += count
        if size >= config.runner.chunk_size:
            groups.append((current, size))
            current, size = [], 0
    if current:
        groups.append((current, size))
    for functions, size in groups:
        fns = pl.DataFrame({"function": functions})
        calls = _select(con, "select c.* from candidate_calls c join _fns using (function)", _fns=fns)
        ids = calls.select("call_id")
        tables = {
            "candidate_calls": calls,
            "observations": _select(con, "select o.* from observations o join _ids using (call_id)", _ids=ids),
            "entities": _select(
                con,
                "select e.* from entities e where entity_id in (select entity_id from _calls)",
                _calls=calls.select("entity_id"),
            ),
            "queries": _select(con, "select q.* from queries q join _ids using (call_id)", _ids=ids),
        }
        if gen.provider != "template":
            # The LLM cache (answers about these calls) and the few-shot examples (latest version).
            tables["llm_calls"] = _select(
                con,
                "select l.* from llm_calls l where l.status = 'ok' and l.subject_id in (select call_id from _ids)",
                _ids=ids,
            )
            tables["dataset_versions"] = con.sql("select * from dataset_versions").pl()
            tables["dataset_items"] = _select(
                con,
                "select d.* from dataset_items d where d.version_id = (select max(version_id) from "
                "dataset_versions) and d.tool in (select tool_group from _calls)",
                _calls=calls.select("tool_group"),
            )
        yield Slice("synthesize", tables, size)


@lru_cache(maxsize=4)
def _catalog(path: str) -> Catalog:
    return load_catalog(Path(path))


def run_slice(config: Config, piece: Slice, run_id: str) -> dict:
    """On a worker: the stage over a scratch store holding the slice; the rows it added."""
    con = duckdb.connect(":memory:")
    try:
        migrate(con)
        for table, frame in piece.tables.items():
            insert_new(con, table, frame)
        catalog = _catalog(str(config.path(config.sample.catalog_dir)))
        summary: ExecuteSummary | SynthesisSummary
        if piece.stage == "execute":
            summary = execute_calls(config, con, catalog, run_id)
        elif piece.stage == "synthesize":
            summary = synthesize(config, con, catalog, run_id)
        else:
            raise ValueError(f"stage {piece.stage} does not run distributed")
        outputs = {}
        for table in OUTPUTS[piece.stage]:
            frame = con.sql(f"select * from {table}").pl()
            given = piece.tables.get(table)
            if given is not None and not given.is_empty():
                frame = frame.join(given.select(PRIMARY_KEYS[table]), on=PRIMARY_KEYS[table], how="anti")
            outputs[table] = frame
        return {"summary": asdict(summary), "outputs": outputs}
    finally:
        con.close()


def local_fan_out(config: Config, run_id: str) -> FanOut:
    """Slices one after another in this process (the scratch-store path without a cluster)."""
    return lambda pieces: (run_slice(worker_config(config), piece, run_id) for piece in pieces)


def _merge(con: duckdb.DuckDBPyConnection, outputs: dict[str, pl.DataFrame]) -> dict[str, int]:
    return {table: insert_new(con, table, frame) for table, frame in outputs.items()}


def execute_distributed(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, fan_out: FanOut
) -> ExecuteSummary:
    """``execute_calls`` with the fetching and observation building fanned out."""
    from biocurate.progress import progress

    check_distributable(config)
    slices, cached = execute_slices(config, con)
    summary = ExecuteSummary(cached=cached)
    with progress("execute", sum(s.calls for s in slices)) as bar:
        for piece, result in zip(slices, fan_out(slices), strict=True):
            written = _merge(con, result["outputs"])
            part = result["summary"]
            summary.requested += part["requested"]
            summary.http_requests += part["http_requests"]
            summary.connection_failures += part.get("connection_failures", 0)
            summary.timeouts += part.get("timeouts", 0)
            summary.throttled += part.get("throttled", 0)
            summary.jobs_pending += part.get("jobs_pending", 0)
            summary.observations += written["observations"]
            summary.invalid_bodies.update(part["invalid_bodies"])
            for outcome, count in part["outcomes"].items():
                summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + count
            bar.advance(piece.calls)
    return summary


def synthesize_distributed(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, fan_out: FanOut
) -> SynthesisSummary:
    """``synthesize`` with the generation fanned out, a slice of whole functions at a time."""
    check_distributable(config)
    gen = config.synthesis.generator
    summary = SynthesisSummary()
    summary.reused = con.execute(
        "select count(*) from queries where generator = ? and model = ?", [gen.provider, gen.model]
    ).fetchall()[0][0]
    for result in fan_out(synthesize_slices(config, con, catalog)):
        written = _merge(con, result["outputs"])
        part = result["summary"]
        summary.calls += part["calls"]
        summary.requests += part["requests"]
        summary.queries_new += written["queries"]
        for reason, count in part["failures"].items():
            summary.failures[reason] = summary.failures.get(reason, 0) + count
    # questions about call sets (issue 18): few, asked here (the slices hold single calls only)
    return with_sets(config, con, catalog, run_id, summary)
