"""Publish: human-accepted items -> an immutable, documented, reproducible dataset version.

Only queries a reviewer accepted (or accepted with an edit, exported with the edited text once
that text passed the quality checks) are exported; every other query is counted under the
reason it was left out. A version folder is written under a temporary name, checked, recorded
in ``dataset_versions``/``dataset_items`` and renamed only when complete, inside one store
transaction: an interrupted publish leaves no version behind, and the next one clears its
leftovers. Publishing unchanged content says so and writes nothing.

Splits. A *group* never straddles splits: every question about one call, or (``group_by =
"entity"``) every call about one entity. An item keeps the split it had in the first version
that held it, and a new item joining a group inherits the group's split, so a test item never
reappears in a later training set. Only groups never published before are assigned: within
their (database, tool) stratum, in the order of a hash of their key, each takes the next point
of a golden-ratio (low-discrepancy) sequence started at a hash of the stratum; the point's
position in [0, 1) picks the split by the configured ratios. Every prefix of that sequence
fills the splits close to the ratios, so each stratum is balanced however few groups it has
and however many versions added them. The trade-off against assigning by hash alone
(``stratify = false``): a new group's split depends on how many groups of its stratum came
before it, i.e. on the publishing history, not only on its key. Stability does not suffer,
since a published assignment is never recomputed.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import polars as pl

from biocurate.catalog import Catalog, load_catalog
from biocurate.config import Config
from biocurate.errors import BiocurateError
from biocurate.hashing import canonical_json
from biocurate.review import resolved_verdicts
from biocurate.sampling import unit
from biocurate.store import utcnow
from biocurate.version import code_version

SPLITS = ("train", "validation", "test")
GOLDEN = (math.sqrt(5) - 1) / 2
VERSION_NAME = re.compile(r"^v\d{4,}$")

# Why a query is not exported; the order is the order of the report.
NOT_CHECKED = "not yet quality-checked"
FAILED_QC = "failed quality checks"
NOT_PUSHED = "not yet reviewed (not pushed to Label Studio)"
PENDING = "review pending (no annotation yet)"
REJECTED = "rejected by a reviewer"
CONFLICTING = "reviewers disagree (conflicting)"
ACCEPTED_FAILS_QC = "accepted, but fails the current quality checks"
CALL_EDITED = "reviewer changed the call (needs re-execution)"
EDIT_NOT_CHECKED = "edited question not yet quality-checked"
EDIT_FAILED_QC = "edited question failed quality checks"
NOT_IN_CATALOG = "function no longer in the catalog"
MISSING_ROWS = "call or observation missing from the store"
DRIFT_HELD = "changed upstream since published (drift check): awaiting a new review"
REASONS = (NOT_CHECKED, FAILED_QC, NOT_PUSHED, PENDING, REJECTED, CONFLICTING, ACCEPTED_FAILS_QC,
           CALL_EDITED, EDIT_NOT_CHECKED, EDIT_FAILED_QC, DRIFT_HELD, NOT_IN_CATALOG, MISSING_ROWS)


class PublishError(BiocurateError):
    pass


@dataclass
class PublishResult:
    version_id: str | None
    path: Path | None
    counts: dict = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    message: str = ""
    changes: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [self.message]
        out += [f"  {split}: {n}" for split, n in self.counts.get("splits", {}).items()]
        if self.changes:
            out.append("  since parent: " + ", ".join(f"{k} {v}" for k, v in self.changes.items()))
        out += [f"  not exported, {reason}: {n}" for reason, n in self.refused.items()]
        return out


# ---------------------------------------------------------------------------------------------
# Which queries are exported, with which text, and why the others are not

SELECTION_SQL = """
with latest_annotations as (
    select * from annotations
    qualify row_number() over (partition by ls_annotation_id order by updated_at desc, pulled_at desc) = 1
),
call_edits as (
    select query_id, arg_max(edited_call, updated_at) as edited_call
    from latest_annotations where verdict = 'accept_with_edit' group by query_id
),
edits as (
    select parent_query_id as query_id, arg_max(query_id, created_at) as edit_id
    from queries where parent_query_id is not null group by parent_query_id
),
checked as (select distinct item_id as query_id from qc_results where item_kind = 'query'),
alive as (select query_id from survivors)
select q.query_id, q.text, v.state, c.function, c.arguments,
       ck.query_id is not null as checked,
       s.query_id is not null as survives,
       e.edit_id, eq.text as edit_text,
       ec.query_id is not null as edit_checked,
       es.query_id is not null as edit_survives,
       ce.edited_call
from queries q
join candidate_calls c on c.call_id = q.call_id
left join _verdicts v on v.query_id = q.query_id
left join checked ck on ck.query_id = q.query_id
left join alive s on s.query_id = q.query_id
left join edits e on e.query_id = q.query_id
left join queries eq on eq.query_id = e.edit_id
left join checked ec on ec.query_id = e.edit_id
left join alive es on es.query_id = e.edit_id
left join call_edits ce on ce.query_id = q.query_id
where q.parent_query_id is null
order by q.query_id
"""

DETAIL_SQL = """
with judge as (
    select query_id, judge, model, verdict, score
    from judgments
    qualify row_number() over (partition by query_id order by created_at desc, judgment_id) = 1
)
select ch.item_id, ch.user_query, ch.text_query_id, ch.state, q.call_id, c.function, c.arguments,
       c.database, c.tool_group as tool, c.category, c.entity_id, o.text as observation,
       r.upstream_release, r.transport, tq.generator, tq.model as generator_model, tq.prompt_version,
       j.judge, j.model as judge_model, j.verdict as judge_verdict
