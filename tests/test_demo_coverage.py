"""The offline demo publishes every catalog function.

Cheap checks first (no pipeline run): sampling (seeds + the catalog's sample sections + the
[sample] config) plans at least one valid call per function whose request the demo snapshot
answers (no replay miss), and that answer is not empty. Then the demo itself (a rebuild into a
temp store, the demo reviewer's rule, a publish): every function has published items and the
test split holds items of all three databases, and every item kind (issue 18) is published in
every export format."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import polars as pl
import pytest

from biocurate.catalog import build_request, load_catalog
from biocurate.config import load_config
from biocurate.sampling import sample_calls
from biocurate.seeds import load_seeds, species_table
from biocurate.snapshot import Snapshot, fingerprint
from biocurate.stages import JOBS, run_stage
from biocurate.store import Store, insert_new, utcnow
from tests.pipeline_helpers import accept, demo_config_at


@pytest.fixture(scope="module")
def answered() -> tuple[list[str], dict[str, list[bytes]]]:
    config = load_config()
    catalog_dir = config.path(config.sample.catalog_dir)
    catalog = load_catalog(catalog_dir)
    seeds = load_seeds(config.path(config.sample.seeds_dir), catalog_dir)
    calls = sample_calls(catalog, seeds.entities, species_table(catalog_dir), config.sample).calls
    snapshot = Snapshot(config.path(config.execute.snapshot_dir))
    bodies: dict[str, list[bytes]] = defaultdict(list)
    for call in calls:
        if not call["valid"]:
            continue
        req = build_request(catalog[call["function"]], call["arguments"])
        entry = snapshot.get(fingerprint(req.method, req.url, req.params, req.json_body or req.form))
        if entry is not None:
            bodies[call["function"]].append(entry[1])
    return sorted(t.name for t in catalog), bodies


def test_every_function_has_a_sampled_call_with_a_recorded_response(answered):
    functions, bodies = answered
    assert len(functions) >= 137
    missing = [f for f in functions if not bodies.get(f)]
    assert missing == [], f"{len(missing)} functions without a recorded answer to a sampled call: {missing}"


def test_every_function_has_a_non_empty_recorded_answer(answered):
    """An empty list or object is an `ok_empty` outcome, which synthesizes no question."""
    functions, bodies = answered
    empty = [f for f in functions if bodies.get(f) and all(b.strip() in (b"", b"[]", b"{}") for b in bodies[f])]
    assert empty == [], f"only empty answers recorded for {empty}"


# --- what the demo publishes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_published(tmp_path_factory):
    """The demo's rebuild (replay transport, offline generator and judge) into a temp store, the
    demo reviewer's rule applied as rows (scripts/demo_review.py accepts what the judge accepted;
    its random disagreement with about one in ten accepts is left out), then a published version.
    Yields (catalog function names, {function: (items, test items)}, databases in the test split,
    the version's folder)."""
    tmp = tmp_path_factory.mktemp("demo")
    config = demo_config_at(tmp)
    for stage in JOBS["rebuild"]:
        if stage != "review_push":
            run_stage(stage, config, "demo")
    with Store(config.store.path).open() as con:
        accepted = [
            q
            for (q,) in con.execute(
                "select s.query_id from survivors s join latest_judgments j using (query_id) "
                "where j.verdict = 'accept' order by s.query_id"
            ).fetchall()
        ]
        now = utcnow()
        insert_new(
            con,
            "review_tasks",
            [
                {
                    "query_id": q,
                    "content_hash": "demo",
                    "project_id": 1,
                    "task_id": i + 1,
                    "priority": 0.5,
                    "pushed_at": now,
                    "updated_at": now,
                }
                for i, q in enumerate(accepted)
            ],
        )
        accept(con, accepted, "demo-reviewer")
    run_stage("publish", config, "demo")
    with Store(config.store.path).open(read_only=True) as con:
        rows = con.execute("select function, items, test_items from published_coverage").fetchall()
        test_dbs = {
            db
            for (db,) in con.execute(
                # a no_tool item makes no call, so has no database ('')
                "select distinct d.database from dataset_items d where d.split = 'test' and d.database <> '' "
                "and d.version_id = "
                "(select version_id from dataset_versions order by created_at desc, version_id desc limit 1)"
            ).fetchall()
        }
        (folder,) = con.execute("select path from dataset_versions").fetchall()[0]
    functions = sorted(t.name for t in load_catalog(config.path(config.sample.catalog_dir)))
    return functions, {f: (n, t) for f, n, t in rows}, test_dbs, Path(folder)


def test_the_published_demo_version_has_items_of_every_function(demo_published):
    functions, items, _, _ = demo_published
    assert len(functions) >= 137
    none = [f for f in functions if not items.get(f, (0, 0))[0]]
    assert none == [], f"{len(functions) - len(none)}/{len(functions)} functions published; none for {none}"


def test_the_test_split_of_the_published_demo_holds_all_three_databases(demo_published):
    _, _, test_dbs, _ = demo_published
    assert test_dbs == {"NCBI", "Ensembl", "UniProt"}


SET_KINDS = ("parallel", "multi_step", "no_tool")


def sharegpt_kind(record: dict) -> str:
    """A ShareGPT record's kind from its turns: no function_call (no_tool), one turn holding a list
    of calls (parallel), several function_call turns (multi_step), or one call (single)."""
    calls = [json.loads(t["value"]) for t in record["conversations"] if t["from"] == "function_call"]
    if not calls:
        return "no_tool"
    if len(calls) > 1:
        return "multi_step"
    return "parallel" if isinstance(calls[0], list) else "single"


def openai_kind(record: dict) -> str:
    """An OpenAI chat record's kind from its assistant messages' tool_calls."""
    turns = [m["tool_calls"] for m in record["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
    if not turns:
        return "no_tool"
    if len(turns) > 1:
        return "multi_step"
    return "parallel" if len(turns[0]) > 1 else "single"


def test_every_item_kind_is_published_in_every_format(demo_published):
    """At least 20 items of each of parallel, multi_step and no_tool, through QC and review, and
    each export format holds every one of them, recognisable by its shape."""
    folder = demo_published[3]
    parquet = pl.concat([pl.read_parquet(f) for f in sorted((folder / "parquet").glob("*.parquet"))])
    kinds = Counter(parquet["kind"].to_list())
    assert all(kinds[k] >= 20 for k in SET_KINDS), kinds
    sharegpt = Counter(
        sharegpt_kind(r)
        for f in sorted((folder / "sharegpt").glob("*.json"))
        if f.name != "dataset_info.json"
        for r in json.loads(f.read_text())
    )
    openai = Counter(
        openai_kind(json.loads(line)) for f in sorted((folder / "openai").glob("*.jsonl")) for line in f.open()
    )
    extension = Counter(
        r["kind"] for f in (folder / "biotool" / "item_kinds").glob("*.json") for r in json.loads(f.read_text())
    )
    assert sharegpt == kinds and openai == kinds
    assert extension == Counter({k: kinds[k] for k in SET_KINDS})
