"""Every job's stages as plain functions (rows in from DuckDB, rows out to DuckDB) and the one
registry of them (``STAGES``) that the jobs are built from (``JOBS``).

Each stage opens the store for writing only while it runs (DuckDB allows one writer), and
returns a ``StageReport`` for the run summary. ``biocurate.jobs`` runs a job's stages under the
job lock with a recorded run; ``flows/`` wraps the same in Prefect tasks; tests call them
directly.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, cast

import duckdb

from biocurate.catalog import Catalog, load_catalog
from biocurate.config import Config
from biocurate.discovery import discover_entities, discovered_entities, merge_entities
from biocurate.drift import BODY_CHANGED, CHANGED, FAILED, GONE, UNCHANGED, check_drift
from biocurate.errors import ConfigError, ReviewError
from biocurate.execute import execute_calls
from biocurate.item_kinds import load_item_kinds
from biocurate.judge import judge
from biocurate.lock import resource_lock
from biocurate.log import event, get_logger
from biocurate.outcomes import HTTP_ERROR, REPLAY_MISS, TIMEOUT
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
    replayed: int = 0  # calls answered from the recorded responses (replay transport): no request
    # What the run's status is decided from (``biocurate.runs.run_status``): the units of work this
    # stage asked an outside service for (``service``, named for the fix), how many got no answer,
    # and a service it could not use at all (the reason and what to do).
    attempted: int = 0
    unanswered: int = 0
    service: str = ""
    unreachable: str | None = None
    # What the library call returned (e.g. the PublishResult), for a command to print; not recorded.
    detail: Any = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "detail"}


def catalog_for(config: Config) -> Catalog:
    """The catalog, with its item-kind declarations checked (a bad one is a CatalogError)."""
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    load_item_kinds(config.path(config.sample.catalog_dir))
    return catalog


def stage_sample(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Seeds -> entities; catalog -> tools; entities x templates -> candidate_calls."""
    report = StageReport("sample")
    catalog = catalog_for(config)
    catalog_dir = config.path(config.sample.catalog_dir)
    tools = [
        {
            "function": t.name,
            "source": t.source,
            "tool_group": t.group,
            "database": t.database,
            "category": t.category,
            "method": t.function.method,
            "url_template": t.base_url + t.function.path,
            "schema_json": json.dumps(t.schema()),
            "spec_hash": t.spec_hash(),
            "run_id": run_id,
        }
        for t in catalog
    ]
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
    _sample_sets(config, con, run_id, catalog, entities, report)
    return report


def _sample_sets(config: Config, con, run_id: str, catalog: Catalog, entities: list[dict], report: StageReport):
    """Call sets of catalog/item_kinds.yaml as [sample.kinds] asks (``biocurate.call_sets``)."""
    from biocurate.call_sets import sample_sets, write_sample

    kinds = config.sample.kinds
    if not (kinds.parallel or kinds.multi_step or kinds.no_tool):
        return
    catalog_dir = config.path(config.sample.catalog_dir)
    sets = sample_sets(catalog, load_item_kinds(catalog_dir), entities, species_table(catalog_dir), config.sample)
    new = write_sample(con, sets, run_id)
    by_kind = {k: sum(1 for s in sets.sets if s["kind"] == k) for k in ("parallel", "multi_step", "no_tool")}
    report.notes.append(
        f"call sets: {', '.join(f'{n} {k}' for k, n in by_kind.items())} ({new} new), {len(sets.calls)} step calls"
    )
    for reason, count in sets.skipped.items():
        report.notes.append(f"{reason} ({count})")


