"""biocurate eval: every metric as defined, per item and in aggregate, against a loopback
OpenAI-compatible model that answers right, with the wrong name, wrong arguments, malformed JSON
or no call; API success through the executor (stored, live, cached); the retrieval baseline
offline; reports and the SQL views."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from biocurate.catalog import Function, Param, Tool, load_catalog
from biocurate.cli import app
from biocurate.eval_items import load_items, resolve_version
from biocurate.evaluate import EvalSettings, model_config, run_eval
from biocurate.hashing import content_hash
from biocurate.metrics import Predicted, bootstrap_ratio, canonical_arguments, parse_tool_call, score_call, wilson
from biocurate.store import Store, insert_new, utcnow
from tests.pipeline_helpers import eval_config_at
from tests.standins.api import ApiStandIn
from tests.standins.llm import LLMStandIn

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog(ROOT / "catalog")
runner = CliRunner()
# Functions whose demo snapshot answers both sampled calls: a small version with every database.
FUNCTIONS = [
    "get_variation",
    "vep_by_id",
    "get_archive_id",
    "get_citation_by_id",
    "esummary",
    "get_xrefs_by_symbol",
    "get_taxonomy_id",
    "get_uniprotkb_entry",
]
BEHAVIOURS = ("right", "wrong_name", "wrong_args", "malformed", "no_call")


def make_config(folder: Path, **overrides):
    # single items (test_eval_kinds: sets)
    kinds = {"parallel": 0, "multi_step": 0, "no_tool": 0}
    return eval_config_at(folder, {f: 2 for f in FUNCTIONS}, kinds, **overrides)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A published version built by the real stages (sample, execute on the demo snapshot, template
    questions); quality verdicts and reviewers' accepts are inserted directly."""
    from biocurate.publish import publish
    from biocurate.stages import stage_execute, stage_sample, stage_synthesize

    folder = tmp_path_factory.mktemp("published")
    cfg = make_config(folder)
    with Store(cfg.store.path).open() as con:
        for stage in (stage_sample, stage_execute, stage_synthesize):
            stage(cfg, con, "build")
        queries = [q for (q,) in con.execute("select query_id from queries order by query_id").fetchall()]
        now = utcnow()
        insert_new(
            con,
            "qc_results",
            [
                {
                    "qc_id": content_hash("qc", q),
                    "item_kind": "query",
                    "item_id": q,
                    "suite": "queries",
                    "expectation": "all",
                    "passed": True,
                    "severity": "blocking",
                    "qc_config_hash": "h",
                }
                for q in queries
            ],
        )
        insert_new(
            con,
            "review_tasks",
            [
                {"query_id": q, "content_hash": "c", "project_id": 1, "task_id": i, "pushed_at": now, "updated_at": now}
                for i, q in enumerate(queries)
            ],
        )
        insert_new(
            con,
            "annotations",
            [
                {
                    "annotation_id": content_hash("a", q),
                    "ls_annotation_id": i,
                    "task_id": i,
                    "query_id": q,
                    "annotator": "reviewer",
                    "verdict": "accept",
                    "created_at": now,
                    "updated_at": now,
                    "pulled_at": now,
                }
                for i, q in enumerate(queries)
            ],
        )
        result = publish(cfg, con)
    assert result.version_id == "v0001" and result.counts["splits"]["test"] >= 10
    assert result.counts["splits"]["train"] >= 5
    return folder


@pytest.fixture
def store(published, tmp_path) -> Path:
    """A copy of the published store for one test (the version folder is shared, read-only)."""
    shutil.copy(published / "store.duckdb", tmp_path / "store.duckdb")
    return tmp_path


@pytest.fixture
def llm():
    server = LLMStandIn().start()
    yield server
    server.stop()


def test_items(folder: Path) -> list[dict]:
    cfg = make_config(folder)
    with Store(cfg.store.path).open(read_only=True) as con:
        return load_items(resolve_version(con, "v0001"), "test")


test_items.__test__ = False  # a helper, not a test


