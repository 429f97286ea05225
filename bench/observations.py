"""Observation quality over recorded bodies: the demo snapshot and the real reference responses.

Every body is classified and turned into an observation exactly as the executor does it for the
call it answers (function and arguments read back from the recorded request). Prints, per
builder, how many bodies it summarised, and over all observations how many were not valid JSON,
were over the size bound, held a ``"{N keys}"`` placeholder, or carried only a job status or no
data while stored as ``ok``; and the outcomes (``invalid_body`` = a valid answer discarded).

``--pipeline`` measures what the demo itself stores: the sample and execute stages run (replay
from the demo snapshot, demo seeds and config) into a store in a temporary folder, and the same
counts are read from its ``api_responses`` and ``observations``. That mode uses only the stage
API, so it also runs on an older checkout for a before/after comparison.

    .venv/bin/python bench/observations.py [--max-chars 2000] [--json] [--pipeline]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


PLACEHOLDER = re.compile(r"\{\d+ (keys|elements)\}")
STATUS_KEYS = {"status", "Status", "RID", "RTOE", "jobId", "ThereAreHits", "blast_job"}


def observe_call(
    tool: Any, arguments: dict, status: int, content_type: str, body: bytes, max_chars: int
) -> tuple[str, str | None, str | None]:
    """(outcome, builder, observation text) as the executor would store them."""
    from biocurate.execute import classify
    from biocurate.observations import NotAnAnswer, UnexpectedShape, observe
    from biocurate.observations.blast import BlastRejected, parse_submission

    declared, _ = tool.response_for(arguments)
    outcome, _ = classify(status, content_type, body, declared)
    if outcome != "ok":
        return outcome, None, None
    if tool.function.blast and tool.function.fixed.get("CMD") == "Put":
        # A submission reply is never an observation: the executor polls the RID it issued.
        try:
            rid, _ = parse_submission(body.decode("utf-8", "replace"))
        except BlastRejected:
            return "api_error", None, None
        return f"submitted RID {rid}", None, None
    try:
        used, text = observe(tool, arguments, body, max_chars, content_type)
    except NotAnAnswer as exc:
        return exc.outcome, None, None
    except UnexpectedShape:
        return "invalid_body", None, None
    return outcome, used, text


def leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(v, k)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v, key)]
    return [] if value in (None, "", 0) and key in STATUS_KEYS else [(key, value)]


def status_only(data: Any) -> bool:
    """Nothing but job-status keys (or nothing at all) in an observation."""
    found = leaves(data)
    return not found or all(k in STATUS_KEYS for k, _ in found)


def _count(counts: Counter, examples: dict, name: str, text: str) -> None:
    """Add one stored observation to the counts (invalid JSON, placeholders, status-only)."""
    if PLACEHOLDER.search(text):
        counts["placeholders"] += 1
        examples["placeholders"].append(name)
    try:
        data = json.loads(text)
    except ValueError:
        counts["invalid_json"] += 1
        examples["invalid_json"].append(name)
        return
    if status_only(data):
        counts["status_only"] += 1
        examples["status_only"].append(name)


def measure_pipeline(max_chars: int) -> dict:
    """Sample and execute the demo (replay) into a temporary store; count what it stored."""
    import tempfile

    from biocurate.config import load_config
    from biocurate.stages import run_stage
    from biocurate.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            ROOT / "biocurate.toml",
            overrides={
                "store.path": str(Path(tmp) / "store.duckdb"),
                "review.enabled": False,
                "execute.transport": "replay",
                "execute.observation_max_chars": max_chars,
            },
        )
        for stage in ("sample", "execute"):
            run_stage(stage, config, "bench-observations")
        with Store(config.path(config.store.path)).open(read_only=True) as con:
            outcomes = dict(con.execute("select outcome, count(*) from api_responses group by all").fetchall())
            builders = dict(con.execute("select builder, count(*) from observations group by all").fetchall())
            rows = con.execute(
                "select c.function, o.text from observations o join candidate_calls c using (call_id)"
            ).fetchall()
    counts: Counter = Counter(
        calls=sum(outcomes.values()),
        observations=len(rows),
        invalid_json=0,
        over_bound=0,
        placeholders=0,
        status_only=0,
    )
    examples: dict[str, list[str]] = {"invalid_json": [], "placeholders": [], "status_only": []}
    for function, text in rows:
        counts["over_bound"] += len(text) > max_chars
        _count(counts, examples, function, text)
    return {
        "demo_pipeline": {
            "counts": dict(counts),
            "outcomes": outcomes,
            "builders": builders,
            "examples": {k: sorted(set(v))[:5] for k, v in examples.items() if v},
        }
    }


def measure(max_chars: int) -> dict:
    from biocurate.catalog import load_catalog
    from biocurate.observations.corpus import reference_calls, snapshot_calls

    catalog = load_catalog()
    corpora = {
        "demo_snapshot": snapshot_calls(ROOT / "data/demo_snapshot", catalog),
        "real_responses": reference_calls(ROOT / "tests/data/real_responses", catalog),
    }
    report: dict[str, Any] = {}
    for name, calls in corpora.items():
        per_builder: Counter = Counter()
        outcomes: Counter = Counter()
        counts = Counter(bodies=0, observations=0, invalid_json=0, over_bound=0, placeholders=0, status_only=0)
        examples: dict[str, list[str]] = {"invalid_json": [], "placeholders": [], "status_only": [], "invalid_body": []}
        for call in calls:
            if call.tool is None:
                continue
            counts["bodies"] += 1
            outcome, used, text = observe_call(
                call.tool, call.arguments, call.status, call.content_type, call.body, max_chars
            )
            outcomes[outcome] += 1
            if outcome == "invalid_body":
                examples["invalid_body"].append(call.file)
            if text is None:
                continue
            counts["observations"] += 1
            per_builder[used] += 1
            counts["over_bound"] += len(text) > max_chars
            _count(counts, examples, call.file, text)
        report[name] = {
            "counts": dict(counts),
            "outcomes": dict(outcomes),
            "builders": dict(per_builder),
            "examples": {k: v[:5] for k, v in examples.items() if v},
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-chars", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--pipeline", action="store_true", help="measure what the demo's sample+execute store")
    args = parser.parse_args()
    report = measure_pipeline(args.max_chars) if args.pipeline else measure(args.max_chars)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, part in report.items():
        print(f"== {name} (max_chars {args.max_chars})")
        print("  " + ", ".join(f"{k} {v}" for k, v in part["counts"].items()))
        print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(part["outcomes"].items())))
        print("  bodies per builder: " + ", ".join(f"{k} {v}" for k, v in sorted(part["builders"].items())))
        for kind, files in part["examples"].items():
            print(f"  e.g. {kind}: {', '.join(files)}")


if __name__ == "__main__":
    main()
