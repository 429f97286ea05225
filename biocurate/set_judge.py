"""Judging questions about call sets (``parallel``, ``multi_step``, ``no_tool``; docs/item_kinds.md).

The rules judge (``[synthesis.judge] provider = "template"``) runs ``biocurate.set_rules``'
checks of the set's kind and no API detail leaked / a plausible length, as for single calls; every
check must pass (a set question failing one is rejected, with each failing check and why in the
reason). Its version is ``SET_RULES_VERSION``, apart from the single-call rules: a change here
judges the set questions again and leaves single questions' verdicts as they are.

An LLM judge is asked with ``prompts/judge_<kind>_v1.md``; the rule checks of the kind still
apply: a question the rules reject is rejected whatever the model said, the reason naming both.
"""

from __future__ import annotations

import duckdb

from biocurate.catalog import Catalog
from biocurate.config import Config, secret
from biocurate.judging import JARGON, JudgeSummary, judge_with_model, judgment_row, parse_judgment
from biocurate.llm import BATCH, Ask, ChatClient, load_prompt
from biocurate.mentions import MentionRules, rules_for
from biocurate.set_items import CallSet, load_sets, mention_lines
from biocurate.set_rules import ToolMatcher, combined_calls, kind_checks, set_names, step_schema_errors
from biocurate.store import insert_new
from biocurate.wording import wording

SET_RULES_VERSION = "set-rules-v1"
JUDGE_PROMPTS = {kind: f"judge_{kind}_v1" for kind in ("parallel", "multi_step", "no_tool")}


def unjudged_sets(con: duckdb.DuckDBPyConnection, model: str, version: str | None = None) -> list[tuple]:
    """(query_id, text, set_id) of set questions this judge model has not judged (under ``version``)."""
    return con.execute(
        """
        select q.query_id, q.text, q.call_id
        from query_context q
        where q.kind <> 'single' and not exists (
            select 1 from judgments j
            where j.query_id = q.query_id and j.model = ? and (? is null or j.prompt_version = ?)
        )
        order by q.query_id
        """,
        [model, version, version],
    ).fetchall()


def rule_verdict(
    text: str, call_set: CallSet, catalog: Catalog, rules: MentionRules, matcher: ToolMatcher
) -> tuple[str, float, str, dict[str, tuple[bool, str]]]:
    """(verdict, score, reason, checks) of the rules judge for one set question."""
    checks = kind_checks(text, call_set, catalog, rules, matcher, step_schema_errors(call_set, catalog))
    functions = [s.function for s in call_set.steps]
    leaked = [f for f in functions if f.lower() in text.lower()] + [m.group(0) for m in JARGON.finditer(text)]
    checks["no API details leaked"] = (not leaked, "names " + ", ".join(leaked) if leaked else "ok")
    words = len(text.split())
    checks["natural length"] = (4 <= words <= 60, f"{words} words")
    score = sum(ok for ok, _ in checks.values()) / len(checks)
    failed = [f"{name} ({why})" for name, (ok, why) in checks.items() if not ok]
    verdict = "accept" if not failed else "reject"
    reason = f"{call_set.kind}: " + ("all checks passed" if not failed else "failed: " + "; ".join(failed))
    return verdict, score, reason[:500], checks


def judge_sets(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> JudgeSummary:
    cfg = config.synthesis.judge
    rules = rules_for(config)
    if cfg.provider != "template":
        return _judge_sets_llm(config, con, catalog, run_id, rules)
    todo = unjudged_sets(con, cfg.model, SET_RULES_VERSION)
    sets = load_sets(con, sorted({sid for _, _, sid in todo})) if todo else {}
    matcher = ToolMatcher(catalog)
    summary, rows = JudgeSummary(), []
    for query_id, text, set_id in todo:
        if set_id not in sets:
            continue
        verdict, score, reason, _ = rule_verdict(text, sets[set_id], catalog, rules, matcher)
        rows.append(judgment_row(query_id, "rules", cfg.model, SET_RULES_VERSION, verdict, score, reason, run_id))
        summary.count(verdict)
    summary.judged = len(rows)
    summary.new = insert_new(con, "judgments", rows)
    return summary


def render_judge_prompt(prompt, text: str, call_set: CallSet, catalog: Catalog, words, rules, matcher) -> str:
    spec = call_set.spec
    closest = matcher.best(text, set_names(call_set))
    near = f"{closest.function} ({closest.template!r}, similarity {closest.similarity:.2f})" if closest else "none"
    fed = [f"- call {p} {param} = {value!r}" for p, param, value in call_set.fed_values()]
    return prompt.render(
        query=text,
        calls=combined_calls(call_set),
        observations="\n".join(f"{s.position + 1}. {s.observation}" for s in call_set.steps) or "(none)",
        mentions=mention_lines(
            call_set, catalog, words, rules, "- call {n} ({function}): verbatim {keep}; in words {said}", "(none)"
        ),
        fed="\n".join(fed) or "(none)",
        topic=spec.get("topic") or call_set.template,
        reason=spec.get("reason") or spec.get("why") or "(not given)",
        tools=", ".join(sorted(catalog.tools)),
        closest=near,
    )


def _judge_sets_llm(config: Config, con, catalog: Catalog, run_id: str, rules: MentionRules) -> JudgeSummary:
    cfg = config.synthesis.judge
    prompt_dir = config.path(config.synthesis.prompt_dir)
    prompts = {kind: load_prompt(prompt_dir, name) for kind, name in JUDGE_PROMPTS.items()}
    repair = load_prompt(prompt_dir, "repair_v1")
    words = wording(config.path(config.sample.catalog_dir))
    matcher = ToolMatcher(catalog)
    chat = ChatClient(cfg, secret("judge_api_key") or secret("llm_api_key"), con, run_id)
    todo = unjudged_sets(con, cfg.model)
    sets = load_sets(con, sorted({sid for _, _, sid in todo})) if todo else {}
    todo = [r for r in todo if r[2] in sets]

    def asks(rows) -> list[Ask]:
        out = []
        for qid, text, sid in rows:
            prompt = prompts[sets[sid].kind]
            body = render_judge_prompt(prompt, text, sets[sid], catalog, words, rules, matcher)
            out.append(Ask(qid, body, prompt.version, parse_judgment, item=(text, sid)))
        return out

    def with_rules(ask: Ask, verdict: str, score: float, reason: str) -> tuple[str, float, str]:
        """The kind's rule checks hold whatever the model said."""
        text, sid = ask.item
        rule, rule_score, rule_reason, _ = rule_verdict(text, sets[sid], catalog, rules, matcher)
        if rule == "reject":
            return "reject", min(score, rule_score), f"rule check: {rule_reason} | judge: {reason}"[:500]
        return verdict, score, reason

    batches = (asks(todo[start : start + BATCH]) for start in range(0, len(todo), BATCH))
    return judge_with_model(chat, batches, repair, run_id, with_rules)
