"""Scale: 100,000 candidate calls through store, execute, synthesis, judge, quality and export,
against 10,000 for the growth ratio (and 1,000,000 when asked).

The calls are the demo's, multiplied: every demo call that the snapshot answers is cloned into
variants whose identifier digits are replaced by a variant number (ENSG00000139618 ->
ENSG00000100007), kept only when the catalog's schema still accepts them. A bench snapshot
folder (temporary) holds one index row per variant, pointing at the demo response the variant
was cloned from, so the product's replay transport answers every variant offline with a real
body, unchanged. The offline template generator writes the questions and the rules judge judges
them; a clearly labelled bench reviewer accepts every survivor (rows in review_tasks and
annotations, what Label Studio would return) so that publish exports them.

Each size runs in its own process, so its peak memory (peak RSS) is its own; within it the
rebuild's stages share one process, as `biocurate rebuild` does, and the export runs in a process
of its own, as `biocurate publish` and the publish deployment do. Prints the seconds, rows and
rows/s of every stage, each stage's own peak memory (RSS sampled while it runs), the peak memory
of both processes, and the time and memory ratios 100k/10k: linear growth in time is 10, flat
memory 1. Each size's header gives the configuration it ran with (biocurate.toml as shipped:
``[synthesis] queries_per_call`` 4, the default ``[store] memory_limit``) and the machine's load
average before and after it, and how fast the machine was (a fixed reference workload's seconds
before and after, and the CPU time the hypervisor gave to other guests: this VM's speed changes by
the hour): compare times only at like loads and like reference times.

    .venv/bin/python bench/scale.py [--sizes 10000 100000] [--keep]
    .venv/bin/python bench/scale.py --sizes 10000 100000 1000000   (1M: not in CI; about 10x the 100k run)
    .venv/bin/python bench/scale.py --one 100000          (one size, JSON on the last line)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# biocurate first, as its commands and flows import it: it sets polars' allocator to hand freed
# memory back at once, which must happen before polars loads (polars' own import sets its
# default, 0.5 s, and children inherit whichever came first).
import biocurate  # noqa: E402, F401, I001

import polars as pl  # noqa: E402
from measure import cpu_jiffies, reference_seconds, rss_mib, steal_percent  # noqa: E402  (bench/measure.py, beside this script)

from biocurate.catalog import build_request, load_catalog  # noqa: E402
from biocurate.config import load_config  # noqa: E402
from biocurate.hashing import content_hash  # noqa: E402
from biocurate.snapshot import INDEX_COLUMNS, Snapshot  # noqa: E402
from biocurate.stages import run_stage  # noqa: E402
from biocurate.store import Store, insert_new, utcnow  # noqa: E402

DIGITS = re.compile(r"\d{3,}")
# Issue 19: 100k calls in under 3 minutes, peak under 1 GiB and within 1.5x the peak at 10k.
TARGETS = {"minutes_100k": 3.0, "peak_gib": 1.0, "peak_ratio": 1.5}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StagePeak:
    """The highest resident memory while a stage runs (sampled every 20 ms by a thread): the
    process's peak RSS (ru_maxrss) only ever grows, so it cannot tell a later stage's peak."""

    def __init__(self, every: float = 0.02):
        self.every, self.peak, self._stop = every, 0.0, threading.Event()

    def __enter__(self) -> StagePeak:
        self.peak = rss_mib()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def variant(value, k: int):
    """The value with its last run of 3+ digits replaced by k (same width), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        width = len(str(value))
        return int(str(k).zfill(width)) if len(str(k)) <= width and k else None
    if not isinstance(value, str):
        return None
    runs = list(DIGITS.finditer(value))
    if not runs:
        return None
    last = runs[-1]
    width = last.end() - last.start()
    if len(str(k)) > width:
        return None
    return value[: last.start()] + str(k).zfill(width) + value[last.end() :]


