"""Synthesis, judging and quality of questions about call sets: parallel, multi_step, no_tool
(issue 18, docs/item_kinds.md). The sets are written as the stages write them
(``tests/store_rows.Rows.call_set``); their declarations come from a small ``item_kinds.yaml``
beside a copy of the catalog."""

from __future__ import annotations

import json
import shutil

import pytest

from biocurate.catalog import load_catalog
from biocurate.config import load_config
from biocurate.hashing import content_hash
from biocurate.judge import judge
from biocurate.quality import run_quality
from biocurate.set_judge import SET_RULES_VERSION
from biocurate.store import Store, insert_new
from biocurate.synthesis import synthesize
from tests.conftest import ROOT
from tests.store_rows import Rows

DECLARATIONS = """
parallel:
  - name: two_genes
    entity: gene
    count: 2
    steps:
      - function: lookup_by_symbol
        args: {species: "{species}", symbol: "{symbol}"}
    questions:
      broad:
        - "How do the {species} genes {symbol} and {symbol_2} compare in location and biotype?"
      specific:
        - "Where is {symbol_1} located?"
        - "On which chromosomes do {symbol} and {symbol_2} lie in {species_name}?"
multi_step:
  - name: gene_transcripts
    entity: gene
    steps:
      - function: lookup_by_symbol
        args: {species: "{species}", symbol: "{symbol}"}
      - function: overlap_by_id
        args: {id: {from: id}, feature: transcript}
    questions:
      broad:
        - "Which transcripts overlap {ensembl_gene_id}?"
        - "Which transcripts overlap the {species} gene {symbol}, and what are they called?"
      specific:
        - "What is the stable ID of the {species} gene {symbol}?"
no_tool:
  - name: drug_trials
    entity: gene
    topic: PARP inhibitors in hereditary breast cancer
    reason: clinical trial outcomes are in none of the offered databases
    questions:
      broad:
        - "Where is the {symbol} gene located in the human genome?"
        - "Which clinical trials have tested PARP inhibitors in carriers of {symbol} mutations?"
      specific:
        - "What response rates did clinical trials of {topic} report?"
"""

BRCA1 = {"id": "ENSG00000012048", "display_name": "BRCA1", "seq_region_name": "17", "biotype": "protein_coding"}
BRCA2 = {"id": "ENSG00000139618", "display_name": "BRCA2", "seq_region_name": "13", "biotype": "protein_coding"}
TP53 = {"id": "ENSG00000141510", "display_name": "TP53", "seq_region_name": "17", "start": 7661779, "end": 7687538}
TP53_TRANSCRIPTS = [
    {"id": "ENST00000269305", "feature_type": "transcript", "external_name": "TP53-201", "biotype": "protein_coding"},
    {"id": "ENST00000413465", "feature_type": "transcript", "external_name": "TP53-202", "biotype": "protein_coding"},
]


def config_for(tmp_path, **overrides):
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", catalog_dir)
    (catalog_dir / "item_kinds.yaml").write_text(DECLARATIONS)
    return load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(tmp_path / "s.duckdb"),
            "sample.catalog_dir": str(catalog_dir),
            "quality.data_docs_dir": str(tmp_path / "docs"),
            **overrides,
        },
    )


def add_sets(con) -> dict[str, str]:
    rows = Rows(con)
    human = {"species": "homo_sapiens"}
    gene = {**human, "symbol": "TP53", "ensembl_gene_id": TP53["id"]}
    return {
        "parallel": rows.call_set(
            "parallel",
            [
                ("lookup_by_symbol", {**human, "symbol": "BRCA1"}, json.dumps(BRCA1)),
                ("lookup_by_symbol", {**human, "symbol": "BRCA2"}, json.dumps(BRCA2)),
            ],
            template="two_genes",
            spec={"context": [{**human, "symbol": "BRCA1"}, {**human, "symbol": "BRCA2"}]},
        ),
        "multi_step": rows.call_set(
            "multi_step",
            [
                ("lookup_by_symbol", {**human, "symbol": "TP53"}, json.dumps(TP53)),
                ("overlap_by_id", {"id": TP53["id"], "feature": "transcript"}, json.dumps(TP53_TRANSCRIPTS)),
            ],
            template="gene_transcripts",
            spec={"context": [gene], "links": {"1": {"id": {"from": "id"}}}},
            fed_by={1: {"id": {"from": "id", "value": TP53["id"]}}},
        ),
        "no_tool": rows.call_set(
            "no_tool",
            [],
            template="drug_trials",
            spec={
                "topic": "PARP inhibitors in hereditary breast cancer",
                "reason": "clinical trial outcomes are in none of the offered databases",
                "context": [{"species": "homo_sapiens", "symbol": "BRCA1"}],
            },
        ),
    }


