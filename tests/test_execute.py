"""The executor against a loopback stand-in of the real APIs: outcomes, retries, limits, cache."""

from __future__ import annotations

import json
import time

import pytest

from biocurate.catalog import build_request, load_catalog
from biocurate.execute import classify, execute_calls
from biocurate.hashing import content_hash
from biocurate.snapshot import Snapshot
from biocurate.store import Store, insert_new
from tests.pipeline_helpers import live_execute_config
from tests.standins.api import ApiStandIn, Fault

LOOKUP = {
    "id": "ENSG00000139618",
    "display_name": "BRCA2",
    "species": "homo_sapiens",
    "object_type": "Gene",
    "biotype": "protein_coding",
    "seq_region_name": "13",
    "start": 32315508,
    "end": 32400268,
    "strand": 1,
    "assembly_name": "GRCh38",
}


def add_calls(con, snapshot: Snapshot, ids: list[str]) -> list[str]:
    """One lookup_by_id call per id, each with a recorded answer in the snapshot."""
    tool = load_catalog()["lookup_by_id"]
    rows: list[dict] = []
    for stable_id in ids:
        args = {"id": stable_id}
        req = build_request(tool, args)
        snapshot.add(
            method="GET",
            url=req.url,
            params=req.params,
            body=None,
            status=200,
            content_type="application/json",
            content=json.dumps({**LOOKUP, "id": stable_id}).encode(),
            file=f"ensembl/{stable_id}.json",
            origin="illustrative",
            provenance="test",
        )
        rows.append(
            {
                "call_id": content_hash("call", tool.name, args),
                "function": tool.name,
                "arguments": json.dumps(args),
                "template": "test",
                "database": "Ensembl",
                "tool_group": "lookup",
                "category": "genomics",
                "valid": True,
            }
        )
    insert_new(con, "candidate_calls", rows)
    return [r["call_id"] for r in rows]


@pytest.fixture
def setup(tmp_path):
    snapshot = Snapshot(tmp_path / "snap")
    server = ApiStandIn(snapshot).start()

    def config(**execute):
        execute = {"max_retries": 2, "backoff_seconds": 0.01, "timeout_seconds": 1.0, **execute}
        return live_execute_config(tmp_path, server, **execute)

    yield server, snapshot, config, tmp_path
    server.stop()


def outcomes(con):
    return dict(con.execute("select call_id, outcome from api_responses").fetchall())


def test_ok_response_becomes_an_observation(setup):
    server, snapshot, config, tmp = setup
    cfg = config()
    with Store(cfg.store.path).open() as con:
        [call] = add_calls(con, snapshot, ["ENSG00000139618"])
        summary = execute_calls(cfg, con, load_catalog(), "r1")
        assert outcomes(con) == {call: "ok"}
        obs = json.loads(con.execute("select text from observations").fetchall()[0][0])
    assert summary.observations == 1
    assert obs["display_name"] == "BRCA2" and obs["start"] == 32315508


@pytest.mark.parametrize(
    "fault,outcome",
    [
        ("500", "http_error"),
        ("503", "http_error"),
        ("timeout", "timeout"),
        ("malformed_json", "invalid_body"),
        ("truncated_json", "invalid_body"),
        ("html_error", "invalid_body"),
        ("empty", "ok_empty"),
    ],
)
def test_each_fault_ends_in_its_outcome_and_no_observation(setup, fault, outcome):
    server, snapshot, config, tmp = setup
    server.faults.append(Fault(fault, "ENSG00000141510"))
    cfg = config()
    with Store(cfg.store.path).open() as con:
        good, bad = add_calls(con, snapshot, ["ENSG00000139618", "ENSG00000141510"])
        execute_calls(cfg, con, load_catalog(), "r1")
        assert outcomes(con) == {good: "ok", bad: outcome}
        assert con.execute("select call_id from observations").fetchall() == [(good,)]
        error = con.execute("select error from api_responses where call_id = ?", [bad]).fetchall()[0][0]
    assert error  # every failure says what went wrong


