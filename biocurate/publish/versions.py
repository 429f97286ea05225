"""Versions: the content digest, and ``publish``, which writes a new immutable version.

A version folder is written under a temporary name, checked, recorded in
``dataset_versions``/``dataset_items`` and renamed only when complete, inside one store
transaction: an interrupted publish leaves no version behind, and the next one clears its
leftovers. Publishing unchanged content says so and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from biocurate.catalog import Catalog, load_catalog
from biocurate.config import Config
from biocurate.hashing import canonical_json
from biocurate.log import get_logger
from biocurate.publish.card import counts_of, dataset_card, provenance, upstream_releases, write_plots
from biocurate.publish.common import (
    SPLITS,
    PublishError,
    lower_to_publish_memory,
    publish_memory,
    within_publish_memory,
)
from biocurate.publish.formats import PARQUET_ROW_GROUP, PROVENANCE_COLUMNS
from biocurate.publish.records import RECORD_BATCH, Records
from biocurate.publish.selection import SPLIT_CONFLICT, select_items
from biocurate.publish.splits import assign_splits, split_checks
from biocurate.publish.writing import write_files
from biocurate.store import commit_at_store_limit, release, utcnow
from biocurate.version import code_version

VERSION_NAME = re.compile(r"^v\d{4,}$")
# Each step of a publish at debug level (`bench/publish_stage.py` notes the memory at each).
_log = get_logger("publish")


@dataclass
class PublishResult:
    version_id: str | None
    path: Path | None
    counts: dict = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    message: str = ""
    changes: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [self.message]
        out += [f"  {split}: {n}" for split, n in self.counts.get("splits", {}).items()]
        if self.changes:
            out.append("  since parent: " + ", ".join(f"{k} {v}" for k, v in self.changes.items()))
        out += [f"  not exported, {reason}: {n}" for reason, n in self.refused.items()]
        return out


def _file_sha256(path: Path) -> str:
    """sha256 of a file read in chunks (an export file can be hundreds of MB)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# Files hashed at once for the manifest: hashlib lets go of the GIL while it hashes, and at 100k
# calls (5.9 GB of files) one at a time took 6 s.
HASH_THREADS = 2


def _files_manifest(folder: Path, files: Iterable[str]) -> dict[str, dict]:
    """Each file's sha256 and size, by its path relative to ``folder`` (sorted)."""
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(files)
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        digests = list(pool.map(_file_sha256, [folder / rel for rel in names]))
    sizes = [(folder / rel).stat().st_size for rel in names]
    return {rel: {"sha256": d, "bytes": b} for rel, d, b in zip(names, digests, sizes, strict=True)}


def _digest_text(r: dict) -> bytes:
    """One item's part of the version digest: ``canonical_json`` of its fields, as UTF-8."""
    fields = (
        r["item_id"],
        r["user_query"],
        r["function_calling"],
        r["observation"],
        r["split"],
        r["group_key"],
        r["tool_names"],
        r["database"],
        r["tool"],
        r["category"],
        *(r[k] for k in PROVENANCE_COLUMNS),
        # a call set's own fields (issue 18); a single item's digest is as before
        *(() if r["kind"] == "single" else (r["kind"], r["calls"], r["answer"])),
    )
    return canonical_json(fields).encode()


# What a changed item differs in, as a short digest of its stored columns.
_ITEM_DIGEST = (
    "md5(concat_ws(chr(31), coalesce(user_query, chr(30)), coalesce(function_calling, chr(30)), "
    "coalesce(observation, chr(30))))"
)


def stored_call(r: dict) -> tuple[str, str]:
    """(function_calling, observation) as ``dataset_items`` keeps an item: a single item's call and
    observation; a call set's calls (``[{"name", "arguments"}, ...]`` in order, ``[]`` for no_tool)
    and its combined observation (the JSON array of the steps' observations)."""
    if r["kind"] == "single":
        return r["function_calling_json"], r["observation"]
    calls = [{"name": c["name"], "arguments": c["arguments"]} for c in r["calls"]]
    return canonical_json(calls), r["set_observation"]


def _item_digest(user_query: str | None, function_calling: str | None, observation: str | None) -> str:
    """``_ITEM_DIGEST`` of an item not stored (a dry run's)."""
    text = "\x1f".join("\x1e" if v is None else v for v in (user_query, function_calling, observation))
    return hashlib.md5(text.encode()).hexdigest()


