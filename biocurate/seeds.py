"""Seed entities: CSV files in ``data/seeds/<type>.csv``, validated row by row.

A bad row is reported with file, line and reason; the good rows are kept.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from biocurate.catalog import CATALOG_DIR, read_yaml
from biocurate.errors import CatalogError, SeedError
from biocurate.hashing import content_hash


@dataclass(frozen=True)
class SeedProblem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class SeedLoad:
    entities: list[dict] = field(default_factory=list)
    problems: list[SeedProblem] = field(default_factory=list)


@lru_cache(maxsize=4)
def entity_types(catalog_dir: Path = CATALOG_DIR) -> dict:
    path = Path(catalog_dir) / "entities.yaml"
    if not path.is_file():
        where = "the catalog folder does not exist" if not Path(catalog_dir).is_dir() else "no such file"
        raise CatalogError(f"{path}: {where} (set [sample] catalog_dir in the config to the catalog folder)")
    return read_yaml(path)


def species_table(catalog_dir: Path = CATALOG_DIR) -> dict:
    return entity_types(catalog_dir)["_species"]


def entity_id(entity_type: str, fields: dict) -> str:
    return content_hash("entity", entity_type, {k: v for k, v in fields.items() if v})


def validate_row(entity_type: str, row: dict, types: dict) -> tuple[dict | None, str | None]:
    """(clean fields, None) or (None, reason)."""
    spec = types[entity_type]["fields"]
    species = types["_species"]
    unknown = sorted(set(row) - set(spec) - {"source"})
    if unknown:
        return None, f"unknown column(s) {', '.join(unknown)} for entity type {entity_type}"
    clean = {}
    for name, rule in spec.items():
        value = (row.get(name) or "").strip()
        if not value:
            if rule and rule.get("required"):
                return None, f"{name} is required"
            continue
        if rule and rule.get("species") and value not in species:
            return None, f"{name} {value!r} is not a known species (see catalog/entities.yaml _species)"
        pattern = rule.get("pattern") if rule else None
        if pattern and not re.fullmatch(pattern, value):
            return None, f"{name} {value!r} does not match the pattern {pattern}"
        clean[name] = value
    if not (row.get("source") or "").strip():
        return None, "source is required (where this row came from)"
    return clean, None


def load_seeds(seeds_dir: Path, catalog_dir: Path = CATALOG_DIR) -> SeedLoad:
    """Load every ``<type>.csv`` under ``seeds_dir``; unknown file names are an error."""
    types = entity_types(catalog_dir)
    result = SeedLoad()
    files = sorted(Path(seeds_dir).glob("*.csv"))
    if not files:
        raise SeedError(f"no seed files (*.csv) in {seeds_dir}")
    for path in files:
        entity_type = path.stem
        if entity_type not in types or entity_type.startswith("_"):
            known = ", ".join(t for t in types if not t.startswith("_"))
            raise SeedError(f"{path}: no entity type {entity_type!r}; seed files are named after one of: {known}")
        # Undecodable bytes are kept as surrogates, so that one bad byte costs its row, not the file.
        text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        if any(_NOT_UTF8.search(name) for name in header):
            result.problems.append(
                SeedProblem(
                    str(path), 1, f"not UTF-8 ({_bad_bytes(','.join(header))} in the header); the file is skipped"
                )
            )
            continue
        for row in reader:
            line = reader.line_num
            shape = row_shape_problem(row, header)
            clean, reason = (None, shape) if shape else validate_row(entity_type, row, types)
            if clean is None:
                result.problems.append(SeedProblem(str(path), line, reason or "invalid row"))
                continue
            label = clean[types[entity_type]["label"]]
            result.entities.append(
                {
                    "entity_id": entity_id(entity_type, clean),
                    "entity_type": entity_type,
                    "label": label,
                    "species": clean.get("species"),
                    "fields": clean,
                    "source": row["source"].strip(),
                    "seed_file": path.name,
                    "seed_line": line,
                }
            )
    return result


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes that did not decode, as surrogateescape keeps them


def _bad_bytes(text: str) -> str:
    found = sorted({f"0x{ord(c) - 0xDC00:02x}" for c in _NOT_UTF8.findall(text)})
    return f"byte{'s' if len(found) > 1 else ''} {', '.join(found)}"


def row_shape_problem(row: dict, header: Sequence[str]) -> str | None:
    """Why a row cannot be read as the header says (bytes that are not UTF-8, values missing or extra)."""
    if None in row:
        return f"more values than columns ({len(header)} columns: {', '.join(header)})"
    missing = [name for name, value in row.items() if value is None]
    if missing:
        return f"{len(header) - len(missing)} values for {len(header)} columns: missing {', '.join(missing)}"
    bad = [name for name, value in row.items() if _NOT_UTF8.search(value)]
    if bad:
        return f"not UTF-8 ({_bad_bytes(''.join(row[n] for n in bad))} in {', '.join(bad)})"
    return None