def test_retry_after_on_429_is_waited_out(setup):
    server, snapshot, config, tmp = setup
    server.retry_after = 1.0
    server.faults.append(Fault("429", "ENSG00000139618", times=1))
    cfg = config(backoff_seconds=0.0)
    with Store(cfg.store.path).open() as con:
        [call] = add_calls(con, snapshot, ["ENSG00000139618"])
        started = time.monotonic()
        execute_calls(cfg, con, load_catalog(), "r1")
        elapsed = time.monotonic() - started
        outcome, attempts = con.execute("select outcome, attempts from api_responses").fetchall()[0]
    assert outcome == "ok" and attempts == 2
    assert elapsed >= 1.0
    statuses = [r[3] for r in server.requests]
    assert statuses == [429, 200]
    assert server.requests[1][0] - server.requests[0][0] >= 0.95


def test_rate_limit_is_never_exceeded_in_any_one_second_window(setup):
    server, snapshot, config, tmp = setup
    server.rate_limits = {"rest.ensembl.org": 15}
    cfg = config()
    ids = [f"ENSG{n:011d}" for n in range(45)]
    with Store(cfg.store.path).open() as con:
        add_calls(con, snapshot, ids)
        execute_calls(cfg, con, load_catalog(), "r1")
        assert set(outcomes(con).values()) == {"ok"}
    assert server.served(status=429) == []
    times = sorted(r[0] for r in server.requests)
    worst = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert worst <= 15
    # and it is not needlessly slow: 45 requests at 15/s take about 3 s
    assert times[-1] - times[0] < 4.0


def test_cached_answers_make_no_request(setup):
    server, snapshot, config, tmp = setup
    cfg = config()
    with Store(cfg.store.path).open() as con:
        add_calls(con, snapshot, ["ENSG00000139618", "ENSG00000141510"])
        execute_calls(cfg, con, load_catalog(), "r1")
        served = len(server.requests)
        summary = execute_calls(cfg, con, load_catalog(), "r2")
    assert served == 2
    assert len(server.requests) == served
    assert summary.requested == 0 and summary.cached == 2


def test_replay_miss_names_the_request(setup):
    server, snapshot, config, tmp = setup
    cfg = config(transport="replay")
    with Store(cfg.store.path).open() as con:
        add_calls(con, snapshot, ["ENSG00000139618"])
        tool = load_catalog()["lookup_by_symbol"]
        args = {"species": "homo_sapiens", "symbol": "NOTAGENE"}
        insert_new(
            con,
            "candidate_calls",
            [
                {
                    "call_id": "missing",
                    "function": tool.name,
                    "arguments": json.dumps(args),
                    "template": "t",
                    "database": "Ensembl",
                    "tool_group": "lookup",
                    "category": "genomics",
                    "valid": True,
                }
            ],
        )
        execute_calls(cfg, con, load_catalog(), "r1")
        row = con.execute("select outcome, error from api_responses where call_id = 'missing'").fetchall()[0]
    assert server.requests == []  # replay never touches the network
    assert row[0] == "replay_miss"
    assert "GET https://rest.ensembl.org/lookup/symbol/homo_sapiens/NOTAGENE" in row[1]


@pytest.mark.parametrize(
    "status,ctype,body,fmt,expected",
    [
        (
            200,
            "application/json",
            b'{"error": "Invalid uid SDHD at position= 0", "result": {"uids": []}}',
            "json",
            "api_error",
        ),
        (200, "application/json", b'{"header": {}, "esearchresult": {"count": "0", "idlist": []}}', "json", "ok_empty"),
        (
            200,
            "text/xml",
            b"<eSearchResult><Count>0</Count><ErrorList><PhraseNotFound>x</PhraseNotFound></ErrorList></eSearchResult>",
            "xml",
            "ok_empty",
        ),
        (400, "application/json", b'{"error": "No valid lookup found for symbol BR"}', "json", "http_error"),
        (200, "text/html", b"<html>Message ID#29 Error: Query is empty</html>", "html", "api_error"),
        (200, "application/json", b'{"results": []}', "json", "ok_empty"),
        (200, "application/json", b'{"results": [{"primaryAccession": "P04637"}]}', "json", "ok"),
    ],
)
def test_classify_errors_hidden_in_success(status, ctype, body, fmt, expected):
    assert classify(status, ctype, body, fmt)[0] == expected