_ITEM_COLUMNS = ("item_id", "call_id", "split", "group_key", "user_query", "function_calling", "observation")
_ITEMS_SCHEMA = {k: pl.String for k in ("version_id", *_ITEM_COLUMNS, "database", "tool")}
_DIGESTS_SCHEMA = {"item_id": pl.String, "d": pl.String}


class _Pass:
    """What the one pass over the records gathers besides the export files: the version digest
    (what the exported files depend on: the items, with who reviewed them and where their response
    came from, their splits, groups and offered tools, the specs of every catalog tool, since
    tools.json lists them all, and the publish settings, not where the files go), and the
    version's ``dataset_items`` rows (a dry run: only each item's id and
    ``_ITEM_DIGEST``, what the changes since the parent are counted from).

    The rows are spooled to a Parquet file in ``spool`` (a folder of the caller's, removed by it),
    ``batch`` rows a row group; the changes since the parent are counted from that file, and the
    caller inserts it with one statement (``insert``) as it records the version: DuckDB keeps the
    rows of many small inserts in one transaction in memory outside ``[store] memory_limit`` (about
    1.9 KB a row measured at 384k items), while one insert from Parquet stays within it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, version_id: str, batch: int, spool: Path, dry: bool = False):
        self.con, self.version_id, self.size, self.dry = con, version_id, batch, dry
        # content_hash([items], tools, settings), fed to the hash one item at a time: the same digest
        # without the whole version as one JSON string in memory (hundreds of MB at 100k items).
        self.hash = hashlib.sha256(b"[[")
        self.items = 0
        self.batch: list[tuple] = []
        self.path = spool / "items.parquet"
        self.writer: pq.ParquetWriter | None = None

    def feed(self, recs: Iterable[dict]) -> Iterator[dict]:
        """The records, passed on as each is digested and spooled (the spool complete once the
        last record has been passed on)."""
        for r in recs:
            self.hash.update((b"," if self.items else b"") + _digest_text(r))
            self.items += 1
            if self.dry:
                self.batch.append((r["item_id"], _item_digest(r["user_query"], *stored_call(r))))
            else:
                self.batch.append(
                    (
                        r["item_id"],
                        r["call_id"],
                        r["split"],
                        r["group_key"],
                        r["user_query"],
                        *stored_call(r),
                        r["database"] or "",
                        r["tool"] or "",
                    )
                )  # '' for no_tool
            if len(self.batch) >= self.size:
                self._spool()
            yield r
        self._spool()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _spool(self) -> None:
        if not self.batch:
            return
        columns = list(zip(*self.batch, strict=True))
        if self.dry:
            frame = pl.DataFrame(dict(zip(_DIGESTS_SCHEMA, columns, strict=True)), schema=_DIGESTS_SCHEMA)
        else:
            frame = pl.DataFrame(
                {
                    "version_id": [self.version_id] * len(self.batch),
                    **dict(zip(list(_ITEMS_SCHEMA)[1:], columns, strict=True)),
                },
                schema=_ITEMS_SCHEMA,
            )
        table = frame.to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)
        self.batch = []

    def digests(self) -> str:
        """A query of the spooled items' item_id and digest ``d`` (what ``_changes`` compares)."""
        if not self.items:
            return "select null::varchar as item_id, null::varchar as d where false"
        source = f"read_parquet('{self.path}')"  # a temp path of ours: no quote in it
        return f"select item_id, d from {source}" if self.dry else f"select item_id, {_ITEM_DIGEST} as d from {source}"

    def spooled(self) -> Path | None:
        """The Parquet file of the version's ``dataset_items`` rows (None: none spooled)."""
        return self.path if self.items and not self.dry else None

    def insert(self) -> None:
        """The spooled rows into ``dataset_items``, with one statement."""
        if (spooled := self.spooled()) is not None:
            self.con.execute("insert into dataset_items select * from read_parquet(?)", [str(spooled)])

    def digest(self, catalog: Catalog, config: Config) -> str:
        tools = sorted(t.name for t in catalog)
        self.hash.update(
            (
                "],"
                + canonical_json({n: catalog[n].spec_hash() for n in tools})
                + ","
                + canonical_json(config.publish.model_dump(mode="json", exclude={"out_dir"}))
                + "]"
            ).encode()
        )
        return self.hash.hexdigest()[:20]


