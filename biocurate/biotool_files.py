"""Reading BioTool's dataset files: its two layouts, told apart by each record's shape.

- ``biotool``: ``BioTool.json``, a JSON list of ``{user_query, function_calling: {name,
  arguments}, observation, database, tool}`` records;
- ``sharegpt``: ``BioTool_train.json`` / ``BioTool_test.json`` (LLaMA-Factory's ShareGPT layout,
  BioTool's ``script/data_construction/convert.py``), a list of ``{conversations: [{from, value}],
  tools}`` where the ``function_call`` turn's value is the JSON text of ``{name, arguments}``; an
  ``observation`` turn after it, when there is one, is the observation (convert.py drops it).

The split is the file name's (``train``, ``test``, ``valid``/``validation``/``dev``; none for
``BioTool.json``). A ``.jsonl`` file holds one record per line; a folder stands for its ``*.json``
and ``*.jsonl`` files. A record that cannot be read is a ``Problem``: its file, its number and
everything that is wrong with it, with the raw text (``biocurate.biotool_import`` stores it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biocurate.hashing import content_hash

SPLIT_WORDS = {"train": "train", "test": "test", "valid": "validation", "validation": "validation", "dev": "validation"}
HUMAN_ROLES = ("human", "user")
_REPORTED = object()  # a part of a record whose problem is already reported
_SPLIT_IN_NAME = re.compile(r"(?:^|[_\-.])(train|test|valid|validation|dev)(?:$|[_\-.])", re.I)


@dataclass
class Record:
    """One good record, in BioTool's terms."""

    file: Path
    number: int  # 1-based position in the file (the line, for JSONL)
    format: str  # biotool | sharegpt
    split: str | None
    sha256: str
    user_query: str
    function: str
    arguments: dict
    observation: str | None  # as BioTool stored it; None when the record has none
    database: str | None
    tool: str | None


@dataclass
class Problem:
    """A record (or a whole file) that could not be read, and why."""

    file: Path
    number: int | None  # None: the whole file
    message: str
    raw: str | None = None
    format: str | None = None

    def __str__(self) -> str:
        unit = "line" if self.file.suffix == ".jsonl" else "record"
        where = f"{self.file}" if self.number is None else f"{self.file}: {unit} {self.number}"
        return f"{where}: {self.message}"


@dataclass
class FileRead:
    path: Path
    sha256: str
    split: str | None
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: str | None = None  # why the file holds no records to import (BioTool's tools.json, ...)


