"""Shared fixtures: quiet, isolated Prefect; a store per test; the demo config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before Prefect is imported anywhere: an isolated home, no telemetry, caches that do not
# leak between sessions, and the 90 s ephemeral-server start timeout this 2-core machine needs.
from biocurate.prefect_env import PREFECT_DEFAULTS  # imports no Prefect
from biocurate.ratelimit import LIMITERS

_PREFECT_HOME = tempfile.mkdtemp(prefix="biocurate-prefect-")
os.environ.update(
    {
        **PREFECT_DEFAULTS,
        "PREFECT_HOME": _PREFECT_HOME,
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": os.path.join(_PREFECT_HOME, "storage"),
    }
)
for secret_var in (
    "BIOCURATE_LLM_API_KEY",
    "BIOCURATE_JUDGE_API_KEY",
    "NCBI_API_KEY",
    "BIOCURATE_CONFIG",
    "BIOCURATE_STORE",
):
    os.environ.pop(secret_var, None)

pytest_plugins = ["tests.labelstudio"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def demo_config(tmp_path):
    """The shipped config (demo seeds, catalog, snapshot) with the store in a temp folder."""
    from tests.pipeline_helpers import demo_config_at

    return demo_config_at(tmp_path)


@pytest.fixture
def standins():
    """Loopback stand-ins of the public APIs (serving the demo snapshot) and of an LLM endpoint."""
    from biocurate.snapshot import Snapshot
    from tests.standins.api import ApiStandIn
    from tests.standins.llm import LLMStandIn

    api = ApiStandIn(Snapshot(ROOT / "data/demo_snapshot")).start()
    llm = LLMStandIn().start()
    yield api, llm
    api.stop()
    llm.stop()


@pytest.fixture(autouse=True)
def fresh_rate_limiters():
    """Host limiters last the process; a loopback server on a reused port is another server."""
    yield
    LIMITERS.forget()


class Started(list):
    """The processes a test started (``subprocess.Popen``), in order."""

    def of(self, module: str) -> list:
        """Those running ``module`` (a worker: ``python -c "from <module> import ..."``)."""
        return [p for p in self if f"from {module} import" in " ".join(map(str, p.args))]

    def ended(self) -> bool:
        """Every one waited for (reaped): none left running."""
        return all(p.returncode is not None for p in self)


@pytest.fixture
def started(monkeypatch) -> Started:
    """Records every process started while the test runs (workers, publish's writer)."""
    import subprocess

    processes = Started()
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        processes.append(real_popen(*args, **kwargs))
        return processes[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)
    return processes
