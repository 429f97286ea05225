"""What the publish modules share: the split names, the error, the SQL files next to them, and
the memory DuckDB may use while publish queries the store."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from biocurate.config import Config, memory_bytes
from biocurate.errors import BiocurateError
from biocurate.store import lower_memory, past_the_cap

T = TypeVar("T")

SPLITS = ("train", "validation", "test")
SQL_DIR = Path(__file__).resolve().parent / "sql"


class PublishError(BiocurateError):
    pass


@cache
def sql(name: str) -> str:
    """The text of ``sql/<name>.sql`` next to this module (shipped as package data)."""
    return (SQL_DIR / f"{name}.sql").read_text()


# DuckDB's memory limit while publish queries the store (the store's own when that is lower).
# DuckDB keeps what it used up to its limit until the connection closes, and holds a
# transaction's inserted rows up to it until the commit; publish's queries need little at that
# (beyond it they spill to disk): at 100k calls (384k items) the selection held 470 MB at the
# store's 1 GB and 140 MB at 256 MB, the dataset_items insert +420 MB and +250 MB, in the same time.
# At a million calls the selection needs more than 256 MB (``within_publish_memory``), and the
# version's commit runs at the store's limit (``store.commit_at_store_limit``).
PUBLISH_MEMORY = "256MB"


def publish_memory(config: Config) -> str:
    """``PUBLISH_MEMORY``, or the store's own limit when that is lower."""
    return min(PUBLISH_MEMORY, config.store.memory_limit, key=memory_bytes)


def lower_to_publish_memory(con: Any, config: Config) -> None:
    """DuckDB's limit set to ``publish_memory``, after each (re)opening of the connection
    (``store.lower_memory``)."""
    lower_memory(con, publish_memory(config))


def within_publish_memory(con: Any, config: Config, query: Callable[[], T]) -> T:
    """``query()`` under publish's limit; one that outgrows it runs again at the store's, and the
    limit comes back down (``store.past_the_cap``)."""
    return past_the_cap(con, query, limit=config.store.memory_limit, lowered=publish_memory(config))
