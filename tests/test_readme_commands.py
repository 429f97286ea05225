"""Every command in README.md runs in a test, so a command that crashes cannot land again.

The commands are read from the README itself: each `biocurate ...`, `make ...` and script line of
its shell code blocks, and each command of its command table. A `biocurate` command is run as
written (in-process, over a demo store built once for this module in a temp folder: the demo config,
`biocurate rebuild` through Prefect, every survivor accepted as rows, `biocurate publish`), from that
folder, so README paths such as `data/out/versions/v0001` name the temp store's. Its exit code must
be 0 and its output must show what `EXPECT` says (a SQL query: rows, or none where the README says
it must return nothing). A command that cannot run here (a hosted model, Label Studio's full loop,
`make demo`) is mapped in `MAPPED` to the test that runs it. A README command that is neither run
nor mapped fails `test_every_readme_command_is_run_or_mapped`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biocurate.cli import app
from biocurate.store import Store
from tests.conftest import ROOT
from tests.pipeline_helpers import accept_survivors, write_config

README = ROOT / "README.md"
BIOCURATE = str(Path(sys.executable).parent / "biocurate")

# README commands that another test runs (path::test), with why they are not run here.
MAPPED = {
    # set-up commands: `make -n` is checked here; the demo's steps are this module's fixture
    "make demo": "tests/test_readme_commands.py::test_make_targets_install_what_each_needs",
    "make test": "tests/test_readme_commands.py::test_make_targets_install_what_each_needs",
    # a real Prefect server and the UI
    "scripts/prefect_server.sh start": (
        "tests/test_browser_ops.py::test_prefect_ui_shows_deployments_and_a_finished_run"
    ),
    # Label Studio: the session's server (the `label_studio` fixture)
    "biocurate review push": "tests/test_readme_commands.py::test_review_push_and_pull_commands_against_label_studio",
    "biocurate review pull": "tests/test_readme_commands.py::test_review_push_and_pull_commands_against_label_studio",
    "biocurate serve": "tests/test_serve.py::test_served_deployments_register_and_a_triggered_run_does_the_cli_work",
    # hosted or local models: the loopback LLM stand-in speaks their protocol
    "biocurate eval run --version v0001 --model gpt-4.1-mini": (
        "tests/test_eval.py::test_each_metric_per_item_and_in_aggregate"
    ),
    "biocurate eval run --version v0001 --model qwen2.5:7b-instruct --base-url http://127.0.0.1:11434/v1": (
        "tests/test_eval.py::test_each_metric_per_item_and_in_aggregate"
    ),
    "biocurate eval run --version v0001 --model gpt-4.1-mini --all-tools": (
        "tests/test_eval.py::test_all_tools_offers_the_whole_catalog"
    ),
    # the MiniLM model takes minutes to load on a busy 2-core machine: the eval test runs this command
    "biocurate eval run --version v0001 --baseline retrieval": (
        "tests/test_eval.py::test_retrieval_baseline_runs_offline_on_a_published_version"
    ),
    # BioTool's downloaded files and the live APIs: the fixture dataset and the loopback API stand-in
    "biocurate import biotool data/biotool": (
        "tests/test_biotool_import.py::test_readme_import_rebuild_audit_find_what_the_fixture_plants"
    ),
    "biocurate rebuild --transport live": (
        "tests/test_biotool_import.py::test_readme_import_rebuild_audit_find_what_the_fixture_plants"
    ),
}

# Table commands with no code-block line: how they are run here (in this order, after the blocks).
SMOKE = [
    "biocurate sample --dry-run",
    "biocurate sample",
    "biocurate seeds validate",
    "biocurate status",
    "biocurate config",
    "biocurate tools",
    "biocurate tools --coverage",
    "biocurate review status",
    "biocurate publish --dry-run",
    "biocurate diff v0001 v0001",
    "biocurate drift check --sample-size 5",
    "biocurate drift report",
    "biocurate qc report",
]
# What a command's output must show: (regex over the command, regex its output must match).
EXPECT = [
    (r"^biocurate rebuild$", r"run \S+ completed"),
    (r"^biocurate sample --dry-run$", r"(?s)database.*function"),
    (r"^biocurate sample$", r"run \S+"),
    (r"^biocurate seeds validate$", r"(?s)entity type.*valid rows.*\bgene\b"),
    (r"^biocurate status$", r"dataset_versions"),
    (r"^biocurate config$", r'"store"'),
    (r"^biocurate tools$", r"get_info_ping"),
    (r"^biocurate tools --coverage$", r"^137/137 published functions present"),
    (r"^biocurate review status$", r"accept"),
    (r"^biocurate publish --dry-run$", r"nothing changed since v0001: no new version written"),
    (r"^biocurate diff v0001 v0001$", r"(?i)added"),
    (r"^biocurate drift check", r"(?i)unchanged"),
    (r"^biocurate drift report$", r"(?i)unchanged"),
    (r"^biocurate qc report$", r"Data Docs: .*index\.html"),
    (r"^biocurate eval report ", r"report: .*"),
    # the demo imports nothing from BioTool (tests/test_biotool_import.py audits an import)
    (r"^biocurate audit$", r"nothing imported yet: run `biocurate import biotool"),
    (r"^biocurate audit --json$", r'"imported_records": 0'),
]
PLACEHOLDER_RUN = re.compile(r"^eval-20\d\d")


def normalised(words: list[str]) -> list[str]:
    """`.venv/bin/biocurate` -> `biocurate`, `.venv/bin/python` -> `python`."""
    head = words[0].rsplit("/", 1)[-1] if words[0].startswith(".venv/bin/") else words[0]
    return [head, *words[1:]]


def block_commands(text: str) -> list[list[str]]:
    """The commands of the README's shell code blocks (a quoted string may span lines)."""
    out = []
    for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, re.S):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # an open quote: the command goes on
                continue
            pending = ""
            if words:
                words = normalised(words)
                if words[0] in ("biocurate", "make") or words[0].startswith("scripts/") or words[:1] == ["python"]:
                    out.append(words)
    return out


