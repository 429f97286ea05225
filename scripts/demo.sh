#!/usr/bin/env bash
# `make demo`: the main job, offline, on the bundled demo data, end to end:
# rebuild (replay transport, offline generator and judge) -> Label Studio review queue ->
# a simulated demo reviewer -> pull verdicts -> publish a dataset version.
#
# The config is biocurate.toml (or $BIOCURATE_CONFIG); Label Studio runs on DEMO_LS_PORT (18080)
# with its data in DEMO_LS_DATA_DIR (data/out/label-studio): a config whose [review] url names
# another port runs the whole demo elsewhere, e.g. into a temp folder.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export LABEL_STUDIO_API_KEY="${LABEL_STUDIO_API_KEY:-b10c0a7e5eed0000000000000000000000000001}"
LS_PORT="${DEMO_LS_PORT:-18080}"
LS_ARGS=(--port "$LS_PORT")
if [ -n "${DEMO_LS_DATA_DIR:-}" ]; then LS_ARGS+=(--data-dir "$DEMO_LS_DATA_DIR"); fi
# Each command starts Prefect's own temporary server: give it time on a busy 2-core machine.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-300}"
START=$SECONDS
step() { printf '\n==> [%s, %ds] %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - START))" "$*"; }

step "1/7 starting Label Studio on 127.0.0.1:$LS_PORT (about 30 s the first time, 1-2 min on a busy machine)"
scripts/label_studio.sh start "${LS_ARGS[@]}"
step "2/7 rebuild: sample, execute (replay), synthesize, judge, quality, review push (about 2 min)"
$BIN/biocurate rebuild
step "3/7 the demo reviewer (a script, not a human) annotates the review queue in Label Studio"
$BIN/python scripts/demo_review.py
step "4/7 pulling the verdicts from Label Studio"
$BIN/biocurate review pull
# The reviewer's edits are new questions: check them, then publish.
step "5/7 judging and checking the reviewer's edits"
$BIN/biocurate rebuild --stage judge --stage quality
step "6/7 publishing a dataset version"
$BIN/biocurate publish
step "7/7 the store"
$BIN/biocurate status
DOCS="$($BIN/biocurate config | $BIN/python -c 'import json,sys; print(json.load(sys.stdin)["quality"]["data_docs_dir"])')"
cat <<MSG

Done in $((SECONDS - START)) s. The store is data/out/biocurate.duckdb (or as configured); dataset versions are in data/out/versions/.
Explore:        .venv/bin/biocurate sql "select * from tool_coverage"
Quality checks: .venv/bin/biocurate qc report; Data Docs in $DOCS/index.html
Review queue:   http://127.0.0.1:$LS_PORT (Label Studio keeps running; scripts/label_studio.sh stop)
                log in as ${LABEL_STUDIO_USERNAME:-admin@biocurate.local} / ${LABEL_STUDIO_PASSWORD:-biocurate-local-only}
For the review commands in this shell:
  export LABEL_STUDIO_API_KEY=$LABEL_STUDIO_API_KEY
MSG
