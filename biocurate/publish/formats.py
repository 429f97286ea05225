"""Records and export formats.

The records come from ``biocurate.publish.records`` (a batch at a time, in item order).
``FORMATS`` is the registry of export formats: each writes one file per non-empty split (of the
splits it lists), or one file of every record when its path has no ``{split}``, either one JSON
text per record (``dumps``: compact UTF-8; as a JSON array, one record a line, or as JSON lines) or by a writer of its
own (Parquet, a row group at a time), and may add files of its own (an index of its splits, the tool catalog). A new
format is one encoder function and one registry entry; the dataset card's file table is built
from the registry too.

BioTool's flavour (``biotool/``) is what BioTool's own scripts read (github.com/gxx27/BioTool:
its README's record format, ``script/data_construction/convert.py``, ``script/unified_evaluate.py``
and ``script/openai_eval_func.py``): ``database``/``tool`` are the module path its dispatcher
imports (``<database>.<tool>.api``), the observation is a JSON value, and the folder holds its
five file names, so it can stand in for BioTool's ``data/``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from biocurate.catalog import Catalog
from biocurate.hashing import canonical_json
from biocurate.publish.biotool import biotool_place, function_mapping, observation_value, runs_in_biotool
from biocurate.publish.common import SPLITS
from biocurate.publish.records import Distractors, Records

__all__ = ["FORMATS", "PROVENANCE_COLUMNS", "Distractors", "Export", "ExportFormat", "Records"]


# Rows a Parquet split file holds in one row group: a split of at most this many is written at
# once (one row group); a larger one a row group at a time. The writer holds a row group's rows
# until it writes them, and its peak is the largest: publish's peak at 100k calls was 906 MiB with
# row groups of 50,000 rows, 855 MiB with 25,000 (readers see no difference).
PARQUET_ROW_GROUP = 25_000


def dumps(data: Any) -> bytes:
    """JSON as the export files hold it: compact, UTF-8. orjson, 5-7 times faster than json.dumps
    (the encoders were 40% of the records pass); what orjson refuses (an integer beyond 64 bits)
    by the standard library, in the same form."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Export:
    """What a format's writer gets besides the records: the version, settings and tool schemas."""

    folder: Path
    version_id: str
    system: str
    catalog: Catalog
    row_group: int = PARQUET_ROW_GROUP  # rows a Parquet writer holds before it writes them

    def __post_init__(self) -> None:
        self._encoded: dict[str, bytes] = {}
        self._quoted: dict[str, bytes] = {}
        self.system_json = dumps(self.system)  # the system prompt as JSON, spliced into records

    def _schema(self, name: str) -> bytes:
        if name not in self._encoded:
            self._encoded[name] = dumps(self.catalog[name].schema())
        return self._encoded[name]

    def tools_text(self, names: list[str]) -> bytes:
        """The tools' schemas as a JSON list in the OpenAI tool form (``{"type": "function",
        "function": {...}}``: what OpenAI's API takes, what BioTool's evaluation passes on from a
        ShareGPT record, and what LLaMA-Factory unwraps), each encoded once per version: records
        splice the text (the same bytes as ``dumps`` of the list)."""
        return b"[" + b",".join(self._schema(n) for n in names) + b"]"

    def tools_json(self, names: list[str]) -> bytes:
        """``tools_text`` as a JSON string (the same bytes as ``dumps`` of it): escaping is per
        character, so each schema is escaped once per version and spliced."""
        for name in names:
            if name not in self._quoted:
                self._quoted[name] = dumps(self._schema(name).decode())[1:-1]
        return b'"[' + b",".join(self._quoted[n] for n in names) + b']"'


def _splice(*parts: tuple[str, bytes]) -> bytes:
    """A JSON object of (key, value's JSON text) pairs: the same bytes as ``dumps`` of the dict,
    with values encoded once and reused."""
    return b"{" + b",".join(b'"' + key.encode() + b'":' + text for key, text in parts) + b"}"


def _text(data: Any) -> str:
    """JSON as a string value inside a record (a call in a ShareGPT turn, OpenAI's arguments)."""
    return dumps(data).decode()


def _observation(text: str | None) -> bytes:
    """``observation_value(text)`` as JSON: an observation that is JSON on one line is spliced as it
    is (parsed to check it, not encoded again, which also keeps a large integer exact)."""
    if text is not None and "\n" not in text and "\r" not in text:
        try:
            orjson.loads(text)
            return text.encode()
        except orjson.JSONDecodeError:
            pass
    return dumps(observation_value(text))


# ---------------------------------------------------------------------------------------------
# One encoder per record format: a record -> its JSON text


