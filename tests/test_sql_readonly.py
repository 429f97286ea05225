"""`biocurate sql` reads the store (or one version's Parquet folder) and nothing else: every way out
that a "read-only" DuckDB connection leaves open is refused with a one-line error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from biocurate.cli import app
from biocurate.readonly_sql import console
from biocurate.store import Store, insert_new

runner = CliRunner()
SECRET = "sk-env-secret-4f1c9a"
REFUSED = "`biocurate sql`"


def make_store(path: Path, labels: list[str]) -> Path:
    with Store(path).open() as con:
        insert_new(
            con,
            "entities",
            [
                {"entity_id": f"e{i}", "entity_type": "gene", "label": label, "fields": "{}", "source": "test"}
                for i, label in enumerate(labels)
            ],
        )
    return path


def entity_count(path: Path) -> int:
    with Store(path).open(read_only=True) as con:
        return con.execute("select count(*) from entities").fetchall()[0][0]


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = make_store(tmp_path / "s.duckdb", ["TP53"])
    monkeypatch.setenv("BIOCURATE_STORE", str(path))
    return path


@pytest.fixture
def version(tmp_path) -> Path:
    """A published version's layout: parquet/<split>.parquet, and a manifest beside it."""
    folder = tmp_path / "versions" / "v0001"
    (folder / "parquet").mkdir(parents=True)
    for split, items in (("train", ["i1", "i2"]), ("test", ["i3"])):
        pl.DataFrame(
            {
                "version_id": "v0001",
                "item_id": items,
                "call_id": items,
                "split": split,
                "database": "NCBI",
                "tool": "esearch",
                "function": "esearch",
                "category": "literature",
                "group_key": items,
            }
        ).write_parquet(folder / "parquet" / f"{split}.parquet")
    (folder / "manifest.json").write_text(json.dumps({"version_id": "v0001"}))
    return folder


def sql(*args: str):
    return runner.invoke(app, ["sql", *args])


def assert_refused(out, *names: str) -> str:
    """Exit 2, one line, starting with `error: refused:` and naming what was refused."""
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exit_code == 2 and len(lines) == 1, out.output
    assert lines[0].startswith("error: refused:") and REFUSED in lines[0], lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def test_a_select_still_works(store):
    out = sql("select label from entities", "-f", "json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [{"label": "TP53"}]
    out = sql("describe entities", "-f", "csv")
    assert out.exit_code == 0 and "entity_id" in out.output


def test_copy_to_a_file_is_refused_and_writes_nothing(store, tmp_path):
    target = tmp_path / "leak.csv"
    assert_refused(sql(f"copy (select * from entities) to '{target}'"), "COPY")
    assert not target.exists()


def test_export_database_is_refused_and_writes_nothing(store, tmp_path):
    target = tmp_path / "export"
    assert_refused(sql(f"export database '{target}'"), "EXPORT DATABASE")
    assert not target.exists()


def test_attaching_another_store_to_delete_from_it_is_refused(store, tmp_path):
    other = make_store(tmp_path / "other.duckdb", ["BRCA2", "KRAS"])
    out = sql(f"attach '{other}' as o (READ_WRITE); delete from o.entities")
    assert_refused(out, "ATTACH")
    assert entity_count(other) == 2
    assert_refused(sql(f"delete from entities; attach '{other}' as o"), "DELETE", "read-only")
    assert entity_count(store) == 1


def test_the_process_environment_is_not_readable(store, monkeypatch):
    monkeypatch.setenv("BIOCURATE_LLM_API_KEY", SECRET)
    for query in (
        "select * from read_text('/proc/self/environ')",
        "select * from read_csv('/proc/self/environ', header = false, sep = '\\0')",
        "select content from read_blob('/proc/' || 'self/environ')",
    ):
        out = sql(query, "-f", "csv")
        assert SECRET not in out.output
        assert_refused(out, "/proc/self/environ")


def test_system_files_and_the_home_folder_are_not_readable(store):
    assert_refused(sql("select * from read_csv('/etc/passwd')"), "/etc/passwd")
    assert_refused(sql("select * from read_text('/etc/passwd')"), "/etc/passwd")
    assert_refused(sql("select * from glob('~/*')"), "~/*")
    assert_refused(sql(f"select * from glob('{Path.home()}/*')"), str(Path.home()))


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("install httpfs", "INSTALL"),
        ("load httpfs", "LOAD"),
        ("load json", "LOAD"),  # built in, and still refused: no loads at all
        ("force install httpfs", "FORCE"),
    ],
)
def test_extensions_are_neither_installed_nor_loaded(store, statement, name):
    assert_refused(sql(statement), name, "extension")


