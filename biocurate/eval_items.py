"""What evaluation scores: the items of a published version's split, as the export shows them.

A version is named by its id (``dataset_versions``) or by its folder. Each item carries its gold
call from the Parquet rows and, for a model, the chat messages (system prompt and question) and
the tool list of its OpenAI (or ShareGPT) record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from biocurate.errors import BiocurateError

NEEDED_COLUMNS = ("item_id", "call_id", "user_query", "function", "arguments", "observation", "database", "tool")


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
            out.append(
                {
                    "messages": [m for m in rec["messages"] if m["role"] in ("system", "user")],
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
    items = []
    for row in frame.sort("item_id").iter_rows(named=True):
        items.append(
            {k: row.get(k) for k in (*NEEDED_COLUMNS, "category")}
            | {"gold": {"name": row["function"], "arguments": json.loads(row["arguments"])}}
        )
    if not with_prompts:
        return items
    records = _records(version, split)
    by_id = {r["call_id"]: r for r in records if r["call_id"]}
    for position, item in enumerate(items):
        record = by_id.get("call_" + item["item_id"][:12])
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
