"""The CLI: read-only sql, config masking, help on every command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biocurate.cli import app
from biocurate.config import load_config
from biocurate.lock import job_lock
from biocurate.store import Store, insert_new
from tests.pipeline_helpers import write_config

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    with Store(path).open() as con:
        insert_new(
            con,
            "entities",
            [{"entity_id": "e1", "entity_type": "gene", "label": "TP53", "fields": "{}", "source": "test"}],
        )
    monkeypatch.setenv("BIOCURATE_STORE", str(path))
    return path


def test_sql_reads_as_table_csv_and_json(store):
    out = runner.invoke(app, ["sql", "select label from entities", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [{"label": "TP53"}]
    out = runner.invoke(app, ["sql", "select label, entity_type from entities", "-f", "csv"])
    assert out.output.splitlines() == ["label,entity_type", "TP53,gene"]


@pytest.mark.parametrize(
    "statement",
    [
        "insert into entities (entity_id, entity_type, label, fields, source) values ('x','gene','X','{}','t')",
        "delete from entities",
        "drop table entities",
        "create table t (x int)",
    ],
)
def test_sql_refuses_writes(store, statement):
    out = runner.invoke(app, ["sql", statement])
    assert out.exit_code == 2
    assert "read-only" in out.output
    with Store(store).open(read_only=True) as con:
        assert con.execute("select count(*) from entities").fetchall()[0][0] == 1


def test_sql_on_a_missing_store_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOCURATE_STORE", str(tmp_path / "none.duckdb"))
    out = runner.invoke(app, ["sql", "select 1"])
    assert out.exit_code == 2 and "biocurate rebuild" in out.output


def test_config_masks_secrets(monkeypatch):
    monkeypatch.setenv("BIOCURATE_LLM_API_KEY", "sk-very-secret-value")
    out = runner.invoke(app, ["config"])
    assert out.exit_code == 0
    assert "sk-very-secret-value" not in out.output
    assert json.loads(out.output)["secrets"]["BIOCURATE_LLM_API_KEY"] == "***set***"


def test_config_typo_is_an_error_naming_the_key(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[execute]\ntransprt = 'live'\n")
    out = runner.invoke(app, ["config", "--config", str(bad)])
    assert out.exit_code == 2
    assert "execute.transprt" in out.output


def commands(group=app, prefix=""):
    import typer.main

    click_group = typer.main.get_command(group)
    for name, cmd in click_group.commands.items():
        if hasattr(cmd, "commands"):
            for sub in cmd.commands:
                yield f"{prefix}{name} {sub}".strip(), cmd.commands[sub]
        else:
            yield f"{prefix}{name}".strip(), cmd


def test_every_command_has_help_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, cmd in commands():
        assert cmd.help and len(cmd.help) > 20, f"{name} lacks a help text"
        assert re.search(rf"`biocurate {re.escape(name)}[` ]", readme), f"{name} missing from README's command table"


BAD_CONFIGS = {
    "unknown key": "[execute]\ntransprt = 'live'\n",
    "not TOML": "[execute\n",
    "missing catalog": "[sample]\ncatalog_dir = '/nonexistent/catalog'\n",
}
COMMANDS = [
    ["rebuild"],
    ["sample"],
    ["sample", "--dry-run"],
    ["seeds", "validate"],
    ["tools"],
    ["status"],
    ["config"],
    ["sql", "select 1"],
    ["review", "push"],
    ["review", "pull"],
    ["review", "status"],
    ["publish"],
    ["publish", "--dry-run"],
    ["diff", "v0001", "v0002"],
    ["qc", "report"],
    ["eval", "run", "--version", "v0001", "--baseline", "retrieval"],
    ["eval", "report", "r1"],
    ["serve"],
    ["drift", "check"],
    ["drift", "report"],
    ["import", "biotool", str(ROOT / "tests/data/biotool_dataset")],
    ["audit"],
]


@pytest.mark.parametrize("problem", BAD_CONFIGS)
def test_a_bad_config_is_a_one_line_error_in_every_command(tmp_path, problem):
    assert {
        " ".join(c[:2]) if c[0] in ("review", "seeds", "qc", "eval", "drift", "import") else c[0] for c in COMMANDS
    } == {name for name, _ in commands()}
    bad = tmp_path / "bad.toml"
    bad.write_text(f"[store]\npath = '{tmp_path / 's.duckdb'}'\n" + BAD_CONFIGS[problem])
    checked = (
        COMMANDS
        if problem != "missing catalog"
        else [["rebuild"], ["sample", "--dry-run"], ["seeds", "validate"], ["tools"], ["drift", "check"], COMMANDS[-2]]
    )
    for command in checked:
        out = runner.invoke(app, [*command, "--config", str(bad)])
        lines = [line for line in out.output.splitlines() if line.strip()]
        assert out.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (command, out.output)


@pytest.fixture
def cli_config(tmp_path):
    return write_config(
        tmp_path / "c.toml",
        {
            "store": {"path": str(tmp_path / "s.duckdb")},
            "review": {"enabled": False},
            "publish": {"out_dir": str(tmp_path / "versions")},
        },
    )


def recorded_runs(config_file):
    with Store(load_config(config_file).store.path).open(read_only=True) as con:
        return con.execute("select flow, status from runs order by started_at, run_id").fetchall()


@contextmanager
def lock_held_elsewhere(config_file: Path, job: str):
    """Another process holds ``job``'s lock (this process would take its own lock as held)."""
    code = (
        "import sys, time; from biocurate.config import load_config; from biocurate.lock import job_lock\n"
        f"with job_lock(load_config({str(config_file)!r}), {job!r}):\n"
        "    print('ready', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield
    finally:
        holder.communicate("", timeout=60)


def test_writing_commands_take_the_job_lock_and_record_a_run(cli_config):
    jobs = [(["publish"], "publish"), (["review", "push"], "review_push"), (["review", "pull"], "review_pull")]
    for command, _ in jobs:
        out = runner.invoke(app, [*command, "--config", str(cli_config)])
        assert out.exit_code == 0, (command, out.output)
    assert recorded_runs(cli_config) == [(job, "completed") for _, job in jobs]
    out = runner.invoke(app, ["publish", "--dry-run", "--config", str(cli_config)])
    assert out.exit_code == 0 and len(recorded_runs(cli_config)) == 3  # a dry run writes nothing

    with job_lock(load_config(cli_config), "rebuild"):  # a rebuild does not keep them out
        out = runner.invoke(app, ["review", "pull", "--config", str(cli_config)])
        assert out.exit_code == 0, out.output
    assert len(recorded_runs(cli_config)) == 4
    # A job on the same resource does (after [store] lock_wait_seconds, here none).
    folder = cli_config.parent
    impatient = write_config(
        folder / "impatient.toml",
        {
            "store": {"path": str(folder / "s.duckdb"), "lock_wait_seconds": 0},
            "review": {"enabled": False},
            "publish": {"out_dir": str(folder / "versions")},
        },
    )
    for command, job in jobs:
        holder = "publish" if job == "publish" else "review_sync"
        with lock_held_elsewhere(impatient, holder):
            out = runner.invoke(app, [*command, "--config", str(impatient)])
        message = " ".join(out.output.split())
        assert out.exit_code == 2 and f"cannot start {job}: the store is in use by {holder}" in message
    assert len(recorded_runs(cli_config)) == 4  # the refused ones left no run


def one_line_error(out) -> str:
    """The command failed as a person can act on: exit 2, one line starting with `error: `, no traceback."""
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exception is None or isinstance(out.exception, SystemExit), repr(out.exception)
    assert out.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), out.output
    return lines[0]