def script(llm: LLMStandIn, items: list[dict]) -> dict[str, str]:
    """Behaviours cycled over the items (by item id); returns item_id -> behaviour."""
    plan = {item["item_id"]: BEHAVIOURS[i % len(BEHAVIOURS)] for i, item in enumerate(items)}
    llm.tool_script = {item["user_query"]: (plan[item["item_id"]], item["gold"]) for item in items}
    return plan


def model_run(store: Path, llm: LLMStandIn, settings: EvalSettings | None = None, **overrides):
    cfg = make_config(store, **overrides)
    with Store(cfg.store.path).open() as con:
        return run_eval(cfg, con, "v0001", settings or EvalSettings(), llm=model_config("standin-tools", llm.base_url))


def rows_of(store: Path, sql: str, params=None) -> list[dict]:
    with Store(store / "store.duckdb").open(read_only=True) as con:
        return con.sql(sql, params=params).pl().to_dicts()


# ---------------------------------------------------------------------------------------------
# The argument rule and the intervals, on their own


def toy_tool() -> Tool:
    fn = Function(
        name="toy",
        path="/toy/{id}",
        description="a toy",
        params={
            "id": Param(**{"in": "path"}, required=True),
            "limit": Param(type="integer", default=10),
            "expand": Param(type="boolean", default=False),
            "format": Param(enum=["full", "condensed"]),
            "fields": Param(type="array", encode="csv"),
            "score": Param(type="number"),
        },
    )
    return Tool(fn, "ensembl", "Ensembl", "toy", "genomics", "https://example.org", {})


def test_argument_rule_ignores_order_and_defaults_and_normalises_types():
    tool = toy_tool()
    gold = {"id": "BRCA2", "fields": ["name", "length"], "score": 0.5}
    same = {"score": "0.5", "fields": "length, name,name", "id": " BRCA2 ", "limit": "10", "expand": "false"}
    assert canonical_arguments(tool, same) == canonical_arguments(tool, gold)
    assert canonical_arguments(tool, {"id": "x", "limit": 10.0, "expand": 0, "format": "FULL"}) == {
        "id": "x",
        "format": "full",
    }
    assert canonical_arguments(tool, {"id": "x", "limit": 5, "expand": "yes"}) == {
        "id": "x",
        "limit": 5,
        "expand": True,
    }
    assert canonical_arguments(tool, {"id": "brca2"}) != canonical_arguments(tool, {"id": "BRCA2"})  # case kept
    assert canonical_arguments(tool, {"id": "x", "extra": 1, "format": None}) == {"id": "x", "extra": 1}


def test_call_scores_follow_the_documented_definitions():
    gold = {"name": "get_variation", "arguments": {"id": "rs6025", "species": "human"}}

    def score(pred):
        return score_call(CATALOG, gold, pred)

    right = score(
        parse_tool_call({"function": {"name": "get_variation", "arguments": '{"species": "human", "id": "rs6025"}'}})
    )
    assert (right["exact_match"], right["name_match"], right["schema_valid"]) == (True, True, True)
    assert (right["arg_correct"], right["arg_precision"], right["arg_recall"]) == (2, 1.0, 1.0)
    extra = score(Predicted("call", "get_variation", "{}", {"id": "rs6025", "species": "human", "pops": True}))
    assert not extra["exact_match"] and extra["arg_precision"] == pytest.approx(2 / 3) and extra["arg_recall"] == 1.0
    assert extra["schema_valid"]
    other = score(Predicted("call", "vep_by_id", "{}", {"id": "rs6025", "species": "human"}))
    assert (other["name_match"], other["arg_correct"], other["arg_precision"], other["arg_recall"]) == (
        False,
        0,
        0.0,
        0.0,
    )
    # Each schema error is named: an unexpected parameter, a wrong type.
    unexpected = score(Predicted("call", "get_variation", "{}", {"id": "rs6025", "species": "human", "nonsense": 1}))
    assert not unexpected["schema_valid"] and "unknown parameter(s) nonsense" in unexpected["schema_error"]
    wrong_type = score(Predicted("call", "get_variation", "{}", {"id": {"rs": 6025}, "species": "human"}))
    assert not wrong_type["schema_valid"] and "parameter id: {'rs': 6025} is not a string" in wrong_type["schema_error"]
    unknown = score(Predicted("call", "no_such_function", "{}", {}))
    assert not unknown["schema_valid"] and "not in the catalog" in unknown["schema_error"]
    malformed = parse_tool_call({"function": {"name": "get_variation", "arguments": '{"id": "rs6025"'}})
    assert malformed.status == "malformed" and "not valid JSON" in malformed.error
    assert parse_tool_call({"function": {"name": "get_variation", "arguments": "[1, 2]"}}).status == "malformed"
    m = score(malformed)
    assert (m["name_match"], m["arg_predicted"], m["arg_precision"], m["arg_recall"], m["schema_valid"]) == (
        True,
        0,
        None,
        0.0,
        False,
    )
    none = score(Predicted("no_call", error="no tool call"))
    assert (none["name_match"], none["arg_precision"], none["arg_recall"]) == (False, None, 0.0)