def dataset_files(paths: Sequence[Path | str]) -> list[Path]:
    """The files to read: each path given, a folder as its ``*.json`` and ``*.jsonl`` files."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".jsonl"))
            if not found:
                raise FileNotFoundError(f"{path}: no .json or .jsonl files in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return list(dict.fromkeys(files))


def companion_file(whole: Any) -> str | None:
    """What a file BioTool ships beside its records is, told by its shape (None: anything else)."""
    if (
        isinstance(whole, list)
        and whole
        and all(
            isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict) for t in whole
        )
    ):
        return f"BioTool's tool schemas (tools.json: {len(whole)} tools), not records"
    if (
        isinstance(whole, dict)
        and whole
        and all(isinstance(v, dict) and {"database", "tool"} <= set(v) for v in whole.values())
    ):
        return f"BioTool's function mapping (function_mapping.json: {len(whole)} functions), not records"
    return None


def split_of(path: Path) -> str | None:
    match = _SPLIT_IN_NAME.search(path.stem)
    return SPLIT_WORDS[match.group(1).lower()] if match else None


def read_file(path: Path) -> FileRead:
    """Every record of one file: the good ones and, for the others, what is wrong."""
    data = path.read_bytes()
    read = FileRead(path, hashlib.sha256(data).hexdigest(), split_of(path))
    text = data.decode("utf-8", "replace")
    if path.suffix == ".jsonl":
        items: list[tuple[int, Any, str]] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((number, json.loads(line), line))
            except ValueError as exc:
                read.problems.append(Problem(path, number, f"not valid JSON: {exc}", line))
    else:
        try:
            whole = json.loads(text)
        except ValueError as exc:
            read.problems.append(Problem(path, None, f"not valid JSON: {exc}"))
            return read
        read.skipped = companion_file(whole)
        if read.skipped:
            return read
        if not isinstance(whole, list):
            read.problems.append(Problem(path, None, f"expected a JSON list of records, found a {_kind(whole)}"))
            return read
        items = [(number, item, "") for number, item in enumerate(whole, 1)]
    for number, item, line in items:
        raw = line or json.dumps(item, ensure_ascii=False)
        try:
            read.records.append(parse_record(item, path, number, read.split))
        except ValueError as exc:
            fmt = _shape(item)
            read.problems.append(Problem(path, number, str(exc), raw, fmt))
    return read


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def _shape(item: Any) -> str | None:
    if isinstance(item, dict):
        if "conversations" in item:
            return "sharegpt"
        if "user_query" in item or "function_calling" in item:
            return "biotool"
    return None


def parse_record(item: Any, path: Path, number: int, split: str | None) -> Record:
    """A record in either layout; ValueError naming everything that is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError(f"a record must be an object, found a {_kind(item)}")
    shape = _shape(item)
    if shape is None:
        raise ValueError(
            "neither BioTool's record (user_query, function_calling) nor ShareGPT (conversations); "
            f"keys: {', '.join(sorted(item)) or 'none'}"
        )
    problems: list[str] = []
    if shape == "biotool":
        query, call, observation = item.get("user_query"), item.get("function_calling"), item.get("observation")
        database, tool = item.get("database"), item.get("tool")
        where = "function_calling"
    else:
        query, call, observation, where = _conversation(item.get("conversations"), problems)
        database = tool = None
    if query is not _REPORTED and (not isinstance(query, str) or not query.strip()):
        problems.append("user_query is missing or empty" if shape == "biotool" else "no human question")
    name, arguments = _call(call, where, problems) if call is not _REPORTED else (None, {})
    for key, value in (("database", database), ("tool", tool)):
        if value is not None and not isinstance(value, str):
            problems.append(f"{key} is a {_kind(value)}, not a string")
    if problems:
        raise ValueError("; ".join(problems))
    if observation is not None and not isinstance(observation, str):
        observation = json.dumps(observation, ensure_ascii=False)  # BioTool.json holds it as JSON
    return Record(
        path,
        number,
        shape,
        split,
        content_hash(item, length=64),
        " ".join(str(query).split()),
        str(name),
        arguments,
        observation,
        database,
        tool,
    )


def _conversation(turns: Any, problems: list[str]) -> tuple[Any, Any, str | None, str]:
    """(question, call, observation, where) from ShareGPT turns."""
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        problems.append("conversations is not a list of {from, value} turns")
        return _REPORTED, _REPORTED, None, ""
    roles = [t.get("from") for t in turns]
    if "function_call" not in roles:
        problems.append("no function_call turn")
        return next((t.get("value") for t in turns if t.get("from") in HUMAN_ROLES), None), _REPORTED, None, ""
    at = roles.index("function_call")
    question = next((t.get("value") for t in reversed(turns[:at]) if t.get("from") in HUMAN_ROLES), None)
    call = turns[at].get("value")
    if isinstance(call, str):
        try:
            call = json.loads(call)
        except ValueError as exc:
            problems.append(f"the function_call turn is not valid JSON: {exc}")
            call = _REPORTED
    following = turns[at + 1] if at + 1 < len(turns) else {}
    observation = following.get("value") if following.get("from") == "observation" else None
    return question, call, observation, "function_call"


def _call(call: Any, where: str, problems: list[str]) -> tuple[Any, dict]:
    if not isinstance(call, dict):
        problems.append(f"{where} is a {_kind(call)}, not an object with name and arguments")
        return None, {}
    name, arguments = call.get("name"), call.get("arguments", {})
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}.name is missing or empty")
    if isinstance(arguments, str):  # some tool-call formats carry the arguments as JSON text
        try:
            arguments = json.loads(arguments)
        except ValueError as exc:
            problems.append(f"{where}.arguments is text that is not JSON: {exc}")
            return name, {}
    if not isinstance(arguments, dict):
        problems.append(f"{where}.arguments is a {_kind(arguments)}, not an object")
        return name, {}
    return name, arguments
