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
PID_FILE="$PREFECT_HOME/server.pid"
PORT_FILE="$PREFECT_HOME/server.port"
LOG_FILE="$PREFECT_HOME/server.log"

running_pid() {
    [ -f "$PID_FILE" ] || return 1
    local pid; pid="$(cat "$PID_FILE")"
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$1/api/health" >/dev/null 2>&1; }

info() {
    echo "Prefect server: http://127.0.0.1:$1  (pid $(cat "$PID_FILE"), home $PREFECT_HOME, log $LOG_FILE)"
    echo "  export PREFECT_API_URL=http://127.0.0.1:$1/api"
}

start() {
    if running_pid > /dev/null; then
        info "$(cat "$PORT_FILE")"
        return 0
    fi
    echo "$PORT" > "$PORT_FILE"
    PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_SERVER_UI_ENABLED="${PREFECT_SERVER_UI_ENABLED:-true}" \
    PREFECT_SERVER_LOGGING_LEVEL=WARNING PREFECT_API_URL= \
        setsid nohup "$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" \
            > "$LOG_FILE" 2>&1 < /dev/null &
    echo $! > "$PID_FILE"
    # A fresh database is created first (about 15 s on 2 cores).
    for _ in $(seq 1 240); do
        if healthy "$PORT"; then info "$PORT"; return 0; fi
        if ! running_pid > /dev/null; then
            echo "the Prefect server exited during startup; last lines of $LOG_FILE:" >&2
            tail -n 20 "$LOG_FILE" >&2
            rm -f "$PID_FILE"
            return 1
        fi
        sleep 0.5
    done
    echo "the Prefect server did not answer /api/health on port $PORT within 120 s; see $LOG_FILE" >&2
    return 1
}

stop() {
    if pid="$(running_pid)"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
        echo "Prefect server stopped (pid $pid)"
    else
        echo "the Prefect server is not running (home $PREFECT_HOME)"
    fi
    rm -f "$PID_FILE"
}

status() {
    if pid="$(running_pid)"; then
        port="$(cat "$PORT_FILE")"
        if healthy "$port"; then info "$port"; else echo "Prefect server pid $pid is starting or not answering on port $port"; fi
    else
        echo "the Prefect server is not running; start it with scripts/prefect_server.sh start"
        return 3
    fi
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