def test_wilson_and_bootstrap_intervals():
    low, high = wilson(3, 10)
    assert (round(low, 4), round(high, 4)) == (0.1078, 0.6032)  # the textbook example
    assert wilson(0, 10)[0] == 0.0 and round(wilson(0, 10)[1], 4) == 0.2775
    assert round(wilson(10, 10)[0], 4) == 0.7225 and wilson(10, 10)[1] == 1.0
    assert wilson(0, 0) == (None, None)
    interval = bootstrap_ratio([1, 0, 1, 1, 0, 1, 0, 1], [1] * 8, 2000, 0.95, seed=3)
    assert interval == bootstrap_ratio([1, 0, 1, 1, 0, 1, 0, 1], [1] * 8, 2000, 0.95, seed=3)  # reproducible
    assert 0.2 <= interval[0] < 0.625 < interval[1] <= 1.0
    assert bootstrap_ratio([0, 0], [0, 0], 500, 0.95, 0) == (None, None)  # no denominator anywhere


# ---------------------------------------------------------------------------------------------
# A model behind the loopback OpenAI-compatible server


def expected_row(behaviour: str, item: dict, offered: list[str]) -> dict:
    gold_args = item["gold"]["arguments"]
    n = len(gold_args)
    if behaviour == "right":
        return {
            "status": "call",
            "exact_match": True,
            "name_match": True,
            "arg_correct": n,
            "arg_predicted": n,
            "arg_precision": 1.0 if n else None,
            "arg_recall": 1.0 if n else None,
            "schema_valid": True,
            "api_success": True,
            "api_source": "stored",
        }
    if behaviour == "wrong_name":
        name = next(o for o in offered if o != item["gold"]["name"])
        valid = CATALOG[name].validate(gold_args) is None
        return {
            "status": "call",
            "pred_name": name,
            "exact_match": False,
            "name_match": False,
            "arg_correct": 0,
            "arg_predicted": n,
            "arg_precision": 0.0 if n else None,
            "arg_recall": 0.0 if n else None,
            "schema_valid": valid,
            **({} if valid else {"api_success": False, "api_outcome": "invalid_call"}),
        }
    if behaviour == "wrong_args":
        args = dict(gold_args)
        first = sorted(args)[0]
        args[first] = f"{args[first]}X" if isinstance(args[first], str) else "X"
        valid = CATALOG[item["gold"]["name"]].validate(args) is None
        return {
            "status": "call",
            "exact_match": False,
            "name_match": True,
            "arg_correct": n - 1,
            "arg_predicted": n,
            "arg_precision": (n - 1) / n,
            "arg_recall": (n - 1) / n,
            "schema_valid": valid,
            "api_success": None if valid else False,
            "api_outcome": "replay_miss" if valid else "invalid_call",
            "similarity": 0.0,
        }
    base = {
        "exact_match": False,
        "arg_correct": 0,
        "arg_predicted": 0,
        "arg_precision": None,
        "arg_recall": 0.0 if n else None,
        "schema_valid": False,
        "api_success": False,
        "similarity": 0.0,
        "pred_observation": None,
    }
    if behaviour == "malformed":
        return {**base, "status": "malformed", "name_match": True, "api_outcome": "malformed"}
    return {**base, "status": "no_call", "name_match": False, "api_outcome": "no_call", "pred_name": None, "n_calls": 0}


