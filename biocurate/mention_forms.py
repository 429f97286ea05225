"""How a value may be written in a question: regular expressions for its natural form, a
verbatim token, a number or a percentage; the literal parts every match holds (to skip the
search when none is there); and the names of taxa (``biocurate.mentions`` builds the rules of
``catalog/mentions.yaml`` on these).

Patterns open with a literal where they can (``_lead``): Python's ``re`` searches those several
times faster than a pattern opening with a look-behind.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from biocurate.catalog import MentionSpec
from biocurate.seeds import species_table

BEFORE = r"(?<![A-Za-z0-9])"  # no letter or digit just before
AFTER = r"(?![A-Za-z0-9])"  # ... or just after
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")  # CamelCase, snake_case, digits -> words
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


@lru_cache(maxsize=65536)
def compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def token(text: str, literal: str) -> str | None:
    """``literal`` where it stands as a whole token (no ASCII letter or digit on either side)."""
    start = text.find(literal)
    while start != -1:
        end = start + len(literal)
        if (start == 0 or text[start - 1] not in _ALNUM) and (end == len(text) or text[end] not in _ALNUM):
            return literal
        start = text.find(literal, start + 1)
    return None


@lru_cache(maxsize=65536)
def needles(pattern_kind: str, value: str, forms: tuple[str, ...]) -> tuple[str, ...]:
    """The literal parts every match holds (lower case): the longest word of each form, the
    last digit group of a number."""
    if pattern_kind == "number":
        digits = re.findall(r"\d+", value.split(".")[0])
        return (digits[-1][-3:],) if digits else ()
    out = []
    for form in forms:
        words = words_of(form) if pattern_kind not in ("verbatim",) else [form]
        if words:
            out.append(max(words, key=len).lower())
    return tuple(dict.fromkeys(w for w in out if w))


# --- natural forms ------------------------------------------------------------------------------


def words_of(value: str) -> list[str]:
    """A value as words: CamelCase, snake_case, punctuation and digits split (miRNA -> mi RNA)."""
    return _WORDS.findall(str(value))


@lru_cache(maxsize=65536)
def natural_pattern(value: str, prefix: bool = False) -> str | None:
    """Case-insensitive, any separators (or none) between the words, a plural allowed."""
    words = words_of(value)
    if not words:
        return None
    body = r"[\W_]*".join(re.escape(w) for w in words)
    tail = r"[A-Za-z0-9]*" if prefix else (r"(?:s|es)?" if words[-1].isalpha() else "")
    return rf"(?i:{_lead(words[0][0])}{body[len(re.escape(words[0][0])) :]}{tail}{AFTER})"


def _lead(first: str) -> str:
    """The first character, then the look-behind: a pattern opening with a literal is searched
    several times faster by Python's ``re`` than one opening with an assertion."""
    return f"{re.escape(first)}(?<![A-Za-z0-9]{re.escape(first)})"


def verbatim_pattern(value: str) -> str:
    return f"{re.escape(value)}(?<![A-Za-z0-9]{re.escape(value)}){AFTER}" if value else ""


def any_of(patterns: Iterable[str | None]) -> str:
    unique = list(dict.fromkeys(p for p in patterns if p))
    return unique[0] if len(unique) == 1 else "(?:" + "|".join(unique) + ")"


def number_pattern(value: Any) -> str:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return verbatim_pattern(text)
    if number.is_integer() and "e" not in text.lower():
        digits = str(int(number))
        groups = [digits[max(0, i - 3) : i] for i in range(len(digits), 0, -3)][::-1]
        return rf"(?<![\d.,]){','.join(groups).replace(',', ',?')}(?:\.0+)?(?![\d])"
    return rf"(?<![\d.]){re.escape(text)}(?![\d])"


def percent_of(value: Any) -> tuple[str, ...]:
    try:
        number = float(str(value).strip().rstrip("%"))
    except ValueError:
        return (str(value),)
    pct = number * 100 if number <= 1 and not str(value).strip().endswith("%") else number
    return (f"{pct:g}",)


# --- species -----------------------------------------------------------------------------------


def key(name: str) -> str:
    return " ".join(str(name).replace("_", " ").lower().split())


def scientific_name(production: str) -> str:
    """The scientific name of an Ensembl production name: danio_rerio -> Danio rerio."""
    genus, _, rest = str(production).partition("_")
    return f"{genus.capitalize()} {rest.replace('_', ' ')}".strip()


@dataclass
class Taxon:
    taxon_id: str
    names: list[str] = field(default_factory=list)  # the scientific name first
    seed_species: bool = False  # a species of the seeds (may be named instead of another)
    common: str = ""  # the name people use (zebrafish), when the seeds give one
    _pattern: str | None = field(default=None, repr=False, compare=False)

    @property
    def scientific(self) -> str:
        return self.names[0] if self.names else self.taxon_id

    @property
    def display(self) -> str:
        """How a question names it: the common name, else the scientific name."""
        return self.common or self.scientific

    def add(self, *names: str) -> None:
        self._pattern = None
        for name in names:
            name = str(name or "").strip()
            if name and key(name) not in {key(n) for n in self.names}:
                self.names.append(name)

    def forms(self) -> list[str]:
        sci = self.names[0] if self.names else ""
        parts = sci.split()
        short = [f"{parts[0][0]}. {' '.join(parts[1:])}"] if len(parts) >= 2 and parts[0][:1].isupper() else []
        return [n for n in self.names if "_" not in n] + short + [self.taxon_id] + [n for n in self.names if "_" in n]

    @property
    def pattern(self) -> str:
        if self._pattern is None:
            self._pattern = self._make_pattern()
        return self._pattern

    def _make_pattern(self) -> str:
        pats = [natural_pattern(n) if not n.isdigit() else None for n in self.forms()]
        pats.append(
            rf"{re.escape(self.taxon_id)}(?<![\w.]{re.escape(self.taxon_id)})(?![\w])" if self.taxon_id else None
        )
        return any_of(pats)


def load_taxa(catalog_dir: Path, seeds_dir: Path | None, spec: MentionSpec) -> dict[str, Taxon]:
    """Taxa by taxon id, from the seeds' species table, the taxon seeds and mentions.yaml."""
    taxa: dict[str, Taxon] = {}

    def taxon(taxon_id: Any) -> Taxon:
        return taxa.setdefault(str(taxon_id), Taxon(str(taxon_id)))

    for production, row in species_table(Path(catalog_dir)).items():
        t = taxon(row.get("taxon_id", production))
        t.add(scientific_name(production), row.get("common", ""), production, *spec.species_aliases.get(production, []))
        t.common = t.common or str(row.get("common") or "").strip()
        t.seed_species = True
    taxon_csv = Path(seeds_dir) / "taxon.csv" if seeds_dir else None
    if taxon_csv and taxon_csv.exists():
        with taxon_csv.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if (row.get("taxon_id") or "").strip():
                    t = taxon(row["taxon_id"].strip())
                    t.add(row.get("scientific_name", ""), row.get("common_name", ""), row.get("ensembl_name", ""))
                    t.common = t.common or (row.get("common_name") or "").strip()
                    t.seed_species = True
    for taxon_id, names in spec.taxa.items():
        taxon(taxon_id).add(*names)
    return taxa
