"""`biocurate tools --coverage`: items per catalog function in the latest published version, and
the functions with none named."""

from __future__ import annotations

import re
from datetime import datetime

from typer.testing import CliRunner

from biocurate.catalog import load_catalog
from biocurate.cli import app
from biocurate.config import load_config
from biocurate.store import Store, insert_new

runner = CliRunner()


def publish(con, version_id: str, created: datetime, items: list[tuple[str, str, str]]) -> None:
    """A version holding (function, call_id, split) items, one question each."""
    insert_new(
        con,
        "dataset_versions",
        [
            {
                "version_id": version_id,
                "parent_id": None,
                "content_hash": version_id,
                "created_at": created,
                "code_version": "test",
                "config_hash": "test",
                "path": f"/nowhere/{version_id}",
                "counts": "{}",
            }
        ],
    )
    for n, (_function, call_id, split) in enumerate(items):
        insert_new(
            con,
            "dataset_items",
            [
                {
                    "version_id": version_id,
                    "item_id": f"{version_id}-{n}",
                    "call_id": call_id,
                    "split": split,
                    "group_key": f"call:{call_id}",
                    "user_query": "q?",
                    "function_calling": "[]",
                    "observation": "{}",
                    "database": "Ensembl",
                    "tool": "t",
                }
            ],
        )


def test_coverage_reports_items_per_function_of_the_latest_version(tmp_path, monkeypatch):
    catalog = load_catalog(load_config().path(load_config().sample.catalog_dir))
    names = sorted(t.name for t in catalog)
    first, second, gone = names[0], names[1], names[2]
    path = tmp_path / "s.duckdb"
    with Store(path).open() as con:
        calls = [("c1", first), ("c2", first), ("c3", second), ("c4", gone)]
        insert_new(
            con,
            "candidate_calls",
            [
                {
                    "call_id": c,
                    "function": f,
                    "arguments": "{}",
                    "template": "t",
                    "database": "Ensembl",
                    "tool_group": "g",
                    "category": "x",
                    "valid": True,
                }
                for c, f in calls
            ],
        )
        # the older version held `gone`; the latest does not
        publish(con, "v0001", datetime(2026, 1, 1), [(gone, "c4", "train"), (first, "c1", "train")])
        publish(
            con,
            "v0002",
            datetime(2026, 2, 1),
            [(first, "c1", "train"), (first, "c1", "train"), (first, "c2", "test"), (second, "c3", "validation")],
        )
    monkeypatch.setenv("BIOCURATE_STORE", str(path))
    out = runner.invoke(app, ["tools", "--coverage"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert f"2/{len(names)} functions have items in version v0002" in out.output
    none = set(re.findall(r"no published items: (\S+)", out.output))
    assert none == set(names) - {first, second}
    assert gone in none
    row = re.search(rf"{re.escape(first)}\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)", out.output)
    assert row and row.groups() == ("3", "2", "1"), out.output


def test_coverage_without_a_published_version_says_so(tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    with Store(path).open():
        pass
    monkeypatch.setenv("BIOCURATE_STORE", str(path))
    out = runner.invoke(app, ["tools", "--coverage"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "no published version yet" in out.output
