"""Call sets (issue 18): sampled from ``catalog/item_kinds.yaml``, chained from stored
observations, assembled into one combined observation per set (docs/item_kinds.md).

- ``sample_sets``: deterministic (a hash of the seed, the declaration and the entity orders the
  candidates); a set's steps are ordinary candidate calls built as sampling builds them
  (``sampling.call_row``), so a step that is also a single call is the same row. Sampling sets
  never changes which single calls are sampled.
- ``extend_chains``: a ``multi_step`` set whose last step has a definite answer and an
  observation gets its next step, the linked arguments read from that observation (parsed JSON,
  a declared path), executed by the executor; repeated until no step is added. A step that
  failed (an error, an empty answer, no value at the path) stops its chain: no later step, no
  combined observation, the reason counted.
- ``assemble_sets``: every set whose steps all have an observation gets its combined
  observation (``no_tool``: '[]' at once) and its ``call_set_observations`` rows.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb

from biocurate.catalog import Catalog
from biocurate.config import Config, SampleConfig
from biocurate.hashing import content_hash
from biocurate.item_kinds import KINDS, SET_TEMPLATE_PREFIX, Declaration, ItemKinds, link, step_args
from biocurate.outcomes import definite_sql
from biocurate.sampling import MissingField, call_row, coerce, fill, matching_entities
from biocurate.store import insert_new


@dataclass
class SetSample:
    sets: list[dict] = field(default_factory=list)  # call_sets rows (spec as a dict)
    steps: list[dict] = field(default_factory=list)  # call_set_steps rows
    calls: list[dict] = field(default_factory=list)  # candidate_calls rows of the steps
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count


def _candidates(decl: Declaration, entities: list[dict], species: dict, catalog: Catalog, skipped: Counter):
    """(entity, context) of every entity the declaration can use, in its hashed order."""
    out = []
    for entity, ctx in matching_entities(entities, decl.entity, decl.where, species):
        try:
            for i in range(len(decl.steps)):
                for value in step_args(decl, i, catalog).values():
                    if link(value) is None:
                        fill(value, ctx)
        except MissingField as exc:
            skipped[f"{decl.name}: {decl.entity} lacks {exc.args[0]}"] += 1
            continue
        out.append((entity, ctx))
    return out


def _plain_args(decl: Declaration, index: int, catalog: Catalog, ctx: dict) -> dict:
    return {k: fill(v, ctx) for k, v in step_args(decl, index, catalog).items() if link(v) is None}


def sample_sets(
    catalog: Catalog, kinds: ItemKinds, entities: list[dict], species: dict, config: SampleConfig
) -> SetSample:
    """Sets per declaration as ``[sample.kinds]`` asks (0: none of that kind)."""
    result = SetSample()
    for kind in KINDS:
        wanted = getattr(config.kinds, kind)
        for decl in kinds.declarations(kind) if wanted else []:
            if kind == "no_tool" and decl.entity is None:
                _no_tool(decl, None, {}, result)
                continue
            options = _candidates(decl, entities, species, catalog, result.skipped)
            options.sort(key=lambda o: content_hash(config.seed, decl.name, o[0]["entity_id"]))
            made = 0
            for start in range(0, len(options) - decl.count + 1, decl.count):
                if made >= wanted:
                    break
                group = options[start : start + decl.count]
                if kind == "no_tool":
                    made += _no_tool(decl, group[0][0], group[0][1], result)
                else:
                    made += _call_set(kind, decl, group, catalog, result)
            if made < wanted:
                result.skipped[f"{decl.name}: {made} of {wanted} sets (not enough {decl.entity} entities)"] += 1
    return result


def _no_tool(decl: Declaration, entity: dict | None, ctx: dict, result: SetSample) -> int:
    entity_id = entity["entity_id"] if entity else None
    set_id = content_hash("set", "no_tool", decl.name, entity_id or decl.topic)
    spec = {"topic": decl.topic, "reason": decl.reason, "entities": [entity_id] if entity_id else [], "context": [ctx]}
    result.sets.append({"set_id": set_id, "kind": "no_tool", "template": decl.name, "spec": spec})
    return 1


def _call_set(kind: str, decl: Declaration, group: list, catalog: Catalog, result: SetSample) -> int:
    """A parallel set (every call) or a multi_step set (its first step) over ``group``'s entities."""
    calls, contexts = [], []
    order = [(e, s) for e in range(decl.count) for s in range(len(decl.steps))]
    for e, s in order if kind == "parallel" else order[:1]:
        entity, ctx = group[e]
        tool = catalog[decl.steps[s].function]
        row = call_row(tool, coerce(tool, _plain_args(decl, s, catalog, ctx)), entity["entity_id"], "")
        if not row["valid"]:
            result.skipped[f"{decl.name}: step {s + 1} invalid: {row['invalid_reason']}"] += 1
            return 0
        calls.append({**row, "template": SET_TEMPLATE_PREFIX + decl.name})
        contexts.append(ctx)
    if len({c["call_id"] for c in calls}) < len(calls):
        result.skipped[f"{decl.name}: two calls of a set are the same"] += 1
        return 0
    keyed = [c["call_id"] for c in calls] if kind == "parallel" else calls[0]["call_id"]
    set_id = content_hash("set", kind, decl.name, keyed)
    spec = {
        "entities": [entity["entity_id"] for entity, _ in group],
        "context": [ctx for _, ctx in group] if kind == "multi_step" else contexts,
        "links": {
            str(i): {a: v for a, v in step_args(decl, i, catalog).items() if link(v) is not None}
            for i in range(1, len(decl.steps))
        }
        if kind == "multi_step"
        else {},
    }
    result.sets.append({"set_id": set_id, "kind": kind, "template": decl.name, "spec": spec})
    for position, call in enumerate(calls):
        result.steps.append({"set_id": set_id, "position": position, "call_id": call["call_id"]})
    result.calls.extend(calls)
    return 1


