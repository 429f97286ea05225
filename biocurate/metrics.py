"""Scoring one predicted tool call against the gold call, and aggregating with confidence intervals.

The argument rule (what "equal arguments" means), applied to gold and predicted calls alike with
the schema of the function each names:

- order of the arguments is ignored (they are compared as a mapping);
- each value is normalised as its parameter's schema type says: integers from "5" or 5.0 to 5;
  numbers to floats; booleans from true/false, "true"/"false", "yes"/"no", 1/0; strings are
  trimmed (case is kept: identifiers are case-sensitive), and a number given for a string becomes
  its text; an enum value matching a member up to case becomes that member; arrays (a JSON list,
  or a comma-separated string) are compared as sets of normalised items (order and duplicates
  ignored);
- an argument whose normalised value equals the parameter's schema default counts as absent, and
  so does a null;
- an argument the schema does not know is kept as written (it can never match a gold argument).

Exact match: same function name and equal canonical arguments. Argument precision and recall
count (name, canonical value) pairs; a pair is right only when the function name is right too.
Per item, precision is undefined (null) when nothing was predicted and recall when the gold call
has no arguments; aggregates pool the pairs over items (micro average).

Item kinds (issue 18; ``score_calls``): a ``single`` item is scored on the reply's first call, as
above. A ``parallel`` item's predicted calls are matched to its gold calls as a multiset (order
free): exact when every gold call is predicted and nothing else. A ``multi_step`` item's calls,
made one after another in a conversation, are compared step by step: a step counts only when it
and every step before it are right (a later step is right only given the right observations), and
the chain is exact when every step is right and nothing follows. A ``no_tool`` item is exact when
the reply makes no call. Partial credit: call precision (matched calls / predicted calls), call
recall (matched / gold; for ``multi_step`` the share of the chain done right) and the item's call
F1 (1 when nothing was expected and nothing predicted). The per-call metrics (name, arguments,
schema, API success, similarity) of a set pair each predicted call with a gold call (equal ones
first, then one of the same function; ``multi_step`` by position); they do not apply to
``no_tool`` items and leave them out of their aggregates.

Confidence intervals: Wilson score intervals for proportions (exact match, name accuracy,
schema validity, API success); percentile bootstrap over items, with a fixed seed, for means and
pooled ratios (response similarity, argument precision and recall).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from biocurate.catalog import Catalog, Param, Tool
from biocurate.hashing import canonical_json


def normalize_value(param: Param, value: Any) -> Any:
    """A value as its parameter's schema type says (see the module doc; ``Param.normalize``)."""
    return param.normalize(value)


def canonical_arguments(tool: Tool | None, arguments: dict) -> dict:
    """Arguments under the argument rule (``Tool.canonical_arguments``, the one place of the rule);
    without a schema (unknown function), only nulls drop."""
    if tool is not None:
        return tool.canonical_arguments(arguments)
    return {name: value for name, value in arguments.items() if value is not None}


@dataclass
class Predicted:
    """What a model answered: a call (name, arguments text), or why there is none."""

    status: str  # call | no_call | malformed | request_failed
    name: str | None = None
    arguments_text: str | None = None
    arguments: dict | None = None  # parsed, when the text was a JSON object
    error: str | None = None


def parse_tool_call(tool_call: dict) -> Predicted:
    """One OpenAI tool call -> Predicted; arguments that are not a JSON object make it malformed."""
    function = tool_call.get("function") or {}
    name = function.get("name")
    raw = function.get("arguments")
    if not isinstance(name, str) or not name:
        return Predicted(
            "malformed",
            None,
            raw if isinstance(raw, str) else json.dumps(raw),
            None,
            "the tool call has no function name",
        )
    if isinstance(raw, dict):  # some servers send an object rather than its JSON text
        return Predicted("call", name, json.dumps(raw, ensure_ascii=False), raw)
    try:
        args = json.loads(raw) if raw not in (None, "") else {}
    except (TypeError, ValueError) as exc:
        return Predicted("malformed", name, raw, None, f"arguments are not valid JSON: {exc}")
    if not isinstance(args, dict):
        return Predicted("malformed", name, raw, None, f"arguments are a JSON {type(args).__name__}, not an object")
    return Predicted("call", name, raw, args)


def _pairs(arguments: dict) -> set[tuple[str, str]]:
    return {(k, canonical_json(v)) for k, v in arguments.items()}


