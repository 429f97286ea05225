"""Headless Chromium from the OS packages, driven by Playwright for Python (no browser download).

Flags as in ../shared/notes/dependencies.md: no sandbox (root), no background networking (the machine's
closed network refuses those connections), a fresh profile per browser.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run scripts/install_browser.sh (make test does)")
    return path


@contextmanager
def browser_page(viewport: dict | None = None) -> Iterator:
    """A fresh Playwright page in headless chromium; closed (with its browser) on exit."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=viewport or {"width": 1280, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
