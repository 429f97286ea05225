"""Publish: human-accepted items -> an immutable, documented dataset version.

A version folder is written under a temporary name and renamed only when complete; it is
then recorded in ``dataset_versions``/``dataset_items``. Splits are assigned by a hash of the
item's group key (its call), so every question about one call lands in one split, and an item
keeps its split in every later version.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from biocurate.catalog import Catalog, load_catalog
from biocurate.config import Config
from biocurate.hashing import canonical_json, content_hash, sha256_bytes
from biocurate.review import resolved_verdicts
from biocurate.sampling import unit
from biocurate.store import utcnow
from biocurate.version import code_version

SPLITS = ("train", "validation", "test")
SYSTEM_PROMPT = ("You are a biomedical research assistant. Answer the user's question by calling "
                 "exactly one of the available tools with the right arguments.")


@dataclass
class PublishResult:
    version_id: str | None
    path: Path | None
    counts: dict = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    message: str = ""

    def lines(self) -> list[str]:
        out = [self.message]
        out += [f"  {split}: {n}" for split, n in self.counts.get("splits", {}).items()]
        out += [f"  not exported, {reason}: {n}" for reason, n in self.refused.items()]
        return out


def split_of(group_key: str, config: Config) -> str:
    u = unit(config.publish.split_seed, group_key)
    if u < config.publish.train:
        return "train"
    if u < config.publish.train + config.publish.validation:
        return "validation"
    return "test"


def accepted_items(config: Config, con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, dict[str, int]]:
    """Items a human accepted (edited ones with the edited, re-checked text) and why others are not."""
    verdicts = resolved_verdicts(config, con).select("query_id", "state")
    con.register("_verdicts", verdicts)
    try:
        refused = dict(con.execute(
            "select 'review ' || state, count(*) from _verdicts where state not in ('accepted', 'edited') group by all"
        ).fetchall())
        refused["not reviewed yet (survivor not pushed)"] = con.execute(
            "select count(*) from survivors where query_id not in (select query_id from review_tasks)"
        ).fetchall()[0][0]
        items = con.execute(
            """
            with edits as (
                select parent_query_id, arg_max(query_id, created_at) as edit_id
                from queries where generator = 'human_edit' group by parent_query_id
            )
            select v.query_id as item_id, v.state, q.call_id,
                   case when v.state = 'edited' then e_q.text else q.text end as user_query,
                   v.state = 'edited' and (e.edit_id is null or e.edit_id not in (select query_id from survivors))
                       as edit_unusable,
                   c.function, c.arguments, c.database, c.tool_group as tool, c.category, c.entity_id,
                   o.text as observation, r.upstream_release
            from _verdicts v
            join queries q on q.query_id = v.query_id
            join candidate_calls c on c.call_id = q.call_id
            join observations o on o.observation_id = q.observation_id
            join api_responses r on r.response_id = o.response_id
            left join edits e on e.parent_query_id = v.query_id
            left join queries e_q on e_q.query_id = e.edit_id
            where v.state in ('accepted', 'edited')
            order by v.query_id
            """
        ).pl()
    finally:
        con.unregister("_verdicts")
    unusable = items.filter(pl.col("edit_unusable")).height
    if unusable:
        refused["edited question failed quality checks"] = unusable
    return items.filter(~pl.col("edit_unusable")), {k: v for k, v in refused.items() if v}


def lf_tool(schema: dict) -> dict:
    """LLaMA-Factory and the published dataset list tools without the OpenAI wrapper."""
    return schema["function"]


def distractors(catalog: Catalog, gold: str, item_id: str, k: int) -> list[str]:
    """k other tools, deterministic per item, from the same database first."""
    database = catalog[gold].database
    others = sorted((t for t in catalog if t.name != gold),
                    key=lambda t: (t.database != database, unit(item_id, t.name)))
    return [t.name for t in others[:k]]


def records(items: pl.DataFrame, catalog: Catalog, config: Config) -> list[dict]:
    out = []
    for row in items.iter_rows(named=True):
        call = {"name": row["function"], "arguments": json.loads(row["arguments"])}
        names = [row["function"]] + distractors(catalog, row["function"], row["item_id"],
                                                config.publish.distractor_tools)
        names.sort(key=lambda n: unit("order", row["item_id"], n))  # gold is not always first
        out.append({**row, "function_calling": call, "tool_names": names,
                    "split": split_of(row["call_id"], config), "group_key": row["call_id"]})
    return out


def write_formats(folder: Path, recs: list[dict], catalog: Catalog, version_id: str) -> list[str]:
    """Every export format; returns the relative paths written."""
    written = []

    def dump(rel: str, data, jsonl: bool = False) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if jsonl:
            path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in data))
        else:
            path.write_text(json.dumps(data, ensure_ascii=False, indent=1))
        written.append(rel)

    dataset_info = {}
    for split in SPLITS:
        part = [r for r in recs if r["split"] == split]
        dump(f"biotool/{split}.json", [
            {"user_query": r["user_query"], "function_calling": r["function_calling"],
             "observation": r["observation"], "database": r["database"], "tool": r["tool"]} for r in part])
        dump(f"sharegpt/{split}.json", [
            {"conversations": [
                {"from": "human", "value": r["user_query"]},
                {"from": "function_call", "value": json.dumps(r["function_calling"], ensure_ascii=False)},
                {"from": "observation", "value": r["observation"]}],
             "tools": json.dumps([lf_tool(catalog[n].schema()) for n in r["tool_names"]], ensure_ascii=False),
             "system": SYSTEM_PROMPT} for r in part])
        dataset_info[f"biocurate_{version_id}_{split}"] = {
            "file_name": f"{split}.json", "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}
        dump(f"openai/{split}.jsonl", [
            {"messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": r["user_query"]},
                {"role": "assistant", "tool_calls": [{
                    "id": "call_" + r["item_id"][:12], "type": "function",
                    "function": {"name": r["function"], "arguments": json.dumps(r["function_calling"]["arguments"])}}]}],
             "tools": [catalog[n].schema() for n in r["tool_names"]]} for r in part], jsonl=True)
        frame = pl.DataFrame([{k: r[k] for k in ("item_id", "call_id", "group_key", "split", "user_query", "function",
                                                 "arguments", "observation", "database", "tool", "category")}
                              for r in part],
                             schema={k: pl.String for k in ("item_id", "call_id", "group_key", "split", "user_query",
                                                            "function", "arguments", "observation", "database",
                                                            "tool", "category")})
        (folder / "parquet").mkdir(exist_ok=True)
        frame.write_parquet(folder / f"parquet/{split}.parquet")
        written.append(f"parquet/{split}.parquet")
    dump("sharegpt/dataset_info.json", dataset_info)
    used = sorted({r["function"] for r in recs})
    dump("tools.json", catalog.tools_json(used))
    dump("function_mapping.json", catalog.function_mapping(used))
    return written


def dataset_card(version_id: str, parent: str | None, counts: dict, config: Config, con) -> str:
    generators = con.execute("select distinct generator, model, prompt_version from queries order by all").fetchall()
    judges = con.execute("select distinct judge, model from judgments order by all").fetchall()
    lines = [
        f"# biocurate dataset {version_id}", "",
        "Human-verified biomedical tool-calling data: natural-language questions paired with the NCBI, "
        "Ensembl or UniProt API call that answers them and a compact observation of the response.", "",
        f"- parent version: {parent or 'none'}",
        f"- code version: {code_version()}", f"- config hash: {config.config_hash()}",
        f"- items: {counts['items']} ({', '.join(f'{k} {v}' for k, v in counts['splits'].items())})",
        "- question generators: " + "; ".join(f"{g} / {m} / {p}" for g, m, p in generators),
        "- judges: " + "; ".join(f"{j} / {m}" for j, m in judges), "",
        "## Provenance",
        "Every item was accepted by a human reviewer in Label Studio. Questions written by the offline "
        "template generator (`generator = template`) are recorded as such; observations are summaries "
        "built from stored raw responses (see `api_responses` in the store).", "",
        "## Limitations",
        "- Template-generated questions are less varied than human or LLM questions.",
        "- Responses recorded from a demo snapshot may include illustrative bodies (see the snapshot index).",
        "- Upstream databases change every release; observations reflect the release noted in the manifest.", "",
        "## Counts per database", "",
        "| database | items |", "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in counts["databases"].items()],
    ]
    return "\n".join(lines) + "\n"


def publish(config: Config, con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> PublishResult:
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    items, refused = accepted_items(config, con)
    if items.is_empty():
        return PublishResult(None, None, refused=refused, message="nothing to publish: no human-accepted items yet")
    recs = records(items, catalog, config)
    digest = content_hash([(r["item_id"], r["user_query"], r["function_calling"], r["observation"], r["split"])
                           for r in recs])
    latest = con.execute("select version_id, content_hash from dataset_versions order by version_id desc limit 1").fetchall()
    if latest and latest[0][1] == digest:
        return PublishResult(latest[0][0], None, refused=refused,
                             message=f"nothing changed since {latest[0][0]}: no new version written")
    out_dir = config.path(config.publish.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    known = {v for (v,) in con.execute("select version_id from dataset_versions").fetchall()}
    for stale in out_dir.iterdir():
        # Leftovers of an interrupted publish: a temp folder, or a folder never recorded.
        if stale.name.startswith(".tmp-") or (stale.is_dir() and stale.name not in known):
            shutil.rmtree(stale)
    number = 1 + max((int(v[1:]) for v in known), default=0)
    version_id, parent = f"v{number:04d}", (latest[0][0] if latest else None)
    tmp = out_dir / f".tmp-{version_id}"
    tmp.mkdir()
    files = write_formats(tmp, recs, catalog, version_id)
    counts = {
        "items": len(recs),
        "splits": {s: sum(r["split"] == s for r in recs) for s in SPLITS},
        "databases": dict(sorted(pl.Series([r["database"] for r in recs]).value_counts().iter_rows())),
        "tools": dict(sorted(pl.Series([r["tool"] for r in recs]).value_counts().iter_rows())),
        "categories": dict(sorted(pl.Series([r["category"] for r in recs]).value_counts().iter_rows())),
    }
    (tmp / "README.md").write_text(dataset_card(version_id, parent, counts, config, con))
    files.append("README.md")
    manifest = {
        "version_id": version_id, "parent": parent, "created_at": utcnow().isoformat() + "Z",
        "code_version": code_version(), "config_hash": config.config_hash(),
        "config": config.model_dump(mode="json", include={"publish", "synthesis", "quality", "sample"}),
        "content_hash": digest, "counts": counts,
        "upstream_releases": sorted({r["upstream_release"] for r in recs if r["upstream_release"]}),
        "files": {rel: sha256_bytes((tmp / rel).read_bytes()) for rel in sorted(files)},
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
    final = out_dir / version_id
    tmp.rename(final)
    con.execute("begin transaction")
    con.execute("insert into dataset_versions values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [version_id, parent, digest, utcnow(), code_version(), config.config_hash(), str(final),
                 json.dumps(counts), run_id])
    frame = pl.DataFrame([{"version_id": version_id, "item_id": r["item_id"], "call_id": r["call_id"],
                           "split": r["split"], "group_key": r["group_key"], "user_query": r["user_query"],
                           "function_calling": canonical_json(r["function_calling"]),
                           "observation": r["observation"], "database": r["database"], "tool": r["tool"]}
                          for r in recs])
    con.register("_items", frame)
    con.execute("insert into dataset_items select * from _items")
    con.unregister("_items")
    con.execute("commit")
    return PublishResult(version_id, final, counts, refused, f"published {version_id} ({len(recs)} items) at {final}")