def questions(con, set_id: str) -> list[tuple[str, str, str]]:
    return con.execute(
        "select text, generator, prompt_version from queries where call_id = ? order by text", [set_id]
    ).fetchall()


def ask(con, set_id: str, text: str) -> str:
    """A question about the set as a generator would write it."""
    (observation_id,) = con.execute(
        "select observation_id from observations where call_id = ? and builder = 'call_set'", [set_id]
    ).fetchall()[0]
    query_id = content_hash("query", set_id, text, "test")
    insert_new(
        con,
        "queries",
        [
            {
                "query_id": query_id,
                "call_id": set_id,
                "observation_id": observation_id,
                "text": text,
                "style": "specific",
                "generator": "test",
                "model": "test",
                "prompt_version": "t",
            }
        ],
    )
    return query_id


def verdict(con, query_id: str) -> tuple[str, str]:
    return con.execute("select verdict, reason from latest_judgments where query_id = ?", [query_id]).fetchall()[0]


def test_template_synthesis_per_kind_follows_each_kinds_rules(tmp_path):
    config = config_for(tmp_path)
    with Store(config.store.path).open() as con:
        sets = add_sets(con)
        summary = synthesize(config, con, load_catalog(config.path(config.sample.catalog_dir)), "r1")
        parallel = [t for t, _, _ in questions(con, sets["parallel"])]
        multi = [t for t, _, _ in questions(con, sets["multi_step"])]
        no_tool = [t for t, _, _ in questions(con, sets["no_tool"])]
        versions = {v for s in sets.values() for _, _, v in questions(con, s)}
        again = synthesize(config, con, load_catalog(config.path(config.sample.catalog_dir)), "r2")
    # parallel: both genes, both said as told; the template naming one gene only is passed over
    assert parallel == [
        "How do the human genes BRCA1 and BRCA2 compare in location and biotype?",
        "On which chromosomes do BRCA1 and BRCA2 lie in Homo sapiens?",
    ]
    # multi_step: the template stating the fed Ensembl id is passed over
    assert multi == [
        "What is the stable ID of the human gene TP53?",
        "Which transcripts overlap the human gene TP53, and what are they called?",
    ]
    assert not any(TP53["id"] in t for t in multi)
    # no_tool: the template a catalog function answers (lookup_by_symbol's own question) is passed over
    assert no_tool == [
        "What response rates did clinical trials of PARP inhibitors in hereditary breast cancer report?",
        "Which clinical trials have tested PARP inhibitors in carriers of BRCA1 mutations?",
    ]
    assert all(v.startswith("template-set-") for v in versions) and len(versions) == 3
    assert summary.queries_new >= 6 and again.queries_new == 0  # (the steps' own single questions besides)


def test_llm_synthesis_per_kind_against_the_loopback_model(tmp_path, monkeypatch):
    from tests.standins.llm import LLMStandIn

    monkeypatch.setenv("BIOCURATE_LLM_API_KEY", "sk-test")
    llm = LLMStandIn().start()
    try:
        model = {"provider": "openai", "base_url": llm.base_url, "model": "standin-1", "max_retries": 1}
        config = config_for(tmp_path, **{"synthesis.generator": model, "synthesis.queries_per_call": 2})
        catalog = load_catalog(config.path(config.sample.catalog_dir))
        with Store(config.store.path).open() as con:
            sets = add_sets(con)
            synthesize(config, con, catalog, "r1")
            got = {kind: questions(con, s) for kind, s in sets.items()}
            calls = con.execute("select purpose, prompt_version, status from llm_calls").fetchall()
            synthesize(config, con, catalog, "r2")
        asked = [r["body"]["messages"][-1]["content"] for r in llm.requests]
    finally:
        llm.stop()
    set_prompts = [p for p in asked if "SET QUESTIONS (" in p]
    assert len(set_prompts) == 3  # once per set; the second run asks nothing
    multi_prompt = next(p for p in set_prompts if "SET QUESTIONS (multi_step)" in p)
    assert f"call 2 id = '{TP53['id']}'" in multi_prompt
    # what only the later call returns: not TP53's own record's words (display, region, start)
    assert "such as: biotype, coding, external, feature, protein, transcript, type\n" in multi_prompt
    assert {v.split("-")[0] for k in got for _, _, v in got[k]} == {
        "generate_parallel_v1",
        "generate_multi_step_v1",
        "generate_no_tool_v1",
    }
    assert all(g == "openai" for k in got for _, g, _ in got[k])
    assert all("BRCA1" in t and "BRCA2" in t and "human" in t for t, _, _ in got["parallel"])
    assert all("TP53" in t and TP53["id"] not in t for t, _, _ in got["multi_step"])
    assert all("PARP inhibitors in hereditary breast cancer" in t for t, _, _ in got["no_tool"])
    assert sorted(
        v.split("-")[0] for p, v, _ in calls if "SET" not in v and v.startswith("generate_") and "_v1" in v
    ) == [
        "generate_multi_step_v1",
        "generate_no_tool_v1",
        "generate_parallel_v1",
    ]


