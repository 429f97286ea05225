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
# Before fitting starts, no list keeps more items than a bound of this many characters could
# show (one item per 100 characters, at least 3), no string more characters than the bound.
CHARS_PER_ITEM = 100
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


class Sample(list):
    """The leading items of a longer list, ending with a ``"… N more (M in all)"`` marker.

    Builders use it to skip summarising items no bound could show; ``fit_json`` keeps the count.
    """

    def __init__(self, items: list, total: int):
        super().__init__([*items, more_marker(total - len(items), total)])
        self.total = total


def more_marker(more: int, total: int) -> str:
    return f"{ELLIPSIS} {more} more ({total} in all)"


@dataclass
class _Str:
    full: str
    keep: int
    size: int = 0

    def render(self) -> str:
        if self.keep >= len(self.full):
            return self.full
        return self.full[: self.keep].rstrip() + f"{ELLIPSIS} [{len(self.full)} chars]"


@dataclass
class _List:
    items: list
    keep: int
    total: int
    size: int = 0

    def render(self) -> list:
        out = [_render(item) for item in self.items[: self.keep]]
        if self.keep < self.total:
            out.append(more_marker(self.total - self.keep, self.total))
        return out


@dataclass
class _Dict:
    entries: list  # (key, node), the most telling first
    keep: int
    size: int = 0

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


def _node(value: Any, items: int, chars: int) -> Any:
    if isinstance(value, dict):
        ranked = sorted(((str(k), v) for k, v in value.items()), key=lambda kv: _rank(kv[0]))
        return _Dict([(k, _node(v, items, chars)) for k, v in ranked], len(ranked))
    if isinstance(value, (list, tuple)):
        shown = value[:-1] if isinstance(value, Sample) else value
        kept = [_node(v, items, chars) for v in shown[:items]]
        return _List(kept, len(kept), value.total if isinstance(value, Sample) else len(value))
    if isinstance(value, str):
        return _Str(value, min(len(value), chars))
    return value


def _render(node: Any) -> Any:
    return node.render() if isinstance(node, (_Str, _List, _Dict)) else node


def _scalar_size(value: Any) -> int:
    """About the length of a scalar in JSON (escapes ignored: sizes only rank what to shrink)."""
    if isinstance(value, str):
        return len(value) + 2
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    return len(repr(value))


def _size_of(node: Any) -> int:
    return node.size if isinstance(node, (_Str, _List, _Dict)) else _scalar_size(node)


def _candidates(node: Any, out: list, depth: int = 0) -> int:
    """Rendered size of ``node`` (about); appends (kind, weight, depth, node) for every node that can shrink.

    A list or object weighs its size without its largest member: one made big by one long member
    keeps its other members, that member is trimmed instead.
    """
    if isinstance(node, _Str):
        node.size = min(node.keep, len(node.full)) + 2 + (24 if node.keep < len(node.full) else 0)
        if node.keep > MIN_STRING and len(node.full) > MIN_STRING:
            out.append((1, node.size, depth, node))
        return node.size
    if isinstance(node, _List):
        sizes = [_candidates(item, out, depth + 1) for item in node.items[: node.keep]] or [0]
        node.size = 1 + sum(s + 1 for s in sizes) + (30 if node.keep < node.total else 0)
        if node.keep > 1:
            out.append((1, node.size - max(sizes), depth, node))
        return node.size
    if isinstance(node, _Dict):
        sizes = [len(key) + 4 + _candidates(value, out, depth + 1) for key, value in node.entries[: node.keep]] or [0]
        node.size = 2 + sum(sizes) + (60 if node.keep < len(node.entries) else 0)
        if node.keep > 1:
            out.append((0, node.size - max(sizes), depth, node))  # objects shrink last
        return node.size
    return _scalar_size(node)


def _shrink(node: Any, excess: int) -> None:
    if isinstance(node, _Str):
        needed = excess + 16
        node.keep = max(MIN_STRING, min(node.keep - 1, max(node.keep - needed, node.keep // 2)))
        return
    count = node.keep
    members = node.items[:count] if isinstance(node, _List) else [v for _, v in node.entries[:count]]
    per_item = max(1, sum(_size_of(v) for v in members) // max(count, 1))
    fewer = math.ceil(excess / per_item)
    # A list may halve at once; an object gives up at most a third of its members per step.
    floor = count // 2 if isinstance(node, _List) else count - max(1, count // 3)
    node.keep = max(1, min(count - 1, max(count - fewer, floor)))


def fit_json(summary: Any, max_chars: int) -> str:
    """``summary`` as canonical JSON of at most ``max_chars`` characters."""
    text = canonical_json(summary)
    if len(text) <= max_chars:
        return text
    root = _node(summary, max(3, max_chars // CHARS_PER_ITEM), max_chars)
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