def score_call(catalog: Catalog, gold: dict, pred: Predicted) -> dict:
    """Per-item scores of one prediction (all but API success and response similarity)."""
    gold_tool = catalog.tools.get(gold["name"])
    gold_args = canonical_arguments(gold_tool, gold["arguments"])
    name_match = pred.name is not None and pred.name == gold["name"]
    out = {
        "name_match": name_match,
        "exact_match": False,
        "arg_correct": 0,
        "arg_predicted": 0,
        "arg_gold": len(gold_args),
        "arg_precision": None,
        "arg_recall": None,
        "schema_valid": False,
        "schema_error": None,
        "pred_canonical": None,
    }
    if pred.status != "call":
        out["schema_error"] = pred.error or pred.status
        out["arg_recall"] = 0.0 if gold_args else None
        return out
    assert pred.name is not None and pred.arguments is not None  # a call has both (parse_tool_call)
    pred_tool = catalog.tools.get(pred.name)
    pred_args = canonical_arguments(pred_tool, pred.arguments)
    out["pred_canonical"] = canonical_json({"name": pred.name, "arguments": pred_args})
    correct = len(_pairs(pred_args) & _pairs(gold_args)) if name_match else 0
    out.update(
        arg_correct=correct,
        arg_predicted=len(pred_args),
        arg_precision=correct / len(pred_args) if pred_args else None,
        arg_recall=correct / len(gold_args) if gold_args else None,
        exact_match=name_match and canonical_json(pred_args) == canonical_json(gold_args),
    )
    if pred_tool is None:
        out["schema_error"] = f"unknown function {pred.name!r}: not in the catalog"
    else:
        out["schema_error"] = pred_tool.validate(pred.arguments)
        out["schema_valid"] = out["schema_error"] is None
    return out


KINDS = ("single", "parallel", "multi_step", "no_tool")


def call_f1(matched: int, predicted: int, gold: int) -> float:
    """F1 of the matched calls over the predicted and the gold ones (1 when both are empty)."""
    if predicted == 0 and gold == 0:
        return 1.0
    if matched == 0:
        return 0.0
    precision, recall = matched / predicted, matched / gold
    return 2 * precision * recall / (precision + recall)


def score_calls(catalog: Catalog, kind: str, gold: list[dict], preds: list[Predicted]) -> dict:
    """Scores of every predicted call of a ``parallel``, ``multi_step`` or ``no_tool`` item (see
    the module doc): the set's exact match and call counts, the per-call scores summed over the
    pairs, and ``pairs``: (predicted index, gold index or None) per predicted call."""
    pairs: dict[int, int | None] = {}
    if kind == "multi_step":
        for i in range(len(preds)):
            pairs[i] = i if i < len(gold) else None
    elif kind == "parallel":
        free = set(range(len(gold)))
        for i, pred in enumerate(preds):  # equal calls first
            for g in sorted(free):
                if score_call(catalog, gold[g], pred)["exact_match"]:
                    pairs[i] = g
                    free.discard(g)
                    break
        for i, pred in enumerate(preds):  # then a call of the same function
            if i not in pairs:
                same = [g for g in sorted(free) if gold[g]["name"] == pred.name]
                pairs[i] = same[0] if same else None
                free -= set(same[:1])
    else:
        pairs = dict.fromkeys(range(len(preds)))
    # each predicted call against its gold call (an unpaired one against nothing: all wrong)
    nothing = {"name": "", "arguments": {}}
    per_call = [score_call(catalog, gold[g] if g is not None else nothing, preds[i]) for i, g in sorted(pairs.items())]
    exact_calls = [pairs[i] is not None and per_call[i]["exact_match"] for i in range(len(preds))]
    if kind == "multi_step":
        matched = next((i for i, ok in enumerate(exact_calls) if not ok), len(exact_calls))
        names = [p.name for p in preds] == [g["name"] for g in gold]
    else:
        matched = sum(exact_calls)
        names = sorted(str(p.name) for p in preds) == sorted(g["name"] for g in gold)
    arg_gold = sum(len(canonical_arguments(catalog.tools.get(g["name"]), g["arguments"])) for g in gold)
    correct = sum(s["arg_correct"] for s in per_call)
    predicted = sum(s["arg_predicted"] for s in per_call)
    exact = matched == len(gold) == len(preds) and all(p.status == "call" for p in preds)
    return {
        "exact_match": exact,
        "name_match": names and bool(preds) == bool(gold),
        "call_gold": len(gold),
        "call_predicted": len(preds),
        "call_matched": matched,
        "call_f1": call_f1(matched, len(preds), len(gold)),
        "arg_correct": correct,
        "arg_predicted": predicted,
        "arg_gold": arg_gold,
        "arg_precision": correct / predicted if predicted else None,
        "arg_recall": correct / arg_gold if arg_gold else None,
        "schema_valid": all(s["schema_valid"] for s in per_call),
        "schema_error": next((s["schema_error"] for s in per_call if s["schema_error"]), None),
        "pred_canonical": [s["pred_canonical"] for s in per_call],
        "pairs": pairs,
    }


