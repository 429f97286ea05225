"""The rule checks of questions about call sets (docs/item_kinds.md), used by the judge (rules
and LLM) and by the quality stage, each saying why it fails:

* every step: a catalog function, arguments that fit its schema, an informative observation;
* ``parallel``: every step's values mentioned as their kinds require;
* ``multi_step``: the first step's values mentioned, no value fed to a later step in the question,
  and the question *needs* the later step: it asks for something the last step's observation
  holds and the first step's does not (``needs_later_step``);
* ``no_tool``: no offered tool answers it (``ToolMatcher``): the question is not, up to its
  names and identifiers, one of a catalog function's own questions (its templates in
  ``catalog/*/*.yaml``, filled or not).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

from biocurate.catalog import Catalog
from biocurate.mentions import MentionRules, missing_mentions
from biocurate.near_dup import FILLER, TOKEN
from biocurate.observations import NotAnAnswer
from biocurate.observations.json_builders import require_answer
from biocurate.set_items import CallSet, set_mentions

# A no_tool question this similar (Jaccard of content words) to a function's own question is
# one that function answers.
NO_TOOL_MATCH = 0.6
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
STOPWORDS = FILLER | frozenset(
    "what which who whom whose where when why how in on at for to from with by and or as into about its it "
    "this that these those there their be been being has have had any all some my our your their "
    "than then so such also only just there here one ones find list get know known".split()
)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def content_words(text: str) -> frozenset[str]:
    """Lower-case words of ``text`` without filler, function words or numbers, singular."""
    return frozenset(_stem(t) for t in TOKEN.findall(text.lower()) if t not in STOPWORDS and t.isalpha())


def named_words(text: str) -> frozenset[str]:
    """The words of ``text`` written as names or identifiers (a digit, or a capital after the
    first letter: BRCA1, TP53, INS, rs699): what the question is about, not what it asks."""
    return frozenset(
        _stem(w.lower()) for w in TOKEN.findall(text) if any(c.isdigit() for c in w) or w[1:] != w[1:].lower()
    )


@dataclass(frozen=True)
class ToolMatch:
    function: str
    template: str
    similarity: float

    def reason(self) -> str:
        return (
            f"an offered tool answers it: {self.function} (its question {self.template!r}, "
            f"similarity {self.similarity:.2f})"
        )


class ToolMatcher:
    """The catalog functions' own questions, as content words without their placeholders."""

    def __init__(self, catalog: Catalog):
        self.templates: list[tuple[str, str, frozenset[str]]] = []
        for tool in catalog:
            if tool.function.questions is None:
                continue
            for style in ("broad", "specific"):
                for template in getattr(tool.function.questions, style):
                    words = content_words(PLACEHOLDER.sub(" ", template))
                    if words:
                        self.templates.append((tool.name, template, words))

    def best(self, text: str, names: frozenset[str] = frozenset()) -> ToolMatch | None:
        """The function whose question is most like ``text`` (its names and identifiers, and the
        words of ``names``, left out), or None."""
        asked = content_words(text) - named_words(text) - names
        if not asked:
            return None
        best: ToolMatch | None = None
        for function, template, words in self.templates:
            score = len(asked & words) / len(asked | words)
            if best is None or score > best.similarity:
                best = ToolMatch(function, template, round(score, 3))
        return best

    def answers(self, text: str, names: frozenset[str] = frozenset()) -> ToolMatch | None:
        """The offered function that answers ``text``, when one does (``NO_TOOL_MATCH``)."""
        match = self.best(text, names)
        return match if match is not None and match.similarity >= NO_TOOL_MATCH else None


def informative(observation: str) -> bool:
    """Whether the observation holds a fact other than a job status (the observation builders'
    own test, ``require_answer``). Its size does not matter: ``{"ping":1}`` answers "is Ensembl
    up?" completely."""
    try:
        parsed = json.loads(observation)
    except ValueError:
        return bool(observation.strip())
    try:
        require_answer(parsed)
    except NotAnAnswer:
        return False
    return True


def _observation_words(text: str) -> frozenset[str]:
    return frozenset(_stem(t) for t in TOKEN.findall(text.lower()) if t.isalpha())


