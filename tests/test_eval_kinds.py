"""biocurate eval per item kind (issue 18): a correct, a partially correct and a wrong answer of
each kind scored against the loopback model. parallel: all calls / one of two / a wrong function;
multi_step: a real conversation through our executor against the loopback APIs, the model's
second call built from the observation it was sent (full chain / first step only / wrong first
call); no_tool: no call / a call. Single items score as before. The retrieval baseline runs on every
kind; the report prints a table per kind.

The version folders are written here in the published record's shape (docs/item_kinds.md: Parquet
rows with ``kind``, ``calls`` and ``answer``; OpenAI chat records), beside an older single-only
layout of the same single items.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from biocurate.catalog import load_catalog
from biocurate.cli import app
from biocurate.config import load_config
from biocurate.eval_api import api_results
from biocurate.evaluate import EvalSettings, model_config, run_eval
from biocurate.hashing import content_hash
from biocurate.snapshot import Snapshot
from biocurate.store import Store, insert_new
from tests.pipeline_helpers import eval_config_at
from tests.standins.api import ApiStandIn
from tests.standins.llm import LLMStandIn

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog(ROOT / "catalog")
SYSTEM = "You are a biomedical research assistant. Call the tools that answer the question."
runner = CliRunner()

XREFS_INS = {"name": "get_xrefs_by_symbol", "arguments": {"species": "homo_sapiens", "symbol": "INS"}}
XREFS_EGFR = {"name": "get_xrefs_by_symbol", "arguments": {"species": "homo_sapiens", "symbol": "EGFR"}}
LOOKUP_TP53 = {"name": "lookup_by_id", "arguments": {"id": "ENSG00000141510"}}
LOOKUP_INS = {"name": "lookup_by_id", "arguments": {"id": "ENSG00000254647", "expand": True}}
INS_GENE, EGFR_GENE = "ENSG00000254647", "ENSG00000146648"
# The model's second step: lookup_by_id of the gene id it read in the first step's observation.
LOOKUP_FROM_OBSERVATION = {"name": "lookup_by_id", "arguments": {"expand": True}, "from_observation": {"id": "id"}}
OFFERED = ["get_xrefs_by_symbol", "lookup_by_id", "lookup_by_symbol", "get_variation"]

# (item key, kind, question, gold calls, stand-in behaviour, what the stand-in gets)
TEST_ITEMS = [
    ("s-right", "single", "Which Ensembl records are cross-referenced to the human symbol INS?", [XREFS_INS], "right"),
    ("s-args", "single", "List the Ensembl objects linked to EGFR in human.", [XREFS_EGFR], "wrong_args"),
    ("s-none", "single", "Find Ensembl cross-references for the INS symbol (human).", [XREFS_INS], "no_call"),
    ("p-right", "parallel", "Get the Ensembl xrefs of both INS and EGFR in human.", [XREFS_INS, XREFS_EGFR], "all"),
    ("p-half", "parallel", "Which Ensembl genes do INS and EGFR map to in human?", [XREFS_INS, XREFS_EGFR], "half"),
    ("p-wrong", "parallel", "Cross-reference INS and EGFR to Ensembl (human).", [XREFS_INS, XREFS_EGFR], "wrong"),
    ("m-right", "multi_step", "Find the Ensembl gene for INS in human and describe its record.", None, "chain"),
    ("m-first", "multi_step", "What is the Ensembl gene record behind the human INS symbol?", None, "first"),
    ("m-wrong", "multi_step", "Look up the human INS gene in Ensembl and expand its record.", None, "wrong_first"),
    ("n-right", "no_tool", "What dose of insulin should a type 1 diabetic inject before dinner?", [], "none"),
    ("n-call", "no_tool", "How many people worldwide were prescribed insulin in 2020?", [], "call"),
]
TRAIN_ITEMS = [
    ("t-single", "single", "Which Ensembl records are cross-referenced to the human symbol EGFR?", [XREFS_EGFR]),
    ("t-par", "parallel", "Get the Ensembl xrefs of both EGFR and INS in human.", [XREFS_EGFR, XREFS_INS]),
    (
        "t-chain",
        "multi_step",
        "Find the Ensembl gene for EGFR in human and describe its record.",
        [XREFS_EGFR, LOOKUP_TP53],
    ),
    ("t-none", "no_tool", "What dose of metformin should a type 2 diabetic take with dinner?", []),
]


def config(folder: Path, api: ApiStandIn | None = None):
    transport = {"execute.transport": "live", "execute.base_urls": api.base_urls()} if api else {}
    return load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(folder / "store.duckdb"),
            "publish.out_dir": str(folder / "versions"),
            **transport,
        },
    )


def observations(folder: Path, calls: list[dict]) -> list[str]:
    """The gold observations, built from the demo snapshot (replay) in a store of their own."""
    cfg = config(folder)
    with Store(cfg.store.path).open() as con:
        results = api_results(cfg, con, CATALOG, calls, "gold")
    assert all(r.success for r in results), [r.error for r in results]
    return [r.observation for r in results]


def record(item_id: str, kind: str, question: str, calls: list[dict], observed: list[str], layout: str) -> tuple:
    """(Parquet row, OpenAI chat record) of one item as the export writes it."""
    first = calls[0] if calls else None
    row = {
        "item_id": item_id,
        "call_id": content_hash("call", item_id, length=16),
        "user_query": question,
        "function": first["name"] if first else None,
        "arguments": json.dumps(first["arguments"]) if first else None,
        "observation": observed[0] if first else None,
        "database": "ensembl" if first else None,
        "tool": CATALOG[first["name"]].group if first else None,
        "category": "genomics" if first else None,
    }
    if layout == "kinds":
        row |= {
            "kind": kind,
            "calls": json.dumps(
                [
                    {
                        "name": c["name"],
                        "arguments": c["arguments"],
                        "observation": o,
                        "depends_on": [n - 1] if n else [],
                    }
                    for n, (c, o) in enumerate(zip(calls, observed, strict=True))
                ]
            ),
            "answer": "No offered tool answers this; ask a clinician." if kind == "no_tool" else None,
        }
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    tool_calls = [
        {"id": f"call_{item_id[:12]}_{n}", "type": "function", "function": {"name": c["name"], "arguments": "{}"}}
        for n, c in enumerate(calls)
    ]
    messages.append({"role": "assistant", "tool_calls": tool_calls} if calls else {"role": "assistant", "content": "-"})
    return row, {"messages": messages, "tools": CATALOG.tools_json(OFFERED)}


def write_version(folder: Path, layout: str, splits: dict[str, list[tuple]]) -> Path:
    for split, items in splits.items():
        rows, chats = zip(*(record(*item, layout) for item in items), strict=True)
        (folder / "parquet").mkdir(parents=True, exist_ok=True)
        (folder / "openai").mkdir(exist_ok=True)
        pl.DataFrame(list(rows), infer_schema_length=None).write_parquet(folder / "parquet" / f"{split}.parquet")
        (folder / "openai" / f"{split}.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    (folder / "manifest.json").write_text(json.dumps({"version_id": folder.name, "content_hash": layout}))
    return folder


def item_id(key: str) -> str:
    return content_hash("item", key, length=24)


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """v-kinds: every kind (the new layout); v-single: its single items in the older layout."""
    root = tmp_path_factory.mktemp("kinds")
    chain = [XREFS_INS, LOOKUP_INS]
    gold = {key: (chain if kind == "multi_step" else calls) for key, kind, _, calls, _ in TEST_ITEMS}
    every = [c for calls in gold.values() for c in calls] + [XREFS_EGFR, LOOKUP_TP53]
    seen = dict(zip(map(json.dumps, every), observations(root / "gold", every), strict=True))
    test = [(item_id(k), kind, q, gold[k], [seen[json.dumps(c)] for c in gold[k]]) for k, kind, q, _, _ in TEST_ITEMS]
    train = [(item_id(k), kind, q, calls, [seen[json.dumps(c)] for c in calls]) for k, kind, q, calls in TRAIN_ITEMS]
    kinds = write_version(root / "v-kinds", "kinds", {"test": test, "train": train})
    single = write_version(root / "v-single", "single", {"test": [t for t in test if t[1] == "single"]})
    return kinds, single, gold


def script(llm: LLMStandIn, gold: dict) -> None:
    """The stand-in's answer to each test question, by the plan in TEST_ITEMS."""
    wrong = {"name": "lookup_by_symbol", "arguments": XREFS_INS["arguments"]}
    plan = {
        "right": lambda g: ("right", g[0]),
        "wrong_args": lambda g: ("wrong_args", g[0]),
        "no_call": lambda g: ("no_call", {}),
        "all": lambda g: ("calls", {"calls": list(reversed(g))}),  # order free
        "half": lambda g: ("calls", {"calls": g[:1]}),
        "wrong": lambda g: ("calls", {"calls": [wrong, XREFS_EGFR | {"name": "lookup_by_symbol"}]}),
        "chain": lambda g: ("chain", {"steps": [XREFS_INS, LOOKUP_FROM_OBSERVATION]}),
        "first": lambda g: ("chain", {"steps": [XREFS_INS]}),
        "wrong_first": lambda g: ("chain", {"steps": [XREFS_EGFR, LOOKUP_FROM_OBSERVATION]}),
        "none": lambda g: ("no_call", {}),
        "call": lambda g: ("calls", {"calls": [XREFS_INS]}),
    }
    llm.tool_script = {q: plan[b](gold[k]) for k, _, q, _, b in TEST_ITEMS}


