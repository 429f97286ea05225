"""Jobs: a job's stages run in order under the job lock of its resource, as a recorded run.

Every job that writes the store (a rebuild, a drift check, a review sync, a publish, and the
CLI's `review push`, `review pull`, `publish` and `eval run`) goes through ``job_run``: it takes
the lock of the resource it works on (``biocurate.lock``: pipeline, review, publish or eval, so
a review sync or publish runs alongside a rebuild), closes the runs of a holder that died, records a row in
``runs`` and finishes it with the stage reports as completed, degraded or failed
(``biocurate.runs.run_status``: one rule for every job), or as failed with the error it raised. ``run_job`` runs a
registered job's stages (``biocurate.stages.JOBS``) in this process; ``flows/run.py`` runs the
same with each stage as a Prefect task (and execute/synthesize on Dask when configured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from biocurate.config import Config
from biocurate.lock import LockInfo, job_lock
from biocurate.log import event, get_logger
from biocurate.runs import COMPLETED, FAILED, close_interrupted, finish_run, print_summary, run_status, start_run
from biocurate.stages import STAGES, job_stages, run_stage

LOG = get_logger("jobs")

# Runs a group of stages and returns their reports (as dicts): see ``stage_groups``.
GroupRunner = Callable[[list[str], Config, str], list[dict]]


@dataclass
class JobRun:
    job: str
    run_id: str
    lock: LockInfo
    reports: list[dict] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    status: str = "running"  # then completed, degraded or failed (``run_status``)
    fixes: list[str] = field(default_factory=list)  # what to fix when not completed

    def stale_note(self) -> str | None:
        """What to tell the user when this job took over the lock of a process that died."""
        stale = self.lock.stale
        if not stale:
            return None
        return (
            f"A {stale.get('job')} (pid {stale.get('pid')}, started {stale.get('started_at')} UTC) "
            "stopped without finishing; its run is marked interrupted and this run resumed its work."
        )


@contextmanager
def job_run(config: Config, job: str, lock_wait: float = 0.0) -> Iterator[JobRun]:
    """Hold the job lock and record a run for the ``with`` block.

    Append each stage's report (``as_dict``) to ``JobRun.reports``; the run is finished with
    them as ``run_status`` decides (completed, degraded or failed, what to fix in its error), or as
    'failed' with the error if the block raises.
    """
    with job_lock(config, job, wait_seconds=lock_wait) as lock:
        if lock.stale:
            resumed = close_interrupted(config, lock.stale)
            event(
                LOG,
                "stale lock taken over",
                job=job,
                dead_pid=lock.stale.get("pid"),
                dead_job=lock.stale.get("job"),
                interrupted_runs=",".join(resumed),
            )
        run = JobRun(job, start_run(config, job), lock)
        try:
            yield run
        except BaseException as exc:
            run.status = FAILED
            finish_run(config, run.run_id, FAILED, run.reports, error=f"{type(exc).__name__}: {exc}")
            raise
        run.status, run.fixes = run_status(run.reports)
        run.counts = finish_run(
            config, run.run_id, run.status, run.reports, error=None if run.status == COMPLETED else "; ".join(run.fixes)
        )


def stage_groups(names: list[str], config: Config) -> list[list[str]]:
    """The stages in the groups they run in: one by one, except with the Dask runner, where the
    stages from the first fan-out stage (execute, synthesize) to the last share one cluster."""
    fans = [i for i, name in enumerate(names) if STAGES[name].fans_out]
    if config.runner.task_runner != "dask" or not fans:
        return [[name] for name in names]
    first, last = fans[0], fans[-1]
    return [[n] for n in names[:first]] + [names[first : last + 1]] + [[n] for n in names[last + 1 :]]


def in_process(group: list[str], config: Config, run_id: str) -> list[dict]:
    """The default group runner: the stages one after another in this process."""
    return [run_stage(name, config, run_id).as_dict() for name in group]


def run_job(
    config: Config,
    job: str,
    names: list[str] | None = None,
    lock_wait: float = 0.0,
    run_group: GroupRunner = in_process,
    after: Callable[[JobRun], None] | None = None,
) -> dict:
    """Run a job's stages (all, or ``names``) in order as one recorded run; print its summary
    (ending with its status and what to fix); return its id, reports, counts, status and fixes.

    ``run_group`` runs each group of ``stage_groups`` (``flows/run.py`` passes Prefect's);
    ``after`` is called with the finished run, before the summary is printed.
    """
    names = job_stages(job, names)
    with job_run(config, job, lock_wait) as run:
        for group in stage_groups(names, config):
            run.reports += run_group(group, config, run.run_id)
    if after is not None:
        after(run)
    if run.stale_note():
        print(run.stale_note())
    print_summary(run.run_id, run.reports)
    return {
        "run_id": run.run_id,
        "reports": run.reports,
        "counts": run.counts,
        "status": run.status,
        "fixes": run.fixes,
    }
