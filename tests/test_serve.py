"""`biocurate serve`: deployments with the crons and parameters of [schedule], registered on a real
Prefect server by `python -m flows.serve`, and a triggered run that does what the CLI does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from biocurate.cli import app
from biocurate.errors import ConfigError
from biocurate.store import Store
from tests.conftest import ROOT
from tests.pipeline_helpers import write_config

SCHEDULE = {
    "timezone": "Europe/Paris",
    "rebuild": {"cron": "*/5 * * * *", "parameters": {"stages": ["sample", "execute"]}},
    "review_sync": {"cron": "7,37 * * * *"},
    "drift": {"cron": "0 3 * * 6", "parameters": {"overrides": {"drift.sample_size": 7}}},
    "publish": {"cron": "0 6 * * 1", "enabled": False},
}


@pytest.fixture
def config(tmp_path):
    return write_config(
        tmp_path / "c.toml",
        {
            "store": {"path": str(tmp_path / "store.duckdb")},
            "review": {"enabled": False},
            "publish": {"out_dir": str(tmp_path / "versions")},
            "quality": {"data_docs_dir": str(tmp_path / "docs")},
            "schedule": SCHEDULE,
        },
    )


def test_deployments_carry_the_configured_crons_and_parameters(config):
    from flows.serve import deployments

    found = {d.name: d for d in deployments(config)}
    assert sorted(found) == ["drift", "rebuild", "review-sync"]  # publish is disabled
    crons = {name: (d.schedules[0].schedule.cron, d.schedules[0].schedule.timezone) for name, d in found.items()}
    assert crons == {
        "rebuild": ("*/5 * * * *", "Europe/Paris"),
        "review-sync": ("7,37 * * * *", "Europe/Paris"),
        "drift": ("0 3 * * 6", "Europe/Paris"),
    }
    assert found["rebuild"].parameters == {"config_path": str(config.resolve()), "stages": ["sample", "execute"]}
    assert found["drift"].parameters == {"config_path": str(config.resolve()), "overrides": {"drift.sample_size": 7}}
    assert found["rebuild"].entrypoint == "flows.rebuild.rebuild"
    assert found["review-sync"].entrypoint == "flows.jobs.review_sync"


def test_unknown_parameters_and_bad_crons_are_config_errors(tmp_path):
    from flows.serve import deployments

    bad = write_config(
        tmp_path / "bad.toml", {"schedule": {"rebuild": {"cron": "0 2 * * *", "parameters": {"stagse": ["sample"]}}}}
    )
    with pytest.raises(ConfigError, match="stagse"):
        deployments(bad)
    cron = write_config(tmp_path / "cron.toml", {"schedule": {"drift": {"cron": "every sunday"}}})
    out = CliRunner().invoke(app, ["serve", "--config", str(cron)])
    assert out.exit_code == 2 and "schedule.drift.cron" in " ".join(out.output.split())


def test_serve_without_a_prefect_server_says_how_to_start_one(config, tmp_path):
    # In a fresh process: in this one, Prefect's test harness may have set an API URL, and a
    # successful `serve` replaces its process with the server (os.execv).
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    done = subprocess.run(
        [sys.executable, "-c", "from biocurate.cli import app; app()", "serve", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "scripts/prefect_server.sh start" in " ".join(done.stdout.split())


def test_served_deployments_register_and_a_triggered_run_does_the_cli_work(prefect_harness, config, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "flows.serve", "--config", str(config)],
        env=env,
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 120
            while True:
                names = {
                    d.name: d
                    for d in client.read_deployments()
                    if "biocurate" in (d.tags or []) and d.parameters.get("config_path") == str(config.resolve())
                }
                if len(names) == 3:
                    break
                assert server.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"deployments not registered: {sorted(names)}"
                time.sleep(0.5)
            rebuild = names["rebuild"]
            assert [s.schedule.cron for s in rebuild.schedules] == ["*/5 * * * *"]
            assert rebuild.schedules[0].active
            assert rebuild.parameters["stages"] == ["sample", "execute"]

        run = run_deployment("rebuild/rebuild", timeout=240)
        assert run.state.is_completed(), (run.state, log.read_text()[-3000:])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    with Store(tmp_path / "store.duckdb").open(read_only=True) as con:
        runs = con.execute("select flow, status, summary::varchar from runs").fetchall()
        calls = con.execute("select count(*) from candidate_calls").fetchall()[0][0]
        responses = con.execute("select count(*) from api_responses").fetchall()[0][0]
    assert len(runs) == 1 and runs[0][:2] == ("rebuild", "completed")
    assert '"stage": "execute"' in runs[0][2] and '"stage": "synthesize"' not in runs[0][2]
    assert calls > 100 and responses == calls
