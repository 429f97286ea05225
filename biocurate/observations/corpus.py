"""Recorded response bodies with the catalog call each one answers (for benches and tests).

A snapshot (``index.tsv`` + ``responses/``, see ``biocurate.snapshot``) names its bodies
``<function>__<key>.<ext>``; the call's arguments are read back from the recorded URL (path
placeholders, query parameters by their wire names, a POST form). Protocol pages that answer
no catalog function (BLAST's SearchInfo polls) come back with ``tool = None``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from biocurate.catalog import Catalog, Tool


@dataclass(frozen=True)
class RecordedCall:
    file: str
    tool: Tool | None
    arguments: dict[str, Any]
    status: int
    content_type: str
    body: bytes
    origin: str


def _typed(tool: Tool, name: str, raw: str) -> Any:
    kind = tool.function.params[name].type
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean":
        return raw.lower() in ("1", "true")
    return raw


def arguments_from_url(tool: Tool, url: str) -> dict[str, Any]:
    """The arguments of ``tool`` that produce a recorded ``url`` (``display_url`` form, `` body=`` form).

    Path placeholders are matched against the function's path; query and form parameters are
    mapped back from their wire names; fixed parameters are left out.
    """
    fn = tool.function
    shown, _, form = url.partition(" body=")
    parts = urlsplit(shown)
    pattern = re.escape(fn.path)
    for name in fn.params:
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
    root = urlsplit(tool.base_url).path.rstrip("/")
    found = re.fullmatch(root + pattern, parts.path)
    args: dict[str, Any] = {}
    if found:
        args.update({k: _typed(tool, k, unquote(v)) for k, v in found.groupdict().items()})
    by_wire = {(p.http_name or n): n for n, p in fn.params.items()}
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if form:
        pairs += [(k, str(v)) for k, v in json.loads(form).items()]
    for wire, value in pairs:
        param_name = by_wire.get(wire)
        if param_name is None or str(fn.fixed.get(wire, "\0")) == value:
            continue
        if fn.params[param_name].type == "array":
            args.setdefault(param_name, []).extend(value.split(","))
        else:
            args[param_name] = _typed(tool, param_name, value)
    return args


def snapshot_calls(folder: Path, catalog: Catalog) -> Iterator[RecordedCall]:
    """Every body of a snapshot folder with its function and arguments."""
    with (Path(folder) / "index.tsv").open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            name = Path(row["file"]).name.split("__")[0]
            tool = catalog[name] if name in catalog else None
            args = arguments_from_url(tool, row["url"]) if tool else {}
            yield RecordedCall(
                row["file"],
                tool,
                args,
                int(row["status"]),
                row["content_type"],
                (Path(folder) / row["file"]).read_bytes(),
                row["origin"],
            )


def reference_calls(folder: Path, catalog: Catalog) -> Iterator[RecordedCall]:
    """Every body of a reference folder (``tests/data/real_responses``: function and arguments in columns)."""
    with (Path(folder) / "index.tsv").open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            tool = catalog[row["function"]] if row["function"] else None
            yield RecordedCall(
                row["file"],
                tool,
                json.loads(row["arguments"]),
                int(row["status"]),
                row["content_type"],
                (Path(folder) / row["file"]).read_bytes(),
                "real",
            )
