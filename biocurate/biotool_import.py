"""Import BioTool's dataset files into the store (`biocurate import biotool PATH...`).

The files are read by ``biocurate.biotool_files`` (BioTool's record layout and its ShareGPT
train/test layout, told apart by shape). Each good record becomes a candidate call (template
``biotool-import``; a call the catalog rejects is kept with ``valid = false`` and the reason), a
question (generator ``biotool-import``) and the observation BioTool published
(``biotool_claims``), with its provenance in ``biotool_records`` (file, record number, content
hashes, split). A malformed record is stored too, with what is wrong and its raw text, and
reported as ``file: record N: problem``. Keys are content hashes (a record is its file's sha256
and its number), so importing the same files again adds nothing; it does re-validate the
imported calls, so a call the catalog has since learned to accept becomes valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from biocurate.biotool_files import Problem, Record, dataset_files, read_file
from biocurate.catalog import Catalog
from biocurate.hashing import canonical_json, content_hash
from biocurate.store import insert_new, utcnow

GENERATOR, MODEL, PROMPT_VERSION, STYLE = "biotool-import", "biotool", "biotool-published", "imported"
TEMPLATE = "biotool-import"


# --- into the store ----------------------------------------------------------------------------


def call_id_of(catalog: Catalog, function: str, arguments: dict) -> str:
    """The call's key: its function and canonical arguments (different spellings, one call)."""
    canonical = arguments
    if function in catalog:
        try:
            canonical = catalog[function].canonical_arguments(arguments)
        except (ValueError, TypeError):
            pass  # a value the catalog cannot read: keyed as written (the call is invalid anyway)
    return content_hash("call", function, canonical)


def claim_id_of(call_id: str, text: str | None) -> str:
    return content_hash("biotool claim", call_id, text)


def query_id_of(call_id: str, text: str) -> str:
    return content_hash("query", call_id, text, GENERATOR, MODEL, PROMPT_VERSION)


@dataclass
class FileSummary:
    file: str
    format: str
    split: str | None
    records: int = 0
    new: int = 0  # records not in the store before
    malformed: int = 0
    rejected: int = 0  # good records whose call the catalog rejects
    without_observation: int = 0
    skipped: str | None = None  # a file BioTool ships beside its records (tools.json, function_mapping.json)