def test_record_mode_saves_live_answers_that_replay_then_serves(setup, tmp_path):
    server, snapshot, config, tmp = setup
    recorded = tmp / "recorded"
    cfg = config(transport="record", snapshot_dir=str(snapshot.folder))
    with Store(cfg.store.path).open() as con:
        [call] = add_calls(con, snapshot, ["ENSG00000139618"])
    # record into a fresh folder, from the live stand-in
    cfg = config(transport="record", snapshot_dir=str(recorded))
    with Store(cfg.store.path).open() as con:
        execute_calls(cfg, con, load_catalog(), "r1")
    entries = list(Snapshot(recorded).entries.values())
    assert len(entries) == 1 and entries[0].origin == "real"
    assert "lookup/id/ENSG00000139618" in entries[0].url
    served = len(server.requests)
    replay = config(transport="replay", snapshot_dir=str(recorded), cache_max_age_hours=0)
    with Store(tmp / "replayed.duckdb").open() as con:
        con.execute(f"attach '{cfg.store.path}' as src (read_only)")
        con.execute("insert into candidate_calls select * from src.candidate_calls")
        con.execute("detach src")
        execute_calls(replay, con, load_catalog(), "r2")
        assert outcomes(con) == {call: "ok"}
    assert len(server.requests) == served


def test_no_burst_at_a_batch_boundary_nor_between_stages(setup):
    """Batches of one, then a second stage: every request keeps the host's spacing (1/s here)."""
    server, snapshot, config, tmp = setup
    cfg = config(
        batch_size=1, rate_safety=1.0, hosts={"rest.ensembl.org": {"rate_per_second": 1.0, "max_concurrency": 2}}
    )
    with Store(cfg.store.path).open() as con:
        add_calls(con, snapshot, [f"ENSG{n:011d}" for n in range(2)])
        execute_calls(cfg, con, load_catalog(), "r1")
        first_stage = len(server.requests)
        add_calls(con, snapshot, [f"ENSG{n:011d}" for n in range(10, 12)])
        execute_calls(cfg, con, load_catalog(), "r2")
        assert set(outcomes(con).values()) == {"ok"}
    times = sorted(r[0] for r in server.requests)
    assert first_stage == 2 and len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.85  # 1 s apart (arrival jitter allowed), batch and stage boundaries included


def test_connection_failures_are_not_counted_as_requests(setup):
    """A host on a closed port: its attempts are connection failures in the summary and the stage notes."""
    import socket

    from biocurate.stages import stage_execute

    server, snapshot, config, tmp = setup
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    urls = {**server.base_urls(), "https://rest.uniprot.org": f"http://127.0.0.1:{port}/rest.uniprot.org"}
    cfg = config(base_urls=urls, max_retries=2)
    tool = load_catalog()["get_uniprotkb_entry"]
    args = {"accession": "P04637"}
    with Store(cfg.store.path).open() as con:
        add_calls(con, snapshot, ["ENSG00000139618"])
        insert_new(
            con,
            "candidate_calls",
            [
                {
                    "call_id": content_hash("call", tool.name, args),
                    "function": tool.name,
                    "arguments": json.dumps(args),
                    "template": "test",
                    "database": tool.database,
                    "tool_group": tool.group,
                    "category": tool.category,
                    "valid": True,
                }
            ],
        )
        report = stage_execute(cfg, con, "r1")
        rows = dict(con.execute("select outcome, attempts from api_responses").fetchall())
    assert rows == {"ok": 1, "http_error": 3}  # three attempts at the closed port, each a failure
    assert len(server.requests) == 1
    assert report.requests == 1  # only the request the stand-in answered
    [note] = [n for n in report.notes if "connection failures" in n]
    assert note.startswith("1 requests answered") and "3 connection failures" in note


def test_a_replay_writes_its_answers_a_few_batches_at_a_time_and_the_last_few_too(setup, monkeypatch):
    import biocurate.execute as execute

    server, snapshot, config, tmp = setup
    monkeypatch.setattr(execute, "REPLAY_WRITE_ROWS", 10)
    cfg = config(transport="replay", snapshot_dir=str(snapshot.folder), batch_size=2, cache_max_age_hours=0)
    with Store(cfg.store.path).open() as con:
        calls = add_calls(con, snapshot, [f"ENSG{n:011d}" for n in range(25)])
        summary = execute_calls(cfg, con, load_catalog(), "r1")
        # 25 answers in writes of 10: the 5 held at the end are written too
        assert summary.requested == 25 and summary.outcomes == {"ok": 25}
        assert outcomes(con) == dict.fromkeys(calls, "ok")
    assert server.requests == []