def _changes(con: duckdb.DuckDBPyConnection, parent: str | None, now: str, items: int) -> dict[str, int]:
    """Items added, removed and changed since the parent version, compared by digest in the store
    (``now``: a query of the new version's item_id and digest d): neither version's observations
    are held in memory."""
    if parent is None:
        return {"added": items, "removed": 0, "changed": 0}
    added, removed, changed = con.execute(
        f"select count(*) filter (where b.item_id is null), count(*) filter (where n.item_id is null), "
        f"count(*) filter (where n.d <> b.d) from ({now}) as n "
        f"full outer join (select item_id, {_ITEM_DIGEST} as d from dataset_items where version_id = ?) as b "
        "on n.item_id = b.item_id",
        [parent],
    ).fetchall()[0]
    return {"added": added, "removed": removed, "changed": changed}


def _clear_leftovers(out_dir: Path, known: set[str]) -> list[str]:
    """Remove what an interrupted publish left: temp folders, version folders never recorded."""
    removed = []
    for path in out_dir.iterdir():
        unrecorded = VERSION_NAME.match(path.name) and path.name not in known
        if path.is_dir() and (path.name.startswith(".tmp-") or unrecorded):
            shutil.rmtree(path)
            removed.append(path.name)
    return removed


def publish(
    config: Config,
    con: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
    dry_run: bool = False,
    batch: int = RECORD_BATCH,
    row_group: int = PARQUET_ROW_GROUP,
) -> PublishResult:
    """Export human-accepted items as a new immutable version (or say that nothing changed).

    The records are made once, ``batch`` items at a time, and each goes to the digest, every
    export file and ``dataset_items`` as it is made (Parquet files written ``row_group`` rows at a
    time), so memory does not grow with the number of items. Whether anything changed is known
    from the digest at the end of that pass: then the temporary folder is removed and the
    store's transaction rolled back (a dry run keeps its rows in a temporary table, writes no files)."""
    try:
        return _publish(config, con, run_id, dry_run, batch, row_group)
    finally:  # the connection's limit back (a caller's connection, an error)
        try:
            con.execute(f"set memory_limit = '{config.store.memory_limit}'")
        except duckdb.Error:  # a connection an error broke: its error is the one to see
            pass


