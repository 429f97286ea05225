"""NCBI BLAST's submit/poll protocol against the loopback stand-in: executed, not skipped."""

from __future__ import annotations

import json

import pytest

from biocurate.catalog import build_request, load_catalog
from biocurate.config import load_config
from biocurate.execute import execute_calls
from biocurate.hashing import content_hash
from biocurate.observations.blast import BlastRejected, parse_submission
from biocurate.snapshot import Snapshot, fingerprint
from biocurate.store import Store, insert_new
from tests.conftest import ROOT
from tests.standins.api import ApiStandIn

URL = "https://blast.ncbi.nlm.nih.gov/Blast.cgi"
PUT = b"<html><body><!--QBlastInfoBegin\n    RID = TESTRID0001\n    RTOE = 1\nQBlastInfoEnd\n--></body></html>"
INFO = "<html><!--QBlastInfoBegin\n\tStatus={}\nQBlastInfoEnd\n--></html>"
REPORT = b"""BLASTP 2.16.0+
RID: TESTRID0001
Database: Non-redundant UniProtKB/SwissProt sequences
Length=76
                                                                      Score     E
Sequences producing significant alignments:                          (Bits)  Value

sp|P0CG48.1| RecName: Full=Polyubiquitin-C                            154     2e-47

ALIGNMENTS
"""


def setup_job(tmp_path, statuses, put: bytes = PUT):
    snapshot = Snapshot(tmp_path / "snap")
    tool = load_catalog()["blast"]
    args = {
        "query": "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG",
        "database": "swissprot",
        "program": "blastp",
    }
    req = build_request(tool, args)
    snapshot.add(
        method="POST",
        url=URL,
        params=req.params,
        body=req.form,
        status=200,
        content_type="text/html",
        content=put,
        file="ncbi/put.html",
        origin="illustrative",
        provenance="test",
    )
    info_params = [("CMD", "Get"), ("FORMAT_OBJECT", "SearchInfo"), ("RID", "TESTRID0001")]
    snapshot.add(
        method="GET",
        url=URL,
        params=info_params,
        body=None,
        status=200,
        content_type="text/html",
        content=INFO.format("WAITING").encode(),
        file="ncbi/info.html",
        origin="illustrative",
        provenance="test",
    )
    snapshot.add(
        method="GET",
        url=URL,
        params=[("CMD", "Get"), ("FORMAT_TYPE", "Text"), ("RID", "TESTRID0001")],
        body=None,
        status=200,
        content_type="text/plain",
        content=REPORT,
        file="ncbi/report.txt",
        origin="illustrative",
        provenance="test",
    )
    server = ApiStandIn(snapshot).start()
    server.sequences[fingerprint("GET", URL, info_params)] = [INFO.format(s).encode() for s in statuses]
    cfg = load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(tmp_path / "s.duckdb"),
            "execute.transport": "live",
            "execute.base_urls": server.base_urls(),
            "execute.blast_poll_seconds": 0.3,
            "execute.blast_max_wait_seconds": 3.0,
            "execute.hosts": {"blast.ncbi.nlm.nih.gov": {"rate_per_second": 50, "max_concurrency": 1}},
        },
    )
    call = {
        "call_id": content_hash("call", "blast", args),
        "function": "blast",
        "arguments": json.dumps(args),
        "template": "t",
        "database": "NCBI",
        "tool_group": "blast",
        "category": "general_biology",
        "valid": True,
    }
    return server, cfg, call


def run_job(tmp_path, statuses, put: bytes = PUT) -> tuple[ApiStandIn, dict, list[str]]:
    """setup_job, then the executor on its call: (the stopped stand-in with the requests it saw,
    the call's api_responses row, the observation texts)."""
    server, cfg, call = setup_job(tmp_path, statuses, put)
    try:
        with Store(cfg.store.path).open() as con:
            insert_new(con, "candidate_calls", [call])
            execute_calls(cfg, con, load_catalog(), "r1")
            [response] = con.sql("select * from api_responses").pl().to_dicts()
            texts = [text for (text,) in con.execute("select text from observations").fetchall()]
    finally:
        server.stop()
    return server, response, texts