from _chosen ch
join queries q on q.query_id = ch.item_id
join candidate_calls c on c.call_id = q.call_id
join observations o on o.observation_id = q.observation_id
left join api_responses r on r.response_id = o.response_id
left join queries tq on tq.query_id = ch.text_query_id
left join judge j on j.query_id = ch.item_id
order by ch.item_id
"""


def _call_changed(edited_call: str | None, function: str, arguments: str) -> bool:
    """Did the reviewer's edited call differ from the call that was executed?"""
    if edited_call is None:
        return False
    try:
        edited = json.loads(edited_call)
    except json.JSONDecodeError:
        return True
    if isinstance(edited, str):  # stored as typed when it was not JSON
        try:
            edited = json.loads(edited)
        except json.JSONDecodeError:
            return bool(edited.strip())
    if not isinstance(edited, dict):
        return True
    original = {"name": function, "arguments": json.loads(arguments)}
    return canonical_json({"name": edited.get("name"), "arguments": edited.get("arguments")}) != canonical_json(original)


def _verdict(row: dict) -> tuple[str | None, str | None]:
    """(reason it is not exported, None) or (None, id of the query whose text is exported)."""
    state = row["state"]
    if state is None:
        if not row["checked"]:
            return NOT_CHECKED, None
        return (FAILED_QC if not row["survives"] else NOT_PUSHED), None
    if state == "pending":
        return PENDING, None
    if state == "rejected":
        return REJECTED, None
    if state == "conflicting":
        return CONFLICTING, None
    if state == "accepted":
        return (None, row["query_id"]) if row["survives"] else (ACCEPTED_FAILS_QC, None)
    if state == "edited":
        if _call_changed(row["edited_call"], row["function"], row["arguments"]):
            return CALL_EDITED, None
        if row["edit_id"] is None:  # accepted with an unchanged (or empty) question
            return (None, row["query_id"]) if row["survives"] else (ACCEPTED_FAILS_QC, None)
        if not row["edit_checked"]:
            return EDIT_NOT_CHECKED, None
        if not row["edit_survives"]:
            return EDIT_FAILED_QC, None
        return None, row["edit_id"]
    return f"review state {state}", None


