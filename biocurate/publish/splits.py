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
from dataclasses import dataclass, field
from pathlib import Path

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


def _call_keys(con: duckdb.DuckDBPyConnection, call_ids: pl.Series, group_by: str) -> pl.DataFrame:
    """(call_id, key): the group keys of each of ``call_ids``: its own call's, or each step's of a
    call set (a no_tool set, without steps, is a group of its own)."""
    con.register("_split_calls", pl.DataFrame({"call_id": call_ids.unique()}, schema={"call_id": pl.String}))
    try:
        rows = con.sql(
            "select x.call_id, coalesce(st.call_id, x.call_id) as step, c.entity_id, "
            "case when st.call_id is null then cs.spec::varchar end as spec from _split_calls x "
            "left join call_set_steps st on st.set_id = x.call_id "
            "left join candidate_calls c on c.call_id = coalesce(st.call_id, x.call_id) "
            "left join call_sets cs on cs.set_id = x.call_id"
        ).pl()
    finally:
        con.unregister("_split_calls")
    by_entity = pl.lit(group_by == "entity") & pl.col("entity_id").is_not_null() & (pl.col("entity_id") != "")
    keys = rows.select(
        "call_id",
        pl.when(by_entity)
        .then(pl.lit("entity:") + pl.col("entity_id"))
        .otherwise(pl.lit("call:") + pl.col("step"))
        .alias("key"),
    )
    if group_by != "entity":
        return keys
    # a no_tool set (no steps): under group_by = "entity", in the group of each entity it is about
    about = [
        (call_id, group_key(step, e, group_by))
        for call_id, step, spec in rows.filter(pl.col("spec").is_not_null()).select("call_id", "step", "spec").rows()
        for e in json.loads(spec).get("entities") or []
    ]
    if not about:
        return keys
    spoken = {c for c, _ in about}
    return pl.concat(
        [keys.filter(~pl.col("call_id").is_in(list(spoken))), pl.DataFrame(about, schema=keys.schema, orient="row")]
    )


def split_at(x: float, config: Config) -> str:
    """The split whose share of [0, 1) holds x (train, then validation, then test)."""
    return pl.select(splits_at(pl.lit(x), config)).item()


def splits_at(x: pl.Expr, config: Config) -> pl.Expr:
    """``split_at`` of a column of points."""
    p = config.publish
    last = "test" if p.test > 0 else ("validation" if p.validation > 0 else "train")
    return (
        pl.when(x < p.train)
        .then(pl.lit("train"))
        .when(x < p.train + p.validation)
        .then(pl.lit("validation"))
        .otherwise(pl.lit(last))
    )


# The declarative split rule: which item fields make a stratum, and which order the groups of a
# stratum take the sequence's points in (after these fields, a hash of the group key).
STRATUM: tuple[str, ...] = ("database",)
RANK: tuple[str, ...] = ("tool",)


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


def _main_strata(frame: pl.DataFrame, group: str) -> pl.DataFrame:
    """Each group's main (database, tool): the most common among its items (no value counts as
    ""), ties going to the first by name."""
    counted = (
        frame.select(group, pl.col("database").fill_null(""), pl.col("tool").fill_null(""))
        .group_by(group, "database", "tool")
        .len()
    )
    return (
        counted.sort([group, "len", "database", "tool"], descending=[False, True, False, False])
        .group_by(group, maintain_order=True)
        .first()
        .drop("len")
    )


