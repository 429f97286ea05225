"""Judging: is the call's observation an informative answer to the question?

The offline judge (``provider = "template"``, model ``rules-v1``) scores four checks:
identifiers kept verbatim, no API detail leaked, a plausible length, and an informative
observation. An LLM judge can be configured separately (``[synthesis.judge]``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import duckdb

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.hashing import content_hash
from biocurate.store import insert_new
from biocurate.synthesis import identifiers

RULES_VERSION = "rules-v1"
JARGON = re.compile(r"\b(api|endpoint|json|url|http|rest|parameter|query string)\b", re.I)


def rule_checks(text: str, function: str, idents: list[str], observation: str, params: list[str]) -> dict[str, bool]:
    words = len(text.split())
    try:
        parsed = json.loads(observation)
    except ValueError:
        parsed = observation
    informative = parsed not in ({}, [], "", None) and len(observation) >= 20
    leaked = function.lower() in text.lower() or JARGON.search(text) is not None or any(
        re.search(rf"\b{re.escape(p)}\b", text) for p in params if "_" in p)
    return {
        "identifiers kept verbatim": all(i in text for i in idents),
        "no API details leaked": not leaked,
        "natural length": 4 <= words <= 60,
        "observation informative": informative,
    }


@dataclass
class JudgeSummary:
    judged: int = 0
    new: int = 0
    requests: int = 0  # LLM requests actually sent
    verdicts: dict[str, int] = field(default_factory=dict)


def unjudged(con: duckdb.DuckDBPyConnection, model: str) -> list[tuple]:
    """(query_id, text, function, arguments, observation) of queries this judge model has not judged."""
    return con.execute(
        """
        select q.query_id, q.text, c.function, c.arguments, o.text
        from queries q join candidate_calls c using (call_id)
        join observations o on o.observation_id = q.observation_id
        where not exists (select 1 from judgments j where j.query_id = q.query_id and j.model = ?)
        order by q.query_id
        """,
        [model],
    ).fetchall()


def judge(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> JudgeSummary:
    cfg = config.synthesis.judge
    if cfg.provider != "template":
        from biocurate.llm import judge_with_llm  # only needed with a model configured

        return judge_with_llm(config, con, catalog, run_id)
    todo = unjudged(con, cfg.model)
    summary, rows = JudgeSummary(), []
    for query_id, text, function, arguments, observation in todo:
        tool = catalog[function]
        checks = rule_checks(text, function, identifiers(tool, json.loads(arguments)), observation,
                             list(tool.function.params))
        score = sum(checks.values()) / len(checks)
        verdict = "accept" if score == 1 else ("unsure" if score >= 0.75 else "reject")
        failed = [name for name, ok in checks.items() if not ok]
        reason = "all checks passed" if not failed else "failed: " + "; ".join(failed)
        rows.append({"judgment_id": content_hash("judgment", query_id, "rules", cfg.model, RULES_VERSION),
                     "query_id": query_id, "judge": "rules", "model": cfg.model,
                     "prompt_version": RULES_VERSION, "verdict": verdict, "score": score,
                     "reason": reason, "run_id": run_id})
        summary.verdicts[verdict] = summary.verdicts.get(verdict, 0) + 1
    summary.judged = len(rows)
    summary.new = insert_new(con, "judgments", rows)
    return summary
