"""A full rebuild flow run on the demo data through Prefect's test harness."""

from __future__ import annotations

import json
import socket

import pytest

from biocurate.config import load_config
from biocurate.errors import ConfigError
from biocurate.execute import pending_calls
from biocurate.stages import JOBS
from biocurate.store import PRIMARY_KEYS, Store, table_counts
from tests.conftest import ROOT

PIPELINE_TABLES = [
    "tools",
    "entities",
    "candidate_calls",
    "api_responses",
    "observations",
    "queries",
    "judgments",
    "qc_results",
]


def test_rebuild_flow_fills_every_stage_and_is_idempotent(prefect_harness, demo_config, tmp_path):
    from flows.rebuild import rebuild

    overrides = {
        "store.path": str(demo_config.store.path),
        "review.enabled": False,
        "quality.data_docs_dir": str(demo_config.quality.data_docs_dir),
    }
    first = rebuild(config_path=str(demo_config.root / "biocurate.toml"), overrides=overrides)
    with Store(demo_config.store.path).open(read_only=True) as con:
        counts = table_counts(con)
        run = con.execute("select status, counts, summary, config_hash, code_version from runs").fetchall()
        survivors = con.execute("select count(*) from survivors").fetchall()[0][0]
        ok = con.execute("select count(*) from api_responses where outcome = 'ok'").fetchall()[0][0]
        valid = con.execute("select count(*) from candidate_calls where valid").fetchall()[0][0]
        # calls still without a definite answer (e.g. the demo's BLAST job that never finishes)
        unanswered = len(pending_calls(con, load_config(demo_config.root / "biocurate.toml", overrides)))
    for table in PIPELINE_TABLES:
        assert counts[table] > 0, f"{table} is empty after the demo rebuild"
    assert ok > 0 and survivors > 0
    assert run[0][0] == "completed"
    stages = [r["stage"] for r in json.loads(run[0][2])]
    assert stages == JOBS["rebuild"]  # every stage of the registry ran, in order (the list: below)
    assert json.loads(run[0][1])["queries"] == counts["queries"]

    # The demo's BLAST job never finishes: asked again alone, the server still reports it running.
    # That is an answer, not an unreachable service: the run completes (a failed run would raise).
    second = rebuild(config_path=str(demo_config.root / "biocurate.toml"), overrides=overrides)
    assert second["status"] == "completed"
    with Store(demo_config.store.path).open(read_only=True) as con:
        again = table_counts(con)
        requests_second = con.execute(
            "select count(*) from api_responses where run_id = ?", [second["run_id"]]
        ).fetchall()[0][0]
    assert {t: again[t] for t in PIPELINE_TABLES} == {t: counts[t] for t in PIPELINE_TABLES}
    assert again["runs"] == 2
    # Everything final was answered from the store: only unanswered calls were asked again.
    execute = next(r for r in second["reports"] if r["stage"] == "execute")
    asked = execute["rows_in"] - execute["reused"]
    assert execute["reused"] == valid - unanswered and execute["reused"] >= ok
    assert asked == unanswered and requests_second <= asked
    assert first["run_id"] != second["run_id"]


def test_one_registry_builds_every_job():
    from biocurate.jobs import stage_groups
    from biocurate.stages import JOBS, STAGES, job_stages

    assert JOBS == {
        "rebuild": [
            "sample",
            "execute",
            "chain",
            "assemble",
            "biotool_compare",
            "discover",
            "synthesize",
            "judge",
            "quality",
            "review_push",
        ],
        "drift": ["drift_check", "judge", "quality", "review_push"],
        "review_pull": ["review_pull"],
        "review_sync": ["review_pull", "review_push"],
        "review_push": ["review_push"],
        "publish": ["publish"],
        "eval": ["eval"],
        "biotool_import": ["biotool_import"],
    }
    for stage in STAGES.values():
        assert stage.writes and set(stage.writes) <= set(PRIMARY_KEYS), stage.name
    assert [s for s in STAGES.values() if s.fans_out] == [STAGES["execute"], STAGES["synthesize"]]
    assert job_stages("rebuild", ["quality", "judge"]) == ["quality", "judge"]
    with pytest.raises(ConfigError, match="drift_check: not a stage of rebuild"):
        job_stages("rebuild", ["drift_check"])
    # With Dask, execute and synthesize (and discover between them) share one cluster.
    dask = load_config(ROOT / "biocurate.toml", overrides={"runner.task_runner": "dask"})
    assert stage_groups(JOBS["rebuild"], dask) == [
        ["sample"],
        ["execute", "chain", "assemble", "biotool_compare", "discover", "synthesize"],
        ["judge"],
        ["quality"],
        ["review_push"],
    ]
    assert stage_groups(JOBS["drift"], dask) == [[n] for n in JOBS["drift"]]


