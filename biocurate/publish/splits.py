"""Splits: stable, leakage-free train/validation/test assignment, and the checks on a version.

A *group* never straddles splits: every question about one call, or (``group_by = "entity"``)
every call about one entity. An item keeps the split it had in the first version that held it
(the ``first_published`` view), and a new item joining a group inherits the group's split, so a
test item never reappears in a later training set. Only groups never published before are
assigned: within their (database, tool) stratum, in the order of a hash of their key, each takes
the next point of a golden-ratio (low-discrepancy) sequence started at a hash of the stratum;
a stratum is a database (``STRATUM``), its groups taken tool by tool (``RANK``), so consecutive
points, which lie far apart, spread each tool over the splits while the database as a whole
fills every split (per (database, tool) strata of one to three groups left whole databases, NCBI
in the demo, without a test item: so few points rarely reach the test share's tenth of [0, 1));
the point's position in [0, 1) picks the split by the configured ratios. Every prefix of that
sequence fills the splits close to the ratios, so each stratum is balanced however few groups it
has and however many versions added them. The trade-off against assigning by hash alone
(``stratify = false``): a new group's split depends on how many groups of its stratum came
before it, i.e. on the publishing history, not only on its key. Stability does not suffer,
since a published assignment is never recomputed.

An item with several calls (a parallel or multi_step call set, issue 18) is in the group of each
call (or entity) it uses: groups sharing a call are merged (union-find), so no call, and no
entity under ``group_by = "entity"``, is in two splits. A merged group's key is the smallest of
its keys (a group of one key keeps it, as before). A new item whose calls belong to groups that
earlier versions put in different splits cannot join both: it is held back (``SplitPlan.held``,
counted as not exported), never moved. A no_tool item (no call) is a group of its own, or under
``group_by = "entity"`` in the group of each entity its set is about (``spec.entities``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field

import duckdb
import polars as pl

from biocurate.config import Config
from biocurate.publish.common import SPLITS, PublishError, sql
from biocurate.sampling import unit

GOLDEN = (math.sqrt(5) - 1) / 2


def group_key(call_id: str, entity_id: str | None, group_by: str) -> str:
    if group_by == "entity" and entity_id:
        return f"entity:{entity_id}"
    return f"call:{call_id}"


class _Groups:
    """Union-find over group keys; a group's name is its smallest key."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, keys: list[str]) -> str:
        roots = sorted({self.find(k) for k in keys})
        for other in roots[1:]:
            self.parent[other] = roots[0]
        return roots[0]


def _item_keys(con: duckdb.DuckDBPyConnection, call_ids: list[str], group_by: str) -> dict[str, list[str]]:
    """The group keys of each item's call_id: its own call's, or each step's of a call set (a
    no_tool set, without steps, is a group of its own)."""
    con.register("_split_calls", pl.DataFrame({"call_id": sorted(set(call_ids))}, schema={"call_id": pl.String}))
    try:
        rows = con.execute(
            "select x.call_id, coalesce(st.call_id, x.call_id), c.entity_id, "
            "case when st.call_id is null then cs.spec::varchar end from _split_calls x "
            "left join call_set_steps st on st.set_id = x.call_id "
            "left join candidate_calls c on c.call_id = coalesce(st.call_id, x.call_id) "
            "left join call_sets cs on cs.set_id = x.call_id "
            "order by x.call_id, st.position"
        ).fetchall()
    finally:
        con.unregister("_split_calls")
    keys: dict[str, list[str]] = {}
    for call_id, step, entity_id, spec in rows:
        # a no_tool set (no steps): under group_by = "entity", in the group of each entity it is about
        entities = (json.loads(spec).get("entities") or []) if spec and group_by == "entity" else []
        keys.setdefault(call_id, []).extend(
            [group_key(step, e, group_by) for e in entities] or [group_key(step, entity_id, group_by)]
        )
    return keys


def split_at(x: float, config: Config) -> str:
    """The split whose share of [0, 1) holds x (train, then validation, then test)."""
    p = config.publish
    if x < p.train:
        return "train"
    if x < p.train + p.validation:
        return "validation"
    return "test" if p.test > 0 else ("validation" if p.validation > 0 else "train")


# The declarative split rule: which item fields make a stratum, and which order the groups of a
# stratum take the sequence's points in (after these fields, a hash of the group key).
STRATUM: tuple[str, ...] = ("database",)
RANK: tuple[str, ...] = ("tool",)


def _stratum(rows: list[tuple[str, str]]) -> tuple[str, str]:
    """The most common (database, tool) among a group's items; ties go to the first by name."""
    counts = Counter(rows)
    return min(counts, key=lambda s: (-counts[s], s))


def _fields(row: tuple[str, str], names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict(zip(("database", "tool"), row, strict=True))[n] for n in names)


@dataclass
class SplitPlan:
    split: dict[str, str]  # item_id -> split
    group: dict[str, str]  # item_id -> group key
    inherited_items: int = 0  # items whose split came from an earlier version (own or group's)
    new_groups: int = 0
    held: list[str] = field(default_factory=list)  # new items whose calls earlier versions split apart


