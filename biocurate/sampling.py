"""Sampling: turn seed entities into candidate API calls, valid against the catalog.

Deterministic: the same seeds, catalog and config give the same calls (every choice is drawn
from a hash of the seed and what is being chosen, never from global random state).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from biocurate.catalog import Catalog, Tool
from biocurate.config import SampleConfig
from biocurate.hashing import content_hash

PLACEHOLDER = re.compile(r"\{([a-z_A-Z0-9]+)\}")


def unit(*parts) -> float:
    """A deterministic number in [0, 1) drawn from the parts."""
    return int(content_hash(*parts, length=12), 16) / 16**12


def entity_context(entity: dict, species: dict) -> dict:
    """Entity fields plus what can be derived from them (common species name, taxon id)."""
    ctx = dict(entity["fields"])
    sp = ctx.get("species")
    if sp and sp in species:
        ctx.setdefault("species_common", species[sp]["common"])
        ctx.setdefault("taxon_id", str(species[sp]["taxon_id"]))
    return ctx


class MissingField(KeyError):
    pass


def fill(template, ctx: dict):
    """Fill "{field}" placeholders; a template that is exactly one placeholder keeps the value."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole:
            if whole.group(1) not in ctx:
                raise MissingField(whole.group(1))
            return ctx[whole.group(1)]
        try:
            return template.format_map(_Strict(ctx))  # str.format's own parser (C): several times faster
        except KeyError as exc:
            raise MissingField(exc.args[0]) from None
    if isinstance(template, list):
        return [fill(t, ctx) for t in template]
    return template


class _Strict(dict):
    def __missing__(self, key):
        raise KeyError(key)


def coerce(tool: Tool, args: dict) -> dict:
    """Seed fields are text; give each argument the type its parameter declares, in BioTool's value
    form (Ensembl flags 1/0, UniProt flags true/false, lists as comma-separated text)."""
    out = {}
    for name, value in args.items():
        param = tool.function.params.get(name)
        if param is not None and isinstance(value, str):
            if param.type == "integer" and value.lstrip("-").isdigit():
                value = int(value)
            elif param.type == "boolean" and value.lower() in ("true", "false"):
                value = value.lower() == "true"
        out[name] = value
    return tool.biotool_arguments(out)


@dataclass
class SampleResult:
    calls: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count


def candidate_args(tool: Tool, entities: list[dict], species: dict, result: SampleResult):
    """(entity_id, args, template name) for every entity the function's template can use."""
    sample = tool.function.sample
    assert sample is not None, f"{tool.name} has no sampling template"
    if sample.entity == "none":
        for i, case in enumerate(sample.cases or [{}]):
            yield None, dict(case), f"{tool.name}:case{i}"
        return
    for entity, ctx in matching_entities(entities, sample.entity, sample.where, species):
        try:
            args = {k: fill(v, ctx) for k, v in sample.args.items()}
        except MissingField as exc:
            reason = f"{tool.name}: {sample.entity} lacks {exc.args[0]}"
            result.skipped[reason] = result.skipped.get(reason, 0) + 1
            continue
        yield entity["entity_id"], args, f"{tool.name}:{sample.entity}"


def matching_entities(
    entities: list[dict], entity_type: str | None, where: dict, species: dict
) -> Iterator[tuple[dict, dict]]:
    """(entity, context) of every entity of ``entity_type`` whose fields are as ``where`` asks (a
    sample's or a call set declaration's), in the order given."""
    for entity in entities:
        if entity["entity_type"] != entity_type:
            continue
        ctx = entity_context(entity, species)
        if all(matches(ctx.get(k), v) for k, v in where.items()):
            yield entity, ctx


def matches(value, allowed: str | list[str]) -> bool:
    """Whether an entity field has the value a sample's ``where`` asks for (or one of a list)."""
    return str(value) in allowed if isinstance(allowed, list) else str(value) == allowed


def vary(tool: Tool, args: dict, seed: int, key: str) -> dict:
    """Add optional parameters, each with its configured weight, so the data teaches them too."""
    out = dict(args)
    assert tool.function.sample is not None, f"{tool.name} has no sampling template"
    for name, rule in sorted(tool.function.sample.vary.items()):
        if name in out:
            continue
        if unit(seed, tool.name, key, name, "use") < rule.weight:
            pick = int(unit(seed, tool.name, key, name, "value") * len(rule.values))
            out[name] = rule.values[pick]
    return out


def call_row(tool: Tool, args: dict, entity_id: str | None, template: str) -> dict:
    """A ``candidate_calls`` row of ``tool`` with ``args`` (already in BioTool's value forms):
    keyed by the function and its canonical arguments, checked against the catalog."""
    problem = tool.validate(args)
    return {
        "call_id": content_hash("call", tool.name, tool.canonical_arguments(args)),
        "function": tool.name,
        "arguments": args,
        "entity_id": entity_id,
        "template": template,
        "database": tool.database,
        "tool_group": tool.group,
        "category": tool.category,
        "valid": problem is None,
        "invalid_reason": problem,
    }


def sample_calls(catalog: Catalog, entities: list[dict], species: dict, config: SampleConfig) -> SampleResult:
    """Candidate calls for every catalog function that has a sampling template."""
    result = SampleResult()
    for tool in sorted(catalog, key=lambda t: t.name):
        if tool.function.sample is None:
            result.skipped[f"{tool.name}: no sampling template"] = 1
            continue
        options = list(candidate_args(tool, entities, species, result))
        options.sort(key=lambda o: content_hash(config.seed, tool.name, o[0], o[1]))
        quota = config.quota_for(tool.name, tool.group, tool.category, tool.database)
        seen: set[str] = set()
        for entity_id, args, template in options:
            if len(seen) >= quota:
                break
            args = coerce(tool, vary(tool, args, config.seed, content_hash(entity_id, args)))
            call_id = content_hash("call", tool.name, tool.canonical_arguments(args))
            if call_id in seen:  # two entities can give the same canonical arguments
                reason = f"{tool.name}: duplicate arguments"
                result.skipped[reason] = result.skipped.get(reason, 0) + 1
                continue
            seen.add(call_id)
            result.calls.append(call_row(tool, args, entity_id, template))
    return result
