"""`biocurate sql`: a console that reads the store (or one published version's files) and
nothing else.

Two locks, each enough on its own for what it covers:

- **Statements**: only reading ones run (SELECT and its forms WITH, FROM, DESCRIBE, SHOW,
  SUMMARIZE; EXPLAIN; the informational PRAGMAs). Any other statement is refused before it runs,
  with a one-line reason naming it: writes, COPY, EXPORT DATABASE, ATTACH, INSTALL/LOAD, SET.
- **DuckDB itself**: the store is opened read-only; with ``--parquet`` an in-memory database
  whose only readable folder is the version's (``allowed_directories``). Then extension
  autoinstall/autoload are turned off, external access is turned off (no other file can be read,
  globbed or written, no extension installed or loaded), and the configuration is locked, so no
  statement can turn any of it back on. The order matters: ``allowed_directories`` can only be set
  while external access is on, and nothing can be set once the configuration is locked (DuckDB
  2.0.1; these keys cannot be passed to ``connect``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from biocurate.errors import BiocurateError
from biocurate.store import SQL_DIR, Store

READS = "SELECT (WITH, FROM, DESCRIBE, SHOW, SUMMARIZE), EXPLAIN and informational PRAGMAs"
INFO_PRAGMAS = (
    "table_info",
    "show_tables",
    "show_tables_expanded",
    "show",
    "database_size",
    "storage_info",
    "version",
    "platform",
    "functions",
    "collations",
    "database_list",
    "metadata_info",
)
_INFO_PRAGMA = re.compile(rf"\s*pragma\s+({'|'.join(INFO_PRAGMAS)})\b", re.I)
_T = duckdb.StatementType
WHY = {
    _T.COPY: "reads or writes files",
    _T.EXPORT: "writes the database out to files",
    _T.COPY_DATABASE: "copies a database",
    _T.ATTACH: "opens another database file",
    _T.DETACH: "detaches a database",
    _T.LOAD: "installs or loads a DuckDB extension",
    _T.EXTENSION: "changes DuckDB extensions",
    _T.SET: "changes the configuration, which is locked",
    _T.VARIABLE_SET: "sets a variable",
    _T.TRANSACTION: "controls transactions",
    _T.CALL: "calls a procedure (use SELECT * FROM the function instead)",
    _T.PRAGMA: f"is not an informational PRAGMA ({', '.join(INFO_PRAGMAS)})",
}
_WRITES = {
    _T.INSERT,
    _T.UPDATE,
    _T.DELETE,
    _T.CREATE,
    _T.CREATE_FUNC,
    _T.DROP,
    _T.ALTER,
    _T.VACUUM,
    _T.ANALYZE,
    _T.MERGE_INTO,
}
_READS = {_T.SELECT, _T.EXPLAIN}
_SECOND_WORDS = {"database", "extensions", "checkpoint"}  # EXPORT DATABASE, UPDATE EXTENSIONS, FORCE CHECKPOINT


class SqlRefused(BiocurateError):
    """A statement `biocurate sql` does not run: it would write, or reach outside the store."""


def _name(query: str) -> str:
    """The statement's leading keyword(s), as a person would name it: COPY, EXPORT DATABASE, INSTALL."""
    words = re.findall(r"[A-Za-z_]+", re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.S))[:2]
    if not words:
        return "(empty statement)"
    return " ".join(words if words[-1].lower() in _SECOND_WORDS else words[:1]).upper()


def refusal(statement: duckdb.Statement) -> str | None:
    """Why this statement is refused, or None when it only reads."""
    query = statement.query
    try:
        kind = statement.type
    except ValueError:  # a statement type newer than the Python enum (e.g. UPDATE EXTENSIONS)
        return f"{_name(query)} is not a reading statement"
    if kind in _READS:
        return None
    if kind == _T.PRAGMA and _INFO_PRAGMA.match(query):
        return None
    if kind in _WRITES:
        return f"{_name(query)} writes"
    return f"{_name(query)} {WHY.get(kind, 'is not a reading statement')}"


