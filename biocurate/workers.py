"""Both cores for a stage's CPU-bound work.

A stage that reads a batch from the store, computes rows from it in Python and writes them back
uses one core: DuckDB allows one process per store, so the reading and writing stay in the
stage's process. ``in_turns`` runs the computing half on both cores: every other batch goes to a
worker process while this process computes the batch after it; results come back in order, so the
stage writes what it wrote before. The batch function must be picklable (a module-level function,
or a ``functools.partial`` of one) and pure: the same rows in either process.

A worker is a process of our own (``python -c``), fed pickles over its stdin and answering on its
stdout: multiprocessing's spawned workers run the parent's main script again, which a user's
script without a ``__main__`` guard does not survive, and forking a process that runs DuckDB's
and polars' threads is unsafe. Publish's file writer (``biocurate.publish.writing``) is one too.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pickle
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

from biocurate.errors import BiocurateError

Batch = TypeVar("Batch")
Result = TypeVar("Result")

# Items (questions) of a stage's work worth a worker: starting one costs about a second (its
# imports, the catalog's rules), repaid from about this many: at 40,000 questions the template
# generator and the rules judge each took 0.8 to 0.9 s longer with one, at 400,000 6 s shorter.
TURNS_MIN_ITEMS = 100_000


class WorkerError(BiocurateError):
    pass


@contextmanager
def running(main: str) -> Iterator[subprocess.Popen]:
    """A Python process running ``main`` (``"module:function"``), pipes to its stdin and stdout; it
    finds this checkout's biocurate, whatever the current folder. Leaving the block reaps it, and
    kills it first if it is still running (an error here, or a caller that stopped early)."""
    import biocurate

    module, function = main.split(":")
    root = str(Path(biocurate.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    child = subprocess.Popen(
        [sys.executable, "-c", f"from {module} import {function}; {function}()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    for pipe in (child.stdin, child.stdout):
        _widen(pipe)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


# Bytes a pipe to or from a worker holds (Linux: 64 KB by default; 1 MB is the most an unprivileged
# process may ask for). A worker that reads its batches from a thread of its own gets the GIL back
# after each read from the pipe: with 64 KB at a time, the publishing process waited 6 s of a 45 s
# records pass at 100k calls to hand its batches over.
PIPE_BYTES = 1 << 20


def _widen(pipe: IO[bytes] | None) -> None:
    """``pipe`` made to hold PIPE_BYTES, where the system allows (else left as it is)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if pipe is None or set_size is None:
        return
    try:
        fcntl.fcntl(pipe.fileno(), set_size, PIPE_BYTES)
    except OSError:  # above the system's pipe-max-size: a smaller pipe is only slower
        pass


def send(pipe: IO[bytes], value: Any) -> None:
    pickle.dump(value, pipe, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.flush()


def answer_pipe() -> IO[bytes]:
    """In a worker: stdout for its answers alone (whatever else prints goes to stderr)."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return answers


def answer(out: IO[bytes], run: Callable[[], Any]) -> None:
    """In a worker: ("ok", run(), "") or ("error", the exception, its traceback) sent on ``out``."""
    try:
        payload = pickle.dumps(("ok", run(), ""), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # every error goes back to the parent
        trace = traceback.format_exc()
        try:
            payload = pickle.dumps(("error", exc, trace))
        except Exception:  # an exception that does not pickle: its text
            payload = pickle.dumps(("error", WorkerError(f"{type(exc).__name__}: {exc}"), trace))
    out.write(payload)
    out.flush()


def unpack(payload: Any, child: subprocess.Popen, doing: str) -> Any:
    """The value of an answer, or its error raised here (its traceback as a note); a worker that
    ended without one is a WorkerError with its exit code."""
    if payload is None:
        child.wait()
        raise WorkerError(
            f"the process {doing} stopped (exit code {child.returncode}) without saying why: its error output is above"
        )
    status, value, trace = payload
    if status == "error":
        value.add_note(f"(in the process {doing})\n{trace}")
        raise value
    return value


def receive(pipe: IO[bytes]) -> Any:
    """The next answer on ``pipe``, or None when the worker ended without one."""
    try:
        return pickle.load(pipe)
    except EOFError:
        return None


def serve_batches() -> None:
    """A batch worker's main: (fn, batch) pairs until None, an answer for each."""
    answers, tasks = answer_pipe(), sys.stdin.buffer
    while (task := pickle.load(tasks)) is not None:
        answer(answers, partial(*task))


def in_turns(fn: Callable[[Batch], Result], batches: Iterable[Batch], aside: bool = True) -> Iterator[Result]:
    """``fn`` of every batch, in order: with ``aside``, odd batches in a worker process while this
    process does the even ones; without, all here. An error in the worker is raised here as
    itself (its traceback as a note); one here stops the worker."""
    pending = iter(batches)
    with _aside(aside) as worker:
        for batch in pending:
            worker.start(fn, batch)
            mine = [fn(b) for b in _next(pending)]  # the batch after it, here meanwhile
            yield worker.result()
            yield from mine


class Aside:
    """A worker for one batch at a time, handed over (``start``) before this process turns to other
    work and collected (``result``) after it; made by ``aside``."""

    def __init__(self, child: subprocess.Popen | None):
        self.child = child
        self.task: partial | None = None

    def start(self, fn: Callable[[Batch], Result], batch: Batch) -> None:
        if self.task is not None:
            raise RuntimeError("Aside.start: the result of the batch before is not collected yet")
        self.task = partial(fn, batch)
        if self.child is not None:
            assert self.child.stdin is not None
            try:
                send(self.child.stdin, (fn, batch))
            except BrokenPipeError:
                pass  # the worker ended: its (missing) answer says so

    def result(self) -> Any:
        task, self.task = self.task, None
        if task is None:
            raise RuntimeError("Aside.result: no batch was started")
        if self.child is None:
            return task()
        assert self.child.stdout is not None
        return unpack(receive(self.child.stdout), self.child, "computing a batch")


@contextmanager
def aside(enabled: bool = True) -> Iterator[Aside]:
    """A worker process (``serve_batches``) that computes a batch while this process does other
    work with it: ``start(fn, batch)``, the other work, then ``result()``. Not ``enabled``, the
    batch is computed here when its result is asked for: the same results, one core. An error in
    the worker is raised by ``result`` as itself; leaving the block stops the worker."""
    if not enabled:
        yield Aside(None)
        return
    with running("biocurate.workers:serve_batches") as child:
        yield Aside(child)
        assert child.stdin is not None
        try:
            send(child.stdin, None)
            child.stdin.close()
        except BrokenPipeError:
            pass
        child.wait()


_aside = aside  # in_turns' parameter ``aside`` hides the function there


def _next(batches: Iterator[Batch]) -> list[Batch]:
    """The next batch, as a list of none or one (taking no batch beyond it)."""
    return list(itertools.islice(batches, 1))
