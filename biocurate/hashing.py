"""Content hashes: the keys of every table, so that re-running a stage inserts nothing new."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# One encoder for every call (json.dumps with options builds a new one each time: a quarter of
# the cost of hashing a short key, and stages hash several per row).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal content gives equal text."""
    return _ENCODER.encode(value)


def content_hash(*parts: Any, length: int = 20) -> str:
    """A short, stable hex digest of any JSON-serialisable parts."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()
    return digest[:length]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
