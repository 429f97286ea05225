"""Query synthesis: for every observed call, the questions a researcher would ask it.

The offline generator (``provider = "template"``) fills the catalog's question templates,
deterministically, in distinct styles (broad, specific), with the arguments said in words
(``biocurate.wording``: a species by its name, a query-language argument by the entities in
it); a template that would leave out an argument worth mentioning is not used for that call.
A configured model (any OpenAI-compatible endpoint, through ``biocurate.llm``) is asked with
``prompts/generate_v2.md`` instead: the same mapping, in two phases (what stays verbatim, what
becomes words, what is left unsaid; then the questions). Every query records the generator,
model and prompt version it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import duckdb
import polars as pl

from biocurate.catalog import Catalog, Tool
from biocurate.config import Config, secret
from biocurate.hashing import canonical_json, content_hash
from biocurate.item_kinds import single_call_sql
from biocurate.llm import BATCH, Ask, ChatClient, ReplyError, load_prompt
from biocurate.mentions import as_rows, mention_rules, missing_mentions, rules_dirs, rules_for
from biocurate.set_synthesis import generate_with_model, parse_query_list, pick_questions, synthesize_sets
from biocurate.store import EVERY_CALL, Part, call_parts, insert_new, observation_texts, release
from biocurate.vocabulary import STYLES
from biocurate.wording import Said, Wording, wording
from biocurate.workers import TURNS_MIN_ITEMS, in_turns

GENERATE_PROMPT = "generate_v2"

# Template questions written this many at a time (each batch opens and closes the store): at 100k
# calls, 40,000 rather than 20,000 took synthesis 24.8 -> 21.4 s and its peak, with its worker,
# 37 MB higher.
INSERT_BATCH = 40_000


def template_version(tool: Tool, words: Wording, rules_version: str = "") -> str:
    """The function's templates, the words they are filled with and the mention rules that pick
    among them: a change to any re-asks the function's calls."""
    questions = tool.function.questions.model_dump() if tool.function.questions else None
    return "template-" + content_hash(questions, words.version, rules_version, length=8)


def question_context(tool: Tool, arguments: dict, entity_fields: dict | None, words: Wording) -> Said:
    """The template fields of one call: its arguments in words, over the entity's fields."""
    return words.say(tool, arguments, entity_fields)


def template_questions(
    tool: Tool, rank: int, said: Said, k: int, seed: int, accept: Callable[[str], bool] | None = None
) -> list[tuple[str, str]]:
    """k (style, text) pairs; styles alternate broad/specific.

    The template is picked by the call's rank among its function's calls, so that calls of
    one function use different phrasings (rotation) rather than colliding by chance. A
    template lacking a field of this call is passed over, and so is one whose question
    ``accept`` refuses (the generator's: a question that misses a mention the call's arguments
    require, by the rules of ``biocurate.mentions``).
    """
    options = {style: list(getattr(tool.function.questions, style)) for style in STYLES}
    return pick_questions(options, tool.name, rank, said.fields, k, seed, accept)


@dataclass
class SynthesisSummary:
    calls: int = 0
    queries_new: int = 0
    reused: int = 0
    requests: int = 0  # LLM requests actually sent (0 when answered from the cache)
    failures: dict[str, int] = field(default_factory=dict)
    failed_from_cache: int = 0  # failures whose unusable reply came from the cache: nothing was asked


def current_versions(config: Config, catalog: Catalog) -> dict[str, str]:
    """function -> the prompt version its new questions would carry (template or prompt file)."""
    gen = config.synthesis.generator
    if gen.provider == "template":
        words, rules = wording(config.path(config.sample.catalog_dir)), rules_for(config)
        # a function without templates gets no questions (counted as a failure), not a crash here
        return {t.name: template_version(t, words, rules.version) for t in catalog if t.function.questions is not None}
    version = load_prompt(config.path(config.synthesis.prompt_dir), GENERATE_PROMPT).version
    return {t.name: version for t in catalog}


def observed_calls_without_queries(
    con: duckdb.DuckDBPyConnection,
    generator: str,
    model: str,
    versions: dict[str, str] | None = None,
    part: Part = EVERY_CALL,
):
    """Observed calls (of ``part``) without questions from this generator and model (and, given
    ``versions``, from the function's current template or prompt version: a changed template
    re-asks only the calls of the functions it belongs to): (call_id, function, arguments, entity
    fields, observation_id); the observation's text is read when its batch is due
    (``observation_texts``)."""
    import polars as pl

    frame = pl.DataFrame(
        {"function": list(versions or {}), "prompt_version": list((versions or {}).values())},
        schema={"function": pl.String, "prompt_version": pl.String},
    )
    con.register("_versions", frame)
    try:
        return con.execute(
            f"""
            select c.call_id, c.function, c.arguments, e.fields, o.observation_id
            from candidate_calls c
            join (select call_id, arg_max(observation_id, created_at) as observation_id
                  from observations group by call_id) o using (call_id)
            left join entities e using (entity_id)
            left join _versions v on v.function = c.function
            where {single_call_sql("c")} and {part.where("c.call_id")}
              and not exists (select 1 from queries q where q.call_id = c.call_id
                              and q.generator = ? and q.model = ?
                              and (v.prompt_version is null or q.prompt_version = v.prompt_version))
            order by c.call_id
            """,
            [generator, model],
        ).fetchall()
    finally:
        con.unregister("_versions")


