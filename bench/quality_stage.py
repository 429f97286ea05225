"""The quality stage alone on a copy of a bench store (``bench/scale.py --keep``'s folder).

Copies ``<work>/store.duckdb`` to a temporary folder, removes every qc_results row (so every
question is checked again) and runs the quality stage's ``run_quality`` in a store access as
``run_stage`` opens it, with a fixed run id; prints its seconds (wall and CPU), its phases and the
process's peak memory, and writes the qc_results it made, sorted, to ``--out`` (a parquet file), so
that two runs (code before and after a change: ``BIOCURATE_ROOT`` names the checkout whose
``biocurate`` is run) can be compared row by row (``--compare``).

    BIOCURATE_ROOT=/tmp/old .venv/bin/python bench/quality_stage.py /tmp/biocurate-scale-10000-x/ --out /tmp/a.parquet
    .venv/bin/python bench/quality_stage.py /tmp/biocurate-scale-10000-x/ --out /tmp/b.parquet
    .venv/bin/python bench/quality_stage.py --compare /tmp/a.parquet /tmp/b.parquet
    (--profile FILE: a cProfile of the stage)
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("BIOCURATE_ROOT", Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(ROOT))
# biocurate first, as its commands and flows import it: it sets polars' allocator to hand freed
# memory back at once, which must happen before polars loads (polars' own import sets its
# default, 0.5 s, and children inherit whichever came first).
import biocurate  # noqa: E402, F401, I001

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
from measure import reference_seconds, scratch_store  # noqa: E402  (bench/measure.py, beside this script)

RUN_ID = "bench-quality-stage"
COLUMNS = "qc_id, item_kind, item_id, suite, expectation, passed, severity, reason, qc_config_hash, run_id"


def run(work: Path, out: Path | None, profile: Path | None) -> dict:
    from biocurate.config import load_config
    from biocurate.quality import run_quality
    from biocurate.stages import catalog_for
    from biocurate.store import Store

    with tempfile.TemporaryDirectory(prefix="biocurate-qstage-") as tmp:
        store = scratch_store(work, Path(tmp), "qc_results")
        config = load_config(
            ROOT / "biocurate.toml",
            overrides={
                "store.path": str(store),
                "review.enabled": False,
                "execute.snapshot_dir": str(work / "snapshot"),
                "quality.data_docs_dir": str(Path(tmp) / "data_docs"),
            },
        )
        started, cpu = time.perf_counter(), time.process_time()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        with Store(config.path(config.store.path), config.store.memory_limit).access() as con:
            summary = run_quality(config, con, catalog_for(config), RUN_ID)  # what stage_quality runs
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        with duckdb.connect(str(store), read_only=True) as con:
            results = con.sql(f"select {COLUMNS} from qc_results order by qc_id").pl()
        if out:
            results.write_parquet(out)
    return {
        "code": str(Path(biocurate.__file__).parent.parent),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),  # all threads': less swayed by a busy machine than wall time
        "checked": summary.checked,
        "survivors": summary.survivors,
        "phases": summary.seconds,
        "qc_results": results.height,
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load": [round(x, 2) for x in os.getloadavg()],
        "reference_seconds": reference_seconds(),  # how fast the machine is now (measure.reference_seconds)
    }


def compare(a: Path, b: Path) -> int:
    left, right = pl.read_parquet(a), pl.read_parquet(b)
    only_a = left.join(right, on=left.columns, how="anti", nulls_equal=True)
    only_b = right.join(left, on=right.columns, how="anti", nulls_equal=True)
    print(json.dumps({"rows": [left.height, right.height], "only_first": only_a.height, "only_second": only_b.height}))
    if only_a.height or only_b.height:
        print(only_a.head(10), only_b.head(10))
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", nargs="?", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path)
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    print(json.dumps(run(args.work, args.out, args.profile)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