def select_items(config: Config, con: duckdb.DuckDBPyConnection,
                 catalog: Catalog | None = None) -> tuple[pl.DataFrame, dict[str, int]]:
    """The exportable items (one row each, with the text to export) and the count per refusal reason.

    Every query that is not itself a reviewer's edit is either exported or counted under one
    reason, so exported + refused = all such queries.
    """
    verdicts = resolved_verdicts(config, con).select("query_id", "state")
    con.register("_verdicts", verdicts)
    try:
        rows = con.sql(SELECTION_SQL).pl().to_dicts()
    finally:
        con.unregister("_verdicts")
    refused: Counter[str] = Counter()
    chosen = []
    # Drift watch (biocurate.drift): items whose call answers differently now wait for a new review.
    held = {q for (q,) in con.execute("select query_id from drift_open_holds").fetchall()}
    for row in rows:
        reason, text_id = _verdict(row)
        if reason is None and catalog is not None and row["function"] not in catalog:
            reason = NOT_IN_CATALOG
        if reason is None and row["query_id"] in held:
            reason = DRIFT_HELD
        if reason:
            refused[reason] += 1
            continue
        text = row["edit_text"] if text_id != row["query_id"] else row["text"]
        chosen.append({"item_id": row["query_id"], "user_query": text, "text_query_id": text_id,
                       "state": row["state"]})
    frame = pl.DataFrame(chosen, schema={"item_id": pl.String, "user_query": pl.String,
                                         "text_query_id": pl.String, "state": pl.String})
    con.register("_chosen", frame)
    try:
        items = con.sql(DETAIL_SQL).pl()
    finally:
        con.unregister("_chosen")
    if items.height < frame.height:  # cannot happen through the stages; say so rather than drop silently
        refused[MISSING_ROWS] += frame.height - items.height
    order = {r: i for i, r in enumerate(REASONS)}
    return items, dict(sorted(refused.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


# ---------------------------------------------------------------------------------------------
# Splits

def group_key(call_id: str, entity_id: str | None, group_by: str) -> str:
    if group_by == "entity" and entity_id:
        return f"entity:{entity_id}"
    return f"call:{call_id}"


def split_at(x: float, config: Config) -> str:
    """The split whose share of [0, 1) holds x (train, then validation, then test)."""
    p = config.publish
    if x < p.train:
        return "train"
    if x < p.train + p.validation:
        return "validation"
    return "test" if p.test > 0 else ("validation" if p.validation > 0 else "train")


def _stratum(rows: list[tuple[str, str]]) -> tuple[str, str]:
    """The most common (database, tool) among a group's items; ties go to the first by name."""
    counts = Counter(rows)
    return min(counts, key=lambda s: (-counts[s], s))


@dataclass
class SplitPlan:
    split: dict[str, str]          # item_id -> split
    group: dict[str, str]          # item_id -> group key
    inherited_items: int = 0       # items whose split came from an earlier version (own or group's)
    new_groups: int = 0


def assign_splits(config: Config, con: duckdb.DuckDBPyConnection, items: pl.DataFrame) -> SplitPlan:
    """Every item's split: inherited from earlier versions where known, else assigned (see module doc)."""
    group_by, seed = config.publish.group_by, config.publish.split_seed
    # Each item ever published, with the split of the first version that held it.
    prior = con.execute(
        """
        select d.item_id, d.split, d.database, d.tool, d.call_id, c.entity_id
        from dataset_items d left join candidate_calls c on c.call_id = d.call_id
        qualify row_number() over (partition by d.item_id order by length(d.version_id), d.version_id) = 1
        """
    ).fetchall()
    prior_split: dict[str, str] = {}
    group_prior: dict[str, set[str]] = {}
    prior_strata: dict[str, list[tuple[str, str]]] = {}
    for item_id, split, database, tool, call_id, entity_id in prior:
        g = group_key(call_id, entity_id, group_by)
        prior_split[item_id] = split
        group_prior.setdefault(g, set()).add(split)
        prior_strata.setdefault(g, []).append((database, tool))
    conflicts = {g: s for g, s in group_prior.items() if len(s) > 1}
    if conflicts:
        example, splits = next(iter(sorted(conflicts.items())))
        raise PublishError(
            f"publish.group_by = {group_by!r} would merge items that earlier versions put in different splits "
            f"({len(conflicts)} groups, e.g. {example} in {sorted(splits)}): stable splits cannot hold both. "
            "Keep the grouping these versions were published with, or start a new lineage in a new store."
        )

    plan = SplitPlan({}, {})
    members: dict[str, list[dict]] = {}
    for row in items.select("item_id", "call_id", "entity_id", "database", "tool").iter_rows(named=True):
        g = group_key(row["call_id"], row["entity_id"], group_by)
        plan.group[row["item_id"]] = g
        members.setdefault(g, []).append(row)
    fresh: dict[tuple[str, str], list[str]] = {}
    for g, rows in members.items():
        known = group_prior.get(g)
        if known:
            (split,) = known
            for row in rows:
                plan.split[row["item_id"]] = split
            plan.inherited_items += len(rows)
        else:
            stratum = _stratum([(r["database"], r["tool"]) for r in rows]) if config.publish.stratify else ("", "")
            fresh.setdefault(stratum, []).append(g)
    # How many groups each stratum already holds: the new ones continue its sequence.
    taken = Counter(_stratum(strata) if config.publish.stratify else ("", "")
                    for strata in prior_strata.values())
    for stratum, groups in sorted(fresh.items()):
        start = unit(seed, "stratum", *stratum)
        for index, g in enumerate(sorted(groups, key=lambda g: (unit(seed, "rank", g), g)), start=taken[stratum]):
            x = (start + index * GOLDEN) % 1.0 if config.publish.stratify else unit(seed, g)
            for row in members[g]:
                plan.split[row["item_id"]] = split_at(x, config)
        plan.new_groups += len(groups)
    # An item published before keeps its own first split (equal to its group's, checked above).
    for item_id, split in prior_split.items():
        if item_id in plan.split:
            assert plan.split[item_id] == split, (item_id, split, plan.split[item_id])
    return plan


# ---------------------------------------------------------------------------------------------
# Records and formats

class Distractors:
    """k other tools per item, deterministic: the same database first, then the others.

    Each gold tool has a fixed hash-ordered ring of candidates; an item starts reading the ring at
    a hash of its id, so different items about one tool see different distractors, in O(k).
    """

    def __init__(self, catalog: Catalog, k: int, seed: str):
        self.catalog, self.k, self.seed = catalog, k, seed
        self.rings: dict[str, tuple[list[str], list[str]]] = {}

    def ring(self, gold: str) -> tuple[list[str], list[str]]:
        if gold not in self.rings:
            database = self.catalog[gold].database
            order = lambda name: (unit(self.seed, gold, name), name)  # noqa: E731
            same = sorted((t.name for t in self.catalog if t.name != gold and t.database == database), key=order)
            other = sorted((t.name for t in self.catalog if t.database != database), key=order)
            self.rings[gold] = (same, other)
        return self.rings[gold]

    def __call__(self, gold: str, item_id: str) -> list[str]:
        """The gold tool plus its distractors, gold at a hash-chosen position."""
        # One digest per item gives the three draws (start in each ring, gold's position).
        digest = hashlib.sha256(f"{self.seed}\x1f{item_id}".encode()).digest()
        draws = [int.from_bytes(digest[i:i + 8], "big") / 2**64 for i in (0, 8, 16)]
        picked: list[str] = []
        for ring, draw in zip(self.ring(gold), draws):
            need = min(self.k - len(picked), len(ring))
            if need <= 0:
                break
            start = int(draw * len(ring))
            picked += [ring[(start + i) % len(ring)] for i in range(need)]
        position = int(draws[2] * (len(picked) + 1))
        return picked[:position] + [gold] + picked[position:]


def records(items: pl.DataFrame, plan: SplitPlan, catalog: Catalog, config: Config) -> list[dict]:
    distract = Distractors(catalog, config.publish.distractor_tools, config.publish.split_seed)
    out = []
    for row in items.iter_rows(named=True):
        call = {"name": row["function"], "arguments": json.loads(row["arguments"])}
        out.append({**row, "function_calling": call, "tool_names": distract(row["function"], row["item_id"]),
                    "split": plan.split[row["item_id"]], "group_key": plan.group[row["item_id"]]})
    return out


def lf_tool(schema: dict) -> dict:
    """LLaMA-Factory and the published dataset list tools without the OpenAI wrapper."""
    return schema["function"]


PARQUET_COLUMNS = {
    "version_id": pl.String, "item_id": pl.String, "call_id": pl.String, "split": pl.String,
    "group_key": pl.String, "user_query": pl.String, "function_calling": pl.String, "observation": pl.String,
    "database": pl.String, "tool": pl.String, "function": pl.String, "arguments": pl.String,
    "category": pl.String, "entity_id": pl.String, "upstream_release": pl.String, "generator": pl.String,
    "review_state": pl.String,
}


def write_formats(folder: Path, recs: list[dict], catalog: Catalog, version_id: str, config: Config) -> list[str]:
    """Every export format for the non-empty splits; returns the relative paths written.

    A split without items gets no files (the ``datasets`` loader refuses an empty file).
    """
    written: list[str] = []
    system = config.publish.system_prompt

    def dump(rel: str, data: Any, jsonl: bool = False) -> None:
        # Records are written as they are made (a generator): a split's file is never one string
        # in memory (at 100k items the ShareGPT and OpenAI files are 600 MB each).
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            if jsonl:
                out.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in data)
            elif not isinstance(data, dict):  # one record a line: readable, and 10x faster than indent
                out.write("[\n")
                out.writelines((",\n" if i else "") + json.dumps(d, ensure_ascii=False) for i, d in enumerate(data))
                out.write("\n]\n")
            else:
                out.write(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
        written.append(rel)

    # Each tool's schema is encoded once; records splice the encoded text (same bytes as json.dumps).
    encoded: dict[str, tuple[str, str]] = {}

    def tools_text(names: list[str], wrapped: bool) -> str:
        for name in names:
            if name not in encoded:
                schema = catalog[name].schema()
                encoded[name] = (json.dumps(schema, ensure_ascii=False), json.dumps(lf_tool(schema), ensure_ascii=False))
        return "[" + ", ".join(encoded[n][0 if wrapped else 1] for n in names) + "]"

    dataset_info = {}
    for split in SPLITS:
        part = sorted((r for r in recs if r["split"] == split), key=lambda r: r["item_id"])
        if not part:
            continue
        dump(f"biotool/{split}.json", (
            {"user_query": r["user_query"], "function_calling": r["function_calling"],
             "observation": r["observation"], "database": r["database"], "tool": r["tool"]} for r in part))
        # LLaMA-Factory's sharegpt converter needs human/observation at odd and gpt/function_call at
        # even positions and an even number of turns; the last turn is the training target. The
        # reviewed unit is question -> call, so the conversation ends with the call (see the card).
        dump(f"sharegpt/{split}.json", (
            {"conversations": [
                {"from": "human", "value": r["user_query"]},
                {"from": "function_call", "value": json.dumps(r["function_calling"], ensure_ascii=False)}],
             "system": system,
             "tools": tools_text(r["tool_names"], wrapped=False)}
            for r in part))
        dataset_info[f"biocurate_{version_id}_{split}"] = {
            "file_name": f"{split}.json", "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                     "function_tag": "function_call", "observation_tag": "observation", "assistant_tag": "gpt"}}
        (folder / "openai").mkdir(exist_ok=True)
        with (folder / f"openai/{split}.jsonl").open("w") as openai_file:
            for r in part:
                messages = [
                    {"role": "system", "content": system},
                    {"role": "user", "content": r["user_query"]},
                    {"role": "assistant", "tool_calls": [{
                        "id": "call_" + r["item_id"][:12], "type": "function",
                        "function": {"name": r["function"],
                                     "arguments": json.dumps(r["function_calling"]["arguments"], ensure_ascii=False)}}]}]
                openai_file.write(f'{{"messages": {json.dumps(messages, ensure_ascii=False)}, '
                                  f'"tools": {tools_text(r["tool_names"], wrapped=True)}, "parallel_tool_calls": false}}\n')
        written.append(f"openai/{split}.jsonl")
        frame = pl.DataFrame(
            [{"version_id": version_id, **{k: r.get(k) for k in PARQUET_COLUMNS if k != "version_id"},
              "function_calling": canonical_json(r["function_calling"]), "review_state": r["state"]}
             for r in part],
            schema=PARQUET_COLUMNS)
        (folder / "parquet").mkdir(exist_ok=True)
        frame.write_parquet(folder / f"parquet/{split}.parquet")
        written.append(f"parquet/{split}.parquet")
    dump("sharegpt/dataset_info.json", dataset_info)
    used = sorted({r["function"] for r in recs})
    dump("tools.json", catalog.tools_json(used))
    dump("function_mapping.json", catalog.function_mapping(used))
    return written


def write_plots(folder: Path, recs: list[dict]) -> list[str]:
    """Bar charts (PNG) of items per split, and per database, tool and category stacked by split."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    colours = {"train": "#4C72B0", "validation": "#DD8452", "test": "#55A868"}
    written = []
    (folder / "plots").mkdir(exist_ok=True)
    for column in ("split", "database", "tool", "category"):
        counts = Counter((r[column], r["split"]) for r in recs)
        labels = SPLITS if column == "split" else sorted({r[column] for r in recs})
        labels = [label for label in labels if any(counts[(label, s)] for s in SPLITS)]
        height = max(2.5, 0.28 * len(labels) + 1.2)
        fig, ax = plt.subplots(figsize=(7, height))
        left = [0] * len(labels)
        for split in SPLITS:
            values = [counts[(label, split)] for label in labels]
            ax.barh(labels, values, left=left, color=colours[split], label=split)
            left = [a + b for a, b in zip(left, values)]
        ax.invert_yaxis()
        ax.set_xlabel("items")
        ax.set_title(f"items per {column}")
        if column != "split":
            ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        rel = f"plots/{column}.png"
        fig.savefig(folder / rel, dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(rel)
    return written


# ---------------------------------------------------------------------------------------------
# Counts, provenance, upstream releases

def _count(recs: list[dict], column: str) -> dict[str, int]:
    return dict(sorted(Counter(r[column] for r in recs).items()))


def counts_of(recs: list[dict]) -> dict:
    def block(part: list[dict]) -> dict:
        return {"items": len(part), "groups": len({r["group_key"] for r in part}),
                "calls": len({r["call_id"] for r in part}),
                "databases": _count(part, "database"), "tools": _count(part, "tool"),
                "categories": _count(part, "category"), "functions": _count(part, "function")}

    overall = block(recs)
    overall["splits"] = {s: sum(r["split"] == s for r in recs) for s in SPLITS}
    overall["by_split"] = {s: block([r for r in recs if r["split"] == s]) for s in SPLITS}
    return overall


# Info endpoints whose bodies name the upstream release: url pattern -> (database, parser).
def _ensembl_data(body: bytes) -> list[str]:
    return [str(r) for r in json.loads(body).get("releases", [])]


def _ensembl_software(body: bytes) -> list[str]:
    release = json.loads(body).get("release")
    return [str(release)] if release is not None else []


def _ensembl_genomes(body: bytes) -> list[str]:
    version = json.loads(body).get("version")
    return [f"Ensembl Genomes {version}"] if version is not None else []


def _ncbi_einfo(body: bytes) -> list[str]:
    text = body.decode("utf-8", "replace")
    db = re.search(r"<DbInfo>\s*<DbName>([^<]+)</DbName>", text)
    build = re.search(r"<DbBuild>([^<]+)</DbBuild>", text)
    return [f"{db.group(1)}: {build.group(1)}"] if db and build else []


RELEASE_ENDPOINTS: list[tuple[re.Pattern, str, Callable[[bytes], list[str]]]] = [
    (re.compile(r"rest\.ensembl\.org/info/data/?(\?|$)"), "Ensembl", _ensembl_data),
    (re.compile(r"rest\.ensembl\.org/info/software/?(\?|$)"), "Ensembl", _ensembl_software),
    (re.compile(r"rest\.ensembl\.org/info/eg_version/?(\?|$)"), "Ensembl", _ensembl_genomes),
    (re.compile(r"eutils\.ncbi\.nlm\.nih\.gov/entrez/eutils/einfo\.fcgi"), "NCBI", _ncbi_einfo),
]


def upstream_releases(con: duckdb.DuckDBPyConnection, recs: list[dict]) -> dict:
    """Per database: the release each exported observation came from (as recorded at execute time
    from the API's headers), and the releases the APIs' own info endpoints reported in this store."""
    out: dict[str, dict] = {}
    for r in recs:
        entry = out.setdefault(r["database"], {"items_by_release": Counter(), "reported_by_api": []})
        entry["items_by_release"][r["upstream_release"] or "not reported"] += 1
    rows = con.execute(
        "select url, body, transport, fetched_at from api_responses "
        "where outcome = 'ok' and body is not null and (url like '%/info/%' or url like '%einfo.fcgi%') "
        "order by fetched_at, url"
    ).fetchall()
    seen = set()
    for url, body, transport, fetched_at in rows:
        for pattern, database, parse in RELEASE_ENDPOINTS:
            if not pattern.search(url):
                continue
            try:
                releases = parse(gzip.decompress(body))
            except (OSError, ValueError, AttributeError):
                continue
            for release in releases:
                if (database, release, url) in seen:
                    continue
                seen.add((database, release, url))
                entry = out.setdefault(database, {"items_by_release": Counter(), "reported_by_api": []})
                entry["reported_by_api"].append({"release": release, "source": url, "transport": transport,
                                                 "fetched_at": str(fetched_at)})
    return {db: {"items_by_release": dict(sorted(e["items_by_release"].items())),
                 "reported_by_api": e["reported_by_api"]} for db, e in sorted(out.items())}


def provenance(config: Config, con: duckdb.DuckDBPyConnection, recs: list[dict]) -> dict:
    """Who wrote, judged and reviewed the exported items (annotators counted, never named)."""
    def tally(key: Callable[[dict], tuple]) -> list[dict]:
        counts = Counter(key(r) for r in recs)
        return [{"name": " / ".join(str(p) for p in k if p), "items": n} for k, n in sorted(counts.items(), key=str)]

    def writer(r: dict) -> tuple:
        if r["generator"] == "human_edit":
            return ("reviewer edit", "")
        return ("offline template generator" if r["generator"] == "template" else r["generator"], r["generator_model"])

    generators = tally(writer)
    prompts: dict[str, set] = {}
    for r in recs:
        prompts.setdefault(" / ".join(p for p in writer(r) if p), set()).add(r["prompt_version"])
    for g in generators:
        g["prompt_versions"] = len(prompts[g["name"]])
    judges = tally(lambda r: (r["judge"] or "no judgment", r["judge_model"] or "", r["judge_verdict"] or ""))
    ids = [r["item_id"] for r in recs]
    con.register("_ids", pl.DataFrame({"query_id": ids}, schema={"query_id": pl.String}))
    try:
        annotators, annotations = con.execute(
            "with latest as (select * from annotations qualify row_number() over "
            "(partition by ls_annotation_id order by updated_at desc, pulled_at desc) = 1) "
            "select count(distinct annotator), count(*) from latest where query_id in (select query_id from _ids)"
        ).fetchall()[0]
        multi, agreeing = con.execute(
            "select count(*), count(*) filter (where not conflicting) from review_status "
            "where annotations >= 2 and query_id in (select query_id from _ids)"
        ).fetchall()[0]
        all_multi, all_agreeing, all_annotators = con.execute(
            "select count(*) filter (where annotations >= 2), "
            "count(*) filter (where annotations >= 2 and not conflicting), "
            "(select count(distinct annotator) from annotations) from review_status"
        ).fetchall()[0]
    finally:
        con.unregister("_ids")
    return {
        "generators": generators,
        "judges": judges,
        "review": {
            "rule": config.review.resolve,
            "annotators": annotators, "annotations": annotations,
            "accepted_as_is": sum(r["text_query_id"] == r["item_id"] for r in recs),
            "accepted_with_edited_question": sum(r["text_query_id"] != r["item_id"] for r in recs),
            "multi_annotated": multi, "agreement": round(agreeing / multi, 4) if multi else None,
            "all_reviewed": {"annotators": all_annotators, "multi_annotated": all_multi,
                             "agreement": round(all_agreeing / all_multi, 4) if all_multi else None},
        },
    }


# ---------------------------------------------------------------------------------------------
# The dataset card

def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def dataset_card(manifest: dict) -> str:
    m, c = manifest, manifest["counts"]
    prov, review = m["provenance"], m["provenance"]["review"]
    split_rows = [(s, c["by_split"][s]["items"], c["by_split"][s]["groups"], c["by_split"][s]["calls"],
                   len(c["by_split"][s]["tools"])) for s in SPLITS]
    agreement = ("n/a (no item had two annotations)" if review["agreement"] is None
                 else f"{review['agreement']:.0%} of {review['multi_annotated']} items")
    changes = m["changes"]
    lines = [
        f"# biocurate dataset {m['version_id']}", "",
        "Human-verified biomedical tool-calling data: natural-language questions paired with the NCBI, "
        "Ensembl or UniProt API call that answers them and a compact observation of the API's response. "
        "Every item was accepted by a human reviewer in Label Studio.", "",
        f"- version: {m['version_id']} (parent: {m['parent'] or 'none'}; created {m['created_at']})",
        f"- items: {c['items']} in {c['groups']} groups, {c['calls']} distinct calls, "
        f"{len(c['functions'])} functions, {len(c['tools'])} tools, {len(c['databases'])} databases",
        f"- since the parent: {changes['added']} added, {changes['removed']} removed, {changes['changed']} changed",
        f"- code version {m['code_version']}, config hash {m['config_hash']}, content hash {m['content_hash']}",
        "",
        "## Files", "",
        *_table(("path", "what"), [
            ("`biotool/<split>.json`", "the published BioTool record format: user_query, function_calling, observation, database, tool"),
            ("`sharegpt/<split>.json`, `sharegpt/dataset_info.json`", "LLaMA-Factory ShareGPT (conversations, system, tools) and its dataset entries"),
            ("`openai/<split>.jsonl`", "OpenAI chat fine-tuning: messages with an assistant tool call, tools"),
            ("`parquet/<split>.parquet`", "every column, for SQL (`biocurate sql --parquet <this folder>`)"),
            ("`tools.json`, `function_mapping.json`", "schemas and database/tool of exactly the functions called"),
            ("`manifest.json`", "counts, sha256 of every file, parent, config, upstream releases, provenance"),
            ("`plots/*.png`", "the distributions below"),
        ]), "",
        "A split without items has no files.", "",
        "## Splits", "",
        f"Ratios train/validation/test {m['splits']['ratios']['train']}/{m['splits']['ratios']['validation']}/"
        f"{m['splits']['ratios']['test']}, grouped by **{m['splits']['group_by']}** (no group is in two splits), "
        + ("stratified by database and tool. " if m['splits']['stratify'] else "assigned by hash of the group key. ")
        + "An item keeps its split in every later version; new groups are assigned once, deterministically "
        f"(seed `{m['splits']['seed']}`). In this version {m['splits']['inherited_items']} items kept or inherited an "
        f"earlier split and {m['splits']['new_groups']} groups were new.", "",
        *_table(("split", "items", "groups", "calls", "tools"), split_rows), "",
        "![items per split](plots/split.png)", "",
        "## Distributions", "",
        "![items per database](plots/database.png)", "",
        "![items per tool](plots/tool.png)", "",
        "![items per category](plots/category.png)", "",
        *_table(("database", "items"), list(c["databases"].items())), "",
        *_table(("category", "items"), list(c["categories"].items())), "",
        "## Provenance", "",
        "Questions were written by:", "",
        *_table(("generator / model", "prompt versions", "items"),
                [(g["name"], g["prompt_versions"], g["items"]) for g in prov["generators"]]), "",
        "Judged (before human review) by:", "",
        *_table(("judge / model / verdict", "items"), [(j["name"], j["items"]) for j in prov["judges"]]), "",
        f"Human review (rule `{review['rule']}`): annotators: {review['annotators']}, annotations on these "
        f"items: {review['annotations']}; {review['accepted_as_is']} accepted as written, "
        f"{review['accepted_with_edited_question']} with a reviewer's edited question (re-checked by the "
        f"quality suite). Agreement on items with two or more annotations: {agreement}.", "",
        "Observations are compact summaries built from the stored raw API responses. Upstream releases "
        "(from the APIs' headers at execute time, and from their info endpoints):", "",
        *_table(("database", "items by release", "reported by the API"), [
            (db, ", ".join(f"{k}: {v}" for k, v in e["items_by_release"].items()),
             ", ".join(sorted({r["release"] for r in e["reported_by_api"]})) or "-")
            for db, e in m["upstream_releases"].items()]), "",
        "## Not exported", "",
        "Queries that were not exported, and why:", "",
        *(_table(("reason", "queries"), list(m["not_exported"].items())) if m["not_exported"] else ["none"]), "",
        "## Limitations", "",
        "- Each item is one question and one call. The ShareGPT and OpenAI records end with the call (the "
        "reviewed unit); the observation is kept in the BioTool and Parquet files, but no natural-language "
        "answer to the question was written or reviewed, so none is included.",
        "- Distractor tools in the ShareGPT/OpenAI records are drawn deterministically, from the same "
        "database first; they are plausible alternatives, not proven wrong answers.",
        "- Questions from the offline template generator are less varied than human or LLM questions.",
        "- Upstream databases change every release; an observation reflects the release it was fetched "
        "from (\"not reported\" when the API did not say). Responses replayed from the demo snapshot may "
        "include illustrative bodies (see the snapshot's index).",
        "- Coverage follows the sampling quotas and seed lists, not the real-world frequency of questions.",
        "",
        "## Loading", "",
        "```python",
        "from datasets import load_dataset",
        "ds = load_dataset(\"json\", data_files={\"train\": \"biotool/train.json\"})",
        "pq = load_dataset(\"parquet\", data_files={\"test\": \"parquet/test.parquet\"})",
        "```", "",
        "LLaMA-Factory: copy `sharegpt/` into your `dataset_dir` (or point `dataset_dir` at it) and use "
        f"`dataset: biocurate_{m['version_id']}_train`. OpenAI: upload `openai/train.jsonl` as a fine-tuning file.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Checks (Great Expectations on the rows recorded in dataset_items)

def split_checks(con: duckdb.DuckDBPyConnection, version_id: str) -> list[str]:
    """GX expectations on one version's ``dataset_items``: no group in two splits, item ids unique,
    splits known, and every item in the split of the first version that held it. [] when all pass."""
    frame = con.execute(
        """
        with first as (
            select item_id, split as first_split from dataset_items
            qualify row_number() over (partition by item_id order by length(version_id), version_id) = 1
        ),
        groups as (
            select group_key, count(distinct split) as splits from dataset_items where version_id = ? group by all
        )
        select d.item_id, d.group_key, d.split, f.first_split, g.splits as group_splits
        from dataset_items d join first f using (item_id) join groups g using (group_key)
        where d.version_id = ?
        """, [version_id, version_id]).df()
    if frame.empty:
        return []
    import logging

    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("dataset_items").add_dataframe_asset("version")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))

    suite = gx.ExpectationSuite(name="dataset_splits", expectations=[
        gxe.ExpectColumnValuesToBeInSet(column="group_splits", value_set=[1]),
        gxe.ExpectColumnValuesToBeUnique(column="item_id"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="split", column_B="first_split"),
    ])
    result = batch.validate(suite, result_format={"result_format": "SUMMARY",
                                                  "unexpected_index_column_names": ["item_id"]})
    problems = []
    for res in result.results:
        if res.exception_info.get("raised_exception"):
            raise RuntimeError(f"split check {res.expectation_config.type} could not run: "
                               f"{res.exception_info.get('exception_message')}")
        if not res.success:
            examples = [row["item_id"] for row in res.result.get("partial_unexpected_index_list") or []][:5]
            problems.append(f"{res.expectation_config.type} {res.expectation_config.kwargs}: "
                            f"{res.result.get('unexpected_count')} items, e.g. {examples}")
    return problems


# ---------------------------------------------------------------------------------------------
# Versions

def _file_sha256(path: Path) -> str:
    """sha256 of a file read in chunks (an export file can be hundreds of MB)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _digest(recs: list[dict], catalog: Catalog, config: Config) -> str:
    """What the exported files depend on: the items, their splits, groups and offered tools, the
    tool specs and the publish settings (not where the files go)."""
    tools = sorted({n for r in recs for n in r["tool_names"]})
    # content_hash([items], tools, settings), fed to the hash one item at a time: the same digest
    # without the whole version as one JSON string in memory (hundreds of MB at 100k items).
    digest = hashlib.sha256(b"[[")
    for i, r in enumerate(recs):
        digest.update((("," if i else "") + canonical_json(
            (r["item_id"], r["user_query"], r["function_calling"], r["observation"], r["split"], r["group_key"],
             r["tool_names"], r["database"], r["tool"], r["category"]))).encode())
    digest.update(("]," + canonical_json({n: catalog[n].spec_hash() for n in tools}) + ","
                   + canonical_json(config.publish.model_dump(mode="json", exclude={"out_dir"})) + "]").encode())
    return digest.hexdigest()[:20]


def _changes(con: duckdb.DuckDBPyConnection, parent: str | None, recs: list[dict]) -> dict[str, int]:
    if parent is None:
        return {"added": len(recs), "removed": 0, "changed": 0}
    before = {item_id: (q, fc, o) for item_id, q, fc, o in con.execute(
        "select item_id, user_query, function_calling, observation from dataset_items where version_id = ?",
        [parent]).fetchall()}
    now = {r["item_id"]: (r["user_query"], canonical_json(r["function_calling"]), r["observation"]) for r in recs}
    return {"added": len(now.keys() - before.keys()), "removed": len(before.keys() - now.keys()),
            "changed": sum(1 for k in now.keys() & before.keys() if now[k] != before[k])}


def _clear_leftovers(out_dir: Path, known: set[str]) -> list[str]:
    """Remove what an interrupted publish left: temp folders, version folders never recorded."""
    removed = []
    for path in out_dir.iterdir():
        if path.is_dir() and (path.name.startswith(".tmp-") or (VERSION_NAME.match(path.name) and path.name not in known)):
            shutil.rmtree(path)
            removed.append(path.name)
    return removed


def publish(config: Config, con: duckdb.DuckDBPyConnection, run_id: str | None = None,
            dry_run: bool = False) -> PublishResult:
    """Export human-accepted items as a new immutable version (or say that nothing changed)."""
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    items, refused = select_items(config, con, catalog)
    if items.is_empty():
        return PublishResult(None, None, refused=refused, message="nothing to publish: no human-accepted items yet")
    plan = assign_splits(config, con, items)
    recs = records(items, plan, catalog, config)
    del items  # the records hold everything from here on (100k items: about 150 MB less)
    digest = _digest(recs, catalog, config)
    known = {v for (v,) in con.execute("select version_id from dataset_versions").fetchall()}
    latest = con.execute(
        "select version_id, content_hash, path from dataset_versions order by length(version_id) desc, version_id desc limit 1").fetchall()
    parent = latest[0][0] if latest else None
    counts = counts_of(recs)
    changes = _changes(con, parent, recs)
    if latest and latest[0][1] == digest:
        note = "" if Path(latest[0][2]).is_dir() else f" (its folder {latest[0][2]} is missing)"
        return PublishResult(parent, None, counts, refused, f"nothing changed since {parent}{note}: no new version written")
    number = 1 + max((int(v[1:]) for v in known), default=0)
    version_id = f"v{number:04d}"
    if dry_run:
        return PublishResult(None, None, counts, refused, f"dry run: would publish {version_id} ({len(recs)} items)",
                             changes)

    out_dir = config.path(config.publish.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(out_dir, known)
    tmp, final = out_dir / f".tmp-{version_id}", out_dir / version_id
    created = utcnow()
    tmp.mkdir()
    renamed = False
    try:
        files = write_formats(tmp, recs, catalog, version_id, config)
        files += write_plots(tmp, recs)
        manifest = {
            "version_id": version_id, "parent": parent, "created_at": created.isoformat(timespec="seconds") + "Z",
            "code_version": code_version(), "config_hash": config.config_hash(),
            "config": config.model_dump(mode="json", exclude={"root", "store"}),
            "content_hash": digest, "counts": counts, "changes": changes,
            "splits": {"group_by": config.publish.group_by, "stratify": config.publish.stratify,
                       "seed": config.publish.split_seed,
                       "ratios": {s: getattr(config.publish, s) for s in SPLITS},
                       "inherited_items": plan.inherited_items, "new_groups": plan.new_groups},
            "not_exported": refused,
            "upstream_releases": upstream_releases(con, recs),
            "provenance": provenance(config, con, recs),
        }
        (tmp / "README.md").write_text(dataset_card(manifest))
        files.append("README.md")
        manifest["files"] = {rel: {"sha256": _file_sha256(tmp / rel), "bytes": (tmp / rel).stat().st_size}
                             for rel in sorted(files)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False, default=str) + "\n")
        for path in tmp.rglob("*"):
            if path.is_file():
                path.chmod(0o444)  # a published version is read-only

        con.execute("begin transaction")
        try:
            con.execute("insert into dataset_versions values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [version_id, parent, digest, created, code_version(), config.config_hash(), str(final),
                         json.dumps(counts), run_id])
            # Column by column (no dict per item): at 100k items the peak of the whole publish.
            frame = pl.DataFrame({"version_id": [version_id] * len(recs),
                                  **{k: [r[k] for r in recs] for k in ("item_id", "call_id", "split", "group_key",
                                                                       "user_query")},
                                  "function_calling": [canonical_json(r["function_calling"]) for r in recs],
                                  **{k: [r[k] for r in recs] for k in ("observation", "database", "tool")}},
                                 schema={k: pl.String for k in ("version_id", "item_id", "call_id", "split",
                                                                "group_key", "user_query", "function_calling",
                                                                "observation", "database", "tool")})
            con.register("_items", frame)
            try:
                con.execute("insert into dataset_items select * from _items")
            finally:
                con.unregister("_items")
                del frame
            problems = split_checks(con, version_id)
            if problems:
                raise PublishError(f"{version_id} failed its split checks, nothing was published: " + "; ".join(problems))
            os.replace(tmp, final)
            renamed = True
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    except BaseException:
        shutil.rmtree(final if renamed else tmp, ignore_errors=True)
        raise
    return PublishResult(version_id, final, counts, refused,
                         f"published {version_id} ({len(recs)} items) at {final}", changes)


# ---------------------------------------------------------------------------------------------
# Comparing versions

@dataclass
class VersionDiff:
    a: str
    b: str
    added: list[dict]
    removed: list[dict]
    changed: list[dict]  # item_id, fields that differ, before and after

    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}


DIFF_FIELDS = ("user_query", "function_calling", "observation", "split", "database", "tool")


def version_items(con: duckdb.DuckDBPyConnection | None, ref: str) -> dict[str, dict]:
    """item_id -> row of a version, by id from the store or from a version folder's Parquet files."""
    folder = Path(ref)
    if folder.is_dir():
        files = sorted((folder / "parquet" if (folder / "parquet").is_dir() else folder).glob("*.parquet"))
        if not files:
            raise PublishError(f"{folder} holds no Parquet files: point at a published version folder")
        frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
        return {r["item_id"]: r for r in frame.select("item_id", *DIFF_FIELDS).to_dicts()}
    if con is None:
        raise PublishError(f"{ref} is not a folder and there is no store to look it up in")
    rows = con.sql(f"select item_id, {', '.join(DIFF_FIELDS)} from dataset_items where version_id = ?",
                   params=[ref]).pl()
    if rows.is_empty() and not con.execute("select 1 from dataset_versions where version_id = ?", [ref]).fetchall():
        versions = [v for (v,) in con.execute("select version_id from dataset_versions order by 1").fetchall()]
        raise PublishError(f"no version {ref!r} in the store (versions: {', '.join(versions) or 'none yet'})")
    return {r["item_id"]: r for r in rows.to_dicts()}


def diff_versions(con: duckdb.DuckDBPyConnection | None, a: str, b: str) -> VersionDiff:
    """Items added, removed and changed from version a to version b."""
    before, after = version_items(con, a), version_items(con, b)
    changed = []
    for item_id in sorted(before.keys() & after.keys()):
        fields = [f for f in DIFF_FIELDS if before[item_id][f] != after[item_id][f]]
        if fields:
            changed.append({"item_id": item_id, "fields": fields,
                            "before": {f: before[item_id][f] for f in fields},
                            "after": {f: after[item_id][f] for f in fields}})
    return VersionDiff(
        a, b,
        added=[after[k] for k in sorted(after.keys() - before.keys())],
        removed=[before[k] for k in sorted(before.keys() - after.keys())],
        changed=changed,
    )
