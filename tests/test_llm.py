"""Synthesis and judging through an OpenAI-compatible endpoint (a loopback stand-in)."""

from __future__ import annotations

import asyncio
import time

import pytest

from biocurate.catalog import load_catalog
from biocurate.config import load_config
from biocurate.judge import judge, parse_judgment
from biocurate.llm import ReplyError, load_prompt, parse_json_reply
from biocurate.ratelimit import HostLimiter, retry_after_seconds
from biocurate.store import Store
from biocurate.synthesis import GENERATE_PROMPT, parse_queries, render_generate_prompt, synthesize
from biocurate.wording import wording
from tests.conftest import ROOT
from tests.standins.llm import LLMStandIn
from tests.store_rows import observed_lookup_calls

CALLS = [
    ("lookup_by_symbol", {"species": "homo_sapiens", "symbol": "BRCA2"}),
    ("lookup_by_symbol", {"species": "homo_sapiens", "symbol": "TP53"}),
]


@pytest.fixture
def llm():
    server = LLMStandIn().start()
    yield server
    server.stop()


def make_config(tmp_path, llm, max_retries=2):
    model = {
        "provider": "openai",
        "base_url": llm.base_url,
        "model": "standin-1",
        "price_per_million_prompt": 2.0,
        "price_per_million_completion": 8.0,
        "max_retries": max_retries,
    }
    return load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(tmp_path / "s.duckdb"),
            "synthesis.generator": model,
            "synthesis.judge": {**model, "model": "standin-judge"},
        },
    )


def test_queries_and_judgments_are_stored_with_accounting_and_cached(tmp_path, llm, monkeypatch):
    monkeypatch.setenv("BIOCURATE_LLM_API_KEY", "sk-test-secret-123")
    cfg = make_config(tmp_path, llm)
    catalog = load_catalog()
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        first = synthesize(cfg, con, catalog, "r1")
        judged = judge(cfg, con, catalog, "r1")
        queries = con.execute(
            "select text, generator, model, prompt_version, temperature, seed from queries"
        ).fetchall()
        calls = con.execute(
            "select purpose, prompt_tokens, completion_tokens, cost_usd, request from llm_calls"
        ).fetchall()
        verdicts = con.execute("select verdict, score, model from judgments").fetchall()
    assert first.queries_new == 4 and first.requests == 2
    assert judged.new == 4 and judged.requests == 4
    assert {q[1:4] for q in queries} == {
        ("openai", "standin-1", load_prompt(ROOT / "prompts", GENERATE_PROMPT).version)
    }
    # the stand-in writes what the prompt's mapping says: the symbol verbatim, the species in words
    assert all(("BRCA2" in q[0] or "TP53" in q[0]) and "human" in q[0] and "homo_sapiens" not in q[0] for q in queries)
    assert all(q[4] == 0.7 and q[5] == 7 for q in queries)
    assert len(calls) == 6 and all(c[1] > 0 and c[2] > 0 for c in calls)
    expected = (calls[0][1] * 2.0 + calls[0][2] * 8.0) / 1e6
    assert calls[0][3] == pytest.approx(expected)
    assert set(verdicts) == {("accept", 0.9, "standin-judge")}
    # the key travels only in the Authorization header, never into the store
    assert llm.requests[0]["auth"] == "Bearer sk-test-secret-123"
    assert not any("sk-test-secret-123" in c[4] for c in calls)

    served = len(llm.requests)
    with Store(cfg.store.path).open() as con:
        con.execute("delete from queries; delete from judgments")  # force both stages to redo their work
        again = synthesize(cfg, con, catalog, "r2")
        rejudged = judge(cfg, con, catalog, "r2")
    assert len(llm.requests) == served  # identical prompts: answered from the cache
    assert again.queries_new == 4 and again.requests == 0 and rejudged.requests == 0


def test_fenced_json_is_parsed_without_a_repair(tmp_path, llm):
    llm.mode = "fenced"
    cfg = make_config(tmp_path, llm)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        summary = synthesize(cfg, con, load_catalog(), "r1")
        calls = con.execute("select purpose, response_text from llm_calls").fetchall()
    assert summary.queries_new == 4 and summary.failures == {}
    # the replies were fenced, and read as they came: no repair was asked for
    assert [c[0] for c in calls] == ["generate", "generate"]
    assert all(c[1].startswith("```json") for c in calls)


def test_a_500_is_retried(tmp_path, llm):
    llm.mode = "error_once"
    cfg = make_config(tmp_path, llm)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        summary = synthesize(cfg, con, load_catalog(), "r1")
        statuses = [s for (s,) in con.execute("select status from llm_calls").fetchall()]
    assert summary.queries_new == 4 and summary.failures == {}
    assert len(llm.requests) == 3 and summary.requests == 3  # the 500, its retry, the other call
    assert statuses == ["ok", "ok"]