def test_the_rules_judge_rejects_each_kinds_bad_questions_with_the_reason(tmp_path):
    config = config_for(tmp_path)
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    with Store(config.store.path).open() as con:
        sets = add_sets(con)
        good = {
            "parallel": ask(con, sets["parallel"], "How do the human genes BRCA1 and BRCA2 compare in location?"),
            "multi_step": ask(con, sets["multi_step"], "Which transcripts overlap the human gene TP53?"),
            "no_tool": ask(
                con, sets["no_tool"], "Which clinical trials have tested PARP inhibitors in BRCA1 carriers?"
            ),
        }
        bad = {
            "parallel missing BRCA2": ask(con, sets["parallel"], "Where is the human gene BRCA1 located?"),
            "multi_step fed value": ask(
                con, sets["multi_step"], f"Which transcripts overlap the human gene TP53 ({TP53['id']})?"
            ),
            "multi_step step 1 alone": ask(con, sets["multi_step"], "Which chromosome is the human gene TP53 on?"),
            "no_tool answered": ask(con, sets["no_tool"], "Where is the BRCA1 gene located in the human genome?"),
        }
        summary = judge(config, con, catalog, "r1")
        verdicts = {name: verdict(con, q) for name, q in {**good, **bad}.items()}
        versions = {v for (v,) in con.execute("select distinct prompt_version from judgments").fetchall()}
    for name in good:
        assert verdicts[name][0] == "accept", verdicts[name]
    assert all(verdicts[name][0] == "reject" for name in bad), verdicts
    assert "missing step 2 symbol 'BRCA2'" in verdicts["parallel missing BRCA2"][1]
    assert f"step 2 id '{TP53['id']}': not in the question" in verdicts["multi_step fed value"][1]
    assert "answerable from step 1 alone" in verdicts["multi_step step 1 alone"][1]
    assert "answerable from step 1 alone" not in verdicts["multi_step fed value"][1]
    assert "an offered tool answers it: lookup_by_symbol" in verdicts["no_tool answered"][1]
    assert versions == {SET_RULES_VERSION} and summary.judged == 7


def test_the_llm_judge_keeps_the_kinds_rule_checks(tmp_path, monkeypatch):
    from tests.standins.llm import LLMStandIn

    monkeypatch.setenv("BIOCURATE_LLM_API_KEY", "sk-test")
    llm = LLMStandIn().start()  # accepts everything
    try:
        model = {"provider": "openai", "base_url": llm.base_url, "model": "standin-judge", "max_retries": 1}
        config = config_for(tmp_path, **{"synthesis.judge": model})
        catalog = load_catalog(config.path(config.sample.catalog_dir))
        with Store(config.store.path).open() as con:
            sets = add_sets(con)
            ok = ask(con, sets["no_tool"], "Which clinical trials have tested PARP inhibitors in BRCA1 carriers?")
            answered = ask(con, sets["no_tool"], "Where is the BRCA1 gene located in the human genome?")
            judge(config, con, catalog, "r1")
            got = {q: verdict(con, q) for q in (ok, answered)}
            versions = {v for (v,) in con.execute("select prompt_version from judgments").fetchall()}
        prompts = [r["body"]["messages"][-1]["content"] for r in llm.requests]
    finally:
        llm.stop()
    assert got[ok][0] == "accept"
    assert got[answered][0] == "reject"
    assert got[answered][1].startswith("rule check: no_tool: failed: no offered tool answers it (an offered tool")
    assert {v.split("-")[0] for v in versions} == {"judge_no_tool_v1"}
    assert any("Closest offered tool by our rule check: lookup_by_symbol" in p for p in prompts)