def _biotool_call(function_calling: dict, observation: str | None, x: Export) -> tuple[tuple[str, bytes], ...]:
    """A call as a BioTool record holds it: function_calling, observation (a JSON value), database, tool."""
    place = biotool_place(x.catalog[function_calling["name"]])
    return (
        ("function_calling", dumps(function_calling)),
        ("observation", _observation(observation)),
        *((key, dumps(value)) for key, value in place.items()),
    )


def _biotool(r: dict, x: Export) -> bytes:
    return _splice(("user_query", dumps(r["user_query"])), *_biotool_call(r["function_calling"], r["observation"], x))


def _in_biotool(r: dict, x: Export) -> bool:
    return r["kind"] == "single" and runs_in_biotool(x.catalog[r["function"]])


def _biotool_set(r: dict, x: Export) -> bytes:
    # BioTool's records have one call; an item of another kind (docs/item_kinds.md) keeps BioTool's
    # names per call: each call is a BioTool record's function_calling, observation (a JSON value),
    # database and tool, plus depends_on (multi_step: the 0-based call whose observation fed it).
    calls = [
        _splice(
            *_biotool_call({"name": c["name"], "arguments": c["arguments"]}, c["observation"], x),
            ("depends_on", dumps(c["depends_on"])),
        )
        for c in r["calls"]
    ]
    return _splice(
        ("user_query", dumps(r["user_query"])),
        ("kind", dumps(r["kind"])),
        ("calls", b"[" + b",".join(calls) + b"]"),
        ("answer", dumps(r["answer"])),
    )


def _set_in_biotool(r: dict, x: Export) -> bool:
    return r["kind"] != "single" and all(runs_in_biotool(x.catalog[c["name"]]) for c in r["calls"])


def _biotool_sharegpt(r: dict, x: Export) -> bytes:
    # As BioTool's convert.py writes BioTool_train/test.json: the system prompt as the first turn,
    # the question, the call (its observation turn dropped); tools a JSON string of OpenAI-form
    # schemas, the gold tool among them. Read by LLaMA-Factory (BioTool's dataset_info entry sets
    # no tags) and by BioTool's openai_eval_func.py (human turns, per-record tools, gold label).
    turns = [
        {"from": "human", "value": r["user_query"]},
        {"from": "function_call", "value": _text(r["function_calling"])},
    ]
    system = _splice(("from", b'"system"'), ("value", x.system_json))
    return _splice(("conversations", b"[" + system + b"," + dumps(turns)[1:]), ("tools", x.tools_json(r["tool_names"])))


def _call_turns(r: dict) -> list[dict]:
    """The turns after the question: one function_call turn (a single item's call, or a parallel
    item's calls as a JSON list, which LLaMA-Factory's FunctionFormatter reads as parallel calls);
    a multi_step item's calls each in its own turn, the observation it needs in between; a no_tool
    item's answer as the assistant's turn."""
    if r["kind"] == "single":
        return [{"from": "function_call", "value": _text(r["function_calling"])}]
    calls = [{"name": c["name"], "arguments": c["arguments"]} for c in r["calls"]]
    if r["kind"] == "no_tool":
        return [{"from": "gpt", "value": r["answer"]}]
    if r["kind"] == "parallel":
        return [{"from": "function_call", "value": _text(calls)}]
    turns: list[dict] = []
    for i, call in enumerate(calls):
        if i:
            turns.append({"from": "observation", "value": r["calls"][i - 1]["observation"]})
        turns.append({"from": "function_call", "value": _text(call)})
    return turns


def _sharegpt(r: dict, x: Export) -> bytes:
    # LLaMA-Factory's sharegpt converter needs human/observation at odd and gpt/function_call at
    # even positions and an even number of turns; the last turn is the training target. The
    # reviewed unit is question -> call(s), so the conversation ends with the (last) call (see the
    # card), or a no_tool item's answer. LLaMA-Factory reads only the columns its dataset entry
    # maps and drops the others, so the record also carries its provenance (PROVENANCE_COLUMNS)
    # for filtering before training (and, for an item that is not single, its kind).
    rest = {
        "item_id": r["item_id"],
        **{k: r[k] for k in PROVENANCE_COLUMNS},
        **({} if r["kind"] == "single" else {"kind": r["kind"]}),
    }
    head = _splice(
        ("conversations", dumps([{"from": "human", "value": r["user_query"]}, *_call_turns(r)])),
        ("system", x.system_json),
        ("tools", x.tools_json(r["tool_names"])),
    )
    return head[:-1] + b"," + dumps(rest)[1:]


def _sharegpt_info(splits: list[str], x: Export) -> dict:
    """LLaMA-Factory's dataset_info.json: one dataset entry per split file."""
    return {
        f"biocurate_{x.version_id}_{split}": {
            "file_name": f"{split}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "function_tag": "function_call",
                "observation_tag": "observation",
                "assistant_tag": "gpt",
            },
        }
        for split in splits
    }


def _tool_call(call_id: str, name: str, arguments: dict) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": _text(arguments)}}