def test_a_500_without_retries_left_is_recorded_as_a_failure(tmp_path, llm):
    llm.mode = "error_once"
    cfg = make_config(tmp_path, llm, max_retries=0)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        summary = synthesize(cfg, con, load_catalog(), "r1")
        calls = con.execute("select status, error from llm_calls where status != 'ok'").fetchall()
        failures = con.execute("select stage, reason from generation_failures").fetchall()
    assert summary.queries_new == 2 and summary.failures == {"http_error": 1}
    assert len(calls) == 1 and calls[0][0] == "http_error" and calls[0][1].startswith("HTTP 500")
    assert len(failures) == 1 and failures[0][0] == "synthesize" and "HTTP 500" in failures[0][1]


def test_malformed_answer_is_repaired(tmp_path, llm):
    llm.mode = "malformed_then_ok"
    cfg = make_config(tmp_path, llm)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        summary = synthesize(cfg, con, load_catalog(), "r1")
        purposes = sorted(r[0] for r in con.execute("select purpose from llm_calls").fetchall())
    assert summary.queries_new == 4
    assert purposes == ["generate", "generate", "repair", "repair"]


def test_unrepairable_answer_is_a_failure_with_raw_text_not_a_query(tmp_path, llm):
    llm.mode = "always_malformed"
    cfg = make_config(tmp_path, llm)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        summary = synthesize(cfg, con, load_catalog(), "r1")
        failures = con.execute("select stage, reason, raw_text from generation_failures").fetchall()
        n_queries = con.execute("select count(*) from queries").fetchall()[0][0]
    assert n_queries == 0
    assert len(failures) == 2 and summary.failures
    assert all(f[0] == "synthesize" and "unparseable" in f[1] and "queries" in f[2] for f in failures)


def rules():
    from biocurate.mentions import mention_rules

    return mention_rules(ROOT / "catalog", ROOT / "data" / "seeds")


def test_render_and_parse_are_separate_and_strict():
    prompt = load_prompt(ROOT / "prompts", GENERATE_PROMPT)
    tool = load_catalog()["lookup_by_symbol"]
    args = {"species": "danio_rerio", "symbol": "tp53"}
    text = render_generate_prompt(prompt, tool, args, "{}", 2, wording(), "", rules().mentions(tool, args))
    assert "  - tp53 (symbol)" in text.split("Keep these verbatim:")[1].split("- WORDS")[0]
    assert "species = 'danio_rerio': say 'zebrafish'" in text
    assert "{k}" not in text and "{keep}" not in text and '"param_analysis"' in text
    assert parse_json_reply('sure! {"queries": []} hope it helps') == {"queries": []}
    assert parse_json_reply('```json\n{"a": 1}\n```') == {"a": 1}
    with pytest.raises(ReplyError):
        parse_json_reply("no json here")
    with pytest.raises(ReplyError):
        parse_queries({"queries": [{"style": "broad"}]}, 2)
    with pytest.raises(ReplyError):
        parse_judgment({"verdict": "maybe", "score": 0.5})
    with pytest.raises(ReplyError):
        parse_judgment({"verdict": "accept", "score": 3})
    assert parse_judgment({"verdict": "reject", "score": "0.2", "reason": "x"}) == ("reject", 0.2, "x")


def test_generator_prompt_maps_each_argument_kind():
    """Phase 1 of the prompt: query languages never verbatim, their entities named; species and
    populations in words; identifiers kept; formats and flags left unsaid."""
    catalog, words = load_catalog(), wording()
    prompt = load_prompt(ROOT / "prompts", GENERATE_PROMPT)

    def parts(function, args):
        mentions = rules().mentions(catalog[function], args)
        text = render_generate_prompt(prompt, catalog[function], args, "{}", 2, words, "", mentions)
        keep = text.split("Keep these verbatim:")[1].split("- WORDS")[0]
        said = text.split("Say these in words:")[1].split("- OMIT")[0]
        unsaid = text.split("Usually unsaid here:")[1].split("PHASE 2")[0]
        return keep, said, unsaid

    keep, said, unsaid = parts(
        "stream_uniprotkb", {"query": "gene:CFTR AND organism_id:9606 AND reviewed:true", "includeIsoform": True}
    )
    assert keep.strip() == "(none)"
    assert (
        "never write it as it is; mention CFTR (gene symbol, verbatim), reviewed (review status), human (species)"
        in said
    )
    assert "includeIsoform = yes" in unsaid
    keep, said, _ = parts("esearch", {"db": "gene", "term": "INS[gene] AND human[orgn]"})
    assert "mention INS (gene symbol, verbatim), human (species)" in said and "say 'NCBI Gene'" in said
    keep, said, _ = parts(
        "get_ld_around_variant",
        {"species": "homo_sapiens", "id": "rs1042522", "r2": 0.8, "population_name": "1000GENOMES:phase_3:YRI"},
    )
    assert "rs1042522 (id)" in keep
    assert "say 'YRI' (or Yoruba in Ibadan, Nigeria)" in said and "say 'an r2 of at least 0.8'" in said
    _, said, _ = parts("ecitmatch", {"bdata": "Biochem J|2002|368|377|Griffin M|citation_1|"})
    assert "first author Griffin M" in said and "year 2002" in said


