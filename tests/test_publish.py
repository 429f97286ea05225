"""biocurate.publish: what is exported and why not, stable leakage-free splits, formats read by
their real consumers, manifest and card, interrupted publishes, diffs between versions."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jsonschema
import polars as pl
import pytest
from typer.testing import CliRunner

from biocurate import publish as pub
from biocurate.cli import app
from biocurate.config import Config, memory_bytes
from biocurate.errors import CatalogError, ConfigError
from biocurate.hashing import content_hash, sha256_bytes
from biocurate.publish.biotool import observation_value
from biocurate.store import Store, insert_new, utcnow
from biocurate.workers import WorkerError
from tests.biotool_consumers.consumers import OPENAI_TOOL
from tests.store_rows import CATALOG, Rows
from tests.test_review import annotate

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def with_publish(config: Config, **settings) -> Config:
    return config.model_copy(update={"publish": config.publish.model_copy(update=settings)})


# ---------------------------------------------------------------------------------------------
# A store built from tiny inline rows


def arguments_for(function: str, n: int) -> dict:
    """Valid arguments for a catalog function, varied by n (a boolean now and then)."""
    params = CATALOG[function].schema()["function"]["parameters"]
    args = {}
    # A function with nothing required (esummary, as in BioTool) gets its first two text parameters.
    chosen = (
        params["required"]
        or [k for k, v in params["properties"].items() if v.get("type") == "string" and "enum" not in v][:2]
    )
    for name in chosen:
        spec = params["properties"][name]
        args[name] = spec["enum"][n % len(spec["enum"])] if "enum" in spec else f"{name.upper()}{n}"
    if "expand" in params["properties"] and n % 3 == 0:
        args["expand"] = True
    return args


FUNCTIONS = [
    "lookup_by_symbol",
    "get_xrefs_by_symbol",
    "get_variation",
    "get_uniprotkb_entry",
    "search_uniprotkb",
    "get_taxonomy_by_id",
    "esummary",
    "esearch",
]


def fill(rows: Rows, calls: int, queries_per_call: int = 2, start: int = 0, entities: int | None = None) -> list[str]:
    """`calls` accepted calls spread over FUNCTIONS (three databases), two questions each."""
    ids = []
    for n in range(start, start + calls):
        function = FUNCTIONS[n % len(FUNCTIONS)]
        entity = f"entity{n % entities}" if entities else None
        ids += rows.accepted(
            function,
            arguments_for(function, n),
            [f"Question {q} number {n} about {function}?" for q in range(queries_per_call)],
            entity,
        )
    return ids


@pytest.fixture
def store(demo_config):
    with Store(demo_config.store.path).open() as con:
        yield con, Rows(con)


def items_of(con, version_id: str) -> dict[str, str]:
    return dict(con.execute("select item_id, split from dataset_items where version_id = ?", [version_id]).fetchall())


# ---------------------------------------------------------------------------------------------
# What is exported, and why the rest is not


def test_only_human_accepted_items_are_exported_and_the_rest_is_counted_by_reason(demo_config, store):
    con, rows = store
    accepted = rows.accepted(
        "lookup_by_symbol", {"species": "homo_sapiens", "symbol": "BRCA2"}, ["Where is the human BRCA2 gene?"]
    )
    call = rows.call("get_uniprotkb_entry", {"accession": "P04637"})
    rejected = rows.query(call, "What is UniProt entry P04637?")
    rows.annotate(rejected, "reject", reject_reason="wrong_call")
    pending = rows.query(call, "Tell me about protein P04637.")
    rows.push(pending)
    rows.query(call, "Describe the P04637 protein record.")  # survivor never pushed
    rows.query(call, "P04637?", qc=False)  # failed QC
    rows.query(call, "Which protein has accession P04637?", qc=None)  # not checked yet
    edited = rows.query(call, "wat is P04637")
    rows.annotate(edited, "accept_with_edit", edited_query="What is the protein with accession P04637?")
    rows.query(call, "What is the protein with accession P04637?", parent=edited, annotator="rev1@example.org")
    edit_failed = rows.query(call, "give P04637 entry")
    rows.annotate(edit_failed, "accept_with_edit", edited_query="P04637")
    rows.query(call, "P04637", qc=False, parent=edit_failed, annotator="rev1@example.org")
    edit_unchecked = rows.query(call, "show P04637 entry")
    rows.annotate(edit_unchecked, "accept_with_edit", edited_query="Show me the UniProt entry P04637.")
    rows.query(call, "Show me the UniProt entry P04637.", qc=None, parent=edit_unchecked, annotator="rev1@example.org")
    call_changed = rows.query(call, "What does UniProt hold on P04637 entry?")
    rows.annotate(
        call_changed,
        "accept_with_edit",
        edited_call=json.dumps({"name": "get_uniprotkb_entry", "arguments": {"accession": "P38398"}}),
    )
    same_call = rows.query(call, "What does UniProt say about entry P04637?")
    rows.annotate(
        same_call,
        "accept_with_edit",
        edited_call=json.dumps({"name": "get_uniprotkb_entry", "arguments": {"accession": "P04637"}}),
    )
    split_vote = rows.query(call, "Fetch the UniProt record P04637 for me.")
    rows.annotate(split_vote, "accept", annotator="a@example.org")
    rows.annotate(split_vote, "reject", annotator="b@example.org")

    retired = rows.call("esearch", {"db": "gene", "term": "TP53"})
    con.execute("update candidate_calls set function = 'retired_function' where call_id = ?", [retired])
    rows.annotate(rows.query(retired, "Which gene records match TP53?"), "accept")

    majority = demo_config.model_copy(update={"review": demo_config.review.model_copy(update={"resolve": "majority"})})
    items, refused = pub.select_items(majority, con, CATALOG)
    exported = dict(zip(items["item_id"], items["user_query"], strict=True))
    assert exported == {
        accepted[0]: "Where is the human BRCA2 gene?",
        edited: "What is the protein with accession P04637?",
        same_call: "What does UniProt say about entry P04637?",
    }
    assert refused == {
        pub.NOT_CHECKED: 1,
        pub.FAILED_QC: 1,
        pub.NOT_PUSHED: 1,
        pub.PENDING: 1,
        pub.REJECTED: 1,
        pub.CONFLICTING: 1,
        pub.CALL_EDITED: 1,
        pub.EDIT_NOT_CHECKED: 1,
        pub.EDIT_FAILED_QC: 1,
        pub.NOT_IN_CATALOG: 1,
    }
    originals = con.execute("select count(*) from queries where parent_query_id is null").fetchall()[0][0]
    assert len(exported) + sum(refused.values()) == originals

    # Under any_reject the split vote is a rejection; the report says so.
    assert pub.select_items(demo_config, con, CATALOG)[1][pub.REJECTED] == 2

    result = pub.publish(majority, con)
    assert result.refused == refused
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["not_exported"] == refused
    card = (result.path / "README.md").read_text()
    assert f"| {pub.EDIT_FAILED_QC} | 1 |" in card
    biotool = [
        r
        for s in pub.SPLITS
        if (result.path / f"biotool/{s}.json").exists()
        for r in json.loads((result.path / f"biotool/{s}.json").read_text())
    ]
    assert sorted(r["user_query"] for r in biotool) == sorted(exported.values())
    assert manifest["provenance"]["review"]["accepted_with_edited_question"] == 1


def test_nothing_to_publish_says_why(demo_config, store):
    con, rows = store
    call = rows.call("esearch", {"db": "gene", "term": "BRCA1"})
    rows.push(rows.query(call, "Which gene records match BRCA1?"))
    result = pub.publish(demo_config, con)
    assert result.version_id is None and "no human-accepted items" in result.message
    assert result.refused == {pub.PENDING: 1}
    assert not Path(demo_config.publish.out_dir).exists() or not any(Path(demo_config.publish.out_dir).iterdir())


# ---------------------------------------------------------------------------------------------
# Splits

LEAKS_SQL = "select version_id, group_key from dataset_items group by all having count(distinct split) > 1"


def test_no_group_crosses_splits_by_sql_and_by_gx(demo_config, store):
    con, rows = store
    config = with_publish(demo_config, group_by="entity")
    fill(rows, calls=60, entities=15)  # four calls per entity, two questions per call
    version = pub.publish(config, con).version_id
    items = con.sql("select d.*, c.entity_id from dataset_items d join candidate_calls c using (call_id)").pl()
    assert items.height == 120
    assert items.group_by("entity_id").agg(pl.col("split").n_unique()).get_column("split").max() == 1
    assert set(items["group_key"]) == {f"entity:entity{i}" for i in range(15)}
    assert con.execute(LEAKS_SQL).fetchall() == []
    assert {r[0] for r in con.execute("select leaking_groups from split_summary").fetchall()} == {0}
    assert pub.split_checks(con, version) == []

    # Both checks catch a group moved across splits by hand.
    group = items.filter(pl.col("split") == "train")["group_key"][0]
    moved = items.filter(pl.col("group_key") == group)["item_id"][0]
    con.execute("update dataset_items set split = 'test' where item_id = ?", [moved])
    assert con.execute(LEAKS_SQL).fetchall() == [(version, group)]
    problems = pub.split_checks(con, version)
    # GX sees only the rows that could fail, and counts what it would count on every row: each
    # item of the moved group (its group now spans two splits), no other
    members = items.filter(pl.col("group_key") == group).height
    (grouped,) = [p for p in problems if "'group_splits'" in p]
    assert f"}}: {members} items," in grouped and members > 1


def test_the_split_checks_judge_a_versions_spooled_rows_before_they_are_recorded(demo_config, store, tmp_path):
    # Publish checks the next version's rows in its Parquet spool, before inserting them (at a
    # million calls the uncommitted rows would hold most of the store's memory limit).
    con, rows = store
    config = with_publish(demo_config, group_by="entity")
    fill(rows, calls=60, entities=15)
    first = pub.publish(config, con).version_id
    recorded = con.execute("select count(*) from dataset_items").fetchall()
    spool = tmp_path / "items.parquet"
    columns = "item_id, call_id, split, group_key, user_query, function_calling, observation, database, tool"

    def checked(select: str) -> list[str]:
        con.execute(f"copy (select 'next' as version_id, {columns} from ({select})) to '{spool}' (format parquet)")
        return pub.split_checks(con, "next", spool)

    # The same items again, and an item no version held yet in its group's split: both pass
    # (a new item's first split is its own).
    assert checked(f"select {columns} from dataset_items") == []
    one = con.execute("select item_id, split from dataset_items order by item_id limit 1").fetchall()[0]
    newcomer = (
        f"select 'newcomer' as item_id, * exclude (item_id, version_id) from dataset_items where item_id = '{one[0]}'"
    )
    assert checked(f"select {columns} from dataset_items union all by name {newcomer}") == []

    # One item moved to another split: its group spans two, and it left its first split.
    other = "test" if one[1] != "test" else "train"
    moved = f"select * replace (if(item_id = '{one[0]}', '{other}', split) as split) from dataset_items"
    problems = checked(f"select {columns} from ({moved})")
    assert any("'group_splits'" in p for p in problems)
    assert any("first_split" in p for p in problems)
    # Checked before recording: nothing was written, and the recorded version still passes.
    assert con.execute("select count(*) from dataset_items").fetchall() == recorded
    assert pub.split_checks(con, first) == []


def test_splits_are_stable_across_versions_as_items_arrive_and_leave(demo_config, store):
    con, rows = store
    first_ids = fill(rows, calls=40)
    v1 = pub.publish(demo_config, con)
    before = items_of(con, v1.version_id)
    assert len(before) == 80 and set(before.values()) == set(pub.SPLITS)

    # New questions for published calls join their call's split; new calls get assigned.
    calls = con.execute("select distinct call_id from dataset_items").fetchall()
    joined = []
    for (call_id,) in calls[:10]:
        joined.append(rows.query(call_id, f"One more question about call {call_id}?"))
        rows.annotate(joined[-1], "accept")
    fill(rows, calls=40, start=40)
    # A reviewer changes their mind about one item: it leaves, the rest stay put.
    gone = first_ids[3]
    rows.annotate(gone, "reject")
    v2 = pub.publish(demo_config, con)
    after = items_of(con, v2.version_id)
    assert len(after) == 80 - 1 + 10 + 80
    assert gone not in after
    assert all(after[i] == s for i, s in before.items() if i != gone)
    call_split = dict(
        con.execute(
            "select call_id, any_value(split) from dataset_items where version_id = ? group by all", [v1.version_id]
        ).fetchall()
    )
    for query_id, (call_id,) in zip(joined, calls[:10], strict=True):
        assert after[query_id] == call_split[call_id]
    manifest = json.loads((v2.path / "manifest.json").read_text())
    assert manifest["parent"] == v1.version_id
    assert manifest["splits"]["inherited_items"] == 79 + 10 and manifest["splits"]["new_groups"] == 40

    # The item comes back: it gets its old split again, whatever the new groups did.
    rows.annotate(gone, "accept")
    v3 = pub.publish(demo_config, con)
    assert items_of(con, v3.version_id)[gone] == before[gone]
    assert (
        con.execute("select item_id from dataset_items group by item_id having count(distinct split) > 1").fetchall()
        == []
    )


def test_stratified_assignment_keeps_every_prefix_near_the_ratios(demo_config, store):
    """One stratum (one tool) whose groups arrive over four versions: after each version every
    split is within 3 groups of its target; hashing alone drifts further on the same groups."""
    con, rows = store
    deviation = {}
    for stratify in (True, False):
        config = with_publish(demo_config, stratify=stratify, split_seed=f"seed-{stratify}")
        con.execute("delete from dataset_items; delete from dataset_versions")
        worst = 0.0
        for chunk in range(4):
            for n in range(chunk * 50, chunk * 50 + 50):
                rows.accepted("get_uniprotkb_entry", {"accession": f"P{n:05d}"}, [f"What is UniProt entry P{n:05d}?"])
            version = pub.publish(config, con).version_id
            counts = dict(
                con.execute(
                    "select split, count(*) from dataset_items where version_id = ? group by all", [version]
                ).fetchall()
            )
            total = sum(counts.values())
            worst = max(
                worst,
                *(abs(counts.get(s, 0) - total * r) for s, r in (("train", 0.8), ("validation", 0.1), ("test", 0.1))),
            )
        deviation[stratify] = worst
        con.execute(
            "delete from annotations; delete from review_tasks; delete from qc_results; delete from judgments;"
            "delete from queries; delete from observations; delete from api_responses; "
            "delete from candidate_calls"
        )
    print(f"worst deviation from the ratios (groups): stratified {deviation[True]:.1f}, hash {deviation[False]:.1f}")
    assert deviation[True] <= 3
    assert deviation[True] < deviation[False]


def test_regrouping_published_items_by_entity_is_refused_with_a_remedy(demo_config, store):
    con, rows = store
    fill(rows, calls=40, entities=5)  # eight calls per entity, split by call first
    pub.publish(demo_config, con)
    assert (
        con.execute(
            "select count(*) from (select c.entity_id from dataset_items d join candidate_calls c "
            "using (call_id) group by all having count(distinct split) > 1)"
        ).fetchall()[0][0]
        > 0
    )
    with pytest.raises(pub.PublishError, match="group_by = 'entity'.*different splits.*Keep the grouping"):
        pub.publish(with_publish(demo_config, group_by="entity"), con)
    assert con.execute("select count(*) from dataset_versions").fetchall()[0][0] == 1


def test_ratios_must_add_up():
    from biocurate.config import load_config

    with pytest.raises(ConfigError, match="must add up to 1"):
        load_config(ROOT / "biocurate.toml", overrides={"publish.train": 0.7})


def test_distractors_are_deterministic_and_prefer_the_same_database():
    pick = pub.Distractors(CATALOG, 3, "seed")
    names = pick("get_uniprotkb_entry", "item1")
    assert names == pick("get_uniprotkb_entry", "item1") and len(names) == 4 and len(set(names)) == 4
    assert names.count("get_uniprotkb_entry") == 1
    assert {CATALOG[n].database for n in names} == {"UniProt"}
    assert len({tuple(pick("get_uniprotkb_entry", f"item{i}")) for i in range(20)}) > 5
    positions = {pick("get_uniprotkb_entry", f"item{i}").index("get_uniprotkb_entry") for i in range(40)}
    assert len(positions) > 1  # the right tool is not always first
    # A database with fewer other tools than asked for is topped up from the others.
    ncbi = [t.name for t in CATALOG if t.database == "NCBI"]
    many = pub.Distractors(CATALOG, len(ncbi) + 2, "seed")("esearch", "item1")
    assert set(ncbi) <= set(many) and len(many) == len(ncbi) + 3
    assert pub.Distractors(CATALOG, 0, "seed")("esearch", "x") == ["esearch"]


# ---------------------------------------------------------------------------------------------
# Formats, each read by its consumer

# OpenAI's chat fine-tuning line ("The chat input object" of the fine-tuning API reference and
# the "fine-tuning with function calling" guide): messages with roles; an assistant turn may carry
# tool_calls, each {id, type: "function", function: {name, arguments: a JSON *string*}}; tools are
# {type: "function", function: {name, description, parameters}} (OPENAI_TOOL, the one schema of a tool
# entry, shared with the BioTool consumers' check); parallel_tool_calls is a boolean.
OPENAI_CHAT_LINE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["messages"],
    "additionalProperties": False,
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["role", "content"],
                        "additionalProperties": False,
                        "properties": {
                            "role": {"enum": ["system", "developer", "user"]},
                            "content": {"type": "string"},
                            "name": {"type": "string"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["role"],
                        "additionalProperties": False,
                        "anyOf": [{"required": ["content"]}, {"required": ["tool_calls"]}],
                        "properties": {
                            "role": {"const": "assistant"},
                            "content": {"type": ["string", "null"]},
                            "weight": {"enum": [0, 1]},
                            "name": {"type": "string"},
                            "tool_calls": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["id", "type", "function"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "id": {"type": "string", "minLength": 1},
                                        "type": {"const": "function"},
                                        "function": {
                                            "type": "object",
                                            "required": ["name", "arguments"],
                                            "additionalProperties": False,
                                            "properties": {
                                                "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                                                "arguments": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                    {
                        "type": "object",
                        "required": ["role", "content", "tool_call_id"],
                        "additionalProperties": False,
                        "properties": {
                            "role": {"const": "tool"},
                            "content": {"type": "string"},
                            "tool_call_id": {"type": "string"},
                        },
                    },
                ]
            },
        },
        "tools": {"type": "array", "items": OPENAI_TOOL},
        "parallel_tool_calls": {"type": "boolean"},
    },
}


# Adapted from hiyouga/LLaMA-Factory (Apache-2.0) at ff6d4d12eeb035d6ce06805a5733dd7b29f2ac30:
# src/llamafactory/data/parser.py (DatasetAttr defaults and join), converter.py
# (SharegptDatasetConverter.__call__, non-ranking, non-KTO path), formatter.py
# (FunctionFormatter._parse_functions, ToolFormatter.apply) and tool_utils.py
# (DefaultToolUtils.tool_formatter). Returns what the converter would hand to training.
LF_DEFAULT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}


def llamafactory_sharegpt(example: dict, entry: dict) -> dict:
    assert entry.get("formatting") == "sharegpt"
    columns = {"messages": "conversations", **entry.get("columns", {})}
    tags = {**LF_DEFAULT_TAGS, **entry.get("tags", {})}
    mapping = {
        tags["user_tag"]: "user",
        tags["assistant_tag"]: "assistant",
        tags["observation_tag"]: "observation",
        tags["function_tag"]: "function",
        tags["system_tag"]: "system",
    }
    odd_tags = (tags["user_tag"], tags["observation_tag"])
    even_tags = (tags["assistant_tag"], tags["function_tag"])
    messages = example[columns["messages"]]
    if messages and messages[0][tags["role_tag"]] == tags["system_tag"]:
        system, messages = messages[0][tags["content_tag"]], messages[1:]
    else:
        system = example[columns["system"]] if "system" in columns else ""
    aligned, broken = [], False
    for turn, message in enumerate(messages):
        if message[tags["role_tag"]] not in (odd_tags, even_tags)[turn % 2]:
            broken = True
            break
        aligned.append({"role": mapping[message[tags["role_tag"]]], "content": message[tags["content_tag"]]})
    if len(aligned) % 2 != 0:
        broken = True
    prompt, response = ([], []) if broken else (aligned[:-1], aligned[-1:])
    tools = example[columns["tools"]] if "tools" in columns else ""
    for message in prompt + response:
        if message["role"] == "function":  # FunctionFormatter: JSON with name and arguments
            calls = json.loads(message["content"])
            for call in calls if isinstance(calls, list) else [calls]:
                json.dumps(call["arguments"]), call["name"]
    if tools:  # ToolFormatter + DefaultToolUtils.tool_formatter
        for tool in json.loads(tools):
            tool = tool.get("function", "") if tool.get("type") == "function" else tool
            for _name, param in tool["parameters"]["properties"].items():
                param.get("type", ""), param.get("description", "")
            tool["name"], tool.get("description", "")
    return {"_prompt": prompt, "_response": response, "_system": system, "_tools": tools}


def load_json_dataset(files, cache: Path, kind: str = "json"):
    import datasets

    return datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train", cache_dir=str(cache))


@pytest.fixture
def hf_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf-cache"


def test_every_format_loads_in_its_consumer(demo_config, store, hf_offline):
    con, rows = store
    fill(rows, calls=48)
    result = pub.publish(demo_config, con)
    folder, manifest = result.path, json.loads((result.path / "manifest.json").read_text())
    sizes = manifest["counts"]["splits"]
    assert all(sizes[s] > 0 for s in pub.SPLITS)

    for split in pub.SPLITS:
        biotool = load_json_dataset([folder / f"biotool/{split}.json"], hf_offline)
        assert biotool.num_rows == sizes[split]
        assert set(biotool.column_names) == {"user_query", "function_calling", "observation", "database", "tool"}
        call = biotool[0]["function_calling"]
        assert call["name"] in CATALOG and isinstance(call["arguments"], dict)
        # BioTool's names: the module path its dispatcher imports (<database>.<tool>.api).
        assert all(
            (CATALOG[c["name"]].source, CATALOG[c["name"]].group) == (d, t)
            for c, d, t in zip(biotool["function_calling"], biotool["database"], biotool["tool"], strict=True)
        )
        assert set(biotool["database"]) <= {"ncbi", "ensembl", "uniprot"}

        parquet = load_json_dataset([folder / f"parquet/{split}.parquet"], hf_offline, kind="parquet")
        assert parquet.num_rows == sizes[split] and set(parquet["split"]) == {split}

        openai_rows = load_json_dataset([folder / f"openai/{split}.jsonl"], hf_offline)
        assert openai_rows.num_rows == sizes[split]
        for line in (folder / f"openai/{split}.jsonl").read_text().splitlines():
            record = json.loads(line)
            jsonschema.validate(record, OPENAI_CHAT_LINE, cls=jsonschema.Draft202012Validator)
            (tool_call,) = record["messages"][-1]["tool_calls"]
            offered = {t["function"]["name"]: t for t in record["tools"]}
            assert tool_call["function"]["name"] in offered and len(offered) == 1 + demo_config.publish.distractor_tools
            # The arguments string parses and fits the offered tool's own parameter schema.
            jsonschema.validate(
                json.loads(tool_call["function"]["arguments"]),
                offered[tool_call["function"]["name"]]["function"]["parameters"],
            )

    # LLaMA-Factory: its dataset_info entries, its file loading, its sharegpt converter.
    info = json.loads((folder / "sharegpt/dataset_info.json").read_text())
    assert set(info) == {f"biocurate_{result.version_id}_{s}" for s in pub.SPLITS}
    for name, entry in info.items():
        path = folder / "sharegpt" / entry["file_name"]
        assert path.is_file()
        examples = load_json_dataset([path], hf_offline)  # as LLaMA-Factory's loader does for a file
        assert examples.num_rows == sizes[name.rsplit("_", 1)[1]]
        for example in examples:
            converted = llamafactory_sharegpt(example, entry)
            assert converted["_prompt"] == [{"role": "user", "content": converted["_prompt"][0]["content"]}]
            (target,) = converted["_response"]
            tools = json.loads(converted["_tools"])  # in the OpenAI form, as BioTool passes them on
            assert all(tool["type"] == "function" for tool in tools)
            offered = {tool["function"]["name"] for tool in tools}
            assert target["role"] == "function" and json.loads(target["content"])["name"] in offered
            assert len(offered) == 1 + demo_config.publish.distractor_tools
            assert converted["_system"] == demo_config.publish.system_prompt

    # The converter copy rejects what LLaMA-Factory rejects: a conversation ending in an observation.
    ends_with_observation = {
        "conversations": [
            {"from": "human", "value": "q"},
            {"from": "function_call", "value": '{"name": "f", "arguments": {}}'},
            {"from": "observation", "value": "o"},
        ],
        "system": "",
        "tools": "[]",
    }
    assert llamafactory_sharegpt(ends_with_observation, info[next(iter(info))])["_response"] == []

    tools = json.loads((folder / "tools.json").read_text())
    mapping = json.loads((folder / "function_mapping.json").read_text())
    used = {
        name
        for (name,) in con.execute(
            "select distinct json_extract_string(function_calling, '$.name') from dataset_items"
        ).fetchall()
    }
    # Every catalog function, also those no item calls (a prediction may name any of them).
    assert used < set(CATALOG.tools)
    assert [t["function"]["name"] for t in tools] == sorted(mapping) == sorted(CATALOG.tools)
    assert mapping["esearch"] == {"database": "ncbi", "tool": "esearch"}


def test_manifest_lists_every_file_with_its_hash_and_the_upstream_releases(demo_config, store):
    con, rows = store
    fill(rows, calls=12)
    rows.accepted("get_uniprotkb_entry", {"accession": "P38398"}, ["What is UniProt entry P38398?"], release="2025_04")
    insert_new(
        con,
        "api_responses",
        [
            {
                "response_id": "info",
                "call_id": "c-info",
                "fingerprint": "f",
                "method": "GET",
                "url": "https://rest.ensembl.org/info/data/",
                "status_code": 200,
                "outcome": "ok",
                "transport": "live",
                "body": gzip.compress(b'{"releases":[115]}'),
                "fetched_at": utcnow(),
            }
        ],
    )
    result = pub.publish(demo_config, con)
    manifest = json.loads((result.path / "manifest.json").read_text())
    on_disk = {p.relative_to(result.path).as_posix() for p in result.path.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}
    for rel, entry in manifest["files"].items():
        assert sha256_bytes((result.path / rel).read_bytes()) == entry["sha256"], rel
    assert {
        "README.md",
        "plots/split.png",
        "plots/database.png",
        "plots/tool.png",
        "plots/category.png",
        "tools.json",
        "function_mapping.json",
        "sharegpt/dataset_info.json",
    } <= set(manifest["files"])
    assert (result.path / "plots/tool.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert manifest["config_hash"] == demo_config.config_hash()
    assert manifest["config"]["publish"]["train"] == 0.8 and manifest["config"]["publish"]["group_by"] == "call"
    assert manifest["config"]["synthesis"]["generator"]["model"] == demo_config.synthesis.generator.model
    assert manifest["parent"] is None and manifest["version_id"] == result.version_id
    counts = manifest["counts"]
    frame = pl.concat([pl.read_parquet(p) for p in sorted(result.path.glob("parquet/*.parquet"))])
    assert counts["items"] == frame.height == 25
    assert counts["databases"] == dict(sorted(frame.group_by("database").len().iter_rows()))
    assert counts["tools"] == dict(sorted(frame.group_by("tool").len().iter_rows()))
    assert counts["categories"] == dict(sorted(frame.group_by("category").len().iter_rows()))
    assert sum(counts["splits"].values()) == 25
    assert manifest["upstream_releases"]["UniProt"]["items_by_release"]["2025_04"] == 1
    assert [r["release"] for r in manifest["upstream_releases"]["Ensembl"]["reported_by_api"]] == ["115"]
    # Published files are read-only.
    assert not os.stat(result.path / "biotool/train.json").st_mode & 0o222

    card = (result.path / "README.md").read_text()
    for needle in (
        "## Provenance",
        "## Limitations",
        "offline template generator",
        "rules / rules-v1",
        "plots/tool.png",
        "annotators",
        "parent: none",
        "2025_04: 1",
    ):
        assert needle in card, needle


def test_a_new_export_format_is_one_registry_entry(demo_config, store, monkeypatch):
    con, rows = store
    fill(rows, calls=10)
    questions = pub.ExportFormat(
        "questions/{split}.jsonl",
        about="the questions alone",
        jsonl=True,
        encode=lambda r, export: pub.dumps({"question": r["user_query"]}),
    )
    monkeypatch.setitem(pub.FORMATS, "questions", questions)
    result = pub.publish(demo_config, con)
    manifest = json.loads((result.path / "manifest.json").read_text())
    written = sorted(rel for rel in manifest["files"] if rel.startswith("questions/"))
    assert written == sorted(f"questions/{split}.jsonl" for split, n in result.counts["splits"].items() if n)
    lines = [json.loads(line) for rel in written for line in (result.path / rel).read_text().splitlines()]
    assert len(lines) == result.counts["items"] and all(set(line) == {"question"} for line in lines)
    assert "| `questions/<split>.jsonl` | the questions alone |" in (result.path / "README.md").read_text()


# Observation texts as stores made them before observations were fitted as JSON: cut at the size
# bound with "...(+N chars)" appended (mid-string, mid-list, right after an opener).
CUT_OBSERVATIONS = [
    ('{"a": "x, [y]", "b": [1, 2, 3], "c": {"d": "a long str', "...(+40 chars)"),
    ('{"results": [{"id": "P1", "note": "say \\"hi\\", {ok}"}, {"id": "P2"}, {"id": "P', "...(+9 chars)"),
    ('[{"k": [', "...(+300 chars)"),
]


@pytest.mark.parametrize(("kept", "marker"), CUT_OBSERVATIONS)
def test_a_cut_observation_is_exported_as_json_closed_at_its_last_complete_element(kept, marker):
    value = observation_value(kept + marker)
    text = json.dumps(value)
    assert json.loads(text) == value
    # What comes before the marker is the original text up to its last complete element.
    before_marker = text[: text.index('"...')]
    assert "...(+" in text and kept.startswith(before_marker.rstrip().rstrip(","))


def test_observation_value_keeps_json_and_text_as_they_are():
    assert observation_value('{"a": [1, "b"]}') == {"a": [1, "b"]}
    assert observation_value("[]") == []
    assert observation_value("lookup_by_symbol: 1 record") == "lookup_by_symbol: 1 record"
    assert observation_value('"just a string"') == "just a string"
    assert observation_value(None) is None
    cut = observation_value('{"a": "x, [y]", "b": [1, 2, 3], "c": {"d": "a long str...(+40 chars)')
    assert cut == {"a": "x, [y]", "b": [1, 2, 3], "c": {"...": "...(+56 chars)"}}  # 16 + 40 dropped
    assert observation_value('[{"k": [...(+300 chars)') == [{"k": ["...(+300 chars)"]}]


def test_export_json_keeps_every_value_of_the_observation_and_call():
    """The records' JSON (orjson, spliced pieces) reads back as the values they came from: an
    observation beyond orjson's integers or with NaN, a pretty-printed one, a cut one, text."""
    from biocurate.publish.formats import FORMATS, Export

    export = Export(Path("."), "v0001", "You call tools.", CATALOG)
    function = sorted(CATALOG.tools)[0]
    big = 2**70 + 1  # not a float exactly
    observations = [
        f'{{"count": {big}, "ids": ["a\\"b", "é"]}}',  # integer beyond 64 bits: orjson reads it as a float
        '{"score": NaN}',  # the standard library's JSON, not orjson's
        '{\n  "pretty": [1, 2]\n}',  # one record a line: its newlines go
        '{"a": "x, [y]", "b": [1, 2, 3], "c": {"d": "a long str...(+40 chars)',
        "lookup_by_symbol: 1 record",
        None,
    ]
    for observation in observations:
        call = {"name": function, "arguments": {"n": big, "q": 'say "hi"'}}
        record = {
            "user_query": "Which one? \u2028",
            "function": function,
            "function_calling": call,
            "observation": observation,
            "kind": "single",
        }
        text = FORMATS["biotool"].encode(record, export)
        assert b"\n" not in text
        value = json.loads(text)
        assert value["function_calling"] == call and value["user_query"] == record["user_query"]
        expected = observation_value(observation)
        if observation == '{"score": NaN}':
            assert value["observation"] == {"score": None}  # JSON has no NaN: null, as orjson writes it
        else:
            assert value["observation"] == expected
    names = sorted(CATALOG.tools)[:3]
    assert json.loads(export.tools_json(names)) == export.tools_text(names).decode()
    assert json.loads(export.tools_text(names)) == CATALOG.tools_json(names)