def few_shot_examples(con: duckdb.DuckDBPyConnection, tool_group: str, limit: int = 3) -> str:
    """Already accepted items of the same tool group, when there are some."""
    rows = con.execute(
        "select user_query, function_calling from dataset_items where tool = ? "
        "and version_id = (select max(version_id) from dataset_versions) order by item_id limit ?",
        [tool_group, limit],
    ).fetchall()
    if not rows:
        return ""
    shots = "\n".join(f"- Question: {q}\n  Call: {c}" for q, c in rows)
    return f"Examples of accepted questions for similar calls:\n{shots}\n\n"


def parse_queries(reply: dict, k: int, arguments: dict | None = None) -> list[tuple[str, str]]:
    """The first k (style, text) pairs of a generator reply; a missing or unknown style alternates.

    Given the call's ``arguments``, the reply must also hold phase 1, ``param_analysis``: an
    object saying of each argument whether it is kept verbatim, said in words or left unsaid.
    """
    if arguments:
        analysis = reply.get("param_analysis")
        if not isinstance(analysis, dict) or not analysis:
            raise ReplyError("reply has no 'param_analysis' object (phase 1: each argument KEEP, WORDS or OMIT)")
    return parse_query_list(reply, k)


def render_generate_prompt(
    prompt,
    tool: Tool,
    arguments: dict,
    observation: str,
    k: int,
    words: Wording,
    examples: str = "",
    mentions: tuple = (),
) -> str:
    """The generator prompt for one call: the call, what it returned, and the mapping of its
    arguments (as the call's ``mentions`` require, when given)."""
    return prompt.render(
        k=k,
        styles=", ".join(STYLES[i % 2] for i in range(k)),
        **words.prompt_hints(tool, arguments, mentions),
        examples=examples,
        description=tool.function.description,
        call=canonical_json({"name": tool.name, "arguments": arguments}),
        observation=observation,
    )


def synthesize_with_llm(config: Config, con, catalog: Catalog, run_id: str, todo, summary):
    """Ask the configured model for the questions of ``todo`` (rows of ``observed_calls_without_queries``)."""
    cfg = config.synthesis.generator
    prompt_dir = config.path(config.synthesis.prompt_dir)
    prompt, repair = load_prompt(prompt_dir, GENERATE_PROMPT), load_prompt(prompt_dir, "repair_v1")
    chat = ChatClient(cfg, secret("llm_api_key"), con, run_id)
    words, rules = wording(config.path(config.sample.catalog_dir)), rules_for(config)
    k = config.synthesis.queries_per_call
    shape = (
        '{"param_analysis": {"<argument>": "KEEP|WORDS|OMIT: ..."}, '
        '"queries": [{"style": "broad", "text": "..."}, {"style": "specific", "text": "..."}]}'
    )

    def asks(rows) -> list[Ask]:
        summary.calls += len(rows)
        texts = observation_texts(con, (row[4] for row in rows))
        out = []
        for call_id, function, arguments, _fields, observation_id in rows:
            tool = catalog[function]
            args = json.loads(arguments)
            text = render_generate_prompt(
                prompt,
                tool,
                args,
                texts[observation_id],
                k,
                words,
                few_shot_examples(con, tool.group),
                rules.mentions(tool, args),
            )
            out.append(
                Ask(call_id, text, prompt.version, partial(parse_queries, k=k, arguments=args), item=observation_id)
            )
        return out

    batches = (asks(todo[start : start + BATCH]) for start in range(0, len(todo), BATCH))
    return generate_with_model(chat, batches, shape, repair, summary)


