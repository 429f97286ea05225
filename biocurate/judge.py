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

import json
import re
from collections.abc import Iterator
from functools import lru_cache, partial
from pathlib import Path

import duckdb
import polars as pl

from biocurate.catalog import Catalog
from biocurate.config import Config, secret
from biocurate.hashing import canonical_json, content_hash
from biocurate.judging import JARGON, JudgeSummary, judge_with_model, parse_judgment
from biocurate.llm import BATCH, Ask, ChatClient, load_prompt
from biocurate.mentions import Mention, as_rows, mention_rules, missing_mentions, rules_dirs, rules_for
from biocurate.set_judge import judge_sets
from biocurate.set_rules import informative
from biocurate.store import EVERY_CALL, Part, call_parts, insert_new, observation_texts
from biocurate.wording import wording
from biocurate.workers import TURNS_MIN_ITEMS, in_turns

RULES_VERSION = "rules-v3"  # v2: arguments mentioned by kind (was: identifiers verbatim); v3: an observation is
# informative when it holds a fact (was: 20 characters or more, which rejected {"ping":1})


def rule_checks(
    text: str, function: str, mentions: tuple[Mention, ...], observation: str, params: list[str]
) -> dict[str, bool]:
    return question_checks(text, function, as_rows(mentions), leak_pattern(tuple(params))) | {
        "observation informative": informative(observation)
    }


@lru_cache(maxsize=4096)
def leak_pattern(params: tuple[str, ...]) -> re.Pattern | None:
    """One search for the parameter names a question must not hold (those with an underscore)."""
    named = [re.escape(p) for p in params if "_" in p]
    return re.compile(rf"\b(?:{'|'.join(named)})\b") if named else None


def question_checks(text: str, function: str, mention_rows: list, leaks: re.Pattern | None) -> dict[str, bool]:
    """The checks of the question itself (``rule_checks`` but the observation's): its call's
    mention rows (``mentions.as_rows``) and parameter names (``leak_pattern``) made once per call."""
    words = len(text.split())
    leaked = (
        function.lower() in text.lower()
        or JARGON.search(text) is not None
        or (leaks is not None and leaks.search(text) is not None)
    )
    return {
        "arguments mentioned": not missing_mentions(text, mention_rows),
        "no API details leaked": not leaked,
        "natural length": 4 <= words <= 60,
    }


# Questions a judge reads at a time (with their observations: most of a question's bytes), and
# rules judgments written at a time: memory does not grow with the number of questions. At 100k
# calls, 40,000 rather than 20,000 took the rules judge 22.9 -> 20.0 s (each batch opens and
# closes the store) and its peak, with its worker, 106 MB higher: still below the quality stage's.
JUDGE_BATCH = 40_000


def unjudged_ids(
    con: duckdb.DuckDBPyConnection, model: str, version: str | None = None, part: Part = EVERY_CALL
) -> pl.DataFrame:
    """(query_id, call_id, observation_id) of the single-call queries this judge model has not
    judged (under this rules ``version``, when given: changed rules judge every query again), of
    the calls of ``part``, in query order. Questions about call sets are judged by
    ``biocurate.set_judge``."""
    return con.sql(
        f"""
        select q.query_id, q.call_id, q.observation_id from query_context q
        where q.kind = 'single' and {part.where("q.call_id")} and not exists (
            select 1 from judgments j
            where j.query_id = q.query_id and j.model = ? and (? is null or j.prompt_version = ?)
        )
        order by q.query_id
        """,
        params=[model, version, version],
    ).pl()


def judging_rows(con: duckdb.DuckDBPyConnection, ids: pl.DataFrame, batch: int = JUDGE_BATCH) -> Iterator[list[tuple]]:
    """(query_id, text, function, arguments, observation) of ``ids`` (rows of ``unjudged_ids``),
    in their order, ``batch`` at a time: each batch's questions, calls and observations are read
    when it is due, each from its own table (every call and observation once)."""
    for start in range(0, len(ids), batch):
        part = ids.slice(start, batch)
        con.register("_unjudged", part)
        try:
            texts = dict(
                con.execute("select q.query_id, q.text from queries q join _unjudged using (query_id)").fetchall()
            )
            calls = {
                call_id: (function, arguments)
                for call_id, function, arguments in con.execute(
                    "select c.call_id, c.function, c.arguments from candidate_calls c "
                    "where c.call_id in (select call_id from _unjudged)"
                ).fetchall()
            }
        finally:
            con.unregister("_unjudged")
        observations = observation_texts(con, part["observation_id"])
        yield [
            (query_id, texts[query_id], *calls[call_id], observations[observation_id])
            for query_id, call_id, observation_id in part.iter_rows()
        ]


def unjudged(
    con: duckdb.DuckDBPyConnection, model: str, version: str | None = None, batch: int = JUDGE_BATCH
) -> Iterator[list[tuple]]:
    """(query_id, text, function, arguments, observation) of single-call queries this judge model has
    not judged (``unjudged_ids``), a part of the calls at a time and in query order within it,
    ``batch`` at a time."""
    for part in call_parts(con):
        yield from judging_rows(con, unjudged_ids(con, model, version, part), batch)


