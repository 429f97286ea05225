"""One parser for the query languages a call's argument may be written in.

* UniProt query syntax: ``gene:TP53 AND organism_id:9606 AND reviewed:true``, quoted values
  (``category_exact:"Sequence databases"``), grouped values (``organism_id:(9606 OR 10090)``),
  ranges (``length:[100 TO 200]``), wildcards (``insul*``), bare words (``insulin``);
* Entrez search terms: ``INS[gene] AND human[orgn]``, ``"breast cancer"[tiab]``,
  ``txid9606[Organism:exp]``;
* plain ``field:value`` filters and free text, which are the same grammar.

``parse_query`` returns the terms (field or tag, value) and drops what only joins them:
upper-case ``AND``/``OR``/``NOT``, parentheses, lone wildcards. A bare ontology-style id
(``GO:0006915``: an upper-case prefix and digits) is one value, not a field query. The
grounding rules (``biocurate.mentions``) ask that each term's value be mentioned in a question
in natural form; the naturalness rules (``biocurate.naturalness``) reject the syntax itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPERATORS = frozenset({"AND", "OR", "NOT"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<open>\() | (?P<close>\))
    | (?P<field>[A-Za-z_][\w.]*):(?P<fvalue>"[^"]*"|\[[^\]]*\]|\([^)]*\)|[^\s()]+)
    | (?P<word>"[^"]*"|[^\s()\[\]]+)(?:\[(?P<tag>[^\]]*)\])?
    | (?P<other>.)
    """,
    re.X,
)
_ONTOLOGY_ID = re.compile(r"[A-Z]{2,}")
_RANGE = re.compile(r"\[\s*(\S+)\s+TO\s+(\S+)\s*\]", re.I)


@dataclass(frozen=True)
class Term:
    """One searched value: ``field`` is the UniProt field or the Entrez tag (lower case, a tag's
    qualifier after ``:`` dropped), None for a bare word; ``syntax`` is "field", "tag" or "word";
    ``prefix`` is true for a wildcard value (``insul*`` -> value "insul")."""

    field: str | None
    value: str
    syntax: str
    prefix: bool = False


def _value_terms(field: str | None, raw: str, syntax: str) -> list[Term | str]:
    raw = raw.strip()
    if raw.startswith("(") and raw.endswith(")"):  # a group: organism_id:(9606 OR 10090)
        inner = query_tokens(raw[1:-1])
        return [Term(field, t.value, syntax, t.prefix) if isinstance(t, Term) and t.field is None else t for t in inner]
    ranged = _RANGE.fullmatch(raw)
    if ranged:
        return [Term(field, v, syntax) for v in ranged.groups() if v != "*"]
    value = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    prefix = value.endswith("*")
    value = value.rstrip("*").strip()
    return [Term(field, value, syntax, prefix)] if value else []


def parse_query(text: str) -> list[Term]:
    """The terms of a UniProt query, an Entrez search term or plain ``field:value`` text, in order."""
    return [t for t in query_tokens(text) if isinstance(t, Term)]


def query_tokens(text: str) -> list[Term | str]:
    """The terms and the upper-case operators (``AND``, ``OR``, ``NOT``) between them, in order;
    parentheses dropped (a reading in order, not a parse tree)."""
    tokens: list[Term | str] = []
    for match in _TOKEN.finditer(str(text)):
        kind = match.lastgroup
        if match.group("field") is not None:
            field, value = match.group("field"), match.group("fvalue")
            if _ONTOLOGY_ID.fullmatch(field) and value.isdigit():  # GO:0006915 is one id
                tokens.extend(_value_terms(None, match.group(0), "word"))
            else:
                tokens.extend(_value_terms(field.lower(), value, "field"))
        elif match.group("word") is not None:
            word, tag = match.group("word"), match.group("tag")
            if tag is not None:
                tokens.extend(_value_terms(tag.split(":")[0].strip().lower(), word, "tag"))
            elif word in OPERATORS:
                tokens.append(word)
            else:
                tokens.extend(_value_terms(None, word, "word"))
        elif kind == "other" and match.group(0) not in "[]":
            tokens.extend(_value_terms(None, match.group(0), "word"))
    return tokens


def is_structured(text: str) -> bool:
    """Whether the text uses query syntax (a field, a tag or an operator), not only free words."""
    return any(t.syntax != "word" for t in parse_query(text)) or any(w in OPERATORS for w in str(text).split())
