"""How a biologist says a call's argument values: the words a question uses for them.

``say`` turns a call's arguments into the fields question templates are filled with: every
argument under its own name, in words (a species by its common name, a 1000 Genomes
population code with who was sampled, an Entrez database by the name people use, a code split
into words), plus the parts of a query-language argument (a UniProt query, an Entrez search
term, an ECitMatch citation string), each entity inside it on its own (``gene:TP53 AND
organism_id:9606`` gives ``q_gene`` "TP53" and ``q_species`` "human"). Accessions, stable ids,
rsIDs, HGVS, coordinates, sequences and gene symbols are kept as written.

What a question must mention is not decided here: the mention rules (``biocurate.mentions``,
``catalog/mentions.yaml``) say it, the generator keeps only questions that meet them, and
``mention_hints`` writes them, in these words, for the LLM generator's and judge's prompts
(what to keep verbatim, what to say in words, what may be left unsaid). The words themselves
are data: ``catalog/words.yaml``; queries are read by ``biocurate.query_language``; species and
taxon names come from the mention rules' taxon table (``biocurate.mention_forms.load_taxa``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from biocurate.catalog import CATALOG_DIR, Tool, read_yaml
from biocurate.hashing import content_hash
from biocurate.mention_forms import Taxon, scientific_name
from biocurate.mentions import mention_rules
from biocurate.query_language import Term, query_tokens
from biocurate.vocabulary import argument_text

_SNAKE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")
_OPERATORS = {"AND": "and", "OR": "or", "NOT": "but not"}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
# How the prompts name the parts of a query-language argument.
_ROLES = {
    "q_gene": "gene symbol, verbatim",
    "q_species": "species",
    "q_reviewed": "review status",
    "q_accession": "accession, verbatim",
    "q_identity": "sequence identity level",
    "q_parent": "parent taxon",
    "q_text": "search words",
}
# Thresholds and sizes, said in words when mentioned.
_AMOUNTS = {
    "r2": "an r2 of at least {v}",
    "d_prime": "a D' of at least {v}",
    "window_size": "within {v} kb",
    "expect": "an E-value below {v}",
    "hitlist_size": "the top {v} hits",
    "size": "the first {v}",
    "retmax": "the first {v}",
    "expand_5prime": "{v} bases upstream",
    "expand_3prime": "{v} bases downstream",
}


@dataclass
class Said:
    """The template fields of one call."""

    fields: dict[str, str] = field(default_factory=dict)


def _words(code: str) -> str:
    """A code as words: snake_case and CamelCase split (EnsemblPlants -> Ensembl Plants)."""
    return _CAMEL.sub(" ", code.replace("_", " ")).strip()


class Wording:
    """The words for one catalog (``catalog/words.yaml``, the taxa of the mention rules)."""

    def __init__(self, catalog_dir: Path = CATALOG_DIR):
        self.words = read_yaml(Path(catalog_dir) / "words.yaml")
        self._rules = mention_rules(Path(catalog_dir))  # the one table of taxon names
        taxa = {k: (t.names, t.common) for k, t in sorted(self._rules.taxa.items())}
        self.version = content_hash(self.words, taxa, length=8)

    # --- single values ------------------------------------------------------------------

    def species(self, value) -> Taxon | None:
        """A known species or taxon by any of its names or its id (``MentionRules.taxon``)."""
        return self._rules.taxon(str(value))

    def species_words(self, value) -> tuple[str, str]:
        """(how people call it, its scientific name) of a species value, known or not."""
        sp = self.species(value)
        if sp:
            return sp.display, sp.scientific
        text = str(value)
        if re.fullmatch(r"[a-z]+(_[a-z]+)+", text):  # a production name we have no common name for
            name = scientific_name(text)
            return name, name
        return text, text

    def taxon_words(self, value) -> str:
        sp = self.species(value)
        return sp.display if sp else f"taxon {value}"

    def population(self, value: str) -> tuple[str, str, str]:
        """(code, "1000 Genomes CEU", who was sampled) of a population name like 1000GENOMES:phase_3:CEU."""
        code = value.split(":")[-1]
        people = self.words["populations"].get(code.upper(), "")
        project = "1000 Genomes" if value.upper().startswith("1000GENOMES") else _words(value.split(":")[0])
        label = f"{project} {code}" if ":" in value else code
        return code, label, people or f"the {label} samples"

    def listed(self, items: list[str]) -> str:
        items = [i for i in items if i]
        if len(items) <= 1:
            return "".join(items)
        return ", ".join(items[:-1]) + " and " + items[-1]

    def return_fields(self, value) -> str:
        names = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        table = self.words["return_fields"]
        return self.listed([table.get(n, n.replace("_", " ")) for n in names if n])

    # --- query languages ----------------------------------------------------------------

    def _role(self, role: str, value: str, parts: dict[str, list[str]]) -> str:
        """Record one term of a query under its role; the words for it."""
        value = value.strip().strip('"')
        if role == "species":
            words = self.taxon_words(value) if value.isdigit() else self.species_words(value)[0]
        elif role == "reviewed":
            words = "reviewed" if value.lower() == "true" else "unreviewed"
        elif role == "identity":
            try:
                words = f"{round(float(value) * 100)}%"
            except ValueError:
                words = value
        elif role == "parent":
            words = self.taxon_words(value)
        elif role in ("gene", "accession", "text"):
            words = value
        else:
            words = role.replace("{value}", value)
            role = "text"
        parts.setdefault(role, []).append(words)
        return words

    def uniprot_query(self, query: str) -> tuple[str, dict[str, list[str]]]:
        """(the query in words, role -> words) of a UniProt query (field:value terms, AND/OR/NOT)."""
        return self._query_words(query, self.words["uniprot_fields"])

    def entrez_term(self, term: str) -> tuple[str, dict[str, list[str]]]:
        """(the search in words, role -> words) of an Entrez search term (value[tag] terms, AND/OR/NOT)."""
        return self._query_words(term, self.words["entrez_tags"])

    def _query_words(self, text: str, table: dict[str, str]) -> tuple[str, dict[str, list[str]]]:
        """The terms of ``biocurate.query_language`` in words: a known field or tag by its role in
        ``table``, an unknown one next to its value, adjacent bare words as one search phrase."""
        parts: dict[str, list[str]] = {}
        said: list[str] = []
        for token in _joined_words(query_tokens(text)):
            if isinstance(token, str):
                said.append(_OPERATORS[token])
            elif token.field is None:
                said.append(self._role("text", token.value, parts))
            elif token.field in table:
                said.append(self._role(table[token.field], token.value, parts))
            elif token.syntax == "field":
                said.append(self._role(f"{_words(token.field)} {{value}}", token.value, parts))
            else:
                said.append(self._role(f"{{value}} {token.field}", token.value, parts))
        return self._phrase(parts, said), parts

    def _phrase(self, parts: dict[str, list[str]], said: list[str]) -> str:
        """A noun phrase for a plain conjunction (reviewed human CFTR at 90% identity), else the terms in order."""
        if any(s in ("or", "but not") for s in said) or any(len(v) > 1 for v in parts.values()):
            return " ".join(said)
        head = parts.get("gene", []) + parts.get("accession", []) + parts.get("text", [])
        words = parts.get("reviewed", []) + parts.get("species", []) + head
        if "parent" in parts:
            words.append(f"the taxa directly below {parts['parent'][0]}")
        if "identity" in parts:
            words.append(f"at {parts['identity'][0]} identity")
        return " ".join(words)

    def citation(self, bdata: str) -> dict[str, str]:
        """The parts of an ECitMatch citation string journal|year|volume|first page|author|key|."""
        cells = (bdata.split("|") + [""] * 5)[:5]
        return dict(zip(("cite_journal", "cite_year", "cite_volume", "cite_page", "cite_author"), cells, strict=True))

    # --- one call -------------------------------------------------------------------------

    def say(self, tool: Tool, arguments: dict, entity_fields: dict | None = None) -> Said:
        """The template fields of one call (entity fields first, the arguments over them)."""
        out = Said()
        f = out.fields
        for name, value in (entity_fields or {}).items():
            # a seed's name in snake_case (an SO term such as stop_gained) is said in words
            f[name] = str(value).replace("_", " ") if _SNAKE.fullmatch(str(value)) else str(value)
        if entity_fields and entity_fields.get("species"):
            self._say_species(out, "species", entity_fields["species"])
            known = self.species(entity_fields["species"])
            if known:
                f.setdefault("taxon_id", known.taxon_id)
        w = self.words
        species_params = set(w["species_params"]) | set(w["species_params_by_function"].get(tool.name, []))
        for name, value in arguments.items():
            param = tool.function.params.get(name)
            text = argument_text(value)
            f[name] = text
            if name in species_params:
                self._say_species(out, name, value)
            elif name in w["species_list_params"]:
                items = value if isinstance(value, list) else str(value).split(",")
                f[name] = self.listed([self.species_words(v.strip())[0] for v in items if str(v).strip()])
            elif name in w["taxon_params"]:
                f[name] = self.taxon_words(value)
            elif name == "population_name":
                f["population_code"], f["population"], f["population_people"] = self.population(text)
                f[name] = f["population_code"]
            elif tool.database == "UniProt" and name == "query" and not _is_sequence(text):
                self._say_query(out, name, *self.uniprot_query(text))
            elif tool.name == "esearch" and name == "term":
                self._say_query(out, name, *self.entrez_term(text))
            elif name == "bdata":
                f.update(self.citation(text))
            elif param is not None and param.identifier:
                f[name] = self._say_code(tool, name, value, text)
                if f[name] == text and _SNAKE.fullmatch(text):  # a name such as protein_coding, in words
                    f[name] = w["biotypes"].get(text, text.replace("_", " "))
                if f[name] != text:  # a code with words for it (EnsemblPlants): both forms are offered
                    f[f"{name}_code"] = text
            else:
                f[name] = self._say_code(tool, name, value, text)
                if name in _AMOUNTS and name not in w["taxon_params"]:
                    f[f"{name}_words"] = _AMOUNTS[name].format(v=text)
        if "db" in arguments and tool.database == "NCBI":
            self._say_entrez_db(out, "db", arguments)
        if "dbfrom" in arguments:
            self._say_entrez_db(out, "dbfrom", arguments)
        return out

    def plural(self, display: str) -> str:
        """The plural of a species' common name (humans, mice); a scientific name stays as it is."""
        return self.words["species_plurals"].get(display, display)

    def _say_species(self, out: Said, name: str, value) -> None:
        display, scientific = self.species_words(value)
        out.fields[name], out.fields[f"{name}_name"] = display, scientific
        out.fields[f"{name}_plural"] = self.plural(display)
        if name == "species":
            out.fields["species_common"] = display

    def _say_query(self, out: Said, name: str, phrase: str, parts: dict[str, list[str]]) -> None:
        out.fields[name] = phrase
        for role, words in parts.items():
            out.fields[f"q_{role}"] = self.listed(words)
        if "species" in parts:
            known = [(self.species(v), v) for v in parts["species"]]
            out.fields["q_species_name"] = self.listed([sp.scientific if sp else v for sp, v in known])
            out.fields["q_species_plural"] = self.listed([self.plural(v) for v in parts["species"]])

    def _say_entrez_db(self, out: Said, name: str, arguments: dict) -> None:
        entry = self.words["entrez_databases"].get(str(arguments[name]))
        if entry:
            out.fields[name], out.fields[f"{name}_record"] = entry["name"], entry["record"]

    def _say_code(self, tool: Tool, name: str, value, text: str) -> str:
        w = self.words
        tables = {
            "method": w["compara_methods"],
            "klass": w["compara_classes"],
            "group": w["biotype_groups"],
            "object_type": w["object_types"],
            "feature": w["features"],
            "feature_type": w["features"],
            "external_db": w["external_dbs"],
            "mask": w["mask"],
            "biotype": w["biotypes"],
            "rettype": w["record_formats"],
            "database": w["blast_databases"] if tool.name == "blast" else {},
        }
        if name == "type_":
            return w["homology_types"].get(text, "SMART" if text.lower() == "smart" else text)
        if name == "fields":
            return self.return_fields(value)
        if name == "sequence" and tool.name == "get_sequence_by_id":
            return w["sequence_types"].get(text, text)
        if name not in tables:
            if name == "division":
                return _words(text)
            if name == "filter_like":  # a name pattern (RefSeq%): the name, without the wildcard
                return text.replace("%", "").replace("_", " ").strip()
            if name == "sort":
                field_name = text.split()[0]
                return f"sorted by {_words(field_name)}"
            return text
        return tables[name].get(text, _words(text))

    def mention_hints(self, tool: Tool, arguments: dict, mentions: tuple = ()) -> dict[str, list[str]]:
        """For the LLM prompts, from the call's ``mentions`` (``biocurate.mentions``: what a question
        must mention, and how): what to keep verbatim, what to say in words (ours first, then the
        other accepted forms), what may be left unsaid (in our words, when we have some)."""
        said = self.say(tool, arguments)
        required: dict[str, list] = {}
        for m in mentions:
            if not m.absent:
                required.setdefault(m.param.split(" ")[0], []).append(m)
        f = said.fields
        keep, words, unsaid = [], [], []
        for name, value in arguments.items():
            text = argument_text(value)
            shown = f.get(name, text)
            needed = required.get(name)
            if needed and all(m.kind in ("verbatim", "coordinates") for m in needed):
                keep.append(f"{text} ({name})")
            elif needed and name in ("query", "term") and any(k.startswith("q_") for k in f):
                parts = [f"{f[k]} ({_ROLES.get(k, k)})" for k in sorted(_ROLES) if k in f]
                words.append(f"{name} = {text!r}: never write it as it is; mention {', '.join(parts)}")
            elif needed and name == "bdata":
                words.append(
                    f"{name} = {text!r}: never write it as it is; describe the article (journal "
                    f"{f['cite_journal']}, year {f['cite_year']}, volume {f['cite_volume']}, "
                    f"first page {f['cite_page']}, first author {f['cite_author']})"
                )
            elif needed:
                forms = [form for m in needed for form in m.forms if form and form != shown]
                say = shown if shown != text or not forms else forms[0]
                accepted = ", ".join(dict.fromkeys(form for form in forms if form != say))
                words.append(f"{name} = {text!r}: say {say!r}" + (f" (or {accepted})" if accepted else ""))
            elif f"{name}_words" in f:
                words.append(f"{name} = {text!r}: if you mention it, say {f[name + '_words']!r}")
            elif shown != text:
                words.append(f"{name} = {text!r}: if you mention it, say {shown!r}")
            else:
                unsaid.append(f"{name} = {text}")
        return {"keep": keep, "words": words, "unsaid": unsaid}

    def prompt_hints(self, tool: Tool, arguments: dict, mentions: tuple = ()) -> dict[str, str]:
        """``mention_hints`` as prompt text: one indented line each, "(none)" for an empty list."""
        return {
            kind: "\n".join(f"  - {line}" for line in lines) if lines else "  (none)"
            for kind, lines in self.mention_hints(tool, arguments, mentions).items()
        }


def _joined_words(tokens: list[Term | str]) -> list[Term | str]:
    """Adjacent bare words (no operator between) as one phrase (``baker's yeast``), the two ends
    of a range as one value (``length:[100 TO 200]``: length 100 to 200)."""
    out: list[Term | str] = []
    for token in tokens:
        last = out[-1] if out else None
        if isinstance(token, Term) and isinstance(last, Term) and token.syntax == last.syntax == "word":
            out[-1] = Term(None, f"{last.value} {token.value}", "word", token.prefix)
        elif (
            isinstance(token, Term)
            and isinstance(last, Term)
            and (token.field, token.syntax) == (last.field, last.syntax)
        ):
            out[-1] = Term(token.field, f"{last.value} to {token.value}", token.syntax)
        else:
            out.append(token)
    return out


def _is_sequence(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z]{20,}", text) is not None and text.isupper()


@lru_cache(maxsize=4)
def wording(catalog_dir: Path = CATALOG_DIR) -> Wording:
    return Wording(Path(catalog_dir))
