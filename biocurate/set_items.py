"""Call sets (``parallel``, ``multi_step``, ``no_tool``; docs/item_kinds.md) as synthesis, the judge
and quality see them: the set's steps in order with their arguments, entity fields, observations
and fed values; the declaration it came from (``catalog/item_kinds.yaml``); the template fields of
a set (step 1's as ``{name}``, a later step's with its 1-based position as suffix, ``{symbol_2}``);
and what a question about it must mention (every step's values for ``parallel``; only the first
step's for ``multi_step``, whose fed values must *not* be in the question; nothing for ``no_tool``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from biocurate.catalog import Catalog
from biocurate.item_kinds import KINDS, load_item_kinds
from biocurate.mentions import Mention, MentionRules
from biocurate.wording import Wording

_SNAKE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")


@dataclass
class Step:
    position: int
    call_id: str
    function: str
    arguments: dict
    entity_fields: dict | None
    observation: str
    fed_by: dict | None = None  # {parameter: {"from": path, "value": value}}


@dataclass
class CallSet:
    set_id: str
    kind: str
    template: str
    spec: dict
    observation_id: str
    observation: str  # the combined observation (a JSON array of the steps' observation texts)
    steps: list[Step] = field(default_factory=list)

    def fed_values(self) -> list[tuple[int, str, str]]:
        """(1-based step, parameter, value) of every value a later step took from an observation."""
        out = []
        for step in self.steps:
            for param, record in (step.fed_by or {}).items():
                value = record.get("value") if isinstance(record, dict) else record
                if value not in (None, ""):
                    for v in value if isinstance(value, list) else [value]:
                        out.append((step.position + 1, param, str(v)))
        return out


# --- declarations ------------------------------------------------------------------------------


def declarations(catalog_dir: Path) -> dict[str, dict]:
    """name -> declaration (as a dict with its ``kind``), from ``catalog/item_kinds.yaml`` as
    ``biocurate.item_kinds`` loads and checks it. No file: no declarations."""
    kinds = load_item_kinds(Path(catalog_dir))
    return {d.name: {**d.model_dump(), "kind": kind} for kind in KINDS for d in kinds.declarations(kind)}


def declared_questions(decl: dict | None) -> dict[str, list[str]]:
    """The declaration's question templates by style (a plain list counts as broad)."""
    questions = (decl or {}).get("questions") or {}
    if isinstance(questions, list):
        return {"broad": [str(q) for q in questions], "specific": []}
    return {style: [str(q) for q in questions.get(style) or []] for style in ("broad", "specific")}


# --- the store ---------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_sets(con: duckdb.DuckDBPyConnection, set_ids: list[str] | None = None) -> dict[str, CallSet]:
    """Every call set with a combined observation (the latest), with its steps in order (given
    ``set_ids``, only those)."""
    where = "" if set_ids is None else f"and s.set_id in ({', '.join('?' * len(set_ids))})"
    if set_ids == []:
        return {}
    rows = con.execute(
        f"""
        select s.set_id, s.kind, s.template, s.spec::varchar, o.observation_id, o.text
        from call_sets s
        join (select call_id, arg_max(observation_id, created_at) as observation_id,
                     arg_max(text, created_at) as text
              from observations where builder = 'call_set' group by call_id) o on o.call_id = s.set_id
        where true {where}
        order by s.set_id
        """,
        set_ids or [],
    ).fetchall()
    sets = {
        sid: CallSet(sid, kind, template, _json(spec) or {}, oid, text) for sid, kind, template, spec, oid, text in rows
    }
    if not sets:
        return sets
    steps = con.execute(
        f"""
        select st.set_id, st.position, st.call_id, c.function, c.arguments::varchar, e.fields::varchar,
               so.text, st.fed_by::varchar
        from call_set_steps st
        join candidate_calls c on c.call_id = st.call_id
        left join entities e on e.entity_id = c.entity_id
        join call_set_observations cso on cso.position = st.position
        join observations so on so.observation_id = cso.step_observation_id
        join (select call_id, arg_max(observation_id, created_at) as observation_id
              from observations where builder = 'call_set' group by call_id) o
             on o.call_id = st.set_id and o.observation_id = cso.observation_id
        where true {where.replace("s.set_id", "st.set_id")}
        order by st.set_id, st.position
        """,
        set_ids or [],
    ).fetchall()
    for sid, position, call_id, function, arguments, fields, observation, fed_by in steps:
        if sid in sets:
            sets[sid].steps.append(
                Step(position, call_id, function, _json(arguments) or {}, _json(fields), observation, _json(fed_by))
            )
    return sets


# --- words ---------------------------------------------------------------------------------------


