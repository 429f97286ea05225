"""biocurate.workers: a stage's batches computed on both cores, in order, errors raised where they belong."""

from __future__ import annotations

import os
from functools import partial

import pytest

from biocurate.workers import WorkerError, aside, in_turns


def where_and_sum(batch: list[int], fail_on: int | None = None) -> tuple[int, int]:
    """(the process that computed it, the batch's sum); ``fail_on`` in the batch: a ValueError."""
    if fail_on is not None and fail_on in batch:
        raise ValueError(f"batch {batch} holds {fail_on}")
    if -1 in batch:
        os._exit(5)  # a crash of the process computing it
    return os.getpid(), sum(batch)


@pytest.mark.parametrize("count", [0, 1, 4, 7])
def test_every_batch_is_computed_once_in_order_half_of_them_in_a_worker(count, started):
    batches = [[i, 10 * i] for i in range(count)]
    results = list(in_turns(where_and_sum, iter(batches)))
    assert [s for _, s in results] == [11 * i for i in range(count)]
    # odd batches (0-based even positions) in the worker, the others here
    assert [pid == os.getpid() for pid, _ in results] == [i % 2 == 1 for i in range(count)]
    assert len(started.of("biocurate.workers")) == 1 and started.ended()
    assert list(in_turns(where_and_sum, iter(batches), aside=False)) == [(os.getpid(), 11 * i) for i in range(count)]


def test_an_error_in_the_worker_is_raised_here_and_one_here_stops_it(started):
    with pytest.raises(ValueError, match="holds 4") as raised:
        list(in_turns(partial(where_and_sum, fail_on=4), iter([[1], [2], [4], [5]])))
    assert "(in the process computing a batch)" in "\n".join(raised.value.__notes__)
    with pytest.raises(WorkerError, match=r"stopped \(exit code 5\) without saying why"):
        list(in_turns(where_and_sum, iter([[1], [2], [-1], [3]])))
    assert len(started.of("biocurate.workers")) == 2 and started.ended()

    def failing():
        yield [1]
        yield [2]
        raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError, match="the store went away"):
        list(in_turns(where_and_sum, failing()))
    assert len(started.of("biocurate.workers")) == 3 and started.ended()


@pytest.mark.parametrize("enabled", [True, False])
def test_aside_computes_each_batch_while_this_process_works_and_stops_its_worker(enabled, started):
    pids = set()
    with aside(enabled) as worker:
        for batch in ([1, 2], [3], []):
            worker.start(where_and_sum, batch)
            pid, total = worker.result()
            assert total == sum(batch)
            pids.add(pid)
        with pytest.raises(RuntimeError, match="no batch was started"):
            worker.result()
        worker.start(where_and_sum, [1])
        with pytest.raises(RuntimeError, match="not collected yet"):
            worker.start(where_and_sum, [2])
        assert worker.result()[1] == 1
    workers = started.of("biocurate.workers")
    assert pids == ({workers[0].pid} if enabled else {os.getpid()})
    assert len(workers) == (1 if enabled else 0) and started.ended()


def test_an_error_in_the_aside_worker_is_raised_by_result_and_one_here_stops_it(started):
    with aside() as worker:
        worker.start(partial(where_and_sum, fail_on=4), [4])
        with pytest.raises(ValueError, match="holds 4") as raised:
            worker.result()
        assert "(in the process computing a batch)" in "\n".join(raised.value.__notes__)
        worker.start(where_and_sum, [5])  # the worker goes on after an error in a batch
        assert worker.result()[1] == 5
    with aside() as worker, pytest.raises(WorkerError, match=r"stopped \(exit code 5\) without saying why"):
        worker.start(where_and_sum, [-1])
        worker.result()
    with pytest.raises(RuntimeError, match="the store went away"), aside() as worker:
        worker.start(where_and_sum, [1, 2])
        raise RuntimeError("the store went away")  # never collected: the worker is stopped
    assert len(started.of("biocurate.workers")) == 3 and started.ended()


def test_synthesis_and_the_rules_judge_write_the_same_rows_with_a_worker(tmp_path, monkeypatch, started):
    """The template generator and the rules judge, their batches in turns with a worker: the
    same questions and judgments as computed all in one process."""
    import shutil

    from biocurate import judge, synthesis
    from biocurate.stages import run_stage
    from biocurate.store import Store
    from tests.pipeline_helpers import demo_config_at

    base = demo_config_at(tmp_path / "base")
    for stage in ("sample", "execute"):
        run_stage(stage, base, "r0")
    monkeypatch.setattr(synthesis, "INSERT_BATCH", 40)  # several batches of questions
    rows = {}
    for name, aside_from in (("here", 10**9), ("aside", 0)):
        (tmp_path / name).mkdir()
        shutil.copyfile(base.store.path, tmp_path / name / "store.duckdb")
        monkeypatch.setattr(synthesis, "TURNS_MIN_ITEMS", aside_from)
        monkeypatch.setattr(judge, "TURNS_MIN_ITEMS", aside_from)
        config = demo_config_at(tmp_path / name)
        for stage in ("synthesize", "judge"):
            run_stage(stage, config, "r1")
        with Store(config.store.path).open(read_only=True) as con:
            rows[name] = {
                table: con.execute(f"select * exclude (run_id, created_at) from {table} order by 1").fetchall()
                for table in ("queries", "judgments")
            }
        assert (
            len(started.of("biocurate.workers")) == (0 if name == "here" else 2) and started.ended()
        )  # one worker for each stage
    assert len(rows["here"]["queries"]) > 100 and len(rows["here"]["judgments"]) > 100
    assert rows["here"] == rows["aside"]


def test_a_workers_pipes_hold_a_megabyte_where_the_system_allows():
    import fcntl
    from pathlib import Path

    from biocurate import workers

    allowed = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    with workers.running("biocurate.workers:serve_batches") as child:
        sizes = [fcntl.fcntl(p.fileno(), fcntl.F_GETPIPE_SZ) for p in (child.stdin, child.stdout)]
        workers.send(child.stdin, None)
        child.stdin.close()
    # Linux's default is 64 KB; a system allowing less than a megabyte keeps its default
    expected = workers.PIPE_BYTES if allowed >= workers.PIPE_BYTES else 65536
    assert sizes == [expected, expected]