def checked_statements(text: str) -> list[duckdb.Statement]:
    """The statements of ``text``, each checked; SqlRefused names the first that does not only read."""
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise BiocurateError(f"SQL error: {first_line(exc)}") from None
    if not statements:
        raise BiocurateError("no SQL statement given")
    for statement in statements:
        why = refusal(statement)
        if why:
            raise SqlRefused(f"refused: {why}; `biocurate sql` is read-only and runs only {READS}")
    return statements


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lock_down(con: duckdb.DuckDBPyConnection, readable: Path | None = None) -> None:
    """No file but the open database (and the ``readable`` folder), no extensions, settings locked."""
    if readable is not None:
        con.execute(f"set allowed_directories = [{_quote(str(readable) + '/')}]")
    con.execute("set autoinstall_known_extensions = false")
    con.execute("set autoload_known_extensions = false")
    con.execute("set allow_community_extensions = false")
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


def version_parquet(folder: Path) -> tuple[Path, list[Path]]:
    """(the folder to allow, the Parquet files) of a published version folder or its parquet/ folder."""
    folder = Path(folder).resolve()
    parquet = folder / "parquet" if (folder / "parquet").is_dir() else folder
    files = sorted(parquet.glob("*.parquet")) if parquet.is_dir() else []
    if not files:
        raise BiocurateError(
            f"no .parquet files in {parquet}: point --parquet at a published version folder "
            "(such as data/out/versions/v0001)"
        )
    return folder, files


@contextmanager
def console(
    store: Path | None = None, parquet: Path | None = None, memory_limit: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked-down connection: the store read-only, or (``parquet``) one version's Parquet files as
    views (one per split file, ``dataset_items`` over all of them, and ``split_summary``)."""
    if parquet is not None:
        allowed, files = version_parquet(parquet)
        con = duckdb.connect()
        try:
            if memory_limit:
                con.execute(f"set memory_limit = {_quote(memory_limit)}")
            try:
                for file in files:
                    con.execute(f'create view "{file.stem}" as select * from read_parquet({_quote(str(file))})')
                every = ", ".join(_quote(str(f)) for f in files)
                con.execute(f"create view dataset_items as select * from read_parquet([{every}], union_by_name = true)")
                con.execute((SQL_DIR / "views" / "split_summary.sql").read_text())
            except duckdb.Error as exc:
                raise BiocurateError(
                    f"{allowed} is not a published version's Parquet folder: {first_line(exc)}"
                ) from None
            lock_down(con, allowed)
            yield con
        finally:
            con.close()
        return
    if store is None:
        raise BiocurateError("no store and no --parquet folder to query")
    with Store(store, memory_limit).open(read_only=True) as con:
        lock_down(con)
        yield con


def run(con: duckdb.DuckDBPyConnection, text: str) -> tuple[list[str], list[tuple]] | None:
    """Run ``text`` (one or more reading statements); the columns and rows of the last that has any.

    A refusal is a SqlRefused naming what was refused; any other SQL error a one-line BiocurateError.
    """
    result = None
    for statement in checked_statements(text):
        try:
            cursor = con.execute(statement)
            if cursor.description is not None:
                result = ([d[0] for d in cursor.description], cursor.fetchall())
        except duckdb.PermissionException as exc:
            raise SqlRefused(
                f"refused: {_permission(exc)}; `biocurate sql` reads only the store "
                "(with --parquet, only that version's folder)"
            ) from None
        except duckdb.Error as exc:
            raise BiocurateError(f"SQL error: {first_line(exc)}") from None
    return result


def _permission(exc: duckdb.PermissionException) -> str:
    message = first_line(exc)
    where = re.search(r'Cannot access (file|directory) "([^"]*)"', message)
    if where:
        return f"access to the {where.group(1)} {where.group(2)}"
    if "extension" in message.lower():
        return "loading a DuckDB extension"
    return message.removeprefix("Permission Error: ")