def test_generator_prompt_follows_the_mention_rules():
    """Given the call's mention requirements, the mapping says what they require: a target
    species to be named, a species an rsID already pins may be left unsaid."""
    from biocurate.mentions import mention_rules

    catalog, words, rules = load_catalog(), wording(), mention_rules(ROOT / "catalog", ROOT / "data" / "seeds")
    prompt = load_prompt(ROOT / "prompts", GENERATE_PROMPT)

    def said(function, args):
        text = render_generate_prompt(
            prompt, catalog[function], args, "{}", 2, words, "", rules.mentions(catalog[function], args)
        )
        return text.split("Say these in words:")[1].split("- OMIT")[0]

    homology = {"species": "homo_sapiens", "symbol": "BRCA2", "target_species": "mus_musculus"}
    assert "target_species = 'mus_musculus': say 'mouse'" in said("get_homology_by_symbol", homology)
    ld = {"species": "homo_sapiens", "id": "rs1042522", "population_name": "1000GENOMES:phase_3:CEU"}
    assert "species = 'homo_sapiens': if you mention it, say 'human'" in said("get_ld_around_variant", ld)
    region = {"species": "homo_sapiens", "region_name": "X"}
    assert "region_name = 'X': say 'chromosome X'" in said("get_info_assembly_region", region)


def test_generator_reply_needs_its_argument_mapping():
    """A reply without phase 1 is not accepted for a call with arguments (the repair asks again)."""
    reply = {"queries": [{"style": "broad", "text": "Where is the human BRCA2 gene?"}]}
    with pytest.raises(ReplyError, match="param_analysis"):
        parse_queries(reply, 2, {"species": "homo_sapiens", "symbol": "BRCA2"})
    with pytest.raises(ReplyError, match="param_analysis"):
        parse_queries({**reply, "param_analysis": []}, 2, {"symbol": "BRCA2"})
    analysed = {**reply, "param_analysis": {"species": "WORDS: human", "symbol": "KEEP"}}
    assert parse_queries(analysed, 2, {"species": "homo_sapiens", "symbol": "BRCA2"}) == [
        ("broad", "Where is the human BRCA2 gene?")
    ]
    assert parse_queries(reply, 2, {}) == [("broad", "Where is the human BRCA2 gene?")]  # no arguments, no phase 1


def test_judge_prompt_checks_mentions_and_naturalness(tmp_path, llm):
    cfg = make_config(tmp_path, llm)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        synthesize(cfg, con, load_catalog(), "r1")
        judge(cfg, con, load_catalog(), "r1")
    prompts = [r["body"]["messages"][-1]["content"] for r in llm.requests]
    judged = [p for p in prompts if "You judge training data" in p]
    assert len(judged) == 4
    for text in judged:
        assert "- verbatim (same case and punctuation):\n  - BRCA2 (symbol)" in text or "  - TP53 (symbol)" in text
        assert "species = 'homo_sapiens': say 'human'" in text
        assert "Natural: the question has none of these" in text and "For my project," in text


def test_429_with_retry_after_is_waited_out(tmp_path, llm):
    llm.mode = "rate_limited_once"
    cfg = make_config(tmp_path, llm)
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        started = time.monotonic()
        summary = synthesize(cfg, con, load_catalog(), "r1")
        elapsed = time.monotonic() - started
    assert summary.queries_new == 4
    assert elapsed >= 1.0  # the server's Retry-After: 1
    assert len(llm.requests) == 3  # one 429, then one answer per call


def test_a_timeout_is_retried(tmp_path, llm):
    llm.mode = "slow_once"
    cfg = make_config(tmp_path, llm)
    cfg = cfg.model_copy(
        update={
            "synthesis": cfg.synthesis.model_copy(
                update={"generator": cfg.synthesis.generator.model_copy(update={"timeout_seconds": 0.5})}
            )
        }
    )
    with Store(cfg.store.path).open() as con:
        observed_lookup_calls(con, CALLS)
        summary = synthesize(cfg, con, load_catalog(), "r1")
        statuses = [s for (s,) in con.execute("select status from llm_calls").fetchall()]
    assert summary.queries_new == 4
    assert statuses == ["ok", "ok"]


def test_one_limiter_paces_contended_requests_across_event_loops():
    """Each batch runs in its own asyncio.run: the limiter's lock and slots follow the loop, its pacing carries over."""
    limiter = HostLimiter(rate_per_second=20, max_concurrency=1)

    async def batch():
        async def one():
            async with limiter.slots:  # contended: a lock of another loop would raise here
                await limiter.wait_turn()

        await asyncio.gather(*(one() for _ in range(4)))

    started = time.monotonic()
    asyncio.run(batch())
    asyncio.run(batch())
    assert time.monotonic() - started >= 7 * 0.05 - 0.01  # 8 turns, evenly spaced


def test_retry_after_in_seconds_or_as_a_date():
    from email.utils import formatdate

    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(None) is None
    assert 5 < retry_after_seconds(formatdate(time.time() + 10, usegmt=True)) <= 10
