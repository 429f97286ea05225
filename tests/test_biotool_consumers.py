"""A published version runs in BioTool's own consumers unchanged (issue 15, part 3).

The demo is run through the pipeline (replayed from the demo snapshot, every survivor accepted as
a reviewer would) and published into a temp folder with the network disabled; its ``biotool/``
folder is then read the way BioTool's scripts read their ``data/`` folder
(tests/biotool_consumers/consumers.py, reimplemented from reading them): every record loads,
every gold call dispatches through ``<database>.<tool>.api`` to a function whose signature takes
its arguments, and the gold call scored against itself is an exact match.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from biocurate import publish as pub
from biocurate.catalog import load_catalog
from biocurate.stages import STAGES
from biocurate.store import Store
from tests.biotool_consumers.consumers import (
    DATABASES,
    Wrappers,
    call_bioapi_function,
    check_folder,
    load_function_mapping,
)
from tests.pipeline_helpers import accept_survivors, demo_config_at
from tests.test_publish import llamafactory_sharegpt, load_json_dataset

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog(ROOT / "catalog")
BIOTOOL_NAMES = ("BioTool.json", "BioTool_train.json", "BioTool_test.json", "tools.json", "function_mapping.json")
# BioTool's dataset_info.json entries for its train/test files (its llamafactory_cfgs/README.md):
# sharegpt, columns messages/system/tools, no tags (LLaMA-Factory's defaults).
BIOTOOL_LF_ENTRY = {
    "formatting": "sharegpt",
    "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
}


def _no_network(*args, **kwargs):
    raise OSError("network disabled in this test")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The demo, reviewed (every survivor accepted) and published, with no network."""
    tmp = tmp_path_factory.mktemp("biotool-consumers")
    config = demo_config_at(tmp)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        with Store(config.store.path).open() as con:
            for name in ("sample", "execute", "synthesize", "judge", "quality"):
                STAGES[name](config, con, "demo")
        assert accept_survivors(config.store.path) > 100
        with Store(config.store.path).open() as con:
            result = pub.publish(config, con)
    assert result.version_id == "v0001", result.message
    return config, result.path


def our_split_files(folder: Path) -> tuple[str, ...]:
    return tuple(f"{s}.json" for s in pub.SPLITS if (folder / "biotool" / f"{s}.json").exists())


def held_per_split(folder: Path) -> dict[str, int]:
    """Items per split whose function BioTool's own dispatcher can run (catalog: biotool_runs),
    counted from the Parquet files (which hold every item)."""
    items = pl.concat([pl.read_parquet(p) for p in sorted(folder.glob("parquet/*.parquet"))])
    held = items.filter(pl.col("function").is_in(sorted(t.name for t in CATALOG if t.function.biotool_runs)))
    return {s: held.filter(pl.col("split") == s).height for s in pub.SPLITS}


def test_a_published_demo_version_runs_in_biotool_consumers(published, tmp_path, monkeypatch):
    config, folder = published
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    data = folder / "biotool"
    manifest = json.loads((folder / "manifest.json").read_text())
    sizes = manifest["counts"]["splits"]
    assert all(sizes[s] for s in pub.SPLITS)
    assert {p.name for p in data.iterdir()} == set(BIOTOOL_NAMES) | set(our_split_files(folder))

    report = check_folder(data, records=("BioTool.json", *our_split_files(folder)))
    print("records:", report.records, "\ndispatched:", report.dispatched, "\nmetrics:", report.metrics)
    print("failures:", len(report.failures), Counter(why for _, _, why in report.failures).most_common(5))
    assert report.failures == [], report.failures[:10]
    # biotool/ holds every item whose function BioTool's dispatcher can run (catalog: biotool_runs).
    per_split = held_per_split(folder)
    left_out = manifest["counts"]["items"] - sum(per_split.values())
    print(f"items: {manifest['counts']['items']}; left out of biotool/ (BioTool cannot run their function): {left_out}")
    expected = {
        "BioTool.json": sum(per_split.values()),
        "BioTool_train.json": per_split["train"],
        "BioTool_test.json": per_split["test"],
        **{f"{s}.json": per_split[s] for s in pub.SPLITS},
    }
    assert report.records == expected
    assert report.dispatched == report.records  # every gold call dispatches
    for file in ("BioTool_train.json", "BioTool_test.json"):
        metrics = report.metrics[file]
        assert metrics["overall"] == {"count": report.records[file], "em": 100.0}
        assert sum(metrics[db]["count"] for db in DATABASES) == report.records[file]  # every call in a bucket

    # tools.json and function_mapping.json cover the whole catalog, at the root and in biotool/.
    tools = json.loads((data / "tools.json").read_text())
    mapping = load_function_mapping(data / "function_mapping.json")
    assert [t["function"]["name"] for t in tools] == sorted(CATALOG.tools) == sorted(mapping)
    assert all(mapping[t.name] == (t.source, t.group) for t in CATALOG)
    for name in ("tools.json", "function_mapping.json"):
        assert (folder / name).read_bytes() == (data / name).read_bytes()
    # A prediction naming a function no item of this version uses is still found and dispatched.
    wrappers = Wrappers.load()
    used = {r["function_calling"]["name"] for r in json.loads((data / "BioTool.json").read_text())}
    absent = sorted(set(CATALOG.tools) - used)
    assert absent
    required = {f: spec["required"] for module in wrappers.modules.values() for f, spec in module.items()}
    for name in absent:
        ok, why = call_bioapi_function(name, {p: "x" for p in required[name]}, mapping, wrappers)
        assert ok, (name, why)
    print(f"functions in this version: {len(used)}; absent but dispatchable: {len(absent)}")


