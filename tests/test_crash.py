"""Crash safety: SIGKILL a real rebuild (or publish) process mid-stage, run it again, and get the
same rows as an uninterrupted run; two rebuilds at once: the second refuses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from biocurate.config import load_config
from biocurate.lock import lock_path
from biocurate.publish import publish
from biocurate.snapshot import Snapshot
from biocurate.stages import JOBS, run_stage
from biocurate.store import Store, table_counts
from tests.conftest import ROOT
from tests.pipeline_helpers import accept_survivors, content_keys, standin_settings, write_config
from tests.standins.api import ApiStandIn
from tests.standins.llm import LLMStandIn

BIOCURATE = str(Path(sys.executable).parent / "biocurate")


@pytest.fixture
def api():
    server = ApiStandIn(Snapshot(ROOT / "data/demo_snapshot"), latency=0.03).start()
    yield server
    server.stop()


@pytest.fixture
def llm():
    server = LLMStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def env(prefect_harness):
    """Subprocesses talk to the test session's Prefect server instead of starting their own."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([BIOCURATE, *args], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)


def kill_when(proc: subprocess.Popen, ready, log: Path, timeout: float = 120) -> None:
    """SIGKILL the process the moment ``ready()`` holds (it must still be running then)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before the kill point:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"kill point not reached:\n{log.read_text()[-3000:]}"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


def finish(args: list[str], env: dict, log: Path) -> str:
    done = subprocess.run([BIOCURATE, *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    log.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def readable_after_kill(store: Path) -> dict[str, int]:
    """The file opens (read-only replays DuckDB's write-ahead log) and every table answers."""
    with Store(store).open(read_only=True) as con:
        return table_counts(con)


def reference_store(tmp_path: Path, settings: dict) -> Path:
    """The same rebuild, uninterrupted, in its own store (stages run in this process)."""
    ref = tmp_path / "reference"
    ref.mkdir()
    config = load_config(write_config(ref / "c.toml", {**settings, "store": {"path": str(ref / "store.duckdb")}}))
    for name in JOBS["rebuild"]:  # review is off in these settings
        run_stage(name, config, "reference")
    return config.store.path


def assert_same_rows(store: Path, reference: Path) -> None:
    got, want = content_keys(store), content_keys(reference)
    for table in want:
        assert got[table] == want[table], (
            f"{table}: {len(got[table] - want[table])} extra, {len(want[table] - got[table])} missing"
        )
    with Store(store).open(read_only=True) as con:
        counts = table_counts(con)
    with Store(reference).open(read_only=True) as con:
        reference_counts = table_counts(con)
    for table in ("candidate_calls", "api_responses", "observations", "queries", "judgments"):
        assert counts[table] == reference_counts[table] > 0, table


def test_sigkill_mid_execute_then_rerun_gives_the_same_rows(api, env, tmp_path):
    settings = standin_settings(tmp_path, api, execute={"batch_size": 20})
    config = write_config(tmp_path / "c.toml", settings)
    store = tmp_path / "store.duckdb"

    proc = start(
        [
            "rebuild",
            "--config",
            str(config),
            "--stage",
            "sample",
            "--stage",
            "execute",
            "--stage",
            "synthesize",
            "--stage",
            "judge",
            "--stage",
            "quality",
        ],
        env,
        tmp_path / "killed.log",
    )
    kill_when(proc, lambda: len(api.requests) >= 80, tmp_path / "killed.log")
    partial = readable_after_kill(store)
    assert 0 < partial["api_responses"] < 200 and partial["queries"] == 0  # stopped inside execute
    holder = json.loads(lock_path(load_config(config)).read_text())
    assert holder["pid"] == proc.pid and holder["job"] == "rebuild"  # the dead process's lock is left

    out = finish(["rebuild", "--config", str(config)], env, tmp_path / "rerun.log")
    assert f"(pid {proc.pid}" in out and "stopped without finishing" in out
    with Store(store).open(read_only=True) as con:
        statuses = sorted(r[0] for r in con.execute("select status from runs").fetchall())
    assert statuses == ["completed", "interrupted"]
    assert_same_rows(store, reference_store(tmp_path, settings))


def test_sigkill_mid_synthesis_then_rerun_gives_the_same_rows(api, llm, env, tmp_path):
    settings = standin_settings(tmp_path, api, llm)
    settings["synthesis"]["generator"]["requests_per_second"] = 40.0  # synthesis takes seconds
    settings["synthesis"]["judge"] = {"provider": "template", "model": "rules-v1"}
    config = write_config(tmp_path / "c.toml", settings)
    store = tmp_path / "store.duckdb"

    proc = start(["rebuild", "--config", str(config)], env, tmp_path / "killed.log")
    kill_when(proc, lambda: len(llm.requests) >= 75, tmp_path / "killed.log")
    partial = readable_after_kill(store)
    assert partial["observations"] > 100 and partial["judgments"] == 0  # stopped inside synthesize
    assert 0 < partial["queries"] < 400  # the first batches were kept

    finish(["rebuild", "--config", str(config)], env, tmp_path / "rerun.log")
    assert_same_rows(store, reference_store(tmp_path, settings))


def test_sigkill_mid_publish_then_rerun_publishes_one_complete_version(api, env, tmp_path):
    settings = standin_settings(tmp_path, api)
    config = load_config(write_config(tmp_path / "c.toml", settings))
    for name in ("sample", "execute", "synthesize", "judge", "quality"):
        run_stage(name, config, "r1")
    assert accept_survivors(config.store.path) > 100
    # The reference publishes the same store, uninterrupted.
    ref = tmp_path / "ref"
    ref.mkdir()
    shutil.copy(config.store.path, ref / "store.duckdb")
    ref_config = load_config(
        write_config(
            ref / "c.toml",
            {**settings, "store": {"path": str(ref / "store.duckdb")}, "publish": {"out_dir": str(ref / "versions")}},
        )
    )
    with Store(ref_config.store.path).open() as con:
        assert publish(ref_config, con).version_id == "v0001"

    versions = tmp_path / "versions"
    proc = start(["publish", "--config", str(tmp_path / "c.toml")], env, tmp_path / "killed.log")
    kill_when(proc, lambda: (versions / ".tmp-v0001").exists(), tmp_path / "killed.log")
    assert readable_after_kill(config.store.path)["dataset_versions"] == 0

    finish(["publish", "--config", str(tmp_path / "c.toml")], env, tmp_path / "rerun.log")
    assert sorted(p.name for p in versions.iterdir()) == ["v0001"]  # no temp folder left, no duplicate
    rows = {}
    for name, path in (("rerun", config.store.path), ("reference", ref_config.store.path)):
        with Store(path).open(read_only=True) as con:
            rows[name] = (
                con.execute("select version_id, count(*) from dataset_versions group by all").fetchall(),
                con.execute(
                    "select item_id, split, user_query, observation from dataset_items order by item_id"
                ).fetchall(),
            )
    assert rows["rerun"] == rows["reference"] and len(rows["rerun"][1]) > 100
    files = {
        name: json.loads((root / "v0001/manifest.json").read_text())["files"]
        for name, root in (("rerun", versions), ("reference", ref / "versions"))
    }

    def data(f: dict) -> dict:
        return {k: v for k, v in f.items() if k != "README.md"}  # the card names its creation time

    assert data(files["rerun"]) == data(files["reference"])


def test_second_rebuild_refuses_while_the_first_runs(api, env, tmp_path):
    # slow answers keep the first rebuild busy for longer than a second process takes to start,
    # even on a loaded machine (the first is killed at the end, so this costs no test time)
    api.latency = 1.0
    config = write_config(tmp_path / "c.toml", standin_settings(tmp_path, api))
    first = start(
        ["rebuild", "--config", str(config), "--stage", "sample", "--stage", "execute"], env, tmp_path / "first.log"
    )
    try:
        deadline = time.monotonic() + 120
        while len(api.requests) < 10:
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.05)
        second = subprocess.run(
            [BIOCURATE, "rebuild", "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert second.returncode == 2
        message = " ".join(second.stdout.split())
        assert "cannot start rebuild" in message and f"pid {first.pid}" in message and "since" in message
        assert first.poll() is None  # the first one was not disturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    with Store(tmp_path / "store.duckdb").open(read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchall()[0][0] == 1  # the refused one left no run
