"""The rebuild's stages as plain functions: rows in from DuckDB, rows out to DuckDB.

Each stage opens the store for writing only while it runs (DuckDB allows one writer), and
returns a ``StageReport`` for the run summary. ``flows/rebuild.py`` wraps each in a Prefect
task; tests call them directly.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import duckdb

from biocurate.catalog import Catalog, load_catalog
from biocurate.config import Config
from biocurate.discovery import discover_entities, discovered_entities, merge_entities
from biocurate.errors import ReviewError
from biocurate.execute import execute_calls
from biocurate.judge import judge
from biocurate.log import event, get_logger
from biocurate.quality import run_quality
from biocurate.sampling import sample_calls
from biocurate.seeds import load_seeds, species_table
from biocurate.store import Store, insert_new
from biocurate.synthesis import synthesize


@dataclass
class StageReport:
    stage: str
    rows_in: int = 0
    rows_new: int = 0
    reused: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0  # requests sent to the APIs over the network and to LLM endpoints

    def as_dict(self) -> dict:
        return asdict(self)


def catalog_for(config: Config) -> Catalog:
    return load_catalog(config.path(config.sample.catalog_dir))


def stage_sample(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Seeds -> entities; catalog -> tools; entities x templates -> candidate_calls."""
    report = StageReport("sample")
    catalog = catalog_for(config)
    catalog_dir = config.path(config.sample.catalog_dir)
    tools = [{"function": t.name, "source": t.source, "tool_group": t.group, "database": t.database,
              "category": t.category, "method": t.function.method, "url_template": t.base_url + t.function.path,
              "schema_json": json.dumps(t.schema()), "spec_hash": t.spec_hash(), "run_id": run_id} for t in catalog]
    insert_new(con, "tools", tools)
    seeds = load_seeds(config.path(config.sample.seeds_dir), catalog_dir)
    for problem in seeds.problems:
        report.failures[f"bad seed row: {problem}"] = 1
    entity_rows = [{**e, "fields": json.dumps(e["fields"]), "run_id": run_id} for e in seeds.entities]
    insert_new(con, "entities", entity_rows)
    entities = seeds.entities
    if config.sample.use_discovered:
        found = discovered_entities(con)
        entities = merge_entities(seeds.entities, found)
        if found:
            report.notes.append(f"{len(found)} entities discovered by earlier calls merged into the seeds")
        merged_rows = [{**e, "fields": json.dumps(e["fields"]), "run_id": run_id} for e in entities]
        insert_new(con, "entities", merged_rows)  # a gap-filled entity is a new version of it
    result = sample_calls(catalog, entities, species_table(catalog_dir), config.sample)
    rows = [{**c, "arguments": json.dumps(c["arguments"], sort_keys=True), "run_id": run_id} for c in result.calls]
    report.rows_in = len(seeds.entities)
    report.rows_new = insert_new(con, "candidate_calls", rows)
    report.reused = len(rows) - report.rows_new
    for call in result.calls:
        if not call["valid"]:
            report.failures[f"invalid call: {call['invalid_reason']}"] = 1
    for reason, count in result.skipped.items():
        report.notes.append(f"{reason} ({count})")
    return report


def stage_execute(config: Config, con: duckdb.DuckDBPyConnection, run_id: str, fan_out=None) -> StageReport:
    """Candidate calls -> api_responses (every outcome) -> observations (ok only).

    ``fan_out`` (see ``biocurate.distributed``) runs the fetching on workers; this process
    stays the only writer.
    """
    report = StageReport("execute")
    catalog = catalog_for(config)
    if fan_out is None:
        summary = execute_calls(config, con, catalog, run_id)
    else:
        from biocurate.distributed import execute_distributed

        summary = execute_distributed(config, con, catalog, run_id, fan_out)
    report.requests = summary.http_requests
    found = discover_entities(con, catalog, run_id, config.path(config.sample.catalog_dir))
    if found["discovered"] or found["invalid"]:
        report.notes.append(f"{found['discovered']} new entities discovered for the next rebuild"
                            f" ({found['invalid']} failed their type's schema)")
    report.rows_in = summary.requested + summary.cached
    report.reused = summary.cached
    report.rows_new = summary.observations
    for outcome, count in summary.outcomes.items():
        if outcome != "ok":
            report.failures[f"outcome {outcome}"] = count
    for reason in summary.invalid_bodies.values():
        report.failures[f"invalid body: {reason}"] = report.failures.get(f"invalid body: {reason}", 0) + 1
    report.notes.append(f"{summary.requested} requests ({config.execute.transport}), {summary.cached} answered from the store")
    return report


def stage_synthesize(config: Config, con: duckdb.DuckDBPyConnection, run_id: str, fan_out=None) -> StageReport:
    """Observed calls -> queries (``fan_out``: generation on workers, as for execute)."""
    if fan_out is None:
        summary = synthesize(config, con, catalog_for(config), run_id)
    else:
        from biocurate.distributed import synthesize_distributed

        summary = synthesize_distributed(config, con, catalog_for(config), run_id, fan_out)
    report = StageReport("synthesize", rows_in=summary.calls, rows_new=summary.queries_new,
                         reused=summary.reused, failures=summary.failures, requests=summary.requests)
    gen = config.synthesis.generator
    report.notes.append(f"generator {gen.provider}/{gen.model}: {summary.requests} LLM requests")
    return report