@dataclass
class ImportResult:
    files: list[FileSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    new_rows: dict[str, int] = field(default_factory=dict)  # table -> rows added
    revalidated: int = 0  # imported calls whose validity the current catalog judges differently

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def new_records(self) -> int:
        return sum(f.new for f in self.files)


def import_biotool(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, paths: list[Path | str]
) -> ImportResult:
    """Read the files and write what they hold; idempotent."""
    result = ImportResult()
    now = utcnow()
    calls: dict[str, dict] = {}
    claims: dict[str, dict] = {}
    queries: dict[str, dict] = {}
    records: list[dict] = []
    known = {r[0] for r in con.execute("select record_id from biotool_records").fetchall()}
    for read in (read_file(path) for path in dataset_files(paths)):
        formats = {r.format for r in read.records} | {p.format for p in read.problems if p.format}
        summary = FileSummary(str(read.path), ", ".join(sorted(formats)) or "-", read.split, skipped=read.skipped)
        result.files.append(summary)
        base: dict[str, Any] = {
            "file_path": str(read.path.resolve()),
            "file_name": read.path.name,
            "file_sha256": read.sha256,
            "split": read.split,
            "run_id": run_id,
            "imported_at": now,
        }
        for problem in read.problems:
            row: dict[str, Any] = {
                **base,
                "record_id": content_hash("biotool record", read.sha256, problem.number),
                "record_number": problem.number,
                "format": problem.format,
                "status": "malformed",
                "record_sha256": content_hash(problem.raw, length=64) if problem.raw else None,
                "problem": problem.message,
                "raw": problem.raw,
            }
            summary.records += problem.number is not None
            summary.malformed += 1
            summary.new += row["record_id"] not in known
            result.problems.append(problem)
            records.append(row)
        for rec in read.records:
            row = _record_row(catalog, rec, base, read.sha256)
            call = calls.setdefault(row["call_id"], _call_row(catalog, rec, row["call_id"], run_id))
            summary.records += 1
            summary.new += row["record_id"] not in known
            summary.rejected += not call["valid"]
            summary.without_observation += rec.observation is None
            if row["claim_id"] is not None:
                claims.setdefault(
                    row["claim_id"],
                    {
                        "claim_id": row["claim_id"],
                        "call_id": row["call_id"],
                        "text": rec.observation,
                        "chars": len(rec.observation or ""),
                        "record_id": row["record_id"],
                        "run_id": run_id,
                    },
                )
            query = queries.setdefault(
                row["query_id"],
                {
                    "query_id": row["query_id"],
                    "call_id": row["call_id"],
                    "observation_id": None,
                    "text": rec.user_query,
                    "style": STYLE,
                    "generator": GENERATOR,
                    "model": MODEL,
                    "prompt_version": PROMPT_VERSION,
                    "temperature": None,
                    "seed": None,
                    "run_id": run_id,
                    "record_id": row["record_id"],
                },
            )
            # bound to the first observation any of its records published
            query["observation_id"] = query["observation_id"] or row["claim_id"]
            records.append(row)
    for query in queries.values():
        record_id = query.pop("record_id")
        if query["observation_id"] is None:  # none of its records had one: a claim of nothing
            nothing = query["observation_id"] = claim_id_of(query["call_id"], None)
            claims.setdefault(
                nothing,
                {
                    "claim_id": nothing,
                    "call_id": query["call_id"],
                    "text": None,
                    "chars": None,
                    "record_id": record_id,
                    "run_id": run_id,
                },
            )
    for table, rows in (
        ("candidate_calls", list(calls.values())),
        ("biotool_claims", list(claims.values())),
        ("queries", list(queries.values())),
        ("biotool_records", records),
    ):
        result.new_rows[table] = insert_new(con, table, rows)
    result.revalidated = _revalidate(con, list(calls.values()))
    return result


def _record_row(catalog: Catalog, rec: Record, base: dict[str, Any], file_sha256: str) -> dict[str, Any]:
    """A good record's provenance row, with the keys of what it becomes."""
    call_id = call_id_of(catalog, rec.function, rec.arguments)
    return {
        **base,
        "record_id": content_hash("biotool record", file_sha256, rec.number),
        "record_number": rec.number,
        "format": rec.format,
        "record_sha256": rec.sha256,
        "status": "imported",
        "problem": None,
        "raw": None,
        "function": rec.function,
        "arguments": json.dumps(rec.arguments, ensure_ascii=False),
        "user_query": rec.user_query,
        "database": rec.database,
        "tool": rec.tool,
        "call_id": call_id,
        "query_id": query_id_of(call_id, rec.user_query),
        "claim_id": None if rec.observation is None else claim_id_of(call_id, rec.observation),
    }


def _call_row(catalog: Catalog, rec: Record, call_id: str, run_id: str) -> dict:
    """The candidate call of a record: the catalog's database, group and category, and its verdict."""
    row = {
        "call_id": call_id,
        "function": rec.function,
        "arguments": canonical_json(rec.arguments),
        "entity_id": None,
        "template": TEMPLATE,
        "run_id": run_id,
    }
    if rec.function in catalog:
        tool = catalog[rec.function]
        problem = tool.validate(rec.arguments)
        return {
            **row,
            "database": tool.database,
            "tool_group": tool.group,
            "category": tool.category,
            "valid": problem is None,
            "invalid_reason": problem,
        }
    return {
        **row,
        "database": rec.database or "unknown",
        "tool_group": rec.tool or "unknown",
        "category": "unknown",
        "valid": False,
        "invalid_reason": f"{rec.function}: not in the catalog (unknown function)",
    }


def _revalidate(con: duckdb.DuckDBPyConnection, calls: list[dict]) -> int:
    """Imported calls stored under an older catalog's verdict get the current one."""
    import polars as pl

    if not calls:
        return 0
    verdicts = pl.DataFrame(
        [{k: c[k] for k in ("call_id", "valid", "invalid_reason")} for c in calls],
        schema={"call_id": pl.String, "valid": pl.Boolean, "invalid_reason": pl.String},
    )
    con.register("_verdicts", verdicts)
    try:
        changed = con.execute(
            "select count(*) from candidate_calls c join _verdicts v using (call_id) "
            "where c.valid <> v.valid or c.invalid_reason is distinct from v.invalid_reason"
        ).fetchall()[0][0]
        if changed:
            con.execute(
                "update candidate_calls set valid = v.valid, invalid_reason = v.invalid_reason "
                "from _verdicts v where candidate_calls.call_id = v.call_id and "
                "(candidate_calls.valid <> v.valid or candidate_calls.invalid_reason is distinct from "
                "v.invalid_reason)"
            )
    finally:
        con.unregister("_verdicts")
    return changed