def table_commands(text: str) -> list[str]:
    return re.findall(r"^\| `(biocurate [^`]*)` \|", text, re.M)


def must_return_nothing(text: str) -> set[str]:
    """SQL commands the README says must return nothing (its comment line just above them)."""
    lines = text.splitlines()
    out = set()
    for i, line in enumerate(lines[1:], 1):
        if "must return nothing" in lines[i - 1] and "biocurate sql" in line:
            out.add(shlex.join(normalised(shlex.split(line))))
    return out


TEXT = README.read_text()
BLOCK = [shlex.join(c) for c in block_commands(TEXT)]
RUN_HERE = [c for c in dict.fromkeys(BLOCK) if c.startswith("biocurate ") and c not in MAPPED] + SMOKE
RUN_BY_FIXTURE = {"biocurate rebuild", "biocurate publish"}


@contextmanager
def inside(folder: Path):
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, prefect_harness):
    """The demo run into a temp folder: `biocurate rebuild` (a Prefect flow run, replay), every
    survivor accepted (the reviewer's part, as rows), `biocurate publish` -> v0001."""
    folder = tmp_path_factory.mktemp("readme")
    out = folder / "data" / "out"
    config = write_config(
        folder / "biocurate.toml",
        {
            "store": {"path": str(out / "biocurate.duckdb")},
            "review": {"enabled": False},
            "publish": {"out_dir": str(out / "versions")},
            "quality": {"data_docs_dir": str(out / "data_docs")},
        },
    )
    from prefect.settings import PREFECT_API_URL

    # the session's Prefect server (the harness), as the scheduled jobs would use a real one
    env = {**os.environ, "BIOCURATE_CONFIG": str(config), "PREFECT_API_URL": PREFECT_API_URL.value()}
    env.pop("COLUMNS", None)
    rebuild = subprocess.run([BIOCURATE, "rebuild"], cwd=folder, env=env, capture_output=True, text=True, timeout=1200)
    assert rebuild.returncode == 0, rebuild.stdout[-3000:] + rebuild.stderr[-3000:]
    accepted = accept_survivors(out / "biocurate.duckdb")
    with inside(folder):
        publish = CliRunner().invoke(app, ["publish"], env={"BIOCURATE_CONFIG": str(config)})
    assert publish.exit_code == 0, publish.output
    return {
        "folder": folder,
        "config": config,
        "store": out / "biocurate.duckdb",
        "accepted": accepted,
        "outputs": {"biocurate rebuild": rebuild.stdout, "biocurate publish": publish.output},
    }