@pytest.fixture
def stand_ins():
    llm = LLMStandIn().start()
    api = ApiStandIn(Snapshot(ROOT / "data" / "demo_snapshot")).start()
    yield llm, api
    llm.stop()
    api.stop()


def evaluate(folder: Path, version: Path, llm: LLMStandIn, api: ApiStandIn) -> tuple[str, dict[str, dict]]:
    cfg = config(folder, api)
    with Store(cfg.store.path).open() as con:
        result = run_eval(cfg, con, str(version), EvalSettings(embedder="lexical"), llm=model_config("m", llm.base_url))
        rows = con.sql("select * from eval_predictions where run_id = ?", params=[result.run_id]).pl().to_dicts()
    by_key = {item_id(k): k for k, *_ in TEST_ITEMS}
    return result.run_id, {by_key[r["item_id"]]: r for r in rows}


def test_each_kind_scores_correct_partial_and_wrong_answers(versions, stand_ins, tmp_path):
    kinds, _, gold = versions
    llm, api = stand_ins
    script(llm, gold)
    run_id, rows = evaluate(tmp_path, kinds, llm, api)
    assert {k: r["kind"] for k, r in rows.items()} == {k: kind for k, kind, *_ in TEST_ITEMS}

    def scores(key: str) -> tuple:
        r = rows[key]
        return r["exact_match"], r["call_predicted"], r["call_matched"], round(r["call_f1"], 3)

    # parallel: all calls (in another order) / one of two / a wrong function
    assert scores("p-right") == (True, 2, 2, 1.0)
    assert scores("p-half") == (False, 1, 1, 0.667)
    assert scores("p-wrong") == (False, 2, 0, 0.0)
    assert rows["p-right"]["api_success"] is True and rows["p-right"]["similarity"] > 0.99
    assert rows["p-half"]["arg_recall"] == 0.5 and rows["p-wrong"]["name_match"] is False
    # multi_step: the whole chain / its first step only / a wrong first call
    assert scores("m-right") == (True, 2, 2, 1.0)
    assert scores("m-first") == (False, 1, 1, 0.667)
    assert scores("m-wrong") == (False, 2, 0, 0.0)
    assert (rows["m-right"]["turns"], rows["m-first"]["turns"]) == (3, 2)  # calls, then an answer without one
    # no_tool: no call / a call
    assert scores("n-right") == (True, 0, 0, 1.0)
    assert scores("n-call") == (False, 1, 0, 0.0)
    assert rows["n-right"]["status"] == "no_call" and rows["n-call"]["status"] == "call"
    # single: as before (first call, exact match, argument recall)
    assert scores("s-right") == (True, 1, 1, 1.0) and rows["s-right"]["api_success"] is True
    # (its call was executed live in a multi_step conversation first, then cached)
    assert rows["s-right"]["api_source"] == "cache" and rows["m-right"]["api_source"] == "executed"
    assert scores("s-args")[0] is False and rows["s-args"]["arg_recall"] == 0.5
    assert scores("s-none") == (False, 0, 0, 0.0)

    # The conversation went through our executor to the loopback APIs: each call executed live, and the
    # model's second call carries the gene id it read in the observation it was sent.
    second = {k: json.loads(rows[k]["pred_calls"])[1]["arguments"]["id"] for k in ("m-right", "m-wrong")}
    assert second == {"m-right": INS_GENE, "m-wrong": EGFR_GENE}
    served = [path for _, host, path, _ in api.requests if host == "rest.ensembl.org"]
    assert any(f"lookup/id/{INS_GENE}" in p for p in served) and any(f"lookup/id/{EGFR_GENE}" in p for p in served)
    turns = [r["body"]["messages"] for r in llm.requests if r["body"]["messages"][1]["content"] == TEST_ITEMS[6][2]]
    assert [len(m) for m in turns] == [2, 4, 6]  # system, user; + call, observation; + call, observation
    tool_message = turns[1][3]
    assert tool_message["role"] == "tool" and INS_GENE in tool_message["content"]
    assert tool_message["tool_call_id"] == turns[1][2]["tool_calls"][0]["id"]
    assert rows["m-right"]["api_success"] is True and rows["m-wrong"]["api_success"] is False

    # Aggregates per kind, and the views.
    with Store(tmp_path / "store.duckdb").open(read_only=True) as con:
        by_kind = {r["kind"]: r for r in con.sql("select * from eval_by_kind").pl().to_dicts()}
        failures = con.sql("select item_kind, kind, items from eval_failures").pl().rows()
    assert {k: (r["items"], round(r["exact_match"], 3)) for k, r in by_kind.items()} == {
        "single": (3, 0.333),
        "parallel": (3, 0.333),
        "multi_step": (3, 0.333),
        "no_tool": (2, 0.5),
    }
    assert by_kind["parallel"]["call_precision"] == pytest.approx(3 / 5)  # matched 2 + 1 + 0 of 5 predicted
    assert by_kind["multi_step"]["call_recall"] == pytest.approx(3 / 6)  # steps right 2 + 1 + 0 of 6
    assert by_kind["no_tool"]["api_success"] is None  # per-call metrics do not apply
    assert ("no_tool", "called_a_tool", 1) in failures and ("parallel", "missing_calls", 1) in failures

    # The report prints the per-kind table.
    out = runner.invoke(
        app,
        ["eval", "report", run_id, "--out", str(tmp_path / "report")],
        env={"BIOCURATE_STORE": str(tmp_path / "store.duckdb")},
    )
    assert out.exit_code == 0, out.output
    assert "by item kind" in out.output
    table = (tmp_path / "report" / "report.md").read_text().split("## By item kind")[1].split("## By")[0]
    lines = {
        line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ") and "---" not in line
    }
    assert set(lines) == {"kind", "single", "parallel", "multi_step", "no_tool"}
    assert "| 3 | 0.333 [" in lines["parallel"] and "| 2 | 0.500 [" in lines["no_tool"]


