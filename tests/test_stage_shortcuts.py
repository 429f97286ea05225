"""Issue 19: the shortcuts execute and judge take at scale give what the one-row-at-a-time rules give.

Execute builds an observation once per distinct body (and a replay reads, classifies and
compresses each recorded file once); the rules judge makes each call's mentions and each
observation's test once per batch. On the demo store (replayed from the shipped snapshot), every
stored row must equal what the reference functions make of that row alone: ``observe`` for an
observation, the snapshot's own file for a stored body, ``rule_checks`` for a judgment.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import replace

import polars as pl
import pytest

from biocurate.catalog import build_request, load_catalog
from biocurate.hashing import content_hash, sha256_bytes
from biocurate.judge import RULES_VERSION, rule_checks
from biocurate.mentions import mention_rules
from biocurate.observations import NotAnAnswer, UnexpectedShape, observe
from biocurate.snapshot import Snapshot
from biocurate.stages import run_stage
from biocurate.store import Store, insert_new


def shared_answers(config, tmp_path) -> object:
    """``config`` replaying a copy of the demo snapshot in which five more lookup_by_id calls are
    answered by one recorded file (as the bench's variants are) and two by a body its builder refuses."""
    folder = tmp_path / "snapshot"
    shutil.copytree(config.path(config.execute.snapshot_dir), folder)
    snapshot = Snapshot(folder)
    tool = load_catalog(config.path(config.sample.catalog_dir))["lookup_by_id"]
    recorded = next(e for e in snapshot.entries.values() if "/lookup/id/ENSG00000001626" in e.url)
    refused = snapshot.add(
        method="GET",
        url="https://rest.ensembl.org/lookup/id/ENSG00000900000",
        params=[],
        body=None,
        status=200,
        content_type="application/json",
        content=b"[1]",
        file="ensembl/not_a_lookup.json",
        origin="illustrative",
        provenance="test",
    )
    calls = []
    for k, stable_id in enumerate(
        [
            "ENSG00000900001",
            "ENSG00000900002",
            "ENSG00000900003",
            "ENSG00000900004",
            "ENSG00000900005",
            "ENSG00000900006",
            "ENSG00000900007",
        ]
    ):
        req = build_request(tool, {"id": stable_id})
        entry = recorded if k < 5 else snapshot.entries[refused]
        snapshot.entries[req.fingerprint()] = replace(entry, key=req.fingerprint(), url=req.url)
        calls.append(
            {
                "call_id": content_hash("call", tool.name, {"id": stable_id}),
                "function": tool.name,
                "arguments": json.dumps({"id": stable_id}),
                "template": "test",
                "database": "Ensembl",
                "tool_group": tool.group,
                "category": "genomics",
                "valid": True,
            }
        )
    snapshot.save()
    config = config.model_copy(update={"execute": config.execute.model_copy(update={"snapshot_dir": folder})})
    with Store(config.store.path).open() as con:
        insert_new(con, "candidate_calls", calls)
    return config


def test_stored_bodies_and_observations_are_those_of_each_response_alone(demo_config, tmp_path):
    run_stage("sample", demo_config, "s")
    demo_config = shared_answers(demo_config, tmp_path)
    run_stage("execute", demo_config, "e")
    catalog = load_catalog(demo_config.path(demo_config.sample.catalog_dir))
    snapshot = Snapshot(demo_config.path(demo_config.execute.snapshot_dir))
    with Store(demo_config.store.path).open(read_only=True) as con:
        rows = con.execute(
            "select r.response_id, r.fingerprint, r.outcome, r.error, r.content_type, r.body, r.body_sha256, "
            "c.function, c.arguments, o.text, o.builder "
            "from api_responses r join candidate_calls c using (call_id) "
            "left join observations o using (response_id) order by r.response_id"
        ).fetchall()
    bodies = [row[6] for row in rows if row[6]]
    assert len(bodies) - len(set(bodies)) >= 5  # the shared answers
    observed = refused = 0
    for _, key, outcome, error, ctype, body, sha, function, arguments, text, builder in rows:
        if body is None:
            continue
        raw = gzip.decompress(body)
        entry = snapshot.entries[key]
        if not catalog[function].function.blast:  # a BLAST job stores its last page
            assert raw == (snapshot.folder / entry.file).read_bytes() and sha == sha256_bytes(raw)
        args, limit = json.loads(arguments), demo_config.execute.observation_max_chars
        if outcome == "ok":
            assert (builder, text) == observe(catalog[function], args, raw, limit, ctype or "")
            observed += 1
        elif error and error.startswith(f"{function}: "):  # refused by the observation pass
            with pytest.raises(UnexpectedShape) as exc:
                observe(catalog[function], args, raw, limit, ctype or "")
            said = str(exc.value) if isinstance(exc.value, NotAnAnswer) else f"unexpected response shape: {exc.value}"
            assert text is None and error == f"{function}: {said}"[:500]
            refused += 1
    assert observed > 100 and refused >= 2


def test_rules_judgments_are_those_of_each_question_alone(demo_config):
    for stage in ("sample", "execute", "synthesize"):
        run_stage(stage, demo_config, stage)
    with Store(demo_config.store.path).open() as con:  # questions that fail checks, beside the generator's
        asked = con.sql(
            "select * exclude (created_at) from queries where generator = 'template' order by query_id limit 3"
        ).pl()
        bad = ["Use the API endpoint for this please", "What?", "Tell me about it, all of it, in full detail now"]
        asked = asked.with_columns(text=pl.Series(bad), query_id=pl.Series([f"test-bad-{i}" for i in range(3)]))
        insert_new(con, "queries", asked)
    run_stage("judge", demo_config, "judge")
    catalog = load_catalog(demo_config.path(demo_config.sample.catalog_dir))
    rules = mention_rules(
        demo_config.path(demo_config.sample.catalog_dir), demo_config.path(demo_config.sample.seeds_dir)
    )
    model = demo_config.synthesis.judge.model
    with Store(demo_config.store.path).open(read_only=True) as con:
        rows = con.execute(
            "select q.query_id, q.text, q.function, q.arguments, q.observation, j.judgment_id, j.verdict, j.score, "
            "j.reason from query_context q left join judgments j on j.query_id = q.query_id and j.model = ? "
            "and j.prompt_version = ? where q.kind = 'single' order by q.query_id",
            [model, RULES_VERSION],
        ).fetchall()
    assert len(rows) > 300
    verdicts = set()
    for query_id, text, function, arguments, observation, judgment_id, verdict, score, reason in rows:
        tool = catalog[function]
        checks = rule_checks(
            text, function, rules.mentions(tool, json.loads(arguments)), observation, list(tool.function.params)
        )
        expected_score = sum(checks.values()) / len(checks)
        failed = [name for name, ok in checks.items() if not ok]
        assert judgment_id == content_hash("judgment", query_id, "rules", model, RULES_VERSION)
        assert score == expected_score
        assert verdict == ("accept" if score == 1 else ("unsure" if score >= 0.75 else "reject"))
        assert reason == ("all checks passed" if not failed else "failed: " + "; ".join(failed))
        verdicts.add(verdict)
    assert verdicts == {"accept", "unsure", "reject"}  # the added questions fail one check or more