def synthesize(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> SynthesisSummary:
    gen = config.synthesis.generator
    summary = SynthesisSummary()
    versions = current_versions(config, catalog)
    summary.reused = con.execute(
        "select count(*) from queries where generator = ? and model = ?", [gen.provider, gen.model]
    ).fetchall()[0][0]
    made = partial(
        template_rows,
        catalog=catalog,
        rule_folders=rules_dirs(config),
        per_call=config.synthesis.queries_per_call,
        seed=gen.seed,
        model=gen.model,
    )
    per_batch = max(1, INSERT_BATCH // config.synthesis.queries_per_call)
    for part in call_parts(con):  # the work listed a part of the calls at a time
        todo = observed_calls_without_queries(con, gen.provider, gen.model, versions, part)
        if gen.provider != "template":
            summary = synthesize_with_llm(config, con, catalog, run_id, todo, summary)
            continue
        # each call's rank among its function's calls (of every part): which template it starts at
        ranks = {
            cid: rank
            for cid, rank in con.execute(
                "select call_id, rank from (select call_id, row_number() over (partition by function "
                f"order by call_id) - 1 as rank from candidate_calls c where {single_call_sql('c')} "
                f"and call_id in (select call_id from observations)) where {part.where('call_id')}"
            ).fetchall()
        }
        calls = [(*row, ranks[row[0]]) for row in todo]
        del todo, ranks
        batches = (calls[i : i + per_batch] for i in range(0, len(calls), per_batch))
        aside = len(calls) * config.synthesis.queries_per_call >= TURNS_MIN_ITEMS
        summary.calls += len(calls)
        for rows, failures in in_turns(made, batches, aside):
            for reason, count in failures.items():
                summary.failures[reason] = summary.failures.get(reason, 0) + count
            # written as it goes: flat memory, and a crash keeps what was done
            summary.queries_new += insert_new(con, "queries", rows.frame(gen, run_id))
            release(con)  # others get in between batches
    return with_sets(config, con, catalog, run_id, summary)


def template_rows(
    calls: list[tuple],
    catalog: Catalog,
    rule_folders: tuple[Path, Path],
    per_call: int,
    seed: int,
    model: str,
) -> tuple[QueryColumns, dict[str, int]]:
    """The template generator's questions about a batch of (call_id, function, arguments, fields,
    observation_id, rank among its function's calls), and the calls it could not ask about, by
    reason (``biocurate.workers.in_turns`` runs it here or in a worker process)."""
    words, rules = wording(rule_folders[0]), mention_rules(*rule_folders)
    rows = QueryColumns()
    failures: dict[str, int] = {}
    versions: dict[str, str] = {}  # function -> its template version (made once per function)
    for call_id, function, arguments, fields, observation_id, rank in calls:
        tool = catalog[function]
        if tool.function.questions is None:
            reason = f"{function}: no question templates"
            failures[reason] = failures.get(reason, 0) + 1
            continue
        args = json.loads(arguments)
        said = question_context(tool, args, json.loads(fields) if fields else None, words)
        version = versions.get(function)
        if version is None:
            version = versions[function] = template_version(tool, words, rules.version)
        mentions = as_rows(rules.mentions(tool, args))

        def mentions_all(text: str, mentions=mentions) -> bool:
            return not missing_mentions(text, mentions)

        for style, text in template_questions(tool, rank, said, per_call, seed, accept=mentions_all):
            rows.add(
                content_hash("query", call_id, text, "template", model, version),
                call_id,
                observation_id,
                text,
                style,
                version,
            )
    return rows, failures


class QueryColumns:
    """The template generator's questions of a batch, column by column (a frame, not a dict per row)."""

    NAMES = ("query_id", "call_id", "observation_id", "text", "style", "prompt_version")

    def __init__(self) -> None:
        self.columns: dict[str, list[str]] = {name: [] for name in self.NAMES}

    def __len__(self) -> int:
        return len(self.columns["query_id"])

    def add(self, *values: str) -> None:
        for name, value in zip(self.NAMES, values, strict=True):
            self.columns[name].append(value)

    def frame(self, gen, run_id: str) -> pl.DataFrame:
        return pl.DataFrame(self.columns, schema=dict.fromkeys(self.NAMES, pl.String)).select(
            *self.NAMES[:5],
            pl.lit("template").alias("generator"),
            pl.lit(gen.model, pl.String).alias("model"),
            "prompt_version",
            pl.lit(0.0).alias("temperature"),
            pl.lit(gen.seed, pl.Int64).alias("seed"),
            pl.lit(run_id, pl.String).alias("run_id"),
        )


def with_sets(config: Config, con, catalog: Catalog, run_id: str, summary: SynthesisSummary) -> SynthesisSummary:
    """``summary`` with the questions about call sets added (``biocurate.set_synthesis``)."""
    words, rules = wording(config.path(config.sample.catalog_dir)), rules_for(config)
    sets = synthesize_sets(config, con, catalog, run_id, words, rules)
    summary.calls += sets.sets
    summary.queries_new += sets.queries_new
    summary.requests += sets.requests
    summary.failed_from_cache += sets.failed_from_cache
    for reason, n in sets.failures.items():
        summary.failures[reason] = summary.failures.get(reason, 0) + n
    return summary
