"""Call sets (issue 18): declarations, deterministic sampling, chains built from stored
observations and executed for real, combined observations (docs/item_kinds.md)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import duckdb
import pytest

from biocurate.call_sets import sample_sets
from biocurate.catalog import load_catalog
from biocurate.config import KindsConfig
from biocurate.errors import CatalogError
from biocurate.item_kinds import SET_TEMPLATE_PREFIX, load_item_kinds
from biocurate.sampling import sample_calls
from biocurate.seeds import load_seeds, species_table
from biocurate.stages import run_stage
from biocurate.store import Store
from tests.conftest import ROOT
from tests.pipeline_helpers import demo_config_at, live_execute_config
from tests.store_rows import Rows

KINDS = ("parallel", "multi_step", "no_tool")
SET_STAGES = ("sample", "execute", "chain", "assemble")


def with_kinds(config, **kinds):
    sample = config.sample.model_copy(update={"kinds": KindsConfig(**kinds)})
    return config.model_copy(update={"sample": sample})


DEMO_KINDS = {"sample.kinds.parallel": 2, "sample.kinds.multi_step": 2, "sample.kinds.no_tool": 2}


def rows(config, sql, params=()):
    with Store(config.path(config.store.path)).open(read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def snapshot_of(config) -> dict:
    tables = {
        "call_sets": "set_id",
        "call_set_steps": "set_id, position",
        "candidate_calls": "call_id",
        "api_responses": "response_id",
        "observations": "observation_id",
        "call_set_observations": "observation_id, position",
    }
    return {t: sorted(rows(config, f"select {k} from {t}")) for t, k in tables.items()}


@pytest.fixture(scope="module")
def demo_sets(tmp_path_factory):
    """The demo (replay of data/demo_snapshot) with every kind on: sample, execute, chain, assemble."""
    tmp = tmp_path_factory.mktemp("call-sets-demo")
    config = demo_config_at(tmp, **DEMO_KINDS)
    reports = {name: run_stage(name, config, "first") for name in SET_STAGES}
    return config, reports


# ---------------------------------------------------------------- the demo


def test_the_demo_assembles_ten_sets_of_every_kind_with_every_step_answered(demo_sets):
    config, reports = demo_sets
    assembled = dict(
        rows(
            config,
            "select s.kind, count(*) from call_sets s join observations o on o.call_id = s.set_id "
            "and o.builder = 'call_set' group by s.kind",
        )
    )
    assert all(assembled.get(kind, 0) >= 10 for kind in KINDS), assembled
    # every step of every set was answered from the snapshot: no replay miss, no failure
    outcomes = Counter(
        o
        for (o,) in rows(
            config,
            "select r.outcome from call_set_steps st join api_responses r using (call_id)",
        )
    )
    assert set(outcomes) == {"ok"}, outcomes
    assert not reports["chain"].failures and not reports["assemble"].failures
    assert reports["chain"].rows_new == 12  # the second step of each of the 12 chains


def test_no_tool_sets_get_the_empty_combined_observation_at_once(demo_sets):
    config, _ = demo_sets
    found = rows(
        config,
        "select o.text, s.spec from call_sets s join observations o on o.call_id = s.set_id where s.kind = 'no_tool'",
    )
    assert found and {text for text, _ in found} == {"[]"}
    assert all(json.loads(spec)["reason"] and json.loads(spec)["topic"] for _, spec in found)
    assert not rows(config, "select 1 from call_set_steps st join call_sets s using (set_id) where s.kind = 'no_tool'")


def test_a_rebuild_adds_nothing(demo_sets, tmp_path):
    config, _ = demo_sets
    before = snapshot_of(config)
    again = {name: run_stage(name, config, "second") for name in SET_STAGES}
    assert snapshot_of(config) == before
    assert again["chain"].rows_new == 0 and again["assemble"].rows_new == 0


def test_kinds_do_not_change_the_single_calls_and_follow_the_quotas(demo_sets, tmp_path):
    config, _ = demo_sets
    off = with_kinds(demo_config_at(tmp_path), parallel=0, multi_step=0, no_tool=0)
    run_stage("sample", off, "off")
    singles = "select call_id, template from candidate_calls where template not like 'set:%' order by call_id"
    assert rows(off, singles) == rows(config, singles)
    assert not rows(off, "select 1 from call_sets")
    # quotas: sets per declaration as [sample.kinds] asks
    per_declaration = Counter(t for (t,) in rows(config, "select template from call_sets"))
    declared = load_item_kinds(ROOT / "catalog")
    for kind in KINDS:
        for decl in declared.declarations(kind):
            assert per_declaration[decl.name] == 2, decl.name
    one = with_kinds(off, parallel=1, multi_step=0, no_tool=0)
    run_stage("sample", one, "one")
    kinds = Counter(k for (k,) in rows(one, "select kind from call_sets"))
    assert kinds == {"parallel": len(declared.parallel)}


def test_sampling_is_deterministic_and_steps_are_ordinary_calls():
    catalog = load_catalog(ROOT / "catalog")
    seeds = load_seeds(ROOT / "data/seeds", ROOT / "catalog")
    species = species_table(ROOT / "catalog")
    config = with_kinds(demo_config_at(ROOT / "unused"), parallel=2, multi_step=2, no_tool=2).sample
    first = sample_sets(catalog, load_item_kinds(ROOT / "catalog"), seeds.entities, species, config)
    second = sample_sets(catalog, load_item_kinds(ROOT / "catalog"), seeds.entities, species, config)
    assert first.sets == second.sets and first.steps == second.steps and first.calls == second.calls
    # a step is the row sampling would make: a step that is also a single call has the same key
    singles = {c["call_id"]: c for c in sample_calls(catalog, seeds.entities, species, config).calls}
    shared = [c for c in first.calls if c["call_id"] in singles]
    assert shared, "some steps are also sampled single calls"
    for call in shared:
        assert call["arguments"] == singles[call["call_id"]]["arguments"]
    assert all(c["valid"] and c["template"].startswith(SET_TEMPLATE_PREFIX) for c in first.calls)
    other = config.model_copy(update={"seed": 14})
    reordered = sample_sets(catalog, load_item_kinds(ROOT / "catalog"), seeds.entities, species, other)
    assert [s["set_id"] for s in reordered.sets] != [s["set_id"] for s in first.sets]


def test_a_parallel_set_and_its_question_in_item_steps(demo_sets, tmp_path):
    config, _ = demo_sets
    copy = tmp_path / "copy.duckdb"
    shutil.copy(config.path(config.store.path), copy)
    con = duckdb.connect(str(copy))
    try:
        set_id, template = con.execute(
            "select set_id, template from call_sets where template = 'variant_effects_pair' order by set_id limit 1"
        ).fetchall()[0]
        steps = con.execute(
            "select st.position, st.call_id, c.function, c.arguments from call_set_steps st "
            "join candidate_calls c using (call_id) where set_id = ? order by position",
            [set_id],
        ).fetchall()
        assert [p for p, *_ in steps] == [0, 1]
        assert {f for *_, f, _ in steps} == {"vep_by_id"}
        assert len({json.loads(a)["id"] for *_, a in steps}) == 2  # two variants
        (combined,) = con.execute(
            "select text from observations where call_id = ? and builder = 'call_set'", [set_id]
        ).fetchall()[0]
        texts = [
            con.execute("select text from observations where call_id = ?", [call_id]).fetchall()[0][0]
            for _, call_id, *_ in steps
        ]
        assert json.loads(combined) == texts
        query_id = Rows(con).query(set_id, "What do rs334 and rs10244642 do to their genes?", qc=None)
        listed = con.execute(
            "select kind, position, call_id, function, observation, depends_on from item_steps "
            "where query_id = ? order by position",
            [query_id],
        ).fetchall()
        assert [(k, p, c, f, o, d) for k, p, c, f, o, d in listed] == [
            ("parallel", position, call_id, function, text, None)
            for (position, call_id, function, _), text in zip(steps, texts, strict=True)
        ]
        (kind,) = con.execute("select kind from query_context where query_id = ?", [query_id]).fetchall()[0]
        assert kind == "parallel"
    finally:
        con.close()


# ---------------------------------------------------------------- chains against the API stand-in


@pytest.fixture
def api():
    from biocurate.snapshot import Snapshot
    from tests.standins.api import ApiStandIn

    stand_in = ApiStandIn(Snapshot(ROOT / "data/demo_snapshot")).start()
    yield stand_in
    stand_in.stop()


def chain_config(tmp_path, api):
    # no single calls: only the sets' steps are executed
    config = live_execute_config(tmp_path, api)
    config = config.model_copy(update={"sample": config.sample.model_copy(update={"calls_per_function": 0})})
    return with_kinds(config, parallel=0, multi_step=2, no_tool=0)


def chain_state(config, template):
    return rows(
        config,
        "select s.set_id, st.position, st.call_id, st.depends_on, st.fed_by, c.arguments, "
        "(select text from observations o where o.call_id = st.call_id) "
        "from call_sets s join call_set_steps st using (set_id) join candidate_calls c using (call_id) "
        "where s.template = ? order by s.set_id, st.position",
        [template],
    )


def test_a_chain_is_built_from_the_stored_observation_and_executed(tmp_path, api):
    config = chain_config(tmp_path, api)
    reports = {name: run_stage(name, config, "r") for name in SET_STAGES}
    steps = chain_state(config, "symbol_then_gene_record")
    by_set: dict[str, list] = {}
    for row in steps:
        by_set.setdefault(row[0], []).append(row)
    assert len(by_set) == 2
    for chain in by_set.values():
        first, second = chain
        fed = json.loads(second[4])
        value = json.loads(first[6])["id"]  # the gene id in step 1's observation
        assert fed == {"id": {"from": "id", "value": value}}
        assert json.loads(second[5])["id"] == value and second[3] == 0
        assert second[6] is not None and json.loads(second[6])["id"] == value
    # executed for real: the stand-in was asked for the later steps
    asked = [path for _, _, path, _ in api.requests]
    assert any("/lookup/id/ENSG00000139618" in p for p in asked)
    assert reports["chain"].rows_new == 12 and reports["assemble"].rows_new == 12


def test_a_chain_whose_first_step_fails_produces_no_item(tmp_path, api):
    from tests.standins.api import Fault

    api.faults.append(Fault("empty", "/lookup/symbol/homo_sapiens/BRCA2"))  # a 200 with no body
    config = chain_config(tmp_path, api)
    reports = {name: run_stage(name, config, "r") for name in SET_STAGES}
    by_set: dict[str, list] = {}
    for row in chain_state(config, "symbol_then_gene_record"):
        by_set.setdefault(row[0], []).append(row)
    failed = [s for s in by_set.values() if s[0][6] is None]
    working = [s for s in by_set.values() if s[0][6] is not None]
    assert len(failed) == 1 and len(working) == 1
    (failed_id,) = {row[0] for row in failed[0]}
    assert len(failed[0]) == 1  # no later step
    assert len(working[0]) == 2
    assert not rows(config, "select 1 from observations where call_id = ?", [failed_id])
    stopped = {k: n for k, n in reports["chain"].failures.items() if "symbol_then_gene_record: step 1" in k}
    assert sum(stopped.values()) == 1, reports["chain"].failures
    # the other chain that starts with the same lookup stops too, for the same reason
    assert any("symbol_then_transcripts: step 1" in k for k in reports["chain"].failures)


def test_a_value_missing_at_the_declared_path_stops_the_chain(tmp_path, api):
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", catalog_dir)
    declarations = (catalog_dir / "item_kinds.yaml").read_text()
    (catalog_dir / "item_kinds.yaml").write_text(declarations.replace("{id: {from: id}}", "{id: {from: gene.id}}"))
    config = chain_config(tmp_path, api)
    config = config.model_copy(update={"sample": config.sample.model_copy(update={"catalog_dir": catalog_dir})})
    reports = {name: run_stage(name, config, "r") for name in SET_STAGES}
    steps = chain_state(config, "symbol_then_gene_record")
    assert steps and all(position == 0 for _, position, *_ in steps)
    assert reports["chain"].failures == {
        "chain stopped, symbol_then_gene_record: no value at gene.id in step 1's observation": 2
    }


# ---------------------------------------------------------------- declarations are checked


BAD = {
    "unknown function": (
        "function: lookup_by_id\n        args: {id: {from: id}}",
        "function: lookup_by_idd\n        args: {id: {from: id}}",
        "multi_step symbol_then_gene_record: step 2: unknown function 'lookup_by_idd' (not in the catalog)",
    ),
    "unknown parameter": (
        "args: {id: {from: id}}",
        "args: {gene: {from: id}}",
        "multi_step symbol_then_gene_record: step 2: lookup_by_id has no parameter 'gene'",
    ),
    "bad path": (
        "{from: idlist.0}",
        "{from: 'idlist..0'}",
        "multi_step gene_search_then_summary: step 2: id: bad path 'idlist..0' (dotted names and list indices)",
    ),
    "a later step": (
        "{from: minor_allele}",
        "{from: minor_allele, step: 3}",
        "multi_step variant_then_effect_at_position: step 2: allele: step 3 is not an earlier step",
    ),
}


@pytest.mark.parametrize("problem", sorted(BAD))
def test_a_bad_declaration_is_refused_naming_file_and_entry(tmp_path, problem):
    old, new, expected = BAD[problem]
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", catalog_dir)
    path = catalog_dir / "item_kinds.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogError) as error:
        load_item_kinds(catalog_dir)
    assert str(error.value) == f"{path}: {expected}"
    config = demo_config_at(tmp_path)
    config = config.model_copy(update={"sample": config.sample.model_copy(update={"catalog_dir": catalog_dir})})
    with pytest.raises(CatalogError, match="item_kinds.yaml"):
        run_stage("sample", config, "r")


def test_a_question_placeholder_no_step_gives_is_refused(tmp_path):
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", catalog_dir)
    path = catalog_dir / "item_kinds.yaml"
    path.write_text(path.read_text().replace("{id} and {id_2}?", "{id} and {id_3}?", 1))
    with pytest.raises(CatalogError, match=r"parallel variant_effects_pair: questions.broad: \{id_3\}"):
        load_item_kinds(catalog_dir)


def test_single_questions_are_the_same_with_kinds_on(demo_sets, tmp_path):
    """A set's step that is not also a single call gets no single-call question, and single
    calls keep their questions (template choice by rank among the single calls)."""
    config, _ = demo_sets
    off = demo_config_at(tmp_path)
    for name in ("sample", "execute", "synthesize"):
        run_stage(name, off, "off")
    run_stage("synthesize", config, "on")
    singles = "select q.query_id, q.text from queries q join candidate_calls c using (call_id) order by q.query_id"
    assert rows(config, singles) == rows(off, singles)
    set_only = rows(
        config,
        "select count(*) from candidate_calls c where c.template like 'set:%' "
        "and exists (select 1 from observations o where o.call_id = c.call_id)",
    )[0][0]
    assert set_only > 0
