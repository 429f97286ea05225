"""What the benches share: a process's resident memory now, a scratch copy of a kept bench
store (``bench/scale.py --keep``'s folder) to run one stage on again, and how fast the machine is
right now (a fixed workload's seconds, the CPU time the hypervisor gave to other guests)."""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson


def rss_mib(pid: int | None = None) -> float:
    """Resident memory now of the process and of every process it started (publish writes a large
    version's files in a child process), from /proc. A child not yet past its exec (its command
    line still the parent's) shares the parent's pages: not counted twice."""
    pid = os.getpid() if pid is None else pid
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total = int(line.split()[1]) / 1024
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                if Path(f"/proc/{child}/cmdline").read_bytes() != command:
                    total += rss_mib(int(child))
    except (FileNotFoundError, ProcessLookupError):  # a process that ended while it was read
        pass
    return total


def scratch_store(work: Path, folder: Path, *emptied: str) -> Path:
    """``<work>/store.duckdb`` (with its write-ahead log, if any) copied into ``folder``, these
    tables emptied and the copy checkpointed: the stage that fills them runs on it as on the
    kept store, which stays as it was."""
    store = folder / "store.duckdb"
    shutil.copyfile(work / "store.duckdb", store)
    if (work / "store.duckdb.wal").exists():
        shutil.copyfile(work / "store.duckdb.wal", folder / "store.duckdb.wal")
    with duckdb.connect(str(store)) as con:
        for table in emptied:
            con.execute(f"delete from {table}")
        con.execute("checkpoint")
    return store


def cpu_jiffies() -> list[int] | None:
    """The machine's CPU time since boot by kind (the first line of /proc/stat: user, nice,
    system, idle, iowait, irq, softirq, steal, ...), or None where there is no /proc/stat."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None


def steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """Of the CPU time that passed between two ``cpu_jiffies`` readings, the share the hypervisor
    gave to other guests (steal, the eighth field): a VM whose host is busy runs slower at any load
    average."""
    if not before or not after or len(before) < 8 or len(after) < 8:
        return None
    passed = [a - b for a, b in zip(after, before, strict=False)]
    total = sum(passed[:8])  # guest time is counted in user time already
    return round(100 * passed[7] / total, 1) if total > 0 else None


_WORDS = "gene protein variant human mouse region chromosome the of in which what is are".split()
_PATTERN = re.compile(r"(?i)(?<![A-Za-z0-9])ENSG0*(\d{3})\d*(?![A-Za-z0-9])")


def reference_seconds(repeat: int = 3) -> float:
    """The median seconds of a fixed single-threaded workload like the pipeline's own (JSON made
    and read by orjson, a regular expression searched, hashes, a sort, dicts and lists), about half
    a second on this machine: the same work every time, so its seconds say how fast the machine is
    at the moment. This VM's speed changes from hour to hour by up to two times; a run's stage times
    are comparable with another run's only at like reference times. Run in a process of its own:
    the caller's memory (a bench's peak) is left as it was."""
    done = subprocess.run(
        [sys.executable, __file__, "--reference", str(repeat)], capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def _reference_workload(repeat: int) -> float:
    rng = random.Random(19)
    records = [
        {"id": f"Q{i:06d}", "text": " ".join(rng.choice(_WORDS) for _ in range(12)) + f" ENSG{i:011d}", "n": i}
        for i in range(20_000)
    ]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(3):
            texts = [orjson.dumps(r) for r in records]
            back = [orjson.loads(t) for t in texts]
            found = sum(1 for r in back if _PATTERN.search(r["text"]))
            digest = hashlib.sha256(b"".join(texts)).hexdigest()
            ordered = sorted(back, key=lambda r: (r["text"], -r["n"]))
            counts: dict[str, int] = {}
            for r in ordered:
                for word in r["text"].split():
                    counts[word] = counts.get(word, 0) + 1
        times.append(time.perf_counter() - started)
        assert found == len(records) and digest and counts  # the work was done
    return round(statistics.median(times), 3)


if __name__ == "__main__" and sys.argv[1:2] == ["--reference"]:
    print(_reference_workload(int(sys.argv[2])))