def assign_splits(config: Config, con: duckdb.DuckDBPyConnection, items: pl.DataFrame) -> SplitPlan:
    """Every item's split: inherited from earlier versions where known, else assigned (see module doc).

    The work is columns per call, per group and per stratum: a Python object per call or group
    held gigabytes at a million calls. Only call sets (calls of several keys) go through the
    union-find; a call of one key is in its key's group (a set may have merged it with others)."""
    group_by, seed = config.publish.group_by, config.publish.split_seed
    # Each item ever published, with the split of the first version that held it.
    prior = con.sql("select item_id, split, database, tool, call_id from first_published").pl()
    keys = _call_keys(con, pl.concat([prior["call_id"], items["call_id"]]), group_by)
    keys_of = dict(
        keys.filter(pl.len().over("call_id") > 1).group_by("call_id", maintain_order=True).agg("key").iter_rows()
    )
    uf = _Groups()
    for call_id in set(prior["call_id"].unique()) & set(keys_of):
        uf.union(keys_of[call_id])
    one_key = keys.group_by("call_id").agg(pl.col("key").min())  # a set's keys share their group

    def grouped(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        """``frame`` (with call_id) with each call's group as column ``name``."""
        frame = frame.join(one_key, on="call_id", how="left", maintain_order="left")
        roots = {k: uf.find(k) for k in list(uf.parent)}
        return frame.with_columns(pl.col("key").replace(roots) if roots else pl.col("key")).rename({"key": name})

    prior = grouped(prior, "group_key")
    by_group = prior.group_by("group_key").agg(pl.col("split").unique().sort())
    conflicts = by_group.filter(pl.col("split").list.len() > 1).sort("group_key")
    if conflicts.height:
        example, splits = conflicts.row(0)
        raise PublishError(
            f"publish.group_by = {group_by!r} would merge items that earlier versions put in different splits "
            f"({conflicts.height} groups, e.g. {example} in {sorted(splits)}): stable splits cannot hold both. "
            "Keep the grouping these versions were published with, or start a new lineage in a new store."
        )
    known = by_group.select("group_key", pl.col("split").list.first().alias("known"))
    # How many groups each stratum already holds (an earlier group counted in its main stratum):
    # the new groups continue its sequence.
    stratum = list(STRATUM) if config.publish.stratify else []
    taken = dict(
        ((tuple(r[:-1]), r[-1]) for r in _main_strata(prior, "group_key").group_by(stratum).len().rows())
        if stratum
        else ()
    )
    prior_split = prior.select("item_id", pl.col("split").alias("prior_split"))
    del prior, by_group

    rows = items.select("item_id", "call_id", "database", "tool").with_row_index("_row")
    rows = rows.join(prior_split, on="item_id", how="left", maintain_order="left")
    # A new item's calls may join groups earlier versions put in different splits: it is held back.
    # The items of one call share its keys, so the first new item of each call decides for them all,
    # calls taken in the order of that item (the item order: which is held does not depend on anything else).
    # A call of one key joins nothing together: only a set can be held.
    held_calls: set[str] = set()
    new_sets = (
        rows.filter(pl.col("prior_split").is_null() & pl.col("call_id").is_in(list(keys_of)))
        .group_by("call_id")
        .agg(pl.col("_row").min())
        .sort("_row")["call_id"]
    )
    if len(new_sets):
        # the earlier groups these sets touch, by their roots (the roots change as sets join them)
        touched = {uf.find(k) for c in new_sets for k in keys_of[c]}
        prior_of = dict(known.filter(pl.col("group_key").is_in(list(touched))).iter_rows())
        for call_id in new_sets:
            splits = {prior_of[r] for r in {uf.find(k) for k in keys_of[call_id]} if r in prior_of}
            if len(splits) > 1:
                held_calls.add(call_id)
                continue
            root = uf.union(keys_of[call_id])
            if splits:
                prior_of[root] = next(iter(splits))
        known = pl.concat([known, pl.DataFrame(list(prior_of.items()), schema=known.schema, orient="row")])
        roots = {k: uf.find(k) for k in list(uf.parent)}
        known = known.with_columns(pl.col("group_key").replace(roots)).unique("group_key", keep="first")
    is_held = pl.col("prior_split").is_null() & pl.col("call_id").is_in(list(held_calls))
    plan = SplitPlan(pl.DataFrame(), held=rows.filter(is_held)["item_id"].to_list())
    kept = grouped(rows.filter(~is_held), "group_key")

    groups = (
        _main_strata(kept, "group_key")
        .join(kept.group_by("group_key").len("size"), on="group_key")
        .join(known, on="group_key", how="left")
    )
    plan.inherited_items = int(groups.filter(pl.col("known").is_not_null())["size"].sum())
    fresh = groups.filter(pl.col("known").is_null()).select("group_key", *STRATUM, *RANK)
    plan.new_groups = fresh.height
    if stratum:
        # within its stratum, in the order of (rank fields, a hash of its key), each group takes the
        # next point of the stratum's golden-ratio sequence
        fresh = fresh.with_columns(
            pl.Series("_hash", [unit(seed, "rank", g) for g in fresh["group_key"]], dtype=pl.Float64)
        ).sort([*stratum, *RANK, "_hash", "group_key"])
        strata = pl.DataFrame(
            [(*s, unit(seed, "stratum", *s), taken.get(s, 0)) for s in fresh.select(stratum).unique().rows()],
            schema={**{c: pl.String for c in stratum}, "_start": pl.Float64, "_taken": pl.Int64},
            orient="row",
        )
        fresh = fresh.join(strata, on=stratum, how="left", maintain_order="left")
        index = pl.int_range(pl.len(), dtype=pl.Int64).over(stratum) + pl.col("_taken")
        point = (pl.col("_start") + index.cast(pl.Float64) * GOLDEN) % 1.0
    else:
        point = pl.lit(pl.Series([unit(seed, g) for g in fresh["group_key"]], dtype=pl.Float64))
    fresh = fresh.select("group_key", splits_at(point, config).alias("split"))
    split_of = pl.concat([known.rename({"known": "split"}), fresh])
    plan.assigned = kept.join(split_of, on="group_key", how="left", maintain_order="left").select(
        "item_id", "split", "group_key", "prior_split"
    )
    # An item published before keeps its own first split (equal to its group's, checked above).
    moved = plan.assigned.filter(pl.col("prior_split").is_not_null() & (pl.col("prior_split") != pl.col("split")))
    assert moved.is_empty(), moved.head(3).rows()
    plan.assigned = plan.assigned.drop("prior_split")
    return plan


def split_checks(con: duckdb.DuckDBPyConnection, version_id: str, spool: Path | None = None) -> list[str]:
    """GX expectations on one version's ``dataset_items``: no group and no call (alone or a step
    of a call set) in two splits, item ids unique,
    splits known, and every item in the split of the first version that held it. [] when all pass.

    ``spool``: the version's rows in a Parquet file, checked before they are inserted (publish
    does: at a million calls the new version's uncommitted rows and their key index would hold
    most of ``[store] memory_limit`` while the checks run); without it, the recorded rows.

    The expectations judge each row alone (or, unique ids, with the rows of its id), so they run
    on the rows that could fail (``sql/split_checks.sql``) and report what they would on every
    row; a version that passes needs neither the rows in memory nor GX."""
    columns = "item_id, call_id, split, group_key"  # what the checks read (not the texts)
    if spool is None:
        items, params = f"select {columns} from dataset_items where version_id = ?", [version_id]
    else:
        items, params = f"select {columns} from read_parquet(?)", [str(spool)]
    query = f"with version_items as ({items}) select * from ({sql('split_checks')}) order by item_id"
    frame = con.execute(query, [*params, list(SPLITS)]).df()
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