def _assistant_turns(r: dict) -> list[dict]:
    """The assistant's messages: one with the call (single) or every call (parallel); a multi_step
    item's calls one message each, each followed by the tool message with its observation (but
    the last); a no_tool item's answer as content without tool_calls."""
    if r["kind"] == "single":
        return [
            {
                "role": "assistant",
                "tool_calls": [
                    _tool_call("call_" + r["item_id"][:12], r["function"], r["function_calling"]["arguments"])
                ],
            }
        ]
    if r["kind"] == "no_tool":
        return [{"role": "assistant", "content": r["answer"]}]
    ids = [f"call_{r['item_id'][:12]}_{i}" for i in range(len(r["calls"]))]
    calls = [_tool_call(i, c["name"], c["arguments"]) for i, c in zip(ids, r["calls"], strict=True)]
    if r["kind"] == "parallel":
        return [{"role": "assistant", "tool_calls": calls}]
    turns: list[dict] = []
    for i, call in enumerate(calls):
        if i:
            turns.append({"role": "tool", "tool_call_id": ids[i - 1], "content": r["calls"][i - 1]["observation"]})
        turns.append({"role": "assistant", "tool_calls": [call]})
    return turns


def _openai(r: dict, x: Export) -> bytes:
    messages = [{"role": "user", "content": r["user_query"]}, *_assistant_turns(r)]
    system = _splice(("role", b'"system"'), ("content", x.system_json))
    return _splice(
        ("messages", b"[" + system + b"," + dumps(messages)[1:]),
        ("tools", x.tools_text(r["tool_names"])),
        ("parallel_tool_calls", b"true" if r["kind"] == "parallel" else b"false"),
    )


# Per item: who accepted it in review (human | script | unknown: biocurate/publish/sql/details.sql)
# and where its API response came from (live | recorded | fixture | illustrative | unknown: the
# response_provenance view). In every format with room for them (Parquet, ShareGPT), the manifest's
# counts, the card and the version digest; not in BioTool's files (BioTool's layout) nor in the
# OpenAI lines (the fine-tuning API takes only its own keys).
PROVENANCE_COLUMNS = ("reviewed_by", "response_provenance")

PARQUET_COLUMNS = {
    "version_id": pl.String,
    "item_id": pl.String,
    "call_id": pl.String,
    "split": pl.String,
    "group_key": pl.String,
    "user_query": pl.String,
    "function_calling": pl.String,
    "observation": pl.String,
    "database": pl.String,
    "tool": pl.String,
    "function": pl.String,
    "arguments": pl.String,
    "category": pl.String,
    "entity_id": pl.String,
    "upstream_release": pl.String,
    "generator": pl.String,
    "review_state": pl.String,
    **{k: pl.String for k in PROVENANCE_COLUMNS},
    # issue 18 (docs/item_kinds.md): single | parallel | multi_step | no_tool; every call in order
    # (JSON: [{name, arguments, observation, depends_on}]); a no_tool item's answer
    "kind": pl.String,
    "calls": pl.String,
    "answer": pl.String,
}


# Parquet columns taken from another record field, or made from one.
_PARQUET_FROM = {"function_calling": "function_calling_json", "review_state": "state"}


def _parquet_frame(part: list[dict], x: Export) -> pl.DataFrame:
    """The records as Parquet rows, built a column at a time (a dict per row and polars reading
    them back is twice the time)."""
    columns: dict[str, list] = {"version_id": [x.version_id] * len(part)}
    for name in PARQUET_COLUMNS:
        if name == "calls":
            columns[name] = [canonical_json(r["calls"]) for r in part]
        elif name != "version_id":
            field = _PARQUET_FROM.get(name, name)
            columns[name] = [r.get(field) for r in part]
    return pl.DataFrame(columns, schema=PARQUET_COLUMNS)


