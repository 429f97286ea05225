"""The retrieval baseline: a number to beat that needs no model.

For each test question, the nearest training question by sentence embedding (cosine) lends its
call; the values of that call that appear verbatim in the training question (identifiers, terms,
regions, sequences) are replaced by what stands in their place in the test question:

1. by context: the text around the value in the training question is searched for in the test
   question (widest context first), and what lies between is the new value (an identifier-like
   value only by something identifier-like);
2. by shape: else the identifier-like token of the test question (one with a digit, an inner
   capital, ``_`` or ``:``) that the training question lacks and whose shape (letters, digits,
   punctuation) is closest to the value's;
3. else the value is kept.

The new value is given the parameter's schema type (``metrics.normalize_value``).

Every item kind (issue 18): the neighbour's kind decides the answer. A ``single`` or ``parallel``
neighbour lends all its calls (each substituted as above); a ``multi_step`` neighbour only its
first call (later arguments come from observations the baseline never sees); a ``no_tool``
neighbour lends no call. It scores poorly on sets, by design: a number to beat.
"""

from __future__ import annotations

import re
import string

from biocurate.catalog import Catalog
from biocurate.embeddings import Embedder, nearest
from biocurate.hashing import canonical_json
from biocurate.metrics import Predicted, normalize_value
from biocurate.vocabulary import argument_text

CONTEXT_WIDTHS = (40, 20, 10, 5)
STRIP = ".,;:?!()[]{}\"'"


def by_context(train_query: str, value: str, test_query: str) -> str | None:
    start = train_query.find(value)
    left, right = train_query[:start], train_query[start + len(value) :]
    for width in CONTEXT_WIDTHS:
        lc, rc = left[-width:], right[:width]
        pattern = (
            ("^" if len(left) <= width else "")
            + re.escape(lc)
            + "(.+?)"
            + re.escape(rc)
            + ("$" if len(right) <= width else "")
        )
        found = re.search(pattern, test_query, re.S)
        span = found.group(1).strip() if found else ""
        # A narrow context can match by chance: then the span may not have more words than the value.
        # and an identifier is only ever replaced by something identifier-like.
        if (
            span
            and len(span) <= max(40, 3 * len(value))
            and (width >= 20 or len(span.split()) <= len(value.split()))
            and (not identifier_like(value) or any(identifier_like(t) for t in span.split()))
        ):
            return span
    return None


def shape(text: str) -> str:
    """Runs of letters (A/a), digits (9) and anything else, collapsed: 'ENSG00000139618' -> 'A9'."""
    out = re.sub(r"[A-Z]", "A", text)
    out = re.sub(r"[a-z]", "a", out)
    out = re.sub(r"[0-9]", "9", out)
    return re.sub(r"(.)\1+", r"\1", out)


def identifier_like(token: str) -> bool:
    return bool(re.search(r"\d|_|:", token) or re.search(r".[A-Z]", token))


def by_shape(value: str, train_query: str, test_query: str, used: set[str]) -> str | None:
    seen = {t.strip(STRIP) for t in train_query.split()}
    best, best_score = None, 0
    for token in (t.strip(STRIP) for t in test_query.split()):
        if not token or token in seen or token in used or not identifier_like(token):
            continue
        prefix = len(value) - len(value.lstrip(string.ascii_letters))  # leading letters
        score = (
            (3 if shape(token) == shape(value) else 0)
            + (2 if prefix >= 2 and token[:prefix] == value[:prefix] else 0)
            + (1 if any(c.isdigit() for c in token) == any(c.isdigit() for c in value) else 0)
        )
        if score > best_score:
            best, best_score = token, score
    return best if best_score >= 3 else None


def substitute(catalog: Catalog, train_query: str, call: dict, test_query: str) -> tuple[dict, dict]:
    """(arguments for the test question, {argument: [old, new]} of what was replaced)."""
    tool = catalog.tools.get(call["name"])
    args, changes, used = dict(call["arguments"]), {}, set[str]()
    in_order = sorted(args, key=lambda k: train_query.find(argument_text(args[k])))
    for name in in_order:
        value = args[name]
        text = argument_text(value)
        if not text or text not in train_query or text in test_query:
            continue
        new = by_context(train_query, text, test_query) or by_shape(text, train_query, test_query, used)
        if new is None:
            continue
        used.add(new)
        param = tool.function.params.get(name) if tool else None
        args[name] = normalize_value(param, new) if param is not None else new
        changes[name] = [value, args[name]]
    return args, changes


def predict(embedder: Embedder, catalog: Catalog, train: list[dict], items: list[dict]) -> list[dict]:
    """For each item: {"pred": Predicted (the first call), "preds": every call, "raw_output": trace
    JSON, "retrieved_item_id": ...}."""
    found = nearest(embedder, [i["user_query"] for i in items], [t["user_query"] for t in train])
    out = []
    for item, (index, score) in zip(items, found, strict=True):
        neighbour = train[index]
        kind = neighbour.get("kind", "single")
        lent = neighbour.get("gold_calls", [neighbour["gold"]])
        lent = lent[:1] if kind == "multi_step" else lent
        calls, changes = [], []
        for call in lent:
            args, changed = substitute(catalog, neighbour["user_query"], call, item["user_query"])
            calls.append({"name": call["name"], "arguments": args})
            changes.append(changed)
        trace = {
            "retrieved_item_id": neighbour["item_id"],
            "retrieved_query": neighbour["user_query"],
            "cosine": round(score, 6),
            "retrieved_call": neighbour["gold"],
            "substituted": changes[0] if kind == "single" else changes,
            "call": calls[0] if calls else None,
            **({} if kind == "single" else {"retrieved_kind": kind, "calls": calls}),
        }
        preds = [Predicted("call", c["name"], canonical_json(c["arguments"]), c["arguments"]) for c in calls]
        out.append(
            {
                "pred": preds[0] if preds else Predicted("no_call", error="the nearest training item has no call"),
                "preds": preds,
                "raw_output": canonical_json(trace),
                "retrieved_item_id": neighbour["item_id"],
            }
        )
    return out