def assign_splits(config: Config, con: duckdb.DuckDBPyConnection, items: pl.DataFrame) -> SplitPlan:
    """Every item's split: inherited from earlier versions where known, else assigned (see module doc)."""
    group_by, seed = config.publish.group_by, config.publish.split_seed
    # Each item ever published, with the split of the first version that held it.
    prior = con.execute("select item_id, split, database, tool, call_id from first_published").fetchall()
    known_keys = _item_keys(con, [r[4] for r in prior] + items["call_id"].to_list(), group_by)
    uf = _Groups()
    prior_split: dict[str, str] = {}
    for item_id, split, _, _, call_id in prior:
        uf.union(known_keys[call_id])
        prior_split[item_id] = split
    group_prior: dict[str, set[str]] = {}
    prior_strata: dict[str, list[tuple[str, str]]] = {}
    for _, split, database, tool, call_id in prior:
        g = uf.find(known_keys[call_id][0])
        group_prior.setdefault(g, set()).add(split)
        prior_strata.setdefault(g, []).append((database or "", tool or ""))
    conflicts = {g: s for g, s in group_prior.items() if len(s) > 1}
    if conflicts:
        example, splits = next(iter(sorted(conflicts.items())))
        raise PublishError(
            f"publish.group_by = {group_by!r} would merge items that earlier versions put in different splits "
            f"({len(conflicts)} groups, e.g. {example} in {sorted(splits)}): stable splits cannot hold both. "
            "Keep the grouping these versions were published with, or start a new lineage in a new store."
        )
    prior_of = {g: next(iter(s)) for g, s in group_prior.items()}

    plan = SplitPlan({}, {})
    rows = items.select("item_id", "call_id", "entity_id", "database", "tool").to_dicts()
    kept = []
    for row in rows:  # in item_id order: which new item is held back does not depend on anything else
        keys = known_keys[row["call_id"]]
        if row["item_id"] not in prior_split:
            splits = {prior_of[r] for r in {uf.find(k) for k in keys} if r in prior_of}
            if len(splits) > 1:
                plan.held.append(row["item_id"])
                continue
            split = next(iter(splits), None)
            root = uf.union(keys)
            if split is not None:
                prior_of[root] = split
        kept.append(row)
    members: dict[str, list[dict]] = {}
    for row in kept:
        g = uf.find(known_keys[row["call_id"]][0])
        plan.group[row["item_id"]] = g
        members.setdefault(g, []).append(row)
    fresh: dict[tuple[str, ...], list[str]] = {}
    rank: dict[str, tuple[str, ...]] = {}
    prior_of = {uf.find(g): s for g, s in prior_of.items()}
    for g, rows in members.items():
        known = prior_of.get(g)
        if known:
            for row in rows:
                plan.split[row["item_id"]] = known
            plan.inherited_items += len(rows)
        else:
            main = _stratum([(r["database"] or "", r["tool"] or "") for r in rows])
            stratum = _fields(main, STRATUM) if config.publish.stratify else ()
            rank[g] = _fields(main, RANK)
            fresh.setdefault(stratum, []).append(g)
    # How many groups each stratum already holds: the new ones continue its sequence.
    taken = Counter(
        _fields(_stratum(strata), STRATUM) if config.publish.stratify else () for strata in prior_strata.values()
    )
    for stratum, groups in sorted(fresh.items()):
        start = unit(seed, "stratum", *stratum)
        ordered = sorted(groups, key=lambda g: (rank[g], unit(seed, "rank", g), g))
        for index, g in enumerate(ordered, start=taken[stratum]):
            x = (start + index * GOLDEN) % 1.0 if config.publish.stratify else unit(seed, g)
            for row in members[g]:
                plan.split[row["item_id"]] = split_at(x, config)
        plan.new_groups += len(groups)
    # An item published before keeps its own first split (equal to its group's, checked above).
    for item_id, split in prior_split.items():
        if item_id in plan.split:
            assert plan.split[item_id] == split, (item_id, split, plan.split[item_id])
    return plan


def split_checks(con: duckdb.DuckDBPyConnection, version_id: str) -> list[str]:
    """GX expectations on one version's ``dataset_items``: no group and no call (alone or a step
    of a call set) in two splits, item ids unique,
    splits known, and every item in the split of the first version that held it. [] when all pass."""
    frame = con.execute(sql("split_checks"), [version_id] * 3).df()
    if frame.empty:
        return []
    import logging

    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("dataset_items")
        .add_dataframe_asset("version")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )

    suite = gx.ExpectationSuite(
        name="dataset_splits",
        expectations=[
            gxe.ExpectColumnValuesToBeInSet(column="group_splits", value_set=[1]),
            gxe.ExpectColumnValuesToBeInSet(column="call_splits", value_set=[1]),
            gxe.ExpectColumnValuesToBeUnique(column="item_id"),
            gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
            gxe.ExpectColumnPairValuesToBeEqual(column_A="split", column_B="first_split"),
        ],
    )
    result = batch.validate(
        suite, result_format={"result_format": "SUMMARY", "unexpected_index_column_names": ["item_id"]}
    )
    problems = []
    for res in result.results:
        expectation = res.expectation_config
        assert expectation is not None  # GX names the expectation of every result of a suite
        if res.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"split check {expectation.type} could not run: {res.exception_info.get('exception_message')}"
            )
        if not res.success:
            examples = [row["item_id"] for row in res.result.get("partial_unexpected_index_list") or []][:5]
            problems.append(
                f"{expectation.type} {expectation.kwargs}: {res.result.get('unexpected_count')} items, e.g. {examples}"
            )
    return problems
