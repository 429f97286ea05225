"""The DuckDB store: one file, one table per stage, numbered migrations, idempotent inserts.

DuckDB allows one process to hold the file at a time (a writer, or any number of read-only
connections). So nobody holds it for long: a stage gets a ``StoreAccess``, a connection opened on
first use and closed at the stage's release points (before each network wait: API, LLM, Label
Studio; after each batch it writes), and every open retries on DuckDB's lock for a bounded time
(``Store.wait_seconds``) before it fails with a clear message naming the holder (its pid and, from
the job lock files, its job). A damaged file (truncated, not a DuckDB file, a block whose
checksum fails) is refused at open, or as soon as DuckDB meets the damage, with the file named
and what to do, never answered from. Who may read and write when: README, "Working during a
rebuild".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl

from biocurate.config import Config, mask_frame, memory_bytes
from biocurate.errors import BiocurateError, StoreLockedError, StoreMemoryError
from biocurate.hashing import sha256_bytes
from biocurate.log import event, get_logger


class MigrationChangedError(BiocurateError):
    """A schema file the store already applied was edited afterwards."""


class StoreDamagedError(BiocurateError):
    """The store file is truncated or corrupt: nothing is read from it."""


SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

PRIMARY_KEYS = {
    "runs": ["run_id"],
    "tools": ["function"],
    "entities": ["entity_id"],
    "candidate_calls": ["call_id"],
    "api_responses": ["response_id"],
    "observations": ["observation_id"],
    "queries": ["query_id"],
    "judgments": ["judgment_id"],
    "qc_results": ["qc_id"],
    "review_tasks": ["query_id"],
    "annotations": ["annotation_id"],
    "dataset_versions": ["version_id"],
    "dataset_items": ["version_id", "item_id"],
    "llm_calls": ["attempt_id"],
    "generation_failures": ["failure_id"],
    "drift_checks": ["check_id"],
    "drift_results": ["drift_id"],
    "drift_holds": ["hold_id"],
    "query_replacements": ["query_id"],
    "eval_runs": ["run_id"],
    "eval_predictions": ["run_id", "item_id"],
    "eval_scores": ["run_id", "level", "key", "metric"],
    "eval_responses": ["fingerprint"],
    "biotool_records": ["record_id"],
    "biotool_claims": ["claim_id"],
    "biotool_checks": ["check_id"],
    "call_sets": ["set_id"],
    "call_set_steps": ["set_id", "position"],
    "call_set_observations": ["observation_id", "position"],
}
EVAL_TABLES = ("eval_runs", "eval_predictions", "eval_scores", "eval_responses")
STAGE_TABLES = [t for t in PRIMARY_KEYS if t not in ("llm_calls", "generation_failures", *EVAL_TABLES)]


def utcnow() -> datetime:
    """Naive UTC timestamp (DuckDB TIMESTAMP has no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


# DuckDB's words for a damaged file: not a database, shorter than its blocks, a failed checksum.
_DAMAGE = re.compile(
    r"not a valid DuckDB database file|Could not read enough bytes from file|"
    r"Corrupt database file|does not match stored checksum",
    re.I,
)
HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers, before the blocks


def damaged(path: Path, what: str) -> StoreDamagedError:
    return StoreDamagedError(
        f"the store {path} is damaged ({what}): it is not read further. Restore the file from a "
        f"backup, or move it aside (mv {path} {path}.damaged) and run `biocurate rebuild` to build a new "
        "store; published version folders are not affected."
    )


def damage_of(exc: BaseException, path: Path) -> str | None:
    """What DuckDB found damaged in the store file at ``path``, if ``exc`` says so (else None)."""
    message = str(exc).strip()
    if not _DAMAGE.search(message):
        return None
    named = re.search(r'file "([^"]+)"', message)
    if named and Path(named.group(1)).resolve() != path.resolve():
        return None  # another file (a Parquet file being read, say)
    return message.splitlines()[0]


def check_complete(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a truncated file (a copy or a disk that stopped short): its blocks are whole and at
    least as many as it uses. DuckDB itself notices only when a query reaches a missing block
    (then ``Store.open`` reports it the same way). Free blocks at the end may be cut off by DuckDB."""
    block_size, used = con.execute(
        "select block_size, used_blocks from pragma_database_size() where database_name = current_database()"
    ).fetchall()[0]
    size = path.stat().st_size
    if block_size and (size - HEADER_BYTES) % block_size:
        raise damaged(path, f"truncated: {size} bytes is not a whole number of {block_size}-byte blocks")
    if size < HEADER_BYTES + used * block_size:
        raise damaged(path, f"truncated: {size} bytes, but it uses {used} blocks of {block_size} bytes")


_OPEN: dict[Path, int] = {}  # connections this process holds per store file (DuckDB shares one instance)
_MIGRATED: set[tuple[Path, Path]] = set()  # (store, sql dir) this process migrated: reopening skips it
DEFAULT_WAIT_SECONDS = 30.0  # how long an open waits for another process to release the file
RETRY_SECONDS = (0.02, 0.05, 0.1, 0.2)  # the pauses between tries, the last repeating
LOG = get_logger("store")
T = TypeVar("T")


def _holder(path: Path, message: str) -> str:
    """Who holds the file, from DuckDB's message (its pid) and the job lock files (its job)."""
    found = re.search(r"\(PID (\d+)\)", message)
    if not found:
        return "another process"
    pid = int(found.group(1))
    for lock in sorted(path.parent.glob(path.name + "*.lock")):
        try:
            record = json.loads(lock.read_text() or "{}")
        except (OSError, ValueError):
            continue
        if record.get("pid") == pid:
            return f"process {pid} ({record.get('job')}, since {record.get('started_at')} UTC)"
    return f"process {pid}"


def _is_lock_error(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _connect(path: Path, read_only: bool, wait_seconds: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open the file, trying again while another process holds it, for up to ``wait_seconds``."""
    started = time.monotonic()
    deadline = started + wait_seconds
    tries = 0
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            if tries:
                event(LOG, "store was busy", store=path.name, waited=round(time.monotonic() - started, 3))
            return con
        except duckdb.Error as exc:
            damage = damage_of(exc, path)
            if damage:
                raise damaged(path, damage) from exc
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                waited = f" for {wait_seconds:.0f}s" if wait_seconds else ""
                raise StoreLockedError(
                    f"the store {path} is locked by {_holder(path, str(exc))}{waited} (it is writing; "
                    "stages hold it only while they write a batch, publish for its whole run). Try again, "
                    "wait longer ([store] lock_wait_seconds), or query the last published Parquet files "
                    "with `biocurate sql --parquet DIR`."
                ) from exc
            time.sleep(min(RETRY_SECONDS[min(tries, len(RETRY_SECONDS) - 1)], max(0.0, deadline - time.monotonic())))
            tries += 1


def migrations(sql_dir: Path = SQL_DIR) -> list[tuple[int, str, str]]:
    """(version, file name, sql) of every schema file, in order."""
    found = []
    for file in sorted((sql_dir / "schema").glob("*.sql")):
        match = MIGRATION_NAME.match(file.name)
        if not match:
            raise ValueError(f"{file}: schema files must be named NNN_description.sql")
        found.append((int(match.group(1)), file.name, file.read_text()))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate schema version numbers in {sql_dir / 'schema'}")
    return found


def migrate(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply every schema file not yet recorded in ``schema_migrations``; return their names.

    Each file runs in one transaction together with its record, so a failed migration leaves
    the database at the previous version.
    """
    con.execute(
        "create table if not exists schema_migrations ("
        " version integer primary key, name varchar not null, checksum varchar not null,"
        " applied_at timestamp not null)"
    )
    applied = dict(con.execute("select version, checksum from schema_migrations").fetchall())
    done = []
    for version, name, sql in migrations(sql_dir):
        if version in applied:
            _check_unchanged(applied[version], name, sql, sql_dir)
            continue
        con.execute("begin transaction")
        try:
            con.execute(sql)
            con.execute(
                "insert into schema_migrations values (?, ?, ?, ?)",
                [version, name, checksum(sql), utcnow()],
            )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        done.append(name)
    apply_views(con, sql_dir)
    return done


def checksum(sql: str) -> str:
    return sha256_bytes(sql.encode())[:16]


def _check_unchanged(recorded: str, name: str, sql: str, sql_dir: Path) -> None:
    """An applied migration is history: its file must not change (a change goes in a new file)."""
    if recorded != checksum(sql):
        raise MigrationChangedError(
            f"{sql_dir / 'schema' / name} was changed after this store applied it (checksum "
            f"{checksum(sql)}, applied as {recorded}). Applied schema files are never edited: restore "
            "the file (git checkout) and put the change in a new, higher-numbered file."
        )


def check_migrations(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> None:
    """Raise ``MigrationChangedError`` if a schema file this store applied has changed since."""
    if not con.execute("select 1 from information_schema.tables where table_name = 'schema_migrations'").fetchall():
        return
    applied = dict(con.execute("select version, checksum from schema_migrations").fetchall())
    for version, name, sql in migrations(sql_dir):
        if version in applied:
            _check_unchanged(applied[version], name, sql, sql_dir)


def apply_views(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> None:
    """(Re)create the exploration views, one per file in ``sql/views``, in name order; a view that
    reads a view named after it is created once that one exists."""
    pending = sorted((sql_dir / "views").glob("*.sql"))
    while pending:
        waiting: list[tuple[Path, duckdb.Error]] = []
        for file in pending:
            try:
                con.execute(file.read_text())
            except duckdb.CatalogException as exc:
                waiting.append((file, exc))
        if len(waiting) == len(pending):
            first, error = waiting[0]
            raise duckdb.CatalogException(f"{first}: {error}")
        pending = [file for file, _ in waiting]


class Store:
    """A path to the DuckDB file plus the ways to open it."""

    def __init__(self, path: Path | str, memory_limit: str | None = None, wait_seconds: float | None = None):
        self.path = Path(path)
        # DuckDB's own memory (buffer pool, query intermediates; it spills to disk beyond it).
        self.memory_limit = memory_limit
        # How long an open waits while another process holds the file (then StoreLockedError).
        self.wait_seconds = DEFAULT_WAIT_SECONDS if wait_seconds is None else wait_seconds

    @contextmanager
    def open(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for the length of a ``with`` block; writers migrate first (once per process)."""
        if read_only and not self.path.exists():
            raise FileNotFoundError(f"no store at {self.path}: run `biocurate rebuild` (or `make demo`) first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        con = _connect(self.path, read_only, self.wait_seconds)
        try:
            if not _OPEN.get(key):  # the first connection: the file is as DuckDB counts it
                check_complete(con, self.path)
            _OPEN[key] = _OPEN.get(key, 0) + 1
            try:
                if self.memory_limit:
                    con.execute(f"set memory_limit = '{self.memory_limit}'")
                if read_only:
                    check_migrations(con)
                elif (key, SQL_DIR) not in _MIGRATED:
                    migrate(con)
                    _MIGRATED.add((key, SQL_DIR))
                yield con
            finally:
                _OPEN[key] -= 1
        except duckdb.Error as exc:
            damage = damage_of(exc, self.path)
            if damage:
                raise damaged(self.path, damage) from exc
            raise
        finally:
            con.close()

    @classmethod
    def of(cls, config: Config) -> Store:
        """The configured store: its path, DuckDB memory limit and lock wait."""
        store = config.store
        return cls(config.path(store.path), store.memory_limit, store.lock_wait_seconds)

    def access(self, read_only: bool = False) -> StoreAccess:
        return StoreAccess(self, read_only)


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


_TRIM = _malloc_trim()


def trim_heap() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim). glibc keeps what a
    closed connection and the frames of a finished batch freed (about 200 MB after the publish
    selection at 100k calls) for reuse, so a stage's later steps would stack on it; a few ms."""
    if _TRIM is not None:
        _TRIM(0)


def owned(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame copied into memory of polars' own. A frame made from DuckDB's result (``.pl()``,
    ``pl.from_arrow``) keeps DuckDB's Arrow buffers (polars takes them without a copy), and they
    pin DuckDB's memory after its connection closed: publish held about 100 MB more through its
    whole pass at 100k calls (``bench/publish_stage.py``). Polars' rechunk keeps the string
    buffers; an IPC copy does not. (The quality stage's list of pending questions, copied so,
    kept as much: what it holds is not DuckDB's.)"""
    held = io.BytesIO()
    frame.write_ipc(held)
    held.seek(0)
    return pl.read_ipc(held)


class StoreAccess:
    """A stage's way into the store: used like a DuckDB connection, opened on first use, closed
    by ``release`` (the stage's release points: before a network wait, after a batch written)
    so that other processes can read and write in between; the next use opens it again.

    Release only between batches: what a connection holds (registered frames, relations,
    temporary tables, an open transaction) ends with it. ``with`` closes it at the end (an error
    raised inside goes through ``Store.open``, which names a damaged file).
    """

    def __init__(self, store: Store, read_only: bool = False):
        self.store = store
        self.read_only = read_only
        self._stack: ExitStack | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self.opens = 0  # how many times it was opened (a release point that was used counts one more)
        self.memory_cap: str | None = None  # ``memory_capped``'s, set again at each opening

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            stack = ExitStack()
            self._con = stack.enter_context(self.store.open(read_only=self.read_only))
            self._stack = stack
            self.opens += 1
            if self.memory_cap is not None:
                lower_memory(self._con, self.memory_cap)
        return self._con

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection(), name)

    def release(self, exc: BaseException | None = None) -> None:
        """Close the connection (committing what it wrote) until the next use, and give the
        memory it freed back to the system."""
        stack, self._stack, self._con = self._stack, None, None
        if stack is not None:
            if exc is None:
                stack.close()
            else:
                stack.__exit__(type(exc), exc, exc.__traceback__)
            trim_heap()

    def __enter__(self) -> StoreAccess:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        self.release(exc)


@contextmanager
def memory_capped(con: Any, limit: str) -> Iterator[None]:
    """DuckDB's memory limit lowered to ``limit`` for the block (at each reopening of a
    ``StoreAccess`` too), then back to what it was; never raised: a store configured lower keeps
    its limit.

    DuckDB keeps the blocks a query read in its buffer pool, up to its limit, until the connection
    closes: a stage that reads a chunk and releases the store holds, at each chunk, as much of the
    tables it scanned as the limit allows (the quality stage's chunk frames: 230 MB at 1 GB, 139 MB
    at 128 MB, as fast). Blocks read are dropped rather than kept; what a query cannot do without
    it spills to disk."""
    if not isinstance(con, StoreAccess):  # a plain connection: held throughout
        before = _memory_setting(con)
        lower_memory(con, limit)
        try:
            yield
        finally:
            _restore_memory(con, before)
        return
    outer, con.memory_cap = (
        con.memory_cap,
        limit if con.memory_cap is None else min(limit, con.memory_cap, key=memory_bytes),
    )
    if con._con is not None:
        lower_memory(con._con, limit)
    try:
        yield
    finally:
        con.memory_cap = outer
        if con._con is not None:  # back to what Store.open sets (and an outer block's cap)
            _restore_memory(con._con, con.store.memory_limit, outer)


def past_the_cap(con: Any, query: Callable[[], T], limit: str | None = None, lowered: str | None = None) -> T:
    """``query()``; if DuckDB runs out of memory under a limit lowered below the store's own
    (``limit``: ``[store] memory_limit``, a ``StoreAccess``'s store's by default), ``query()`` once
    more at the store's limit, the lower one set again afterwards.

    A lowered limit saves memory and must never fail a stage: what a query needs on top of its
    result depends on DuckDB's threads and what they meet first (a quality chunk read under 128 MB
    ran out once in two runs of the same store), and on the store's size (publish's selection at a
    million calls needs more than 256 MB; at 100k it needs less than 128). ``lowered``: the limit
    to set again (a ``StoreAccess``'s cap by default; DuckDB shows its setting rounded). Out of
    memory at the store's own limit (at once, or again after the cap) is a ``StoreMemoryError``
    naming the setting; a connection without a store limit (a plain one, no ``limit``) raises
    DuckDB's error as it is."""
    try:
        return query()
    except duckdb.OutOfMemoryException as exc:
        access = con if isinstance(con, StoreAccess) else None
        limit = limit or (access.store.memory_limit if access is not None else None)
        connection = access.connection() if access is not None else con
        current = _memory_setting(connection)
        lowered = lowered or (access.memory_cap if access is not None else None)
        if limit is None:
            raise
        if lowered is None or memory_bytes(limit) <= _setting_bytes(current):
            raise _at_store_limit(limit, exc) from exc  # no cap to lift: at the store's own limit
        event(
            LOG,
            "a query outgrew a lowered memory limit: run again at the store's",
            lowered=lowered,
            error=str(exc)[:200],
        )
        _restore_memory(connection, limit)
        try:
            return query()
        except duckdb.OutOfMemoryException as again:
            raise _at_store_limit(limit, again) from again
        finally:
            if access is None or access._con is connection:  # still open: lowered again
                lower_memory(connection, lowered)


def commit_at_store_limit(con: duckdb.DuckDBPyConnection, limit: str, lowered: str | None = None) -> None:
    """COMMIT with DuckDB's memory limit at the store's own (``limit``), then lowered to ``lowered``.

    A commit that runs out of memory is not an error to retry: DuckDB invalidates the database
    (every later statement fails until the store is opened again), so no commit runs under a
    lowered cap. Measured: publish's insert of 3.8M dataset_items rows (a million calls) fits in
    256 MB, its commit does not (flushing the table and its key index)."""
    _restore_memory(con, limit)  # raising the limit inside a transaction is allowed and keeps it
    con.execute("commit")
    if lowered is not None:
        lower_memory(con, lowered)


def _at_store_limit(limit: str, exc: duckdb.OutOfMemoryException) -> StoreMemoryError:
    """DuckDB's out-of-memory error at the store's own limit, as one a person can act on. At a
    million calls publish's split checks met it once in two runs when they ran after the new
    version's rows were inserted (its uncommitted rows and their key index held most of 1 GB);
    they now check the spooled rows first."""
    return StoreMemoryError(
        f"DuckDB ran out of memory at the store's limit ([store] memory_limit = {limit}): "
        f"{str(exc).splitlines()[0]} What this step was writing is rolled back (earlier stages' "
        "rows are kept). Raise [store] memory_limit in the configuration and run it again."
    )


def _restore_memory(con: duckdb.DuckDBPyConnection, limit: str | None, cap: str | None = None) -> None:
    """DuckDB's memory limit set back to ``limit`` (None: DuckDB's default), then lowered to
    ``cap`` if given. On a connection an error left in a failed transaction this fails: that
    error is the one to see, and the connection is closed on its way out anyway."""
    try:
        con.execute(f"set memory_limit = '{limit}'" if limit else "reset memory_limit")
        if cap is not None:
            lower_memory(con, cap)
    except duckdb.Error:
        pass


def lower_memory(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    """DuckDB's memory limit set to ``limit`` if below the connection's, outside a transaction:
    when DuckDB cannot get under it (it holds more it cannot let go), the limit stays as it was
    and nothing is lost (a failed setting inside a transaction would abort it)."""
    if memory_bytes(limit) >= _setting_bytes(_memory_setting(con)):
        return
    try:
        con.execute(f"set memory_limit = '{limit}'")
    except duckdb.OutOfMemoryException:
        pass


def _memory_setting(con: duckdb.DuckDBPyConnection) -> str:
    """The connection's DuckDB memory_limit, as DuckDB shows it ("953.6 MiB")."""
    return con.execute("select current_setting('memory_limit')").fetchall()[0][0]


def _setting_bytes(setting: str) -> float:
    """DuckDB's memory_limit setting ("953.6 MiB", "1.0 GiB") in bytes."""
    try:
        return memory_bytes(setting)
    except ValueError:
        return float("inf")


def release(con: Any) -> None:
    """A release point: let other processes at the store while this stage waits on the network.

    A no-op for a plain connection (tests, a caller that holds the store on purpose)."""
    if isinstance(con, StoreAccess):
        con.release()


# The tables a chunk's temporary views hold the rows of (``registered``), and which of their rows:
# those the table macros in sql/views read (``query_context_of`` its questions and their
# observations, ``latest_judgments_of`` their judgments, ``latest_annotations_of`` every version of
# their annotations: an annotation is ranked by its Label Studio id, so all of that id's rows come
# along). In this order: a view is made after the views it reads.
CHUNK_TABLES = {
    "queries": "query_id in (select {ids} from {chunk})",
    "observations": "observation_id in (select observation_id from {chunk}_queries)",
    "judgments": "query_id in (select {ids} from {chunk})",
    "annotations": (
        "ls_annotation_id in (select ls_annotation_id from annotations where query_id in (select {ids} from {chunk}))"
    ),
}


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: Any, rows_of: str | None = None) -> Iterator[None]:
    """``frame`` registered as ``name`` for the block. With ``rows_of`` (the frame's column of
    query ids), also temporary views ``<name>_<table>`` of those questions' rows of each of
    CHUNK_TABLES: given to the table macros in sql/views, DuckDB reads the store by the chunk's keys
    instead of joining and ranking every row of it for each chunk."""
    views = {f"{name}_{table}": (table, rows) for table, rows in CHUNK_TABLES.items()} if rows_of else {}
    con.register(name, frame)
    try:
        for view, (table, rows) in views.items():
            where = rows.format(ids=rows_of, chunk=name)
            con.execute(f"create or replace temp view {view} as select * from {table} where {where}")
        yield
    finally:
        for view in views:
            con.execute(f"drop view if exists temp.{view}")
        con.unregister(name)


# Calls whose work a stage lists at a time. A stage holds its list of work (ids, arguments) while
# it works it; past this many calls in the store, the calls are split into parts by a hash of their
# id and the list is read and worked a part at a time, so that it does not grow with the store.
# Below it, one part: every call, as if unsplit.
WORK_PART_CALLS = 250_000


@dataclass(frozen=True)
class Part:
    """Part ``index`` of ``of`` parts of the calls (``call_parts``), by a hash of the call id."""

    index: int = 0
    of: int = 1

    def where(self, call_id: str) -> str:
        """A SQL condition true for the rows whose ``call_id`` (a column) is in this part."""
        return "true" if self.of == 1 else f"hash({call_id}) % {self.of} = {self.index}"


EVERY_CALL = Part()  # one part: every call


def call_parts(con: duckdb.DuckDBPyConnection) -> list[Part]:
    """The parts a stage lists its work in: one per ``WORK_PART_CALLS`` calls of the store (at least one)."""
    (calls,) = con.execute("select count(*) from candidate_calls").fetchall()[0]
    of = max(1, -(-calls // WORK_PART_CALLS))
    return [Part(index, of) for index in range(of)]


def insert_new(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame | list[dict]) -> int:
    """Insert rows whose key is not yet present; return how many were new.

    Columns not given keep their defaults; same content (same key) is never duplicated; no text
    keeps a secret's value (``config.mask_frame``).
    """
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, infer_schema_length=None)
    if frame.is_empty():
        return 0
    frame = mask_frame(frame)
    keys = PRIMARY_KEYS[table]
    frame = frame.unique(subset=keys, keep="first", maintain_order=True)
    columns = ", ".join(frame.columns)
    con.register("_incoming", frame)
    try:
        before = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        con.execute(f"insert into {table} ({columns}) select {columns} from _incoming on conflict do nothing")
        after = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    finally:
        con.unregister("_incoming")
    return after - before


def upsert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict], update: list[str]) -> None:
    """Insert rows, or update the named columns of rows whose key exists."""
    if not rows:
        return
    frame = mask_frame(pl.DataFrame(rows, infer_schema_length=None))
    keys = PRIMARY_KEYS[table]
    columns = ", ".join(frame.columns)
    sets = ", ".join(f"{c} = excluded.{c}" for c in update)
    con.register("_incoming", frame)
    try:
        con.execute(
            f"insert into {table} ({columns}) select {columns} from _incoming "
            f"on conflict ({', '.join(keys)}) do update set {sets}"
        )
    finally:
        con.unregister("_incoming")


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in STAGE_TABLES}


def observation_texts(con: duckdb.DuckDBPyConnection, ids: Iterable[str | None]) -> dict[str, str]:
    """observation_id -> text for the given ids (a batch's: the texts are most of the store's bytes
    a stage reads, so stages that stream read them a batch at a time)."""
    con.register(
        "_observation_ids", pl.DataFrame({"observation_id": list(set(ids))}, schema={"observation_id": pl.String})
    )
    try:
        return dict(
            con.execute(
                "select o.observation_id, o.text from observations o join _observation_ids using (observation_id)"
            ).fetchall()
        )
    finally:
        con.unregister("_observation_ids")
