#!/usr/bin/env bash
# `make demo`: the main job, offline, on the bundled demo data, end to end:
# rebuild (replay transport, offline generator and judge) -> Label Studio review queue ->
# a simulated demo reviewer -> pull verdicts -> publish a dataset version.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export LABEL_STUDIO_API_KEY="${LABEL_STUDIO_API_KEY:-b10c0a7e5eed0000000000000000000000000001}"

scripts/label_studio.sh start
$BIN/biocurate rebuild
$BIN/python scripts/demo_review.py
$BIN/biocurate review pull
# The reviewer's edits are new questions: check them, then publish.
$BIN/biocurate rebuild --stage judge --stage quality
$BIN/biocurate publish
$BIN/biocurate status
cat <<MSG

Done. The store is data/out/biocurate.duckdb; dataset versions are in data/out/versions/.
Explore:        .venv/bin/biocurate sql "select * from tool_coverage"
Review queue:   http://127.0.0.1:18080 (Label Studio keeps running; scripts/label_studio.sh stop)
MSG
