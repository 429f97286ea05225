"""Recorded HTTP responses: the offline demo snapshot and `record` mode's output.

Layout of a snapshot folder:
  index.tsv       one row per response: key, method, url, status, content_type, file, origin,
                  provenance  (origin is `real` for recorded bodies, `illustrative` for
                  hand-written bodies in the real format with facts true of the real databases)
  responses/      the bodies, one file each

A response is found by the request's fingerprint (method, URL, sorted parameters, body),
with the identity and secret parameters (tool, email, api_key) left out.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from biocurate.errors import BiocurateError
from biocurate.hashing import content_hash

# Parameters that identify the caller, not the question: never part of a key, never stored.
IDENTITY_PARAMS = frozenset({"tool", "email", "api_key"})
INDEX_COLUMNS = ["key", "method", "url", "status", "content_type", "file", "origin", "provenance"]
_UNIQUE_COLUMNS = ("key", "url")  # the index columns whose values differ from row to row


def public_params(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in params if k not in IDENTITY_PARAMS)


def display_url(url: str, params: list[tuple[str, str]]) -> str:
    """The request URL with its public parameters, sorted (no secrets)."""
    query = urlencode(public_params(params))
    return f"{url}?{query}" if query else url


def fingerprint(method: str, url: str, params: list[tuple[str, str]], body: object = None) -> str:
    return content_hash("request", method.upper(), url, public_params(params), body)


class BoundedCache:
    """A least-recently-used map whose values together weigh at most ``max_weight`` (``weight`` of
    a value: its bytes, say): memory stays flat however many keys go through it."""

    def __init__(self, max_weight: int, weight: Callable[[Any], int] = lambda _: 1):
        self.max_weight, self.weight, self.total = max_weight, weight, 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: Hashable, value: Any) -> None:
        self.pop(key)
        size = self.weight(value)
        if size > self.max_weight:
            return
        self._items[key] = value
        self.total += size
        while self.total > self.max_weight:
            _, dropped = self._items.popitem(last=False)
            self.total -= self.weight(dropped)

    def pop(self, key: Hashable) -> None:
        if key in self._items:
            self.total -= self.weight(self._items.pop(key))

    def __len__(self) -> int:
        return len(self._items)


# Recorded bodies kept in memory by file (a replay answers many requests from few files: the bench
# snapshot answers 100k variants from about a thousand files).
BODY_CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Recorded:
    key: str
    method: str
    url: str
    status: int
    content_type: str
    file: str
    origin: str
    provenance: str


class Snapshot:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.entries: dict[str, Recorded] = {}
        self._bodies = BoundedCache(BODY_CACHE_BYTES, len)
        index = self.folder / "index.tsv"
        if index.exists():
            with index.open(newline="") as handle:
                rows = csv.reader(handle, delimiter="\t")
                columns = next(rows, INDEX_COLUMNS)
                for line, row in enumerate(rows, start=2):
                    if row:  # a blank line holds nothing
                        self._load(index, line, columns, row)

    def _load(self, index: Path, line: int, columns: list[str], row: list[str]) -> None:
        """One row of the index. Its columns but the key and the URL repeat from row to row, and
        each of their values is held once (sys.intern): a million requests' index (the bench's
        variants) held 792 MB in memory, now 305 MB."""
        if len(row) != len(columns):
            raise BiocurateError(f"{index}, line {line}: {len(row)} columns, the header names {len(columns)}")
        fields = {c: v if c in _UNIQUE_COLUMNS else sys.intern(v) for c, v in zip(columns, row, strict=True)}
        try:
            status = int(fields.pop("status"))
        except ValueError:
            raise BiocurateError(f"{index}, line {line}: the status is not a number") from None
        self.entries[fields["key"]] = Recorded(status=status, **fields)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> tuple[Recorded, bytes] | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        return entry, self.body(entry)

    def body(self, entry: Recorded) -> bytes:
        """The recorded body of ``entry`` (read once per file while it stays in the cache)."""
        found = self._bodies.get(entry.file)
        if found is None:
            found = (self.folder / entry.file).read_bytes()
            self._bodies.put(entry.file, found)
        return found

    def add(
        self,
        *,
        method: str,
        url: str,
        params: list[tuple[str, str]],
        body: object,
        status: int,
        content_type: str,
        content: bytes,
        file: str,
        origin: str,
        provenance: str,
    ) -> str:
        """Store one response (overwrites the same request) and rewrite the index."""
        key = fingerprint(method, url, params, body)
        target = self.folder / "responses" / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        self._bodies.pop(f"responses/{file}")
        shown = display_url(url, params)
        if body is not None:
            shown += " body=" + json.dumps(body, sort_keys=True)
        self.entries[key] = Recorded(
            key, method.upper(), shown, status, content_type, f"responses/{file}", origin, provenance
        )
        self.save()
        return key

    def move(self, key: str, *, method: str, url: str, params: list[tuple[str, str]], body: object) -> str:
        """File an entry under another request (same body, status, origin and provenance); the new key."""
        entry = self.entries.pop(key)
        new_key = fingerprint(method, url, params, body)
        shown = display_url(url, params) + (" body=" + json.dumps(body, sort_keys=True) if body is not None else "")
        self.entries[new_key] = Recorded(
            new_key, method.upper(), shown, entry.status, entry.content_type, entry.file, entry.origin, entry.provenance
        )
        return new_key

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "index.tsv").open("w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(INDEX_COLUMNS)
            for entry in sorted(self.entries.values(), key=lambda e: (e.file, e.key)):
                writer.writerow([getattr(entry, c) for c in INDEX_COLUMNS])
