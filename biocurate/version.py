"""The code version recorded with every run and dataset version."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from biocurate import __version__

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    """What ``git -C <checkout> args`` prints (raises OSError/SubprocessError if it cannot say)."""
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=5, check=True)
    return done.stdout.strip()


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit (and '+dirty' for uncommitted changes) when known."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"
