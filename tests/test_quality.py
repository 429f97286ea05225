"""Quality checks: near-duplicates, every expectation's bad rows, the demo run. (The mention and
naturalness expectations are tested rule by rule in test_mentions.py and test_naturalness.py.)"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from biocurate.config import load_config
from biocurate.errors import ConfigError
from biocurate.gx import load_suites
from biocurate.hashing import content_hash
from biocurate.near_dup import KEYED_COLUMNS, candidate_batches, find_duplicates, question_keys, signature, tokens
from biocurate.quality import run_quality
from biocurate.stages import STAGES, catalog_for, run_stage
from biocurate.store import Store
from tests.store_rows import Rows

ROOT = Path(__file__).resolve().parent.parent
GOOD_OBSERVATION = json.dumps(
    {
        "id": "ENSG00000139618",
        "display_name": "BRCA2",
        "biotype": "protein_coding",
        "seq_region_name": "13",
        "start": 32315086,
        "end": 32400268,
    }
)
HUMAN_BRCA2 = {"species": "homo_sapiens", "symbol": "BRCA2"}
# the shipped expectation suites (one a file), each validated and given a Data Docs page
SUITES = {"calls", "observations", "queries", "judgments", "dataset", "balance", "call_sets"}


# --- a GX helper (the custom expectations' tests use it) ----------------------------------


def gx_failures(frame: pd.DataFrame, expectation) -> list[str]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = ctx.data_sources.add_pandas("t").add_dataframe_asset("a").add_batch_definition_whole_dataframe("w")
    result = batch.get_batch(batch_parameters={"dataframe": frame}).validate(
        gx.ExpectationSuite(name="s", expectations=[expectation]),
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]},
    )
    res = result.results[0]
    assert not res.exception_info["raised_exception"], res.exception_info
    return sorted(r["id"] for r in res.result["unexpected_index_list"] or [])


# --- near-duplicates ---------------------------------------------------------------------


def dup_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_id", "call_id", "text", "identifiers"])
    frame["reference"] = False
    return frame


def flagged(result: pd.DataFrame) -> dict[str, tuple]:
    out = {}
    for row in result.itertuples():
        for kind in ("exact_duplicate_of", "near_duplicate_in_call_of", "near_duplicate_of"):
            if getattr(row, kind) is not None and getattr(row, kind) == getattr(row, kind):
                out[row.item_id] = (kind, getattr(row, kind))
    return out


def test_near_duplicates_ignore_punctuation_case_and_word_order():
    result = find_duplicates(
        dup_frame(
            [
                ("q1", "c1", "Which chromosome is the human gene BRCA2 on?", ["BRCA2"]),
                ("q2", "c1", "which chromosome is the human gene brca2 on", ["BRCA2"]),  # case, punctuation
                ("q3", "c2", "The human gene BRCA2: which chromosome is it on?", ["BRCA2"]),  # word order
                ("q4", "c3", "WHICH CHROMOSOME IS THE HUMAN GENE BRCA2 ON?", ["BRCA2"]),  # exact up to case
                ("q5", "c4", "Which chromosome, is the human gene BRCA2, on ?!", ["BRCA2"]),  # punctuation only
            ]
        ),
        within_call_threshold=0.8,
        dataset_threshold=0.8,
    )
    assert flagged(result) == {
        "q2": ("near_duplicate_in_call_of", "q1"),
        "q3": ("near_duplicate_of", "q1"),
        "q4": ("exact_duplicate_of", "q1"),
        "q5": ("near_duplicate_of", "q1"),
    }
    assert result.set_index("item_id").loc["q2", "similarity"] == 1.0


def test_near_duplicates_never_merge_different_identifiers():
    rows = [
        ("a1", "c1", "Which chromosome is the human gene BRCA1 on?", ["BRCA1"]),
        ("a2", "c2", "Which chromosome is the human gene BRCA2 on?", ["BRCA2"]),
        ("b1", "c3", "Which chromosome is the human gene EGFR on?", ["EGFR"]),
        ("b2", "c4", "Which chromosome is the human gene KRAS on?", ["KRAS"]),
        ("v1", "c5", "Where in the genome is the variant rs699 located, and on which strand?", ["rs699"]),
        ("v2", "c6", "Where in the genome is the variant rs7412 located, and on which strand?", ["rs7412"]),
        ("r1", "c7", "Which genes overlap the region 7:140424943-140624564 in human?", ["7:140424943-140624564"]),
        ("r2", "c8", "Which genes overlap the region 7:140424943-140624565 in human?", ["7:140424943-140624565"]),
    ]
    result = find_duplicates(dup_frame(rows), within_call_threshold=0.5, dataset_threshold=0.5)
    assert flagged(result) == {}
    # Without the identifiers these questions would be near-duplicates by wording alone.
    assert signature(tokens(rows[2][2]), ["EGFR"]) != signature(tokens(rows[3][2]), ["KRAS"])


def test_near_duplicates_keep_the_first_and_respect_references():
    frame = dup_frame(
        [
            ("old", "c1", "What does Ensembl know about the human gene TP53?", ["TP53"]),
            ("new", "c2", "what does ensembl know about the human gene tp53", ["TP53"]),
            ("other", "c3", "List the transcripts of TP53 with their biotypes.", ["TP53"]),
        ]
    )
    frame.loc[0, "reference"] = True
    # The reference row comes later in order but is already accepted: it is never flagged.
    frame = frame.iloc[[1, 0, 2]].reset_index(drop=True)
    assert flagged(find_duplicates(frame, 0.8, 0.8)) == {}
    frame.loc[frame["item_id"] == "old", "reference"] = False
    assert flagged(find_duplicates(frame, 0.8, 0.8)) == {"old": ("near_duplicate_of", "new")}


def test_near_duplicates_find_pairs_among_many_distinct_questions():
    genes = [f"GENE{i}" for i in range(3000)]
    rows = [
        (f"q{i}", f"c{i}", f"Which transcripts and exons does {g} have in human tissue?", [g])
        for i, g in enumerate(genes)
    ]
    rows.append(("dup", "cx", f"In human tissue, which exons and transcripts does {genes[1234]} have", [genes[1234]]))
    result = find_duplicates(dup_frame(rows), 0.8, 0.8)
    assert flagged(result) == {"dup": ("near_duplicate_of", "q1234")}


def test_duplicate_search_in_batches_finds_what_one_search_finds():
    """The stage searches a batch of linked questions at a time (near_dup.candidate_batches, from
    keys without texts): the union of the batches' results is the result over every question."""
    genes = [f"GENE{i}" for i in range(400)]
    rows = []
    for i, g in enumerate(genes):
        rows.append((f"q{i:04d}a", f"c{i}", f"Which transcripts and exons does {g} have in human tissue?", [g]))
        rows.append((f"q{i:04d}b", f"c{i}", f"In human tissue, which exons and transcripts does {g} have", [g]))
        if i % 7 == 0:  # the same question for another call; and once more, exactly
            rows.append((f"q{i:04d}c", f"d{i}", f"Which exons and transcripts does {g} have in human tissue?", [g]))
            rows.append((f"q{i:04d}d", f"e{i}", f"which transcripts and exons does {g} have in human  tissue?", [g]))
    frame = dup_frame(rows)
    frame["kind"] = "single"
    frame.loc[frame["item_id"].str.endswith("c"), "reference"] = True  # earlier survivors come first
    frame = frame.sort_values(["reference", "item_id"], ascending=[False, True], ignore_index=True)
    whole = flagged(find_duplicates(frame, 0.8, 0.8))
    assert {kind for kind, _ in whole.values()} == {
        "exact_duplicate_of",
        "near_duplicate_in_call_of",
        "near_duplicate_of",
    }

    keys = question_keys(
        frame["text"].tolist(), frame["identifiers"].tolist(), frame["kind"].tolist(), frame["call_id"].tolist()
    )
    keys = pl.concat([pl.from_pandas(frame[["item_id", "reference"]]), keys], how="horizontal")
    batches = candidate_batches(keys, batch_rows=10)
    assert len(batches) > 20
    batched: dict[str, tuple] = {}
    keyed: dict[str, tuple] = {}  # the batch given all question_keys' columns (no keys made again)
    for rows_of_batch in batches:
        batch = frame.iloc[rows_of_batch].reset_index(drop=True)
        batch["signature"] = keys["signature"].to_numpy()[rows_of_batch]
        batched.update(flagged(find_duplicates(batch.drop(columns="identifiers"), 0.8, 0.8)))
        for column in KEYED_COLUMNS:
            batch[column] = keys[column].to_numpy()[rows_of_batch]
        keyed.update(flagged(find_duplicates(batch.drop(columns="identifiers"), 0.8, 0.8)))
    assert batched == whole
    assert keyed == whole


