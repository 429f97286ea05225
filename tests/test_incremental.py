"""Incremental rebuilds: an unchanged rebuild asks nothing; new seeds or a changed template cause
only the work they imply; the run summary says what was new and what was reused."""

from __future__ import annotations

import json
import shutil

import yaml

from biocurate.catalog import load_catalog
from biocurate.config import load_config
from biocurate.item_kinds import single_call_sql
from biocurate.stages import run_stage
from biocurate.store import Store
from tests.conftest import ROOT
from tests.pipeline_helpers import standin_settings, write_config


def stage(result: dict, name: str) -> dict:
    return next(r for r in result["reports"] if r["stage"] == name)


def test_unchanged_rebuild_asks_nothing_and_new_seeds_ask_only_for_their_calls(prefect_harness, standins, tmp_path):
    from flows.rebuild import rebuild

    api, llm = standins
    seeds = tmp_path / "seeds"
    shutil.copytree(ROOT / "data/seeds", seeds)
    genes = (seeds / "gene.csv").read_text().splitlines(keepends=True)
    held_back = next(line for line in genes if line.startswith("TP53,"))
    (seeds / "gene.csv").write_text("".join(line for line in genes if line != held_back))
    config = write_config(tmp_path / "c.toml", standin_settings(tmp_path, api, llm, sample={"seeds_dir": str(seeds)}))
    store = tmp_path / "store.duckdb"

    first = rebuild(config_path=str(config))
    api_first, llm_first = len(api.requests), len(llm.requests)
    assert api_first > 100 and llm_first > 100  # the first rebuild did the work
    assert sum(r["requests"] for r in first["reports"]) == api_first + llm_first

    # Calls whose stored replies were unusable are not asked again: no request, and the run
    # completes (a failed run would raise): the endpoint was not shown to be down.
    second = rebuild(config_path=str(config))
    assert second["status"] == "completed"
    # Not one HTTP request to either server: every answer came from the store.
    assert len(api.requests) == api_first
    assert len(llm.requests) == llm_first
    assert all(r["requests"] == 0 for r in second["reports"])
    assert all(r["rows_new"] == 0 for r in second["reports"]), second["reports"]
    for name in ("sample", "execute", "synthesize", "judge", "quality"):
        assert stage(second, name)["reused"] > 0, f"{name} reports nothing reused"
    with Store(store).open(read_only=True) as con:
        # every call the first rebuild asked (in execute, and the call sets' later steps in chain)
        (answered,) = con.execute("select count(distinct call_id) from api_responses").fetchall()[0]
    assert stage(second, "execute")["reused"] == answered > stage(first, "execute")["rows_in"]
    with Store(store).open(read_only=True) as con:
        recorded = json.loads(
            con.execute("select summary from runs where run_id = ?", [second["run_id"]]).fetchall()[0][0]
        )
    assert [r["requests"] for r in recorded] == [0] * len(recorded)

    # A new seed (TP53 back): only its calls are asked, only their questions are written and judged.
    (seeds / "gene.csv").write_text("".join(genes))
    third = rebuild(config_path=str(config))
    with Store(store).open(read_only=True) as con:
        new_calls = con.execute(
            "select count(*) from candidate_calls where valid and run_id = ?", [third["run_id"]]
        ).fetchall()[0][0]
        tp53_calls = con.execute(
            "select count(*) from candidate_calls c join entities e using (entity_id) "
            "where e.label = 'TP53' and c.run_id = ?",
            [third["run_id"]],
        ).fetchall()[0][0]
        new_queries = con.execute("select count(*) from queries where run_id = ?", [third["run_id"]]).fetchall()[0][0]
        new_sets = con.execute("select count(*) from call_sets where run_id = ?", [third["run_id"]]).fetchall()[0][0]
    assert tp53_calls > 0 and new_calls >= tp53_calls
    assert len(api.requests) - api_first == new_calls == stage(third, "execute")["requests"]
    # Calls whose every question failed before are looked at again but answered from the LLM cache:
    # only the new calls and the new call sets (one request each, TP53's parallel sets and chains)
    # cost generation requests.
    synthesized, judged = stage(third, "synthesize")["requests"], stage(third, "judge")["rows_in"]
    assert new_sets > 0
    assert 0 < synthesized <= new_calls + new_sets and judged == new_queries > 0
    assert len(llm.requests) - llm_first == synthesized + stage(third, "judge")["requests"] > synthesized
    assert stage(third, "execute")["reused"] == answered


def test_changed_question_template_regenerates_only_that_function(demo_config, tmp_path):
    catalog = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", catalog)
    cfg = load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(demo_config.store.path),
            "review.enabled": False,
            "sample.catalog_dir": str(catalog),
            "quality.data_docs_dir": str(tmp_path / "docs"),
        },
    )
    for name in ("sample", "execute", "synthesize", "judge"):
        run_stage(name, cfg, "r1")
    lookup = catalog / "ensembl/lookup.yaml"
    spec = yaml.safe_load(lookup.read_text())
    old = next(f for f in spec["functions"] if f["name"] == "lookup_by_symbol")["questions"]["broad"][0]
    assert "{symbol}" in old and lookup.read_text().count(old) == 1
    lookup.write_text(lookup.read_text().replace(old, "In which part of the {species} genome does {symbol} lie?"))
    load_catalog.cache_clear()  # a process reads the catalog once; every rebuild is a new process

    reports = {name: run_stage(name, cfg, "r2") for name in ("sample", "execute", "synthesize", "judge")}
    with Store(cfg.store.path).open(read_only=True) as con:
        regenerated = con.execute(
            "select distinct c.function from queries q join candidate_calls c using (call_id) where q.run_id = 'r2'"
        ).fetchall()
        observed = con.execute(
            # single items' calls (a call sampled only as a call set's step has no single question)
            "select count(distinct o.call_id) from observations o join candidate_calls c "
            f"using (call_id) where c.function = 'lookup_by_symbol' and {single_call_sql('c')}"
        ).fetchall()[0][0]
    assert regenerated == [("lookup_by_symbol",)]
    assert reports["synthesize"].rows_in == observed > 0
    assert reports["sample"].rows_new == 0 and reports["execute"].rows_new == 0
    assert reports["judge"].rows_new == reports["synthesize"].rows_new > 0
