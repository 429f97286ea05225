"""Concurrent use (issue 19): while a live rebuild and a drift check run, people keep working.

A rebuild runs as a user starts it (``biocurate rebuild``, a subprocess) against the loopback API
stand-in slowed so that it takes a minute or more; a drift check runs at the same time on a
second, published store (with an evaluation run of the retrieval baseline on its version, for
`eval report`). Meanwhile the commands annotators and researchers use run as
subprocesses against both stores, one after another, each timed: every one must succeed within
``BOUND`` seconds while the job is still running. Afterwards the rebuilt store holds exactly what
an undisturbed run of the same work wrote, plus the annotations the concurrent `review pull`
brought in, and Label Studio holds one task per question (the concurrent `review push` and the
rebuild's own review stage created no duplicates).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from biocurate import review
from biocurate.config import load_config
from biocurate.jobs import run_job
from biocurate.publish import publish
from biocurate.snapshot import Snapshot
from biocurate.store import Store
from tests.conftest import ROOT
from tests.pipeline_helpers import accept, content_keys, standin_settings, write_config
from tests.standins.api import ApiStandIn
from tests.test_review import annotate

BIOCURATE = str(Path(sys.executable).parent / "biocurate")
BOUND = 30.0  # seconds a command may take while a job runs (4-5 s alone; this machine is loaded)
STORE_WAIT = 5.0  # seconds of it spent waiting for the store file (the job's batch being written)
BOUND_REVIEW = 120.0  # review pull and push: mostly Label Studio's time (one server for all the tests)
LATENCY = 2.0  # seconds the stand-in waits before each answer during the live rebuild
DRIFT_LATENCY = 4.0  # and during the drift check (its own stand-in: it has fewer commands to outlast)
PULLED = 3  # annotations made in Label Studio while the rebuild runs


def commands(config: Path, review_commands: bool = True, eval_run: str | None = None) -> dict[str, list[str]]:
    # Review first, while the rebuild executes: at its end, its own review stage holds the review
    # lock, and a review push or pull then waits for it (as it should: no task twice).
    found = ({"review pull": ["review", "pull"], "review push": ["review", "push"]} if review_commands else {}) | {
        "sql": ["sql", "select count(*) from api_responses"],
        "status": ["status"],
        "review status": ["review", "status"],
        "publish --dry-run": ["publish", "--dry-run"],
        "qc report": ["qc", "report"],
        "drift report": ["drift", "report"],
    }
    if eval_run:  # a store with an evaluation run (the published one the drift check works on)
        found["eval report"] = ["eval", "report", eval_run]
    return {name: [BIOCURATE, *args, "--config", str(config)] for name, args in found.items()}


def store_wait(output: str) -> float:
    """Seconds a command waited for the store file (its `store was busy` log lines)."""
    return sum(float(w) for w in re.findall(r"store was busy .*waited=([0-9.]+)", output))


def timed_while_running(job: subprocess.Popen, runs: dict[str, list[str]], env: dict, out: dict) -> None:
    """Run each command while ``job`` runs, one after another; record in ``out`` per command the
    seconds it took, its exit code and output, and whether the job was still running when it
    started and when it ended (a thread: the assertions are the test's)."""
    for name, argv in runs.items():
        running = job.poll() is None
        started = time.monotonic()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
        seconds = round(time.monotonic() - started, 2)
        output = done.stdout + done.stderr
        out[name] = (seconds, done.returncode, running, job.poll() is None, output[-3000:])
        print(
            f"{name}: {seconds} s, {store_wait(output)} s of it waiting for the store "
            f"(exit {done.returncode}, job running before/after: {out[name][2:4]})",
            flush=True,
        )


def start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)


