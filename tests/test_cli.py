"""The CLI: read-only sql, config masking, help on every command."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biocurate.cli import app
from biocurate.store import Store, insert_new

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    with Store(path).open() as con:
        insert_new(con, "entities", [{"entity_id": "e1", "entity_type": "gene", "label": "TP53",
                                      "fields": "{}", "source": "test"}])
    monkeypatch.setenv("BIOCURATE_STORE", str(path))
    return path


def test_sql_reads_as_table_csv_and_json(store):
    out = runner.invoke(app, ["sql", "select label from entities", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [{"label": "TP53"}]
    out = runner.invoke(app, ["sql", "select label, entity_type from entities", "-f", "csv"])
    assert out.output.splitlines() == ["label,entity_type", "TP53,gene"]


@pytest.mark.parametrize("statement", [
    "insert into entities (entity_id, entity_type, label, fields, source) values ('x','gene','X','{}','t')",
    "delete from entities",
    "drop table entities",
    "create table t (x int)",
])
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
