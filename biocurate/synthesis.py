"""Query synthesis: for every observed call, the questions a researcher would ask it.

The offline generator (``provider = "template"``) fills the catalog's question templates,
deterministically, in distinct styles (broad, specific); every query records the generator,
model and prompt version it came from.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from biocurate.catalog import Catalog, Tool
from biocurate.config import Config
from biocurate.hashing import content_hash
from biocurate.sampling import MissingField, entity_context, fill, unit
from biocurate.seeds import species_table
from biocurate.store import insert_new

STYLES = ("broad", "specific")


def argument_text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def identifiers(tool: Tool, arguments: dict) -> list[str]:
    """Argument values that must appear verbatim in every question about this call."""
    return [argument_text(arguments[name]) for name, p in tool.function.params.items()
            if p.identifier and name in arguments]


def template_version(tool: Tool) -> str:
    return "template-" + content_hash(tool.function.questions.model_dump(), length=8)


def question_context(tool: Tool, arguments: dict, entity_fields: dict | None, species: dict) -> dict:
    ctx = entity_context({"fields": entity_fields or {}}, species) if entity_fields else {}
    ctx.update({k: argument_text(v) for k, v in arguments.items()})
    sp = arguments.get("species")
    if isinstance(sp, str) and sp in species:
        ctx.setdefault("species_common", species[sp]["common"])
    ctx.setdefault("species_common", ctx.get("species", "the species").replace("_", " "))
    return ctx


def template_questions(tool: Tool, rank: int, ctx: dict, k: int, seed: int) -> list[tuple[str, str]]:
    """k (style, text) pairs; styles alternate broad/specific.

    The template is picked by the call's rank among its function's calls, so that calls of
    one function use different phrasings (rotation) rather than colliding by chance.
    """
    out: list[tuple[str, str]] = []
    for i in range(k):
        style = STYLES[i % 2]
        options = list(getattr(tool.function.questions, style))
        start = (rank * ((k + 1) // 2) + i // 2 + int(unit(seed, tool.name, style) * len(options))) % len(options)
        for template in options[start:] + options[:start]:
            try:
                text = fill(template, ctx)
            except MissingField:
                continue
            if text not in (t for _, t in out):
                out.append((style, text))
                break
    return out


@dataclass
class SynthesisSummary:
    calls: int = 0
    queries_new: int = 0
    reused: int = 0
    requests: int = 0  # LLM requests actually sent (0 when answered from the cache)
    failures: dict[str, int] = field(default_factory=dict)


def current_versions(config: Config, catalog: Catalog) -> dict[str, str]:
    """function -> the prompt version its new questions would carry (template or prompt file)."""
    gen = config.synthesis.generator
    if gen.provider == "template":
        return {t.name: template_version(t) for t in catalog}
    from biocurate.llm import load_prompt

    version = load_prompt(config.path(config.synthesis.prompt_dir), "generate_v1").version
    return {t.name: version for t in catalog}


def observed_calls_without_queries(con: duckdb.DuckDBPyConnection, generator: str, model: str,
                                   versions: dict[str, str] | None = None):
    """Observed calls without questions from this generator and model (and, given ``versions``,
    from the function's current template or prompt version: a changed template re-asks only
    the calls of the functions it belongs to)."""
    import polars as pl

    frame = pl.DataFrame({"function": list(versions or {}), "prompt_version": list((versions or {}).values())},
                         schema={"function": pl.String, "prompt_version": pl.String})
    con.register("_versions", frame)
    try:
        return con.execute(
            """
            select c.call_id, c.function, c.arguments, e.fields, o.observation_id, o.text
            from candidate_calls c
            join (select call_id, arg_max(observation_id, created_at) as observation_id,
                         arg_max(text, created_at) as text
                  from observations group by call_id) o using (call_id)
            left join entities e using (entity_id)
            left join _versions v on v.function = c.function
            where not exists (select 1 from queries q where q.call_id = c.call_id
                              and q.generator = ? and q.model = ?
                              and (v.prompt_version is null or q.prompt_version = v.prompt_version))
            order by c.call_id
            """,
            [generator, model],
        ).fetchall()
    finally:
        con.unregister("_versions")


def synthesize(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> SynthesisSummary:
    gen = config.synthesis.generator
    summary = SynthesisSummary()
    todo = observed_calls_without_queries(con, gen.provider, gen.model, current_versions(config, catalog))
    summary.reused = con.execute("select count(*) from queries where generator = ? and model = ?",
                                 [gen.provider, gen.model]).fetchall()[0][0]
    if gen.provider != "template":
        from biocurate.llm import synthesize_with_llm  # only needed with a model configured

        return synthesize_with_llm(config, con, catalog, run_id, todo, summary)
    species = species_table(config.path(config.sample.catalog_dir))
    ranks = {cid: rank for cid, rank in con.execute(
        "select call_id, row_number() over (partition by function order by call_id) - 1 "
        "from candidate_calls where call_id in (select call_id from observations)").fetchall()}
    rows = []
    for call_id, function, arguments, fields, observation_id, _ in todo:
        if len(rows) >= INSERT_BATCH:  # written as it goes: flat memory, and a crash keeps what was done
            summary.queries_new += insert_new(con, "queries", rows)
            rows = []
        tool = catalog[function]
        summary.calls += 1
        if tool.function.questions is None:
            summary.failures[f"{function}: no question templates"] = summary.failures.get(function, 0) + 1
            continue
        args = json.loads(arguments)
        ctx = question_context(tool, args, json.loads(fields) if fields else None, species)
        version = template_version(tool)
        for style, text in template_questions(tool, ranks[call_id], ctx, config.synthesis.queries_per_call, gen.seed):
            rows.append({
                "query_id": content_hash("query", call_id, text, "template", gen.model, version),
                "call_id": call_id, "observation_id": observation_id, "text": text, "style": style,
                "generator": "template", "model": gen.model, "prompt_version": version,
                "temperature": 0.0, "seed": gen.seed, "run_id": run_id,
            })
    summary.queries_new += insert_new(con, "queries", rows)
    return summary


INSERT_BATCH = 20_000
