"""Our answer to an imported BioTool call, compared with the observation BioTool published.

The rebuild's ``biotool_compare`` stage, right after execute. Every claim of an imported call
(``biotool_claims``) whose latest answer (``api_responses``) it has not met yet gets a
``biotool_checks`` row with the drift watch's status (``biocurate.drift.status_of``):

- ``unchanged``: the answer is the claim (the same JSON, or the same text);
- ``body_changed``: other bytes, but every fact BioTool claims that the answer can confirm or
  contradict is still in it;
- ``changed``: some are not (``detail`` names them); also when none of the claimed facts can be
  looked up in the answer at all (basis ``nothing checkable``: nothing confirms the claim);
- ``gone`` / ``failed``: a definite non-answer now / no definite answer (asked again next rebuild);
- null (basis ``no claim``): the call answers, and the file had no observation to compare.

What a fact is. BioTool's observations are either the API's JSON as it answered or a summary its
post-processing made of it. Every scalar value of the claim, under the name of the field that
holds it, is a fact. Against a JSON answer, a fact is checkable when the answer has scalar values
under that field name, and holds when one of them is equal (numbers and their text alike,
whitespace collapsed; a value BioTool cut short, ending in "…" or "...[truncated]", by its
beginning). So the fields BioTool made up (``total_results``, ``examples``) are not held against
the answer, and values under the API's own field names are. Against a text or XML answer, a fact
of three characters or more holds when it occurs in the answer's text.

Then every imported question whose call answers gets a new version bound to our observation, by
the drift watch's own ``biocurate.drift.new_versions`` (a ``queries`` row with the same text,
linked in ``query_replacements`` with the check as its ``drift_id``); judge, quality, review and publish
take it from there. A question whose call is gone, failed or rejected stays bound to its claim,
which no later stage reads: the audit (``biocurate.audit``) lists it.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from biocurate.biotool_import import GENERATOR
from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.drift import REPLACED_COLUMNS, STATUSES, new_versions, status_of
from biocurate.hashing import canonical_json, content_hash
from biocurate.observations import NotAnAnswer, UnexpectedShape, observe
from biocurate.outcomes import OK
from biocurate.store import insert_new, utcnow

TRUNCATED = ("…", "...[truncated]", "... [truncated]")
SAME_BODY, FACTS, NOTHING_CHECKABLE, NO_CLAIM, NO_ANSWER = (
    "same body",
    "facts",
    "nothing checkable",
    "no claim",
    "no answer",
)
MIN_TEXT_FACT = 3  # shorter values occur in any text by chance


@dataclass
class Agreement:
    same_body: bool
    checked: int  # claimed facts the answer can confirm or contradict
    missing: list[str] = field(default_factory=list)  # of those, "field=value" not in the answer

    @property
    def holds(self) -> bool:
        return self.same_body or (self.checked > 0 and not self.missing)

    @property
    def basis(self) -> str:
        return SAME_BODY if self.same_body else FACTS if self.checked else NOTHING_CHECKABLE

    def detail(self) -> str | None:
        if self.same_body:
            return None
        if not self.checked:
            return "none of the facts BioTool claims can be looked up in the answer (its own summary fields)"
        if not self.missing:
            return f"other bytes; all {self.checked} checkable claimed facts hold"
        shown = ", ".join(m if len(m) <= 80 else m[:77] + "..." for m in self.missing[:5])
        return f"{len(self.missing)} of {self.checked} claimed facts not in the answer now: {shown}"


def _norm(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return " ".join(value.split())
    return None


def facts(value: Any, key: str = "") -> Iterator[tuple[str, str, bool]]:
    """(field name, normalised value, cut short) for every scalar in a JSON value."""
    if isinstance(value, dict):
        for name, inner in value.items():
            yield from facts(inner, str(name))
    elif isinstance(value, list):
        for inner in value:
            yield from facts(inner, key)
    else:
        text = _norm(value)
        if not text:
            return
        for mark in TRUNCATED:
            if text.endswith(mark):
                yield key, text[: -len(mark)].rstrip(), True
                return
        yield key, text, False


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def agreement(claim: str, body: bytes) -> Agreement:
    """How far the answer ``body`` confirms the observation BioTool published (``claim``)."""
    answer_text = body.decode("utf-8", "replace")
    claimed, answer = _json(claim), _json(answer_text)
    if claimed is not None and answer is not None:
        if canonical_json(claimed) == canonical_json(answer):
            return Agreement(True, sum(1 for _ in facts(claimed)))
        index: dict[str, set[str]] = {}
        for key, text, _ in facts(answer):
            index.setdefault(key, set()).add(text)
        result = Agreement(False, 0)
        for key, text, cut in facts(claimed):
            values = index.get(key)
            if not values:
                continue
            result.checked += 1
            if not (any(v.startswith(text) for v in values) if cut else text in values):
                result.missing.append(f"{key}={text!r}")
        return result
    if " ".join(claim.split()) == " ".join(answer_text.split()):
        return Agreement(True, 1)
    # A text or XML answer: look the claimed values up in its text.
    haystack = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", answer_text)).split())
    wanted = (
        facts(claimed)
        if claimed is not None
        else (("", " ".join(line.split()), False) for line in claim.splitlines() if line.strip())
    )
    result = Agreement(False, 0)
    for key, text, _ in wanted:
        if len(text) < MIN_TEXT_FACT or text in ("true", "false"):
            continue
        result.checked += 1
        if text not in haystack:
            result.missing.append(f"{key}={text!r}" if key else repr(text))
    return result


@dataclass
class CompareSummary:
    checked: int = 0  # new checks (claims met with a new answer)
    reused: int = 0  # claims already compared with their call's latest answer
    statuses: dict[str, int] = field(default_factory=lambda: {s: 0 for s in (*STATUSES, NO_CLAIM)})
    bound: int = 0  # imported questions given a version bound to our observation


def compare_claims(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> CompareSummary:
    """Check every claim against its call's latest answer, then bind the questions of answering calls."""
    summary = CompareSummary()
    claims = con.execute(
        "select count(*) from biotool_claims c where exists (select 1 from api_responses r where r.call_id = c.call_id)"
    ).fetchall()[0][0]
    rows = con.execute(
        """
        with latest as (
            select r.call_id, arg_max(r.response_id, r.fetched_at) as response_id
            from api_responses r
            where r.call_id in (select call_id from biotool_claims)
            group by r.call_id
        )
        select cl.claim_id, cl.call_id, cl.text, c.function, c.arguments::varchar, r.response_id, r.outcome,
               r.status_code, r.error, r.content_type, r.body
        from biotool_claims cl
        join latest l using (call_id)
        join api_responses r on r.response_id = l.response_id
        join candidate_calls c on c.call_id = cl.call_id
        where not exists (select 1 from biotool_checks k where k.claim_id = cl.claim_id
                          and k.response_id = l.response_id)
        order by cl.call_id, cl.claim_id
        """
    ).fetchall()
    now = utcnow()
    checks = []
    for claim_id, call_id, claim, function, arguments, response_id, outcome, code, error, ctype, body in rows:
        observation_id = None
        if outcome == OK and function in catalog:
            observation_id = _our_observation(
                config, con, catalog, call_id, function, arguments, response_id, gzip.decompress(body), ctype
            )
        if observation_id is None:
            status, basis, checked, missing = status_of(outcome, code, None, False), NO_ANSWER, 0, 0
            detail = f"{outcome}: {error}" if error else outcome
        elif claim is None:
            status, basis, checked, missing, detail = None, NO_CLAIM, 0, 0, None
        else:
            found = agreement(claim, gzip.decompress(body))
            status = status_of(outcome, code, found.holds, found.same_body)
            basis, checked, missing, detail = found.basis, found.checked, len(found.missing), found.detail()
        summary.statuses[status or NO_CLAIM] += 1
        checks.append(
            {
                "check_id": content_hash("biotool check", claim_id, response_id),
                "claim_id": claim_id,
                "call_id": call_id,
                "function": function,
                "response_id": response_id,
                "status": status,
                "basis": basis,
                "facts_checked": checked,
                "facts_missing": missing,
                "detail": detail,
                "new_outcome": outcome,
                "new_observation_id": observation_id,
                "run_id": run_id,
                "checked_at": now,
            }
        )
    summary.checked = insert_new(con, "biotool_checks", checks)
    summary.reused = claims - len(rows)
    summary.bound = bind_questions(con, run_id)
    return summary