def test_each_metric_per_item_and_in_aggregate(store, llm):
    items = test_items(store)
    plan = script(llm, items)
    result = model_run(store, llm)
    rows = {r["item_id"]: r for r in rows_of(store, "select * from eval_predictions where run_id = ?", [result.run_id])}
    assert set(rows) == {i["item_id"] for i in items}
    for item in items:
        row, behaviour = rows[item["item_id"]], plan[item["item_id"]]
        offered = [t["function"]["name"] for t in item["tools"]]
        for column, value in expected_row(behaviour, item, offered).items():
            assert row[column] == value, (behaviour, item["function"], column, row[column], value)
        assert row["raw_output"] and json.loads(row["raw_output"])["role"] == "assistant"  # the model's own reply
        assert json.loads(row["gold_call"]) == item["gold"]
        if behaviour == "right":
            assert row["similarity"] > 0.99 and row["pred_observation"]
            assert json.loads(row["pred_canonical"])["arguments"] == canonical_arguments(
                CATALOG[item["function"]], item["gold"]["arguments"]
            )
        if behaviour == "malformed":
            assert "not valid JSON" in row["error"]
        if row["api_success"]:
            assert row["pred_observation"] and 0 < row["similarity"] <= 1.0
    # Aggregates: recomputed here from the per-item rows, by the documented definitions.
    scores = {
        (s["level"], s["key"], s["metric"]): s
        for s in rows_of(store, "select * from eval_scores where run_id = ?", [result.run_id])
    }
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows.values():
        groups.setdefault(("overall", "all"), []).append(r)
        for level in ("database", "tool", "function", "category"):
            groups.setdefault((level, r[level]), []).append(r)
    for (level, key), members in groups.items():
        n = len(members)
        for metric, column in (
            ("exact_match", "exact_match"),
            ("name_accuracy", "name_match"),
            ("schema_validity", "schema_valid"),
            ("api_success", "api_success"),
        ):
            k = sum(1 for r in members if r[column] is True)
            s = scores[(level, key, metric)]
            assert (s["n"], s["value"], s["method"]) == (n, k / n, "wilson"), (level, key, metric)
            assert (s["ci_low"], s["ci_high"]) == pytest.approx(wilson(k, n))
        predicted, gold = sum(r["arg_predicted"] for r in members), sum(r["arg_gold"] for r in members)
        correct = sum(r["arg_correct"] for r in members)
        precision = scores[(level, key, "arg_precision")]
        assert precision["value"] == (pytest.approx(correct / predicted) if predicted else None)
        assert scores[(level, key, "arg_recall")]["value"] == (pytest.approx(correct / gold) if gold else None)
        similarity = scores[(level, key, "similarity")]
        assert similarity["value"] == pytest.approx(sum(r["similarity"] for r in members) / n)
        if n > 1 and similarity["ci_low"] is not None:
            assert (
                similarity["ci_low"] <= similarity["value"] + 1e-9
                and similarity["ci_high"] >= similarity["value"] - 1e-9
            )
    right = sum(1 for b in plan.values() if b == "right")
    assert scores[("overall", "all", "exact_match")]["value"] == right / len(items)
    overall = {s["metric"]: s for s in result.overall}
    assert overall["name_accuracy"]["value"] == sum(
        1 for b in plan.values() if b in ("right", "wrong_args", "malformed")
    ) / len(items)
    # The model saw the export's system prompt, the question and the gold tool among its distractors;
    # never the answer.
    sent = [r["body"] for r in llm.requests]
    assert len(sent) == len(items)
    for body in sent:
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert body["temperature"] == 0.0 and "response_format" not in body
        question = body["messages"][1]["content"]
        gold_name = llm.tool_script[question][1]["name"]
        assert gold_name in [t["function"]["name"] for t in body["tools"]]
        assert len(body["tools"]) == 1 + make_config(store).publish.distractor_tools
    calls = rows_of(store, "select purpose, model, status, prompt_tokens from llm_calls where purpose = 'eval'")
    assert len(calls) == len(items) and {c["model"] for c in calls} == {"standin-tools"}


