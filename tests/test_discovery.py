"""Entity resolution and expansion: responses fill missing identifiers and reveal new seeds."""

from __future__ import annotations

import json

from biocurate.catalog import build_request, load_catalog
from biocurate.config import load_config
from biocurate.snapshot import Snapshot
from biocurate.stages import run_stage
from biocurate.store import Store
from tests.conftest import ROOT
from tests.standins.api import ApiStandIn

LOOKUP = {
    "id": "ENSG00000012048",
    "display_name": "BRCA1",
    "species": "homo_sapiens",
    "object_type": "Gene",
    "biotype": "protein_coding",
    "seq_region_name": "17",
    "start": 43044292,
    "end": 43170245,
    "strand": -1,
    "Transcript": [
        {"id": "ENST00000357654", "display_name": "BRCA1-203", "species": "homo_sapiens"},
        {"id": "not-a-transcript-id", "display_name": "x", "species": "homo_sapiens"},
    ],
}


def test_lookup_fills_a_missing_gene_id_and_reveals_transcripts(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "gene.csv").write_text("symbol,species,source\nBRCA1,homo_sapiens,test seed without ids\n")
    snapshot = Snapshot(tmp_path / "snap")
    tool = load_catalog()["lookup_by_symbol"]
    server = ApiStandIn(snapshot).start()
    try:
        cfg = load_config(
            ROOT / "biocurate.toml",
            overrides={
                "store.path": str(tmp_path / "s.duckdb"),
                "sample.seeds_dir": str(seeds),
                "sample.quota": {"function": {"lookup_by_symbol": 1}},
                "sample.calls_per_function": 0,
                "sample.kinds": {"parallel": 0, "multi_step": 0, "no_tool": 0},  # one single call
                "execute.transport": "live",
                "execute.base_urls": server.base_urls(),
                "review.enabled": False,
            },
        )
        run_stage("sample", cfg, "r1")
        with Store(cfg.store.path).open(read_only=True) as con:
            [(arguments,)] = con.execute("select arguments from candidate_calls").fetchall()
        req = build_request(tool, json.loads(arguments))
        snapshot.add(
            method="GET",
            url=req.url,
            params=req.params,
            body=None,
            status=200,
            content_type="application/json",
            content=json.dumps(LOOKUP).encode(),
            file="ensembl/brca1.json",
            origin="illustrative",
            provenance="test",
        )
        run_stage("execute", cfg, "r1")
        report = run_stage("discover", cfg, "r1")  # a stage of its own, after execute
        assert any("2 new entities discovered" in n and "1 failed" in n for n in report.notes), report.notes
        assert (report.rows_in, report.rows_new, report.reused) == (1, 2, 0)
        assert run_stage("discover", cfg, "r1").rows_new == 0  # found again: nothing new
        # The next rebuild can now sample a function that needs the gene's Ensembl id.
        cfg2 = cfg.model_copy(
            update={
                "sample": cfg.sample.model_copy(
                    update={
                        "quota": cfg.sample.quota.model_copy(
                            update={"function": {"lookup_by_symbol": 1, "lookup_by_id": 1}}
                        )
                    }
                )
            }
        )
        run_stage("sample", cfg2, "r2")
        with Store(cfg.store.path).open(read_only=True) as con:
            found = con.execute(
                "select entity_type, label, found_by_call is not null, source from entities "
                "order by entity_type, source"
            ).fetchall()
            by_id = con.execute("select arguments from candidate_calls where function = 'lookup_by_id'").fetchall()
    finally:
        server.stop()
    assert ("transcript", "ENST00000357654", True, "discovered by lookup_by_symbol") in found
    assert not any(label == "not-a-transcript-id" for _, label, _, _ in found)
    assert [json.loads(a)["id"] for (a,) in by_id] == ["ENSG00000012048"]
