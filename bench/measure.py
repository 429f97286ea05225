"""What the benches share: a process's resident memory now, and a scratch copy of a kept bench
store (``bench/scale.py --keep``'s folder) to run one stage on again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb


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