# The commands that read the catalog (everything that samples, checks seeds, runs a job or publishes).
READ_THE_CATALOG = {
    "rebuild",
    "sample",
    "sample --dry-run",
    "seeds validate",
    "tools",
    "publish",
    "publish --dry-run",
    "drift check",
    "review push",
    "review pull",
    "eval run",
    "import biotool",
}


def test_a_missing_catalog_folder_is_one_line_in_every_command_with_a_store(tmp_path):
    """With a store in place, so that each command gets as far as it can."""
    store = tmp_path / "s.duckdb"
    Store(store).open().__enter__().close()
    nowhere = tmp_path / "nowhere"
    config = write_config(
        tmp_path / "c.toml",
        {
            "store": {"path": str(store)},
            "sample": {"catalog_dir": str(nowhere)},
            "review": {"enabled": False},
            "publish": {"out_dir": str(tmp_path / "versions")},
        },
    )
    for command in COMMANDS:
        grouped = command[0] in ("review", "seeds", "qc", "eval", "drift", "import") or command[1:2] == ["--dry-run"]
        name = " ".join(command[:2]) if grouped else command[0]
        if name == "serve":
            continue  # starts a server when PREFECT_API_URL is set; its config check is the bad-config test's
        out = runner.invoke(app, [*command, "--config", str(config)])
        if name in READ_THE_CATALOG:
            assert str(nowhere) in one_line_error(out), (command, out.output)
        elif out.exit_code:
            one_line_error(out)
        else:
            assert out.exception is None, (command, repr(out.exception))


