"""What every judge shares (single calls in ``biocurate.judge``, call sets in
``biocurate.set_judge``): the API words a question must not hold, the stage's summary and the
parsing of a judge model's reply."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from biocurate.hashing import content_hash
from biocurate.llm import Ask, ChatClient, Prompt, ReplyError, ask_and_record

JARGON = re.compile(r"\b(api|endpoint|json|url|http|rest|parameter|query string)\b", re.I)


@dataclass
class JudgeSummary:
    judged: int = 0
    new: int = 0
    requests: int = 0  # LLM requests actually sent
    verdicts: dict[str, int] = field(default_factory=dict)
    failed: int = 0  # queries without a usable judgment (no answer, or none after a repair)

    def count(self, verdict: str, n: int = 1) -> None:
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + n

    def merge(self, other: JudgeSummary) -> JudgeSummary:
        self.judged += other.judged
        self.new += other.new
        self.requests += other.requests
        self.failed += other.failed
        for verdict, n in other.verdicts.items():
            self.count(verdict, n)
        return self


def judgment_row(query_id, judge, model, version, verdict, score, reason, run_id) -> dict:
    return {
        "judgment_id": content_hash("judgment", query_id, judge, model, version),
        "query_id": query_id,
        "judge": judge,
        "model": model,
        "prompt_version": version,
        "verdict": verdict,
        "score": score,
        "reason": reason,
        "run_id": run_id,
    }


JUDGE_SHAPE = '{"verdict": "accept", "score": 0.9, "reason": "..."}'


def judge_with_model(
    chat: ChatClient,
    batches: Iterable[list[Ask]],
    repair: Prompt,
    run_id: str,
    adjust: Callable[[Ask, str, float, str], tuple[str, float, str]] | None = None,
) -> JudgeSummary:
    """The judge model's verdicts on ``batches`` (each ``Ask`` about a query, parsed by
    ``parse_judgment``), written as judgments; ``adjust`` may change a verdict (a set's rule checks)."""
    summary = JudgeSummary()

    def record(ask: Ask, parsed: tuple[str, float, str]) -> list[dict]:
        verdict, score, reason = adjust(ask, *parsed) if adjust else parsed
        summary.count(verdict)
        summary.judged += 1
        return [judgment_row(ask.subject, "openai", chat.cfg.model, ask.version, verdict, score, reason, run_id)]

    done = ask_and_record(chat, batches, "judge", JUDGE_SHAPE, repair, "judgments", record)
    summary.new, summary.failed, summary.requests = done.new, len(done.failures), chat.requests_made
    return summary


def parse_judgment(reply: dict) -> tuple[str, float, str]:
    """(verdict, score, reason) of a judge reply; anything else is a ReplyError."""
    verdict = reply.get("verdict")
    if verdict not in ("accept", "reject", "unsure"):
        raise ReplyError(f"verdict must be accept, reject or unsure, got {verdict!r}")
    try:
        score = float(reply.get("score"))  # type: ignore[arg-type]  # a missing score is a TypeError below
    except (TypeError, ValueError):
        raise ReplyError(f"score is not a number: {reply.get('score')!r}") from None
    if not 0 <= score <= 1:
        raise ReplyError(f"score {score} is outside 0..1")
    return verdict, score, str(reply.get("reason") or "")[:500]
