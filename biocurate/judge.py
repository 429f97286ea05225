"""Judging: is the call's observation an informative answer to the question?

The offline judge (``provider = "template"``, model ``rules-v1``) scores four checks: the
call's arguments mentioned as their kinds require (``catalog/mentions.yaml``: identifiers
verbatim, a species by any name, a query string by the entities in it), no API detail leaked,
a plausible length, and an informative observation. An LLM judge can be configured separately
(``[synthesis.judge]``): any
OpenAI-compatible endpoint, through ``biocurate.llm``, asked with ``prompts/judge_v2.md`` (which
also checks that the question is natural and mentions the call's arguments as it should).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import duckdb
import httpx

from biocurate.catalog import Catalog
from biocurate.config import Config, secret
from biocurate.hashing import canonical_json, content_hash
from biocurate.judging import JARGON, JudgeSummary, parse_judgment
from biocurate.llm import BATCH, ChatClient, ask_and_parse, failure_row, load_prompt
from biocurate.mentions import Mention, mention_rules, missing_mentions
from biocurate.set_judge import judge_sets, merge
from biocurate.set_rules import informative
from biocurate.store import insert_new, release
from biocurate.wording import wording

RULES_VERSION = "rules-v3"  # v2: arguments mentioned by kind (was: identifiers verbatim); v3: an observation is
# informative when it holds a fact (was: 20 characters or more, which rejected {"ping":1})


def rule_checks(
    text: str, function: str, mentions: tuple[Mention, ...], observation: str, params: list[str]
) -> dict[str, bool]:
    words = len(text.split())
    leaked = (
        function.lower() in text.lower()
        or JARGON.search(text) is not None
        or any(re.search(rf"\b{re.escape(p)}\b", text) for p in params if "_" in p)
    )
    return {
        "arguments mentioned": not missing_mentions(text, mentions),
        "no API details leaked": not leaked,
        "natural length": 4 <= words <= 60,
        "observation informative": informative(observation),
    }


# Questions a judge reads at a time (with their observations: most of a question's bytes), and
# rules judgments written at a time: memory does not grow with the number of questions.
JUDGE_BATCH = 5_000


def unjudged(
    con: duckdb.DuckDBPyConnection, model: str, version: str | None = None, batch: int = JUDGE_BATCH
) -> Iterator[list[tuple]]:
    """(query_id, text, function, arguments, observation) of single-call queries this judge model has
    not judged (under this rules ``version``, when given: changed rules judge every query again), in
    query order, ``batch`` at a time: the ids are found first, each batch's rows are read when it is
    due. Questions about call sets are judged by ``biocurate.set_judge``."""
    ids = con.sql(
        """
        select q.query_id from query_context q
        where q.kind = 'single' and not exists (
            select 1 from judgments j
            where j.query_id = q.query_id and j.model = ? and (? is null or j.prompt_version = ?)
        )
        order by q.query_id
        """,
        params=[model, version, version],
    ).pl()["query_id"]
    for start in range(0, len(ids), batch):
        con.register("_unjudged", ids.slice(start, batch).to_frame())
        try:
            rows = con.execute(
                "select q.query_id, q.text, q.function, q.arguments, q.observation "
                "from query_context q join _unjudged using (query_id) order by q.query_id"
            ).fetchall()
        finally:
            con.unregister("_unjudged")
        yield rows


def judge_with_llm(config: Config, con, catalog: Catalog, run_id: str):
    """Ask the configured judge model (``prompts/judge_v2.md``) about every query it has not judged."""
    cfg = config.synthesis.judge
    prompt_dir = config.path(config.synthesis.prompt_dir)
    prompt, repair = load_prompt(prompt_dir, "judge_v2"), load_prompt(prompt_dir, "repair_v1")
    words = wording(config.path(config.sample.catalog_dir))
    rules = mention_rules(config.path(config.sample.catalog_dir), config.path(config.sample.seeds_dir))
    chat = ChatClient(cfg, secret("judge_api_key") or secret("llm_api_key"), con, run_id)
    # BATCH prompts at a time, from the questions read JUDGE_BATCH at a time
    todo = (part[i : i + BATCH] for part in unjudged(con, cfg.model) for i in range(0, len(part), BATCH))
    summary = JudgeSummary()
    shape = '{"verdict": "accept", "score": 0.9, "reason": "..."}'

    async def batch(rows):
        rendered = [
            (
                qid,
                prompt.render(
                    query=text,
                    description=catalog[fn].function.description,
                    call=canonical_json({"name": fn, "arguments": json.loads(args)}),
                    observation=obs,
                    **words.prompt_hints(catalog[fn], json.loads(args), rules.mentions(catalog[fn], json.loads(args))),
                ),
            )
            for qid, text, fn, args, obs in rows
        ]
        cache = chat.cached([chat.prompt_hash(chat.request_body(t)) for _, t in rendered])
        async with httpx.AsyncClient() as client:
            return rendered, await asyncio.gather(
                *(
                    ask_and_parse(
                        chat, client, text, "judge", prompt.version, qid, cache, parse_judgment, shape, repair
                    )
                    for qid, text in rendered
                )
            )

    for due in todo:
        release(con)  # the store is free while the judge answers
        rendered, results = asyncio.run(batch(due))
        rows, failures = [], []
        for (query_id, _), (parsed, failure) in zip(rendered, results, strict=False):
            if failure:
                failures.append(failure_row("judge", query_id, failure[0], failure[1], run_id))
                summary.failed += 1
                continue
            verdict, score, reason = parsed
            rows.append(
                {
                    "judgment_id": content_hash("judgment", query_id, "openai", cfg.model, prompt.version),
                    "query_id": query_id,
                    "judge": "openai",
                    "model": cfg.model,
                    "prompt_version": prompt.version,
                    "verdict": verdict,
                    "score": score,
                    "reason": reason,
                    "run_id": run_id,
                }
            )
            summary.verdicts[verdict] = summary.verdicts.get(verdict, 0) + 1
        chat.flush()
        insert_new(con, "generation_failures", failures)
        summary.judged += len(rows)
        summary.new += insert_new(con, "judgments", rows)
    summary.requests = chat.requests_made
    return summary


def judge(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> JudgeSummary:
    """Judge every unjudged question: single calls here, call sets by ``biocurate.set_judge``."""
    return merge(judge_single(config, con, catalog, run_id), judge_sets(config, con, catalog, run_id))


def judge_single(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> JudgeSummary:
    cfg = config.synthesis.judge
    if cfg.provider != "template":
        return judge_with_llm(config, con, catalog, run_id)
    rules = mention_rules(config.path(config.sample.catalog_dir), config.path(config.sample.seeds_dir))
    summary = JudgeSummary()
    for todo in unjudged(con, cfg.model, RULES_VERSION):
        rows = []
        for query_id, text, function, arguments, observation in todo:
            tool = catalog[function]
            checks = rule_checks(
                text, function, rules.mentions(tool, json.loads(arguments)), observation, list(tool.function.params)
            )
            score = sum(checks.values()) / len(checks)
            verdict = "accept" if score == 1 else ("unsure" if score >= 0.75 else "reject")
            failed = [name for name, ok in checks.items() if not ok]
            reason = "all checks passed" if not failed else "failed: " + "; ".join(failed)
            rows.append(
                {
                    "judgment_id": content_hash("judgment", query_id, "rules", cfg.model, RULES_VERSION),
                    "query_id": query_id,
                    "judge": "rules",
                    "model": cfg.model,
                    "prompt_version": RULES_VERSION,
                    "verdict": verdict,
                    "score": score,
                    "reason": reason,
                    "run_id": run_id,
                }
            )
            summary.verdicts[verdict] = summary.verdicts.get(verdict, 0) + 1
        summary.judged += len(rows)
        summary.new += insert_new(con, "judgments", rows)  # written as it goes: a crash keeps what was done
    return summary
