"""Job locks per resource: lock files next to the DuckDB file.

A job writes the store in many steps, and some jobs must not interleave: two rebuilds (or a
rebuild and a drift check) would work on the same calls and questions; two review syncs would
both create Label Studio tasks for the same questions; two publishes would both number the next
version. Each job therefore takes the lock of the resource it works on (``JOB_RESOURCES``), and
only that: a rebuild or drift check takes ``pipeline`` (``<store>.lock``), a review push, pull or
sync takes ``review`` (``<store>.review.lock``), a publish ``publish``, an eval run ``eval``. A
stage on a shared resource inside another job takes that resource's lock too, for the stage only
(``resource_lock``: the rebuild's review push waits for a running ``review pull``, and the other
way round). Reading commands take no lock. So a review sync, a publish or an eval run runs while
a rebuild does; the store file itself is shared by short connections (``biocurate.store``).

The file says who holds it (pid, host, job, since when); the lock itself is a kernel ``flock``
on the file, which the kernel drops when the process dies, even under SIGKILL. A lock file still
naming a process that is gone is therefore stale by construction; the next job reports it
(``LockInfo.stale``) and takes over. A process that holds a lock already (a job, then its stage)
does not take it twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

from biocurate.config import Config
from biocurate.errors import BiocurateError
from biocurate.store import utcnow


class JobLockedError(BiocurateError):
    """Another job holds the store."""


@dataclass
class LockInfo:
    pid: int
    host: str
    job: str
    started_at: str
    pid_started: str | None = None  # the process's start time, so a reused pid is not mistaken for it
    stale: dict | None = None  # the dead holder this job took over from, if any

    def describe(self) -> str:
        return f"{self.job} (pid {self.pid} on {self.host}, since {self.started_at} UTC)"


PIPELINE = "pipeline"
# The resource each job works on (a job not named here: the pipeline, the safe default).
JOB_RESOURCES = {
    "review_sync": "review",
    "review_push": "review",
    "review_pull": "review",
    "publish": "publish",
    "eval": "eval",
}
# Stages on a shared resource, wherever they run (the rebuild's and drift check's review push).
STAGE_RESOURCES = {"review_push": "review", "review_pull": "review", "publish": "publish"}
_HELD: dict[Path, LockInfo] = {}  # the locks this process holds


def resource_of(job: str) -> str:
    return JOB_RESOURCES.get(job, PIPELINE)


def lock_path(config: Config, resource: str = PIPELINE) -> Path:
    store = config.path(config.store.path)
    suffix = ".lock" if resource == PIPELINE else f".{resource}.lock"
    return store.with_name(store.name + suffix)


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), or None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def holder_alive(holder: dict) -> bool | None:
    """True/False for a holder on this host; None when it runs elsewhere (cannot tell)."""
    if holder.get("host") != socket.gethostname():
        return None
    pid = int(holder.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _process_start(pid)
    return not (holder.get("pid_started") and started and started != holder["pid_started"])


def read_holder(path: Path) -> dict | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"pid": 0, "host": "?", "job": "?", "started_at": "?", "unreadable": text[:200]}


def _refusal(path: Path, holder: dict | None, job: str, waited: float) -> JobLockedError:
    who = (
        LockInfo(
            int(holder.get("pid") or 0), str(holder.get("host")), str(holder.get("job")), str(holder.get("started_at"))
        ).describe()
        if holder
        else "another process (it is still writing its details)"
    )
    waiting = f" after waiting {waited:.0f}s" if waited else ""
    resource = resource_of(job)
    return JobLockedError(
        f"cannot start {job}: the store is in use by {who}{waiting}. One job per resource runs at a "
        f"time ({resource}: {', '.join(_jobs_of(resource))}); wait for it to finish (`biocurate status` "
        f"shows the running run). Lock file: {path}"
    )


def _jobs_of(resource: str) -> list[str]:
    if resource == PIPELINE:
        return ["rebuild", "drift check", "biotool import"]
    return [j.replace("_", " ") for j, r in JOB_RESOURCES.items() if r == resource]


@contextmanager
def job_lock(
    config: Config, job: str, wait_seconds: float = 0.0, poll_seconds: float = 0.5, resource: str | None = None
) -> Iterator[LockInfo]:
    """Hold the lock of the job's resource (``resource_of``, or ``resource``) for the ``with``
    block, or raise ``JobLockedError``.

    ``wait_seconds`` > 0 waits that long for the holder to finish (scheduled jobs that can
    simply run later); 0 refuses at once (a second rebuild). A lock file left by a process that
    died is reported in ``LockInfo.stale`` and taken over.
    """
    path = lock_path(config, resource or resource_of(job))
    if path in _HELD:  # this process holds it already (a job, and now its stage)
        yield _HELD[path]
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= wait_seconds:
                    raise _refusal(path, read_holder(path), job, wait_seconds) from None
                time.sleep(min(poll_seconds, max(0.01, wait_seconds - waited)))
        previous = read_holder(path)
        stale = None
        if previous:
            alive = holder_alive(previous)
            if alive is None or alive:
                # The kernel lock is free, yet the file names a live process (or one on another
                # host, e.g. a shared disk without flock): refuse rather than guess.
                fcntl.flock(fd, fcntl.LOCK_UN)
                raise JobLockedError(
                    f"cannot start {job}: {path} names {previous.get('job')} (pid {previous.get('pid')} on "
                    f"{previous.get('host')}, since {previous.get('started_at')} UTC), which may still be "
                    "running. If it is not, delete the lock file and try again."
                )
            stale = previous
        info = LockInfo(
            pid=os.getpid(),
            host=socket.gethostname(),
            job=job,
            started_at=utcnow().isoformat(timespec="seconds"),
            pid_started=_process_start(os.getpid()),
            stale=stale,
        )
        record = {k: v for k, v in asdict(info).items() if k != "stale"}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        _HELD[path] = info
        try:
            yield info
        finally:
            del _HELD[path]
            # Empty, not removed: removing would let a waiter lock the old inode while a newcomer
            # creates and locks a new file.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def refuse_if_busy(config: Config, job: str) -> None:
    """Raise ``JobLockedError`` now if another job holds the store (the file is left as it is).

    A quick, clean answer before a flow run starts; the job still takes the lock itself.
    """
    path = lock_path(config, resource_of(job))
    if not path.exists() or path in _HELD:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        raise _refusal(path, read_holder(path), job, 0.0) from None
    finally:
        os.close(fd)


def resource_lock(config: Config, stage: str) -> AbstractContextManager:
    """The lock a stage on a shared resource (``STAGE_RESOURCES``) holds while it runs, waiting
    up to ``[schedule] lock_wait_seconds`` for the job that holds it; for other stages nothing."""
    resource = STAGE_RESOURCES.get(stage)
    if resource is None:
        return nullcontext()
    return job_lock(config, stage, wait_seconds=config.schedule.lock_wait_seconds, resource=resource)
