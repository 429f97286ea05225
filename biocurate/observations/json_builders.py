"""Builders for JSON answers: a generic one that keeps every fact, and one per well-known shape.

``compact`` is the generic summary: evidence lists and empty values dropped, ``{"value": x}``
wrappers unwrapped, objects deeper than ``MAX_DEPTH`` written as one line of their content
(``"type: taxon; value: Bacteria"``), never as a key count. Lists keep up to ``MAX_ITEMS``
items (a ``Sample`` that counts the rest): the size bound is ``fit_json``'s job, which keeps
leading items and says how many there were.
"""

from __future__ import annotations

import json
from typing import Any

from biocurate.observations.fit import Sample
from biocurate.observations.registry import NotAnAnswer, UnexpectedShape, builder

NOISE_KEYS = frozenset({"evidences"})
MAX_DEPTH = 6
# Items of one list summarised at most; the rest only counted (no bound shows that many).
MAX_ITEMS = 100
# Keys that only say where a job is, never what it found.
STATUS_KEYS = frozenset({"status", "Status", "RID", "RTOE", "jobId", "jobStatus", "ThereAreHits"})


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnexpectedShape(f"body is not valid JSON: {exc}") from exc


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def flatten(value: Any, prefix: str = "") -> list[str]:
    """``key: value`` lines of every leaf under ``value`` (dotted keys, list items joined)."""
    if isinstance(value, dict):
        return [
            line
            for k, v in value.items()
            if k not in NOISE_KEYS and not _empty(v)
            for line in flatten(v, f"{prefix}.{k}" if prefix else str(k))
        ]
    if isinstance(value, list):
        scalars = [str(v) for v in value if not isinstance(v, (dict, list)) and not _empty(v)]
        nested = [line for v in value if isinstance(v, (dict, list)) for line in flatten(v, prefix)]
        return ([f"{prefix}: {', '.join(scalars)}" if prefix else ", ".join(scalars)] if scalars else []) + nested
    return [f"{prefix}: {value}" if prefix else str(value)]


EMPTY: tuple[Any, ...] = (None, "", [], {})


def compact(value: Any, depth: int = 0) -> Any:
    """Every fact of ``value`` in fewer characters (see the module docstring)."""
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            deep = {k: v for k, v in value.items() if k not in NOISE_KEYS and v not in EMPTY}
            return deep["value"] if set(deep) == {"value"} else "; ".join(flatten(deep))
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in NOISE_KEYS:
                continue
            if isinstance(item, (dict, list)):
                item = compact(item, depth + 1)
            if item not in EMPTY:
                out[key] = item
        return out["value"] if len(out) == 1 and "value" in out else out
    if isinstance(value, list):
        if depth >= MAX_DEPTH and any(isinstance(v, (dict, list)) for v in value):
            return "; ".join(flatten(value))
        kept: list[Any] = []
        for item in value[:MAX_ITEMS]:
            if isinstance(item, (dict, list)):
                item = compact(item, depth + 1)
            if item not in EMPTY:
                kept.append(item)
        return Sample(kept, len(kept) + len(value) - MAX_ITEMS) if len(value) > MAX_ITEMS else kept
    return value


def _facts(value: Any, key: str = "") -> tuple[bool, list[str]]:
    """(whether ``value`` holds a fact other than a job status, the status keys met on the way)."""
    if isinstance(value, dict):
        seen: list[str] = []
        for k, v in value.items():
            found, keys = _facts(v, str(k))
            if found:
                return True, []
            seen += keys
        return False, seen
    if isinstance(value, list):
        seen = []
        for v in value:
            found, keys = _facts(v, key)
            if found:
                return True, []
            seen += keys
        return False, seen
    if _empty(value):
        return False, []
    return (False, [f"{key}={value}"]) if key in STATUS_KEYS else (True, [])


def require_answer(summary: Any, what: str = "answer") -> Any:
    """``summary`` unless it holds no fact, or only a job's status."""
    found, status = _facts(summary)
    if found:
        return summary
    if status:
        raise NotAnAnswer(f"the {what} holds only a job status: " + ", ".join(status[:4]))
    raise NotAnAnswer(f"the {what} holds no data")


