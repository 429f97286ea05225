#!/usr/bin/env bash
# Run a local Prefect server for `biocurate serve` (cron schedules fire only on a real server).
#
#   scripts/prefect_server.sh start [--port P]   start in the background, print the PREFECT_API_URL line
#   scripts/prefect_server.sh stop
#   scripts/prefect_server.sh status
#
# The ephemeral server Prefect starts on its own (when PREFECT_API_URL is unset) creates no
# scheduled runs. This one listens on 127.0.0.1 only, keeps its database in $PREFECT_HOME
# (default data/out/prefect) and sends no telemetry. Then:
#   export PREFECT_API_URL=http://127.0.0.1:14200/api
#   .venv/bin/biocurate serve
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIOCURATE_VENV:-$ROOT/.venv}/bin"
PORT=14200
export PREFECT_HOME="${PREFECT_HOME:-$ROOT/data/out/prefect}"

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

cmd="${1:-}"; [ -n "$cmd" ] || usage; shift
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; usage ;;
    esac
done
mkdir -p "$PREFECT_HOME"
DAEMON_NAME="the Prefect server"; DAEMON_TITLE="Prefect server"
DAEMON_PID_FILE="$PREFECT_HOME/server.pid"
DAEMON_PORT_FILE="$PREFECT_HOME/server.port"
DAEMON_LOG_FILE="$PREFECT_HOME/server.log"
# shellcheck source=SCRIPTDIR/lib/daemon.sh
. "$ROOT/scripts/lib/daemon.sh"

healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$1/api/health" >/dev/null 2>&1; }

info() {
    echo "Prefect server: http://127.0.0.1:$1  (pid $(cat "$DAEMON_PID_FILE"), home $PREFECT_HOME, log $DAEMON_LOG_FILE)"
    echo "  export PREFECT_API_URL=http://127.0.0.1:$1/api"
}

start() {
    daemon_already_running && return 0
    daemon_launch "$PORT" env PREFECT_SERVER_ANALYTICS_ENABLED=false \
        PREFECT_SERVER_UI_ENABLED="${PREFECT_SERVER_UI_ENABLED:-true}" \
        PREFECT_SERVER_LOGGING_LEVEL=WARNING PREFECT_API_URL='' \
        PREFECT_SERVER_API_HOST=127.0.0.1 PREFECT_SERVER_API_PORT="$PORT" \
        PREFECT_SERVER_UI_API_URL="http://127.0.0.1:$PORT/api" \
        "$BIN/prefect" server start --host 127.0.0.1 --port "$PORT"
    # The UI asks its API at PREFECT_SERVER_UI_API_URL, which otherwise defaults to port 4200 whatever
    # --port says ("Can't connect to Server API" on every page). A fresh database is created first
    # (about 15 s on 2 cores, more under load).
    echo "starting the Prefect server on 127.0.0.1:$PORT (15-60 s) ..."
    daemon_wait_ready "$PORT" 180 /api/health
}

stop() { daemon_stop 15 "the Prefect server is not running (home $PREFECT_HOME)"; }

status() {
    daemon_status "the Prefect server is not running; start it with scripts/prefect_server.sh start"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