def _records(config, con) -> list[dict]:
    """The records a publish of the store would write (selection, splits, one pass)."""
    items, _ = pub.select_items(config, con, CATALOG)
    return list(pub.Records(items, pub.assign_splits(config, con, items), CATALOG, config, con))


def test_a_large_version_is_written_by_a_process_of_its_own_with_the_same_files(
    demo_config, store, monkeypatch, tmp_path, started
):
    from biocurate.publish import writing

    con, rows = store
    fill(rows, calls=12)
    records = _records(demo_config, con)
    here, aside = tmp_path / "here", tmp_path / "aside"
    monkeypatch.setattr(writing, "WRITER_MIN_ITEMS", len(records) + 1)
    files = writing.write_files(here, iter(records), len(records), CATALOG, "v0001", demo_config)
    monkeypatch.setattr(writing, "WRITER_MIN_ITEMS", len(records))
    monkeypatch.setattr(writing, "ASIDE_BATCH", 5)  # several batches over the pipe
    assert not started.of("biocurate.publish.writing")
    written = sorted(p.relative_to(here) for p in here.rglob("*") if p.is_file())
    assert len(written) >= 10
    # whichever formats this process writes itself beside the child: the same files, in the same order
    # (a format of a file per split, one of every split's records joined, Parquet's writer; none)
    for n, ours in enumerate([writing.WRITTEN_BY_PUBLISH, ("biotool_all", "parquet", "sharegpt"), ()]):
        monkeypatch.setattr(writing, "WRITTEN_BY_PUBLISH", ours)
        aside = tmp_path / f"aside{n}"
        assert writing.write_files(aside, iter(records), len(records), CATALOG, "v0001", demo_config) == files
        assert len(started.of("biocurate.publish.writing")) == n + 1 and started.ended()  # by a child, which ended
        assert written == sorted(p.relative_to(aside) for p in aside.rglob("*") if p.is_file())
        assert all((here / p).read_bytes() == (aside / p).read_bytes() for p in written)