def test_a_second_run_is_answered_from_the_caches_with_identical_scores(store, llm):
    script(llm, test_items(store))
    first = model_run(store, llm, EvalSettings(embedder="lexical"))
    served = len(llm.requests)
    second = model_run(store, llm, EvalSettings(embedder="lexical"))
    assert len(llm.requests) == served  # every prompt answered from llm_calls
    assert first.run_id != second.run_id
    assert [(s["metric"], s["value"]) for s in first.overall] == [(s["metric"], s["value"]) for s in second.overall]
    runs = rows_of(store, "select settings_hash, status, embedder from eval_runs order by started_at")
    assert runs[0]["settings_hash"] == runs[1]["settings_hash"] and {r["status"] for r in runs} == {"completed"}
    assert runs[0]["embedder"] == "lexical-char3-v1"


def test_all_tools_offers_the_whole_catalog(store, llm):
    items = test_items(store)
    script(llm, items)
    result = model_run(store, llm, EvalSettings(tools_mode="catalog", embedder="lexical", limit=3))
    assert result.items == 3
    assert all(len(r["body"]["tools"]) == len(CATALOG) for r in llm.requests)
    run = rows_of(store, "select tools_mode, items from eval_runs")[0]
    assert run == {"tools_mode": "catalog", "items": 3}


def test_unknown_calls_go_out_through_the_transport_and_are_cached(store, llm):
    """A call no stored response answers is executed (here live, against the loopback APIs); its
    definite answer is cached in eval_responses, so the next run sends nothing."""
    from biocurate.snapshot import Snapshot

    items = test_items(store)
    plan = script(llm, items)
    api = ApiStandIn(Snapshot(ROOT / "data" / "demo_snapshot")).start()
    try:
        live = {"execute.transport": "live", "execute.base_urls": api.base_urls()}
        model_run(store, llm, EvalSettings(embedder="lexical"), **live)
        sent = len(api.requests)
        rows = rows_of(store, "select item_id, api_outcome, api_success, api_source from eval_predictions")
        model_run(store, llm, EvalSettings(embedder="lexical"), **live)
        again = rows_of(
            store,
            "select api_source from eval_predictions where run_id = "
            "(select run_id from eval_runs order by started_at desc limit 1)",
        )
    finally:
        api.stop()
    executed = [r for r in rows if r["api_source"] == "executed"]
    valid_wrong_args = [r for r in rows if plan[r["item_id"]] == "wrong_args" and r["api_source"] is not None]
    cached = rows_of(store, "select count(*) as n from eval_responses")[0]["n"]
    assert executed and sent == cached  # one request per distinct unknown call, each answer kept
    assert valid_wrong_args
    for r in valid_wrong_args:  # the stand-in knows no such identifier: a definite 404, not undecided
        assert (r["api_outcome"], r["api_success"]) == ("http_error", False)
    assert all(r["api_source"] == "stored" for r in rows if plan[r["item_id"]] == "right")
    assert sum(1 for r in again if r["api_source"] == "cache") == len(executed)


# ---------------------------------------------------------------------------------------------
# The retrieval baseline, reports, views, errors


def test_substitution_by_context_and_by_shape():
    from biocurate.baseline import substitute

    call = {"name": "get_variation", "arguments": {"id": "rs6025", "species": "human"}}
    args, changes = substitute(
        CATALOG, "What is known about the variant rs6025?", call, "What is known about the variant rs699?"
    )
    assert args == {"id": "rs699", "species": "human"} and changes == {"id": ["rs6025", "rs699"]}
    args, _ = substitute(CATALOG, "Where is rs6025 located?", call, "Tell me how common rs1801133 is, please.")
    assert args["id"] == "rs1801133"  # no shared context: the token shaped like the value
    args, changes = substitute(CATALOG, "Where is rs6025 located?", call, "Where is it located?")
    assert args == call["arguments"] and changes == {}  # nothing to put in its place: kept
    taxon = {"name": "get_taxonomy_id", "arguments": {"id": "10116", "simple": True}}
    args, _ = substitute(CATALOG, "Tell me about taxon 10116.", taxon, "Tell me about taxon 7227.")
    assert args == {"id": "7227", "simple": True}