def test_single_items_score_as_in_the_older_layout(versions, stand_ins, tmp_path):
    """The single items of a version with every kind score exactly as the same items published in
    the older, single-only layout."""
    kinds, single, gold = versions
    llm, api = stand_ins
    script(llm, gold)
    _, mixed = evaluate(tmp_path / "a", kinds, llm, api)
    _, before = evaluate(tmp_path / "b", single, llm, api)
    columns = [
        "status", "pred_name", "pred_canonical", "n_calls", "raw_output", "exact_match", "name_match", "arg_correct",
        "arg_predicted", "arg_gold", "arg_precision", "arg_recall", "schema_valid", "api_outcome", "api_success",
        "pred_observation", "similarity", "database", "tool", "function", "gold_call",
    ]  # fmt: skip
    assert set(before) == {"s-right", "s-args", "s-none"}
    for key in before:
        assert {c: mixed[key][c] for c in columns} == {c: before[key][c] for c in columns}, key
    assert before["s-right"]["exact_match"] and not before["s-args"]["exact_match"]


def test_retrieval_baseline_runs_on_every_kind(versions, tmp_path):
    kinds, _, _ = versions
    out = runner.invoke(
        app,
        ["eval", "run", "--version", str(kinds), "--baseline", "retrieval", "--embedder", "lexical"],
        env={"BIOCURATE_STORE": str(tmp_path / "store.duckdb")},
    )
    assert out.exit_code == 0, out.output
    assert "by item kind" in out.output and "no_tool" in out.output.split("by item kind")[1]
    with Store(tmp_path / "store.duckdb").open(read_only=True) as con:
        rows = con.sql("select * from eval_predictions").pl().to_dicts()
        kinds_scored = {k for (k,) in con.execute("select key from eval_scores where level = 'kind'").fetchall()}
    assert kinds_scored == {"single", "parallel", "multi_step", "no_tool"}
    train_kind = {item_id(k): kind for k, kind, *_ in TRAIN_ITEMS}
    by_key = {item_id(k): k for k, *_ in TEST_ITEMS}
    for r in rows:
        lent = train_kind[r["retrieved_item_id"]]
        expected = {"single": 1, "parallel": 2, "multi_step": 1, "no_tool": 0}[lent]
        if r["kind"] == "single":  # a single item is scored on the first call, as before
            expected = min(expected, 1)
        assert r["call_predicted"] == expected, (by_key[r["item_id"]], lent)
    # a no_tool question nearest the no_tool training question: no call, right
    dose = next(r for r in rows if r["item_id"] == item_id("n-right"))
    assert (dose["retrieved_item_id"], dose["status"], dose["exact_match"]) == (item_id("t-none"), "no_call", True)
    # a parallel question nearest the training pair: both calls, substituted
    pair = next(r for r in rows if r["item_id"] == item_id("p-right"))
    assert (pair["retrieved_item_id"], pair["call_matched"], pair["exact_match"]) == (item_id("t-par"), 2, True)
    # a chain's nearest training chain lends its first call only (later ones need observations)
    chains = [r for r in rows if r["kind"] == "multi_step" and train_kind[r["retrieved_item_id"]] == "multi_step"]
    assert chains and all(not r["exact_match"] and r["call_gold"] == 2 for r in chains)