def run(demo, command: str) -> str:
    args = shlex.split(command)[1:]
    if args[:2] == ["eval", "report"]:
        args = [a for a in args if not PLACEHOLDER_RUN.match(a)] + [latest_eval_run(demo)]
    with inside(demo["folder"]):
        result = CliRunner().invoke(app, args, env={"BIOCURATE_CONFIG": str(demo["config"]), "COLUMNS": None})
    assert result.exit_code == 0, f"{command} exited {result.exit_code}:\n{result.output[-3000:]}"
    return result.output


def latest_eval_run(demo) -> str:
    """The eval run the README's placeholders stand for: the baseline with the lexical similarity
    (no model to load), made when missing."""
    with Store(demo["store"]).open(read_only=True) as con:
        rows = con.execute("select run_id from eval_runs order by started_at desc limit 1").fetchall()
    if not rows:
        output = run(demo, "biocurate eval run --version v0001 --baseline retrieval --embedder lexical")
        assert "exact_match" in output
        return latest_eval_run(demo)
    return rows[0][0]


def expected_output(command: str) -> str | None:
    return next((want for pattern, want in EXPECT if re.search(pattern, command)), None)


@pytest.mark.parametrize("command", RUN_HERE)
def test_readme_command_runs_on_the_demo_store(demo, command):
    output = demo["outputs"][command] if command in RUN_BY_FIXTURE else run(demo, command)
    if shlex.split(command)[1] == "sql":
        as_json = run(demo, command + " --format json")
        rows = json.loads(as_json)
        if command in must_return_nothing(TEXT):
            assert rows == [], f"{command}: the README says it must return nothing"
        elif "audit_" not in command:  # the demo imports nothing from BioTool: its audit views are empty
            assert rows, f"{command} returned no rows on the demo store"
        return
    want = expected_output(command)
    assert want is not None, f"add what `{command}` must print to EXPECT in {__name__}"
    assert re.search(want, output, re.M), f"{command}: no match for {want!r} in:\n{output[-3000:]}"


def test_rebuild_summary_and_execute_note_agree_on_requests(demo):
    """Replayed calls are no network requests: the execute note and the last line say the same."""
    out = demo["outputs"]["biocurate rebuild"]
    # execute's calls, and chain's (the call sets' later steps)
    notes = dict(re.findall(r"^\s*(\w+): (\d+) calls replayed from \S+ \(no network requests\)", out, re.M))
    last = re.search(r"; 0 requests to the APIs and LLM endpoints \((\d+) calls replayed", out)
    assert set(notes) == {"execute", "chain"} and last, out[-3000:]
    assert sum(int(n) for n in notes.values()) == int(last.group(1)) and int(notes["execute"]) > 200


def test_publish_made_the_version_the_readme_commands_read(demo):
    assert "v0001" in demo["outputs"]["biocurate publish"]
    assert (demo["folder"] / "data/out/versions/v0001/manifest.json").exists()
    assert demo["accepted"] > 100