def test_retrieval_baseline_runs_offline_on_a_published_version(store):
    out = runner.invoke(
        app,
        ["eval", "run", "--version", "v0001", "--baseline", "retrieval"],
        env={"BIOCURATE_STORE": str(store / "store.duckdb")},
    )
    assert out.exit_code == 0, out.output
    assert "exact_match" in out.output and "by database" in out.output
    run = rows_of(store, "select * from eval_runs")[0]
    assert (run["kind"], run["model"], run["transport"], run["status"]) == (
        "baseline",
        "retrieval baseline",
        "replay",
        "completed",
    )
    assert "all-MiniLM-L6-v2" in run["embedder"]
    preds = rows_of(store, "select * from eval_predictions")
    with Store(store / "store.duckdb").open(read_only=True) as con:
        folder = resolve_version(con, "v0001").path
    train = set(pl.read_parquet(folder / "parquet" / "train.parquet")["item_id"])
    assert len(preds) == run["items"] == len(test_items(store))
    assert {p["retrieved_item_id"] for p in preds} <= train  # only training items lend their calls
    exact = [p for p in preds if p["exact_match"]]
    assert exact and all(p["api_success"] and p["similarity"] > 0.99 for p in exact)
    substituted = [p for p in preds if json.loads(p["raw_output"])["substituted"]]
    assert substituted and any(p["exact_match"] for p in substituted)  # substitution made right calls