def wait_for(what, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"timed out: {log.read_text()[-3000:]}"
        time.sleep(0.2)


@pytest.mark.labelstudio
def test_commands_answer_while_a_rebuild_and_a_drift_check_run(label_studio, prefect_harness, tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    api = ApiStandIn(Snapshot(ROOT / "data/demo_snapshot")).start()
    drift_api = ApiStandIn(Snapshot(ROOT / "data/demo_snapshot"), latency=DRIFT_LATENCY).start()
    reviewing = {"enabled": True, "url": label_studio.url, "project_title": f"concurrency {uuid.uuid4().hex[:8]}"}
    slow = {"timeout_seconds": 60.0}
    try:
        # The undisturbed run of the same work (in this process, the API at full speed); its tasks
        # go to Label Studio, where a reviewer then accepts a few.
        base_file = write_config(
            tmp_path / "base.toml", standin_settings(tmp_path / "base", api, review=reviewing, execute=slow)
        )
        base = load_config(base_file)
        run_job(base, "rebuild")
        expected = content_keys(base.store.path)
        with Store(base.store.path).open(read_only=True) as con:
            tasks = dict(con.execute("select query_id, task_id from review_tasks").fetchall())
        client = review.connect(base)
        for task_id in sorted(tasks.values())[:PULLED]:
            annotate(client, task_id, "accept")
        # The second store: every question accepted (as rows) and published, for the drift check.
        with Store(base.store.path).open() as con:
            accept(con, sorted(tasks))
            assert publish(base, con).version_id == "v0001"
        # An evaluation run on it (the offline retrieval baseline), for `eval report` during the drift check.
        evaluated = subprocess.run(
            [BIOCURATE, "eval", "run", "--version", "v0001", "--baseline", "retrieval", "--config", str(base_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert evaluated.returncode == 0, evaluated.stdout[-2000:] + evaluated.stderr[-2000:]
        with Store(base.store.path).open(read_only=True) as con:
            (eval_run,) = con.execute("select run_id from eval_runs").fetchall()[0]

        api.latency = LATENCY
        live_file = write_config(
            tmp_path / "live.toml", standin_settings(tmp_path / "live", api, review=reviewing, execute=slow)
        )
        live = load_config(live_file)
        rebuild_log, drift_log = tmp_path / "rebuild.log", tmp_path / "drift.log"
        drift_file = write_config(
            tmp_path / "drift.toml",
            standin_settings(tmp_path / "base", drift_api, review=reviewing, execute=slow),
        )
        rebuild = start([BIOCURATE, "rebuild", "--config", str(live_file)], env, rebuild_log)
        drift = start([BIOCURATE, "drift", "check", "--config", str(drift_file)], env, drift_log)
        try:
            # Both are at their network work: the stand-in has been asked by each.
            wait_for(lambda: len(api.requests) > len(expected["api_responses"]) + 10, rebuild, rebuild_log)
            wait_for(lambda: len(drift_api.requests) > 10, drift, drift_log)
            wait_for(live.store.path.exists, rebuild, rebuild_log)
            took: dict[str, dict[str, tuple]] = {"rebuild": {}, "drift check": {}}
            threads = [
                threading.Thread(target=timed_while_running, args=(rebuild, commands(live_file), env, took["rebuild"])),
                threading.Thread(
                    target=timed_while_running,
                    args=(drift, commands(base_file, False, eval_run), env, took["drift check"]),
                ),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for job, results in took.items():
                for name, (seconds, code, running_before, running_after, output) in results.items():
                    assert code == 0, (job, name, output)
                    assert running_before and running_after, f"{job} was not running throughout `{name}`"
                    assert store_wait(output) < STORE_WAIT, (job, name, output)
                    assert seconds < (BOUND_REVIEW if name.startswith("review p") else BOUND), (job, name, seconds)
            assert rebuild.wait(timeout=600) == 0, rebuild_log.read_text()[-3000:]
            assert drift.wait(timeout=600) == 0, drift_log.read_text()[-3000:]
        finally:
            for proc in (rebuild, drift):
                if proc.poll() is None:
                    proc.kill()
    finally:
        api.stop()
        drift_api.stop()

    # The rebuild wrote what the undisturbed run wrote, and the pull landed beside it.
    assert content_keys(live.store.path) == expected
    with Store(live.store.path).open(read_only=True) as con:
        assert dict(con.execute("select query_id, task_id from review_tasks").fetchall()) == tasks
        annotations = con.execute("select count(*), count(distinct ls_annotation_id) from annotations").fetchall()[0]
        assert annotations == (PULLED, PULLED)
    # One Label Studio task per question: no push, concurrent or not, duplicated one.
    project = review._project(client, base, create=False)
    ext_ids = [t.data["ext_id"] for t in client.tasks.list(project=project.id, page_size=500)]
    assert sorted(ext_ids) == sorted(tasks)
