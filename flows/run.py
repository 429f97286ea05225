"""Jobs as Prefect flow runs: ``biocurate.jobs.run_job`` with each stage a Prefect task.

Each task runs one stage on the whole batch of pending rows (stages themselves batch their
writes), so a crash loses at most the batch in flight and a re-run resumes from the store. With
``[runner] task_runner = "dask"``, execute and synthesize send their slices to a Dask cluster
(this process stays the only writer: ``biocurate.distributed``).
"""

from __future__ import annotations

from collections import deque

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from biocurate import jobs
from biocurate.config import Config
from biocurate.distributed import Slice, parallelism, run_slice, worker_config
from biocurate.runs import summary_rows
from biocurate.stages import STAGES, run_stage


@task(cache_policy=NO_CACHE, retries=0)
def stage_task(name: str, config: Config, run_id: str) -> dict:
    return run_stage(name, config, run_id).as_dict()


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
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": runner.dask_workers,
            "processes": True,
            "threads_per_worker": runner.dask_threads_per_worker,
            "dashboard_address": None,
            "silence_logs": 40,
        }
    )


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


def prefect_group(group: list[str], config: Config, run_id: str) -> list[dict]:
    """A group of ``biocurate.jobs.stage_groups``: a Dask subflow, or one Prefect task."""
    if config.runner.task_runner == "dask" and STAGES[group[0]].fans_out:
        return distributed_stages.with_options(task_runner=dask_task_runner(config))(group, config, run_id)
    return [stage_task.with_options(name=f"stage-{name}")(name, config, run_id) for name in group]


def run_job(config: Config, job: str, names: list[str] | None = None, lock_wait: float = 0.0) -> dict:
    """``biocurate.jobs.run_job`` inside a flow run: stages as tasks, the summary as an artifact."""

    def artifact(run: jobs.JobRun) -> None:
        create_table_artifact(
            key=f"{job.replace('_', '-')}-summary",
            table=summary_rows(run.reports),
            description=f"biocurate {job} {run.run_id}",
        )

    return jobs.run_job(config, job, names, lock_wait=lock_wait, run_group=prefect_group, after=artifact)