def test_biotools_train_files_load_as_its_dataset_card_and_llamafactory_read_them(published, tmp_path, monkeypatch):
    config, folder = published
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    sizes = held_per_split(folder)
    everything = load_json_dataset([folder / "biotool/BioTool.json"], tmp_path / "cache")
    assert everything.num_rows == sum(sizes.values())
    assert set(everything.column_names) == {"user_query", "function_calling", "observation", "database", "tool"}
    assert set(everything["database"]) <= set(DATABASES)
    for split in ("train", "test"):  # the splits BioTool's dataset card (configs) loads with `datasets`
        path = folder / f"biotool/BioTool_{split}.json"
        examples = load_json_dataset([path], tmp_path / "cache")
        assert examples.num_rows == sizes[split] and set(examples.column_names) == {"conversations", "tools"}
        for example in examples:
            converted = llamafactory_sharegpt(example, BIOTOOL_LF_ENTRY)
            assert converted["_system"] == config.publish.system_prompt
            assert [m["role"] for m in converted["_prompt"] + converted["_response"]] == ["user", "function"]
            offered = [t["function"]["name"] for t in json.loads(converted["_tools"])]
            assert json.loads(converted["_response"][0]["content"])["name"] in offered
            assert len(offered) == 1 + config.publish.distractor_tools


def _rewrite(path: Path, data) -> None:
    path.unlink()  # published files are read-only
    path.write_text(json.dumps(data))


def test_the_checker_reports_what_biotool_would_fail_on(published, tmp_path):
    """Records BioTool's scripts cannot use are reported by file and record, and only those."""
    _, folder = published
    data = tmp_path / "data"
    shutil.copytree(folder / "biotool", data)
    for path in data.iterdir():
        os.chmod(path, 0o644)
    baseline = set(check_folder(data).failures)
    failing = {(file, index) for file, index, _ in baseline}

    def name_of(record: dict) -> str:
        return (record.get("function_calling") or json.loads(record["conversations"][-1]["value"]))["name"]

    records = json.loads((data / "BioTool.json").read_text())
    examples = json.loads((data / "BioTool_test.json").read_text())
    train = json.loads((data / "BioTool_train.json").read_text())
    r = [i for i in range(len(records)) if ("BioTool.json", i) not in failing][:5]
    e = [i for i in range(len(examples)) if ("BioTool_test.json", i) not in failing][:3]
    targets = {name_of(records[i]) for i in r} | {name_of(examples[i]) for i in e}
    dropped = next(
        name_of(x)
        for i, x in enumerate(train)
        if ("BioTool_train.json", i) not in failing and name_of(x) not in targets
    )

    capitalised = CATALOG[name_of(records[r[0]])].database  # "NCBI", not "ncbi"
    records[r[0]]["database"] = capitalised
    records[r[1]]["function_calling"]["name"] = "no_such_function"
    records[r[2]]["function_calling"]["arguments"]["not_a_parameter"] = 1
    records[r[3]]["observation"] = '{"results": [{"id": "P0463'  # JSON text cut short
    records[r[4]]["tool"] = "no_such_tool"
    _rewrite(data / "BioTool.json", records)
    examples[e[0]]["tools"] = json.dumps([t["function"] for t in json.loads(examples[e[0]]["tools"])])  # unwrapped
    examples[e[1]]["tools"] = ""  # none offered
    examples[e[2]]["conversations"] = examples[e[2]]["conversations"][1:]  # no system turn
    _rewrite(data / "BioTool_test.json", examples)
    mapping = json.loads((data / "function_mapping.json").read_text())
    del mapping[dropped]
    _rewrite(data / "function_mapping.json", mapping)

    found = [f for f in check_folder(data).failures if f not in baseline]
    reasons: dict[tuple, str] = {}
    for file, index, why in found:
        reasons[(file, index)] = reasons.get((file, index), "") + why + "; "
    calling_dropped = {
        (file, i)
        for file, rows in (("BioTool.json", records), ("BioTool_train.json", train), ("BioTool_test.json", examples))
        for i, x in enumerate(rows)
        if name_of(x) == dropped
    }
    expected = (
        {("BioTool.json", i) for i in r}
        | {("BioTool_test.json", i) for i in e}
        | {("function_mapping.json", None)}
        | calling_dropped
    )
    assert len(calling_dropped) >= 2 and set(reasons) == expected, sorted(set(reasons) ^ expected, key=str)
    assert f"database {capitalised!r}" in reasons[("BioTool.json", r[0])]
    assert "no_such_function not found in mapping" in reasons[("BioTool.json", r[1])]
    assert "unexpected keyword argument 'not_a_parameter'" in reasons[("BioTool.json", r[2])]
    assert "cut short" in reasons[("BioTool.json", r[3])]
    assert "no_such_tool" in reasons[("BioTool.json", r[4])]
    assert "OpenAI tool form" in reasons[("BioTool_test.json", e[0])]
    assert "all of tools.json" in reasons[("BioTool_test.json", e[1])]
    assert "convert.py's layout" in reasons[("BioTool_test.json", e[2])]
    assert all(f"{dropped} not found in mapping" in reasons[k] for k in calling_dropped)
