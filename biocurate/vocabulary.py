"""The words every stage shares about a call: its identifiers, its arguments as text, question styles.

The generator writes questions with them, the judge and quality checks hold questions to them,
the eval baseline substitutes them; so they live here, next to the catalog, and not in any of
those stages.
"""
from __future__ import annotations

from biocurate.catalog import Tool

STYLES = ("broad", "specific")


def argument_text(value) -> str:
    """An argument value as it is written in a question."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def identifiers(tool: Tool, arguments: dict) -> list[str]:
    """Argument values that must appear verbatim in every question about this call."""
    return [argument_text(arguments[name]) for name, p in tool.function.params.items()
            if p.identifier and name in arguments]
