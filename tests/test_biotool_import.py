"""`biocurate import biotool` and `biocurate audit` (issue 15 §4) on tests/data/biotool_dataset.

The import keeps every good record (with its file, number and split) and reports every malformed
one by file and number, and a second import adds nothing; our answer is compared with BioTool's
claimed observation fact by fact; and the README's commands (import, rebuild, audit) run against
the loopback API stand-in, where the audit must find what the fixture plants
(``scenario/manifest.json``): the calls that changed, went away or failed, the calls in both
splits and the rule failures of the planted questions. A call the catalog rejects is expected as
rejected whatever the manifest says it would answer: the catalog's verdict at test time decides.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biocurate.biotool_compare import agreement
from biocurate.biotool_import import call_id_of, query_id_of
from biocurate.catalog import build_request, load_catalog
from biocurate.cli import app
from biocurate.config import load_config
from biocurate.snapshot import Snapshot
from biocurate.stages import run_stage
from biocurate.store import Store, table_counts
from tests.conftest import ROOT
from tests.pipeline_helpers import accept_survivors, standin_settings, write_config
from tests.standins.api import ApiStandIn

runner = CliRunner()
DATASET = ROOT / "tests/data/biotool_dataset"
MANIFEST = json.loads((DATASET / "scenario/manifest.json").read_text())
CALLS = {c["label"]: c for c in MANIFEST["calls"]}
CATALOG = load_catalog(ROOT / "catalog")
RECORD_FILES = ("BioTool.json", "BioTool_train.json", "BioTool_test.json", "biotool_extra.jsonl")
SPLITS = {"BioTool_train.json": "train", "BioTool_test.json": "test"}
ANSWERING = ("unchanged", "body_changed", "changed")


def call_id(label: str) -> str:
    return call_id_of(CATALOG, CALLS[label]["function"], CALLS[label]["arguments"])


def expected_state(label: str) -> str:
    """The manifest's status, unless the catalog (today) rejects the call."""
    call = CALLS[label]
    if call["function"] not in CATALOG or CATALOG[call["function"]].validate(call["arguments"]) is not None:
        return "rejected"
    return call["expect"]


def items() -> dict[str, dict]:
    """The imported questions the manifest describes, by their query id."""
    out: dict[str, dict] = {}
    for record in MANIFEST["records"]:
        key = query_id_of(call_id(record["call"]), record["question"])
        entry = out.setdefault(key, {**record, "records": {}})
        entry["records"].update(record["records"])
    return out


def records_in_files() -> int:
    total = 0
    for name in RECORD_FILES:
        text = (DATASET / name).read_text()
        total += (
            sum(1 for line in text.splitlines() if line.strip()) if name.endswith(".jsonl") else len(json.loads(text))
        )
    return total


@pytest.fixture
def config_file(tmp_path):
    return write_config(
        tmp_path / "c.toml", {"store": {"path": str(tmp_path / "s.duckdb")}, "review": {"enabled": False}}
    )


def invoke(*args: str):
    out = runner.invoke(app, list(args))
    assert out.exit_code == 0, (args, out.output)
    return out