def pick(data: dict, *keys: str) -> dict:
    return {k: compact(data[k]) for k in keys if k in data and not _empty(data[k])}


@builder("json", "json")
def generic_json(body: bytes) -> Any:
    return require_answer(compact(load_json(body)))


ENSEMBL_KEEP = (
    "id",
    "display_name",
    "species",
    "object_type",
    "biotype",
    "assembly_name",
    "seq_region_name",
    "start",
    "end",
    "strand",
    "description",
    "canonical_transcript",
    "version",
    "Parent",
    "length",
    "db_type",
    "logic_name",
    "source",
    "is_canonical",
)


def _ensembl_feature(data: dict) -> dict:
    out = {k: data[k] for k in ENSEMBL_KEEP if k in data and not _empty(data[k])}
    transcripts = data.get("Transcript") or []
    if transcripts:
        out["transcript_count"] = len(transcripts)
        out["transcripts"] = [_transcript(t) for t in transcripts]
    if data.get("Translation"):
        out["translation"] = pick(data["Translation"], "id", "length", "start", "end")
    if data.get("Exon"):
        out["exon_count"] = len(data["Exon"])
    for extra in ("mane", "phenotypes", "UTR"):
        if data.get(extra):
            out[extra.lower()] = compact(data[extra])
    return out


def _transcript(t: dict) -> dict:
    out = pick(t, "id", "display_name", "biotype", "is_canonical", "start", "end", "length")
    if t.get("Translation"):
        out["protein"] = t["Translation"].get("id")
    if t.get("Exon"):
        out["exons"] = len(t["Exon"])
    return out


@builder("ensembl_lookup", "json")
def ensembl_lookup(body: bytes) -> Any:
    data = load_json(body)
    if not isinstance(data, dict) or not data:
        raise UnexpectedShape(f"expected an object, got {type(data).__name__}")
    if "id" not in data and all(isinstance(v, dict) for v in data.values()):
        # POST lookup answers an object keyed by the identifiers asked for.
        return {k: _ensembl_feature(v) for k, v in data.items()}
    out = _ensembl_feature(data)
    if not out:
        raise UnexpectedShape("no Ensembl lookup fields (id, display_name, ...) in the object")
    return out


def _tree_nodes(node: dict, out: list, events: dict) -> None:
    kind = (node.get("events") or {}).get("type")
    if kind:
        events[kind] = events.get(kind, 0) + 1
    children = node.get("children") or []
    if not children:
        out.append(node)
    for child in children:
        _tree_nodes(child, out, events)


@builder("ensembl_genetree", "json")
def ensembl_genetree(body: bytes) -> Any:
    """A gene tree (members by species) or a CAFE tree (gene counts per taxon)."""
    data = load_json(body)
    tree = data.get("tree") if isinstance(data, dict) else None
    if not isinstance(tree, dict):
        raise UnexpectedShape("no 'tree' object in the gene tree answer")
    leaves_: list[dict] = []
    events: dict[str, int] = {}
    _tree_nodes(tree, leaves_, events)
    out: dict[str, Any] = pick(data, "id", "type", "rooted", "pvalue_avg")
    root_taxon = tree.get("taxonomy") or tree.get("tax") or {}
    out["root_taxon"] = root_taxon.get("scientific_name")
    if "n_members" in tree:  # CAFE: expansions and contractions per taxon
        out["taxa"] = [
            {
                "taxon": (n.get("tax") or {}).get("scientific_name"),
                "members": n.get("n_members"),
                "pvalue": n.get("pvalue"),
            }
            for n in leaves_
        ]
        return out
    members = []
    for leaf in leaves_:
        ident = leaf.get("id") or {}
        members.append(
            {
                k: v
                for k, v in {
                    "gene": ident.get("accession") if isinstance(ident, dict) else ident,
                    "name": (leaf.get("sequence") or {}).get("name")
                    or leaf.get("gene_member", {}).get("display_label"),
                    "species": (leaf.get("taxonomy") or {}).get("scientific_name"),
                }.items()
                if v
            }
        )
    out["member_count"] = len(members)
    out["species"] = sorted({m["species"] for m in members if m.get("species")})
    out["events"] = events
    out["members"] = members
    return out