def test_review_status_prints_the_resolution_rule(store):
    out = runner.invoke(app, ["review", "status"])
    assert out.exit_code == 0, out.output
    assert "rule: any_reject" in out.output


@pytest.mark.parametrize("damage", ["truncated", "not a database"])
def test_a_damaged_store_is_one_line_naming_the_file_in_every_reading_command(store, damage):
    data = store.read_bytes()
    store.write_bytes(data[: len(data) - 1000] if damage == "truncated" else b"hello\n")
    for command in (
        ["status"],
        ["sql", "select count(*) from entities"],
        ["review", "status"],
        ["qc", "report"],
        ["drift", "report"],
        ["diff", "v0001", "v0002"],
        ["eval", "report", "r1"],
        ["audit"],
    ):
        line = one_line_error(runner.invoke(app, command))
        assert f"the store {store} is damaged" in line and "Restore the file from a backup" in line, (command, line)


def test_diff_of_folders_that_are_not_versions_says_so(tmp_path):
    import polars as pl

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    (tmp_path / "other").mkdir()
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "other" / "x.parquet")
    (tmp_path / "broken" / "parquet").mkdir(parents=True)
    (tmp_path / "broken" / "parquet" / "train.parquet").write_text("not parquet")
    cases = {
        "notes": "is not a dataset version: it holds no Parquet files",
        "other": "is not a dataset version: x.parquet has no column item_id",
        "broken": "train.parquet: not a readable Parquet file",
        "notes/a.txt": "is not a dataset version: give a version id such as v0001, or a version folder",
    }
    for folder, said in cases.items():
        out = runner.invoke(app, ["diff", str(tmp_path / folder), str(tmp_path / "notes")])
        assert said in one_line_error(out), (folder, out.output)


# A path longer than 80 columns: rich at its default non-terminal width folded such cells ("complete⏎d").
LONG_PATH = "/var/lib/biocurate/" + "/".join(f"folder-{i:02d}" for i in range(12)) + "/data_docs/index.html"


def test_tables_keep_their_width_when_stdout_is_not_a_terminal(store):
    """`biocurate sql` piped (as in a log or cron mail): each row stays on one line, the path whole."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from biocurate.cli import app; app()",
            "sql",
            f"select '{LONG_PATH}' as path, 'completed' as status",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if LONG_PATH in line)
    assert "completed" in row


def test_run_summary_keeps_rows_and_notes_whole_when_not_a_terminal(capsys, monkeypatch):
    from biocurate.runs import print_summary
    from biocurate.stages import StageReport

    monkeypatch.delenv("COLUMNS", raising=False)
    report = StageReport(stage="quality", rows_in=900, rows_new=899, failures={"qc dataset.near_duplicate": 1})
    report.notes.append(f"Data Docs: {LONG_PATH}")
    print_summary("20261202T010646-07e1f5", [report.as_dict()])
    lines = capsys.readouterr().out.splitlines()
    assert any(f"quality: Data Docs: {LONG_PATH}" in line for line in lines)
    assert any("qc dataset.near_duplicate (1)" in line and "899" in line for line in lines)
    assert any(line.strip() == "run 20261202T010646-07e1f5 completed" for line in lines)