def _publish(
    config: Config, con: duckdb.DuckDBPyConnection, run_id: str | None, dry_run: bool, batch: int, row_group: int
) -> PublishResult:
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    lower_to_publish_memory(con, config)
    items, refused = select_items(config, con, catalog)
    _log.debug("selected", extra={"fields": {"items": items.height}})
    if items.is_empty():
        return PublishResult(None, None, refused=refused, message="nothing to publish: no human-accepted items yet")
    # What DuckDB used for the selection's joins it keeps until its connection closes (more than
    # duckdb_memory() reports): a stage's connection is closed here and opened again (and below,
    # after the split assignment's queries).
    release(con)
    lower_to_publish_memory(con, config)
    plan = within_publish_memory(con, config, partial(assign_splits, config, con, items))
    _log.debug("splits assigned")
    if plan.held:  # new items whose calls earlier versions put in different splits
        refused[SPLIT_CONFLICT] = len(plan.held)
        items = items.filter(~pl.col("item_id").is_in(plan.held))
    recs = Records(items, plan, catalog, config, con, batch)  # made a batch at a time
    del items
    plan.assigned = plan.assigned.clear()  # the records hold them as columns
    release(con)
    lower_to_publish_memory(con, config)
    known = {v for (v,) in con.execute("select version_id from dataset_versions").fetchall()}
    latest = con.execute(
        "select version_id, content_hash, path from dataset_versions "
        "order by length(version_id) desc, version_id desc limit 1"
    ).fetchall()
    parent = latest[0][0] if latest else None
    counts = counts_of(recs.light())
    _log.debug("counted")
    number = 1 + max((int(v[1:]) for v in known), default=0)
    version_id = f"v{number:04d}"

    def unchanged(digest: str) -> PublishResult | None:
        if not (latest and latest[0][1] == digest):
            return None
        note = "" if Path(latest[0][2]).is_dir() else f" (its folder {latest[0][2]} is missing)"
        return PublishResult(
            parent, None, counts, refused, f"nothing changed since {parent}{note}: no new version written"
        )

    if dry_run:
        with tempfile.TemporaryDirectory(prefix="biocurate-publish-") as spool:
            seen = _Pass(con, version_id, batch, Path(spool), dry=True)
            for _ in seen.feed(recs):
                pass
            changes = within_publish_memory(con, config, lambda: _changes(con, parent, seen.digests(), len(recs)))
        return unchanged(seen.digest(catalog, config)) or PublishResult(
            None, None, counts, refused, f"dry run: would publish {version_id} ({len(recs)} items)", changes
        )

    out_dir = config.path(config.publish.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(out_dir, known)
    tmp, final = out_dir / f".tmp-{version_id}", out_dir / version_id
    created = utcnow()
    tmp.mkdir()
    renamed = False
    try:
        # the rows' spool: beside the version, a .tmp- folder as leftovers are cleared
        with tempfile.TemporaryDirectory(prefix=f".tmp-{version_id}-rows-", dir=out_dir) as spool:
            seen = _Pass(con, version_id, batch, Path(spool))
            files = write_files(tmp, seen.feed(recs), len(recs), catalog, version_id, config, row_group)
            _log.debug("records written")
            digest = seen.digest(catalog, config)
            same = unchanged(digest)
            if same is not None:
                shutil.rmtree(tmp)
                return same
            changes = within_publish_memory(con, config, lambda: _changes(con, parent, seen.digests(), len(recs)))
            files += write_plots(tmp, recs.light())
            _log.debug("plots drawn")
            manifest = {
                "version_id": version_id,
                "parent": parent,
                "created_at": created.isoformat(timespec="seconds") + "Z",
                "code_version": code_version(),
                "config_hash": config.config_hash(),
                "config": config.model_dump(mode="json", exclude={"root", "store"}),
                "content_hash": digest,
                "counts": counts,
                "changes": changes,
                "splits": {
                    "group_by": config.publish.group_by,
                    "stratify": config.publish.stratify,
                    "seed": config.publish.split_seed,
                    "ratios": {s: getattr(config.publish, s) for s in SPLITS},
                    "inherited_items": plan.inherited_items,
                    "new_groups": plan.new_groups,
                },
                "not_exported": refused,
                "upstream_releases": within_publish_memory(con, config, lambda: upstream_releases(con, recs.light())),
                "provenance": within_publish_memory(con, config, lambda: provenance(config, con, recs.light())),
            }
            _log.debug("provenance gathered")
            (tmp / "README.md").write_text(dataset_card(manifest))
            files.append("README.md")
            manifest["files"] = _files_manifest(tmp, files)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False, default=str) + "\n")
            for path in tmp.rglob("*"):
                if path.is_file():
                    path.chmod(0o444)  # a published version is read-only

            # The splits are checked on the spooled rows before they are inserted (split_checks says
            # why); the version is then recorded in one transaction, its folder renamed inside it: all
            # or nothing. Nothing before wrote to the store, and this process holds it (no release
            # since before the records were made), so what was read and checked is what is recorded.
            problems = within_publish_memory(con, config, lambda: split_checks(con, version_id, seen.spooled()))
            _log.debug("splits checked")
            if problems:
                raise PublishError(
                    f"{version_id} failed its split checks, nothing was published: " + "; ".join(problems)
                )

            def record() -> None:
                con.execute("begin transaction")
                try:
                    seen.insert()
                    _log.debug("rows inserted")
                    con.execute(
                        "insert into dataset_versions values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            version_id,
                            parent,
                            digest,
                            created,
                            code_version(),
                            config.config_hash(),
                            str(final),
                            json.dumps(counts),
                            run_id,
                        ],
                    )
                    os.replace(tmp, final)
                    try:
                        commit_at_store_limit(con, config.store.memory_limit, publish_memory(config))
                    except BaseException:
                        os.replace(final, tmp)  # not recorded: the folder goes back to where it was
                        raise
                except BaseException:
                    con.execute("rollback")
                    raise

            # under publish's lowered memory limit; a version too large for it is recorded again at the store's
            within_publish_memory(con, config, record)
            renamed = True
    except BaseException:
        shutil.rmtree(final if renamed else tmp, ignore_errors=True)
        raise
    return PublishResult(
        version_id, final, counts, refused, f"published {version_id} ({len(recs)} items) at {final}", changes
    )
