"""The rebuild flow: sample -> execute -> synthesize -> judge -> quality -> review push.

Each task runs one stage on the whole batch of pending rows (stages themselves batch their
writes), so a crash loses at most the batch in flight and a re-run resumes from the store.
"""
from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from biocurate.config import Config, load_config
from biocurate.runs import finish_run, print_summary, start_run, summary_rows
from biocurate.stages import STAGES, run_stage


@task(cache_policy=NO_CACHE, retries=0)
def stage_task(name: str, config: Config, run_id: str) -> dict:
    return run_stage(name, config, run_id).as_dict()


@flow(name="rebuild", log_prints=False)
def rebuild(config_path: str | None = None, overrides: dict | None = None, stages: list[str] | None = None) -> dict:
    """Run the stages in order against the store; record the run and its summary table."""
    config = load_config(config_path, overrides)
    run_id = start_run(config, "rebuild")
    reports: list[dict] = []
    try:
        for name in stages or list(STAGES):
            reports.append(stage_task.with_options(name=f"stage-{name}")(name, config, run_id))
    except BaseException as exc:
        finish_run(config, run_id, "failed", reports, error=f"{type(exc).__name__}: {exc}")
        raise
    counts = finish_run(config, run_id, "completed", reports)
    create_table_artifact(key="rebuild-summary", table=summary_rows(reports),
                          description=f"biocurate rebuild {run_id}")
    print_summary(run_id, reports)
    return {"run_id": run_id, "reports": reports, "counts": counts}