class _ExitOnArrival:
    """Unpickled in the writing process, it ends that process at once (a crash there)."""

    def __reduce__(self):
        return (os._exit, (3,))


def test_the_writing_process_failing_or_crashing_is_an_error_here_and_stops_it(
    demo_config, store, monkeypatch, tmp_path, started
):
    from biocurate.publish import writing

    con, rows = store
    fill(rows, calls=4)
    records = _records(demo_config, con)
    monkeypatch.setattr(writing, "WRITER_MIN_ITEMS", 0)
    monkeypatch.setattr(writing, "ASIDE_BATCH", 2)
    monkeypatch.setattr(writing, "WRITTEN_BY_PUBLISH", ())  # every record reaches the child before failing here
    # An error in the writing process: raised here, as itself, with where it happened.
    broken = [*records[:3], {**records[3], "function": "no_such_function"}, *records[4:]]
    with pytest.raises(CatalogError, match="no_such_function") as raised:
        writing.write_files(tmp_path / "a", iter(broken), len(broken), CATALOG, "v0001", demo_config)
    assert "in the process writing a's files" in "\n".join(getattr(raised.value, "__notes__", []))
    # The writing process dying without a word: a PublishError with its exit code.
    crashing = [*records[:3], {**records[3], "answer": _ExitOnArrival()}, *records[4:]]
    with pytest.raises(WorkerError, match=r"stopped \(exit code 3\) without saying why"):
        writing.write_files(tmp_path / "b", iter(crashing), len(crashing), CATALOG, "v0001", demo_config)

    # An error here (the records stop coming): raised, and the writing process is stopped and reaped.
    def failing():
        yield from records[:5]
        raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError, match="the store went away"):
        writing.write_files(tmp_path / "c", failing(), len(records), CATALOG, "v0001", demo_config)
    assert len(started.of("biocurate.publish.writing")) == 3 and started.ended()


