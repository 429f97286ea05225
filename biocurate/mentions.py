"""Grounding that fits the value: how a question must mention each argument of its call.

The rules are data (``catalog/mentions.yaml``: a kind per parameter name, per-function
overrides, query-field roles, taxa); this module turns one call's arguments into
``Mention`` requirements, each a regular expression that a question must match (or, for
``species_if_named``, must not match) and a label saying what is missing:

* identifiers (accessions, stable ids, rsIDs, HGVS, sequences, gene symbols) verbatim, as a
  whole token; coordinates verbatim up to the strand suffix and the range separator;
* a species or taxon by any of its names (``catalog/entities.yaml`` ``_species``,
  ``data/seeds/taxon.csv``, the ``taxa`` and ``species_aliases`` of mentions.yaml);
* a query-language argument never verbatim: each term's value by the kind of its field
  (``biocurate.query_language``; field roles from ``catalog/words.yaml``);
* names and codes in natural form or in the words of a table (``catalog/words.yaml``:
  populations, Entrez databases, Ensembl codes), thresholds as percentages.

``MentionRules.mentions`` gives the requirements of a call; ``missing_mentions`` checks a text
against them (the quality suite's ``query_mentions_arguments``, the offline judge). The
patterns and taxon names it builds on are in ``biocurate.mention_forms``; at about 440 lines
this module keeps the rules of every kind next to the requirement rows they produce.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from biocurate.catalog import CATALOG_DIR, Catalog, MentionKind, MentionSpec, Tool, load_mentions, read_yaml
from biocurate.config import Config
from biocurate.errors import CatalogError
from biocurate.hashing import content_hash
from biocurate.mention_forms import (
    AFTER,
    Taxon,
    any_of,
    compiled,
    load_taxa,
    natural_pattern,
    needles,
    number_pattern,
    percent_of,
    token,
    verbatim_pattern,
    words_of,
)
from biocurate.mention_forms import key as name_key
from biocurate.query_language import Term, parse_query

_COORDS = re.compile(
    r"(?:chr)?(?:(?P<chrom>[A-Za-z0-9._]+):)?(?P<start>\d+)(?:-|\.\.)(?P<end>\d+)(?::(?P<strand>-?1))?"
)
_RANGE_SEP = r"(?:-|\.\.|–|\s+to\s+)"
_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.I)


Row = tuple[str, str, bool, tuple[str, ...], str | None]


@dataclass(frozen=True)
class Mention:
    """One requirement: ``pattern`` must match the question (must not, when ``absent``)."""

    param: str  # the argument, or the part of it ("query gene:TP53", "bdata journal")
    value: str
    kind: str
    forms: tuple[str, ...]  # ways a question may say it (for reasons and prompts)
    pattern: str
    absent: bool = False
    # Lower-case strings of which any match of ``pattern`` holds one: a question holding none
    # cannot match, and is not searched (most questions name no other species).
    needles: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.absent and self.kind == "fed":  # a multi_step value taken from an earlier observation
            return f"{self.param} {self.value!r}: not in the question (an earlier step's observation gives it)"
        if self.absent:
            return f"{self.param} {self.value!r}: no other species"
        if self.kind in ("verbatim", "coordinates"):
            return f"{self.param} {self.value!r} verbatim"
        shown = list({f.lower(): f for f in reversed([f for f in self.forms if f])}.values())[::-1][:5]
        said = ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else "".join(shown)
        return f"{self.param} {self.value!r} as {said}"

    def row(self) -> tuple[str, str, bool, tuple[str, ...], str | None]:
        """What the quality frame stores: (label, pattern, absent, needles, literal). A verbatim
        value is searched as a literal token (no regular expression to compile per value)."""
        literal = self.value if self.kind in ("verbatim", "fed") else None
        # Interned: the rows of many calls share their strings (one species pattern, not thousands).
        return sys.intern(self.label), sys.intern(self.pattern), self.absent, self.needles, literal


class MentionSet(tuple):
    """The mention rows of one call, as the quality frame holds them. Printed as a short key,
    so that Great Expectations fingerprints a batch (``str`` of every value) without writing
    out every pattern of every question."""

    key: str

    def __new__(cls, rows: Iterable[Row], key: str) -> MentionSet:
        made = super().__new__(cls, tuple(rows))
        made.key = key
        return made

    def __getnewargs__(self) -> tuple:
        return tuple(self), self.key

    def __str__(self) -> str:
        return f"mentions:{self.key}"

    __repr__ = __str__


def as_rows(mentions: Any) -> list[Row]:
    """Mention rows from Mentions, (label, pattern, absent[, needles[, literal]]) rows or their JSON."""
    if isinstance(mentions, str):
        mentions = json.loads(mentions) if mentions.strip() else []
    if mentions is None or (isinstance(mentions, float) and mentions != mentions):
        return []
    return [
        m
        if isinstance(m, tuple) and len(m) == 5
        else m.row()
        if isinstance(m, Mention)
        else (
            str(m[0]),
            str(m[1]),
            bool(m[2]),
            tuple(m[3]) if len(m) > 3 and m[3] is not None else (),
            str(m[4]) if len(m) > 4 and m[4] is not None else None,
        )
        for m in mentions
    ]


def _search(row: Row) -> Any:
    """The search of one row: a literal token, or its compiled pattern."""
    literal = row[4]
    return (lambda text: token(text, literal)) if literal is not None else compiled(row[1]).search


def missing_mentions(text: str, mentions: Any) -> list[str]:
    """What the text fails to mention (labels), or the other species it names."""
    out = []
    lower = text.lower()
    for row in as_rows(mentions):
        label, _, absent, needles, _ = row
        found = _search(row)(text) if not needles or any(n in lower for n in needles) else None
        if absent and found:
            out.append(f"{label} (names {found if isinstance(found, str) else found.group(0)!r})")
        elif not absent and not found:
            out.append(label)
    return out


def mentioned(texts: Iterable[str], mentions: Iterable[Any]) -> list[bool]:
    """Row-wise: does each text meet all its requirements (``missing_mentions`` is empty)."""
    out = []
    for text, rows in zip(texts, mentions, strict=True):
        text = str(text)
        lower = text.lower()
        ok = True
        for row in rows if isinstance(rows, (list, tuple)) and all(len(r) == 5 for r in rows) else as_rows(rows):
            _, pattern, absent, nd, literal = row
            if nd and not any(n in lower for n in nd):
                found = False
            elif literal is not None:
                found = token(text, literal) is not None
            else:
                found = compiled(pattern).search(text) is not None
            if found == absent:
                ok = False
                break
        out.append(ok)
    return out


# --- the rules ---------------------------------------------------------------------------------


def _items(value: Any, kind: str) -> list[Any]:
    """A list argument item by item; so is a comma-joined string of ids or species
    ("homo_sapiens,mus_musculus", "22351513,12366374"), as BioTool sends lists."""
    if isinstance(value, list):
        return value
    if kind in ("verbatim", "species", "species_if_named") and isinstance(value, str) and "," in value:
        return [v for v in re.split(r"\s*,\s*", value.strip()) if v]
    return [value]


class MentionRules:
    """The mention rules of one catalog (and seeds folder): requirements per call."""

    def __init__(self, spec: MentionSpec, words: dict[str, Any], taxa: dict[str, Taxon]):
        self.spec = spec
        self.words = {**words, **spec.words}
        self.taxa = taxa
        # a name two taxa share (Saccharomyces cerevisiae: 559292 of the seeds, 4932 of mentions.yaml)
        # is the first one's: the seed species come first (``load_taxa``)
        self._by_name: dict[str, Taxon] = {}
        for t in taxa.values():
            for n in [*t.names, t.taxon_id]:
                self._by_name.setdefault(name_key(n), t)
        self.version = content_hash(
            spec.model_dump(mode="json"), self.words, {k: t.names for k, t in sorted(taxa.items())}, length=12
        )
        self._cache: dict[tuple[str, str], tuple[Mention, ...]] = {}
        self._taxon_of: dict[str, Taxon | None] = {}

    @classmethod
    def load(cls, catalog_dir: Path = CATALOG_DIR, seeds_dir: Path | None = None) -> MentionRules:
        spec = load_mentions(Path(catalog_dir))
        words_file = Path(catalog_dir) / "words.yaml"
        words = read_yaml(words_file) if words_file.exists() else {}
        return cls(spec, words or {}, load_taxa(Path(catalog_dir), seeds_dir, spec))

    def check(self, catalog: Catalog) -> None:
        """Every function, parameter and words table the rules name exists."""
        where = "catalog/mentions.yaml"
        params = {p for t in catalog for p in t.function.params}
        unknown = sorted(set(self.spec.params) - params)
        if unknown:
            raise CatalogError(f"{where}: params {unknown} are parameters of no function")
        for function, kinds in self.spec.functions.items():
            if function not in catalog:
                raise CatalogError(f"{where}: functions.{function}: no such function in the catalog")
            missing = sorted(set(kinds) - set(catalog[function].function.params))
            if missing:
                raise CatalogError(f"{where}: functions.{function}: {function} has no parameter {missing}")
        every = [
            *self.spec.params.values(),
            *self.spec.query_roles.values(),
            *(k for f in self.spec.functions.values() for k in f.values()),
        ]
        for kind in every:
            if kind.words and kind.words not in self.words:
                raise CatalogError(
                    f"{where}: words table {kind.words!r} is neither in mentions.yaml words nor in catalog/words.yaml"
                )

    def kind_of(self, function: str, param: str) -> MentionKind | None:
        return self.spec.functions.get(function, {}).get(param) or self.spec.params.get(param)

    # --- one call ----------------------------------------------------------------------------

    def mentions(self, tool: Tool, arguments: dict) -> tuple[Mention, ...]:
        """The requirements of one call, in argument order."""
        key = (tool.name, repr(sorted(arguments.items())))
        if key not in self._cache:
            if len(self._cache) >= MENTIONS_CACHED:  # the rules live as long as the process
                self._cache.clear()
            self._cache[key] = tuple(self._mentions(tool, arguments))
        return self._cache[key]

    def identifiers(self, tool: Tool, arguments: dict) -> list[str]:
        """The values a question must hold verbatim (inside query strings too)."""
        return list(
            dict.fromkeys(m.value for m in self.mentions(tool, arguments) if m.kind in ("verbatim", "coordinates"))
        )

    def _mentions(self, tool: Tool, arguments: dict) -> list[Mention]:
        planned: list[tuple[str, MentionKind, Any]] = []
        for name, value in arguments.items():
            kind = self.kind_of(tool.name, name)
            if kind is None or kind.kind == "unsaid" or value is None or isinstance(value, bool):
                continue
            for item in _items(value, kind.kind):
                planned.extend(self._expand(name, kind, item))
        named = {
            id(t)
            for _, k, v in planned
            if k.kind in ("species", "species_if_named")
            for t in [self.taxon(v)]
            if t is not None
        }
        out: list[Mention] = []
        for what, kind, value in planned:
            mention = self._one(what, kind, value, named)
            if mention and mention.pattern and not mention.needles:
                literal = (
                    (mention.value.lower(),)
                    if mention.kind == "chromosome"
                    else needles(mention.kind, mention.value, mention.forms)
                )
                m = mention
                mention = Mention(m.param, m.value, m.kind, m.forms, m.pattern, m.absent, literal)
            if mention and mention.pattern and mention not in out:
                out.append(mention)
        return out

    def _expand(self, name: str, kind: MentionKind, value: Any) -> list[tuple[str, MentionKind, Any]]:
        """Query and citation arguments become one requirement per part."""
        text = str(value)
        if kind.kind == "query":
            return [(f"{name} {self._shown(t)}", self._term_kind(t), t) for t in parse_query(text)]
        if kind.kind == "citation":
            cells = (text.split("|") + [""] * 5)[:5]
            parts = zip(("journal", "year", "volume", "first page", "author"), cells, strict=True)
            out = []
            for part, cell in parts:
                cell = cell.strip()
                if part == "author":
                    cell = cell.split()[0] if cell.split() else ""
                if cell:
                    sub = "name" if part in ("journal", "author") else "verbatim"
                    out.append((f"{name} {part}", MentionKind(kind=sub), cell))
            return out
        return [(name, kind, value)]

    @staticmethod
    def _shown(term: Term) -> str:
        if term.syntax == "field":
            return f"{term.field}:{term.value}"
        if term.syntax == "tag":
            return f"{term.value}[{term.field}]"
        return "term"

    def _term_kind(self, term: Term) -> MentionKind:
        table = {"field": "uniprot_fields", "tag": "entrez_tags"}.get(term.syntax)
        role = (self.words.get(table) or {}).get(term.field, "text") if table else "text"
        return self.spec.query_roles.get(str(role)) or MentionKind(kind="name")

    def taxon(self, value: Any) -> Taxon | None:
        text = value.value if isinstance(value, Term) else str(value)
        if text not in self._taxon_of:
            self._taxon_of[text] = self._by_name.get(name_key(re.sub(r"^txid", "", text.strip(), flags=re.I)))
        return self._taxon_of[text]

    def _one(self, what: str, kind: MentionKind, value: Any, named: set[int]) -> Mention | None:
        prefix = isinstance(value, Term) and value.prefix
        text = (value.value if isinstance(value, Term) else str(value)).strip()
        if not text:
            return None
        k = kind.kind
        if k == "verbatim":
            return Mention(what, text, k, (text,), verbatim_pattern(text))
        if k == "coordinates":
            return self._coordinates(what, text)
        if k == "chromosome":
            if not re.fullmatch(r"[0-9]{1,2}|[XYWZ]|MT|M", text):
                return Mention(what, text, "verbatim", (text,), verbatim_pattern(text))
            pattern = rf"(?i:chromosome|chr\.?)\s*{re.escape(text)}{AFTER}|(?<![\w.:]){re.escape(text)}:\d"
            return Mention(what, text, k, (f"chromosome {text}", f"chr{text}"), pattern)
        if k == "number":
            return Mention(what, text, k, (text,), number_pattern(text))
        if k == "percent":
            pct = percent_of(text)[0]
            pattern = (
                rf"(?<![\d.]){re.escape(pct)}(?:\.0+)?\s*(?:%|percent|per cent)|(?i:UniRef){re.escape(pct)}{AFTER}"
            )
            return Mention(what, text, k, (f"{pct}%", f"{pct} percent", f"UniRef{pct}"), pattern)
        if k in ("species", "species_if_named"):
            return self._species(what, text, k, named)
        if k == "code":
            code = text.split(":")[-1]
            phrases = self._phrases(kind.words, code)
            forms = ([code] if kind.code_too or not phrases else []) + phrases
            pats = [verbatim_pattern(code) if kind.code_too else None] + [natural_pattern(p) for p in phrases]
            if not phrases:
                pats.append(natural_pattern(code))
            return Mention(what, text, k, tuple(forms), any_of(pats))
        # name: natural form, or the words of its table
        bare = text.strip("%*")
        wildcard = prefix or text.endswith(("%", "*"))
        names = self._phrases(kind.words, text)
        return Mention(
            what,
            text,
            "name",
            (" ".join(words_of(bare)), *names),
            any_of([natural_pattern(bare, wildcard), *(natural_pattern(p) for p in names)]),
        )

    def _phrases(self, table: str | None, value: str) -> list[str]:
        entries = self.words.get(table or "", {}) or {}
        entry = next((entries[k] for k in (value, value.upper(), value.lower()) if k in entries), None)
        if isinstance(entry, dict):
            entry = list(entry.values())
        items = entry if isinstance(entry, list) else [entry] if entry else []
        return [_ARTICLE.sub("", str(i)) for i in items if str(i).strip()]

    def _coordinates(self, what: str, text: str) -> Mention:
        parsed = _COORDS.fullmatch(text)
        if not parsed:
            return Mention(what, text, "verbatim", (text,), verbatim_pattern(text))
        chrom, start, end = parsed.group("chrom"), parsed.group("start"), parsed.group("end")
        head = rf"(?<![\w.:])(?:chr)?{re.escape(chrom)}:" if chrom else r"(?<![\w.:])"
        span = rf"{head}{start}{_RANGE_SEP}{end}(?::-?1)?(?![\d])"
        single = rf"|{head}{start}(?![\d.,:-])" if chrom and start == end else ""
        short = f"{chrom}:{start}-{end}" if chrom else f"{start}-{end}"
        return Mention(what, text, "coordinates", (text, short), span + single)

    @lru_cache(maxsize=64)  # noqa: B019 - one rules object per catalog, kept for the process
    def _other_species(self, named: frozenset[int]) -> tuple[str, tuple[str, ...]] | None:
        """(pattern, needles) of the names of every seed species but those ``named``."""
        others = [t for t in self.taxa.values() if t.seed_species and id(t) not in named]
        names = tuple(n for t in others for n in t.forms() if not n.isdigit() and "_" not in n)
        return (any_of(natural_pattern(n) for n in names), needles("name", "", names)) if names else None

    def _species(self, what: str, text: str, k: str, named: set[int]) -> Mention | None:
        taxon = self.taxon(text)
        if k == "species_if_named":
            other = self._other_species(frozenset(named))
            return Mention(what, text, k, (), other[0], absent=True, needles=other[1]) if other else None
        if taxon is None and text.isdigit():  # a taxon id we have no names for: as written
            return Mention(what, text, "verbatim", (text,), verbatim_pattern(text))
        if taxon is None:
            pats = [natural_pattern(text)]
            return Mention(what, text, k, (text.replace("_", " "),), any_of(pats))
        return Mention(what, text, k, tuple(taxon.forms()), taxon.pattern)

    # --- naturalness vocabulary ------------------------------------------------------------

    @staticmethod
    def code_names(catalog: Catalog, allowed: Iterable[str] = ()) -> list[str]:
        """Catalog names no biologist writes: function names (but ``allowed`` words such as
        blast) and code-like parameter names (snake_case, camelCase, a trailing "_")."""
        allowed_l = {a.lower() for a in allowed}
        names = {t.name for t in catalog if t.name.lower() not in allowed_l}
        names |= {p for t in catalog for p in t.function.params if re.search(r"_|[a-z][A-Z]", p)}
        return sorted(names)


# Calls whose mentions a rules object keeps (a stage reads a call's questions together; a
# cache of every call would grow with the dataset: 2 KB a call).
MENTIONS_CACHED = 4096


@lru_cache(maxsize=8)
def mention_rules(catalog_dir: Path = CATALOG_DIR, seeds_dir: Path | None = None) -> MentionRules:
    """The rules for a catalog and seeds folder (cached)."""
    return MentionRules.load(Path(catalog_dir), Path(seeds_dir) if seeds_dir else None)


def rules_dirs(config: Config) -> tuple[Path, Path]:
    """The configured catalog and seeds folders: what the mention rules are read from (a worker
    process gets these and reads the same rules)."""
    return config.path(config.sample.catalog_dir), config.path(config.sample.seeds_dir)


def rules_for(config: Config) -> MentionRules:
    """The mention rules of the configured catalog and seeds (catalog/mentions.yaml)."""
    return mention_rules(*rules_dirs(config))