def test_duplicate_search_batches_questions_without_words_by_their_exact_text():
    """Questions with no word to compare (only punctuation) share only their exact key: the
    batches still hold them, and nothing fails for want of a question with words."""
    texts = ["?", " ?", "!!", "?"]
    keys = question_keys(texts, [[], [], [], []], ["single"] * 4, ["c1", "c2", "c3", "c4"])
    assert not keys["has_tokens"].any()
    keys = keys.with_columns(reference=pl.lit(False))
    batches = candidate_batches(keys, batch_rows=10)
    assert [b.tolist() for b in batches] == [[0, 1, 3]]  # "?" three times; "!!" repeats nothing


# --- every expectation on a store of deliberately bad rows ---------------------------------


class Items(Rows):
    """One item per call (a call of its own unless ``call_id`` names one): tests/store_rows.py's
    call, response, observation, question and judgment rows, not yet checked."""

    def __init__(self, con):
        super().__init__(con)
        self.n = 0

    def add(
        self,
        text: str,
        function: str = "lookup_by_symbol",
        arguments: dict | None = None,
        observation: str = GOOD_OBSERVATION,
        outcome: str = "ok",
        verdict: str | None = "accept",
        score: float = 0.9,
        call_id: str | None = None,
        parent: str | None = None,
        query_id: str | None = None,
    ) -> str:
        self.n += 1
        arguments = HUMAN_BRCA2 if arguments is None else arguments
        call_id = self.call(
            function,
            arguments,
            observation=observation,
            outcome=outcome,
            call_id=call_id or content_hash(function, arguments, self.n),
        )
        annotator = "rev1@example.org" if parent else None
        return self.query(call_id, text, None, parent, annotator, query_id=query_id, verdict=verdict, score=score)