def test_the_biotool_flavour_has_biotools_names_files_and_values(demo_config, store):
    con, rows = store
    fill(rows, calls=30)
    cut = '{"results": [{"id": "P1", "name": "first"}, {"id": "P2", "name": "sec...(+80 chars)'
    rows.call("get_uniprotkb_entry", {"accession": "Q00001"}, observation=cut)
    call_id = content_hash("get_uniprotkb_entry", {"accession": "Q00001"})
    rows.annotate(rows.query(call_id, "What is UniProt entry Q00001?"), "accept")
    # A function BioTool's dispatcher cannot run with our arguments (catalog: biotool_runs: false).
    assert not CATALOG["postprocess_transcript_haplotypes"].function.biotool_runs
    rows.accepted(
        "postprocess_transcript_haplotypes",
        {"species": "homo_sapiens", "id": "ENST00000288602"},
        ["How variable is the protein of human transcript ENST00000288602?"],
    )
    result = pub.publish(demo_config, con)
    folder, sizes = result.path, result.counts["splits"]
    assert all(sizes[s] for s in pub.SPLITS)

    everything = json.loads((folder / "biotool/BioTool.json").read_text())
    ours = {s: json.loads((folder / f"biotool/{s}.json").read_text()) for s in pub.SPLITS}
    assert len(everything) == sum(sizes.values()) - 1 and everything == [r for s in pub.SPLITS for r in ours[s]]
    assert "postprocess_transcript_haplotypes" not in {r["function_calling"]["name"] for r in everything}
    sharegpt = [e for s in pub.SPLITS for e in json.loads((folder / f"sharegpt/{s}.json").read_text())]
    assert len(sharegpt) == sum(sizes.values())  # it is in the other formats
    assert any("ENST00000288602" in e["conversations"][0]["value"] for e in sharegpt)
    for record in everything:
        tool = CATALOG[record["function_calling"]["name"]]
        assert (record["database"], record["tool"]) == (tool.source, tool.group)
    (cut_record,) = [r for r in everything if r["user_query"] == "What is UniProt entry Q00001?"]
    assert cut_record["observation"] == {
        "results": [{"id": "P1", "name": "first"}, {"id": "P2", "...": "...(+94 chars)"}]
    }  # 14 + 80 dropped
    assert cut_record["database"] == "uniprot" and cut_record["tool"] == "uniprotkb"
    plain = next(r for r in everything if r["function_calling"]["name"] == "esearch")
    assert isinstance(plain["observation"], str)  # a text answer stays a string, as BioTool keeps it

    # BioTool_train/test.json: our train and test items in convert.py's layout; validation is ours only.
    for split in ("train", "test"):
        examples = json.loads((folder / f"biotool/BioTool_{split}.json").read_text())
        assert [json.loads(e["conversations"][2]["value"]) for e in examples] == [
            r["function_calling"] for r in ours[split]
        ]
        assert {tuple(t["from"] for t in e["conversations"]) for e in examples} == {
            ("system", "human", "function_call")
        }
        assert all(
            isinstance(e["tools"], str) and {t["type"] for t in json.loads(e["tools"])} == {"function"}
            for e in examples
        )
    assert not (folder / "biotool/BioTool_validation.json").exists()
    assert json.loads((folder / "biotool/tools.json").read_text()) == CATALOG.tools_json()

    card = (folder / "README.md").read_text()
    for row in (
        "| `biotool/<split>.json` |",
        "| `biotool/BioTool.json` |",
        "| `biotool/BioTool_train.json`, `biotool/BioTool_test.json`, `biotool/tools.json`, "
        "`biotool/function_mapping.json` |",
        "| `tools.json`, `function_mapping.json` |",
    ):
        assert row in card, row
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {
        "biotool/BioTool.json",
        "biotool/BioTool_train.json",
        "biotool/BioTool_test.json",
        "biotool/tools.json",
        "biotool/function_mapping.json",
    } <= set(manifest["files"])


