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


def _stratum(counts: Counter) -> tuple[str, str]:
    """The most common (database, tool) among a group's items (their counts); ties go to the first by name."""
    return min(counts, key=lambda s: (-counts[s], s))


def _fields(row: tuple[str, str], names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict(zip(("database", "tool"), row, strict=True))[n] for n in names)


@dataclass
class SplitPlan:
    assigned: pl.DataFrame  # item_id, split, group_key of every item kept, in the items' order
    inherited_items: int = 0  # items whose split came from an earlier version (own or group's)
    new_groups: int = 0
    held: list[str] = field(default_factory=list)  # new items whose calls earlier versions split apart

    @property
    def split(self) -> dict[str, str]:
        """item_id -> split (a dict per item: for a look at a few, not for every item of a version)."""
        return dict(zip(self.assigned["item_id"], self.assigned["split"], strict=True))

    @property
    def group(self) -> dict[str, str]:
        """item_id -> group key."""
        return dict(zip(self.assigned["item_id"], self.assigned["group_key"], strict=True))


def assign_splits(config: Config, con: duckdb.DuckDBPyConnection, items: pl.DataFrame) -> SplitPlan:
    """Every item's split: inherited from earlier versions where known, else assigned (see module doc).

    The work is per call (the items of a call share its group keys), per group and per stratum;
    items are columns (never a Python object each)."""
    group_by, seed = config.publish.group_by, config.publish.split_seed
    # Each item ever published, with the split of the first version that held it.
    prior = con.sql("select item_id, split, database, tool, call_id from first_published").pl()
    known_keys = _item_keys(con, [*prior["call_id"], *items["call_id"]], group_by)
    uf = _Groups()
    for call_id in prior["call_id"].unique():
        uf.union(known_keys[call_id])
    group_prior: dict[str, set[str]] = {}
    prior_strata: dict[str, Counter] = {}
    for call_id, split, database, tool, n in (
        prior.group_by("call_id", "split", "database", "tool").len().sort("call_id", "split", "database", "tool").rows()
    ):
        g = uf.find(known_keys[call_id][0])
        group_prior.setdefault(g, set()).add(split)
        prior_strata.setdefault(g, Counter())[(database or "", tool or "")] += n
    conflicts = {g: s for g, s in group_prior.items() if len(s) > 1}
    if conflicts:
        example, splits = next(iter(sorted(conflicts.items())))
        raise PublishError(
            f"publish.group_by = {group_by!r} would merge items that earlier versions put in different splits "
            f"({len(conflicts)} groups, e.g. {example} in {sorted(splits)}): stable splits cannot hold both. "
            "Keep the grouping these versions were published with, or start a new lineage in a new store."
        )
    prior_of = {g: next(iter(s)) for g, s in group_prior.items()}
    prior_split = prior.select("item_id", pl.col("split").alias("prior_split"))
    del prior

    rows = items.select("item_id", "call_id", "database", "tool").with_row_index("_row")
    rows = rows.join(prior_split, on="item_id", how="left", maintain_order="left")
    # A new item's calls may join groups earlier versions put in different splits: it is held back.
    # The items of one call share its keys, so the first new item of each call decides for them all,
    # calls taken in the order of that item (the item order: which is held does not depend on anything else).
    held_calls: set[str] = set()
    firsts = rows.filter(pl.col("prior_split").is_null()).group_by("call_id").agg(pl.col("_row").min()).sort("_row")
    for call_id in firsts["call_id"]:
        keys = known_keys[call_id]
        splits = {prior_of[r] for r in {uf.find(k) for k in keys} if r in prior_of}
        if len(splits) > 1:
            held_calls.add(call_id)
            continue
        split = next(iter(splits), None)
        root = uf.union(keys)
        if split is not None:
            prior_of[root] = split
    is_held = pl.col("prior_split").is_null() & pl.col("call_id").is_in(list(held_calls))
    plan = SplitPlan(pl.DataFrame(), held=rows.filter(is_held)["item_id"].to_list())
    kept = rows.filter(~is_held)
    calls = kept["call_id"].unique()
    kept = kept.join(
        pl.DataFrame(
            {"call_id": calls, "group_key": [uf.find(known_keys[c][0]) for c in calls]},
            schema={"call_id": pl.String, "group_key": pl.String},
        ),
        on="call_id",
        how="left",
        maintain_order="left",
    )
    prior_of = {uf.find(g): s for g, s in prior_of.items()}
    split_of: dict[str, str] = {}
    fresh: dict[tuple[str, ...], list[str]] = {}
    rank: dict[str, tuple[str, ...]] = {}
    strata: dict[str, Counter] = {}
    sizes = dict(kept.group_by("group_key").len().rows())
    for g, database, tool, n in kept.group_by("group_key", "database", "tool").len().rows():
        strata.setdefault(g, Counter())[(database or "", tool or "")] += n
    for g in sorted(strata):
        known = prior_of.get(g)
        if known:
            split_of[g] = known
            plan.inherited_items += sizes[g]
        else:
            main = _stratum(strata[g])
            stratum = _fields(main, STRATUM) if config.publish.stratify else ()
            rank[g] = _fields(main, RANK)
            fresh.setdefault(stratum, []).append(g)
    # How many groups each stratum already holds: the new ones continue its sequence.
    taken = Counter(
        _fields(_stratum(counts), STRATUM) if config.publish.stratify else () for counts in prior_strata.values()
    )
    for stratum, groups in sorted(fresh.items()):
        start = unit(seed, "stratum", *stratum)
        ordered = sorted(groups, key=lambda g: (rank[g], unit(seed, "rank", g), g))
        for index, g in enumerate(ordered, start=taken[stratum]):
            x = (start + index * GOLDEN) % 1.0 if config.publish.stratify else unit(seed, g)
            split_of[g] = split_at(x, config)
        plan.new_groups += len(groups)
    plan.assigned = kept.with_columns(
        pl.col("group_key").replace_strict(split_of, return_dtype=pl.String).alias("split")
    ).select("item_id", "split", "group_key", "prior_split")
    # An item published before keeps its own first split (equal to its group's, checked above).
    moved = plan.assigned.filter(pl.col("prior_split").is_not_null() & (pl.col("prior_split") != pl.col("split")))
    assert moved.is_empty(), moved.head(3).rows()
    plan.assigned = plan.assigned.drop("prior_split")
    return plan


def split_checks(con: duckdb.DuckDBPyConnection, version_id: str) -> list[str]:
    """GX expectations on one version's ``dataset_items``: no group and no call (alone or a step
    of a call set) in two splits, item ids unique,
    splits known, and every item in the split of the first version that held it. [] when all pass.

    The expectations judge each row alone (or, unique ids, with the rows of its id), so they run
    on the rows that could fail (``sql/split_checks.sql``) and report what they would on every
    row; a version that passes needs neither the rows in memory nor GX."""
    frame = con.execute(sql("split_checks"), [version_id] * 3 + [list(SPLITS)]).df()
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