def base_calls(config, work: Path) -> list[dict]:
    """The demo's answered GET calls (sample + replay execute on the demo data)."""
    demo = load_config(
        ROOT / "biocurate.toml", overrides={"store.path": str(work / "demo.duckdb"), "review.enabled": False}
    )
    for name in ("sample", "execute"):
        run_stage(name, demo, "demo")
    with Store(demo.store.path).open(read_only=True) as con:
        rows = con.execute(
            "select c.function, c.arguments, c.entity_id, c.database, c.tool_group, c.category, r.fingerprint "
            "from candidate_calls c join api_responses r using (call_id) "
            "where r.outcome = 'ok' and r.method = 'GET' order by c.call_id"
        ).fetchall()
        entities = con.sql("select * from entities").pl()
    keys = ["function", "arguments", "entity_id", "database", "tool_group", "category", "fingerprint"]
    return [dict(zip(keys, r, strict=True)) for r in rows], entities


def generate(config, work: Path, n: int) -> tuple[list[dict], pl.DataFrame]:
    """n distinct candidate calls and the bench snapshot that answers each of them."""
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    demo = Snapshot(ROOT / "data/demo_snapshot")
    bases, entities = base_calls(config, work)
    # Only calls with a numeric identifier to vary, and a recorded answer to reuse.
    usable = []
    for base in bases:
        tool = catalog[base["function"]]
        args = json.loads(base["arguments"])
        names = [
            p
            for p, spec in tool.function.params.items()
            if spec.identifier and p in args and variant(args[p], 1) is not None
        ]
        if names and base["fingerprint"] in demo.entries and not tool.function.blast:
            usable.append((base, tool, args, names[0]))
    calls, index, seen = [], [], set()
    k = 0
    while len(calls) < n:
        k += 1
        added = 0
        for base, tool, args, name in usable:
            if len(calls) >= n:
                break
            value = variant(args[name], k)
            if value is None or value == args[name]:
                continue
            new = {**args, name: value}
            call_id = content_hash("call", tool.name, new)
            if call_id in seen or tool.validate(new) is not None:
                continue
            seen.add(call_id)
            req = build_request(tool, new)
            key = req.fingerprint()
            entry = demo.entries[base["fingerprint"]]
            index.append(
                [
                    key,
                    entry.method,
                    req.url,
                    entry.status,
                    entry.content_type,
                    str((demo.folder / entry.file).resolve()),
                    entry.origin,
                    f"bench variant of {entry.key}",
                ]
            )
            calls.append(
                {
                    "call_id": call_id,
                    "function": tool.name,
                    "arguments": json.dumps(new, sort_keys=True),
                    "entity_id": base["entity_id"],
                    "template": "bench:variant",
                    "database": base["database"],
                    "tool_group": base["tool_group"],
                    "category": base["category"],
                    "valid": True,
                    "run_id": "bench",
                }
            )
            added += 1
        if not added:
            raise SystemExit(f"only {len(calls)} distinct variants can be made from the demo calls")
    folder = Path(config.execute.snapshot_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "index.tsv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(INDEX_COLUMNS)
        writer.writerows(index)
    return calls, entities


def generate_files(work: Path, n: int) -> None:
    """``generate`` in a process of its own (``--generate``), its calls and entities left as Parquet
    files: the bench's scaffolding (a million call dicts at 1M) never counts in the rebuild's peak."""
    calls, entities = generate(bench_config(work), work, n)
    pl.DataFrame(calls, infer_schema_length=None).write_parquet(work / "calls.parquet")
    entities.write_parquet(work / "entities.parquet")


# Candidate calls stored at a time (the bench's stand-in for the sample stage's inserts).
STORE_BATCH = 100_000


def bench_reviewer(store: Path) -> int:
    """Accept every survivor, as a labelled bench reviewer (what review pull would store), in SQL:
    at 1M calls a frame of every survivor would weigh on the rebuild process's peak."""
    now = utcnow()
    with Store(store).open() as con:
        con.execute(
            "insert into review_tasks (query_id, content_hash, project_id, task_id, priority, pushed_at, updated_at) "
            "select query_id, 'bench', 0, row_number() over (order by query_id), 0.5, ?, ? from survivors "
            "on conflict do nothing",
            [now, now],
        )
        con.execute(
            "insert into annotations (annotation_id, ls_annotation_id, task_id, query_id, annotator, verdict, "
            "created_at, updated_at, pulled_at) "
            "select 'bench-' || query_id, task_id, task_id, query_id, 'bench-reviewer (not a person)', 'accept', "
            "?, ?, ? from review_tasks where content_hash = 'bench' on conflict do nothing",
            [now, now, now],
        )
        return con.execute("select count(*) from annotations where annotation_id like 'bench-%'").fetchall()[0][0]


def bench_config(work: Path):
    return load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(work / "store.duckdb"),
            "review.enabled": False,
            "execute.snapshot_dir": str(work / "snapshot"),
            "execute.batch_size": 2000,
            "publish.out_dir": str(work / "versions"),
            "quality.data_docs_dir": str(work / "data_docs"),
        },
    )


