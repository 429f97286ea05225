"""What an API answer was, and whether asking again could change it.

One place for the rule "a definite answer, do not ask again", used by the executor (which calls
are pending), the drift watch (gone vs failed) and evaluation (decided vs undecided): the Python
predicate and its SQL form are built from the same constants, side by side.
"""

from __future__ import annotations

OK, OK_EMPTY, API_ERROR, HTTP_ERROR, TIMEOUT, INVALID_BODY, REPLAY_MISS = (
    "ok",
    "ok_empty",
    "api_error",
    "http_error",
    "timeout",
    "invalid_body",
    "replay_miss",
)

# Outcomes a re-run would get again: the server's answer was definite.
FINAL_OUTCOMES = (OK, OK_EMPTY, API_ERROR, INVALID_BODY)
# Client errors that are not about the call itself (timeout, too early, too many requests):
# every other 4xx means the resource does not exist or the request is wrong, which is definite.
ASK_AGAIN_CLIENT_STATUS = (408, 425, 429)


def is_definite(outcome: str, status: int | None) -> bool:
    """Would asking again give the same answer?"""
    return outcome in FINAL_OUTCOMES or (
        outcome == HTTP_ERROR and status is not None and 400 <= status < 500 and status not in ASK_AGAIN_CLIENT_STATUS
    )


def definite_sql(alias: str = "r") -> str:
    """``is_definite`` as a SQL predicate over an ``api_responses``-shaped relation."""
    final = ", ".join(f"'{o}'" for o in FINAL_OUTCOMES)
    again = ", ".join(str(s) for s in ASK_AGAIN_CLIENT_STATUS)
    return (
        f"({alias}.outcome in ({final}) or ({alias}.outcome = '{HTTP_ERROR}' "
        f"and {alias}.status_code between 400 and 499 and {alias}.status_code not in ({again})))"
    )
