"""Entity resolution and expansion: what responses reveal becomes seeds of the next rebuild.

Rules are declarative (``discovers`` in a function's catalog spec). A discovered entity is
validated against its type's schema like a seed row, and stored in ``entities`` with the call
that found it (``found_by_call``). At sampling time, entities with the same type, label and
species are merged: seed values win, discovered values fill the gaps (e.g. a gene seeded by
symbol gets its Ensembl id from a lookup).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import duckdb

from biocurate.catalog import Catalog, Discovery
from biocurate.item_kinds import single_call_sql
from biocurate.seeds import entity_id, entity_types, validate_row
from biocurate.store import insert_new


def _path(value: Any, dotted: str) -> Any:
    for part in [p for p in dotted.split(".") if p]:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def extract(rule: Discovery, body: Any, arguments: dict) -> list[dict]:
    """Raw field dicts for every item the rule points at."""
    items = _path(body, rule.each)
    if items is None:
        return []
    if not isinstance(items, list):
        items = [items]
    found = []
    for item in items[: rule.limit]:
        row = {}
        for field, source in rule.fields.items():
            value: Any
            if source.startswith("="):
                value = source[1:]
            elif source.startswith("{") and source.endswith("}"):
                value = arguments.get(source[1:-1])
            else:
                value = _path(item, source)
            if value not in (None, ""):
                row[field] = str(value)
        if row:
            found.append(row)
    return found


def discover_entities(con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, catalog_dir) -> dict[str, int]:
    """Scan ok responses of functions with discovery rules; store new, valid entities.

    Counts: responses scanned, valid entities found, new ones stored, invalid ones skipped.
    """
    names = [t.name for t in catalog if t.function.discovers]
    if not names:
        return {"responses": 0, "found": 0, "discovered": 0, "invalid": 0}
    types = entity_types(catalog_dir)
    rows = con.execute(
        f"""
        select r.call_id, c.function, c.arguments, r.body from api_responses r
        join candidate_calls c using (call_id)
        where r.outcome = 'ok' and {single_call_sql("c")} and c.function in ({", ".join("?" * len(names))})
        """,
        names,
    ).fetchall()
    new, invalid = [], 0
    for call_id, function, arguments, body in rows:
        try:
            data = json.loads(gzip.decompress(body))
        except ValueError:
            continue
        args = json.loads(arguments)
        for rule in catalog[function].function.discovers:
            for raw in extract(rule, data, args):
                clean, _reason = validate_row(rule.entity, {**raw, "source": "discovered"}, types)
                if clean is None:  # the row breaks its entity type's rules
                    invalid += 1
                    continue
                new.append(
                    {
                        "entity_id": entity_id(rule.entity, clean),
                        "entity_type": rule.entity,
                        "label": clean[types[rule.entity]["label"]],
                        "species": clean.get("species"),
                        "fields": json.dumps(clean),
                        "source": f"discovered by {function}",
                        "found_by_call": call_id,
                        "run_id": run_id,
                    }
                )
    found = len({e["entity_id"] for e in new})
    return {"responses": len(rows), "found": found, "discovered": insert_new(con, "entities", new), "invalid": invalid}


def merge_entities(seeded: list[dict], discovered: list[dict]) -> list[dict]:
    """One entity per (type, label, species): seed fields win, discovered fields fill gaps."""
    merged: dict[tuple, dict] = {}
    for entity in seeded + discovered:
        key = (entity["entity_type"], entity["label"], entity.get("species"))
        if key not in merged:
            merged[key] = {**entity, "fields": dict(entity["fields"])}
            continue
        current = merged[key]
        filled = {k: v for k, v in entity["fields"].items() if k not in current["fields"]}
        if filled:
            current["fields"].update(filled)
            current["entity_id"] = entity_id(current["entity_type"], current["fields"])
            current["source"] = f"{current['source']}; filled {', '.join(sorted(filled))} from {entity['source']}"
    return list(merged.values())


def discovered_entities(con: duckdb.DuckDBPyConnection) -> list[dict]:
    rows = con.execute(
        "select entity_id, entity_type, label, species, fields, source, found_by_call from entities "
        "where found_by_call is not null order by entity_id"
    ).fetchall()
    return [
        {
            "entity_id": r[0],
            "entity_type": r[1],
            "label": r[2],
            "species": r[3],
            "fields": json.loads(r[4]),
            "source": r[5],
            "found_by_call": r[6],
        }
        for r in rows
    ]