def _contexts(call_set: CallSet) -> list[dict]:
    """The sampled entities' fields (``spec.context``: one per call for parallel, the entity's
    for multi_step and no_tool)."""
    context = call_set.spec.get("context") if isinstance(call_set.spec, dict) else None
    return [c if isinstance(c, dict) else {} for c in context] if isinstance(context, list) else []


def set_fields(call_set: CallSet, catalog: Catalog, words: Wording, decl: dict | None = None) -> dict[str, str]:
    """The template fields of a set (docs/item_kinds.md): call k's (1-based) arguments in words
    over its entity's fields (as for a single call) as ``{name_k}``, the first call's also as
    ``{name}``; for ``no_tool``, the sampled entity's fields and the ``topic``."""
    contexts = _contexts(call_set)
    if call_set.kind == "no_tool":
        topic = call_set.spec.get("topic") or (decl or {}).get("topic")
        first = contexts[0] if contexts else {}
        out = {
            name: str(value).replace("_", " ") if _SNAKE.fullmatch(str(value)) else str(value)
            for name, value in first.items()
        }
        if topic:
            out["topic"] = str(topic)
        return out
    out = {}
    for step in call_set.steps:
        tool = catalog.tools.get(step.function)
        if tool is None:
            continue
        p = step.position
        ctx: dict | None = (
            contexts[p]
            if call_set.kind == "parallel" and p < len(contexts)
            else (contexts[0] if contexts and p == 0 else None)
        )
        said = words.say(tool, step.arguments, ctx or step.entity_fields).fields
        out.update({f"{name}_{p + 1}": value for name, value in said.items()})
        if p == 0:
            out.update(said)
    return out


def set_mentions(call_set: CallSet, catalog: Catalog, rules: MentionRules) -> tuple[Mention, ...]:
    """What a question about the set must (and must not) mention: every step's mentions
    (``parallel``); the first step's, and none of the values fed to later steps (``multi_step``);
    nothing (``no_tool``)."""
    out: list[Mention] = []
    steps = call_set.steps if call_set.kind == "parallel" else call_set.steps[:1]
    for step in steps:
        tool = catalog.tools.get(step.function)
        if tool is not None and isinstance(step.arguments, dict):
            prefix = f"step {step.position + 1} " if len(call_set.steps) > 1 else ""
            for m in rules.mentions(tool, step.arguments):
                out.append(Mention(prefix + m.param, m.value, m.kind, m.forms, m.pattern, m.absent, m.needles))
    if call_set.kind == "multi_step":
        for position, param, value in call_set.fed_values():
            out.append(Mention(f"step {position} {param}", value, "fed", (), re.escape(value), absent=True))
    return tuple(out)


def step_problems(call_set: CallSet, outcomes: dict[str, str] | None = None) -> list[str]:
    """What is wrong with the set itself: too few steps for its kind, a combined observation that
    is not the JSON array of its steps' observations, a step whose response is not ok."""
    problems = []
    n = len(call_set.steps)
    if call_set.kind in ("parallel", "multi_step") and n < 2:
        problems.append(f"{call_set.kind} set with {n} step(s) (needs at least 2)")
    if call_set.kind == "no_tool" and n:
        problems.append(f"no_tool set with {n} call(s) (needs none)")
    try:
        combined = json.loads(call_set.observation)
    except ValueError:
        combined = None
    if not isinstance(combined, list) or len(combined) != n:
        problems.append("the combined observation is not a JSON array with one element per step")
    elif combined != [s.observation for s in call_set.steps]:
        problems.append("the combined observation does not hold the steps' observations in order")
    for step in call_set.steps:
        outcome = (outcomes or {}).get(step.call_id, "ok")
        if outcome != "ok":
            problems.append(f"step {step.position + 1} ({step.function}) response {outcome}")
    return problems


def mention_lines(
    call_set: CallSet, catalog: Catalog, words: Wording, rules: MentionRules, line: str, none: str
) -> str:
    """Per call whose values the question names (every call of a parallel set, the first of the
    others): what to keep verbatim and what to say in words, each as ``line`` formats it (``n``,
    ``function``, ``keep``, ``said``); ``none`` when there is nothing. The generator's and the
    judge's prompts both say it, each in its own words."""
    steps = call_set.steps if call_set.kind == "parallel" else call_set.steps[:1]
    lines = []
    for step in steps:
        tool = catalog.tools.get(step.function)
        if tool is None:
            continue
        hints = words.mention_hints(tool, step.arguments, rules.mentions(tool, step.arguments))
        keep = ", ".join(hints["keep"]) or "(none)"
        said = "; ".join(hints["words"]) or "(none)"
        lines.append(line.format(n=step.position + 1, function=step.function, keep=keep, said=said))
    return "\n".join(lines) or none
