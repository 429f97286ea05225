"""Jobs as Prefect flow runs: ``biocurate.jobs.run_job`` with each stage a Prefect task.

Each task runs one stage on the whole batch of pending rows (stages themselves batch their
writes), so a crash loses at most the batch in flight and a re-run resumes from the store. With
``[runner] task_runner = "dask"``, execute and synthesize send their slices to a Dask cluster
(this process stays the only writer: ``biocurate.distributed``).

A flow run's final state follows the run's status (``biocurate.runs.run_status``): a completed
run is Completed; a failed run is Failed, and a degraded run is Failed too, under the name
"Degraded" (Prefect has no partial-success type, and a degraded run needs someone to act: it
must not look done in the UI, nor escape failure notifications). The state's message is what to
fix; its data, and the summary artifact, are written either way. ``job_result`` gives a caller
the run's result from the flow's state (``return_state=True``), or raises what the flow raised.
"""

from __future__ import annotations

from collections import deque

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from biocurate import jobs
from biocurate.config import Config
from biocurate.distributed import Slice, parallelism, run_slice, worker_config
from biocurate.runs import COMPLETED, DEGRADED, summary_rows
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


class RunNotCompleted(Exception):
    """A job's run ended degraded or failed: the data of its flow run's Failed state, raised by a
    flow called as a function. ``result`` is what ``biocurate.jobs.run_job`` returned."""

    def __init__(self, message: str, result: dict):
        super().__init__(message, result)  # both in args: it pickles as a state's result
        self.result = result

    def __str__(self) -> str:
        return self.args[0]


def final_state(result: dict) -> dict | State:
    """What a job's flow returns: the result itself (Completed) when the run completed, otherwise
    a Failed state (named "Degraded" for a degraded run) with what to fix as its message."""
    if result["status"] == COMPLETED:
        return result
    fixes = "; ".join(result["fixes"]) or "see the run's summary"
    message = f"biocurate run {result['run_id']} {result['status']}: what to fix: {fixes}"
    return Failed(
        name="Degraded" if result["status"] == DEGRADED else "Failed",
        message=message,
        data=RunNotCompleted(message, result),
    )


def job_result(state: State) -> dict:
    """The job's result from its flow run's final state (a flow called with ``return_state=True``),
    completed or not; an exception the flow raised is raised again."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, RunNotCompleted):
        return result.result
    if isinstance(result, BaseException):
        raise result
    return result
