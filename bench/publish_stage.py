"""Publish alone on a copy of a bench store (``bench/scale.py --keep``'s folder), with the memory
at each of its steps.

Copies ``<work>/store.duckdb`` to a temporary folder, removes its published versions
(``dataset_items``, ``dataset_versions``) so that the same version is made again, and runs the
publish stage as ``bench/scale.py`` does (``run_stage``, its own process: run this script once per
measurement). Publish logs each of its steps at debug level (logger ``biocurate.publish``); this
bench notes, at each, the seconds since the last step, the resident memory then, and the highest
resident memory sampled (every 20 ms) during the step, so a step that raises the peak is named.
Prints the steps, the peak, and the version's content hash and a digest of its ``dataset_items``
rows: two runs (code before and after a change: ``BIOCURATE_ROOT`` names the checkout whose
``biocurate`` is run) must make the same version.

    .venv/bin/python bench/publish_stage.py /tmp/biocurate-scale-100000-x/
    BIOCURATE_ROOT=/tmp/old .venv/bin/python bench/publish_stage.py /tmp/biocurate-scale-100000-x/
    (--memory-limit 512MB: the store's [store] memory_limit for this run)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(os.environ.get("BIOCURATE_ROOT", Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
from measure import reference_seconds, rss_mib, scratch_store  # noqa: E402  (bench/measure.py, beside this script)


class StepMemory(logging.Handler):
    """At each publish step logged: seconds since the last, RSS now, the peak sampled during it."""

    def __init__(self, every: float = 0.02):
        super().__init__(logging.DEBUG)
        self.steps: list[dict] = []
        self.last = time.perf_counter()
        self.peak = self.overall = rss_mib()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a sample taken before a mark must not land in the next step
        self._thread = threading.Thread(target=self._sample, args=(every,), daemon=True)
        self._thread.start()

    def _sample(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                self.peak = max(self.peak, rss_mib())

    def mark(self, step: str) -> None:
        with self._lock:
            now, rss = time.perf_counter(), rss_mib()
            peak = max(self.peak, rss)
            self.overall = max(self.overall, peak)
            seconds, self.last, self.peak = now - self.last, now, rss
        self.steps.append({"step": step, "seconds": round(seconds, 2), "rss_mib": round(rss), "peak_mib": round(peak)})

    def emit(self, record: logging.LogRecord) -> None:
        self.mark(record.getMessage())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        super().close()


def run(work: Path, memory_limit: str | None) -> dict:
    import biocurate
    from biocurate.config import load_config
    from biocurate.stages import run_stage

    with tempfile.TemporaryDirectory(prefix="biocurate-pstage-") as tmp:
        store = scratch_store(work, Path(tmp), "dataset_items", "dataset_versions")
        overrides = {
            "store.path": str(store),
            "review.enabled": False,
            "execute.snapshot_dir": str(work / "snapshot"),
            "publish.out_dir": str(Path(tmp) / "versions"),
            "quality.data_docs_dir": str(Path(tmp) / "data_docs"),
        }
        if memory_limit:
            overrides["store.memory_limit"] = memory_limit
        config = load_config(ROOT / "biocurate.toml", overrides=overrides)
        steps = StepMemory()
        logger = logging.getLogger("biocurate.publish")
        logger.addHandler(steps)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # the marks are this bench's, not stderr's
        started = time.perf_counter()
        try:
            report = run_stage("publish", config, "bench-publish-stage")
            steps.mark("done (store released)")
        finally:
            steps.close()
        seconds = time.perf_counter() - started
        with duckdb.connect(str(store), read_only=True) as con:
            content_hash, rows_digest, items = con.execute(
                "select (select content_hash from dataset_versions), "
                "md5(string_agg(md5(concat_ws(chr(31), item_id, call_id, split, group_key, user_query, "
                "function_calling, observation, database, tool)), '' order by item_id)), count(*) from dataset_items"
            ).fetchall()[0]
    return {
        "code": str(Path(biocurate.__file__).parent.parent),
        "seconds": round(seconds, 2),
        "items": items,
        "rows_new": report.rows_new,
        "content_hash": content_hash,
        "dataset_items_digest": rows_digest,
        "peak_mib": round(steps.overall),
        "steps": steps.steps,
        "memory_limit": config.store.memory_limit,
        "load": [round(x, 2) for x in os.getloadavg()],
        "reference_seconds": reference_seconds(),  # how fast the machine is now (measure.reference_seconds)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--memory-limit", help="the store's memory_limit for this run (default: biocurate.toml's)")
    args = parser.parse_args()
    result = run(args.work, args.memory_limit)
    print(f"{'step':28} {'seconds':>8} {'RSS MiB':>8} {'peak MiB':>9}")
    for s in result["steps"]:
        print(f"{s['step']:28} {s['seconds']:8.2f} {s['rss_mib']:8,} {s['peak_mib']:9,}")
    print(json.dumps({k: v for k, v in result.items() if k != "steps"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