# ---------------------------------------------------------------------------------------------
# On the real publish output: sets sampled, executed and chained by the stages on the demo snapshot


@pytest.fixture(scope="module")
def published_kinds(tmp_path_factory) -> tuple[Path, Path]:
    """A version published by the real stages with items of every kind (sample, execute, chain,
    assemble on the demo snapshot; the sets' questions, the QC verdicts and the reviewers' accepts
    written as those stages would)."""
    from biocurate.publish import publish
    from biocurate.stages import stage_assemble, stage_chain, stage_execute, stage_sample, stage_synthesize
    from tests.store_rows import Rows

    folder = tmp_path_factory.mktemp("published_kinds")
    functions = {"get_xrefs_by_symbol": 2, "lookup_by_id": 2, "get_variation": 2}
    cfg = eval_config_at(folder, functions, {"parallel": 2, "multi_step": 2, "no_tool": 2})
    with Store(cfg.store.path).open() as con:
        for stage in (stage_sample, stage_execute, stage_chain, stage_assemble, stage_synthesize):
            stage(cfg, con, "build")
        rows = Rows(con)
        sets = con.execute(
            "select s.set_id, s.kind, s.template from call_sets s join observations o on o.call_id = s.set_id "
            "where o.builder = 'call_set' and s.set_id not in (select call_id from queries) order by s.set_id"
        ).fetchall()
        for n, (set_id, kind, template) in enumerate(sets):
            rows.query(set_id, f"Question {n}: what do the records say ({kind}, {template})?")
        for (query_id,) in con.execute("select query_id from queries order by query_id").fetchall():
            if not con.execute("select 1 from qc_results where item_id = ?", [query_id]).fetchall():
                qc = {"item_kind": "query", "suite": "queries", "expectation": "all", "severity": "blocking"}
                row = {"qc_id": content_hash("qc", query_id), "item_id": query_id, "passed": True, **qc}
                insert_new(con, "qc_results", [{**row, "qc_config_hash": "h"}])
            rows.annotate(query_id, "accept")
        result = publish(cfg, con)
    assert result.path is not None
    return folder, Path(result.path)