# ---------------------------------------------------------------- a run that did not complete is not Completed


def closed_port_url(path: str = "") -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def flow_run_and_summary(state) -> tuple:
    """The flow run as the Prefect API has it, and the rows of its summary artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    summary = next(a for a in artifacts if a.key == "rebuild-summary")
    return flow_run, json.loads(summary.data) if isinstance(summary.data, str) else summary.data


def test_a_rebuild_whose_every_generation_fails_ends_its_flow_run_failed(prefect_harness, tmp_path):
    from flows.rebuild import rebuild
    from flows.run import RunNotCompleted, job_result

    url = closed_port_url("/v1")
    model = {
        "provider": "openai",
        "base_url": url,
        "model": "standin-1",
        "max_retries": 0,
        "requests_per_second": 1000.0,
    }
    overrides = {
        "store.path": str(tmp_path / "s.duckdb"),
        "review.enabled": False,
        "sample.calls_per_function": 1,
        "synthesis.generator": model,
        "synthesis.judge": {**model, "model": "standin-judge"},
    }
    config = str(ROOT / "biocurate.toml")
    state = rebuild(
        config_path=config, overrides=overrides, stages=["sample", "execute", "synthesize"], return_state=True
    )
    flow_run, summary = flow_run_and_summary(state)
    assert state.is_failed() and state.name == "Failed"
    assert flow_run.state.is_failed() and flow_run.state.name == "Failed"  # what the UI and automations see
    assert flow_run.state.message.startswith("biocurate run ") and " failed: what to fix: synthesize: none of the" in (
        flow_run.state.message
    )
    assert url in flow_run.state.message  # the endpoint to check is named
    synthesize = next(row for row in summary if row["stage"] == "synthesize")
    assert synthesize["in"] > 0 and synthesize["failed"] >= synthesize["in"]  # the summary is still written
    result = job_result(state)  # what the CLI exits from
    assert result["status"] == "failed" and result["fixes"][0].startswith("synthesize: none of the")
    with Store(tmp_path / "s.duckdb").open(read_only=True) as con:
        assert con.execute("select status from runs where run_id = ?", [result["run_id"]]).fetchall() == [("failed",)]
    # Called as a function, a flow whose run failed raises instead of returning as if it completed.
    with pytest.raises(RunNotCompleted, match="failed: what to fix: synthesize: none of the"):
        rebuild(config_path=config, overrides=overrides, stages=["synthesize"])


def test_a_rebuild_with_label_studio_down_ends_its_flow_run_degraded(prefect_harness, tmp_path, monkeypatch):
    from flows.rebuild import rebuild
    from flows.run import job_result

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "ls-token")
    url = closed_port_url()
    overrides = {"store.path": str(tmp_path / "s.duckdb"), "review.enabled": True, "review.url": url}
    state = rebuild(
        config_path=str(ROOT / "biocurate.toml"), overrides=overrides, stages=["review_push"], return_state=True
    )
    flow_run, summary = flow_run_and_summary(state)
    # Not Completed: a Failed state named Degraded, saying what to fix.
    assert flow_run.state.is_failed() and flow_run.state.name == "Degraded"
    assert " degraded: what to fix: review_push: review skipped" in flow_run.state.message
    assert url in flow_run.state.message
    assert [row["stage"] for row in summary] == ["review_push"]
    assert job_result(state)["status"] == "degraded"


def test_a_completed_rebuild_ends_its_flow_run_completed(prefect_harness, tmp_path):
    from flows.rebuild import rebuild
    from flows.run import job_result

    overrides = {"store.path": str(tmp_path / "s.duckdb"), "review.enabled": False}
    state = rebuild(config_path=str(ROOT / "biocurate.toml"), overrides=overrides, stages=["sample"], return_state=True)
    flow_run, summary = flow_run_and_summary(state)
    assert flow_run.state.is_completed() and flow_run.state.name == "Completed"
    assert [row["stage"] for row in summary] == ["sample"] and summary[0]["new"] > 0
    assert job_result(state)["status"] == "completed"
