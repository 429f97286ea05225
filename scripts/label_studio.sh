#!/usr/bin/env bash
# Run a local Label Studio for human review, in its own virtualenv.
#
#   scripts/label_studio.sh install                          create .venv-ls with label-studio pinned
#   scripts/label_studio.sh start [--port P] [--data-dir D]  start in the background (installs if needed)
#   scripts/label_studio.sh stop   [--data-dir D]
#   scripts/label_studio.sh status [--data-dir D]
#
# Label Studio lives in .venv-ls, never in the app venv: installing it downgrades redis and
# pyarrow, which breaks Prefect. The app talks to it only over HTTP through label-studio-sdk.
#
# The preset admin is for a loopback-only server on this machine. Defaults (override by env):
#   LABEL_STUDIO_USERNAME  admin@biocurate.local
#   LABEL_STUDIO_PASSWORD  biocurate-local-only
#   LABEL_STUDIO_API_KEY   a fixed 40-hex token (the same variable biocurate reads)
#   LABEL_STUDIO_START_SECONDS  300: how long start waits for /health
# Never expose this server beyond 127.0.0.1 with these defaults.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LABEL_STUDIO_VENV:-$ROOT/.venv-ls}"
VERSION="1.23.2"
PORT=18080
DATA_DIR="$ROOT/data/out/label-studio"
USERNAME="${LABEL_STUDIO_USERNAME:-admin@biocurate.local}"
PASSWORD="${LABEL_STUDIO_PASSWORD:-biocurate-local-only}"
TOKEN="${LABEL_STUDIO_API_KEY:-b10c0a7e5eed0000000000000000000000000001}"

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

cmd="${1:-}"; [ -n "$cmd" ] || usage; shift
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT="$2"; shift 2 ;;
        --data-dir) DATA_DIR="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; usage ;;
    esac
done
[ "$cmd" = install ] || { mkdir -p "$DATA_DIR"; DATA_DIR="$(cd "$DATA_DIR" && pwd)"; }
DAEMON_NAME="Label Studio"; DAEMON_TITLE="Label Studio"
DAEMON_PID_FILE="$DATA_DIR/label-studio.pid"
DAEMON_PORT_FILE="$DATA_DIR/label-studio.port"
DAEMON_LOG_FILE="$DATA_DIR/label-studio.log"
# shellcheck source=SCRIPTDIR/lib/daemon.sh
. "$ROOT/scripts/lib/daemon.sh"

install() {
    # (no "pip show | grep -q": under pipefail grep's early exit fails the pipe)
    if [ -x "$VENV/bin/label-studio" ] && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))' 2>/dev/null)" = "$VERSION" ]; then
        return 0
    fi
    echo "installing label-studio==$VERSION into $VENV (about a minute)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "label-studio==$VERSION"
}

healthy() { [[ "$(curl -fsS --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null)" == *UP* ]]; }

info() {
    echo "Label Studio: http://127.0.0.1:$1  (pid $(cat "$DAEMON_PID_FILE"), data $DATA_DIR, log $DAEMON_LOG_FILE)"
    echo "  username: $USERNAME"
    echo "  password: $PASSWORD"
    echo "  export LABEL_STUDIO_API_KEY=$TOKEN"
}

start() {
    daemon_already_running && return 0
    install
    # Loopback only (--internal-host; --host is a public URL, not the bind address), no outbound
    # calls (version check, Sentry, analytics), and a preset admin whose legacy token works as
    # "Authorization: Token <t>" only with LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true.
    daemon_launch "$PORT" env LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
        LATEST_VERSION_CHECK=false SENTRY_DSN='' FRONTEND_SENTRY_DSN='' COLLECT_ANALYTICS=false \
        LABEL_STUDIO_USERNAME="$USERNAME" LABEL_STUDIO_PASSWORD="$PASSWORD" LABEL_STUDIO_USER_TOKEN="$TOKEN" \
        LABEL_STUDIO_BASE_DATA_DIR="$DATA_DIR" \
        "$VENV/bin/label-studio" start --no-browser --enable-legacy-api-token \
            --internal-host 127.0.0.1 --port "$PORT" --data-dir "$DATA_DIR"
    # A fresh data dir runs its migrations first (about 30 s); an existing one is up in seconds.
    # Under load (a 2-core machine running tests) a fresh one can take several minutes.
    daemon_wait_ready "$PORT" "${LABEL_STUDIO_START_SECONDS:-300}" /health
}

stop() { daemon_stop 10 "Label Studio is not running (data $DATA_DIR)"; }

status() {
    daemon_status "Label Studio is not running (data $DATA_DIR); start it with scripts/label_studio.sh start"
}

case "$cmd" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