def observation_counts(text: str) -> Counter[str]:
    """How often each (singular, lower-case) word occurs in an observation."""
    return Counter(_stem(t) for t in TOKEN.findall(text.lower()) if t.isalpha())


def needs_later_step(text: str, call_set: CallSet) -> tuple[bool, str]:
    """Whether a multi_step question asks for something the later step returns: a word of the
    question (not a name, not step 1's argument values) that the last step's observation holds
    more often than the first step's (absent from it, or listed many times where step 1 names it
    once: the transcripts of a gene, the entries of a search). Returns (ok, what it asks for or
    why it fails)."""
    if len(call_set.steps) < 2:
        return False, "the chain has no later step"
    first, last = call_set.steps[0], call_set.steps[-1]
    given = content_words(" ".join(str(v) for v in first.arguments.values()))
    asked = content_words(text) - named_words(text) - given
    before, after = observation_counts(first.observation), observation_counts(last.observation)
    later = sorted(w for w in asked if after[w] > before[w])
    if later:
        return True, "asks for " + ", ".join(f"{w} ({after[w]} in the last step, {before[w]} in step 1)" for w in later)
    return False, (
        "answerable from step 1 alone: nothing the question asks for is in the last step's observation "
        "more than in the first step's"
    )


def set_names(call_set: CallSet) -> frozenset[str]:
    """The words of a set's own values (its no_tool topic and entity): names, not what is asked."""
    values: list[str] = []

    def walk(value):
        if isinstance(value, dict):
            for k, v in value.items():
                if k not in ("reason", "why", "question", "questions", "asks"):
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and len(value) < 80:
            values.append(value)

    walk(call_set.spec)
    return content_words(" ".join(values))


def kind_checks(
    text: str,
    call_set: CallSet,
    catalog: Catalog,
    rules: MentionRules,
    matcher: ToolMatcher,
    schema_errors: dict[int, str] | None = None,
) -> dict[str, tuple[bool, str]]:
    """The checks of one question about a set: name -> (passed, why)."""
    out: dict[str, tuple[bool, str]] = {}
    bad = []
    for step in call_set.steps:
        if step.function not in catalog.tools:
            bad.append(f"step {step.position + 1}: {step.function} is not in the catalog")
        elif (schema_errors or {}).get(step.position):
            bad.append(f"step {step.position + 1}: {schema_errors[step.position]}")  # type: ignore[index]
        elif not informative(step.observation):
            bad.append(f"step {step.position + 1} ({step.function}): the observation holds no answer")
    out["every call valid and answered"] = (not bad, "; ".join(bad) or "ok")
    if call_set.kind in ("parallel", "multi_step"):
        missing = missing_mentions(text, set_mentions(call_set, catalog, rules))
        out["every call's values mentioned"] = (not missing, "missing " + "; ".join(missing) if missing else "ok")
    if call_set.kind == "multi_step":
        out["needs the later step"] = needs_later_step(text, call_set)
    if call_set.kind == "no_tool":
        match = matcher.answers(text, set_names(call_set))
        out["no offered tool answers it"] = (match is None, match.reason() if match else "no tool's question matches")
    return out


def step_schema_errors(call_set: CallSet, catalog: Catalog) -> dict[int, str]:
    """position -> the first schema error of the step's arguments (jsonschema, the catalog's schema)."""
    import jsonschema

    out = {}
    for step in call_set.steps:
        tool = catalog.tools.get(step.function)
        if tool is None:
            continue
        errors = sorted(
            jsonschema.Draft202012Validator(tool.validation_schema()).iter_errors(step.arguments),
            key=lambda e: list(e.path),
        )
        if errors:
            where = ".".join(str(p) for p in errors[0].path) or "(arguments)"
            out[step.position] = f"parameter {where}: {errors[0].message}"
    return out


def combined_calls(call_set: CallSet) -> str:
    """The set's calls as the prompts show them: a JSON array of {name, arguments}."""
    return json.dumps([{"name": s.function, "arguments": s.arguments} for s in call_set.steps], sort_keys=True)