GOOD = "What does Ensembl know about the human gene BRCA2?"
# expectation -> (question, keyword arguments of Items.add); each row breaks that one rule.
BAD = {
    "function_in_catalog": (
        "Which record does Ensembl keep for the human gene BRCA2?",
        {"function": "no_such_function"},
    ),
    "call_args_valid": ("Which Ensembl gene has the symbol BRCA2 in any species?", {"arguments": {"symbol": "BRCA2"}}),
    "observation_outcome_ok": ("Where is the human gene BRCA2 annotated in Ensembl?", {"outcome": "http_error"}),
    "observation_not_empty": ("On which chromosome is the human gene BRCA2?", {"observation": "{}"}),
    "observation_within_size": (
        "What is the genomic sequence of the human gene BRCA2?",
        {"observation": json.dumps({"seq": "ACGT" * 700})},
    ),
    "no_error_payload": (
        "Is the human gene BRCA2 protein coding in Ensembl?",
        {"observation": json.dumps({"error": "No valid lookup found for symbol BRCA2"})},
    ),
    "query_mentions_arguments": ("Which gene record does Ensembl hold for brca2 in humans?", {}),
    "query_reads_naturally": ("Call lookup_by_symbol to get the human gene BRCA2.", {}),
    "query_length": ("Tell me about the human gene BRCA2 " + "and its many interesting features " * 14 + "?", {}),
    "query_word_count": (
        "Summarise the P51587",
        {"function": "get_uniprotkb_entry", "arguments": {"accession": "P51587"}},
    ),
    "query_in_english": ("BRCA2 Gen beim Menschen bitte erklären", {"function": "get_info_ping", "arguments": {}}),
    "query_no_other_language": ("Was ist das Gen BRCA2 beim Menschen?", {"function": "get_info_ping", "arguments": {}}),
    "verdict_present": ("How long is the human gene BRCA2 in Ensembl?", {"verdict": None}),
    "score_in_range": ("Which biotype has the human gene BRCA2 in Ensembl?", {"score": 1.5}),
    "judge_score_above_bar": ("Which stable ID has the human gene BRCA2 in Ensembl?", {"score": 0.2}),
}
# More rows that read like an API log, each for one naturalness rule (all in test_naturalness.py).
UNNATURAL = [
    "What does https://rest.ensembl.org/lookup say about the human gene BRCA2?",
    "Which format_ value returns the human gene BRCA2?",
    "Give me the JSON record of the human gene BRCA2.",
    "What is the human gene BRCA2 called in {source}?",
    "Which Ensembl record matches symbol:BRCA2 in human?",
    "For my project, i need the human gene BRCA2.",
    "Where is the gene BRCA2 of homo_sapiens?",
]