def test_a_catalog_change_to_a_function_no_item_calls_makes_a_new_version(demo_config, store, tmp_path):
    """tools.json lists every catalog function, so its specs are part of what a version depends on."""
    import shutil

    import yaml

    con, rows = store
    fill(rows, calls=6)
    first = pub.publish(demo_config, con)
    used = {r["function_calling"]["name"] for r in json.loads((first.path / "biotool/BioTool.json").read_text())}
    offered = {
        t["function"]["name"]
        for s in pub.SPLITS
        if (first.path / f"sharegpt/{s}.json").exists()
        for e in json.loads((first.path / f"sharegpt/{s}.json").read_text())
        for t in json.loads(e["tools"])
    }
    unused = next(t for t in CATALOG if t.name not in used | offered)
    # The change a maintainer makes: edit the function's description in a copy of the catalog.
    catalog_copy = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", catalog_copy)
    edited = 0
    for group_file in catalog_copy.glob("*/*.yaml"):
        spec = yaml.safe_load(group_file.read_text())
        for fn in spec.get("functions", []):
            if fn["name"] == unused.name:
                fn["description"] += " (changed)"
                group_file.write_text(yaml.safe_dump(spec, sort_keys=False))
                edited += 1
    assert edited == 1
    changed_config = demo_config.model_copy(
        update={"sample": demo_config.sample.model_copy(update={"catalog_dir": catalog_copy})}
    )
    second = pub.publish(changed_config, con)
    assert second.version_id == "v0002", second.message
    tools = json.loads((second.path / "tools.json").read_text())
    assert next(t for t in tools if t["function"]["name"] == unused.name)["function"]["description"].endswith(
        "(changed)"
    )
    # The same catalog again: nothing changed, no new version.
    assert pub.publish(changed_config, con).version_id == "v0002"


# ---------------------------------------------------------------------------------------------
# Versions: interrupted, unchanged, compared


def test_a_failure_while_writing_leaves_no_partial_version(demo_config, store, monkeypatch):
    con, rows = store
    fill(rows, calls=10)
    out = Path(demo_config.publish.out_dir)

    import pyarrow.parquet as pq

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    # the export's Parquet files (and the rows' spool) are written through pyarrow's writer
    monkeypatch.setattr(pq.ParquetWriter, "write_table", disk_full)
    with pytest.raises(OSError, match="No space left"):
        pub.publish(demo_config, con)
    assert list(out.iterdir()) == []
    assert con.execute("select count(*) from dataset_versions").fetchall() == [(0,)]
    monkeypatch.undo()
    assert pub.publish(demo_config, con).version_id == "v0001"


def test_publish_queries_under_a_small_duckdb_limit_and_the_store_limit_comes_back(demo_config, store, monkeypatch):
    """The selection and the dataset_items insert run under PUBLISH_MEMORY; the store's configured
    limit is in force again afterwards; a store limit already below it is kept; a limit DuckDB
    cannot get under leaves its limit as it was and publishes all the same."""
    from biocurate.publish import common, versions

    con, rows = store
    fill(rows, calls=10)

    def with_limit(limit: str):
        return demo_config.model_copy(update={"store": demo_config.store.model_copy(update={"memory_limit": limit})})

    def limit_now() -> str:
        return con.execute("select current_setting('memory_limit')").fetchall()[0][0]

    def limit_of(setting: str) -> str:
        con.execute(f"set memory_limit = '{setting}'")
        return limit_now()

    small, configured, lower = limit_of(common.PUBLISH_MEMORY), limit_of("700MB"), limit_of("200MB")
    con.execute("set memory_limit = '2GB'")  # what the connection had before: not what comes back
    during: list[tuple[str, str]] = []
    real_insert, real_select = versions._Pass.insert, versions.select_items

    def insert_seen(self):
        during.append(("insert", limit_now()))
        real_insert(self)

    def select_seen(*args, **kwargs):
        during.append(("select", limit_now()))
        return real_select(*args, **kwargs)

    monkeypatch.setattr(versions._Pass, "insert", insert_seen)
    monkeypatch.setattr(versions, "select_items", select_seen)
    first = pub.publish(with_limit("700MB"), con)
    assert first.version_id == "v0001" and during == [("select", small), ("insert", small)] and small != configured
    assert limit_now() == configured
    assert con.execute("select count(*) from dataset_items").fetchall()[0][0] == first.counts["items"]

    fill(rows, calls=4, start=10)  # new items: a second version, under a store limit below PUBLISH_MEMORY
    assert pub.publish(with_limit("200MB"), con).version_id == "v0002"
    assert during[-2:] == [("select", lower), ("insert", lower)] and limit_now() == lower

    fill(rows, calls=4, start=14)
    monkeypatch.setattr(common, "PUBLISH_MEMORY", "1KB")  # DuckDB cannot get under that
    con.execute("set memory_limit = '700MB'")  # as a stage's connection opens
    third = pub.publish(with_limit("700MB"), con)
    assert third.version_id == "v0003" and during[-1] == ("insert", configured)
    assert limit_now() == configured


def test_a_publish_query_that_outgrows_its_small_limit_runs_again_at_the_stores(demo_config, monkeypatch):
    """PUBLISH_MEMORY saves memory, and a store whose selection or version outgrows it (a million
    calls outgrow 256 MB) still publishes: the query runs again at the store's limit, and
    publish's limit is set again for what follows."""
    import duckdb

    from biocurate.publish import common

    def limit_of(con) -> float:
        return memory_bytes(con.execute("select current_setting('memory_limit')").fetchall()[0][0])

    big = "select length(string_agg(range::varchar, ',')) from range(3000000)"  # 22 MB of text in one state
    monkeypatch.setattr(common, "PUBLISH_MEMORY", "4MB")
    con = duckdb.connect()
    common.lower_to_publish_memory(con, demo_config)
    assert limit_of(con) == pytest.approx(4e6, rel=0.05)
    with pytest.raises(duckdb.OutOfMemoryException):
        con.execute(big).fetchall()
    assert common.within_publish_memory(con, demo_config, lambda: con.execute(big).fetchall()) == [(22888889,)]
    assert limit_of(con) == pytest.approx(4e6, rel=0.05)


KILLER = """
import os, signal, sys
from pathlib import Path
from biocurate.config import load_config
from biocurate.store import Store
from biocurate import publish

store, out, where = sys.argv[1:4]
config = load_config(Path(sys.argv[4]), overrides={"store.path": store, "publish.out_dir": out})
if where == "writing":                      # killed while the card's plots are being drawn
    import matplotlib.figure
    matplotlib.figure.Figure.savefig = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
else:                                       # killed after the rename, before the commit
    real = os.replace
    def replace_then_die(*args):
        real(*args)
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace_then_die           # the version folder's rename (publish.versions)
with Store(store).open() as con:
    publish.publish(config, con)
"""


