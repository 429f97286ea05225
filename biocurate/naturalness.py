"""Natural phrasing: what a biologist would not write in a question.

Each rule has a name (the reason a failing question stores, with the text that broke it), a
search pattern in the syntax RE2 and Python share (no look-arounds or groups) that every
breaking question matches, and an exact pattern. ``unnatural`` runs the search patterns over a
whole column at once (pyarrow's RE2 kernel: about 0.1 s per 100k questions); only the rows it
finds are read again in Python by ``problems``, which applies the exact patterns and drops the
few natural uses a pattern cannot tell apart (an abbreviation's period, "the OR" as an odds
ratio, a null allele). The rules:

* query syntax: ``field:value`` pairs, upper-case ``AND``/``OR``/``NOT`` between terms,
  bracketed Entrez tags (``INS[gene]``), pipes;
* machine names: snake_case words (``homo_sapiens``, ``organism_id``), the catalog's function
  and code-like parameter names, URLs, API words ("UIDs", "endpoint", "stream", "record
  matching", "API" and the configured jargon);
* style: a sentence starting in lower case, a lower-case "i" as a word;
* template residue: ``{placeholder}``, ``${...}``, ``<field>``, None, null, NaN, undefined.

The quality suite's ``query_reads_naturally`` expectation applies them
(``biocurate.expectations_gx``); the word lists come from its kwargs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

# (rule, search pattern: RE2, no groups, a superset; exact pattern: group 1, if any, is the part
# to report). In priority order: where two matches overlap, the earlier rule names it.
_RULES: tuple[tuple[str, str, str], ...] = (
    (
        "URL",
        r"https?://|\bwww\.|\w\.(?:org|gov|com|net|edu|io)\b",
        r"https?://\S*|\bwww\.\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:org|gov|com|net|edu|io)\b",
    ),
    (
        "template residue",
        r"\{[A-Za-z_][A-Za-z0-9_]*\}|\$\{|<[a-z_]+>|\{\{|\}\}|\bNone\b|\bnull\b|\bNaN\b|\bnan\b|"
        r"\bundefined\b",
        r"\{[A-Za-z_][A-Za-z0-9_]*\}|\$\{[^}]*\}?|<[a-z_]+>|\{\{|\}\}|\bNone\b|\bnull\b|\bNaN\b|\bnan\b|\bundefined\b",
    ),
    ("query syntax field:value", r"\b[a-z][a-z_]*:[A-Za-z0-9\"(\[*]", r"\b[a-z][a-z_]*:[A-Za-z0-9\"(\[*][^\s,;?!)]*"),
    ("Entrez tag", r"[\w\")]\[[A-Za-z]", r"[\w\")]\[[A-Za-z][A-Za-z ]{0,30}(?::[A-Za-z]+)?\]"),
    ("pipe", r"\|", r"\|"),
    ("boolean operator", r"\s(?:AND|OR|NOT)\s", r"\S\s+(AND|OR|NOT)\s+\S"),
    ("snake_case name", r"\b[A-Za-z][a-z0-9]*_[a-z0-9]", r"\b[A-Za-z][a-z0-9]*_[a-z0-9][A-Za-z0-9_]*"),
    ('lower-case "i"', r"(?:^|[^A-Za-z0-9_.'’-])i(?:\s|'|’|$)", r"(?:^|[^A-Za-z0-9_.'’-])(i)(?:\s|'|’|$)"),
    (
        "sentence starts in lower case",
        r"^\s*[a-z]|[.?!]\s+[a-z]",
        r"(?:^\s*|[a-z0-9)\]\"'][.?!]\s+)([a-z]+)(?:[^A-Za-z0-9_]|$)",
    ),
)
_TOKEN = re.compile(r"[A-Za-z0-9_]+")
# A period after these is no sentence end; "OR" after these is an odds ratio.
_ABBREVIATIONS = frozenset("e.g i.e etc vs approx cf ca al sp spp no vol fig p pp incl resp".split())
_NOT_OPERATOR = frozenset("the an its their which what this that each per".split())
# "null allele", "None of ...": ordinary words.
_NATURAL_NULL = re.compile(
    r"\b(?:null\s+(?:allele|alleles|mutant|mutants|mutation|mutations|hypothesis|model|"
    r"mice|mouse|phenotype|background|strain|lines?)|None\s+of)\b"
)


def _words_pattern(words: Iterable[str]) -> str | None:
    items = sorted({w.strip() for w in words if w and w.strip()}, key=len, reverse=True)
    if not items:
        return None
    return r"(?i)\b(?:" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in items) + r")\b"


@lru_cache(maxsize=32)
def prefilter(code_names: tuple[str, ...] = (), api_words: tuple[str, ...] = ()) -> str:
    """One RE2 pattern that every unnatural question matches (fixed rules, catalog names, API words)."""
    parts = [p for _, p, _ in _RULES] + [p for p in (_words_pattern(code_names), _words_pattern(api_words)) if p]
    return "|".join(f"(?:{p})" for p in parts)


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


@lru_cache(maxsize=32)
def _vocabulary(code_names: tuple[str, ...], api_words: tuple[str, ...]) -> tuple[dict, re.Pattern | None]:
    """Single-token names, lower-cased -> their rule; a pattern for the multi-word API words."""
    single = {w.strip().lower(): "API word" for w in api_words if _TOKEN.fullmatch(w.strip())}
    single.update({n.lower(): "catalog name" for n in code_names})
    multi = _words_pattern(w for w in api_words if not _TOKEN.fullmatch(w.strip()))
    return single, re.compile(multi) if multi else None


def _focus(rule: str, text: str, match: re.Match) -> tuple[int, int]:
    """The part of a match that breaks the rule: its first group (the operator, the word), an
    Entrez tag with the term before it, else the whole match."""
    if match.re.groups and match.group(1) is not None:
        return match.span(1)
    start, end = match.span()
    if rule == "Entrez tag":
        start -= len(re.findall(r'[\w".-]*$', text[:start])[0])
    return start, end


def _natural_use(rule: str, text: str, match: re.Match, start: int) -> bool:
    """A match a pattern cannot tell from a natural use."""
    head = text[:start].rstrip()
    before = head.split()[-1].lower() if head.split() else ""
    if rule == "sentence starts in lower case" and start > 0:
        return head.endswith(".") and before.rstrip(".") in _ABBREVIATIONS
    if rule == "boolean operator":
        return match.group(1) == "OR" and before.strip("(\"'") in _NOT_OPERATOR
    if rule == "template residue" and match.group(0) in ("None", "null"):
        return any(m.start() == match.start() for m in _NATURAL_NULL.finditer(text))
    return False


def problems(
    text: str, code_names: Iterable[str] = (), api_words: Iterable[str] = (), only: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """(rule, offending text) for every rule the text breaks, in reading order; an overlapping
    match of a later rule (the snake_case of a function name) is not repeated. ``only``: the
    rules worth trying (those whose search pattern matched), all by default."""
    text = str(text)
    single, multi = _vocabulary(tuple(code_names), tuple(api_words))
    wanted = set(only) if only is not None else None
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, str, str]] = []

    def keep(start: int, end: int, rule: str) -> None:
        if not any(start < e and s < end for s, e in taken):
            taken.append((start, end))
            found.append((start, rule, text[start:end].strip(" \t.?!,;:")))

    def fixed(rules: tuple[tuple[str, str, str], ...]) -> None:
        for rule, search, pattern in rules:
            if wanted is not None and rule not in wanted or wanted is None and not _compiled(search).search(text):
                continue
            for match in _compiled(pattern).finditer(text):
                start, end = _focus(rule, text, match)
                if not _natural_use(rule, text, match, start):
                    keep(start, end, rule)

    # Catalog names first ("lookup_by_symbol" is a function name before it is snake_case), then
    # URLs (before the API word "https"), API words, the other rules.
    tokens = (
        [(t.span(), single.get(t.group(0).lower())) for t in _TOKEN.finditer(text)]
        if wanted is None or wanted & {"catalog name", "API word"}
        else []
    )
    for span, kind in tokens:
        if kind == "catalog name":
            keep(*span, kind)
    fixed(_RULES[:1])
    for span, kind in tokens:
        if kind == "API word":
            keep(*span, kind)
    for match in multi.finditer(text) if multi and tokens else ():
        keep(*match.span(), "API word")
    fixed(_RULES[1:])
    return [(rule, shown) for _, rule, shown in sorted(found)]


def describe(found: list[tuple[str, str]]) -> str:
    """Problems as one reason: "query syntax field:value 'gene:CFTR'; boolean operator 'AND'"."""
    return "; ".join(f"{rule} {shown!r}" for rule, shown in dict.fromkeys(found))


def _search(values: list[str], pattern: str) -> list[bool]:
    """Which values match: one RE2 pass (pyarrow), Python ``re`` without pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow is a dependency; kept for a bare install
        search = re.compile(pattern).search
        return [search(v) is not None for v in values]
    return pc.match_substring_regex(pa.array(values, type=pa.large_string()), pattern).to_pylist()


def unnatural(texts: pd.Series, code_names: Iterable[str] = (), api_words: Iterable[str] = ()) -> pd.Series:
    """Row-wise: does the question break a naturalness rule. One RE2 pass over the column finds
    the candidates; on those, one pass per rule says which rules to try in Python."""
    names, words = tuple(code_names), tuple(api_words)
    values = [str(t) for t in texts]
    hits = [i for i, hit in enumerate(_search(values, prefilter(names, words))) if hit]
    out = [False] * len(values)
    if hits:
        subset = [values[i] for i in hits]
        searches = [(rule, search) for rule, search, _ in _RULES]
        searches += [
            (rule, p) for rule, p in (("catalog name", _words_pattern(names)), ("API word", _words_pattern(words))) if p
        ]
        per_rule = [(rule, _search(subset, search)) for rule, search in searches]
        for j, i in enumerate(hits):
            rules = {rule for rule, matched in per_rule if matched[j]}
            out[i] = bool(problems(values[i], names, words, only=rules))
    return pd.Series(out, index=texts.index, dtype=bool)