def stage_chain(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """multi_step sets: each next step built from the stored observation of the step it depends
    on, executed, until no step is added (``biocurate.call_sets.extend_chains``)."""
    from biocurate.call_sets import extend_chains

    catalog = catalog_for(config)
    summary = extend_chains(config, con, catalog, load_item_kinds(config.path(config.sample.catalog_dir)), run_id)
    report = StageReport("chain", rows_in=summary.executed, rows_new=summary.added, requests=summary.requests)
    report.replayed = summary.replayed
    report.failures = {f"chain stopped, {reason}": n for reason, n in summary.stopped.items()}
    report.notes.append(f"{summary.added} later steps added in {summary.rounds} rounds, {summary.executed} executed")
    report.attempted, report.unanswered = summary.executed, summary.unanswered
    replay = config.execute.transport == "replay"
    if replay:  # said as execute says it: the run's last line counts every stage's replays
        report.notes.append(
            f"{summary.replayed} calls replayed from {config.execute.snapshot_dir} (no network requests)"
        )
    report.service = f"the recorded responses in {config.execute.snapshot_dir}" if replay else "the APIs"
    return report


def stage_assemble(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Call sets whose steps all have an observation -> their combined observation."""
    from biocurate.call_sets import assemble_sets

    summary = assemble_sets(con, load_item_kinds(config.path(config.sample.catalog_dir)), run_id)
    report = StageReport("assemble", rows_in=summary.sets, rows_new=summary.new, reused=summary.reused)
    report.failures = {f"no combined observation, {reason}": n for reason, n in summary.failed.items()}
    if summary.incomplete:
        report.notes.append(
            f"{summary.incomplete} sets with steps still unanswered or a chain that stopped (see chain)"
        )
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
    report.rows_in = summary.requested + summary.cached
    report.reused = summary.cached
    report.rows_new = summary.observations
    for outcome, count in summary.outcomes.items():
        if outcome != "ok":
            report.failures[f"outcome {outcome}"] = count
    for reason in summary.invalid_bodies.values():
        report.failures[f"invalid body: {reason}"] = report.failures.get(f"invalid body: {reason}", 0) + 1
    if config.execute.transport == "replay":
        report.replayed = summary.requested
        report.notes.append(
            f"{summary.requested} calls replayed from {config.execute.snapshot_dir} (no network requests), "
            f"{summary.cached} answered from the store"
        )
    else:
        report.notes.append(
            f"{summary.requested} calls ({config.execute.transport}), {summary.cached} answered from the store"
        )
        report.notes.append(summary.network_note())
    if summary.jobs_pending:
        report.notes.append(f"{summary.jobs_pending} BLAST jobs still running at the server: asked again next run")
    report.attempted = summary.requested
    # A job the server reports still running was answered: not a sign that the service is down.
    unanswered = sum(summary.outcomes.get(o, 0) for o in (HTTP_ERROR, TIMEOUT, REPLAY_MISS))
    report.unanswered = unanswered - summary.jobs_pending
    replay = config.execute.transport == "replay"
    report.service = f"the recorded responses in {config.execute.snapshot_dir}" if replay else "the APIs"
    return report


def stage_discover(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Ok responses of functions with discovery rules -> entities, seeds of the next rebuild."""
    found = discover_entities(con, catalog_for(config), run_id, config.path(config.sample.catalog_dir))
    report = StageReport(
        "discover",
        rows_in=found["responses"],
        rows_new=found["discovered"],
        reused=found["found"] - found["discovered"],
    )
    if found["discovered"] or found["invalid"]:
        report.notes.append(
            f"{found['discovered']} new entities discovered for the next rebuild"
            f" ({found['invalid']} failed their type's schema)"
        )
    return report


def stage_drift_check(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Published calls re-executed -> drift_results, drift_holds, new versions of changed questions."""
    summary = check_drift(config, con, catalog_for(config), run_id)
    s = summary.statuses
    report = StageReport(
        "drift_check",
        rows_in=summary.checked,
        rows_new=s[CHANGED] + s[GONE],
        reused=s[UNCHANGED] + s[BODY_CHANGED],
        requests=summary.http_requests,
        detail=summary,
    )
    report.failures = {f"calls {k.replace('_', ' ')} upstream": s[k] for k in (CHANGED, GONE) if s[k]}
    if s[FAILED]:
        report.failures["calls without a definite answer (asked again next check)"] = s[FAILED]
    report.attempted, report.unanswered, report.service = summary.checked, s[FAILED], "the APIs"
    report.notes.append(summary.message)
    if summary.replaced:
        report.notes.append(
            f"{summary.replaced} questions got a new version bound to their call's new "
            "observation: judged and checked, then back to review"
        )
    return report


def stage_synthesize(config: Config, con: duckdb.DuckDBPyConnection, run_id: str, fan_out=None) -> StageReport:
    """Observed calls -> queries (``fan_out``: generation on workers, as for execute)."""
    if fan_out is None:
        summary = synthesize(config, con, catalog_for(config), run_id)
    else:
        from biocurate.distributed import synthesize_distributed

        summary = synthesize_distributed(config, con, catalog_for(config), run_id, fan_out)
    report = StageReport(
        "synthesize",
        rows_in=summary.calls,
        rows_new=summary.queries_new,
        reused=summary.reused,
        failures=summary.failures,
        requests=summary.requests,
    )
    gen = config.synthesis.generator
    report.notes.append(f"generator {gen.provider}/{gen.model}: {summary.requests} LLM requests")
    if gen.provider != "template":
        # A reply answered from the cache (unusable before, so unusable again) asked nothing of the
        # endpoint this run: it says nothing about whether the endpoint is reachable.
        cached = summary.failed_from_cache
        report.attempted, report.unanswered = summary.calls - cached, sum(summary.failures.values()) - cached
        if cached:
            report.notes.append(
                f"{cached} calls whose stored replies were unusable: not asked again until the prompt or model changes"
            )
        report.service = f"the generator endpoint {gen.base_url} (model {gen.model}, [synthesis.generator])"
    return report


def stage_judge(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Queries -> judgments."""
    judged_before = con.execute(
        "select count(*) from judgments where model = ?", [config.synthesis.judge.model]
    ).fetchall()[0][0]
    summary = judge(config, con, catalog_for(config), run_id)
    report = StageReport(
        "judge", rows_in=summary.judged, rows_new=summary.new, reused=judged_before, requests=summary.requests
    )
    report.failures = {f"verdict {v}": n for v, n in summary.verdicts.items() if v != "accept"}
    cfg = config.synthesis.judge
    report.notes.append(f"judge {cfg.provider}/{cfg.model}: {summary.requests} LLM requests")
    if summary.failed:
        report.failures["no usable judgment (asked again next run)"] = summary.failed
    if cfg.provider != "template":
        report.attempted, report.unanswered = summary.judged + summary.failed, summary.failed
        report.service = f"the judge endpoint {cfg.base_url} (model {cfg.model}, [synthesis.judge])"
    return report


def stage_quality(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Queries (+ call, observation, judgment) -> qc_results; survivors view."""
    survivors_before = con.execute("select count(*) from survivors").fetchall()[0][0]
    summary = run_quality(config, con, catalog_for(config), run_id)
    # new: survivors this run added; reused: survivors carried over (already checked under this config)
    report = StageReport(
        "quality",
        rows_in=summary.checked,
        rows_new=max(0, summary.survivors - survivors_before),
        reused=min(survivors_before, summary.survivors),
    )
    report.failures = {f"qc {name}": n for name, n in summary.failing.items() if n}
    report.notes.append(f"{summary.survivors} survivors in total")
    warned = [f"{name} ({n})" for name, n in summary.warnings.items() if n]
    if warned:
        report.notes.append("warnings (not blocking): " + "; ".join(warned))
    if summary.data_docs:
        report.notes.append(f"Data Docs: {summary.data_docs}")
    return report


def _review_sync(
    sync, config: Config, con: duckdb.DuckDBPyConnection, run_id: str, report: StageReport, strict: bool
) -> dict | None:
    """Counts of review.push/pull, or None with the reason noted when review is off or unreachable.

    ``strict`` (the CLI commands): no skipping, a ReviewError fails the stage.
    """
    if strict:
        return sync(config, con, run_id=run_id)
    if not config.review.enabled:
        report.notes.append("review disabled in config ([review] enabled = false)")
        return None
    try:
        return sync(config, con, run_id=run_id)
    except ReviewError as exc:
        report.notes.append(f"skipped: {exc}")
        report.unreachable = (
            f"review skipped (what it had to send or fetch waits for the next run): {exc}; "
            "or set [review] enabled = false to build without review"
        )
        return None


def stage_review_push(config: Config, con: duckdb.DuckDBPyConnection, run_id: str, strict: bool = False) -> StageReport:
    """Survivors -> Label Studio tasks (review_tasks). Skipped, with the reason, when LS is off."""
    from biocurate import review

    report = StageReport("review_push")
    counts = report.detail = _review_sync(review.push, config, con, run_id, report, strict)
    if counts is None:
        return report
    report.rows_in = sum(v for v in counts.values() if isinstance(v, int) and not isinstance(v, bool))
    report.rows_new = counts.get("pushed", 0) + counts.get("updated", 0)
    report.reused = counts.get("unchanged", 0)
    return report


def stage_review_pull(config: Config, con: duckdb.DuckDBPyConnection, run_id: str, strict: bool = False) -> StageReport:
    """Label Studio annotations -> annotations (edits become new queries); as `biocurate review pull`."""
    from biocurate import review

    report = StageReport("review_pull")
    counts = report.detail = _review_sync(review.pull, config, con, run_id, report, strict)
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
    report = StageReport("publish", rows_in=result.counts.get("items", 0) if result.counts else 0, detail=result)
    if result.path is not None:
        report.rows_new = report.rows_in
    else:
        report.reused = report.rows_in
    report.failures = {f"not exported, {reason}": n for reason, n in result.refused.items() if n}
    report.notes += [line.strip() for line in result.lines() if line.strip()]
    return report


def stage_biotool_import(
    config: Config, con: duckdb.DuckDBPyConnection, run_id: str, paths: tuple[str, ...] = ()
) -> StageReport:
    """BioTool's dataset files -> candidate calls, questions, claimed observations, provenance;
    as `biocurate import biotool PATH...` (``biocurate.biotool_import``)."""
    from biocurate.biotool_import import import_biotool

    result = import_biotool(con, catalog_for(config), run_id, list(paths))
    report = StageReport(
        "biotool_import",
        rows_in=result.records,
        rows_new=result.new_records,
        reused=result.records - result.new_records,
        detail=result,
    )
    for problem in result.problems:
        report.failures[f"malformed: {problem}"] = 1
    if result.revalidated:
        report.notes.append(f"{result.revalidated} imported calls re-validated against the current catalog")
    return report


def stage_biotool_compare(config: Config, con: duckdb.DuckDBPyConnection, run_id: str) -> StageReport:
    """Imported BioTool calls' answers vs the observations BioTool published (the drift watch's
    statuses) -> biotool_checks; their questions bound to our observation (``biocurate.biotool_compare``)."""
    from biocurate.biotool_compare import compare_claims

    summary = compare_claims(config, con, catalog_for(config), run_id)
    report = StageReport(
        "biotool_compare", rows_in=summary.checked + summary.reused, rows_new=summary.checked, reused=summary.reused
    )
    said = {
        CHANGED: "imported calls answering otherwise than BioTool published",
        GONE: "imported calls no longer answering",
        FAILED: "imported calls without a definite answer (asked again next rebuild)",
    }
    report.failures = {said[k]: n for k, n in summary.statuses.items() if n and k in said}
    if summary.checked:
        report.notes.append(", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.statuses.items() if n))
    if summary.bound:
        report.notes.append(f"{summary.bound} imported questions bound to our observation of their call")
    return report


def stage_eval(config: Config, con: duckdb.DuckDBPyConnection, run_id: str, **options) -> StageReport:
    """A published version's split -> eval_* rows: a model or baseline scored; as `biocurate eval run`.

    ``options`` are ``biocurate.evaluate.run_eval``'s (version_ref, settings, llm, ...): the
    command's, not the config's, so this stage is no scheduled job's.
    """
    from biocurate.evaluate import run_eval

    result = run_eval(config, con, **options)
    report = StageReport("eval", rows_in=result.items, rows_new=result.items, detail=result)
    report.notes.append(f"{result.label}: evaluation run {result.run_id}")
    return report


@dataclass(frozen=True)
class Stage:
    """A registered stage: its function, the tables it writes, the jobs that run it."""

    name: str
    fn: Callable[..., StageReport]
    writes: tuple[str, ...]  # empty: the stage only reads (the store is opened read-only)
    jobs: tuple[str, ...]
    fans_out: bool = False  # takes ``fan_out``: its work can go to workers (biocurate.distributed)

    def __call__(self, config: Config, con: duckdb.DuckDBPyConnection, run_id: str, **kwargs) -> StageReport:
        return self.fn(config, con, run_id, **kwargs)


# Every stage of every job. A job runs its stages in this order; `biocurate review push`,
# `review pull`, `publish` and `eval run` are jobs of one stage.
STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            "sample",
            stage_sample,
            ("tools", "entities", "candidate_calls", "call_sets", "call_set_steps"),
            ("rebuild",),
        ),
        Stage(
            "drift_check",
            stage_drift_check,
            (
                "api_responses",
                "observations",
                "drift_checks",
                "drift_results",
                "drift_holds",
                "queries",
                "query_replacements",
            ),
            ("drift",),
        ),
        Stage("execute", stage_execute, ("api_responses", "observations"), ("rebuild",), fans_out=True),
        Stage(
            "chain", stage_chain, ("candidate_calls", "call_set_steps", "api_responses", "observations"), ("rebuild",)
        ),
        Stage("assemble", stage_assemble, ("observations", "call_set_observations"), ("rebuild",)),
        Stage(
            "biotool_compare", stage_biotool_compare, ("biotool_checks", "queries", "query_replacements"), ("rebuild",)
        ),
        Stage("discover", stage_discover, ("entities",), ("rebuild",)),
        Stage(
            "synthesize", stage_synthesize, ("queries", "llm_calls", "generation_failures"), ("rebuild",), fans_out=True
        ),
        Stage("judge", stage_judge, ("judgments", "llm_calls", "generation_failures"), ("rebuild", "drift")),
        Stage("quality", stage_quality, ("qc_results",), ("rebuild", "drift")),
        Stage("review_pull", stage_review_pull, ("annotations", "queries"), ("review_sync", "review_pull")),
        Stage("review_push", stage_review_push, ("review_tasks",), ("rebuild", "drift", "review_sync", "review_push")),
        Stage("publish", stage_publish, ("dataset_versions", "dataset_items"), ("publish",)),
        Stage("eval", stage_eval, ("eval_runs", "eval_predictions", "eval_scores", "eval_responses"), ("eval",)),
        Stage(
            "biotool_import",
            stage_biotool_import,
            ("candidate_calls", "queries", "biotool_claims", "biotool_records"),
            ("biotool_import",),
        ),
    )
}
JOBS: dict[str, list[str]] = {
    job: [s.name for s in STAGES.values() if job in s.jobs]
    for job in dict.fromkeys(j for s in STAGES.values() for j in s.jobs)
}


def job_stages(job: str, names: list[str] | None = None) -> list[str]:
    """The stages a job runs: all of them, or the named ones (which must be the job's)."""
    if job not in JOBS:
        raise ConfigError(f"unknown job {job!r}: jobs are {', '.join(JOBS)}")
    if not names:
        return list(JOBS[job])
    unknown = [n for n in names if n not in JOBS[job]]
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not a stage of {job} (its stages: {', '.join(JOBS[job])})")
    return list(names)


LOG = get_logger("stages")


def run_stage(name: str, config: Config, run_id: str, fan_out=None, **kwargs) -> StageReport:
    """Open the store (for writing if the stage writes), run one registered stage in it, time it.

    ``fan_out`` hands execute or synthesize work to workers (``biocurate.distributed``); other
    keyword arguments go to the stage function (``strict`` for the review stages).
    """
    stage = STAGES[name]
    if fan_out is not None and stage.fans_out:
        kwargs["fan_out"] = fan_out
    started = time.perf_counter()
    event(LOG, "stage started", stage=name, run_id=run_id)
    # A connection the stage releases around its network waits (``biocurate.store.StoreAccess``);
    # a stage on a shared resource (Label Studio's tasks, the published versions) holds its lock.
    store = Store(config.path(config.store.path), config.store.memory_limit, config.schedule.lock_wait_seconds)
    with resource_lock(config, name), store.access(read_only=not stage.writes) as con:
        report = stage(config, cast(duckdb.DuckDBPyConnection, con), run_id, **kwargs)
    report.seconds = round(time.perf_counter() - started, 3)
    event(
        LOG,
        "stage finished",
        stage=name,
        run_id=run_id,
        rows_in=report.rows_in,
        new=report.rows_new,
        reused=report.reused,
        failed=sum(report.failures.values()),
        seconds=report.seconds,
    )
    return report