@pytest.mark.parametrize("where", ["writing", "renamed"])
def test_a_killed_publish_leaves_no_version_and_the_next_one_succeeds(demo_config, store, tmp_path, where):
    con, rows = store
    fill(rows, calls=10)
    con.close()
    out = Path(demo_config.publish.out_dir)
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    done = subprocess.run(
        [sys.executable, str(script), str(demo_config.store.path), str(out), where, str(ROOT / "biocurate.toml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    # the debris, never recorded: the version's folder (renamed or not) and its rows' spool
    left = sorted(p.name for p in out.iterdir())
    spools = [name for name in left if name.startswith(".tmp-v0001-rows-")]
    assert len(spools) == 1, left
    assert [name for name in left if name not in spools] == ([".tmp-v0001"] if where == "writing" else ["v0001"])
    with Store(demo_config.store.path).open() as con:
        assert con.execute("select count(*) from dataset_versions").fetchall() == [(0,)]
        assert con.execute("select count(*) from dataset_items").fetchall() == [(0,)]
        result = pub.publish(demo_config, con)
        assert result.version_id == "v0001"
        assert sorted(p.name for p in out.iterdir()) == ["v0001"]
        manifest = json.loads((out / "v0001/manifest.json").read_text())
        assert all(
            sha256_bytes((out / "v0001" / rel).read_bytes()) == e["sha256"] for rel, e in manifest["files"].items()
        )
        assert con.execute("select count(*) from dataset_items").fetchall() == [(20,)]


def test_publishing_unchanged_content_writes_nothing(demo_config, store):
    con, rows = store
    fill(rows, calls=10)
    first = pub.publish(demo_config, con)
    out = Path(demo_config.publish.out_dir)
    snapshot = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = pub.publish(demo_config, con)
    assert again.path is None and again.version_id == first.version_id
    assert again.message.startswith(f"nothing changed since {first.version_id}")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == snapshot
    assert con.execute("select count(*) from dataset_versions").fetchall() == [(1,)]
    # its records went to the store in the same pass as the files: rolled back with them
    assert con.execute("select count(*) from dataset_items").fetchall() == [(20,)]
    # A new pending question changes nothing exported either.
    call = con.execute("select call_id from candidate_calls limit 1").fetchall()[0][0]
    rows.push(rows.query(call, "Another question that waits for review?"))
    assert pub.publish(demo_config, con).path is None
    # Settings that change the files do make a new version.
    assert pub.publish(with_publish(demo_config, distractor_tools=1), con).version_id == "v0002"
    # A dry run reports and writes nothing.
    rows.annotate(rows.query(call, "And one accepted question more?"), "accept")
    dry = pub.publish(demo_config, con, dry_run=True)
    assert dry.message.startswith("dry run: would publish v0003") and dry.changes["added"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["v0001", "v0002"]
    # The real publish counts the changes as the dry run did (one from digests, one from stored rows).
    assert pub.publish(demo_config, con).changes == dry.changes == {"added": 1, "removed": 0, "changed": 0}


def test_diff_between_two_versions(demo_config, store, monkeypatch):
    con, rows = store
    ids = fill(rows, calls=10)
    v1 = pub.publish(demo_config, con).version_id
    edited, removed = ids[0], ids[1]
    rows.annotate(edited, "accept_with_edit", edited_query="A better question number 0?")
    call_id = con.execute("select call_id from queries where query_id = ?", [edited]).fetchall()[0][0]
    rows.query(call_id, "A better question number 0?", parent=edited, annotator="rev1@example.org")
    rows.annotate(removed, "reject")
    added = fill(rows, calls=2, start=10)
    v2 = pub.publish(demo_config, con).version_id

    diff = pub.diff_versions(con, v1, v2)
    assert diff.summary() == {"added": 4, "removed": 1, "changed": 1}
    assert [r["item_id"] for r in diff.added] == sorted(added)
    assert [r["item_id"] for r in diff.removed] == [removed]
    assert diff.changed == [
        {
            "item_id": edited,
            "fields": ["user_query"],
            "before": {"user_query": "Question 0 number 0 about lookup_by_symbol?"},
            "after": {"user_query": "A better question number 0?"},
        }
    ]
    history = con.execute(
        "select version_id, parent_id, items, added, removed, changed from version_history"
    ).fetchall()
    assert history == [(v1, None, 20, 20, 0, 0), (v2, v1, 23, 4, 1, 1)]
    out = Path(demo_config.publish.out_dir)
    assert pub.diff_versions(None, str(out / v1), str(out / v2)).summary() == diff.summary()

    con.close()
    monkeypatch.setenv("BIOCURATE_STORE", str(demo_config.store.path))
    shown = runner.invoke(app, ["diff", v1, v2, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert {k: json.loads(shown.output)[k] for k in ("added", "removed", "changed")} == diff.summary()
    table = runner.invoke(app, ["diff", v1, v2])
    assert table.exit_code == 0
    assert all(
        title in table.output for title in ("added (4, first 4)", "removed (1, first 1)", "changed (1, first 1)")
    )
    missing = runner.invoke(app, ["diff", v1, "v0042"])
    assert missing.exit_code == 2 and "no version 'v0042'" in missing.output

    # The SQL views also run on the exported Parquet files, without the store.
    summary = runner.invoke(
        app, ["sql", "--parquet", str(out / v2), "select split, items, leaking_groups from split_summary", "-f", "json"]
    )
    assert summary.exit_code == 0, summary.output
    parquet_counts = {r["split"]: r["items"] for r in json.loads(summary.output)}
    assert all(r["leaking_groups"] == 0 for r in json.loads(summary.output))
    with Store(demo_config.store.path).open(read_only=True) as con:
        store_counts = dict(con.execute("select split, items from split_summary where version_id = ?", [v2]).fetchall())
    assert parquet_counts == store_counts
    empty = runner.invoke(app, ["sql", "--parquet", str(out), "select 1"])
    assert empty.exit_code == 2 and "no .parquet files" in empty.output


# ---------------------------------------------------------------------------------------------
# The demo, reviewed through Label Studio's API


# ---------------------------------------------------------------------------------------------
# Honest provenance: who reviewed each item, and where its API response came from

SCRIPT = "demo-reviewer@biocurate.local"  # review.scripted_annotators' default: the demo reviewer


def published_rows(folder: Path) -> dict[str, dict]:
    """Every item of a version's Parquet files, by item id."""
    frame = pl.concat([pl.read_parquet(f) for f in sorted((folder / "parquet").glob("*.parquet"))])
    return {r["item_id"]: r for r in frame.iter_rows(named=True)}


def sharegpt_rows(folder: Path) -> dict[str, dict]:
    return {
        r["item_id"]: r
        for f in sorted((folder / "sharegpt").glob("*.json"))
        if f.name != "dataset_info.json"
        for r in json.loads(f.read_text())
    }


def card_head(folder: Path) -> str:
    """The card's title and its lines up to the description (what a reader sees first)."""
    lines = (folder / "README.md").read_text().splitlines()
    return "\n".join(lines[: next(i for i, line in enumerate(lines) if "tool-calling data" in line) + 1])


def test_items_the_demo_script_reviewed_are_marked_in_parquet_sharegpt_manifest_and_card(demo_config, store):
    con, rows = store
    human = fill(rows, calls=4)  # accepted by rev1@example.org
    v1 = pub.publish(demo_config, con)
    head = card_head(v1.path)
    assert "Every item was accepted by a human reviewer" in head and "Not every item" not in head
    assert set(published_rows(v1.path)[i]["reviewed_by"] for i in human) == {"human"}

    script_only, both, nameless = [], [], []
    for n in range(4, 7):  # the demo script alone (its email as Label Studio may spell it)
        call = rows.call(FUNCTIONS[n], arguments_for(FUNCTIONS[n], n))
        script_only.append(rows.query(call, f"Scripted question {n}?"))
        rows.annotate(script_only[-1], "accept", annotator=SCRIPT.upper() if n == 4 else SCRIPT)
    call = rows.call("esearch", arguments_for("esearch", 7))
    both.append(rows.query(call, "Question both reviewed?"))
    rows.annotate(both[-1], "accept", annotator=SCRIPT)
    rows.annotate(both[-1], "accept")  # and a person accepted it too
    call = rows.call("esummary", arguments_for("esummary", 8))
    nameless.append(rows.query(call, "Question of an unknown user?"))
    rows.annotate(nameless[-1], "accept", annotator=None)  # a Label Studio user the pull could not name
    # A person's rejection of the script's accept (majority: 2 accepts win) does not make it human-reviewed.
    call = rows.call("get_variation", arguments_for("get_variation", 9))
    outvoted = rows.query(call, "Question a person rejected?")
    rows.annotate(outvoted, "accept", annotator=SCRIPT)
    rows.annotate(outvoted, "accept", annotator="bot2@biocurate.local")
    rows.annotate(outvoted, "reject", reject_reason="wrong_call")
    script_only.append(outvoted)
    config = demo_config.model_copy(
        update={
            "review": demo_config.review.model_copy(
                update={"resolve": "majority", "scripted_annotators": [SCRIPT, "bot2@biocurate.local"]}
            )
        }
    )

    v2 = pub.publish(config, con)
    assert v2.version_id == "v0002", v2.message
    expected = {
        **{i: "human" for i in human + both},
        **{i: "script" for i in script_only},
        **{i: "unknown" for i in nameless},
    }
    assert {i: r["reviewed_by"] for i, r in published_rows(v2.path).items()} == expected
    assert {i: r["reviewed_by"] for i, r in sharegpt_rows(v2.path).items()} == expected
    manifest = json.loads((v2.path / "manifest.json").read_text())
    assert manifest["counts"]["reviewed_by"] == {"human": 9, "script": 4, "unknown": 1}
    assert sum(manifest["counts"]["by_split"][s]["reviewed_by"].get("script", 0) for s in pub.SPLITS) == 4
    head = card_head(v2.path)
    assert "Not every item was reviewed by a person" in head and "5 of 14 items" in head
    assert "4 only by a scripted reviewer" in head and "1 by a Label Studio user the store could not name" in head
    assert "Human-verified" not in head and "Every item was accepted by a human reviewer" not in head
    card = (v2.path / "README.md").read_text()
    assert "| script | accepted only by a scripted reviewer" in card and "| 4 |" in card

    # Who reviewed is part of the content: naming one more scripted annotator makes a new version.
    fewer_humans = config.model_copy(
        update={
            "review": config.review.model_copy(
                update={"scripted_annotators": [SCRIPT, "bot2@biocurate.local", "rev1@example.org"]}
            )
        }
    )
    v3 = pub.publish(fewer_humans, con)
    assert v3.version_id == "v0003", v3.message
    assert json.loads((v3.path / "manifest.json").read_text())["counts"]["reviewed_by"] == {"script": 13, "unknown": 1}
    head = card_head(v3.path)
    assert "No item was reviewed by a person" in head and "14 of 14 items" in head and "none by a person" in head


FIXTURE_NOTE = "real: someone/api-client tests/data/lookup.json @ 0123456789abcdef (test fixture)"


def test_each_item_says_where_its_response_came_from(demo_config, store, tmp_path):
    from biocurate.catalog import build_request
    from biocurate.config import load_config
    from biocurate.execute import execute_calls
    from biocurate.snapshot import Snapshot
    from tests.standins.api import ApiStandIn

    con, rows = store
    tool = CATALOG["lookup_by_id"]
    snapshot = Snapshot(tmp_path / "snap")
    origins = {  # stable id -> (snapshot origin, its provenance note)
        "ENSG00000000001": ("real", FIXTURE_NOTE),
        "ENSG00000000002": ("real", "recorded live 2026-11-30T10:00:00Z"),
        "ENSG00000000003": ("illustrative", "illustrative: hand-written in the Ensembl REST format"),
        "ENSG00000000004": ("illustrative", "illustrative: hand-written in the Ensembl REST format"),
        "ENSG00000000005": ("real", FIXTURE_NOTE),  # answered live (below), not from the snapshot
    }
    calls = {}
    for stable_id, (origin, note) in origins.items():
        req = build_request(tool, {"id": stable_id})
        body = {"id": stable_id, "display_name": "BRCA2", "object_type": "Gene", "species": "homo_sapiens"}
        snapshot.add(
            method="GET",
            url=req.url,
            params=req.params,
            body=None,
            status=200,
            content_type="application/json",
            content=json.dumps(body).encode(),
            file=f"ensembl/{stable_id}.json",
            origin=origin,
            provenance=note,
        )
        calls[stable_id] = content_hash(tool.name, {"id": stable_id})

    def add_call(stable_id: str) -> None:
        insert_new(
            con,
            "candidate_calls",
            [
                {
                    "call_id": calls[stable_id],
                    "function": tool.name,
                    "arguments": json.dumps({"id": stable_id}),
                    "template": "t",
                    "database": tool.database,
                    "tool_group": tool.group,
                    "category": tool.category,
                    "valid": True,
                }
            ],
        )

    def run(transport: str, **more) -> None:
        overrides = {
            "store.path": str(demo_config.store.path),
            "execute.transport": transport,
            "execute.snapshot_dir": str(tmp_path / "snap"),
            **more,
        }
        execute_calls(load_config(ROOT / "biocurate.toml", overrides=overrides), con, CATALOG, "r")

    for stable_id in list(origins)[:4]:
        add_call(stable_id)
    run("replay")
    server = ApiStandIn(snapshot).start()
    try:
        add_call("ENSG00000000005")
        run("live", **{"execute.base_urls": server.base_urls()})
    finally:
        server.stop()
    old = rows.call("esearch", arguments_for("esearch", 1))  # replayed before responses kept their origin
    assert (
        dict(con.execute("select call_id, snapshot_provenance from api_responses").fetchall())[calls["ENSG00000000001"]]
        == FIXTURE_NOTE
    )

    expected = {}
    for stable_id, kind in zip(origins, ("fixture", "recorded", "illustrative", "illustrative", "live"), strict=True):
        expected[rows.query(calls[stable_id], f"Where is the gene {stable_id} annotated?")] = kind
    expected[rows.query(old, "How many records match this search?")] = "unknown"
    for query_id in expected:
        rows.annotate(query_id, "accept")
    assert dict(con.execute("select call_id, response_provenance from response_provenance").fetchall()) == {
        **{
            calls[s]: k
            for s, k in zip(origins, ("fixture", "recorded", "illustrative", "illustrative", "live"), strict=True)
        },
        old: "unknown",
    }

    result = pub.publish(demo_config, con)
    assert {i: r["response_provenance"] for i, r in published_rows(result.path).items()} == expected
    assert {i: r["response_provenance"] for i, r in sharegpt_rows(result.path).items()} == expected
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["counts"]["response_provenance"] == {
        "fixture": 1,
        "illustrative": 2,
        "live": 1,
        "recorded": 1,
        "unknown": 1,
    }
    head = card_head(result.path)
    assert "Not every observation comes from a real API response" in head
    assert "2 of 6 items: illustrative" in head and "1 of 6 items: unknown" in head
    card = (result.path / "README.md").read_text()
    for kind, n in manifest["counts"]["response_provenance"].items():
        assert f"| {kind} | {pub.card.RESPONSE_KINDS[kind]} | {n} |" in card
    # A researcher keeps the real responses with one filter.
    real = pl.read_parquet(str(result.path / "parquet/*.parquet")).filter(
        pl.col("response_provenance") != "illustrative"
    )
    assert real.height == 4


@pytest.mark.labelstudio
def test_demo_reviewed_in_label_studio_publishes_versions_and_diffs(demo_config, label_studio, monkeypatch):
    from biocurate import review
    from biocurate.stages import STAGES

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    config = demo_config.model_copy(
        update={
            "review": demo_config.review.model_copy(
                update={"enabled": True, "url": label_studio.url, "project_title": f"publish {uuid.uuid4().hex[:8]}"}
            )
        }
    )
    with Store(config.store.path).open() as con:
        for name in ("sample", "execute", "synthesize", "judge", "quality"):
            STAGES[name](config, con, "demo")
        assert review.push(config, con)["pushed"] > 40
        client = review.connect(config)
        tasks = {
            t.data["ext_id"]: t.id
            for t in client.tasks.list(project=review._project(client, config, create=False).id, page_size=500)
        }
        ordered = sorted(tasks)
        first, later = ordered[:30], ordered[30:45]
        original = con.execute("select text from queries where query_id = ?", [first[0]]).fetchall()[0][0]
        edited_text = "A reviewer rephrased this: " + original
        for n, query_id in enumerate(first):
            if n == 0:
                annotate(client, tasks[query_id], "accept_with_edit", edited_query=edited_text)
            elif n % 10 == 5:
                annotate(client, tasks[query_id], "reject", reject_reason="unnatural_phrasing")
            else:
                annotate(client, tasks[query_id], "accept")
        assert review.pull(config, con)["edits"] == 1
        STAGES["quality"](config, con, "demo")  # the reviewer's edit is a new question: check it
        v1 = pub.publish(config, con)
        assert v1.version_id == "v0001", v1.message
        assert v1.refused[pub.REJECTED] == 3 and v1.refused[pub.PENDING] > 0

        folder = v1.path
        manifest = json.loads((folder / "manifest.json").read_text())
        for rel, entry in manifest["files"].items():
            assert sha256_bytes((folder / rel).read_bytes()) == entry["sha256"]
        exported = dict(con.execute("select item_id, user_query from dataset_items").fetchall())
        if pub.EDIT_FAILED_QC in v1.refused:  # the edit is exported only once it passed QC
            assert manifest["counts"]["items"] == 26 and first[0] not in exported
        else:
            assert manifest["counts"]["items"] == 27 and exported[first[0]] == edited_text
            assert manifest["provenance"]["review"]["accepted_with_edited_question"] == 1
        assert manifest["provenance"]["review"]["annotators"] == 1
        for rel in (
            "README.md",
            "biotool",
            "sharegpt/dataset_info.json",
            "openai",
            "parquet",
            "tools.json",
            "function_mapping.json",
            "plots/tool.png",
        ):
            assert (folder / rel).exists(), rel
        card = (folder / "README.md").read_text()
        assert "Review (rule" in card and "annotators: 1" in card
        # A person (the test's Label Studio user) reviewed every item; the demo snapshot's responses are
        # real fixtures or illustrative, item by item as its index says.
        head = card_head(folder)
        assert "Human-verified" in head and "Not every item" not in head
        assert "Not every observation comes from a real API response" in head
        index = {
            row["key"]: row["origin"]
            for row in csv.DictReader((ROOT / "data/demo_snapshot/index.tsv").open(), delimiter="\t")
        }
        items = published_rows(folder)
        fingerprints = dict(con.execute("select call_id, fingerprint from api_responses").fetchall())
        kinds = {"real": "fixture", "illustrative": "illustrative"}
        assert {i: r["response_provenance"] for i, r in items.items()} == {
            i: kinds[index[fingerprints[r["call_id"]]]] for i, r in items.items()
        }
        assert {r["reviewed_by"] for r in items.values()} == {"human"}
        assert manifest["counts"]["response_provenance"]["illustrative"] > 0
        assert con.execute(LEAKS_SQL).fetchall() == []

        for query_id in later:
            annotate(client, tasks[query_id], "accept")
        review.pull(config, con)
        v2 = pub.publish(config, con)
        assert v2.version_id == "v0002"
        assert v2.changes == {"added": 15, "removed": 0, "changed": 0}
        diff = pub.diff_versions(con, "v0001", "v0002")
        assert diff.summary() == v2.changes
        assert sorted(r["item_id"] for r in diff.added) == sorted(later)
        assert pub.publish(config, con).path is None  # nothing changed
    monkeypatch.setenv("BIOCURATE_STORE", str(config.store.path))
    shown = runner.invoke(app, ["diff", "v0001", "v0002", "-f", "json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["added"] == 15


def test_items_selected_in_slices_are_the_items_selected_at_once(demo_config, store):
    """The chosen items' details fetched a few at a time (bounded memory in DuckDB) are the same
    rows in the same order as fetched at once."""
    con, rows = store
    ids = fill(rows, calls=20)
    # Annotations changed in Label Studio after a pull: each slice ranks its own questions'
    # annotation rows (latest_annotations_of), and only an annotation's latest version counts.
    # rev1 (fill's reviewer) and bot2 are scripted here, so a person's accept alone makes an item
    # "human"; by majority, the two scripts' accepts outvote the person's later rejection.
    retracted, confirmed = ids[5], ids[11]
    rows.annotate(retracted, "accept", annotator="bot2@example.org")
    rows.annotate(retracted, "accept", annotator="person@example.org")
    rows.annotate(retracted, "reject", annotator="person@example.org", reject_reason="wrong_call")
    rows.annotate(confirmed, "reject", annotator="person@example.org", reject_reason="wrong_call")
    rows.annotate(confirmed, "accept", annotator="person@example.org")
    review = {"resolve": "majority", "scripted_annotators": ["rev1@example.org", "bot2@example.org"]}
    config = demo_config.model_copy(update={"review": demo_config.review.model_copy(update=review)})
    whole, refused = pub.select_items(config, con, CATALOG)
    sliced, refused_sliced = pub.select_items(config, con, CATALOG, details_rows=3)
    assert whole.height == 40 and sliced.equals(whole) and refused_sliced == refused
    assert whole["item_id"].is_sorted()
    reviewed = dict(zip(sliced["query_id"], sliced["reviewed_by"], strict=True))
    assert reviewed[confirmed] == "human" and reviewed[retracted] == "script"
    assert {reviewed[q] for q in ids if q not in (retracted, confirmed)} == {"script"}


def test_publishing_in_small_batches_writes_what_one_batch_writes(demo_config, store):
    """Records made 3 at a time and Parquet written 7 rows at a time (bounded memory) give the
    same version as one batch: the same content hash, JSON files, Parquet rows and dataset_items."""
    import pyarrow.parquet as pq

    con, rows = store
    fill(rows, calls=20)
    whole = pub.publish(demo_config, con)
    items = con.execute("select * exclude (version_id) from dataset_items order by item_id").fetchall()
    con.execute("delete from dataset_items")
    con.execute("delete from dataset_versions")
    small = with_publish(demo_config, out_dir=Path(demo_config.publish.out_dir).parent / "small")
    batched = pub.publish(small, con, batch=3, row_group=7)
    assert batched.version_id == whole.version_id == "v0001"
    assert con.execute("select * exclude (version_id) from dataset_items order by item_id").fetchall() == items
    a, b = (json.loads((r.path / "manifest.json").read_text()) for r in (whole, batched))
    assert a["content_hash"] == b["content_hash"] and a["counts"] == b["counts"] and a["counts"]["items"] == 40
    assert set(a["files"]) == set(b["files"])
    for rel in a["files"]:
        if rel.endswith(".parquet"):
            assert pl.read_parquet(whole.path / rel).equals(pl.read_parquet(batched.path / rel)), rel
            assert pq.ParquetFile(whole.path / rel).num_row_groups == 1
        elif rel != "README.md":  # the card names the version's creation time
            assert a["files"][rel] == b["files"][rel], rel
    assert pq.ParquetFile(batched.path / "parquet/train.parquet").num_row_groups > 1


@pytest.mark.parametrize(
    "case",
    ["plain", "float arguments", "no call", "lone surrogate", "control characters", "call set"],
)
def test_an_items_digest_text_is_its_fields_canonical_json(case):
    """The version digest's text of an item is the same bytes as canonical_json of its fields, in
    this order: a changed encoder or order would change every version's content hash."""
    from biocurate.hashing import canonical_json
    from biocurate.publish.formats import PROVENANCE_COLUMNS
    from biocurate.publish.versions import _digest_text

    call = {"name": "blast_search", "arguments": {"evalue": 1e-05, "hits": 10, "ratio": 0.5, "q": "ACGT"}}
    r = {
        "item_id": "i1",
        "user_query": "What is BRCA2 \u2014 the \u00e9l\u00e9ment \U0001f600?",
        "function_calling": call,
        "observation": '{"id":"ENSG00000139618","start":32315086}',
        "split": "train",
        "group_key": "g1",
        "tool_names": ["blast_search", "lookup_by_symbol"],
        "database": "NCBI",
        "tool": "BLAST",
        "category": "sequence",
        **dict.fromkeys(PROVENANCE_COLUMNS, "human"),
        "kind": "single",
        "calls": [{"name": "blast_search", "arguments": call["arguments"], "observation": "x", "depends_on": None}],
        "answer": None,
    }
    if case == "float arguments":
        call["arguments"]["evalue"] = 1e16
    elif case == "no call":
        r["function_calling"] = None
    elif case == "lone surrogate":
        r["user_query"] = "broken \ud800 text"
    elif case == "control characters":
        r["observation"] = 'line\nnext\ttab\x00\x1f\x7f "quoted" \\ back'
    elif case == "call set":
        r["kind"] = "parallel"
    r["function_calling_json"] = canonical_json(r["function_calling"])
    fields = [r[k] for k in ("item_id", "user_query", "function_calling", "observation", "split", "group_key")]
    fields += [r[k] for k in ("tool_names", "database", "tool", "category", *PROVENANCE_COLUMNS)]
    if case == "call set":
        fields += [r["kind"], r["calls"], r["answer"]]
    if case == "lone surrogate":  # not UTF-8: refused as canonical_json(...).encode() refuses it
        with pytest.raises(UnicodeEncodeError):
            canonical_json(fields).encode()
        with pytest.raises(UnicodeEncodeError):
            _digest_text(r)
        return
    assert _digest_text(r) == canonical_json(fields).encode()


def test_the_selection_streams_on_one_duckdb_thread_and_the_threads_come_back(demo_config, store, monkeypatch):
    """The streamed selection runs on one DuckDB thread (each thread holds join tables of its own:
    at 100k calls two threads outgrew PUBLISH_MEMORY); the connection's threads come back after it,
    and after a stream an error left unfinished."""
    from biocurate.publish import selection

    con, rows = store
    fill(rows, calls=6)
    con.execute("set threads = 3")
    seen: list[int] = []
    real_verdict = selection._verdict

    def verdict_seen(row):
        seen.append(con.cursor().execute("select current_setting('threads')").fetchall()[0][0])
        return real_verdict(row)

    monkeypatch.setattr(selection, "_verdict", verdict_seen)
    items, _ = selection.select_items(demo_config, con)
    assert items.height and seen and set(seen) == {1}
    assert con.execute("select current_setting('threads')").fetchall()[0][0] == 3

    def broken(row):
        raise RuntimeError("a bad row")

    monkeypatch.setattr(selection, "_verdict", broken)
    with pytest.raises(RuntimeError, match="a bad row"):
        selection.select_items(demo_config, con)
    assert con.execute("select current_setting('threads')").fetchall()[0][0] == 3


def test_the_writing_process_reads_a_few_batches_ahead_in_order_and_raises_a_broken_stream(monkeypatch):
    import io
    import pickle

    from biocurate.publish import writing

    batches = [[{"n": 10 * b + i} for i in range(3)] for b in range(12)]
    sizes = [len(pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL)) for b in batches]
    stream = io.BytesIO(b"".join(pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL) for b in [*batches, None]))
    records = writing._read_ahead(stream)
    assert next(records) == {"n": 0}
    # while the first batch is being written, the next ones are read: READ_AHEAD waiting, one more
    # on its way in, never the whole stream
    bound = sum(sizes[: writing.READ_AHEAD + 2])
    deadline = time.monotonic() + 5
    while stream.tell() < bound and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.tell() == bound
    assert [r["n"] for r in records] == [10 * b + i for b in range(12) for i in range(3)][1:]
    # a stream cut short (the publishing process died): the reading thread's error, raised here
    cut = io.BytesIO(b"".join(pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL) for b in batches[:2])[:-5])
    with pytest.raises((EOFError, pickle.UnpicklingError)):
        list(writing._read_ahead(cut))
