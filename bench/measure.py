"""What the benches share: a process's resident memory now, and a scratch copy of a kept bench
store (``bench/scale.py --keep``'s folder) to run one stage on again."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb


def rss_mib() -> float:
    """Resident memory now (what the process holds), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