def write_sample(con: duckdb.DuckDBPyConnection, sample: SetSample, run_id: str) -> int:
    """The sample's rows (calls first); the number of new sets."""
    calls = [{**c, "arguments": json.dumps(c["arguments"], sort_keys=True), "run_id": run_id} for c in sample.calls]
    insert_new(con, "candidate_calls", calls)
    steps = [{**s, "depends_on": None, "fed_by": None, "run_id": run_id} for s in sample.steps]
    insert_new(con, "call_set_steps", steps)
    sets = [{**s, "spec": json.dumps(s["spec"], sort_keys=True), "run_id": run_id} for s in sample.sets]
    return insert_new(con, "call_sets", sets)


# --- chains -----------------------------------------------------------------------------


def read_path(observation: Any, parts: list[str | int]) -> Any:
    """The value at a dotted path of a parsed observation, or None."""
    node = observation
    for part in parts:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        else:
            return None
    return node if isinstance(node, (str, int, float)) and not isinstance(node, bool) else None


STEP_STATE = f"""
    select st.set_id, st.position, st.call_id,
           (select count(*) from api_responses r where r.call_id = st.call_id and {definite_sql("r")}) as definite,
           (select o.text from observations o where o.call_id = st.call_id
             order by o.created_at desc, o.observation_id limit 1) as observation,
           (select o.observation_id from observations o where o.call_id = st.call_id
             order by o.created_at desc, o.observation_id limit 1) as observation_id,
           (select o.response_id from observations o where o.call_id = st.call_id
             order by o.created_at desc, o.observation_id limit 1) as response_id,
           (select r.outcome from api_responses r where r.call_id = st.call_id
             order by r.fetched_at desc limit 1) as outcome
    from call_set_steps st
"""


def _failure(outcome: str | None) -> str:
    return f"answered {outcome}" if outcome else "no answer"


@dataclass
class ChainSummary:
    added: int = 0
    rounds: int = 0
    executed: int = 0
    requests: int = 0
    replayed: int = 0
    unanswered: int = 0
    stopped: Counter[str] = field(default_factory=Counter)  # reason -> chains


def extend_chains(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, kinds: ItemKinds, run_id: str
) -> ChainSummary:
    """Add and execute every later step whose source step has an observation, until none is added."""
    from biocurate.execute import execute_calls

    summary = ChainSummary()
    while True:
        summary.stopped.clear()
        rows = con.execute(
            f"""
            with s as ({STEP_STATE}),
                 last as (select set_id, max(position) as position from call_set_steps group by set_id)
            select cs.set_id, cs.template, cs.spec, s.position, s.definite, s.observation, s.outcome
            from call_sets cs join last using (set_id) join s using (set_id, position)
            where cs.kind = 'multi_step'
            order by cs.set_id
            """
        ).fetchall()
        new_calls, new_steps = [], []
        for set_id, template, spec_text, position, definite, observation, outcome in rows:
            kind, decl = kinds.by_name(template)
            if position + 1 >= len(decl.steps):
                continue
            if observation is None:
                if definite:
                    summary.stopped[f"{decl.name}: step {position + 1} {_failure(outcome)}"] += 1
                continue
            built = _next_step(con, set_id, decl, position + 1, json.loads(spec_text), catalog)
            if isinstance(built, str):
                summary.stopped[f"{decl.name}: {built}"] += 1
                continue
            new_calls.append(built[0])
            new_steps.append(built[1])
        if not new_steps:
            return summary
        summary.rounds += 1
        calls = [{**c, "arguments": json.dumps(c["arguments"], sort_keys=True), "run_id": run_id} for c in new_calls]
        insert_new(con, "candidate_calls", calls)
        summary.added += insert_new(con, "call_set_steps", [{**s, "run_id": run_id} for s in new_steps])
        executed = execute_calls(config, con, catalog, run_id, only=sorted({c["call_id"] for c in new_calls}))
        summary.executed += executed.requested
        summary.requests += executed.http_requests
        summary.replayed += executed.requested if config.execute.transport == "replay" else 0
        summary.unanswered += sum(
            n for o, n in executed.outcomes.items() if o in ("http_error", "timeout", "replay_miss")
        )


