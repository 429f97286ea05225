"""Questions about call sets (``parallel``, ``multi_step``, ``no_tool``; docs/item_kinds.md).

Every set with a combined observation and no questions from this generator, model and version
gets some, in the ``queries`` table with ``call_id`` = the set and ``observation_id`` = its
combined observation (keys: content hashes, as for single calls).

* Template generator: the declaration's ``questions`` (``catalog/item_kinds.yaml``), filled with
  the set's fields (``biocurate.set_items.set_fields``: each step said in words as a single call
  is, a later step's fields with its position as suffix), picked by rotation as single calls'
  templates are; a template that misses a value the set's questions must mention, that states a
  value a later step takes from an observation, or (``no_tool``) that an offered tool answers
  (``biocurate.set_rules.ToolMatcher``) is passed over. Version: the declaration's questions,
  the words and the mention rules.
* LLM generator: ``prompts/generate_<kind>_v1.md`` through ``biocurate.llm`` (cache, accounting
  and repair as for single calls); version: the prompt's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import duckdb

from biocurate.catalog import Catalog
from biocurate.config import Config, secret
from biocurate.hashing import content_hash
from biocurate.llm import BATCH, Ask, ChatClient, Prompt, ReplyError, ask_and_record, load_prompt
from biocurate.mentions import MentionRules, missing_mentions
from biocurate.sampling import MissingField, fill, unit
from biocurate.set_items import (
    CallSet,
    declarations,
    declared_questions,
    load_sets,
    mention_lines,
    set_fields,
    set_mentions,
)
from biocurate.set_rules import ToolMatcher, _observation_words, combined_calls, set_names
from biocurate.store import insert_new
from biocurate.vocabulary import STYLES
from biocurate.wording import Wording

GENERATE_PROMPTS = {kind: f"generate_{kind}_v1" for kind in ("parallel", "multi_step", "no_tool")}


@dataclass
class SetSynthesis:
    sets: int = 0
    queries_new: int = 0
    requests: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    failed_from_cache: int = 0


def pick_questions(
    options: dict[str, list[str]],
    name: str,
    rank: int,
    fields: dict[str, str],
    k: int,
    seed: int,
    accept: Callable[[str], bool] | None = None,
) -> list[tuple[str, str]]:
    """k (style, text) pairs from ``options`` (style -> templates), styles alternating broad/specific,
    the template picked by ``rank`` (rotation among the calls or sets of ``name``); a template
    lacking a field, or whose question ``accept`` refuses, is passed over."""
    out: list[tuple[str, str]] = []
    for i in range(k):
        style = STYLES[i % 2]
        templates = list(options.get(style) or [])
        if not templates:
            continue
        start = (rank * ((k + 1) // 2) + i // 2 + int(_draw(seed, name, style) * len(templates))) % len(templates)
        for template in templates[start:] + templates[:start]:
            try:
                text = fill(template, fields)
            except MissingField:
                continue
            if accept is not None and not accept(text):
                continue
            if text not in (t for _, t in out):
                out.append((style, text))
                break
    return out


@lru_cache(maxsize=4096)
def _draw(seed: int, name: str, style: str) -> float:
    """``unit(seed, name, style)``: the same for every call of a function, so drawn once."""
    return unit(seed, name, style)


def parse_query_list(reply: dict, k: int) -> list[tuple[str, str]]:
    """The first k (style, text) pairs of a generator reply's ``queries``; a missing or unknown
    style alternates."""
    items = reply.get("queries")
    if not isinstance(items, list) or not items:
        raise ReplyError("reply has no 'queries' list")
    out: list[tuple[str, str]] = []
    for item in items[:k]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ReplyError(f"a query has no text: {item!r}")
        style = item["style"] if item.get("style") in STYLES else STYLES[len(out) % 2]
        out.append((style, " ".join(item["text"].split())))
    return out


def set_template_version(decl: dict | None, words: Wording, rules_version: str) -> str:
    return "template-set-" + content_hash(declared_questions(decl), words.version, rules_version, length=8)


def query_row(set_id, observation_id, text, style, generator, model, version, temperature, seed, run_id) -> dict:
    return {
        "query_id": content_hash("query", set_id, text, generator, model, version),
        "call_id": set_id,
        "observation_id": observation_id,
        "text": text,
        "style": style,
        "generator": generator,
        "model": model,
        "prompt_version": version,
        "temperature": temperature,
        "seed": seed,
        "run_id": run_id,
    }


def sets_without_queries(con: duckdb.DuckDBPyConnection, generator: str, model: str, versions: dict[str, str]):
    """Set ids (with a combined observation) without questions from this generator, model and
    the version of their kind or declaration (``versions``: template or kind -> version)."""
    rows = con.execute(
        """
        select s.set_id, s.kind, s.template, q.prompt_version
        from call_sets s
        join observations o on o.call_id = s.set_id and o.builder = 'call_set'
        left join queries q on q.call_id = s.set_id and q.generator = ? and q.model = ?
        order by s.set_id
        """,
        [generator, model],
    ).fetchall()
    asked: dict[str, set] = {}
    for set_id, kind, template, version in rows:
        asked.setdefault(set_id, set())
        if version is not None and version == versions.get(template, versions.get(kind)):
            asked[set_id].add(version)
    return sorted(sid for sid, seen in asked.items() if not seen)


def synthesize_sets(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, words: Wording, rules: MentionRules
) -> SetSynthesis:
    gen = config.synthesis.generator
    decls = declarations(config.path(config.sample.catalog_dir))
    out = SetSynthesis()
    if gen.provider != "template":
        prompt_dir = config.path(config.synthesis.prompt_dir)
        versions = {kind: load_prompt(prompt_dir, name).version for kind, name in GENERATE_PROMPTS.items()}
        todo = sets_without_queries(con, "openai", gen.model, versions)
        return _synthesize_sets_llm(config, con, catalog, run_id, load_sets(con, todo), words, rules, out)
    versions = {name: set_template_version(d, words, rules.version) for name, d in decls.items()}
    todo = sets_without_queries(con, "template", gen.model, versions)
    if not todo:
        return out
    sets = load_sets(con, todo)
    matcher = ToolMatcher(catalog)
    ranks = {
        sid: rank
        for sid, rank in con.execute(
            "select set_id, row_number() over (partition by template order by set_id) - 1 from call_sets"
        ).fetchall()
    }
    rows = []
    for set_id, call_set in sets.items():
        out.sets += 1
        decl = decls.get(call_set.template)
        options = declared_questions(decl)
        if not any(options.values()):
            reason = f"{call_set.template}: no question templates"
            out.failures[reason] = out.failures.get(reason, 0) + 1
            continue
        accept = _acceptor(call_set, catalog, rules, matcher)
        fields = set_fields(call_set, catalog, words, decl)
        version = versions[call_set.template]
        picked = pick_questions(
            options,
            call_set.template,
            ranks.get(set_id, 0),
            fields,
            config.synthesis.queries_per_call,
            gen.seed,
            accept,
        )
        if not picked:
            reason = f"{call_set.template}: no template fits the set"
            out.failures[reason] = out.failures.get(reason, 0) + 1
        for style, text in picked:
            rows.append(
                query_row(
                    set_id, call_set.observation_id, text, style, "template", gen.model, version, 0.0, gen.seed, run_id
                )
            )
    out.queries_new = insert_new(con, "queries", rows)
    return out


def _acceptor(call_set: CallSet, catalog: Catalog, rules: MentionRules, matcher: ToolMatcher) -> Callable[[str], bool]:
    if call_set.kind == "no_tool":
        names = set_names(call_set)
        return lambda text: matcher.answers(text, names) is None
    mentions = set_mentions(call_set, catalog, rules)
    return lambda text: not missing_mentions(text, mentions)


# --- the LLM generator ---------------------------------------------------------------------------


def later_words(call_set: CallSet, limit: int = 12) -> list[str]:
    """Words the last step's observation holds and the first step's does not (what a multi_step
    question may ask for), in order of appearance."""
    if len(call_set.steps) < 2:
        return []
    first = _observation_words(call_set.steps[0].observation)
    seen: dict[str, None] = {}
    for word in _observation_words(call_set.steps[-1].observation) - first:
        if len(word) > 3:
            seen.setdefault(word)
    return sorted(seen)[:limit]


def render_set_prompt(prompt, call_set: CallSet, catalog: Catalog, words: Wording, rules, k: int, decl) -> str:
    spec = call_set.spec
    descriptions = [
        f"  - call {s.position + 1}: {catalog.tools[s.function].function.description}"
        for s in call_set.steps
        if s.function in catalog.tools
    ]
    fed = [f"  - call {p} {param} = {value!r}" for p, param, value in call_set.fed_values()]
    fields = set_fields(call_set, catalog, words, decl) if call_set.kind == "no_tool" else {}
    return prompt.render(
        k=k,
        styles=", ".join(STYLES[i % 2] for i in range(k)),
        calls=combined_calls(call_set),
        descriptions="\n".join(descriptions) or "  (none)",
        observations="\n".join(f"  {s.position + 1}. {s.observation}" for s in call_set.steps) or "  (none)",
        mentions=mention_lines(
            call_set,
            catalog,
            words,
            rules,
            "  - call {n} ({function}): keep verbatim: {keep}; say in words: {said}",
            "  (none)",
        ),
        fed="\n".join(fed) or "  (none)",
        asks=", ".join(later_words(call_set)) or "(see the last call's data)",
        topic=spec.get("topic") or (decl or {}).get("topic") or call_set.template,
        reason=spec.get("reason") or (decl or {}).get("reason") or "(not given)",
        entity=", ".join(f"{k_}: {v}" for k_, v in fields.items() if k_ not in ("reason", "topic")) or "(none)",
        tools=", ".join(sorted(catalog.tools)),
    )


def generate_with_model(chat: ChatClient, batches: Iterable[list[Ask]], shape: str, repair: Prompt, out):
    """The generator model's questions for ``batches`` (each ``Ask`` about a call or a set, its
    ``item`` the observation the questions are written from), written as queries; ``out`` (the
    single calls' or the sets' summary) counts them and each failure by its kind."""
    cfg = chat.cfg

    def record(ask: Ask, parsed: list[tuple[str, str]]) -> list[dict]:
        return [
            query_row(
                ask.subject,
                ask.item,
                text,
                style,
                "openai",
                cfg.model,
                ask.version,
                cfg.temperature,
                cfg.seed,
                chat.run_id,
            )
            for style, text in parsed
        ]

    done = ask_and_record(chat, batches, "generate", shape, repair, "queries", record, stage="synthesize")
    out.queries_new += done.new
    for _, reply, reason in done.failures:
        kind = reason.split(":")[0]
        out.failures[kind] = out.failures.get(kind, 0) + 1
        out.failed_from_cache += reply.cached
    out.requests = chat.requests_made
    return out


def _synthesize_sets_llm(config, con, catalog, run_id, sets: dict[str, CallSet], words, rules, out: SetSynthesis):
    cfg = config.synthesis.generator
    prompt_dir = config.path(config.synthesis.prompt_dir)
    prompts = {kind: load_prompt(prompt_dir, name) for kind, name in GENERATE_PROMPTS.items()}
    repair = load_prompt(prompt_dir, "repair_v1")
    decls = declarations(config.path(config.sample.catalog_dir))
    chat = ChatClient(cfg, secret("llm_api_key"), con, run_id)
    k = config.synthesis.queries_per_call
    shape = '{"queries": [{"style": "broad", "text": "..."}, {"style": "specific", "text": "..."}]}'
    todo = list(sets.values())

    def asks(items: list[CallSet]) -> list[Ask]:
        out.sets += len(items)
        return [
            Ask(
                s.set_id,
                render_set_prompt(prompts[s.kind], s, catalog, words, rules, k, decls.get(s.template)),
                prompts[s.kind].version,
                lambda r: parse_query_list(r, k),
                item=s.observation_id,
            )
            for s in items
        ]

    batches = (asks(todo[start : start + BATCH]) for start in range(0, len(todo), BATCH))
    return generate_with_model(chat, batches, shape, repair, out)
