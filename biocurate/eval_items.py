"""What evaluation scores: the items of a published version's split, as the export shows them.

A version is named by its id (``dataset_versions``) or by its folder. Each item carries its gold
call from the Parquet rows and, for a model, the chat messages (system prompt and question) and
the tool list of its OpenAI (or ShareGPT) record.

Item kinds (issue 18, docs/item_kinds.md): a version whose rows have ``kind`` and ``calls`` (the
JSON array of ``{"name", "arguments", "observation", "depends_on"}``, ``[]`` for ``no_tool``) gives
each item its kind and gold calls (``gold_calls``, ``gold_observations``); an older version's rows
are all ``single``, their one call from ``function`` and ``arguments``. ``gold`` is the first call
(``{}`` for ``no_tool``), and ``database``, ``tool``, ``function`` describe the first call
(``none`` for ``no_tool``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from biocurate.errors import BiocurateError

NEEDED_COLUMNS = ("item_id", "call_id", "user_query", "function", "arguments", "observation", "database", "tool")
KINDS = ("single", "parallel", "multi_step", "no_tool")


class EvalError(BiocurateError):
    pass


@dataclass
class Version:
    version_id: str
    path: Path
    content_hash: str | None


def resolve_version(con: duckdb.DuckDBPyConnection, ref: str) -> Version:
    """A version by id (from ``dataset_versions``) or by its folder."""
    folder = Path(ref)
    if folder.is_dir() and (folder / "parquet").is_dir():
        manifest = folder / "manifest.json"
        meta = json.loads(manifest.read_text()) if manifest.exists() else {}
        return Version(meta.get("version_id", folder.name), folder, meta.get("content_hash"))
    rows = con.execute("select path, content_hash from dataset_versions where version_id = ?", [ref]).fetchall()
    if not rows:
        known = [v for (v,) in con.execute("select version_id from dataset_versions order by 1").fetchall()]
        raise EvalError(
            f"no version {ref!r} in the store (versions: {', '.join(known) or 'none yet; run `biocurate publish`'})"
        )
    path = Path(rows[0][0])
    if not (path / "parquet").is_dir():
        raise EvalError(f"version {ref} is recorded at {path}, but that folder (or its parquet/) is missing")
    return Version(ref, path, rows[0][1])


def _records(version: Version, split: str) -> list[dict]:
    """The export's chat records of a split: system + user messages and the offered tools."""
    openai = version.path / "openai" / f"{split}.jsonl"
    if openai.exists():
        out = []
        for line in openai.read_text().splitlines():
            rec = json.loads(line)
            calls = [c for m in rec["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or []]
            # what the model is asked: the messages up to the first answer (system prompt, question)
            first = next((n for n, m in enumerate(rec["messages"]) if m["role"] == "assistant"), None)
            out.append(
                {
                    "messages": [m for m in rec["messages"][:first] if m["role"] in ("system", "user")],
                    "tools": rec["tools"],
                    "call_id": calls[0]["id"] if calls else None,
                }
            )
        return out
    sharegpt = version.path / "sharegpt" / f"{split}.json"
    if sharegpt.exists():
        return [
            {
                "messages": [
                    {"role": "system", "content": r["system"]},
                    {"role": "user", "content": r["conversations"][0]["value"]},
                ],
                "tools": [{"type": "function", "function": t} for t in json.loads(r["tools"])],
                "call_id": None,
            }
            for r in json.loads(sharegpt.read_text())
        ]
    raise EvalError(f"{version.path} has neither openai/{split}.jsonl nor sharegpt/{split}.json")


def load_items(version: Version, split: str, with_prompts: bool = True) -> list[dict]:
    """The items of one split (sorted by item id), each with its gold call and, when asked, the
    messages and tools the export shows for it."""
    file = version.path / "parquet" / f"{split}.parquet"
    if not file.exists():
        raise EvalError(f"version {version.version_id} has no {split} split (no {file.name}): nothing to score")
    frame = pl.read_parquet(file)
    missing = [c for c in NEEDED_COLUMNS if c not in frame.columns]
    if missing:
        raise EvalError(f"{file} lacks the columns {missing}: not a biocurate export")
    items = [_item(file, row) for row in frame.sort("item_id").iter_rows(named=True)]
    if not with_prompts:
        return items
    records = _records(version, split)
    by_id = {r["call_id"][:17]: r for r in records if r["call_id"]}  # call_<item id[:12]>, a suffix per call
    asked = Counter(m["content"] for r in records for m in r["messages"] if m["role"] == "user")
    by_question = {m["content"]: r for r in records for m in r["messages"] if asked[m["content"]] == 1}
    for position, item in enumerate(items):
        record = by_id.get("call_" + item["item_id"][:12]) or by_question.get(item["user_query"])
        if record is None and position < len(records):
            record = records[position]
        user = [m["content"] for m in (record or {}).get("messages", []) if m["role"] == "user"]
        if record is None or not user or user[-1] != item["user_query"]:
            raise EvalError(
                f"{version.path}: the chat record of item {item['item_id']} does not match its "
                "Parquet row (a changed export layout?)"
            )
        item["messages"], item["tools"] = record["messages"], record["tools"]
    return items


def _item(file: Path, row: dict) -> dict:
    """An item of a Parquet row: its kind and gold calls (see the module doc)."""
    item = {k: row.get(k) for k in (*NEEDED_COLUMNS, "category")}
    kind = row.get("kind") or "single"
    if kind not in KINDS:
        raise EvalError(f"{file}: item {row['item_id']} has kind {kind!r}, not one of {', '.join(KINDS)}")
    if kind == "single" or row.get("calls") is None:
        gold = {"name": row["function"], "arguments": json.loads(row["arguments"])}
        calls = [{**gold, "observation": row["observation"]}]
    else:
        calls = json.loads(row["calls"]) if isinstance(row["calls"], str) else list(row["calls"])
        if (kind == "no_tool") != (not calls):
            raise EvalError(f"{file}: item {row['item_id']} is {kind} with {len(calls)} calls")
        for call in calls:
            if isinstance(call.get("arguments"), str):
                call["arguments"] = json.loads(call["arguments"])
        gold = {"name": calls[0]["name"], "arguments": calls[0]["arguments"]} if calls else {}
    item["call_id"] = item["call_id"] or row["item_id"]
    for column in ("database", "tool", "function", "category"):
        item[column] = item[column] or ("none" if kind == "no_tool" or column != "category" else None)
    return item | {
        "kind": kind,
        "gold": gold,
        "gold_calls": [{"name": c["name"], "arguments": c["arguments"]} for c in calls],
        "gold_observations": [c.get("observation") or "" for c in calls],
        "answer": row.get("answer"),
        "observation": item["observation"] if kind == "single" else None,
    }