def export_in_own_process(work: Path) -> dict:
    """Publish as production does it: `biocurate publish` (or the publish deployment) is a process
    of its own, not part of the rebuild's."""
    done = subprocess.run([sys.executable, __file__, "--publish", str(work)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"publish failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def publish_here(work: Path) -> dict:
    started = time.perf_counter()
    with StagePeak() as stage:
        report = run_stage("publish", bench_config(work), "bench")
    return {
        "rows": report.rows_new,
        "seconds": round(time.perf_counter() - started, 2),
        "stage_peak_mib": round(stage.peak),
        # Sampled, not ru_maxrss: a child keeps the peak of the process it was forked from.
        "peak_mib": round(stage.peak),
        "rss_after_mib": round(rss_mib()),
    }


def one(n: int) -> dict:
    """One size: every rebuild stage timed in this process, then publish in its own process."""
    work = Path(tempfile.mkdtemp(prefix=f"biocurate-scale-{n}-"))
    config = bench_config(work)
    timings = []
    load_before = os.getloadavg()
    reference_before, cpu_before = reference_seconds(), cpu_jiffies()

    def timed(stage: str, fn):
        started = time.perf_counter()
        with StagePeak() as sampled:
            rows = fn()
        timings.append(
            {
                "stage": stage,
                "seconds": round(time.perf_counter() - started, 2),
                "rows": rows,
                "stage_peak_mib": round(sampled.peak),
                "peak_mib": round(peak_mib()),
                "rss_after_mib": round(rss_mib()),
            }
        )
        # each stage on record as soon as it is done: a long size (1M) can be followed while it runs
        with (work / "stages.jsonl").open("a") as handle:
            handle.write(json.dumps(timings[-1]) + "\n")

    def made() -> int:
        done = subprocess.run(
            [sys.executable, __file__, "--generate", str(work), "--n", str(n)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"generating {n} calls failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return pl.scan_parquet(work / "calls.parquet").select(pl.len()).collect().item()

    timed("generate calls + bench snapshot (setup)", made)

    def store() -> int:
        stored = 0
        with Store(config.store.path).open() as con:
            insert_new(con, "entities", pl.read_parquet(work / "entities.parquet"))
            calls = pl.scan_parquet(work / "calls.parquet")
            total = calls.select(pl.len()).collect().item()
            for start in range(0, total, STORE_BATCH):
                stored += insert_new(con, "candidate_calls", calls.slice(start, STORE_BATCH).collect())
        return stored

    timed("store (candidate calls)", store)
    for name in ("execute", "synthesize", "judge", "quality"):
        timed(name, lambda name=name: run_stage(name, config, "bench").rows_new)
    timed("bench reviewer accepts survivors (setup)", lambda: bench_reviewer(config.store.path))
    # the rebuild process's own peak, or a stage's with the workers it started (sampled), if higher
    rebuild_peak = max(round(peak_mib()), *(t["stage_peak_mib"] for t in timings if "(setup)" not in t["stage"]))
    export = export_in_own_process(work)
    timings.append({"stage": "export (publish, its own process)", **export})
    pipeline = [t for t in timings if "(setup)" not in t["stage"]]
    steal = steal_percent(cpu_before, cpu_jiffies())
    return {
        "n": n,
        "stages": timings,
        "pipeline_seconds": round(sum(t["seconds"] for t in pipeline), 2),
        "rebuild_peak_mib": rebuild_peak,
        "publish_peak_mib": export["peak_mib"],
        "peak_mib": max(rebuild_peak, export["peak_mib"]),
        "work": str(work),
        # the machine's load (1, 5, 15 min) before and after: times are only comparable at like loads
        "load": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        # how fast the machine was: the reference workload's seconds before and after, and the
        # share of CPU time the hypervisor gave to other guests during the run
        "reference_seconds": [reference_before, reference_seconds()],
        "steal_percent": steal,
        "queries_per_call": config.synthesis.queries_per_call,
        "memory_limit": config.store.memory_limit,
    }


def run_size(n: int, keep: bool) -> dict:
    done = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"size {n} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not keep:  # 100k calls leave about 1.7 GB (store and exported version)
        shutil.rmtree(result["work"], ignore_errors=True)
        result["work"] += ", removed; --keep keeps it"
    return result


def _speed(result: dict) -> str:
    """The reference workload's seconds before and after the size ran (``measure.reference_seconds``:
    higher is slower) and the CPU time stolen by other guests meanwhile."""
    before, after = result["reference_seconds"]
    steal = result["steal_percent"]
    return f"reference workload {before:.3f} s before, {after:.3f} s after; CPU steal " + (
        "unknown" if steal is None else f"{steal:.1f}% of the run"
    )


def show(result: dict) -> None:
    load = result["load"]
    print(
        f"\n{result['n']:,} candidate calls (store {result['work']}); {result['queries_per_call']} questions per "
        f"call, [store] memory_limit {result['memory_limit']}; load average {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f} before, {load[3]:.1f} {load[4]:.1f} {load[5]:.1f} after"
    )
    print(f"  machine speed: {_speed(result)}")
    print(
        f"  {'stage':44} {'seconds':>8} {'rows':>9} {'rows/s':>9} {'stage peak':>10} {'peak MiB':>9} {'RSS after':>9}"
    )
    for t in result["stages"]:
        rate = f"{t['rows'] / t['seconds']:,.0f}" if t["seconds"] and t["rows"] else "-"
        print(
            f"  {t['stage']:44} {t['seconds']:8.2f} {t['rows']:9,} {rate:>9} {t.get('stage_peak_mib', 0):10,} "
            f"{t['peak_mib']:9,} {t['rss_after_mib']:9,}"
        )
    print(
        f"  pipeline total {result['pipeline_seconds']:.1f} s, {result['n'] / result['pipeline_seconds']:,.0f} "
        f"calls/s; peak memory {result['rebuild_peak_mib']:,} MiB (rebuild process), "
        f"{result['publish_peak_mib']:,} MiB (publish process)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--keep", action="store_true", help="keep each size's store and exported version")
    parser.add_argument("--one", type=int, help="run one size in this process and print JSON")
    parser.add_argument("--publish", type=Path, help=argparse.SUPPRESS)  # the export of a --one run
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # the calls of a --one run
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate_files(args.generate, args.n)
        return
    if args.publish:
        print(json.dumps(publish_here(args.publish)))
        return
    if args.one:
        print(json.dumps(one(args.one)))
        return
    results = []
    for n in sorted(args.sizes):  # each size shown as soon as it is done (1M takes a while)
        results.append(run_size(n, args.keep))
        show(results[-1])
        sys.stdout.flush()
    small = results[0]
    for large in results[1:]:  # every larger size against the smallest
        factor = large["n"] / small["n"]
        print(f"\ngrowth {small['n']:,} -> {large['n']:,} calls (x{factor:g}):")
        by_stage = {t["stage"]: t["seconds"] for t in small["stages"]}
        for t in large["stages"]:
            if by_stage.get(t["stage"]):
                print(f"  {t['stage']:44} x{t['seconds'] / by_stage[t['stage']]:.1f}")
        ratio = large["pipeline_seconds"] / small["pipeline_seconds"]
        print(f"  pipeline x{ratio:.1f} (linear: x{factor:g})")
        by_peak = {t["stage"]: t.get("stage_peak_mib") for t in small["stages"]}
        print("  stage peak memory:")
        for t in large["stages"]:
            if by_peak.get(t["stage"]) and t.get("stage_peak_mib"):
                print(f"    {t['stage']:42} x{t['stage_peak_mib'] / by_peak[t['stage']]:.2f}")
        peak_ratio = large["peak_mib"] / small["peak_mib"]
        print(f"  peak memory x{peak_ratio:.2f} (target: at most x{TARGETS['peak_ratio']:g}; flat: x1)")
    for result in results:
        if result["n"] == 100_000:
            minutes, gib = result["pipeline_seconds"] / 60, result["peak_mib"] / 1024
            print(
                f"\n100k: {minutes:.2f} min (target < {TARGETS['minutes_100k']:g}), "
                f"peak {gib:.2f} GiB (target < {TARGETS['peak_gib']:g}); {_speed(result)}"
            )


if __name__ == "__main__":
    main()
