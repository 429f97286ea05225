"""The quality stage's facts about questions on call sets (docs/item_kinds.md).

A set question's row in the quality frame gets what a single question's row has, over every
call of the set: ``function_known`` (every step's function in the catalog), ``call_schema_error``
(the first step whose arguments do not fit), ``mentions`` (``set_items.set_mentions``: every
step's values for ``parallel``; step 1's, and none of the fed values, for ``multi_step``),
``identifiers`` (every step's key words, for the duplicate search), ``outcome`` (ok when every
step's response is), and two of its own: ``set_problem`` (``set_items.step_problems`` and a step
whose observation holds no answer) and ``kind_problem`` (a multi_step question answerable from
step 1 alone, a no_tool question an offered tool answers: ``set_rules``). Its ``observation``
column is its longest step observation (each step's own size bound then holds; a step's
emptiness or error is in ``set_problem``) or, for ``no_tool``, a sentence saying there is none.
"""

from __future__ import annotations

import hashlib

import duckdb
import pandas as pd

from biocurate.catalog import Catalog
from biocurate.mentions import Mention, MentionRules, MentionSet
from biocurate.set_items import CallSet, load_sets, set_mentions, step_problems
from biocurate.set_rules import ToolMatcher, informative, needs_later_step, set_names, step_schema_errors

NO_OBSERVATION = "No call is made for this question, so it has no observation."


def key_words(mentions: tuple[Mention, ...]) -> list[str]:
    """The words that tell one item's questions from another's (near-duplicate signatures)."""
    return list(dict.fromkeys(w for m in mentions if not m.absent for w in (m.value, *m.forms)))


def _all_mentions(call_set: CallSet, catalog: Catalog, rules: MentionRules) -> tuple[Mention, ...]:
    """Every step's mentions (whatever the kind): the set's identifiers for the duplicate search."""
    every = CallSet(call_set.set_id, "parallel", call_set.template, call_set.spec, "", "", call_set.steps)
    return set_mentions(every, catalog, rules)


def identifiers_of(call_set: CallSet, catalog: Catalog, rules: MentionRules) -> list[str]:
    """Every step's key words; for ``no_tool`` (no calls), its sampled entity's values: questions
    about different diseases or genes are never near-duplicates of each other."""
    if call_set.kind == "no_tool":
        contexts = call_set.spec.get("context") if isinstance(call_set.spec, dict) else None
        return [str(v) for c in contexts or [] if isinstance(c, dict) for v in c.values() if isinstance(v, str)]
    return key_words(_all_mentions(call_set, catalog, rules))


def set_identifiers(con: duckdb.DuckDBPyConnection, set_ids: list[str], catalog, rules) -> dict[str, list[str]]:
    return {sid: identifiers_of(s, catalog, rules) for sid, s in load_sets(con, set_ids).items()}


def _outcomes(con: duckdb.DuckDBPyConnection, call_ids: list[str]) -> dict[str, str]:
    """Step call_id -> the outcome of the response behind its observation in a combined observation
    (for the steps ``call_ids``: a chunk's)."""
    if not call_ids:
        return {}
    con.register("_step_calls", pd.DataFrame({"call_id": sorted(set(call_ids))}, dtype=object))
    try:
        return dict(
            con.execute(
                """
                select so.call_id, coalesce(any_value(r.outcome), 'missing')
                from call_set_observations cso
                join observations so on so.observation_id = cso.step_observation_id
                left join api_responses r on r.response_id = so.response_id
                where so.call_id in (select call_id from _step_calls)
                group by so.call_id
                """
            ).fetchall()
        )
    finally:
        con.unregister("_step_calls")


def add_set_facts(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, catalog: Catalog, rules: MentionRules) -> None:
    """Fill the set questions' rows of ``frame`` (see the module's docstring); single rows get
    null ``set_problem``, ``kind_problem`` and ``set_observation``."""
    for column in ("set_problem", "kind_problem", "set_observation"):
        frame[column] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    mask = frame["kind"] != "single"
    if not mask.any():
        return
    sets = load_sets(con, sorted(frame.loc[mask, "call_id"].unique()))
    outcomes = _outcomes(con, [st.call_id for s in sets.values() for st in s.steps])
    matcher = ToolMatcher(catalog)
    facts: dict[str, tuple] = {}
    for sid, s in sets.items():
        errors = step_schema_errors(s, catalog)
        problems = step_problems(s, outcomes)
        problems += [
            f"step {st.position + 1} ({st.function}): the observation holds no answer"
            for st in s.steps
            if not informative(st.observation)
        ]
        bad = next((outcomes.get(st.call_id, "missing") for st in s.steps if outcomes.get(st.call_id) != "ok"), "ok")
        mentions = set_mentions(s, catalog, rules)
        key = hashlib.blake2b(sid.encode(), digest_size=8).hexdigest()
        longest = max((st.observation for st in s.steps), key=len, default=NO_OBSERVATION)
        facts[sid] = (
            all(st.function in catalog.tools for st in s.steps),
            "; ".join(f"step {p + 1}: {e}" for p, e in sorted(errors.items())) or None,
            MentionSet((m.row() for m in mentions), key),
            identifiers_of(s, catalog, rules),
            bad,
            "; ".join(problems) or None,
            longest,
        )
    for index in frame.index[mask]:
        sid, text = frame.at[index, "call_id"], frame.at[index, "text"]
        found = sets.get(sid)
        if found is None:
            frame.at[index, "set_problem"] = "the call set has no steps or no combined observation"
            continue
        known, error, mentions, idents, outcome, problem, observation = facts[sid]
        frame.at[index, "function_known"] = known
        frame.at[index, "call_schema_error"] = error
        frame.at[index, "mentions"] = mentions
        frame.at[index, "identifiers"] = idents
        frame.at[index, "outcome"] = outcome
        frame.at[index, "set_problem"] = problem
        frame.at[index, "set_observation"] = observation
        if found.kind == "multi_step":
            ok, why = needs_later_step(text, found)
            frame.at[index, "kind_problem"] = None if ok else why
        elif found.kind == "no_tool":
            match = matcher.answers(text, set_names(found))
            frame.at[index, "kind_problem"] = match.reason() if match else None