# ---------------------------------------------------------------------------------------------
# Confidence intervals and aggregates

Z = {0.90: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004}


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The Wilson score interval of a proportion."""
    if n == 0:
        return None, None
    z = Z[confidence]
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 and k = n the bounds are exactly 0 and 1; floating point would miss them by an ulp.
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == n else min(1.0, centre + half))


def bootstrap_ratio(
    numerators: list[float], denominators: list[float], samples: int, confidence: float, seed: int
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of sum(numerators) / sum(denominators), resampling items
    (pairs) with replacement; resamples whose denominator is 0 are left out."""
    import numpy as np

    if not numerators:
        return None, None
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(num), size=(samples, len(num)))
    totals = den[picks].sum(axis=1)
    keep = totals > 0
    if not keep.any():
        return None, None
    ratios = num[picks].sum(axis=1)[keep] / totals[keep]
    tail = (1 - confidence) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return float(low), float(high)


PROPORTIONS = {
    "exact_match": "exact_match",
    "name_accuracy": "name_match",
    "schema_validity": "schema_valid",
    "api_success": "api_success",
}
METRICS = (
    "exact_match",
    "name_accuracy",
    "arg_precision",
    "arg_recall",
    "schema_validity",
    "api_success",
    "similarity",
    "call_precision",
    "call_recall",
    "call_f1",
)
LEVELS = ("overall", "kind", "database", "tool", "function", "category")
# Per-call metrics say nothing about an item whose right answer is no call: left out of these.
NOT_FOR_NO_TOOL = {"name_accuracy", "arg_precision", "arg_recall", "schema_validity", "api_success", "similarity"}


# metric -> (numerator, denominator) per item: the aggregate is sum(numerator) / sum(denominator).
RATIOS = {
    "arg_precision": (lambda r: r["arg_correct"], lambda r: r["arg_predicted"]),
    "arg_recall": (lambda r: r["arg_correct"], lambda r: r["arg_gold"]),
    "similarity": (lambda r: r["similarity"] or 0.0, lambda r: 1),
    "call_precision": (lambda r: r["call_matched"], lambda r: r["call_predicted"]),
    "call_recall": (lambda r: r["call_matched"], lambda r: r["call_gold"]),
    "call_f1": (lambda r: r["call_f1"], lambda r: 1),
}


def _applies(metric: str, rows: list[dict]) -> list[dict]:
    if metric not in NOT_FOR_NO_TOOL:
        return rows
    return [r for r in rows if r.get("kind", "single") != "no_tool"]


def summarize(rows: list[dict], confidence: float = 0.95, samples: int = 1000, seed: int = 0) -> list[dict]:
    """One row per metric: n, value, ci_low, ci_high, method. API success counts an undecided
    (null) outcome as a failure; similarity counts a missing observation as 0."""
    out, every = [], rows
    for metric, column in PROPORTIONS.items():
        rows = _applies(metric, every)
        k = sum(1 for r in rows if r[column])
        lo, hi = wilson(k, len(rows), confidence)
        out.append(
            {
                "metric": metric,
                "n": len(rows),
                "value": k / len(rows) if rows else None,
                "ci_low": lo,
                "ci_high": hi,
                "method": "wilson",
            }
        )
    for metric, (numerator, denominator) in RATIOS.items():
        rows = _applies(metric, every)
        num, den = [numerator(r) for r in rows], [denominator(r) for r in rows]
        lo, hi = bootstrap_ratio(num, den, samples, confidence, seed)
        out.append(
            {
                "metric": metric,
                "n": int(sum(den)),
                "value": sum(num) / sum(den) if sum(den) else None,
                "ci_low": lo,
                "ci_high": hi,
                "method": "bootstrap",
            }
        )
    order = {m: i for i, m in enumerate(METRICS)}
    return sorted(out, key=lambda r: order[r["metric"]])


def aggregate(
    rows: list[dict], confidence: float = 0.95, samples: int = 1000, seed: int = 0, levels: Iterable[str] = LEVELS
) -> list[dict]:
    """summarize() overall and per database, tool, function and category (level, key, metric...)."""
    out = []
    for level in levels:
        groups: dict[str, list[dict]] = {}
        for r in rows:
            groups.setdefault("all" if level == "overall" else str(r[level]), []).append(r)
        for key, members in sorted(groups.items()):
            out += [{"level": level, "key": key, **s} for s in summarize(members, confidence, samples, seed)]
    return out
