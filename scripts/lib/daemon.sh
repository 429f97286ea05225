# shellcheck shell=bash
# Start, stop and check one background service on 127.0.0.1; sourced by label_studio.sh and
# prefect_server.sh (which run under `set -euo pipefail`).
#
# The caller sets, before calling any daemon_* function:
#   DAEMON_NAME       the service as a sentence subject ("Label Studio", "the Prefect server")
#   DAEMON_TITLE      the same at the start of a line ("Label Studio", "Prefect server")
#   DAEMON_PID_FILE   pid of the running service (a process-group leader, see daemon_launch)
#   DAEMON_PORT_FILE  its port, so that stop/status/start-again know it without --port
#   DAEMON_LOG_FILE   its stdout and stderr
# and defines two functions:
#   healthy PORT      succeeds when the service answers on PORT
#   info PORT         prints where it runs and how to use it

# The pid of the running service; fails when there is none.
daemon_pid() {
    [ -f "$DAEMON_PID_FILE" ] || return 1
    local pid; pid="$(cat "$DAEMON_PID_FILE")"
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# When the service already runs, print its info and succeed (start is then a no-op).
daemon_already_running() {
    daemon_pid > /dev/null || return 1
    info "$(cat "$DAEMON_PORT_FILE")"
}

# daemon_launch PORT COMMAND...: run COMMAND detached (own session, so stop can end its whole
# process group), logging to DAEMON_LOG_FILE, and record its pid and PORT.
daemon_launch() {
    local port="$1"; shift
    # Something else on the port would answer the readiness check in the new service's stead.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is already in use on 127.0.0.1; choose another with --port" >&2
        return 1
    fi
    echo "$port" > "$DAEMON_PORT_FILE"
    setsid nohup "$@" > "$DAEMON_LOG_FILE" 2>&1 < /dev/null &
    echo $! > "$DAEMON_PID_FILE"
}

# daemon_wait_ready PORT SECONDS ENDPOINT: wait until `healthy PORT`, then print info; fail
# when the service exits first (showing its log) or does not answer ENDPOINT in time.
daemon_wait_ready() {
    local port="$1" seconds="$2" endpoint="$3"
    for _ in $(seq 1 $((seconds * 2))); do
        if healthy "$port"; then info "$port"; return 0; fi
        if ! daemon_pid > /dev/null; then
            echo "$DAEMON_NAME exited during startup; last lines of $DAEMON_LOG_FILE:" >&2
            tail -n 20 "$DAEMON_LOG_FILE" >&2
            rm -f "$DAEMON_PID_FILE"
            return 1
        fi
        sleep 0.5
    done
    echo "$DAEMON_NAME did not answer $endpoint on port $port within $seconds s; see $DAEMON_LOG_FILE" >&2
    return 1
}

# daemon_stop SECONDS NOT_RUNNING_MESSAGE: TERM the process group, KILL it if it is still
# there after SECONDS.
daemon_stop() {
    local seconds="$1" not_running="$2" pid
    if pid="$(daemon_pid)"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        for _ in $(seq 1 $((seconds * 4))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
        echo "$DAEMON_TITLE stopped (pid $pid)"
    else
        echo "$not_running"
    fi
    rm -f "$DAEMON_PID_FILE"
}

# daemon_status NOT_RUNNING_MESSAGE: info when it answers; exit status 3 when it is not running.
daemon_status() {
    local not_running="$1" pid port
    if pid="$(daemon_pid)"; then
        port="$(cat "$DAEMON_PORT_FILE")"
        if healthy "$port"; then
            info "$port"
        else
            echo "$DAEMON_TITLE pid $pid is starting or not answering on port $port"
        fi
    else
        echo "$not_running"
        return 3
    fi
}