class _Parquet:
    """A split's Parquet file, written as its records arrive: at most ``row_group`` rows held,
    compressed (Arrow IPC, zstd) until the row group is written, so that the three splits' row
    groups waiting at once stay small."""

    def __init__(self, path: Path, x: Export):
        self.path, self.x = path, x
        self.frames: list[bytes] = []
        self.rows = 0
        self.writer: Any = None

    def add(self, part: list[dict]) -> None:
        held = io.BytesIO()
        _parquet_frame(part, self.x).write_ipc(held, compression="zstd")
        self.frames.append(held.getvalue())
        self.rows += len(part)
        if self.rows >= self.x.row_group:
            self._write_held()

    def _write_held(self) -> None:
        """The held rows as one row group: their pieces side by side (pyarrow writes a chunked
        table without joining it), so a row group's rows are in memory once, not three times
        (concatenated, rechunked, converted): the train file's flush rose 173 MB over the records pass at 100k
        calls, now 131 MB."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        frames, self.frames, self.rows = self.frames, [], 0
        table = pa.concat_tables([pl.read_ipc(io.BytesIO(f)).to_arrow() for f in frames])
        del frames
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table, row_group_size=max(table.num_rows, 1))

    def close(self) -> None:
        if self.frames or self.writer is None:
            self._write_held()
        self.writer.close()


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class ExportFormat:
    path: str | None  # "{split}" is replaced by the split; without it, one file of every record
    about: str  # the card's description of the files
    encode: Callable[[dict, Export], bytes] | None = None  # one record -> its JSON text (``dumps``) ...
    jsonl: bool = False  # ... as JSON lines, else a JSON array
    write: Callable[[Path, Export], Any] | None = None  # or a writer: .add(records), .close()
    splits: tuple[str, ...] = SPLITS  # the splits that get a file
    holds: Callable[[dict, Export], bool] | None = None  # the records it holds (None: all)
    files: tuple[tuple[str, Callable[[list[str], Export], Any]], ...] = ()  # (path, data(splits written))

    def paths(self) -> list[str]:
        """Its files as the card names them."""
        per_split = self.path is not None and "{split}" in self.path
        names = (
            []
            if self.path is None
            else [self.path.format(split="<split>")]
            if not per_split or self.splits == SPLITS
            else [self.path.format(split=s) for s in self.splits]
        )
        return names + [rel for rel, _ in self.files]


def _tools_json(splits: list[str], x: Export) -> list[dict]:
    return x.catalog.tools_json()


def _function_mapping(splits: list[str], x: Export) -> dict:
    return function_mapping(x.catalog)


CATALOG_FILES = (("tools.json", _tools_json), ("function_mapping.json", _function_mapping))

FORMATS: dict[str, ExportFormat] = {
    "biotool": ExportFormat(
        "biotool/{split}.json",
        encode=_biotool,
        holds=_in_biotool,
        about="BioTool's record format (user_query, function_calling, observation, database, tool) in "
        "BioTool's names: database/tool as its dispatcher imports them, the observation a JSON value. "
        "Every file in `biotool/` holds only calls BioTool's own scripts can run: items of a function "
        "marked `biotool_runs: false` in the catalog (docs/biotool_deviations.md) are in the other formats only",
    ),
    "biotool_all": ExportFormat(
        "biotool/BioTool.json",
        encode=_biotool,
        holds=_in_biotool,
        about="the records of `biotool/<split>.json` in one file, as BioTool's BioTool.json",
    ),
    "biotool_kinds": ExportFormat(
        "biotool/item_kinds/{split}.json",
        encode=_biotool_set,
        holds=_set_in_biotool,
        about="BioTool extension (not read by BioTool's scripts): the parallel, multi_step and no_tool items, "
        "which BioTool's one-call records cannot hold: user_query, kind, calls (each call a BioTool record's "
        "function_calling, observation, database and tool, plus depends_on: the 0-based call whose observation "
        "fed it), answer (a no_tool item's reply, null otherwise). docs/item_kinds.md",
    ),
    "biotool_sharegpt": ExportFormat(
        "biotool/BioTool_{split}.json",
        encode=_biotool_sharegpt,
        splits=("train", "test"),
        holds=_in_biotool,
        files=tuple((f"biotool/{rel}", data) for rel, data in CATALOG_FILES),
        about="BioTool's train/test files as its convert.py writes them (ShareGPT: system, human and "
        "function_call turns; tools in the OpenAI form; validation items only in our split files), "
        "with its tools.json and function_mapping.json: the folder can stand in for BioTool's `data/`",
    ),
    "sharegpt": ExportFormat(
        "sharegpt/{split}.json",
        encode=_sharegpt,
        files=(("sharegpt/dataset_info.json", _sharegpt_info),),
        about="LLaMA-Factory ShareGPT (conversations, system, tools in the OpenAI form; item_id, reviewed_by and "
        "response_provenance for filtering, which LLaMA-Factory ignores) and its dataset entries",
    ),
    "openai": ExportFormat(
        "openai/{split}.jsonl",
        encode=_openai,
        jsonl=True,
        about="OpenAI chat fine-tuning: messages with the assistant's tool call(s) (parallel: several in one "
        "message, `parallel_tool_calls` true; multi_step: a tool message with each observation before the next "
        "call; no_tool: an answer without tool_calls), tools",
    ),
    "parquet": ExportFormat(
        "parquet/{split}.parquet",
        write=_Parquet,
        about="every column, for SQL (`biocurate sql --parquet <this folder>`), with `reviewed_by` "
        "(human / script) and `response_provenance` (live / recorded / fixture / illustrative) to filter on",
    ),
    "catalog": ExportFormat(
        None,
        files=CATALOG_FILES,
        about="the schemas (OpenAI form) and BioTool's database/tool of every catalog function, also of "
        "those no item calls",
    ),
}
