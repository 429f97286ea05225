"""The rebuild flow: sample -> execute -> synthesize -> judge -> quality -> review push.

Each task runs one stage on the whole batch of pending rows (stages themselves batch their
writes), so a crash loses at most the batch in flight and a re-run resumes from the store.
"""
from __future__ import annotations

from collections import deque
from typing import Callable

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from biocurate.config import Config, load_config
from biocurate.distributed import PARALLEL_STAGES, Slice, parallelism, run_slice, worker_config
from biocurate.lock import job_lock
from biocurate.log import event, get_logger
from biocurate.runs import close_interrupted, finish_run, print_summary, start_run, summary_rows
from biocurate.stages import STAGES, StageReport, run_stage

LOG = get_logger("flows")


@task(cache_policy=NO_CACHE, retries=0)
def stage_task(name: str, config: Config, run_id: str, stage: Callable[..., StageReport] | None = None) -> dict:
    return run_stage(name, config, run_id, stage=stage).as_dict()


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=1)
def slice_task(config: Config, piece: Slice, run_id: str) -> dict:
    """One slice of execute or synthesize work, on a worker; it never opens the store."""
    return run_slice(config, piece, run_id)


def dask_task_runner(config: Config):
    """A DaskTaskRunner: the scheduler at [runner] dask_address, or a local cluster for the run."""
    from prefect_dask import DaskTaskRunner

    runner = config.runner
    if runner.dask_address:
        return DaskTaskRunner(address=runner.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": runner.dask_workers, "processes": True,
                                          "threads_per_worker": runner.dask_threads_per_worker,
                                          "dashboard_address": None, "silence_logs": 40})


@flow(name="rebuild-distributed", log_prints=False)
def distributed_stages(names: list[str], config: Config, run_id: str) -> list[dict]:
    """Execute/synthesize with their slices on the flow's task runner (Dask); this process writes."""
    sliced, window = worker_config(config), parallelism(config)

    def fan_out(pieces):
        in_flight = deque()
        for piece in pieces:
            in_flight.append(slice_task.submit(sliced, piece, run_id))
            if len(in_flight) >= window:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()

    return [run_stage(name, config, run_id, fan_out=fan_out).as_dict() for name in names]


def _groups(names: list[str], config: Config) -> list[list[str]]:
    """Consecutive execute/synthesize stages share one Dask cluster; others run one by one."""
    groups: list[list[str]] = []
    for name in names:
        parallel = config.runner.task_runner == "dask" and name in PARALLEL_STAGES
        if parallel and groups and groups[-1][0] in PARALLEL_STAGES:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def run_job(config: Config, job: str, names: list[str], stages: dict[str, Callable] | None = None,
            lock_wait: float = 0.0) -> dict:
    """Hold the job lock, record a run, run the stages in order, print the summary.

    ``stages`` maps names that are not rebuild stages (the drift check) to their functions.
    """
    stages = stages or {}
    with job_lock(config, job, wait_seconds=lock_wait) as lock:
        if lock.stale:
            resumed = close_interrupted(config, lock.stale)
            event(LOG, "stale lock taken over", job=job, dead_pid=lock.stale.get("pid"),
                  dead_job=lock.stale.get("job"), interrupted_runs=",".join(resumed))
        run_id = start_run(config, job)
        reports: list[dict] = []
        try:
            for group in _groups(names, config):
                if config.runner.task_runner == "dask" and group[0] in PARALLEL_STAGES:
                    runner = dask_task_runner(config)
                    reports += distributed_stages.with_options(task_runner=runner)(group, config, run_id)
                else:
                    name = group[0]
                    reports.append(stage_task.with_options(name=f"stage-{name}")(name, config, run_id,
                                                                                 stage=stages.get(name)))
        except BaseException as exc:
            finish_run(config, run_id, "failed", reports, error=f"{type(exc).__name__}: {exc}")
            raise
        counts = finish_run(config, run_id, "completed", reports)
    create_table_artifact(key=f"{job.replace('_', '-')}-summary", table=summary_rows(reports),
                          description=f"biocurate {job} {run_id}")
    if lock.stale:
        print(f"A {lock.stale.get('job')} (pid {lock.stale.get('pid')}, started {lock.stale.get('started_at')} UTC) "
              "stopped without finishing; its run is marked interrupted and this run resumed its work.")
    print_summary(run_id, reports)
    return {"run_id": run_id, "reports": reports, "counts": counts}


@flow(name="rebuild", log_prints=False)
def rebuild(config_path: str | None = None, overrides: dict | None = None, stages: list[str] | None = None) -> dict:
    """Run the stages in order against the store; record the run and its summary table.

    One job at a time per store: a second rebuild (or drift check) refuses with the holder's
    pid, host and start time; a lock left by a killed process is taken over.
    """
    config = load_config(config_path, overrides)
    result = run_job(config, "rebuild", stages or list(STAGES))
    if "quality" in (stages or list(STAGES)):
        from biocurate.quality_report import expectation_report

        create_table_artifact(key="quality-expectations", table=expectation_report(config),
                              description=f"biocurate quality checks after run {result['run_id']}: "
                                          "pass/fail per expectation (latest QC configuration)")
    return result
