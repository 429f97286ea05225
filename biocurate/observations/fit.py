"""A summary as JSON text within a size bound: whole items trimmed, never JSON cut.

``fit_json`` renders a summary with ``canonical_json``; while the text is over the bound it
shrinks the largest thing that can shrink: a list keeps fewer leading items and says how many
there were (``"… 12 more (15 in all)"``), a string keeps its start and says how long it was
(``"MKT… [1210 chars]"``; never below ``MIN_STRING``). Objects lose their last members
(``"…": "3 more fields: ..."``; members that name the thing, such as ``id`` or ``name``, go last)
only when no list or string is left to shrink, the deepest heavy object first (details go before
whole branches); builders put the most telling members first. Every step gives valid JSON; the
loop ends because every step keeps less than the one before.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from biocurate.hashing import canonical_json

ELLIPSIS = "…"
MIN_STRING = 80  # a string is never cut below this many characters (a name, a title stays whole)
FIRST_CAP_ITEMS = 50  # lists longer than this keep their first 50 before fitting starts
FIRST_CAP_CHARS = 5000
# Members that name a thing are the last an object gives up.
TELLING_KEYS = (
    "id",
    "accession",
    "primaryAccession",
    "name",
    "display_name",
    "title",
    "symbol",
    "description",
    "definition",
    "protein",
    "gene",
    "genes",
    "organism",
    "species",
    "scientific_name",
    "scientificName",
    "count",
    "total",
    "length",
    "type",
    "status",
)


@dataclass
class _Str:
    full: str
    keep: int

    def render(self) -> str:
        if self.keep >= len(self.full):
            return self.full
        return self.full[: self.keep].rstrip() + f"{ELLIPSIS} [{len(self.full)} chars]"


@dataclass
class _List:
    items: list
    keep: int
    total: int

    def render(self) -> list:
        out = [_render(item) for item in self.items[: self.keep]]
        if self.keep < self.total:
            out.append(f"{ELLIPSIS} {self.total - self.keep} more ({self.total} in all)")
        return out


@dataclass
class _Dict:
    entries: list  # (key, node), the most telling first
    keep: int

    def render(self) -> dict:
        out = {k: _render(v) for k, v in self.entries[: self.keep]}
        dropped = [k for k, _ in self.entries[self.keep :]]
        if dropped:
            names = ", ".join(dropped)
            if len(names) > 60:
                names = names[:60].rsplit(",", 1)[0] + ", …"
            out[ELLIPSIS] = f"{len(dropped)} more fields: {names}"
        return out


def _rank(key: str) -> int:
    return 0 if key in TELLING_KEYS else 1


def _node(value: Any) -> Any:
    if isinstance(value, dict):
        ranked = sorted(((str(k), v) for k, v in value.items()), key=lambda kv: _rank(kv[0]))
        return _Dict([(k, _node(v)) for k, v in ranked], len(ranked))
    if isinstance(value, (list, tuple)):
        items = [_node(v) for v in value[:FIRST_CAP_ITEMS]]
        return _List(items, len(items), len(value))
    if isinstance(value, str):
        return _Str(value, min(len(value), FIRST_CAP_CHARS))
    return value


def _render(node: Any) -> Any:
    return node.render() if isinstance(node, (_Str, _List, _Dict)) else node


def _size(value: Any) -> int:
    return len(canonical_json(value))


def _candidates(node: Any, out: list, depth: int = 0) -> int:
    """Rendered size of ``node``; appends (kind, weight, depth, node) for every node that can shrink.

    A list or object weighs its size without its largest member: one made big by one long member
    keeps its other members, that member is trimmed instead.
    """
    if isinstance(node, _Str):
        size = _size(node.render())
        if node.keep > MIN_STRING and len(node.full) > MIN_STRING:
            out.append((1, size, depth, node))
        return size
    if isinstance(node, _List):
        sizes = [_candidates(item, out, depth + 1) for item in node.items[: node.keep]]
        size = 1 + sum(s + 1 for s in sizes)
        if node.keep < node.total:
            size += _size(f"{ELLIPSIS} {node.total - node.keep} more ({node.total} in all)") + 1
        if node.keep > 1:
            out.append((1, size - max(sizes), depth, node))
        return size
    if isinstance(node, _Dict):
        sizes = [_size(key) + 2 + _candidates(value, out, depth + 1) for key, value in node.entries[: node.keep]]
        size = 2 + sum(sizes)
        if node.keep < len(node.entries):
            size += 60 + len(node.entries) * 2
        if node.keep > 1:
            out.append((0, size - max(sizes), depth, node))  # objects shrink last
        return size
    return _size(node)


def _shrink(node: Any, excess: int) -> None:
    if isinstance(node, _Str):
        needed = excess + 16
        node.keep = max(MIN_STRING, min(node.keep - 1, max(node.keep - needed, node.keep // 2)))
        return
    count = node.keep
    total = sum(
        _size(_render(v))
        for v in (node.items[:count] if isinstance(node, _List) else [v for _, v in node.entries[:count]])
    )
    per_item = max(1, total // max(count, 1))
    fewer = math.ceil(excess / per_item)
    # A list may halve at once; an object gives up at most a third of its members per step.
    floor = count // 2 if isinstance(node, _List) else count - max(1, count // 3)
    node.keep = max(1, min(count - 1, max(count - fewer, floor)))


def fit_json(summary: Any, max_chars: int) -> str:
    """``summary`` as canonical JSON of at most ``max_chars`` characters."""
    text = canonical_json(summary)
    if len(text) <= max_chars:
        return text
    root = _node(summary)
    while True:
        text = canonical_json(_render(root))
        if len(text) <= max_chars:
            return text
        found: list = []
        _candidates(root, found)
        if not found:
            break
        excess = len(text) - max_chars
        lists_and_strings = [c for c in found if c[0] == 1]
        if lists_and_strings:
            # The largest lists and strings first, all of about the same weight at once.
            heaviest = max(c[1] for c in lists_and_strings)
            batch = [c[3] for c in lists_and_strings if c[1] * 2 >= heaviest]
            for target in batch:
                _shrink(target, math.ceil(excess / len(batch)))
            continue
        # Then objects, the deepest of the heavy ones first: details go before whole branches.
        heaviest = max(c[1] for c in found)
        heavy = [c for c in found if c[1] * 2 >= heaviest or c[1] * 4 >= excess]
        *_, target = max(heavy, key=lambda c: (c[2], c[1]))
        _shrink(target, excess)
    return _last_resort(text, max_chars)


def _last_resort(text: str, max_chars: int) -> str:
    """Nothing left to trim item by item: the start of the text, as one JSON string."""
    keep = max_chars
    while keep > 0:
        out = canonical_json({"truncated": text[:keep] + ELLIPSIS})
        if len(out) <= max_chars:
            return out
        keep -= max(1, len(out) - max_chars)
    return json.dumps({})