def test_import_keeps_every_good_record_and_reports_the_malformed_by_file_and_number(config_file, tmp_path):
    out = invoke("import", "biotool", str(DATASET), "--config", str(config_file))
    said = " ".join(out.output.split())
    for bad in MANIFEST["malformed"]:
        unit = "line" if bad["file"].endswith(".jsonl") else "record"
        assert re.search(rf"{re.escape(bad['file'])}: {unit} {bad['record']}: {re.escape(bad['problem'])}", said), bad
    assert "tools.json: BioTool's tool schemas" in said and "function_mapping.json: BioTool's function mapping" in said
    expected = items()
    with Store(load_config(config_file).store.path).open(read_only=True) as con:
        rows = con.execute(
            "select file_name, record_number, status, problem, split, query_id, call_id, user_query "
            "from biotool_records"
        ).fetchall()
        assert len(rows) == records_in_files()  # nothing dropped: every record of every file has a row
        malformed = {(r[0], r[1]) for r in rows if r[2] == "malformed"}
        assert malformed == {(m["file"], m["record"]) for m in MANIFEST["malformed"]}
        good = {(r[0], r[1]): r for r in rows if r[2] == "imported"}
        placed = {(f, n): q for q, e in expected.items() for f, n in e["records"].items()}
        assert set(good) == set(placed)
        for where, row in good.items():
            assert row[5] == placed[where] and row[7] == expected[placed[where]]["question"], where
            assert row[4] == SPLITS.get(where[0]), where
        queries = dict(
            con.execute("select query_id, observation_id from queries where generator = 'biotool-import'").fetchall()
        )
        assert set(queries) == set(expected)
        # each question is bound to the observation BioTool published with it
        claims = dict(con.execute("select claim_id, text from biotool_claims").fetchall())
        biotool = json.loads((DATASET / "BioTool.json").read_text())
        for query_id, entry in expected.items():
            if "BioTool.json" in entry["records"]:
                published = biotool[entry["records"]["BioTool.json"] - 1]["observation"]
                assert json.loads(claims[queries[query_id]]) == published, entry["question"]
        calls = dict(
            con.execute("select call_id, valid from candidate_calls where template = 'biotool-import'").fetchall()
        )
        assert calls == {call_id(label): expected_state(label) != "rejected" for label in CALLS}
        reason = con.execute(
            "select invalid_reason from candidate_calls where call_id = ?", [call_id("structure")]
        ).fetchall()[0][0]
        assert "get_protein_structure" in reason and "not in the catalog" in reason
        before = table_counts(con)

    # Importing the same files again, or a copy of them from elsewhere, adds nothing.
    copy = tmp_path / "copy"
    shutil.copytree(DATASET, copy)
    for path in (DATASET, copy):
        out = invoke("import", "biotool", str(path), "--config", str(config_file))
        added = re.findall(r"│ (candidate_calls|biotool_claims|queries|biotool_records)\s*│\s*(\d+)", out.output)
        assert len(added) == 4 and all(n == "0" for _, n in added), out.output
    with Store(load_config(config_file).store.path).open(read_only=True) as con:
        after = table_counts(con)
    assert {t: n for t, n in after.items() if t != "runs"} == {t: n for t, n in before.items() if t != "runs"}
    # A changed file is new provenance for the records it holds, not new questions.
    edited = json.loads((DATASET / "BioTool_test.json").read_text())
    (copy / "BioTool_test.json").write_text(json.dumps(edited[:3], indent=1))
    invoke("import", "biotool", str(copy / "BioTool_test.json"), "--config", str(config_file))
    with Store(load_config(config_file).store.path).open(read_only=True) as con:
        again = table_counts(con)
    assert again["biotool_records"] == after["biotool_records"] + 3 and again["queries"] == after["queries"]


def test_the_claim_is_held_against_our_answer_fact_by_fact():
    biotool = json.loads((DATASET / "BioTool.json").read_text())

    def claim(label: str) -> str:
        number = next(e["records"]["BioTool.json"] for e in MANIFEST["records"] if e["call"] == label)
        return json.dumps(biotool[number - 1]["observation"])

    def answer(label: str) -> bytes:
        return (DATASET / "scenario" / CALLS[label]["upstream"]["file"]).read_bytes()

    same = agreement(claim("map"), answer("map"))  # the same JSON, other whitespace
    assert same.same_body and same.holds and same.basis == "same body"
    grown = agreement(claim("map2k3"), answer("map2k3"))  # a transcript more: other bytes, claims hold
    assert not grown.same_body and grown.holds and grown.checked > 10 and not grown.missing
    changed = agreement(claim("esearch"), answer("esearch"))
    assert not changed.holds and "count='98575'" in changed.missing
    cut = agreement(claim("homology"), answer("homology"))  # align_seq "...[truncated]": held by its start
    assert cut.holds and cut.checked > 0
    summary = agreement(json.dumps({"total_results": 25, "examples": [{"hits": 3}]}), answer("caspases"))
    assert summary.checked == 0 and not summary.holds and summary.basis == "nothing checkable"
    xml = answer("efetch")
    assert agreement(claim("efetch"), xml).holds  # a GBSeq XML answer: claimed values found in its text
    renamed = xml.replace(b"gp53-like domain-containing protein [Escherichia coli]", b"hypothetical protein")
    moved = agreement(claim("efetch"), renamed)
    assert not moved.holds and [m for m in moved.missing if m.startswith("definition=")]


def readme_commands(data: Path) -> list[list[str]]:
    """The commands of the README's BioTool section, with BioTool's folder replaced by ``data``."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Importing and auditing BioTool's dataset") :]
    block = section[section.index("```bash") + 7 : section.index("```", section.index("```bash") + 7)]
    commands = [
        shlex.split(line.split("  #")[0])[1:] for line in block.splitlines() if line.startswith(".venv/bin/biocurate ")
    ]
    return [[str(data) if arg == "data/biotool" else arg for arg in command] for command in commands]


def stand_in_snapshot(folder: Path) -> Snapshot:
    """What the APIs answer now, in the scenario: each call's upstream answer under our request."""
    snapshot = Snapshot(folder)
    for call in MANIFEST["calls"]:
        upstream = call["upstream"]
        if upstream is None or expected_state(call["label"]) == "rejected":
            continue
        request = build_request(CATALOG[call["function"]], call["arguments"])
        snapshot.add(
            method=request.method,
            url=request.url,
            params=request.params,
            body=request.json_body or request.form,
            status=upstream["status"],
            content_type=upstream["content_type"],
            content=(DATASET / "scenario" / upstream["file"]).read_bytes(),
            file=Path(upstream["file"]).name,
            origin=upstream["origin"],
            provenance=upstream["note"],
        )
    return snapshot