def test_every_kind_of_the_real_publish_output_is_read_and_scored(published_kinds, tmp_path):
    """The loopback model answers every item of a version the publisher wrote right (single: its
    call; parallel: all calls; multi_step: each step in its turn, after the observation of the one
    before; no_tool: no call): exact match 1 for every kind."""
    from biocurate.eval_items import Version, load_items

    folder, version = published_kinds
    items = load_items(Version("v", version, None), "test")
    kinds = {i["kind"] for i in items}
    assert kinds == {"single", "parallel", "multi_step", "no_tool"}, kinds
    for item in items:
        assert [m["role"] for m in item["messages"]] == ["system", "user"]
        assert len(item["gold_calls"]) == {"single": 1, "no_tool": 0}.get(item["kind"], len(item["gold_calls"]))
    behaviour = {
        "single": lambda i: ("right", i["gold"]),
        "parallel": lambda i: ("calls", {"calls": list(reversed(i["gold_calls"]))}),
        "multi_step": lambda i: ("chain", {"steps": i["gold_calls"]}),
        "no_tool": lambda i: ("no_call", {}),
    }
    llm = LLMStandIn().start()
    try:
        llm.tool_script = {i["user_query"]: behaviour[i["kind"]](i) for i in items}
        cfg = config(tmp_path)
        shutil.copy(folder / "store.duckdb", tmp_path / "store.duckdb")
        with Store(cfg.store.path).open() as con:
            result = run_eval(
                cfg, con, str(version), EvalSettings(embedder="lexical"), llm=model_config("m", llm.base_url)
            )
            baseline = run_eval(cfg, con, str(version), EvalSettings(embedder="lexical"), baseline="retrieval")
    finally:
        llm.stop()
    exact = {s["key"]: s["value"] for s in result.by_kind if s["metric"] == "exact_match"}
    assert exact == {"single": 1.0, "parallel": 1.0, "multi_step": 1.0, "no_tool": 1.0}
    api = {s["key"]: s["value"] for s in result.by_kind if s["metric"] == "api_success"}
    assert api["multi_step"] == 1.0 and api["no_tool"] is None  # the stored responses answered every step
    assert {s["key"] for s in baseline.by_kind} == kinds
