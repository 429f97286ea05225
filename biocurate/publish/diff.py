"""Comparing two versions, by id from the store or from version folders' Parquet files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from biocurate.publish.common import PublishError


@dataclass
class VersionDiff:
    a: str
    b: str
    added: list[dict]
    removed: list[dict]
    changed: list[dict]  # item_id, fields that differ, before and after

    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}


DIFF_FIELDS = ("user_query", "function_calling", "observation", "split", "database", "tool")


def names_a_stored_version(ref: str) -> bool:
    """True when ``ref`` is a version id to look up in the store rather than a path on disk."""
    return not Path(ref).exists() and "/" not in ref


def version_items(con: duckdb.DuckDBPyConnection | None, ref: str) -> dict[str, dict]:
    """item_id -> row of a version, by id from the store or from a version folder's Parquet files."""
    folder = Path(ref)
    if folder.is_dir():
        return folder_items(folder)
    if not names_a_stored_version(ref):
        raise PublishError(
            f"{ref} is not a dataset version: give a version id such as v0001, or a version "
            "folder (parquet/<split>.parquet and manifest.json)"
        )
    if con is None:
        raise PublishError(f"{ref} is not a folder and there is no store to look it up in")
    rows = con.sql(
        f"select item_id, {', '.join(DIFF_FIELDS)} from dataset_items where version_id = ?", params=[ref]
    ).pl()
    if rows.is_empty() and not con.execute("select 1 from dataset_versions where version_id = ?", [ref]).fetchall():
        versions = [v for (v,) in con.execute("select version_id from dataset_versions order by 1").fetchall()]
        raise PublishError(f"no version {ref!r} in the store (versions: {', '.join(versions) or 'none yet'})")
    return {r["item_id"]: r for r in rows.to_dicts()}


def folder_items(folder: Path) -> dict[str, dict]:
    """item_id -> row of a version folder's Parquet files; PublishError if it is not a version's."""
    files = sorted((folder / "parquet" if (folder / "parquet").is_dir() else folder).glob("*.parquet"))
    if not files:
        raise PublishError(
            f"{folder} is not a dataset version: it holds no Parquet files (a version folder "
            "has parquet/<split>.parquet and manifest.json, such as data/out/versions/v0001)"
        )
    frames = []
    for file in files:
        try:
            frame = pl.read_parquet(file)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise PublishError(f"{file}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        missing = [c for c in ("item_id", *DIFF_FIELDS) if c not in frame.columns]
        if missing:
            raise PublishError(
                f"{folder} is not a dataset version: {file.name} has no column "
                f"{', '.join(missing)} (a version's items have item_id, {', '.join(DIFF_FIELDS)})"
            )
        frames.append(frame.select("item_id", *DIFF_FIELDS))
    return {r["item_id"]: r for r in pl.concat(frames, how="vertical_relaxed").to_dicts()}


def diff_versions(con: duckdb.DuckDBPyConnection | None, a: str, b: str) -> VersionDiff:
    """Items added, removed and changed from version a to version b."""
    before, after = version_items(con, a), version_items(con, b)
    changed = []
    for item_id in sorted(before.keys() & after.keys()):
        fields = [f for f in DIFF_FIELDS if before[item_id][f] != after[item_id][f]]
        if fields:
            changed.append(
                {
                    "item_id": item_id,
                    "fields": fields,
                    "before": {f: before[item_id][f] for f in fields},
                    "after": {f: after[item_id][f] for f in fields},
                }
            )
    return VersionDiff(
        a,
        b,
        added=[after[k] for k in sorted(after.keys() - before.keys())],
        removed=[before[k] for k in sorted(before.keys() - after.keys())],
        changed=changed,
    )