def test_report_compares_runs_in_a_table_and_markdown_with_plots(store, llm, tmp_path):
    script(llm, test_items(store))
    model = model_run(store, llm, EvalSettings(embedder="lexical"))
    cfg = make_config(store)
    with Store(cfg.store.path).open() as con:
        baseline = run_eval(cfg, con, "v0001", EvalSettings(embedder="lexical"), baseline="retrieval")
    out = runner.invoke(
        app,
        ["eval", "report", model.run_id, baseline.run_id[:-2], "--out", str(tmp_path / "r")],
        env={"BIOCURATE_STORE": str(store / "store.duckdb")},
    )
    assert out.exit_code == 0, out.output
    assert "exact match" in out.output and "standin-tools" in out.output and "retrieval baseline" in out.output
    text = (tmp_path / "r" / "report.md").read_text()
    for expected in (
        "| exact match |",
        "| API success |",
        "## By database",
        "## By category",
        model.run_id,
        baseline.run_id,
        "lexical-char3-v1",
        "(overall.png)",
        "(by_database.png)",
    ):
        assert expected in text
    for png in ("overall.png", "by_database.png", "by_category.png"):
        assert (tmp_path / "r" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_function = runner.invoke(
        app,
        ["eval", "report", model.run_id, "--by", "function", "--out", str(tmp_path / "f")],
        env={"BIOCURATE_STORE": str(store / "store.duckdb")},
    )
    assert per_function.exit_code == 0, per_function.output
    assert (
        "## By function" in (tmp_path / "f" / "report.md").read_text() and (tmp_path / "f" / "by_function.png").exists()
    )
    board = rows_of(store, "select * from eval_leaderboard")
    assert {b["run_id"] for b in board} == {model.run_id, baseline.run_id}
    assert all(b["exact_match_low"] <= b["exact_match"] <= b["exact_match_high"] for b in board)
    by_db = rows_of(store, "select * from eval_by_database where run_id = ?", [model.run_id])
    assert {r["database"] for r in by_db} == {i["database"] for i in test_items(store)}
    kinds = {
        r["kind"]: r["items"] for r in rows_of(store, "select * from eval_failures where run_id = ?", [model.run_id])
    }
    assert kinds["no_call"] == sum(1 for b in script(llm, test_items(store)).values() if b == "no_call")
    assert kinds["malformed"] and kinds["wrong_name"] and kinds["correct"]


def test_mistakes_in_the_command_say_what_to_do(store, llm):
    env = {"BIOCURATE_STORE": str(store / "store.duckdb")}
    missing = runner.invoke(app, ["eval", "run", "--version", "v0042", "--baseline", "retrieval"], env=env)
    assert missing.exit_code == 2 and "no version 'v0042'" in missing.output and "v0001" in missing.output
    both = runner.invoke(app, ["eval", "run", "--version", "v0001", "--baseline", "retrieval", "--model", "m"], env=env)
    assert both.exit_code == 2 and "either a model" in both.output
    split = runner.invoke(
        app, ["eval", "run", "--version", "v0001", "--baseline", "retrieval", "--split", "validation"], env=env
    )
    assert split.exit_code == 2 and "no validation split" in split.output
    nothing = runner.invoke(app, ["eval", "report", "eval-nope"], env=env)
    assert nothing.exit_code == 2 and "no evaluation run 'eval-nope'" in nothing.output
    assert rows_of(store, "select count(*) as n from eval_runs")[0]["n"] == 0  # refused before writing


# ---------------------------------------------------------------------------------------------
# The evaluated model's key: read from one list of secrets, masked everywhere


def test_the_eval_key_is_masked_in_config_output_and_in_logs(monkeypatch, tmp_path):
    import io
    import logging

    from biocurate.evaluate import eval_api_key
    from biocurate.log import LogfmtFormatter, event, get_logger

    key = "sk-eval-0123456789-not-for-logs"
    monkeypatch.setenv("BIOCURATE_EVAL_API_KEY", key)
    assert eval_api_key() == key
    # Also where a setting holds the value (a key pasted into a URL).
    config = tmp_path / "c.toml"
    config.write_text(f'[execute.base_urls]\n"https://rest.ensembl.org" = "http://127.0.0.1:9/?key={key}"\n')
    out = runner.invoke(app, ["config", "--config", str(config)])
    assert out.exit_code == 0, out.output
    assert key not in out.output
    shown = json.loads(out.output)
    assert shown["secrets"]["BIOCURATE_EVAL_API_KEY"] == "***set***"
    assert shown["execute"]["base_urls"] == {"https://rest.ensembl.org": "http://127.0.0.1:9/?key=***"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    logger = get_logger("test_eval")
    logger.addHandler(handler)
    try:
        event(logger, f"asking with {key}", authorization=f"Bearer {key}")
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "asking with ***" in line and "Bearer ***" in line and key not in line


def test_every_secret_read_from_the_environment_is_in_the_one_list():
    """A secret read straight from os.environ would be neither masked nor listed by `biocurate config`."""
    import re

    from biocurate.config import SECRET_ENV

    read = re.compile(r"""(?:environ\.get|environ\[|getenv)\(?\s*["']([A-Z0-9_]+)["']""")
    names = {
        name
        for package in ("biocurate", "flows")
        for path in (ROOT / package).rglob("*.py")
        for name in read.findall(path.read_text())
    }
    secrets = {n for n in names if re.search(r"KEY|TOKEN|PASSWORD|SECRET", n)}
    assert not secrets - set(SECRET_ENV.values()), sorted(secrets - set(SECRET_ENV.values()))


def test_no_secret_lands_in_eval_runs(store, llm, monkeypatch):
    """A failed run's error is masked by value before it is cut, and so is what a user typed into
    the run's row (a key pasted into the model's URL)."""
    from biocurate.evaluate import failure_text

    key = "sk-eval-0123456789-not-for-the-store"
    monkeypatch.setenv("BIOCURATE_EVAL_API_KEY", key)
    error = failure_text(RuntimeError(f"401 from the endpoint: Authorization: Bearer {key}"))
    assert error == "RuntimeError: 401 from the endpoint: Authorization: Bearer ***"
    # A key that straddles the cut leaves no part of itself behind.
    cut = failure_text(ValueError("x" * 990 + key), limit=1000)
    assert cut == "ValueError: " + "x" * 988 and key[:6] not in cut.removeprefix("ValueError: ")
    assert failure_text(ValueError("x" * 1500 + key)).count("x") == 1000 - len("ValueError: ")

    script(llm, test_items(store))
    cfg = make_config(store)
    with Store(cfg.store.path).open() as con:
        run_eval(
            cfg,
            con,
            "v0001",
            EvalSettings(embedder="lexical", limit=2),
            llm=model_config("standin-tools", f"{llm.base_url}?api-key={key}"),
            label=f"tried with {key}",
        )
    (row,) = rows_of(store, "select label, base_url, settings, error from eval_runs")
    assert key not in json.dumps(row, default=str)
    assert row["base_url"] == f"{llm.base_url}?api-key=***" and row["label"] == "tried with ***"
