"""What every judge shares (single calls in ``biocurate.judge``, call sets in
``biocurate.set_judge``): the API words a question must not hold, the stage's summary and the
parsing of a judge model's reply."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from biocurate.llm import ReplyError

JARGON = re.compile(r"\b(api|endpoint|json|url|http|rest|parameter|query string)\b", re.I)


@dataclass
class JudgeSummary:
    judged: int = 0
    new: int = 0
    requests: int = 0  # LLM requests actually sent
    verdicts: dict[str, int] = field(default_factory=dict)
    failed: int = 0  # queries without a usable judgment (no answer, or none after a repair)


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