def bad_rows_store(tmp: Path):
    """A store with good rows and bad rows for every expectation, not yet checked: (config, ids)."""
    config = load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(tmp / "store.duckdb"),
            "quality.data_docs_dir": str(tmp / "docs"),
            "review.enabled": False,
            "quality.min_observation_chars": 2,
        },
    )
    ids: dict[str, str] = {}
    with Store(config.store.path).open() as con:
        items = Items(con)
        ids["good"] = items.add(GOOD)
        good_call = con.execute("select call_id from queries where query_id = ?", [ids["good"]]).fetchall()[0][0]
        ids["good_other_gene"] = items.add(
            "What does Ensembl know about the human gene BRCA1?",
            arguments={"species": "homo_sapiens", "symbol": "BRCA1"},
        )
        ids["good_egfr"] = items.add(
            "Where does Ensembl place the human gene EGFR?", arguments={"species": "homo_sapiens", "symbol": "EGFR"}
        )
        ids["good_kras"] = items.add(
            "Where does Ensembl place the human gene KRAS?", arguments={"species": "homo_sapiens", "symbol": "KRAS"}
        )
        ids["good_ping"] = items.add(
            "Is the Ensembl server up and answering right now?",
            function="get_info_ping",
            arguments={},
            observation='{"ping":1}',
        )
        for name, (text, kwargs) in BAD.items():
            ids[name] = items.add(text, **kwargs)
        for i, text in enumerate(UNNATURAL):
            ids[f"query_reads_naturally_{i}"] = items.add(text)
        # Of two duplicates the one with the smaller id is kept (quality.add_duplicate_columns):
        # these ids extend the good row's, so they sort after it and the copies are the ones flagged.
        ids["exact_duplicate"] = items.add(GOOD.upper(), query_id=ids["good"] + "-exact")
        ids["near_duplicate_within_call"] = items.add(
            "The human gene BRCA2: what does Ensembl know about it?",
            call_id=good_call,
            query_id=ids["good"] + "-within-call",
        )
        ids["near_duplicate_in_dataset"] = items.add(
            "What does ENSEMBL know about the human gene BRCA2",
            arguments={**HUMAN_BRCA2, "expand": True},
            query_id=ids["good"] + "-in-dataset",
        )
        # A reviewer's edit that only fixes punctuation replaces its parent: neither is a duplicate.
        ids["edited_parent"] = items.add(
            "Which transcripts does the human gene BRCA2 have , in Ensembl ?",
            arguments={**HUMAN_BRCA2, "expand": False},
        )
        edited_call = con.execute("select call_id from queries where query_id = ?", [ids["edited_parent"]]).fetchall()[
            0
        ][0]
        ids["edit"] = items.add(
            "Which transcripts does the human gene BRCA2 have in Ensembl?",
            call_id=edited_call,
            parent=ids["edited_parent"],
        )
    return config, ids


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A store with good rows and bad rows for every expectation, checked once."""
    config, ids = bad_rows_store(tmp_path_factory.mktemp("quality"))
    with Store(config.store.path).open() as con:
        summary = run_quality(config, con, catalog_for(config), run_id="r1")
    with Store(config.store.path).open(read_only=True) as con:
        rows = con.execute(
            "select item_kind, item_id, suite, expectation, passed, severity, reason from qc_results"
        ).fetchall()
        survivors = {r[0] for r in con.execute("select query_id from survivors").fetchall()}
    results = pd.DataFrame(
        rows, columns=["item_kind", "item_id", "suite", "expectation", "passed", "severity", "reason"]
    )
    return {"config": config, "ids": ids, "summary": summary, "results": results, "survivors": survivors}


def failures_of(checked, item_id: str) -> dict[str, str]:
    r = checked["results"]
    rows = r[(r["item_id"] == item_id) & ~r["passed"]]
    return dict(zip(rows["expectation"], rows["reason"], strict=True))


def suite_specs() -> dict[str, dict]:
    return {spec["name"]: spec for suite in load_suites(ROOT / "expectations") for spec in suite["expectations"]}


def test_bad_rows_cover_every_row_and_duplicate_expectation():
    specs = suite_specs()
    balance = {s["name"] for s in load_suites(ROOT / "expectations") if s["level"] == "balance"}
    per_item = {
        name
        for name, spec in specs.items()
        if not any(
            name in [e["name"] for e in s["expectations"]]
            for s in load_suites(ROOT / "expectations")
            if s["name"] in balance
        )
    }
    # the call-set expectations' bad rows are sets: tests/test_item_kinds_quality.py
    call_sets = {"set_steps_sound", "set_kind_rule"}
    assert (
        per_item
        == set(BAD) | {"exact_duplicate", "near_duplicate_within_call", "near_duplicate_in_dataset"} | call_sets
    )


@pytest.mark.parametrize(
    "expectation", [*BAD, "exact_duplicate", "near_duplicate_within_call", "near_duplicate_in_dataset"]
)
def test_each_bad_row_is_caught_with_its_reason(checked, expectation):
    item = checked["ids"][expectation]
    failures = failures_of(checked, item)
    assert expectation in failures, f"{expectation}: not caught; failed {sorted(failures)}"
    assert failures[expectation].startswith(suite_specs()[expectation]["reason"])
    # Each bad row breaks its own rule only (the rows are built that way), and is not a survivor.
    assert set(failures) == {expectation}
    assert item not in checked["survivors"]


def test_error_payloads_of_every_shape_fail_and_answers_pass():
    """The shipped ``no_error_payload`` (white space and word boundary spelled in ASCII, for
    pyarrow's regex engine) catches each shape of error an API returns with HTTP 200."""
    import great_expectations as gx

    spec = suite_specs()["no_error_payload"]
    errors = {
        "error_key": '{"error": "No valid lookup found for symbol BRCA9"}',
        "spaced_key": ' \n{ "Errors" : ["bad id"]}',
        "fault_key": '{"fault":{"faultstring":"quota"}}',
        "nested_upper": '{"result":{"ERROR" :  "Unknown accession"}}',
        "xml": "<?xml version='1.0'?><eSearchResult><Error>Empty term</Error></eSearchResult>",
        "ncbi_messages": '{"url": "https://x", "status": 400, "messages": ["Invalid"]}',
        "text_error": "Error: the server is busy",
        "text_error_alone": "ERROR",
        "text_error_line": " error\nmore",
    }
    answers = {
        "gene": GOOD_OBSERVATION,
        "word_inside": '{"description": "an error-prone DNA polymerase"}',
        "longer_word": "Errors-in-variables models are described here",
        "error_field_value": '{"error_rate": 0.01}',
        "lowercase_value": '{"status": "error"}',
    }
    frame = pd.DataFrame({"id": [*errors, *answers], "observation": [*errors.values(), *answers.values()]})
    expectation = gx.expectations.ExpectColumnValuesToNotMatchRegex(**spec["kwargs"])
    assert gx_failures(frame, expectation) == sorted(errors)


def test_reasons_say_what_exactly_was_wrong(checked):

    ids = checked["ids"]
    assert (
        "(missing symbol 'BRCA2' verbatim)"
        in failures_of(checked, ids["query_mentions_arguments"])["query_mentions_arguments"]
    )
    assert (
        "(catalog name 'lookup_by_symbol')"
        in failures_of(checked, ids["query_reads_naturally"])["query_reads_naturally"]
    )
    assert "'species' is a required property" in failures_of(checked, ids["call_args_valid"])["call_args_valid"]
    assert f"repeats {ids['good']}" in failures_of(checked, ids["exact_duplicate"])["exact_duplicate"]
    assert (
        f"repeats {ids['good']}"
        in failures_of(checked, ids["near_duplicate_within_call"])["near_duplicate_within_call"]
    )
    assert "score 0.2" in failures_of(checked, ids["judge_score_above_bar"])["judge_score_above_bar"]
    expected = [
        "URL 'https://rest.ensembl.org/lookup'",
        "catalog name 'format_'",
        "API word 'JSON'",
        "template residue '{source}'",
        "query syntax field:value 'symbol:BRCA2'",
        "lower-case \"i\" 'i'",
        "snake_case name 'homo_sapiens'",
    ]
    for i, detail in enumerate(expected):
        failures = failures_of(checked, ids[f"query_reads_naturally_{i}"])
        assert set(failures) == {"query_reads_naturally"}
        assert failures["query_reads_naturally"].endswith(f"({detail})"), failures


def test_good_rows_pass_everything_and_survive(checked):
    r = checked["results"]
    for name in ("good", "good_other_gene", "good_egfr", "good_kras", "good_ping", "edit", "edited_parent"):
        item = checked["ids"][name]
        assert failures_of(checked, item) == {}, name
        # Checked (one 'checked' row), nothing failed (no other row), so a survivor.
        assert r[r["item_id"] == item][["suite", "expectation", "passed"]].values.tolist() == [["qc", "checked", True]]
        assert item in checked["survivors"], name
    # Every question was checked, bad ones too.
    assert set(r[r["suite"] == "qc"]["item_id"]) == set(checked["ids"].values())


def test_balance_is_recorded_per_database_category_and_tool(checked):
    r = checked["results"]
    balance = r[r["item_kind"] == "dataset"]
    assert set(balance["severity"]) == {"warning"}
    failing = balance[~balance["passed"]].set_index(["expectation", "item_id"])["reason"]
    # Every survivor is an Ensembl genomics lookup: too much for one database, category and tool.
    assert "database=Ensembl" in failing.loc["database_balance"].index
    assert "database=NCBI" in failing.loc["database_balance"].index
    assert "category=genomics" in failing.loc["category_balance"].index
    assert "tool=lookup_by_symbol" in failing.loc["tool_share"].index
    assert "tool=esearch" in failing.loc["tool_coverage"].index
    assert balance[(balance["item_id"] == "tool=lookup_by_symbol") & (balance["expectation"] == "tool_coverage")][
        "passed"
    ].all()
    assert "lookup_by_symbol: " in failing.loc[("tool_share", "tool=lookup_by_symbol")]
    # Warnings block nothing: the good rows above survive although the balance fails.
    assert checked["summary"].warnings["balance.database_balance"] >= 3


def test_data_docs_are_built(checked):
    index = Path(checked["config"].quality.data_docs_dir) / "index.html"
    assert index.exists()
    pages = list(index.parent.glob("validations/*/r1/*/*.html"))
    assert {p.parts[-4] for p in pages} == SUITES
    queries_page = next(p for p in pages if p.parts[-4] == "queries").read_text()
    assert "query_mentions_arguments" in queries_page and "query_reads_naturally" in queries_page


def test_data_docs_read_offline_and_list_every_validation_run(checked):
    """No CDN asset left in any page; the index lists each suite's run as plain HTML with a working
    link (GX's own list needs bootstrap-table from a CDN); pages name their run, not __none__."""
    docs = Path(checked["config"].quality.data_docs_dir)
    for page in docs.rglob("*.html"):
        text = page.read_text()
        assert not re.search(r"(src|href)=\"https?://[^\"]*\.(js|css)", text), page
        assert "biocurate.css" in text, page
    index = (docs / "index.html").read_text()
    listed = re.findall(r'<td>r1</td><td>(\w+)</td>.*?<a href="([^"]+)">open</a>', index)
    assert {suite for suite, _ in listed} == SUITES
    for _, href in listed:
        page = (docs / href).read_text()
        assert "__none__" not in page and ">r1<" in page
    assert f"Validation runs ({len(SUITES)})" in index


def whole_and_chunked(tmp_path: Path):
    """The bad-rows store and a copy of it, each with its config, to check in one chunk and in
    chunks of 3 questions: [(name, config, chunk_rows)], and the store's question ids."""
    config, ids = bad_rows_store(tmp_path / "whole")
    chunked = config.model_copy(update={"store": config.store.model_copy(update={"path": tmp_path / "chunked.duckdb"})})
    shutil.copy(config.store.path, chunked.store.path)
    return [("whole", config, 1_000_000), ("chunked", chunked, 3)], ids


def checked_outcome(cfg, chunk_rows: int) -> tuple:
    """The quality stage run on ``cfg``'s store in chunks of ``chunk_rows``: (its qc_results, the
    survivors, and the summary's checked count, failing and warning expectations)."""
    with Store(cfg.store.path).open() as con:
        summary = run_quality(cfg, con, catalog_for(cfg), run_id="r1", chunk_rows=chunk_rows)
        results = con.execute(
            "select qc_id, item_kind, item_id, suite, expectation, passed, severity, reason from qc_results "
            "order by qc_id"
        ).fetchall()
        survivors = con.execute("select query_id from survivors order by query_id").fetchall()
    return results, survivors, summary.checked, summary.failing, summary.warnings


def test_checks_in_small_chunks_record_what_one_pass_records(tmp_path):
    """The question suites validate a few rows at a time (bounded memory): the stored results,
    the counts and the survivors are those of validating every row at once."""
    runs, _ = whole_and_chunked(tmp_path)
    outcome = {}
    for name, cfg, rows in runs:
        outcome[name] = checked_outcome(cfg, rows)
    whole, chunked_run = outcome["whole"], outcome["chunked"]
    assert whole[2] > 3 * 10  # many chunks of 3
    assert any(not r[5] and r[1] == "query" for r in whole[0])  # failures with reasons to compare
    assert chunked_run == whole


def test_duplicate_keys_made_by_a_worker_record_what_one_process_records(tmp_path, monkeypatch, started):
    """A large run's duplicate-search keys are made in a worker process while the suites run
    (``biocurate.workers.aside``): the same results, counts and survivors as made here."""
    from biocurate import quality

    runs, _ = whole_and_chunked(tmp_path)
    outcome = {}
    for (_, cfg, _), (name, aside_from) in zip(runs, (("here", 10**9), ("aside", 0)), strict=True):
        monkeypatch.setattr(quality, "KEYS_WORKER_MIN_QUESTIONS", aside_from)
        outcome[name] = checked_outcome(cfg, 4)
        assert len(started.of("biocurate.workers")) == (0 if name == "here" else 1) and started.ended()
    here = outcome["here"]
    assert {"exact_duplicate", "near_duplicate_within_call", "near_duplicate_in_dataset"} <= {
        r[4] for r in here[0] if not r[5]
    }  # the keys found duplicates to compare
    assert outcome["aside"] == here


def test_the_stage_reads_and_writes_the_store_a_chunk_at_a_time(tmp_path, monkeypatch):
    """Bounded memory: with chunks of 3 questions the stage reads each chunk from the store and
    writes the results of two chunks at a time (RESULTS_ROWS 6; the store is released between
    them, so it is opened at least once per chunk and once per write), and records what one
    chunk of every question records, duplicates across chunks included."""
    from biocurate import quality

    monkeypatch.setattr(quality, "RESULTS_ROWS", 6)
    runs, ids = whole_and_chunked(tmp_path)
    outcome = {}
    for name, cfg, rows in runs:
        with Store(cfg.store.path).access() as access:
            summary = run_quality(cfg, access, catalog_for(cfg), run_id="r1", chunk_rows=rows)
            opens = access.opens
        with Store(cfg.store.path).open(read_only=True) as con:
            results = con.execute(
                "select qc_id, item_kind, item_id, suite, expectation, passed, severity, reason, run_id"
                " from qc_results order by qc_id"
            ).fetchall()
            written = con.execute("select count(distinct created_at) from qc_results").fetchall()[0][0]
        outcome[name] = (results, summary.checked, summary.failing, summary.warnings, summary.survivors)
        outcome[name + " opens"], outcome[name + " writes"] = opens, written
    chunks = -(-outcome["whole"][1] // 3)
    assert chunks > 10
    assert outcome["chunked"] == outcome["whole"]
    duplicates = {r[2] for r in outcome["whole"][0] if r[1] == "query" and r[3] == "dataset" and not r[5]}
    assert duplicates == {ids["exact_duplicate"], ids["near_duplicate_within_call"], ids["near_duplicate_in_dataset"]}
    writes = -(-chunks // 2)
    assert outcome["chunked writes"] == writes and outcome["whole writes"] == 1
    assert outcome["chunked opens"] >= chunks + writes > outcome["whole opens"]


def store_config(folder):
    """The shipped configuration with its store and data docs in ``folder``."""
    return load_config(
        ROOT / "biocurate.toml",
        overrides={"store.path": str(folder / "s.duckdb"), "quality.data_docs_dir": str(folder / "docs")},
    )


def test_severity_comes_from_config(tmp_path):
    config = load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(tmp_path / "s.duckdb"),
            "quality.data_docs_dir": str(tmp_path / "docs"),
            "quality.severity": {"query_word_count": "warning"},
        },
    )
    with Store(config.store.path).open() as con:
        items = Items(con)
        short = items.add(BAD["query_word_count"][0], **BAD["query_word_count"][1])
        summary = run_quality(config, con, catalog_for(config), run_id="r1")
        row = con.execute(
            "select passed, severity, reason from qc_results where item_id = ? and expectation = 'query_word_count'",
            [short],
        ).fetchall()[0]
        survivors = [r[0] for r in con.execute("select query_id from survivors").fetchall()]
    assert row[0] is False and row[1] == "warning" and row[2].startswith("the question has fewer")
    assert short in survivors
    assert summary.warnings["queries.query_word_count"] == 1
    bad = load_config(
        ROOT / "biocurate.toml",
        overrides={"store.path": str(tmp_path / "s.duckdb"), "quality.severity": {"query_wordcount": "warning"}},
    )
    with Store(bad.store.path).open() as con, pytest.raises(ConfigError, match="query_wordcount"):
        run_quality(bad, con, catalog_for(bad), run_id="r2")


def test_which_duplicate_is_kept_does_not_depend_on_the_order_they_were_written(tmp_path):
    """A resumed or distributed rebuild writes questions in another order than an undisturbed one;
    the kept copy must be the same (the smaller id), not the first written."""
    config = store_config(tmp_path)
    with Store(config.store.path).open() as con:
        items = Items(con)
        written_first = items.add(GOOD, query_id="q-2-written-first")
        written_later = items.add(GOOD.upper(), query_id="q-1-written-later")
        run_quality(config, con, catalog_for(config), run_id="r1")
        flagged_rows = con.execute(
            "select item_id from qc_results"
            " where item_kind = 'query' and expectation = 'exact_duplicate' and not passed"
        ).fetchall()
        survivors = {r[0] for r in con.execute("select query_id from survivors").fetchall()}
    assert flagged_rows == [(written_first,)]
    assert written_later in survivors and written_first not in survivors


def test_new_rows_are_compared_with_earlier_survivors(tmp_path):
    config = store_config(tmp_path)
    with Store(config.store.path).open() as con:
        items = Items(con)
        first = items.add(GOOD)
        others = [
            items.add(
                f"What does Ensembl know about the human gene {g}?", arguments={"species": "homo_sapiens", "symbol": g}
            )
            for g in ("TP53", "EGFR", "KRAS", "APOE", "INS", "CFTR")
        ]
        assert run_quality(config, con, catalog_for(config), run_id="r1").survivors == 7
        later = items.add(
            "Ensembl: what does it know about the human gene BRCA2?", arguments={**HUMAN_BRCA2, "expand": True}
        )
        summary = run_quality(config, con, catalog_for(config), run_id="r2")
        assert summary.checked == 1  # only the new question is checked
        reason = con.execute("select reason from qc_results where item_id = ? and not passed", [later]).fetchall()
        survivors = [r[0] for r in con.execute("select query_id from survivors").fetchall()]
    assert sorted(survivors) == sorted([first, *others])
    assert len(reason) == 1 and f"repeats {first}" in reason[0][0]


# --- the demo run --------------------------------------------------------------------------


def test_demo_run_failures_are_queryable_and_docs_exist(demo_config):
    with Store(demo_config.store.path).open() as con:
        for name in ("sample", "execute", "synthesize", "judge"):
            STAGES[name](demo_config, con, "demo")
        summary = run_quality(demo_config, con, catalog_for(demo_config), "demo")
        failing = dict(
            con.execute(
                "select suite || '.' || expectation, count(distinct item_id) from qc_current "
                "where not passed and item_kind <> 'expectation' group by all"
            ).fetchall()
        )
        table = {
            (r[0], r[1]): r
            for r in con.execute("select suite, expectation, checked, passed, failed from qc_expectations").fetchall()
        }
        queries = con.execute("select count(*) from queries").fetchall()[0][0]
        survivors = con.execute("select count(*) from survivors").fetchall()[0][0]
        blocked = con.execute(
            "select count(distinct item_id) from qc_current "
            "where not passed and severity = 'blocking' and item_kind = 'query'"
        ).fetchall()[0][0]
        again = STAGES["quality"](demo_config, con, "demo2")
    # The counts the stage reports are the counts SQL gives, expectation by expectation.
    reported = {k: v for k, v in {**summary.failing, **summary.warnings}.items() if v}
    assert failing == reported and failing
    expectations = {(s["name"], e["name"]) for s in load_suites(ROOT / "expectations") for e in s["expectations"]}
    assert set(table) == expectations
    for (suite, name), (_, _, checked, passed, failed) in table.items():
        assert checked == passed + failed and checked > 0
        assert failed == failing.get(f"{suite}.{name}", 0)
        if suite != "balance":
            assert checked == queries
    assert survivors == summary.survivors == queries - blocked > 0
    assert (Path(demo_config.quality.data_docs_dir) / "index.html").exists()
    assert again.rows_in == 0  # nothing new to check

    from biocurate.cli import app

    out = CliRunner().invoke(
        app, ["qc", "report"], env={"BIOCURATE_STORE": str(demo_config.store.path), "COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    assert "query_mentions_arguments" in out.output and "top rejection reasons" in out.output


def test_rebuild_flow_publishes_the_pass_fail_table_as_an_artifact(prefect_harness, demo_config):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.rebuild import rebuild

    result = rebuild(
        config_path=str(ROOT / "biocurate.toml"),
        overrides={
            "store.path": str(demo_config.store.path),
            "review.enabled": False,
            "quality.data_docs_dir": str(demo_config.quality.data_docs_dir),
        },
    )

    async def latest():
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["quality-expectations"]))
            )
            return max(found, key=lambda a: a.created)

    artifact = asyncio.run(latest())
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    names = {(row["suite"], row["expectation"]) for row in table}
    assert names == {(s["name"], e["name"]) for s in load_suites(ROOT / "expectations") for e in s["expectations"]}
    assert all(row["checked"] == row["passed"] + row["failed"] for row in table)
    assert result["run_id"] in artifact.description


