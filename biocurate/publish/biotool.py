"""BioTool's names and values in our exports (github.com/gxx27/BioTool).

Where BioTool keeps a function (its dispatcher imports ``<database>.<tool>.api``), its
``function_mapping.json``, and an observation as BioTool stores it: a JSON value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from biocurate.catalog import Catalog, Tool


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def biotool_place(tool: Tool) -> dict[str, str]:
    """Where BioTool keeps a function: its dispatcher imports ``<database>.<tool>.api`` (lower-case
    ``ncbi``/``ensembl``/``uniprot``, then the tool group's module)."""
    return {"database": tool.source, "tool": tool.group}


def runs_in_biotool(tool: Tool) -> bool:
    """Can BioTool's own dispatcher run our calls of this function? No where the catalog says
    ``biotool_runs: false`` (a deviation of docs/biotool_deviations.md)."""
    return tool.function.biotool_runs


def function_mapping(catalog: Catalog) -> dict[str, dict[str, str]]:
    """BioTool's function_mapping.json for every catalog function: a prediction naming a function
    that this version's items do not use is still found."""
    return {t.name: biotool_place(t) for t in sorted(catalog, key=lambda t: t.name)}


_CUT = re.compile(r"\.\.\.\(\+(\d+) chars\)$")


def observation_value(text: str | None) -> Any:
    """The observation as BioTool stores it: a JSON value, never text cut inside a string.

    Our observations are JSON text; one cut to its size bound (``...(+N chars)`` at the end) is
    closed at its last complete element, with a ``"..."`` marker where the rest was. Text that is
    not JSON (a wrapper that answers text) stays a string, as BioTool keeps such answers.
    """
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    cut = _CUT.search(text)
    body = text[: cut.start()] if cut else text
    if body[:1] not in ("{", "["):
        return text
    # One pass outside strings: after each opener and before each comma the text so far is a
    # complete prefix; the last such point, with its open containers closed, is valid JSON.
    stack: list[str] = []
    points: list[tuple[int, str, bool]] = []  # (cut position, closers, inside an empty container)
    in_string = escaped = False
    for i, ch in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            points.append((i + 1, "".join(reversed(stack)), True))
        elif ch in "}]":
            if stack:
                stack.pop()
        elif ch == "," and stack:
            points.append((i, "".join(reversed(stack)), False))
    beyond = int(cut.group(1)) if cut else 0
    for position, closers, empty in reversed(points):
        rest = _dumps(f"...(+{len(body) - position + beyond} chars)")
        marker = ("" if empty else ", ") + (rest if closers[0] == "]" else f'"...": {rest}')
        try:
            return json.loads(body[:position] + marker + closers)
        except ValueError:
            continue
    return text
