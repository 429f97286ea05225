"""Scale-out: execute and synthesize on a local Dask cluster (prefect-dask) write the same rows as
the default runner; the store stays single-writer (workers get slices, this process writes)."""

from __future__ import annotations

import pytest

from biocurate.config import load_config
from biocurate.distributed import local_fan_out, synthesize_slices, worker_config
from biocurate.errors import ConfigError
from biocurate.stages import catalog_for, run_stage
from biocurate.store import Store
from biocurate.synthesis import current_versions, observed_calls_without_queries
from tests.conftest import ROOT
from tests.pipeline_helpers import content_keys, standin_settings, write_config


def settings_in(folder, api, **runner):
    folder.mkdir()
    return write_config(folder / "c.toml", standin_settings(folder, api, runner=runner))


def test_rebuild_on_a_local_dask_cluster_writes_the_same_rows(prefect_harness, standins, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.rebuild import rebuild

    api, _ = standins
    default = settings_in(tmp_path / "default", api)
    dask = settings_in(tmp_path / "dask", api, task_runner="dask", dask_workers=2, chunk_size=40)

    rebuild(config_path=str(default))
    with get_client(sync_client=True) as client:
        before = len([t for t in client.read_task_runs() if t.name.startswith("slice_task")])
    result = rebuild(config_path=str(dask))
    with get_client(sync_client=True) as client:
        slices = [t for t in client.read_task_runs() if t.name.startswith("slice_task")]
    assert len(slices) - before >= 6  # execute and synthesize went out in slices of about 40 calls
    assert all(t.state.is_completed() for t in slices)

    got = content_keys(tmp_path / "dask/store.duckdb")
    want = content_keys(tmp_path / "default/store.duckdb")
    for table in want:
        assert got[table] == want[table], table
    assert len(got["queries"]) > 300 and len(got["qc_results"]) > 300
    execute = next(r for r in result["reports"] if r["stage"] == "execute")
    assert execute["rows_in"] > 200 and execute["requests"] == execute["rows_in"] - execute["reused"]


def test_scratch_slices_write_what_the_stage_writes_in_place(standins, tmp_path):
    """The worker side without a cluster (slices through scratch stores, one after another), with
    the LLM generator: its cache and accounting rows come back from the workers too."""
    api, llm = standins
    settings = standin_settings(tmp_path, api, llm)
    local = load_config(write_config(tmp_path / "local.toml", settings))
    sliced = load_config(
        write_config(
            tmp_path / "sliced.toml",
            {**settings, "store": {"path": str(tmp_path / "sliced.duckdb")}, "runner": {"chunk_size": 25}},
        )
    )
    run_stage("sample", local, "r1")
    run_stage("sample", sliced, "r1")
    for name in ("execute", "synthesize"):
        run_stage(name, local, "r1")
        report = run_stage(name, sliced, "r1", fan_out=local_fan_out(sliced, "r1"))
        assert report.rows_new > 0
    with Store(sliced.store.path).open() as con:
        run_stage("sample", sliced, "r2")
        # only calls whose generation failed (recorded, answered from the LLM cache next time) are left
        gen = sliced.synthesis.generator
        versions = current_versions(sliced, catalog_for(sliced))
        todo = observed_calls_without_queries(con, gen.provider, gen.model, versions)
        failed = con.execute("select subject_id from generation_failures where stage = 'synthesize'").fetchall()
        assert {row[0] for row in todo} <= {row[0] for row in failed}
        assert sum(s.calls for s in synthesize_slices(sliced, con, catalog_for(sliced))) == len(todo)
    got, want = content_keys(sliced.store.path), content_keys(local.store.path)
    for table in ("candidate_calls", "api_responses", "observations", "queries", "llm_calls"):
        assert got[table] == want[table] and want[table], table


def test_workers_share_the_rate_limits_and_never_record(tmp_path):
    cfg = load_config(
        ROOT / "biocurate.toml",
        overrides={
            "runner.dask_workers": 4,
            "runner.dask_threads_per_worker": 2,
            "synthesis.generator.requests_per_second": 8.0,
        },
    )
    share = worker_config(cfg)
    assert share.execute.rate_safety == pytest.approx(cfg.execute.rate_safety / 8)
    assert share.synthesis.generator.requests_per_second == pytest.approx(1.0)
    recording = load_config(
        ROOT / "biocurate.toml",
        overrides={
            "execute.transport": "record",
            "runner.task_runner": "dask",
            "store.path": str(tmp_path / "s.duckdb"),
        },
    )
    with pytest.raises(ConfigError, match="cannot record"):
        run_stage("execute", recording, "r1", fan_out=local_fan_out(recording, "r1"))
