"""What maintainers open in a browser, opened in headless Chromium (tests/browser.py):

- the Prefect UI of the server `scripts/prefect_server.sh start` runs (on a free port here): the
  deployments `biocurate serve` registers, a finished rebuild flow run and its summary artifact,
  with no "Can't connect to Server API" (the UI once asked port 4200 whatever the server's port);
- the quality checks' Data Docs, from a file URL with the network unused: the index lists the
  validation runs and each page opens and names its run.

PNG screenshots go to $BIOCURATE_SCREENSHOTS (default data/out/screenshots/, ignored by git).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.browser import browser_page
from tests.conftest import ROOT
from tests.labelstudio import free_port
from tests.pipeline_helpers import write_config

SCRIPT = ROOT / "scripts" / "prefect_server.sh"
SCREENSHOTS = Path(os.environ.get("BIOCURATE_SCREENSHOTS") or ROOT / "data/out/screenshots")
BIOCURATE = str(Path(sys.executable).parent / "biocurate")
CANT_CONNECT = "Can't connect"

# Run in a fresh process against the server: register the served deployments (without serving them)
# and print the finished flow run with its artifacts as JSON.
REGISTER = "from flows.serve import deployments; [d.apply() for d in deployments()]"
FINISHED = """
import json
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
with get_client(sync_client=True) as client:
    run = next(r for r in client.read_flow_runs() if r.state_type.value == "COMPLETED")
    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
    arts = client.read_artifacts(artifact_filter=flt)
    data = {a.key: a.data for a in arts}
    print(json.dumps({"id": str(run.id), "name": run.name, "artifacts": {a.key: str(a.id) for a in arts},
                      "data": data}, default=str))
"""


def small_config(folder: Path) -> Path:
    out = folder / "data" / "out"
    return write_config(
        folder / "biocurate.toml",
        {
            "store": {"path": str(out / "biocurate.duckdb")},
            "review": {"enabled": False},
            "publish": {"out_dir": str(out / "versions")},
            "quality": {"data_docs_dir": str(out / "data_docs")},
        },
    )


def run(args: list[str], env: dict, timeout: float = 900) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def prefect_server(tmp_path):
    """A Prefect server started by the script, on a free port, with its home in tmp_path."""
    port = free_port()
    # the UI on, whatever the tests' quiet Prefect environment says
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_UI_ENABLED": "true"}
    for key in ("PREFECT_API_URL", "PREFECT_SERVER_UI_API_URL", "PREFECT_UI_API_URL", "PREFECT_SERVER_API_PORT"):
        env.pop(key, None)
    started = run([str(SCRIPT), "start", "--port", str(port)], env, timeout=400)
    assert f"export PREFECT_API_URL=http://127.0.0.1:{port}/api" in started
    # what the UI asks its API at (it said port 4200 whatever --port said)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=30) as answer:
        assert json.load(answer)["api_url"] == f"http://127.0.0.1:{port}/api"
    try:
        yield port, {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)


def test_prefect_ui_shows_deployments_and_a_finished_run(prefect_server, tmp_path):
    port, env = prefect_server
    config = small_config(tmp_path)
    env = {**env, "BIOCURATE_CONFIG": str(config)}
    run([sys.executable, "-c", REGISTER], env)
    # A small rebuild (two stages of the demo, replay) as a flow run on that server.
    summary = run([BIOCURATE, "rebuild", "--stage", "sample", "--stage", "execute"], env)
    assert re.search(r"run \S+ completed", summary)
    finished = json.loads(run([sys.executable, "-c", FINISHED], env))
    assert "rebuild-summary" in finished["artifacts"]
    base = f"http://127.0.0.1:{port}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.goto(f"{base}/deployments", wait_until="networkidle")
        page.wait_for_function(
            "names => names.every(n => document.body.innerText.split(/\\s+/).includes(n))",
            arg=["rebuild", "review-sync", "drift", "publish"],
            timeout=60_000,
        )
        assert CANT_CONNECT not in page.inner_text("body")
        page.screenshot(path=str(SCREENSHOTS / "prefect_deployments.png"))

        page.goto(f"{base}/runs/flow-run/{finished['id']}", wait_until="networkidle")
        page.get_by_text(finished["name"]).first.wait_for(timeout=60_000)
        page.get_by_text("Artifacts", exact=True).click()
        page.get_by_text("rebuild-summary").first.wait_for(timeout=60_000)
        body = page.inner_text("body")
        assert "Completed" in body and CANT_CONNECT not in body

        page.goto(f"{base}/artifacts/artifact/{finished['artifacts']['rebuild-summary']}", wait_until="networkidle")
        page.get_by_text("top failure reasons").first.wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        body = page.inner_text("body")
        table = finished["data"]["rebuild-summary"]
        rows = json.loads(table) if isinstance(table, str) else table
        # the summary table as the API holds it, row by row on the page: stage, counts, failure reasons
        for row in rows:
            for column in ("stage", "top failure reasons"):
                assert str(row[column]) in body, f"{column} {row[column]!r} not on the page:\n{body[:3000]}"
        assert [r["stage"] for r in rows] == ["sample", "execute"]
        page.screenshot(path=str(SCREENSHOTS / "prefect_rebuild_summary.png"), full_page=True)


def test_data_docs_open_offline_and_list_each_validation_run(tmp_path):
    """The demo's stages through quality (in this process, no Prefect), then the Data Docs as a
    file, with every request that is not a file: URL counted (there must be none)."""
    from biocurate.config import load_config
    from biocurate.stages import STAGES
    from biocurate.store import Store

    config = load_config(small_config(tmp_path))
    with Store(config.path(config.store.path)).open() as con:
        for stage in ("sample", "execute", "synthesize", "judge", "quality"):
            STAGES[stage](config, con, "docs-run")
    docs = tmp_path / "data/out/data_docs"
    remote: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        page.on("request", lambda r: None if r.url.startswith("file:") else remote.append(r.url))
        page.goto((docs / "index.html").as_uri(), wait_until="load")
        section = page.locator("section.biocurate-runs")
        shipped = {p.stem for p in (ROOT / "expectations").glob("*.json")}  # one suite per file
        assert f"Validation runs ({len(shipped)})" in section.inner_text()
        rows = section.locator("tbody tr")
        suites = {rows.nth(i).locator("td").nth(2).inner_text() for i in range(rows.count())}
        assert suites == shipped and "call_sets" in suites
        page.screenshot(path=str(SCREENSHOTS / "data_docs_index.png"), full_page=True)
        # The queries suite's page opens from its link and names its run.
        row = rows.filter(has_text="queries")
        run_name = row.locator("td").nth(1).inner_text()
        row.get_by_role("link", name="open").click()
        page.wait_for_load_state("load")
        body = page.inner_text("body")
        assert "query_mentions_arguments" in body and run_name in body and "__none__" not in body
        page.screenshot(path=str(SCREENSHOTS / "data_docs_queries.png"))
    assert remote == [], f"Data Docs asked the network: {remote[:5]}"
