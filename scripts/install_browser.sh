#!/usr/bin/env bash
# The browser tests drive Debian's chromium through Playwright for Python: Playwright cannot download its
# own browsers here, so the OS package is installed once (needs root or sudo, as on CI).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
echo "installing chromium (OS package) for the browser tests ..."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || echo "apt-get update failed: installing from the cached package lists"
$SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null || { echo "error: chromium did not install (apt-get install chromium)" >&2; exit 1; }
echo "chromium: $(chromium --version 2>/dev/null | head -1)"
