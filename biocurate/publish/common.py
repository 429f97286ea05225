"""What the publish modules share: the split names, the error, and the SQL files next to them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from biocurate.errors import BiocurateError

SPLITS = ("train", "validation", "test")
SQL_DIR = Path(__file__).resolve().parent / "sql"


class PublishError(BiocurateError):
    pass


@cache
def sql(name: str) -> str:
    """The text of ``sql/<name>.sql`` next to this module (shipped as package data)."""
    return (SQL_DIR / f"{name}.sql").read_text()
