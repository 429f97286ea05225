"""pytest plugin: a real Label Studio server for the session, started through scripts/label_studio.sh.

Going through the script tests it too (install, loopback bind, preset token, health wait). A
fresh data dir needs about 30 s to start (minutes on a loaded machine); a missing .venv-ls is
installed first (about a minute). To iterate faster, set BIOCURATE_TEST_LABEL_STUDIO_DATA to a
folder kept between sessions: a server on it starts in seconds (tests use their own projects).
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "label_studio.sh"
TOKEN = "7e57c0de" * 5  # 40 hex characters, local to the test server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabelStudioServer:
    url: str
    token: str
    port: int
    data_dir: Path

    def _run(self, command: str, timeout: float = 600) -> str:
        env = {**os.environ, "LABEL_STUDIO_API_KEY": self.token}
        done = subprocess.run(
            [str(SCRIPT), command, "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0 and command != "status":
            raise RuntimeError(f"label_studio.sh {command} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self) -> str:
        try:
            return self._run("start")
        except (RuntimeError, subprocess.TimeoutExpired):
            # A server too slow to answer keeps starting in the background: stop it, not leak it.
            subprocess.run(
                [str(SCRIPT), "stop", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                capture_output=True,
                timeout=60,
            )
            raise

    def stop(self) -> str:
        return self._run("stop", timeout=60)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory):
    kept = os.environ.get("BIOCURATE_TEST_LABEL_STUDIO_DATA")
    data_dir = Path(kept) if kept else tmp_path_factory.mktemp("label-studio")
    port_file = data_dir / "label-studio.port"
    # A server still running on a kept folder is used as it is, on its port.
    port = int(port_file.read_text()) if kept and (data_dir / "label-studio.pid").exists() else free_port()
    server = LabelStudioServer(url=f"http://127.0.0.1:{port}", token=TOKEN, port=port, data_dir=data_dir)
    server.start()  # installs .venv-ls through the same script when it is missing
    try:
        yield server
    finally:
        server.stop()
