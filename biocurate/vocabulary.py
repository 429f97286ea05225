"""The words every stage shares about a call: its identifiers, its arguments as text, question styles.

The generator writes questions with them, the judge and quality checks hold questions to them,
the eval baseline substitutes them; so they live here, next to the catalog, and not in any of
those stages. Which values a question must keep verbatim, and how it mentions the others, is
decided by the mention rules (``catalog/mentions.yaml``, ``biocurate.mentions``).
"""

from __future__ import annotations

from biocurate.catalog import Tool
from biocurate.mentions import MentionRules, mention_rules

STYLES = ("broad", "specific")


def argument_text(value) -> str:
    """An argument value as it is written in a question."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def identifiers(tool: Tool, arguments: dict, rules: MentionRules | None = None) -> list[str]:
    """Argument values that must appear verbatim in every question about this call: accessions,
    stable ids, rsIDs, HGVS, coordinates, sequences, gene symbols, also inside a query string
    (``gene:TP53 AND organism_id:9606`` -> TP53); never a whole query string."""
    return (rules or mention_rules()).identifiers(tool, arguments)