def test_blast_job_is_submitted_waited_polled_and_retrieved(tmp_path):
    server, response, texts = run_job(tmp_path, ["WAITING", "WAITING", "READY"])
    assert response["outcome"] == "ok" and response["attempts"] == 5
    obs = json.loads(texts[0])
    assert obs["rid"] == "TESTRID0001" and obs["hits"][0]["id"] == "sp|P0CG48.1|"
    paths = [(r[2], r[0]) for r in server.requests]
    assert len(paths) == 5  # put, three polls, report
    times = [t for _, t in paths]
    assert times[1] - times[0] >= 1.0  # waited the job's RTOE before the first poll
    assert all(b - a >= 0.3 for a, b in zip(times[1:4], times[2:4], strict=False))  # polls not too often


def test_blast_job_that_never_finishes_times_out_with_its_rid(tmp_path):
    _, response, texts = run_job(tmp_path, ["WAITING"])
    assert response["outcome"] == "timeout" and "TESTRID0001" in response["error"]
    assert texts == []


REAL_ERROR_PAGE = (ROOT / "tests/data/real_responses/ncbi/blast-put__error_msgid29_html.txt").read_bytes()


def test_submission_reply_is_parsed_strictly():
    assert parse_submission(PUT.decode()) == ("TESTRID0001", 1)
    with pytest.raises(BlastRejected, match="Message ID#29 Error: Query string not found in the CGI context"):
        parse_submission(REAL_ERROR_PAGE.decode("utf-8"))  # its QBlastInfo block has 'RID =' and 'RTOE =' empty
    for page in (
        "<!--QBlastInfoBegin\n    RID =\n    RTOE = 13\nQBlastInfoEnd-->",  # no job ID
        "<!--QBlastInfoBegin\n    RID = 8V3ZJ8XH013\nQBlastInfoEnd-->",  # no time estimate
        "<html>RID = 8V3ZJ8XH013 RTOE = 13</html>",
    ):  # not in a QBlastInfo block
        with pytest.raises(BlastRejected):
            parse_submission(page)


def test_real_error_page_is_an_api_error_with_the_servers_message_and_nothing_is_polled(tmp_path):
    server, response, texts = run_job(tmp_path, ["READY"], put=REAL_ERROR_PAGE)
    assert response["outcome"] == "api_error"
    assert "Message ID#29 Error: Query string not found in the CGI context" in response["error"]
    assert texts == []
    assert [r[3] for r in server.requests] == [200]  # the submission only: no RID was issued, none is polled


def test_unknown_job_during_polling_is_final_and_fetches_no_report(tmp_path):
    server, response, _ = run_job(tmp_path, ["WAITING", "UNKNOWN"])
    assert response["outcome"] == "api_error" and "TESTRID0001" in response["error"]
    assert "UNKNOWN" in response["error"]
    assert len(server.requests) == 3  # put, two polls; no report asked for


def test_retrieving_a_job_that_is_not_finished_is_never_an_observation(tmp_path):
    """blast_retrieve on a running job gets a status page: no report yet (ok_empty), never ok."""
    catalog = load_catalog()
    tool = catalog["blast_retrieve"]
    snapshot = Snapshot(tmp_path / "snap")
    calls = []
    for rid, status in (("WAITRID0001", "WAITING"), ("GONERID0001", "UNKNOWN")):
        args = {"rid": rid}
        req = build_request(tool, args)
        snapshot.add(
            method="GET",
            url=URL,
            params=req.params,
            body=None,
            status=200,
            content_type="text/html",
            content=INFO.format(status).encode(),
            file=f"ncbi/{rid}.html",
            origin="illustrative",
            provenance="test",
        )
        calls.append(
            {
                "call_id": content_hash("call", tool.name, args),
                "function": tool.name,
                "arguments": json.dumps(args),
                "template": "t",
                "database": "NCBI",
                "tool_group": "blast",
                "category": "genomics",
                "valid": True,
            }
        )
    cfg = load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(tmp_path / "s.duckdb"),
            "execute.transport": "replay",
            "execute.snapshot_dir": str(tmp_path / "snap"),
        },
    )
    with Store(cfg.store.path).open() as con:
        insert_new(con, "candidate_calls", calls)
        execute_calls(cfg, con, catalog, "r1")
        rows = dict(
            con.execute(
                "select c.arguments, r.outcome from api_responses r join candidate_calls c using (call_id)"
            ).fetchall()
        )
        observations = con.execute("select count(*) from observations").fetchall()[0][0]
    assert rows == {json.dumps({"rid": "WAITRID0001"}): "ok_empty", json.dumps({"rid": "GONERID0001"}): "api_error"}
    assert observations == 0