def test_readme_import_rebuild_audit_find_what_the_fixture_plants(prefect_harness, tmp_path):
    api = ApiStandIn(stand_in_snapshot(tmp_path / "upstream")).start()
    try:
        config_file = write_config(
            tmp_path / "c.toml",
            standin_settings(
                tmp_path,
                api,
                # only the imported records' calls: no sampled calls, no call sets
                sample={"calls_per_function": 0, "kinds": {"parallel": 0, "multi_step": 0, "no_tool": 0}},
            ),
        )
        commands = readme_commands(DATASET)
        assert [c[:2] for c in commands] == [
            ["import", "biotool"],
            ["rebuild", "--transport"],
            ["audit"],
            ["audit", "--json"],
            ["sql", commands[4][1]],
        ]
        outputs = [invoke(*command, "--config", str(config_file)).output for command in commands]
        config = load_config(config_file)
        again = run_stage("biotool_compare", config, "test-again")  # nothing new to compare or bind
        assert again.rows_new == 0 and again.reused == again.rows_in > 0
    finally:
        api.stop()
    report = json.loads(outputs[3])
    tables = " ".join(outputs[2].split())
    assert "calls that no longer answer" in tables and "calls in two splits:" in tables

    # Every call in the state the scenario plants; changed ones say what changed.
    states = {c["call_id"]: c for c in report["calls"]}
    assert {cid: states[cid]["state"] for cid in states} == {call_id(label): expected_state(label) for label in CALLS}
    for label, call in CALLS.items():
        found = states[call_id(label)]
        if expected_state(label) == "changed":
            assert call["why"].split(": ", 1)[1] in found["detail"], (label, found["detail"])
        if expected_state(label) == "gone":
            status = call["upstream"]["status"] if call["upstream"] else 404  # no upstream: the stand-in's 404
            assert found["outcome"] == "http_error" and f"HTTP {status}" in found["detail"], (label, found["detail"])
    assert {c["call_id"] for c in report["gone"]} == {call_id(x) for x in CALLS if expected_state(x) == "gone"}
    assert {c["call_id"] for c in report["changed"]} == {call_id(x) for x in CALLS if expected_state(x) == "changed"}

    # Leakage: exactly the planted calls are in both splits; only esearch with the very same question.
    pairs = report["leakage"]["pairs_list"]
    assert {p["call_id"] for p in pairs} == {call_id(x["call"]) for x in MANIFEST["leakage"]}
    assert {p["call_id"] for p in pairs if p["same_question"]} == {
        call_id(x["call"]) for x in MANIFEST["leakage"] if x.get("same_question")
    }
    assert all((p["first_split"], p["second_split"]) == ("train", "test") for p in pairs)
    assert outputs[4].count("│") > 0 and "MAP2K3" in outputs[4]

    # Rule failures: the planted ones, nothing else on the synthetic questions.
    planted = items()
    found = {i["item_id"]: i for i in report["items"]}
    assert set(found) == set(planted)
    for item_id, entry in planted.items():
        item = found[item_id]
        answering = expected_state(entry["call"]) in ANSWERING
        assert item["bound_to_claim"] == (not answering) and item["quality_checked"] == answering, entry["question"]
        failed = set(item["rules_failed"] or [])
        if "rules" in entry:
            assert failed & set(entry["rules"]["must_one_of"]), (entry["question"], failed)
            assert failed <= set(entry["rules"]["must_one_of"]) | set(entry["rules"]["may_also"]), (
                entry["question"],
                failed,
            )
        elif entry["origin"].startswith("synthetic") and "near_duplicate_pair" not in entry:
            assert not failed, (entry["question"], failed)
    pair = [found[i] for i, e in planted.items() if e.get("near_duplicate_pair")]
    duplicates = [
        set(i["rules_failed"] or []) & {"dataset.near_duplicate_within_call", "dataset.exact_duplicate"} for i in pair
    ]
    assert len(pair) == 2 and sorted(map(bool, duplicates)) == [False, True]
    assert {(m["file"], m["record"]) for m in report["malformed"]} == {
        (m["file"], m["record"]) for m in MANIFEST["malformed"]
    }

    # Publish: accepted imported questions are published under the id they were imported with.
    accept_survivors(config.store.path)
    invoke("publish", "--config", str(config_file))
    published = json.loads(invoke("audit", "--json", "--config", str(config_file)).output)
    assert published["summary"]["items_published"] == report["summary"]["items_passing_quality"] > 0
    with Store(config.store.path).open(read_only=True) as con:
        ids = {r[0] for r in con.execute("select item_id from dataset_items").fetchall()}
    assert {i["item_id"] for i in report["items"] if i["passing_quality"]} <= ids