def _our_observation(
    config: Config,
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    call_id: str,
    function: str,
    arguments: str,
    response_id: str,
    body: bytes,
    content_type: str | None,
) -> str | None:
    """The observation execute made of this answer (built again when its text came first from an earlier one)."""
    made = con.execute("select observation_id from observations where response_id = ?", [response_id]).fetchall()
    if made:
        return made[0][0]
    try:
        _, text = observe(
            catalog[function], json.loads(arguments), body, config.execute.observation_max_chars, content_type or ""
        )
    except (UnexpectedShape, NotAnAnswer):
        return None
    found = con.execute(
        "select observation_id from observations where call_id = ? and text = ?", [call_id, text]
    ).fetchall()
    return found[0][0] if found else None


def bind_questions(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """A new version, bound to our observation, of each imported question whose call answers.

    Driven by each claim's latest check, so an interrupted run is finished by the next one.
    """
    rows = con.execute(
        f"""
        with latest as (
            select * from biotool_checks
            qualify row_number() over (partition by claim_id order by checked_at desc, check_id) = 1
        )
        select c.item_id, c.query_id, l.new_observation_id, l.check_id,
               {", ".join("c." + col for col in REPLACED_COLUMNS)}
        from latest l
        join queries q on q.observation_id = l.claim_id and q.generator = ?
        join current_items c on c.item_id = q.query_id
        where l.new_observation_id is not null and c.observation_id <> l.new_observation_id
        order by c.item_id
        """,
        [GENERATOR],
    ).fetchall()
    return new_versions(con, rows, "biotool binding", run_id, utcnow())[1]