def test_questions_are_checked_on_their_latest_judgment(tmp_path):
    """Judged again (a new judge or prompt), a question is checked on its newest judgment only."""
    config = store_config(tmp_path)
    with Store(config.store.path).open() as con:
        items = Items(con)
        # judged low first, then high; and the other way round
        rose = items.add(GOOD, score=0.1)
        fell = items.add(
            "What does Ensembl know about the human gene TP53?", arguments={"species": "homo_sapiens", "symbol": "TP53"}
        )
        for query_id, score in ((rose, 0.95), (fell, 0.05)):
            con.execute(
                "insert into judgments (judgment_id, query_id, judge, model, prompt_version, verdict, score, reason, "
                "created_at) values (?, ?, 'rules', 'rules-v2', 'v2', 'accept', ?, 'again', "
                "current_timestamp + interval 1 hour)",
                [f"again-{query_id}", query_id, score],
            )
        run_quality(config, con, catalog_for(config), run_id="r1")
        failed = dict(
            con.execute(
                "select item_id, string_agg(expectation, ',') from qc_results "
                "where item_kind = 'query' and not passed group by item_id"
            ).fetchall()
        )
    assert failed == {fell: "judge_score_above_bar"}


def test_pending_keeps_a_calls_questions_together_within_a_synthesis_batch(demo_config):
    """A chunk works out each call's facts once (``CallFacts``), so ``pending`` puts a call's
    questions next to each other within a batch written together; by id alone they interleave."""
    from biocurate.quality_frames import pending

    for stage in ("sample", "execute", "synthesize"):
        run_stage(stage, demo_config, "r1")
    with Store(demo_config.store.path).open(read_only=True) as con:
        todo = pending(con, "not-checked-yet")
        written = dict(con.execute("select query_id, created_at from queries").fetchall())

    def runs_of_calls(frame: pl.DataFrame) -> int:
        """How many runs of one call the order has, per batch written together (created_at)."""
        keys = [(written[i], c) for i, c in zip(frame["item_id"], frame["call_id"], strict=True)]
        return sum(1 for k, key in enumerate(keys) if k == 0 or key != keys[k - 1])

    batches_and_calls = {(written[i], c) for i, c in zip(todo["item_id"], todo["call_id"], strict=True)}
    assert todo.height > 2 * len(batches_and_calls)  # calls with several questions in one batch
    assert runs_of_calls(todo) == len(batches_and_calls)  # each call's questions in one run
    by_id = todo.with_columns(pl.Series("at", [written[i] for i in todo["item_id"]])).sort("at", "item_id")
    assert runs_of_calls(by_id) > len(batches_and_calls)  # the order by id would interleave them