@pytest.mark.parametrize(
    "statement",
    [
        "set enable_external_access = true",
        "reset lock_configuration",
        "set lock_configuration = false",
        "set allowed_directories = ['/']",
    ],
)
def test_the_configuration_cannot_be_unlocked(store, statement):
    assert_refused(sql(statement), "SET" if statement.startswith("set") else "RESET")


def test_the_connection_itself_is_locked_down(store, tmp_path):
    """Behind the statement check, DuckDB's own settings refuse the same things."""
    target = tmp_path / "leak.csv"
    with console(store) as con:
        assert con.execute("select count(*) from entities").fetchall() == [(1,)]
        for statement in (
            f"copy (select 1) to '{target}'",
            "select * from read_text('/etc/passwd')",
            f"attach '{tmp_path / 'new.duckdb'}' as n",
            "install httpfs",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(statement)
        with pytest.raises(duckdb.Error, match="configuration has been locked"):
            con.execute("set enable_external_access = true")
    assert not target.exists() and not (tmp_path / "new.duckdb").exists()


def test_parquet_select_and_views_still_work(version):
    out = sql(
        "select split, count(*) as n from dataset_items group by all order by split",
        "-f",
        "csv",
        "--parquet",
        str(version),
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["split,n", "test,1", "train,2"]
    out = sql("select item_id from test", "-f", "csv", "--parquet", str(version / "parquet"))
    assert out.output.splitlines() == ["item_id", "i3"]
    out = sql("select split, items, leaking_groups from split_summary", "-f", "csv", "--parquet", str(version))
    assert out.output.splitlines() == ["split,items,leaking_groups", "train,2,0", "test,1,0"]
    out = sql(
        "select version_id from read_json('" + str(version / "manifest.json") + "')",
        "-f",
        "csv",
        "--parquet",
        str(version),
    )  # the version's own files stay readable
    assert out.output.splitlines() == ["version_id", "v0001"], out.output


def test_parquet_mode_reads_only_that_version_and_writes_nothing(version, store, tmp_path):
    (tmp_path / "versions" / "v0002").mkdir()
    (tmp_path / "versions" / "v0002" / "notes.txt").write_text("another version")
    args = ("--parquet", str(version))
    assert_refused(
        sql(f"select * from read_text('{tmp_path / 'versions' / 'v0002' / 'notes.txt'}')", *args), "notes.txt"
    )
    assert_refused(sql(f"select * from read_text('{version}/../v0002/notes.txt')", *args), "notes.txt")
    assert_refused(sql(f"select count(*) from '{store}'", *args))  # not even the store
    assert_refused(sql("select * from read_text('/proc/self/environ')", *args), "/proc/self/environ")
    inside = version / "parquet" / "extra.parquet"
    assert_refused(sql(f"copy (select 1 as x) to '{inside}'", *args), "COPY")
    assert_refused(sql("create table t as select 1", *args), "CREATE")
    assert not inside.exists()


def test_a_refused_statement_stops_the_whole_text_before_anything_runs(store, tmp_path):
    target = tmp_path / "first.csv"
    out = sql(f"select 1; copy (select 2) to '{target}'; select 3")
    assert_refused(out, "COPY")
    assert "│ 1" not in out.output and not target.exists()


def test_a_folder_that_is_not_a_version_is_one_line(tmp_path):
    (tmp_path / "odd").mkdir()
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "odd" / "x.parquet")
    out = sql("select 1", "--parquet", str(tmp_path / "odd"))
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exit_code == 2 and len(lines) == 1 and "not a published version" in lines[0], out.output
    out = sql("select 1", "--parquet", str(tmp_path / "none"))
    assert out.exit_code == 2 and "no .parquet files" in out.output


def test_a_syntax_error_is_one_line(store):
    out = sql("selec 1")
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exit_code == 2 and lines == ['error: SQL error: Parser Error: syntax error at or near "selec"']
