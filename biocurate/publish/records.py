"""Export records, made a batch at a time: memory does not grow with the number of items.

``Records`` holds the selected items as a frame without their observations (a few hundred bytes
an item; the observation, up to ``[execute] observation_max_chars``, is most of a record) and
makes the records ``batch`` items at a time, in item order, fetching each batch's observations
from the store by id. Publish makes them once (one pass feeds the digest, the export files and
the store's dataset_items); ``light()`` is the item columns alone (counts, plots, provenance).
``Distractors`` picks the other tools a record offers.

Every record has ``function_calling_json`` (its ``function_calling`` as canonical JSON, as the
Parquet files and dataset_items keep it), ``kind`` and ``calls`` (each call in order with its
observation) and ``answer`` (a ``no_tool`` item's reply): docs/item_kinds.md. A call set's item
columns (``function``, ``observation``, ...) are its first call's; ``set_observation`` is its
combined observation.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator

import duckdb
import polars as pl

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.hashing import canonical_json
from biocurate.publish.splits import SplitPlan
from biocurate.review_view import no_tool_answer
from biocurate.sampling import unit
from biocurate.store import observation_texts

# Items per batch of records (each with its observation).
RECORD_BATCH = 5_000

# Item columns of a small vocabulary (kinds, states, splits, the names of functions, tools and
# writers), held as categoricals: a string column takes 16 bytes a row in views alone, and the
# items are held through the whole records pass (at 100k calls, 384k items: 261 MB as strings,
# 148 MB so). A record still gets strings.
VOCABULARY_COLUMNS = (
    "kind",
    "state",
    "split",
    "function",
    "database",
    "tool",
    "category",
    "upstream_release",
    "transport",
    "response_provenance",
    "generator",
    "generator_model",
    "prompt_version",
    "judge",
    "judge_model",
    "judge_verdict",
    "reviewed_by",
)

# Item columns that only make a set item's record (select_items, details.sql): not in the records.
_SET_COLUMNS = ("set_observation_id", "set_spec")


# Three draws from an item's digest: its first 24 bytes as big-endian 64-bit integers.
_THREE_DRAWS = struct.Struct(">QQQ")


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
        draws = [q / 2**64 for q in _THREE_DRAWS.unpack_from(digest)]
        picked: list[str] = []
        for ring, draw in zip(self.ring(gold), draws, strict=False):
            need = min(self.k - len(picked), len(ring))
            if need <= 0:
                break
            start = int(draw * len(ring))  # need names from start on, going round the ring
            picked += ring[start : start + need] + ring[: max(0, start + need - len(ring))]
        position = int(draws[2] * (len(picked) + 1))
        return picked[:position] + [gold] + picked[position:]


def offered_tools(distract: Distractors, catalog: Catalog, record: dict, spec: dict) -> list[str]:
    """The tools a record offers: for a single item its tool and distractors (as before); for a
    set every step's function, at the place the distractors of its first one leave; for a no_tool
    item the functions its set names as ``offered`` (look related, do not answer), filled up to
    as many tools as a single item is offered with the distractors of a hash-chosen function."""
    item_id = record["item_id"]
    if record["kind"] == "single":
        return distract(record["function"], item_id)
    names = [c["name"] for c in record["calls"]]
    if not names:
        names = [n for n in spec.get("offered") or [] if n in catalog]
        tools = sorted(t.name for t in catalog)
        pick = names[0] if names else tools[int(unit(distract.seed, "no_tool", item_id) * len(tools))]
        offered = [pick, *(n for n in names if n != pick)]
        pool = [n for n in distract(pick, item_id) if n not in offered]
        return sorted(offered + pool[: max(0, distract.k + 1 - len(offered))], key=lambda n: unit(item_id, n))
    offered = distract(names[0], item_id)
    for name in dict.fromkeys(names[1:]):
        if name not in offered:
            offered.insert(int(unit(distract.seed, item_id, name) * (len(offered) + 1)), name)
    return offered


class Records:
    """The export records of ``items`` (``select_items``: ordered by item_id, an observation_id
    where the observation goes), made ``batch`` items at a time on each pass."""

    def __init__(
        self,
        items: pl.DataFrame,
        plan: SplitPlan,
        catalog: Catalog,
        config: Config,
        con: duckdb.DuckDBPyConnection,
        batch: int = RECORD_BATCH,
    ):
        # The plan's rows are the items', in their order (held items left out of both): its columns
        # are put beside them. A join would copy every column (at 100k calls, 745 -> 845 MiB).
        assigned = plan.assigned
        if not assigned["item_id"].equals(items["item_id"]):
            raise ValueError("the split plan's items are not the records' items, in their order")
        self.items = items.with_columns(
            assigned["split"].cast(pl.Categorical),
            assigned["group_key"],
            *(pl.col(c).cast(pl.Categorical) for c in VOCABULARY_COLUMNS if c in items.columns),
        )
        self.distract = Distractors(catalog, config.publish.distractor_tools, config.publish.split_seed)
        self.catalog, self.con, self.batch = catalog, con, batch

    def __len__(self) -> int:
        return self.items.height

    def light(self) -> pl.DataFrame:
        """Each item's columns with its split and group (no observation, call or offered tools):
        what the counts, plots and provenance aggregate."""
        # Made of its columns: polars' drop and select copy every column of a frame of several
        # chunks (as the join leaves it): 135 MB for each of the four calls at 100k calls.
        return pl.DataFrame([self.items[c] for c in self.items.columns if c not in ("observation_id", *_SET_COLUMNS)])

    def __iter__(self) -> Iterator[dict]:
        for start in range(0, self.items.height, self.batch):
            part = self.items.slice(start, self.batch)
            texts = observation_texts(self.con, [*part["observation_id"], *part["set_observation_id"].drop_nulls()])
            sets = part.filter(pl.col("kind") != "single")
            steps = self._steps(sets["query_id"]) if sets.height else {}
            for row in part.iter_rows(named=True):
                spec_text = row.pop("set_spec")
                set_observation_id = row.pop("set_observation_id")
                record = row
                record["observation"] = texts.get(record.pop("observation_id"))
                function = row["function"]
                arguments = json.loads(row["arguments"]) if function else None
                if row["kind"] == "single":
                    record["calls"] = [
                        {
                            "name": function,
                            "arguments": arguments,
                            "observation": record["observation"],
                            "depends_on": None,
                        }
                    ]
                else:
                    record["calls"] = steps.get(row["query_id"], [])
                    record["set_observation"] = texts.get(set_observation_id)
                spec = json.loads(spec_text) if spec_text else {}
                record["answer"] = no_tool_answer(spec) if row["kind"] == "no_tool" else None
                record["function_calling"] = {"name": function, "arguments": arguments} if function else None
                record["function_calling_json"] = canonical_json(record["function_calling"]) if function else None
                record["tool_names"] = offered_tools(self.distract, self.catalog, record, spec)
                yield record

    def _steps(self, query_ids: pl.Series) -> dict[str, list[dict]]:
        """The calls of these call-set questions, in order (the item_steps view)."""
        self.con.register("_set_query_ids", pl.DataFrame({"query_id": query_ids}))
        try:
            rows = self.con.execute(
                "select s.query_id, s.function, s.arguments::varchar, s.observation, s.depends_on "
                "from item_steps s join _set_query_ids using (query_id) order by s.query_id, s.position"
            ).fetchall()
        finally:
            self.con.unregister("_set_query_ids")
        steps: dict[str, list[dict]] = {}
        for query_id, function, arguments, observation, depends_on in rows:
            steps.setdefault(query_id, []).append(
                {
                    "name": function,
                    "arguments": json.loads(arguments),
                    "observation": observation,
                    "depends_on": depends_on,
                }
            )
        return steps