@pytest.mark.labelstudio
def test_review_push_and_pull_commands_against_label_studio(demo, label_studio, tmp_path, monkeypatch):
    """The README's review commands on a copy of the demo store from before its review (the
    fixture's accepted rows removed), against the session's Label Studio."""
    import shutil

    store = tmp_path / "biocurate.duckdb"
    shutil.copy(demo["store"], store)
    with Store(store).open() as con:
        con.execute("delete from annotations")
        con.execute("delete from review_tasks")
    config = write_config(
        tmp_path / "review.toml",
        {
            "store": {"path": str(store)},
            "review": {"enabled": True, "url": label_studio.url, "project_title": "readme commands"},
            "publish": {"out_dir": str(demo["folder"] / "data/out/versions")},
            "quality": {"data_docs_dir": str(demo["folder"] / "data/out/data_docs")},
        },
    )
    env = {"BIOCURATE_CONFIG": str(config), "LABEL_STUDIO_API_KEY": label_studio.token, "COLUMNS": None}
    push = CliRunner().invoke(app, ["review", "push"], env=env)
    assert push.exit_code == 0, push.output[-3000:]
    assert "pushed" in push.output
    with Store(store).open(read_only=True) as con:
        pushed, survivors = con.execute(
            "select (select count(*) from review_tasks), (select count(*) from survivors)"
        ).fetchall()[0]
    assert 100 < pushed <= survivors
    # A reviewer accepts one task in Label Studio; `review pull` stores it.
    from biocurate import review
    from biocurate.config import load_config

    cfg = load_config(config)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    client = review.connect(cfg)
    task = next(iter(client.tasks.list(project=review._project(client, cfg, create=False).id, page_size=10)))
    verdict = {"from_name": "verdict", "to_name": "query", "type": "choices", "value": {"choices": ["accept"]}}
    client.annotations.create(id=task.id, result=[verdict])
    with Store(store).open(read_only=True) as con:
        before = con.execute("select count(*) from annotations").fetchall()[0][0]
    pull = CliRunner().invoke(app, ["review", "pull"], env=env)
    assert pull.exit_code == 0, pull.output[-3000:]
    assert "fetched" in pull.output
    with Store(store).open(read_only=True) as con:
        assert con.execute("select count(*) from annotations").fetchall()[0][0] == before + 1


def test_make_targets_install_what_each_needs():
    """`make demo` installs the app alone (no torch) and runs scripts/demo.sh; `make test` installs the
    test, eval and lint extras; the stamps differ, so one never stands in for the other's missing extras."""
    demo = subprocess.run(["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    test = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert re.search(r"pip install .*-c constraints.txt -e \.$", demo, re.M), demo
    assert "eval" not in demo.split("scripts/demo.sh")[0] and "scripts/demo.sh" in demo
    assert re.search(r"pip install .*-c constraints.txt -e '\.\[test,eval,lint\]'", test), test
    assert ".installed-demo-" in demo and ".installed-all-" in test
    pins = (ROOT / "constraints.txt").read_text()
    assert not re.search(r"^[\w.-]+==[^\s#]*\+", pins, re.M), "a local version label no public index serves"


def test_every_readme_command_is_run_or_mapped():
    """A README command must be run above or mapped to a test that exists; table commands included."""
    run_or_smoke = set(RUN_HERE) | RUN_BY_FIXTURE
    for command in BLOCK:
        assert command in run_or_smoke or command in MAPPED, f"README command `{command}` is neither run nor mapped"
    for command in table_commands(TEXT):
        covered = any(c == command or c.startswith(command + " ") for c in run_or_smoke | set(MAPPED))
        assert covered, f"README table command `{command}` is neither run nor mapped"
    for command, target in MAPPED.items():
        path, name = target.split("::")
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), f"{command}: {target} does not exist"
    for command in RUN_HERE:
        if shlex.split(command)[1] != "sql":
            assert expected_output(command), f"`{command}` has no expected output in EXPECT"