def test_quality_checks_every_call_of_a_set_and_keeps_kinds_apart(tmp_path):
    config = config_for(tmp_path)
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    with Store(config.store.path).open() as con:
        sets = add_sets(con)
        rows = Rows(con)
        single = rows.call(
            "lookup_by_symbol", {"species": "homo_sapiens", "symbol": "TP53"}, observation=json.dumps(TP53)
        )
        q_single = rows.query(single, "Which transcripts overlap the human gene TP53?", qc=None)
        ids = {
            "parallel": ask(con, sets["parallel"], "How do the human genes BRCA1 and BRCA2 compare in location?"),
            "parallel missing": ask(con, sets["parallel"], "Where is the human gene BRCA1 located?"),
            "multi_step": ask(con, sets["multi_step"], "Which transcripts overlap the human gene TP53?"),
            "multi_step again": ask(con, sets["multi_step"], "Which transcripts  overlap the human gene TP53?"),
            "multi_step alone": ask(con, sets["multi_step"], "Which chromosome is the human gene TP53 on?"),
            "no_tool": ask(
                con, sets["no_tool"], "Which clinical trials have tested PARP inhibitors in BRCA1 carriers?"
            ),
            "no_tool answered": ask(con, sets["no_tool"], "Where is the BRCA1 gene located in the human genome?"),
        }
        for symbol in ("EGFR", "KRAS"):  # no_tool sets about two genes: never near-duplicates
            other = rows.call_set(
                "no_tool", [], template="drug_trials", spec={"topic": "t", "context": [{"symbol": symbol}]}
            )
            ids[f"no_tool {symbol}"] = ask(
                con, other, f"Which clinical trials tested PARP inhibitors in patients with {symbol}?"
            )
        judge(config, con, catalog, "r1")
        run_quality(config, con, catalog, "r1")
        failures = {
            item: sorted(f"{e}: {r}" for e, r in rows_)
            for item, rows_ in _group(
                con.execute(
                    "select item_id, expectation, reason from qc_results where item_kind = 'query' and not passed"
                ).fetchall()
            ).items()
        }
        survivors = {q for (q,) in con.execute("select query_id from survivors").fetchall()}
    name = {v: k for k, v in ids.items()}
    failed = {name.get(q, q): f for q, f in failures.items()}
    assert {"parallel", "no_tool", "no_tool EGFR", "no_tool KRAS"} <= {name[q] for q in survivors if q in name}
    # of the two questions differing only in spacing, one survives, the other repeats it
    twins = [failed.get("multi_step", []), failed.get("multi_step again", [])]
    assert sorted(len(t) for t in twins) == [0, 1] and sum(t[0].startswith("exact_duplicate") for t in twins if t) == 1
    assert q_single in survivors  # the single question with the same text is no duplicate of the set's
    assert any("query_mentions_arguments" in f and "step 2 symbol 'BRCA2'" in f for f in failed["parallel missing"])
    assert any(
        f.startswith("set_kind_rule") and "answerable from step 1 alone" in f for f in failed["multi_step alone"]
    )
    assert any(f.startswith("set_kind_rule") and "lookup_by_symbol" in f for f in failed["no_tool answered"])
    assert not any(f.startswith("observation") for fs in failed.values() for f in fs)  # [] of no_tool is no error


def _group(rows):
    out: dict[str, list] = {}
    for item, *rest in rows:
        out.setdefault(item, []).append(tuple(rest))
    return out


@pytest.mark.parametrize("broken", ["step failed", "combined out of order"])
def test_quality_blocks_a_set_whose_steps_are_not_sound(tmp_path, broken):
    config = config_for(tmp_path)
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    with Store(config.store.path).open() as con:
        sets = add_sets(con)
        query = ask(con, sets["parallel"], "How do the human genes BRCA1 and BRCA2 compare in location?")
        if broken == "step failed":
            con.execute(
                "update api_responses set outcome = 'server_error' where call_id = "
                "(select call_id from call_set_steps where set_id = ? and position = 1)",
                [sets["parallel"]],
            )
        else:
            con.execute(
                "update observations set text = ? where call_id = ?",
                [json.dumps([json.dumps(BRCA2), json.dumps(BRCA1)]), sets["parallel"]],
            )
        judge(config, con, catalog, "r1")
        run_quality(config, con, catalog, "r1")
        reasons = [
            r
            for (r,) in con.execute(
                "select reason from qc_results where item_id = ? and expectation = 'set_steps_sound'", [query]
            ).fetchall()
        ]
    expected = "step 2 (lookup_by_symbol) response server_error" if broken == "step failed" else "in order"
    assert len(reasons) == 1 and expected in reasons[0]
