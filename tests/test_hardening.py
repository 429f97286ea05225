"""No silent failure (issue 17): a run whose service answered nothing fails, a review that could not
run degrades the run, every LLM attempt is accounted and only answers are cached, and no secret is
kept in the store, the summaries, the logs or an artifact, even when an endpoint echoes it."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from biocurate.catalog import load_catalog
from biocurate.config import load_config
from biocurate.jobs import run_job
from biocurate.runs import summary_rows
from biocurate.store import Store, insert_new, upsert
from biocurate.synthesis import synthesize
from tests.conftest import ROOT
from tests.pipeline_helpers import write_config
from tests.standins.llm import LLMStandIn
from tests.store_rows import observed_lookup_calls

SECRET = "sk-live-7f3a9c1e5b2d4f6a8c0e"
CALLS = [
    ("lookup_by_symbol", {"species": "homo_sapiens", "symbol": "BRCA2"}),
    ("lookup_by_symbol", {"species": "homo_sapiens", "symbol": "TP53"}),
    ("lookup_by_symbol", {"species": "homo_sapiens", "symbol": "KRAS"}),
]


@pytest.fixture
def llm():
    server = LLMStandIn().start()
    yield server
    server.stop()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def llm_settings(base_url: str, max_retries: int = 0) -> dict:
    model = {
        "provider": "openai",
        "base_url": base_url,
        "model": "standin-1",
        "max_retries": max_retries,
        "requests_per_second": 1000.0,
        "max_concurrency": 8,
        "price_per_million_prompt": 2.0,
        "price_per_million_completion": 8.0,
    }
    return {"generator": model, "judge": {**model, "model": "standin-judge"}}


def llm_config(tmp_path, base_url: str, max_retries: int = 0, **extra):
    return load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(tmp_path / "s.duckdb"),
            "review.enabled": False,
            **{f"synthesis.{k}": v for k, v in llm_settings(base_url, max_retries).items()},
            **extra,
        },
    )


def rows(path, sql: str) -> list[tuple]:
    with Store(path).open(read_only=True) as con:
        return con.execute(sql).fetchall()


# ---------------------------------------------------------------- the run's status: one rule


def report(stage: str, attempted: int = 0, unanswered: int = 0, unreachable: str | None = None, **failures) -> dict:
    return {
        "stage": stage,
        "rows_in": 0,
        "rows_new": 0,
        "reused": 0,
        "failures": failures,
        "notes": [],
        "seconds": 0.0,
        "attempted": attempted,
        "unanswered": unanswered,
        "service": f"the {stage} service",
        "unreachable": unreachable,
    }


def test_the_run_status_rule():
    from biocurate.runs import run_status

    assert run_status([report("execute", 235, 2, timeout=2), report("synthesize")]) == ("completed", [])
    status, fixes = run_status([report("execute", 235, 0), report("synthesize", 216, 216, http_error=216)])
    assert status == "failed" and len(fixes) == 1
    assert fixes[0].startswith(
        "synthesize: none of the 216 items sent to the synthesize service got an answer (top failure: http_error)"
    )
    status, fixes = run_status([report("review_push", unreachable="Label Studio is not reachable")])
    assert (status, fixes) == ("degraded", ["review_push: Label Studio is not reachable"])
    status, fixes = run_status([report("review_push", unreachable="LS down"), report("judge", 3, 3)])
    assert status == "failed" and len(fixes) == 2  # failed outranks degraded, both named
    assert run_status([report("synthesize", 0, 0)])[0] == "completed"  # nothing asked: nothing failed


# ---------------------------------------------------------------- a generator down for every call


@pytest.mark.usefixtures("prefect_harness")
def test_a_rebuild_whose_generator_is_down_for_every_call_fails_with_what_to_fix_and_exit_1(tmp_path):
    from biocurate.cli import app

    url = closed_port_url()
    config = write_config(
        tmp_path / "c.toml",
        {
            "store": {"path": str(tmp_path / "s.duckdb")},
            "review": {"enabled": False},
            "sample": {"calls_per_function": 1},
            "synthesis": llm_settings(url),
        },
    )
    out = CliRunner().invoke(
        app, ["rebuild", "--config", str(config), "--stage", "sample", "--stage", "execute", "--stage", "synthesize"]
    )
    text = " ".join(out.output.split())
    assert out.exit_code == 1, out.output
    assert "failed: what to fix" in text and "synthesize: none of the" in text and url in text, text
    ((status, error),) = rows(tmp_path / "s.duckdb", "select status, error from runs")
    assert status == "failed" and error.startswith("synthesize: none of the") and url in error
    attempts = rows(tmp_path / "s.duckdb", "select count(*), count(*) filter (where status = 'ok') from llm_calls")
    assert attempts[0][0] > 0 and attempts[0][1] == 0  # every attempt accounted, none an answer


def test_a_partly_failing_stage_completes_the_run_and_counts_the_failures(tmp_path, llm):
    cfg = llm_config(tmp_path, llm.base_url)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
    llm.mode = "error_once"  # the first request gets a 500 and, with no retries, fails
    result = run_job(cfg, "rebuild", ["synthesize"])
    assert result["status"] == "completed" and result["fixes"] == []
    assert result["reports"][0]["attempted"] == 3 and result["reports"][0]["unanswered"] == 1


# ---------------------------------------------------------------- Label Studio down inside a rebuild


def test_label_studio_down_inside_a_rebuild_makes_the_run_degraded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "ls-token")
    url = closed_port_url().removesuffix("/v1")
    cfg = load_config(ROOT / "biocurate.toml", overrides={"store.path": str(tmp_path / "s.duckdb"), "review.url": url})
    result = run_job(cfg, "rebuild", ["review_push"])
    assert result["status"] == "degraded"
    assert result["fixes"][0].startswith("review_push: review skipped") and url in result["fixes"][0]
    ((status, error),) = rows(cfg.store.path, "select status, error from runs")
    assert status == "degraded" and "scripts/label_studio.sh start" in error
    printed = " ".join(capsys.readouterr().out.split())
    assert "degraded: what to fix" in printed and url in printed
    # Review switched off on purpose is not a degradation.
    off = load_config(
        ROOT / "biocurate.toml", overrides={"store.path": str(tmp_path / "s.duckdb"), "review.enabled": False}
    )
    assert run_job(off, "rebuild", ["review_push"])["status"] == "completed"


# ---------------------------------------------------------------- every attempt accounted, answers cached


def test_after_an_outage_the_answers_are_accounted_and_cached(tmp_path, llm):
    cfg = llm_config(tmp_path, llm.base_url, max_retries=1)
    catalog = load_catalog()
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        llm.mode = "unavailable"
        down = synthesize(cfg, con, catalog, "r1")
        assert down.queries_new == 0 and sum(down.failures.values()) == 3
        failed = con.execute("select status, tries, response_text from llm_calls").fetchall()
        assert failed == [("http_error", 2, None)] * 3  # each attempt made 1 + 1 retry requests

        llm.mode = "ok"
        back = synthesize(cfg, con, catalog, "r1")  # the same run asks again: its answers are kept too
        assert back.queries_new > 0 and back.requests == 3
        by_prompt = con.execute(
            "select prompt_hash, list(status order by status), sum(prompt_tokens), sum(cost_usd) "
            "from llm_calls group by prompt_hash"
        ).fetchall()
        assert len(by_prompt) == 3
        for _, statuses, tokens, cost in by_prompt:
            assert statuses == ["http_error", "ok"] and tokens > 0 and cost > 0

        # The answers are the cache: with the questions gone, nothing is asked again.
        con.execute("delete from queries")
        sent = len(llm.requests)
        again = synthesize(cfg, con, catalog, "r2")
        assert again.queries_new == back.queries_new and again.requests == 0 and len(llm.requests) == sent
        assert con.execute("select count(*) from llm_calls").fetchall()[0][0] == 6  # no attempt, no row


# ---------------------------------------------------------------- secrets redacted by value


def store_texts(path) -> str:
    """Every value of every table of the store, as one text."""
    with Store(path).open(read_only=True) as con:
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from information_schema.tables where table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        return "\n".join(repr(con.execute(f"select * from {t}").fetchall()) for t in tables)


@pytest.fixture
def log_lines():
    """The log lines biocurate writes, formatted as its handler formats them."""
    import io
    import logging

    from biocurate.log import LogfmtFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    logger = logging.getLogger("biocurate")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_an_endpoint_echoing_the_key_leaves_no_trace_of_it(tmp_path, llm, monkeypatch, capfd, log_lines):
    monkeypatch.setenv("BIOCURATE_LLM_API_KEY", SECRET)
    cfg = llm_config(tmp_path, llm.base_url)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS[:2])
    assert run_job(cfg, "rebuild", ["synthesize"])["status"] == "completed"
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS[2:])
    llm.mode = "echo_auth"
    # The key starts 6 characters before the error's 200-character cut: masked first, not cut first.
    llm.echo_pad = (
        200 - len('HTTP 401: {"error": {"message": "') - len(" Authorization: Bearer ") - 6 + len("HTTP 401: ")
    )
    result = run_job(cfg, "rebuild", ["synthesize", "judge"])
    assert llm.requests[-1]["auth"] == f"Bearer {SECRET}"  # the key was sent, and echoed back
    assert result["status"] == "failed"  # no judgment and no new question came back

    texts = store_texts(cfg.store.path)
    assert SECRET[:8] not in texts
    errors = rows(cfg.store.path, "select error from llm_calls where status <> 'ok'")
    reasons = rows(cfg.store.path, "select reason from generation_failures")
    assert len(errors) == 1 + 4 and all("Authorization: Bearer ***" in e for (e,) in errors)  # 1 call, 4 questions
    assert len(reasons) == 1 + 4 and all("Authorization: Bearer ***" in r for (r,) in reasons)
    assert {stage for (stage,) in rows(cfg.store.path, "select stage from generation_failures")} == {
        "synthesize",
        "judge",
    }
    printed = capfd.readouterr()
    assert "failed: what to fix" in " ".join(printed.out.split())
    assert "stage finished" in log_lines.getvalue()
    assert SECRET[:8] not in printed.out + printed.err + log_lines.getvalue()


def test_the_summary_table_and_artifact_rows_are_masked(monkeypatch):
    from biocurate.runs import run_status

    monkeypatch.setenv("BIOCURATE_LLM_API_KEY", SECRET)
    leaked = report("execute", 1, 1, **{f"http_error: HTTP 401: key {SECRET} is invalid": 1})
    assert SECRET not in json.dumps(summary_rows([leaked]))
    assert "key *** is invalid" in summary_rows([leaked])[0]["top failure reasons"]
    status, fixes = run_status([leaked])
    assert status == "failed" and SECRET not in " ".join(fixes)


def test_every_text_written_to_the_store_is_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("NCBI_API_KEY", "ncbi-key-0123456789")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "ls-token-abcdef")
    row = {
        "response_id": "x1",
        "call_id": "c1",
        "fingerprint": "f",
        "method": "GET",
        "url": "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi",
        "outcome": "api_error",
        "error": 'API key invalid: {"api-key":"ncbi-key-0123456789"}',
        "transport": "live",
        "fetched_at": "2026-01-01 00:00:00",
        "latency_ms": 1.5,
        "attempts": 1,
    }
    with Store(tmp_path / "s.duckdb").open() as con:
        insert_new(con, "api_responses", [row])
        upsert(
            con,
            "review_tasks",
            [
                {
                    "query_id": "q1",
                    "content_hash": "token ls-token-abcdef",
                    "project_id": 1,
                    "task_id": 1,
                    "priority": 0.5,
                    "pushed_at": "2026-01-01 00:00:00",
                    "updated_at": "2026-01-01 00:00:00",
                }
            ],
            update=["content_hash"],
        )
        stored = con.execute("select error, latency_ms, attempts from api_responses").fetchall()
        task = con.execute("select content_hash from review_tasks").fetchall()
    assert stored == [('API key invalid: {"api-key":"***"}', 1.5, 1)]  # numbers untouched
    assert task == [("token ***",)]


def test_mask_frame_leaves_frames_alone_without_secrets(monkeypatch):
    import polars as pl

    from biocurate.config import mask_frame

    for env in (
        "BIOCURATE_LLM_API_KEY",
        "NCBI_API_KEY",
        "LABEL_STUDIO_API_KEY",
        "BIOCURATE_JUDGE_API_KEY",
        "BIOCURATE_EVAL_API_KEY",
    ):
        monkeypatch.delenv(env, raising=False)
    frame = pl.DataFrame({"a": ["x***y"], "b": [1]})
    assert mask_frame(frame).equals(frame)


class EchoingEutils:
    """A loopback stand-in of E-utilities answering every request as NCBI answers a bad key:
    HTTP 400 with the key repeated in the body."""

    def __enter__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlparse

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                key = parse_qs(urlparse(self.path).query).get("api_key", [""])[0]
                data = json.dumps(
                    {"error": "API key invalid", "api-key": key, "type": "invalid", "status": "unknown"}
                ).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_an_api_echoing_the_ncbi_key_keeps_it_out_of_the_store(tmp_path, monkeypatch):
    import gzip

    from biocurate.execute import execute_calls

    key = "ncbi0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("NCBI_API_KEY", key)
    catalog = load_catalog()
    function = next(t for t in catalog if t.source == "ncbi" and t.group == "esearch").name
    args = {"db": "pubmed", "term": "BRCA2"}
    with EchoingEutils() as url:
        cfg = load_config(
            ROOT / "biocurate.toml",
            overrides={
                "store.path": str(tmp_path / "s.duckdb"),
                "execute.transport": "live",
                "execute.max_retries": 0,
                "execute.base_urls": {"https://eutils.ncbi.nlm.nih.gov": url},
            },
        )
        with Store(cfg.store.path).open() as con:
            insert_new(
                con,
                "candidate_calls",
                [
                    {
                        "call_id": "c1",
                        "function": function,
                        "arguments": json.dumps(args),
                        "template": "t",
                        "database": "NCBI",
                        "tool_group": "esearch",
                        "category": "literature",
                        "valid": True,
                    }
                ],
            )
            summary = execute_calls(cfg, con, catalog, "r1")
            ((body, error, url_stored),) = con.execute("select body, error, url from api_responses").fetchall()
    assert summary.http_requests == 1
    assert key not in gzip.decompress(body).decode() and '"api-key": "***"' in gzip.decompress(body).decode()
    assert key not in (error or "") and key not in url_stored
    assert key[:8] not in store_texts(tmp_path / "s.duckdb")


def test_a_repair_answer_is_served_from_the_cache_too(tmp_path, llm):
    """A reply that stays unparseable after its repair is asked again next run: both its first
    answer and the repair's answer come from the store, no request is sent."""
    cfg = llm_config(tmp_path, llm.base_url)
    catalog = load_catalog()
    llm.mode = "always_malformed"
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS[:1])
        first = synthesize(cfg, con, catalog, "r1")
        assert first.queries_new == 0 and first.requests == 2  # the question, then its repair
        sent = len(llm.requests)
        again = synthesize(cfg, con, catalog, "r2")
    assert again.requests == 0 and len(llm.requests) == sent
    assert sum(again.failures.values()) == 1  # still unparseable, still counted