def stage_judge(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Queries -> judgments."""
    judged_before = con.execute("select count(*) from judgments where model = ?",
                                [config.synthesis.judge.model]).fetchall()[0][0]
    summary = judge(config, con, catalog_for(config), run_id)
    report = StageReport("judge", rows_in=summary.judged, rows_new=summary.new, reused=judged_before,
                         requests=summary.requests)
    report.failures = {f"verdict {v}": n for v, n in summary.verdicts.items() if v != "accept"}
    cfg = config.synthesis.judge
    report.notes.append(f"judge {cfg.provider}/{cfg.model}: {summary.requests} LLM requests")
    return report


def stage_quality(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Queries (+ call, observation, judgment) -> qc_results; survivors view."""
    survivors_before = con.execute("select count(*) from survivors").fetchall()[0][0]
    summary = run_quality(config, con, catalog_for(config), run_id)
    # new: survivors this run added; reused: survivors carried over (already checked under this config)
    report = StageReport("quality", rows_in=summary.checked,
                         rows_new=max(0, summary.survivors - survivors_before),
                         reused=min(survivors_before, summary.survivors))
    report.failures = {f"qc {name}": n for name, n in summary.failing.items() if n}
    report.notes.append(f"{summary.survivors} survivors in total")
    warned = [f"{name} ({n})" for name, n in summary.warnings.items() if n]
    if warned:
        report.notes.append("warnings (not blocking): " + "; ".join(warned))
    if summary.data_docs:
        report.notes.append(f"Data Docs: {summary.data_docs}")
    return report


def _review_sync(sync, config: Config, con: duckdb.DuckDBPyConnection, run_id: str,
                 report: StageReport) -> dict | None:
    """Counts of review.push/pull, or None with the reason noted when review is off or unreachable."""
    if not config.review.enabled:
        report.notes.append("review disabled in config ([review] enabled = false)")
        return None
    try:
        return sync(config, con, run_id=run_id)
    except ReviewError as exc:
        report.notes.append(f"skipped: {exc}")
        return None


def stage_review_push(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Survivors -> Label Studio tasks (review_tasks). Skipped, with the reason, when LS is off."""
    from biocurate import review

    report = StageReport("review_push")
    counts = _review_sync(review.push, config, con, run_id, report)
    if counts is None:
        return report
    report.rows_in = sum(counts.values())
    report.rows_new = counts.get("pushed", 0) + counts.get("updated", 0)
    report.reused = counts.get("unchanged", 0)
    return report


def stage_review_pull(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Label Studio annotations -> annotations (edits become new queries); as `biocurate review pull`."""
    from biocurate import review

    report = StageReport("review_pull")
    counts = _review_sync(review.pull, config, con, run_id, report)
    if counts is None:
        return report
    report.rows_in = counts.get("fetched", 0)
    report.rows_new = counts.get("new", 0)
    report.reused = report.rows_in - report.rows_new
    if counts.get("edits"):
        report.notes.append(f"{counts['edits']} edited questions go through quality checks next")
    return report


def stage_publish(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Accepted items -> a new dataset version; as `biocurate publish`."""
    from biocurate.publish import publish

    result = publish(config, con, run_id=run_id)
    report = StageReport("publish", rows_in=result.counts.get("items", 0) if result.counts else 0)
    if result.path is not None:
        report.rows_new = report.rows_in
    else:
        report.reused = report.rows_in
    report.failures = {f"not exported, {reason}": n for reason, n in result.refused.items() if n}
    report.notes += [line.strip() for line in result.lines() if line.strip()]
    return report


STAGES: dict[str, Callable[[Config, duckdb.DuckDBPyConnection, str], StageReport]] = {
    "sample": stage_sample,
    "execute": stage_execute,
    "synthesize": stage_synthesize,
    "judge": stage_judge,
    "quality": stage_quality,
    "review_push": stage_review_push,
}


LOG = get_logger("stages")


def run_stage(name: str, config: Config, run_id: str, fan_out=None,
              stage: Callable[..., StageReport] | None = None) -> StageReport:
    """Open the store for writing, run one stage in it, time it.

    ``stage`` runs a stage that is not one of the rebuild's (e.g. the drift check);
    ``fan_out`` hands execute or synthesize work to workers (``biocurate.distributed``).
    """
    started = time.perf_counter()
    event(LOG, "stage started", stage=name, run_id=run_id)
    with Store(config.path(config.store.path), config.store.memory_limit).open() as con:
        fn = stage or STAGES[name]
        report = fn(config, con, run_id, fan_out=fan_out) if fan_out is not None else fn(config, con, run_id)
    report.seconds = round(time.perf_counter() - started, 3)
    event(LOG, "stage finished", stage=name, run_id=run_id, rows_in=report.rows_in, new=report.rows_new,
          reused=report.reused, failed=sum(report.failures.values()), seconds=report.seconds)
    return report
