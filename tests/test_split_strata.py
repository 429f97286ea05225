"""The split rule: every database fills every split, even when each of its tools has one to three
calls (NCBI in the demo: seven tools, 14 calls, and none in test under per-tool strata)."""

from __future__ import annotations

from collections import Counter

import duckdb
import polars as pl

from biocurate.config import load_config
from biocurate.publish.splits import assign_splits
from biocurate.store import apply_views, migrate

# (database, tool, calls): the demo's shape, few calls per tool.
SHAPE = [
    ("NCBI", "blast", 3),
    ("NCBI", "ecitmatch", 2),
    ("NCBI", "efetch", 2),
    ("NCBI", "einfo", 1),
    ("NCBI", "elink", 2),
    ("NCBI", "esearch", 2),
    ("NCBI", "esummary", 2),
    ("UniProt", "arba", 4),
    ("UniProt", "uniref", 5),
    ("UniProt", "taxonomy", 4),
    ("UniProt", "keywords", 5),
    ("Ensembl", "overlap", 3),
    ("Ensembl", "vep", 6),
    ("Ensembl", "information", 39),
]


def items() -> pl.DataFrame:
    rows = []
    for database, tool, calls in SHAPE:
        for c in range(calls):
            for q in range(3):  # every question about one call stays in its call's split
                rows.append(
                    {
                        "item_id": f"{tool}-{c}-{q}",
                        "call_id": f"{tool}-{c}",
                        "entity_id": None,
                        "database": database,
                        "tool": tool,
                    }
                )
    return pl.DataFrame(rows)


def test_every_database_has_items_in_every_split():
    con = duckdb.connect()
    migrate(con)
    apply_views(con)
    config = load_config()
    frame = items()
    plan = assign_splits(config, con, frame)
    per_db = Counter((db, plan.split[i]) for i, db in zip(frame["item_id"], frame["database"], strict=True))
    for database in {d for d, _, _ in SHAPE}:
        for split in ("train", "validation", "test"):
            assert per_db[(database, split)] > 0, (database, split, per_db)
    # a call's questions never straddle splits
    by_call: dict[str, set[str]] = {}
    for item_id, call_id in zip(frame["item_id"], frame["call_id"], strict=True):
        by_call.setdefault(call_id, set()).add(plan.split[item_id])
    assert all(len(s) == 1 for s in by_call.values())
    # the database's calls are split close to the configured ratios
    ncbi_calls = [c for c in by_call if c.split("-")[0] in {t for d, t, _ in SHAPE if d == "NCBI"}]
    train = sum(1 for c in ncbi_calls if by_call[c] == {"train"})
    assert abs(train / len(ncbi_calls) - config.publish.train) <= 0.15