def judge_with_llm(config: Config, con, catalog: Catalog, run_id: str):
    """Ask the configured judge model (``prompts/judge_v2.md``) about every query it has not judged."""
    cfg = config.synthesis.judge
    prompt_dir = config.path(config.synthesis.prompt_dir)
    prompt, repair = load_prompt(prompt_dir, "judge_v2"), load_prompt(prompt_dir, "repair_v1")
    words = wording(config.path(config.sample.catalog_dir))
    rules = rules_for(config)
    chat = ChatClient(cfg, secret("judge_api_key") or secret("llm_api_key"), con, run_id)

    def asks(rows) -> list[Ask]:
        return [
            Ask(
                qid,
                prompt.render(
                    query=text,
                    description=catalog[fn].function.description,
                    call=canonical_json({"name": fn, "arguments": json.loads(args)}),
                    observation=obs,
                    **words.prompt_hints(catalog[fn], json.loads(args), rules.mentions(catalog[fn], json.loads(args))),
                ),
                prompt.version,
                parse_judgment,
            )
            for qid, text, fn, args, obs in rows
        ]

    # BATCH prompts at a time, from the questions read JUDGE_BATCH at a time
    batches = (asks(part[i : i + BATCH]) for part in unjudged(con, cfg.model) for i in range(0, len(part), BATCH))
    return judge_with_model(chat, batches, repair, run_id)


def judge(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> JudgeSummary:
    """Judge every unjudged question: single calls here, call sets by ``biocurate.set_judge``."""
    return judge_single(config, con, catalog, run_id).merge(judge_sets(config, con, catalog, run_id))


def judge_single(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> JudgeSummary:
    cfg = config.synthesis.judge
    if cfg.provider != "template":
        return judge_with_llm(config, con, catalog, run_id)
    summary = JudgeSummary()
    judged = partial(
        rules_judgments,
        catalog=catalog,
        rule_folders=rules_dirs(config),
        model=cfg.model,
    )
    for part in call_parts(con):  # the work listed a part of the calls at a time
        # By call, so that each call's mentions and each observation's test are made once per batch.
        ids = unjudged_ids(con, cfg.model, RULES_VERSION, part).sort("call_id", "query_id")
        for columns in in_turns(judged, judging_rows(con, ids), aside=len(ids) >= TURNS_MIN_ITEMS):
            rows = pl.DataFrame(columns, schema=JUDGMENT_SCHEMA).select(
                "judgment_id",
                "query_id",
                pl.lit("rules").alias("judge"),
                pl.lit(cfg.model, pl.String).alias("model"),
                pl.lit(RULES_VERSION).alias("prompt_version"),
                "verdict",
                "score",
                "reason",
                pl.lit(run_id, pl.String).alias("run_id"),
            )
            for verdict in columns["verdict"]:
                summary.count(verdict)
            summary.judged += len(rows)
            summary.new += insert_new(con, "judgments", rows)  # written as it goes: a crash keeps what was done
    return summary


def rules_judgments(
    todo: list[tuple], catalog: Catalog, rule_folders: tuple[Path, Path], model: str
) -> dict[str, list]:
    """The rules judge's judgments of one batch of (query_id, text, function, arguments,
    observation), as ``JUDGMENT_SCHEMA`` columns (``biocurate.workers.in_turns`` runs it here or in
    a worker process)."""
    rules = mention_rules(*rule_folders)
    per_call: dict[tuple[str, str], tuple[list, re.Pattern | None]] = {}
    per_observation: dict[str, bool] = {}
    columns: dict[str, list] = {"judgment_id": [], "query_id": [], "verdict": [], "score": [], "reason": []}
    for query_id, text, function, arguments, observation in todo:
        made = per_call.get((function, arguments))
        if made is None:
            tool = catalog[function]
            made = per_call[(function, arguments)] = (
                as_rows(rules.mentions(tool, json.loads(arguments))),
                leak_pattern(tuple(tool.function.params)),
            )
        checks = question_checks(text, function, *made)
        found = per_observation.get(observation)
        if found is None:
            found = per_observation[observation] = informative(observation)
        checks["observation informative"] = found
        score = sum(checks.values()) / len(checks)
        verdict = "accept" if score == 1 else ("unsure" if score >= 0.75 else "reject")
        failed = [name for name, ok in checks.items() if not ok]
        columns["judgment_id"].append(content_hash("judgment", query_id, "rules", model, RULES_VERSION))
        columns["query_id"].append(query_id)
        columns["verdict"].append(verdict)
        columns["score"].append(score)
        columns["reason"].append("all checks passed" if not failed else "failed: " + "; ".join(failed))
    return columns


JUDGMENT_SCHEMA = {
    "judgment_id": pl.String,
    "query_id": pl.String,
    "verdict": pl.String,
    "score": pl.Float64,
    "reason": pl.String,
}
