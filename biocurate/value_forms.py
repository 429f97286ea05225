"""How one argument value is written: the forms a call may use, its canonical form, its wire form.

BioTool's calls (and the schemas it publishes) carry values in the forms its Python wrappers
accept, and the catalog accepts the same ones (``tests/data/biotool`` pins them):

- a flag (``boolean``) as ``true``/``false``, ``1``/``0`` or ``"1"``/``"0"`` (BioTool's VEP calls use
  0/1 integers; Ensembl puts 1/0 on the wire, UniProt ``true``/``false``);
- a list parameter as a comma-separated string (``fields="accession,gene_names"``) or a JSON list;
- a string parameter as a number too (the wrappers send ``str(value)``), an integer or number
  parameter as its decimal text;
- ``null`` for an optional parameter: the parameter is not sent.

The canonical form (for keys, dedup and exact match) is the argument rule documented in
``biocurate.metrics``: types normalised, lists as sorted sets, flags as booleans. The wire form is
what goes on the HTTP request, per the parameter's ``encode``:

``plain``  ``str(value)``; a list is sent as one repeated parameter per item (as ``requests`` does)
``split``  a comma-separated string (or a list) sent as one repeated parameter per item
``csv``    a list joined with commas
``repeat`` same as plain (kept for older specs)
``json``   the value as JSON text
``int``    a flag as ``1``/``0``
``bool``   a flag as ``true``/``false``
``crlf``   text where a typed ``%0D`` / ``%0A`` is a line break (E-utilities' citation separator)

This module knows nothing of the catalog: the catalog's ``Param`` passes its own attributes.
"""

from __future__ import annotations

import json
from typing import Any

from biocurate.hashing import canonical_json

TRUE_WORDS = {"true", "yes", "1", "y", "t"}
FALSE_WORDS = {"false", "no", "0", "n", "f"}
_INTEGER_TEXT = r"^\s*[+-]?[0-9]+\s*$"
_NUMBER_TEXT = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"


def split_items(value: Any) -> list:
    """The items of a list value: a JSON list, or a comma-separated string (blank items dropped)."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value]


# ---------------------------------------------------------------- accepted forms (JSON Schema)
def _bounds(schema: dict, minimum: float | None, maximum: float | None) -> dict:
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _scalar_forms(
    kind: str,
    *,
    enum: list | None = None,
    pattern: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> list[dict]:
    if kind == "boolean":
        return [{"type": "boolean"}, {"enum": [0, 1]}, {"enum": ["0", "1", "true", "false"]}]
    if kind == "integer":
        return [_bounds({"type": "integer"}, minimum, maximum), {"type": "string", "pattern": _INTEGER_TEXT}]
    if kind == "number":
        return [_bounds({"type": "number"}, minimum, maximum), {"type": "string", "pattern": _NUMBER_TEXT}]
    if enum:
        return [{"enum": list(enum)}]
    text: dict[str, Any] = {"type": "string"}
    if pattern:
        text["pattern"] = pattern
    return [text, {"type": "number"}]


def accepted_schema(
    kind: str,
    *,
    required: bool = False,
    many: bool = False,
    also: tuple[str, ...] = (),
    item_kind: str = "string",
    **rules: Any,
) -> dict:
    """The JSON Schema of every form a call may give this parameter's value in."""
    forms: list[dict[str, Any]]
    if kind == "array":
        forms = [
            {"type": "array", "items": {"anyOf": _scalar_forms(item_kind)}},
            {"type": "string"},
        ]  # a comma-separated string
    else:
        forms = _scalar_forms(kind, **rules)
        for extra in also:
            forms += _scalar_forms(extra)
        if many:
            forms.append({"type": "array", "minItems": 1, "items": {"anyOf": list(forms)}})
    if not required:
        forms.append({"type": "null"})
    return forms[0] if len(forms) == 1 else {"anyOf": forms}


def describe_forms(kind: str, *, many: bool = False, also: tuple[str, ...] = (), enum: list | None = None) -> str:
    """The accepted forms in words, for error messages."""
    words = {
        "boolean": "a flag (true/false or 1/0)",
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "array": "a list or a comma-separated string",
    }
    text = f"one of {enum}" if enum and kind == "string" else words.get(kind, kind)
    for extra in also:
        text += f" or {words.get(extra, extra)}"
    if many:
        text += " (or a list of them)"
    return text


# ---------------------------------------------------------------- canonical form
def normalize_scalar(value: Any, kind: str, enum: list | None = None) -> Any:
    """One value as its type says (the argument rule of ``biocurate.metrics``)."""
    if kind == "integer":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value.strip())
        return value
    if kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                return value
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        return value.strip() if isinstance(value, str) else value
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (int, float)):
        value = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if isinstance(value, str):
        value = value.strip()
        for member in enum or []:
            if isinstance(member, str) and member.lower() == value.lower():
                return member
    return value


def normalize(
    value: Any, kind: str, *, is_list: bool = False, item_kind: str = "string", enum: list | None = None
) -> Any:
    """The canonical form: a list as the sorted set of its normalised items, else one scalar."""
    if is_list:
        scalar_kind = item_kind if kind == "array" else kind
        items = [normalize_scalar(v, scalar_kind, enum) for v in split_items(value)]
        return sorted({canonical_json(v): v for v in items}.values(), key=canonical_json)
    return normalize_scalar(value, kind, enum)


# ---------------------------------------------------------------- BioTool form
def biotool_form(value: Any, kind: str, encode: str) -> Any:
    """A value as a BioTool call writes it: Ensembl flags 1/0, UniProt flags true/false, lists as text."""
    if value is None:
        return None
    if kind == "boolean" and encode in ("int", "bool"):
        flag = normalize_scalar(value, "boolean")
        if isinstance(flag, bool):
            return int(flag) if encode == "int" else flag
        return value
    if encode == "split" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value


# ---------------------------------------------------------------- wire form
def _text(value: Any) -> str:
    return str(value)


def wire_values(value: Any, encode: str) -> list[str]:
    """The query (or form) values one argument puts on the wire; nothing for null or empty text."""
    if value is None or value == "" or value == []:
        return []
    if encode in ("int", "bool"):
        flag = normalize_scalar(value, "boolean")
        if isinstance(flag, bool):
            return [("1" if flag else "0") if encode == "int" else ("true" if flag else "false")]
        return [_text(value)]
    if encode == "split":  # split as BioTool's wrappers split: no trimming
        if isinstance(value, str):
            return value.split(",")
        return [_text(v) for v in value] if isinstance(value, list) else [_text(value)]
    if encode == "csv":
        return [",".join(_text(v) for v in value)] if isinstance(value, list) else [_text(value)]
    if encode == "json":
        return [json.dumps(value)]
    if encode == "crlf":
        return [_text(value).replace("%0D", "\r").replace("%0A", "\n")]
    if isinstance(value, list):
        return [_text(v) for v in value]
    return [_text(value)]
