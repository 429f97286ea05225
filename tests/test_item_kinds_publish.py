"""Issue 18, review and publish of items that are not one call (docs/item_kinds.md): parallel,
multi_step and no_tool items in every export format (read by LLaMA-Factory's converter copy and
validated against OpenAI's fine-tuning line), splits that never put one call in two splits, the
Label Studio task of a call set, and single items exported exactly as before."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import jsonschema
import polars as pl
import pytest

from biocurate import publish as pub
from biocurate import review
from biocurate.store import Store
from tests.store_rows import CATALOG, Rows
from tests.test_publish import (
    OPENAI_CHAT_LINE,
    fill,
    hf_offline,  # noqa: F401  (a fixture)
    llamafactory_sharegpt,
    load_json_dataset,
    with_publish,
)

GENES = ["BRCA1", "BRCA2", "TP53", "EGFR", "KRAS", "MYC", "PTEN", "APC", "RB1", "VHL", "ATM", "CDH1"]


@pytest.fixture
def store(demo_config):
    with Store(demo_config.store.path).open() as con:
        yield con, Rows(con)


def lookup(symbol: str) -> tuple[str, dict, str]:
    return (
        "lookup_by_symbol",
        {"species": "homo_sapiens", "symbol": symbol},
        json.dumps({"id": f"ENSG_{symbol}", "display_name": symbol}),
    )


def parallel(rows: Rows, a: str, b: str, template: str = "pair") -> str:
    set_id = rows.call_set("parallel", [lookup(a), lookup(b)], template=template)
    return accept(rows, set_id, f"Compare the Ensembl records of {a} and {b}?")


def multi_step(rows: Rows, n: int) -> str:
    term = f"GENE{n}"
    search = ("esearch", {"db": "gene", "term": term}, json.dumps({"idlist": [str(1000 + n)], "count": 1}))
    summary = ("esummary", {"db": "gene", "id": str(1000 + n)}, json.dumps({"name": term, "chromosome": "17"}))
    set_id = rows.call_set(
        "multi_step",
        [search, summary],
        template="search_then_summary",
        fed_by={1: {"id": {"from": "idlist[0]", "value": str(1000 + n)}}},
    )
    return accept(rows, set_id, f"On which chromosome is the gene found by searching for {term}?")


def no_tool(rows: Rows, n: int) -> str:
    spec = {"topic": f"price {n}", "reason": "no offered tool returns what a reagent costs"}
    set_id = rows.call_set("no_tool", [], template="reagent_price", spec=spec)
    return accept(rows, set_id, f"How much does antibody lot {n} against TP53 cost?")


def accept(rows: Rows, set_id: str, text: str) -> str:
    query_id = rows.query(set_id, text)
    rows.annotate(query_id, "accept")
    return query_id


def of_every_kind(rows: Rows, singles: int = 24, sets: int = 8) -> dict[str, list[str]]:
    ids = {"single": fill(rows, calls=singles, queries_per_call=1), "parallel": [], "multi_step": [], "no_tool": []}
    for n in range(sets):
        ids["parallel"].append(parallel(rows, GENES[n % len(GENES)], GENES[(n + 1) % len(GENES)], f"pair{n}"))
        ids["multi_step"].append(multi_step(rows, n))
        ids["no_tool"].append(no_tool(rows, n))
    return ids


def kind_of(ids: dict[str, list[str]]) -> dict[str, str]:
    return {item: kind for kind, items in ids.items() for item in items}


# ---------------------------------------------------------------------------------------------
# Every format, each kind


def test_every_format_holds_each_kind_as_its_consumer_reads_it(demo_config, store, hf_offline):  # noqa: F811
    con, rows = store
    ids = of_every_kind(rows)
    kinds = kind_of(ids)
    result = pub.publish(demo_config, con)
    folder = result.path
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["kinds"] == {k: len(v) for k, v in sorted(ids.items())}
    card = (folder / "README.md").read_text()
    for kind, items in ids.items():
        per_split = manifest["counts"]["by_split"]
        assert f"| {kind} | " + " | ".join(str(per_split[s]["kinds"].get(kind, 0)) for s in pub.SPLITS) in card
        assert f"| {len(items)} |" in card
    assert "biotool/item_kinds/<split>.json" in card

    parquet = pl.read_parquet(str(folder / "parquet/*.parquet"))
    assert dict(zip(parquet["item_id"], parquet["kind"], strict=True)) == kinds
    by_item = {r["item_id"]: r for r in parquet.iter_rows(named=True)}
    for item_id, kind in kinds.items():
        row = by_item[item_id]
        calls = json.loads(row["calls"])
        assert len(calls) == {"single": 1, "parallel": 2, "multi_step": 2, "no_tool": 0}[kind]
        assert (row["answer"] is not None) == (kind == "no_tool")
        if kind == "multi_step":
            # the later call's argument is the value in the earlier call's observation
            assert calls[1]["depends_on"] == 0 and calls[0]["depends_on"] is None
            assert calls[1]["arguments"]["id"] == json.loads(calls[0]["observation"])["idlist"][0]
        if kind == "no_tool":
            assert "no offered tool returns what a reagent costs" in row["answer"] and row["function"] is None
        if calls:  # the item's own columns are its first call's
            assert (row["function"], json.loads(row["arguments"])) == (calls[0]["name"], calls[0]["arguments"])
            assert row["observation"] == calls[0]["observation"]

    seen: dict[str, set[str]] = {k: set() for k in ids}
    info = json.loads((folder / "sharegpt/dataset_info.json").read_text())
    for name, entry in info.items():
        split = name.rsplit("_", 1)[1]
        for example in load_json_dataset([folder / "sharegpt" / entry["file_name"]], hf_offline):
            kind = kinds[example["item_id"]]
            converted = llamafactory_sharegpt(example, entry)
            assert converted["_response"], (kind, example["conversations"])  # a valid conversation
            offered = {t["function"]["name"] for t in json.loads(converted["_tools"])}
            target = converted["_response"][0]
            turns = [m["role"] for m in converted["_prompt"]]
            if kind == "no_tool":
                assert target == {"role": "assistant", "content": by_item[example["item_id"]]["answer"]}
                assert turns == ["user"]
                assert len(offered) == 1 + demo_config.publish.distractor_tools
            elif kind == "parallel":  # both calls in ONE function turn, a JSON list
                assert turns == ["user"] and target["role"] == "function"
                calls = json.loads(target["content"])
                assert [c["name"] for c in calls] == ["lookup_by_symbol"] * 2
                assert {c["arguments"]["symbol"] for c in calls} == {
                    c["arguments"]["symbol"] for c in json.loads(by_item[example["item_id"]]["calls"])
                }
            elif kind == "multi_step":  # call, its observation, the call that needed it
                assert turns == ["user", "function", "observation"] and target["role"] == "function"
                first, observation = converted["_prompt"][1]["content"], converted["_prompt"][2]["content"]
                assert json.loads(first)["name"] == "esearch"
                assert json.loads(target["content"])["arguments"]["id"] == json.loads(observation)["idlist"][0]
            else:
                assert turns == ["user"] and isinstance(json.loads(target["content"]), dict)
            for message in converted["_prompt"] + converted["_response"]:
                if message["role"] == "function":
                    named = json.loads(message["content"])
                    assert {c["name"] for c in (named if isinstance(named, list) else [named])} <= offered
            seen[kind].add(split)
    assert all(seen[k] for k in ids)

    by_prefix = {i[:12]: k for i, k in kinds.items()}
    for path in sorted(folder.glob("openai/*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            jsonschema.validate(record, OPENAI_CHAT_LINE, cls=jsonschema.Draft202012Validator)
            offered = {t["function"]["name"]: t["function"]["parameters"] for t in record["tools"]}
            assistant = [m for m in record["messages"] if m["role"] == "assistant"]
            tool_messages = [m for m in record["messages"] if m["role"] == "tool"]
            calls = [c for m in assistant for c in m.get("tool_calls") or []]
            for call in calls:
                jsonschema.validate(json.loads(call["function"]["arguments"]), offered[call["function"]["name"]])
            if not calls:  # no_tool: an answer, no call
                assert [set(m) for m in assistant] == [{"role", "content"}] and record["parallel_tool_calls"] is False
                assert "reagent costs" in assistant[0]["content"]
                continue
            kind = by_prefix[calls[0]["id"][len("call_") :][:12]]
            if kind == "parallel":
                assert len(assistant) == 1 and len(calls) == 2 and record["parallel_tool_calls"] is True
            elif kind == "multi_step":
                assert len(assistant) == 2 and record["parallel_tool_calls"] is False
                (tool,) = tool_messages
                assert tool["tool_call_id"] == calls[0]["id"] != calls[1]["id"]
                assert record["messages"].index(tool) == record["messages"].index(assistant[0]) + 1
                assert json.loads(calls[1]["function"]["arguments"])["id"] == json.loads(tool["content"])["idlist"][0]
            else:
                assert len(calls) == 1 and not tool_messages and record["parallel_tool_calls"] is False

    # BioTool: its own files hold the single items only; the extension file the others.
    singles = {by_item[i]["user_query"] for i in ids["single"]}
    biotool = [r for p in folder.glob("biotool/train.json") for r in json.loads(p.read_text())]
    biotool += [
        r for s in ("validation", "test") for p in folder.glob(f"biotool/{s}.json") for r in json.loads(p.read_text())
    ]
    assert {r["user_query"] for r in biotool} == singles
    everything = json.loads((folder / "biotool/BioTool.json").read_text())
    assert {r["user_query"] for r in everything} == singles
    extension = [r for p in folder.glob("biotool/item_kinds/*.json") for r in json.loads(p.read_text())]
    assert sorted(r["kind"] for r in extension) == sorted(k for k in kinds.values() if k != "single")
    for record in extension:
        assert set(record) == {"user_query", "kind", "calls", "answer"}
        for call in record["calls"]:
            assert set(call) == {"function_calling", "observation", "database", "tool", "depends_on"}
            place = CATALOG[call["function_calling"]["name"]]
            assert (call["database"], call["tool"]) == (place.source, place.group)
            assert isinstance(call["observation"], dict)  # a JSON value, as BioTool keeps observations
    for p in folder.glob("biotool/BioTool_*.json"):
        assert {r["conversations"][1]["value"] for r in json.loads(p.read_text())} <= singles


# ---------------------------------------------------------------------------------------------
# Splits


def splits_of(con, version_id: str) -> dict[str, str]:
    return dict(con.execute("select item_id, split from dataset_items where version_id = ?", [version_id]).fetchall())


def splits_by_call(con, version_id: str) -> dict[str, set[str]]:
    rows = con.execute(
        "select coalesce(st.call_id, d.call_id), d.split from dataset_items d "
        "left join call_set_steps st on st.set_id = d.call_id where d.version_id = ?",
        [version_id],
    ).fetchall()
    out: dict[str, set[str]] = {}
    for call_id, split in rows:
        out.setdefault(call_id, set()).add(split)
    return out


def test_a_parallel_items_calls_never_straddle_splits(demo_config, store):
    con, rows = store
    # A chain of parallel items: BRCA1+BRCA2, BRCA2+TP53, ...: each shares a call with the next,
    # and single items ask about each gene alone: every one of them must land in one split.
    singles = {g: rows.accepted(*lookup(g)[:2], [f"Where is {g}?"])[0] for g in GENES}
    chain = [parallel(rows, GENES[n], GENES[n + 1], f"pair{n}") for n in range(len(GENES) - 1)]
    # ... and 30 unrelated singles so that the splits are all used.
    fill(rows, calls=30, queries_per_call=1)
    result = pub.publish(demo_config, con)
    split = splits_of(con, result.version_id)
    assert len({split[i] for i in chain} | {split[i] for i in singles.values()}) == 1
    assert len(set(split.values())) == 3  # the other items do fill every split
    assert all(len(s) == 1 for s in splits_by_call(con, result.version_id).values())
    group = dict(con.execute("select item_id, group_key from dataset_items").fetchall())
    assert len({group[i] for i in chain + list(singles.values())}) == 1
    assert pub.split_checks(con, result.version_id) == []


def test_a_set_joining_calls_of_different_splits_is_held_back_and_the_check_catches_a_straddle(demo_config, store):
    con, rows = store
    singles = {g: rows.accepted(*lookup(g)[:2], [f"Where is {g}?"])[0] for g in GENES}
    first = pub.publish(demo_config, con)
    split = splits_of(con, first.version_id)
    a = next(g for g in GENES if split[singles[g]] == "train")
    b = next(g for g in GENES if split[singles[g]] != "train")
    c = next(g for g in GENES if g != a and split[singles[g]] == "train")
    held = parallel(rows, a, b, "bridge")  # cannot be in train and in another split at once
    joined = parallel(rows, a, c, "same")  # both train: joins them
    fresh = parallel(rows, a, "NEWGENE", "new")  # a new call joins a's group
    second = pub.publish(demo_config, con)
    now = splits_of(con, second.version_id)
    assert held not in now and second.refused[pub.SPLIT_CONFLICT] == 1
    assert now[joined] == now[fresh] == "train"
    assert all(now[q] == split[q] for q in singles.values())  # stable
    assert all(len(s) == 1 for s in splits_by_call(con, second.version_id).values())
    assert pub.split_checks(con, second.version_id) == []

    # The GX check sees a call in two splits even when the group keys hide it.
    con.execute(
        "update dataset_items set split = 'test', group_key = 'call:elsewhere' where version_id = ? and item_id = ?",
        [second.version_id, fresh],
    )
    con.execute(
        "update dataset_items set split = 'test' where item_id = ? and version_id = ?", [fresh, first.version_id]
    )  # (first_published would otherwise flag it first)
    problems = pub.split_checks(con, second.version_id)
    assert len(problems) == 1 and "call_splits" in problems[0]


def test_grouped_by_entity_a_no_tool_item_joins_the_group_of_its_entity(demo_config, store):
    con, rows = store
    config = with_publish(demo_config, group_by="entity")
    genes = {g: rows.accepted(*lookup(g)[:2], [f"Where is {g}?"], entity=f"gene:{g}")[0] for g in GENES}
    spec = {"reason": "asks for a dose", "entities": [f"gene:{g}" for g in GENES[:3]]}
    none = accept(rows, rows.call_set("no_tool", [], spec=spec), "What dose of a BRCA1 inhibitor is given?")
    alone = accept(rows, rows.call_set("no_tool", [], spec={"reason": "asks for a price"}), "What does it cost?")
    result = pub.publish(config, con)
    split = splits_of(con, result.version_id)
    group = dict(con.execute("select item_id, group_key from dataset_items").fetchall())
    assert len({split[genes[g]] for g in GENES[:3]} | {split[none]}) == 1
    assert len({group[genes[g]] for g in GENES[:3]} | {group[none]}) == 1
    assert group[alone] not in {group[q] for q in genes.values()}
    assert pub.split_checks(con, result.version_id) == []


# ---------------------------------------------------------------------------------------------
# Single items exactly as before


def test_single_items_are_exported_byte_for_byte_as_before_sets_joined(demo_config, store):
    con, rows = store
    fill(rows, calls=24, queries_per_call=1)
    first = pub.publish(demo_config, con)
    before = {p.relative_to(first.path): p.read_bytes() for p in first.path.rglob("*.json*") if p.is_file()}
    for n in range(4):
        multi_step(rows, n)
        no_tool(rows, n)
        parallel(rows, "ZZZ" + GENES[n], "YYY" + GENES[n], f"p{n}")  # own calls: singles' groups untouched
    second = pub.publish(demo_config, con)
    assert second.version_id != first.version_id
    for rel, data in before.items():
        if rel.name in ("dataset_info.json", "manifest.json", "tools.json", "function_mapping.json"):
            continue
        after = (second.path / rel).read_bytes()
        old = json.loads(data) if rel.suffix == ".json" else [json.loads(x) for x in data.splitlines()]
        new = json.loads(after) if rel.suffix == ".json" else [json.loads(x) for x in after.splitlines()]
        # every single-item record of the first version is in the second, byte for byte
        kept = {json.dumps(r, ensure_ascii=False) for r in new}
        assert all(json.dumps(r, ensure_ascii=False) in kept for r in old), rel
    # a single item's record has no new keys in the chat formats
    for line in (second.path / "openai").glob("*.jsonl"):
        for record in map(json.loads, line.read_text().splitlines()):
            assert set(record) == {"messages", "tools", "parallel_tool_calls"}


# ---------------------------------------------------------------------------------------------
# Review in Label Studio


@pytest.mark.labelstudio
def test_a_set_item_shows_its_calls_in_order_in_label_studio_and_publishes_after_review(
    demo_config, label_studio, monkeypatch, tmp_path
):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    config = demo_config.model_copy(
        update={
            "review": demo_config.review.model_copy(
                update={"enabled": True, "url": label_studio.url, "project_title": f"kinds {uuid.uuid4().hex[:8]}"}
            )
        }
    )
    with Store(config.store.path).open() as con:
        rows = Rows(con)
        single_call = rows.call(*lookup("BRCA1")[:2], observation=lookup("BRCA1")[2])
        single = rows.query(single_call, "Where is BRCA1?")
        par = rows.query(rows.call_set("parallel", [lookup("TP53"), lookup("EGFR")]), "Compare TP53 and EGFR?")
        chain_set = rows.call_set(
            "multi_step",
            [
                ("esearch", {"db": "gene", "term": "INS"}, json.dumps({"idlist": ["3630"]})),
                ("esummary", {"db": "gene", "id": "3630"}, json.dumps({"name": "INS", "chromosome": "11"})),
            ],
            fed_by={1: {"id": {"from": "idlist[0]", "value": "3630"}}},
        )
        chain = rows.query(chain_set, "On which chromosome is the human INS gene?")
        spec = {"reason": "no offered tool returns the price of a reagent"}
        none = rows.query(rows.call_set("no_tool", [], spec=spec), "What does a TP53 antibody cost?")
        assert review.push(config, con)["pushed"] == 4
        client = review.connect(config)
        project = review._project(client, config, create=False)
        tasks = {t.data["ext_id"]: t for t in client.tasks.list(project=project.id, fields="all")}

        shown = tasks[par].data
        assert shown["call"].index("Call 1 of 2") < shown["call"].index('"TP53"') < shown["call"].index("Call 2 of 2")
        assert shown["call"].index("Call 2 of 2") < shown["call"].index('"EGFR"')
        assert shown["call"].startswith("Parallel: 2 independent calls")
        observation = shown["observation"]
        assert observation.index("Observation of call 1") < observation.index("ENSG_TP53")
        assert observation.index("Observation of call 2") < observation.index("ENSG_EGFR")
        assert observation.index("ENSG_TP53") < observation.index("Observation of call 2")

        steps = tasks[chain].data["call"]
        assert steps.index('"esearch"') < steps.index("Call 2 of 2") < steps.index('"esummary"')
        assert 'id = "3630": from the observation of call 1 at idlist[0]' in steps
        assert tasks[chain].data["observation"].index('"3630"') < tasks[chain].data["observation"].index('"11"')

        nothing = tasks[none].data
        assert nothing["call"].startswith("No call: the correct answer is")
        assert "no offered tool returns the price of a reagent" in nothing["call"]
        # A single item's task is what it was: no kind, its call and observation as before.
        assert "kind" not in tasks[single].data and tasks[single].data["call"].startswith("{")

        for task in tasks.values():
            client.annotations.create(
                id=task.id,
                result=[
                    {"from_name": "verdict", "to_name": "query", "type": "choices", "value": {"choices": ["accept"]}}
                ],
            )
        assert review.pull(config, con)["new"] == 4
        result = pub.publish(config, con)
        published = pl.read_parquet(str(result.path / "parquet/*.parquet"))
        assert dict(zip(published["item_id"], published["kind"], strict=True)) == {
            single: "single",
            par: "parallel",
            chain: "multi_step",
            none: "no_tool",
        }
        assert review.status(config, con)["states"]["accepted"] == 4


def test_the_reviewer_guide_explains_each_kind():
    guide = (Path(__file__).resolve().parent.parent / "annotations/reviewer_guide.md").read_text()
    for kind in ("parallel", "multi_step", "no_tool", "tool_would_answer", "step_not_needed"):
        assert f"**{kind}**" in guide or f"`{kind}`" in guide
    config = (Path(__file__).resolve().parent.parent / "annotations/label_config.xml").read_text()
    assert '<Choice value="tool_would_answer"/>' in config and '<Choice value="step_not_needed"/>' in config