def _next_step(
    con: duckdb.DuckDBPyConnection, set_id: str, decl: Declaration, index: int, spec: dict, catalog: Catalog
) -> tuple[dict, dict] | str:
    """(candidate call, step row) of step ``index`` of a chain, or why it cannot be built."""
    observations = dict(
        con.execute(
            f"with s as ({STEP_STATE}) select position, observation from s where set_id = ?", [set_id]
        ).fetchall()
    )
    args: dict[str, Any] = {}
    fed_by: dict[str, dict] = {}
    depends_on = index - 1
    ctx = spec["context"][0] if spec.get("context") else {}
    for name, value in step_args(decl, index, catalog).items():
        linked = link(value)
        if linked is None:
            args[name] = fill(value, ctx)
            continue
        source = (linked.step or index) - 1
        text = observations.get(source)
        if text is None:
            return f"step {source + 1} has no observation"
        try:
            found = read_path(json.loads(text), linked.parts)
        except json.JSONDecodeError:
            found = None
        if found is None or str(found) not in text:
            return f"no value at {linked.path} in step {source + 1}'s observation"
        args[name] = found
        fed_by[name] = {"from": linked.path, "value": found}
        depends_on = source
    tool = catalog[decl.steps[index].function]
    row = call_row(tool, coerce(tool, args), None, SET_TEMPLATE_PREFIX + decl.name)
    if not row["valid"]:
        return f"step {index + 1} invalid: {row['invalid_reason']}"
    step = {
        "set_id": set_id,
        "position": index,
        "call_id": row["call_id"],
        "depends_on": depends_on,
        "fed_by": json.dumps(fed_by, sort_keys=True),
    }
    return row, step


# --- assembly ---------------------------------------------------------------------------


@dataclass
class AssembleSummary:
    sets: int = 0
    new: int = 0
    reused: int = 0
    incomplete: int = 0  # a step unanswered yet, or a chain that stopped (counted by extend_chains)
    failed: Counter[str] = field(default_factory=Counter)  # reason -> sets


def assemble_sets(con: duckdb.DuckDBPyConnection, kinds: ItemKinds, run_id: str) -> AssembleSummary:
    """The combined observation of every set whose steps all have one (``no_tool``: '[]')."""
    summary = AssembleSummary()
    sets = con.execute("select set_id, kind, template from call_sets order by set_id").fetchall()
    states: dict[str, list] = {}
    for row in con.execute(f"with s as ({STEP_STATE}) select * from s order by set_id, position").fetchall():
        states.setdefault(row[0], []).append(row)
    observations, members = [], []
    for set_id, kind, template in sets:
        summary.sets += 1
        steps = states.get(set_id, [])
        if kind != "no_tool":
            _, decl = kinds.by_name(template)
            failed = [s for s in steps if s[4] is None and s[3]]
            if failed:
                summary.failed[f"{kind} {template}: step {failed[0][1] + 1} {_failure(failed[0][7])}"] += 1
                continue
            expected = len(decl.steps) * (decl.count if kind == "parallel" else 1)
            if len(steps) < expected or any(s[4] is None for s in steps):
                summary.incomplete += 1
                continue
        text = json.dumps([s[4] for s in steps])
        observation_id = content_hash(set_id, text)
        responses = [s[6] for s in steps] or [set_id]
        observations.append(
            {
                "observation_id": observation_id,
                "call_id": set_id,
                "response_id": content_hash(*responses),
                "text": text,
                "builder": "call_set",
                "chars": len(text),
                "run_id": run_id,
            }
        )
        members += [{"observation_id": observation_id, "position": s[1], "step_observation_id": s[5]} for s in steps]
    summary.new = insert_new(con, "observations", observations)
    summary.reused = len(observations) - summary.new
    insert_new(con, "call_set_observations", members)
    return summary
