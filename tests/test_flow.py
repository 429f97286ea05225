"""A full rebuild flow run on the demo data through Prefect's test harness."""

from __future__ import annotations

import json

import pytest

from biocurate.config import load_config
from biocurate.errors import ConfigError
from biocurate.execute import pending_calls
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
    assert stages == [
        "sample",
        "execute",
        "biotool_compare",
        "discover",
        "synthesize",
        "judge",
        "quality",
        "review_push",
    ]
    assert json.loads(run[0][1])["queries"] == counts["queries"]

    second = rebuild(config_path=str(demo_config.root / "biocurate.toml"), overrides=overrides)
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
        ["execute", "biotool_compare", "discover", "synthesize"],
        ["judge"],
        ["quality"],
        ["review_push"],
    ]
    assert stage_groups(JOBS["drift"], dask) == [[n] for n in JOBS["drift"]]
