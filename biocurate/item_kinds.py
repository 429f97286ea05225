"""The declarations of the item kinds beyond one call: ``catalog/item_kinds.yaml`` (issue 18).

A declaration names its entity type, the steps (a catalog function each, with its arguments
filled from the sampled entity or, for a later ``multi_step`` step, from a path into an earlier
step's observation) and its question templates; a ``no_tool`` declaration names a topic and why
no offered tool answers it. Loading checks every declaration against the catalog (unknown
function, unknown parameter, a path that cannot be read, a placeholder no step gives) and fails
with a ``CatalogError`` naming the file and the entry. Sampling and chaining are
``biocurate.call_sets``; docs/item_kinds.md is the contract.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from biocurate.catalog import CATALOG_DIR, Catalog, Questions, Spec, build_spec, load_catalog, read_yaml
from biocurate.errors import CatalogError
from biocurate.seeds import entity_types

KINDS = ("parallel", "multi_step", "no_tool")
# A candidate call sampled only as a step of a set (not also as a single call) has this
# template prefix: the single-item stages leave it out (docs/item_kinds.md).
SET_TEMPLATE_PREFIX = "set:"


def single_call_sql(alias: str = "c") -> str:
    """SQL: a ``candidate_calls`` row (``alias``) that is a single item's call, not only a set's step."""
    return f"{alias}.template not like '{SET_TEMPLATE_PREFIX}%'"


PATH_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
DERIVED_NAME = re.compile(r"(.+)_name(_\d+)?")


class FromObservation(Spec):
    """A later step's argument read from an earlier step's observation (parsed JSON).

    ``from``: a dotted path ("id", "idlist.0", "entries.0.accession", "0.id"); ``step``: the
    1-based step whose observation it reads (default: the step before).
    """

    path: str = Field(alias="from")
    step: int | None = Field(None, ge=1)

    @property
    def parts(self) -> list[str | int]:
        return [int(p) if p.isdigit() else p for p in self.path.split(".")]


class Step(Spec):
    function: str
    # Argument -> a "{field}" template over the entity (as a function's ``sample.args``), a
    # literal, or {from: path} (a later multi_step step). Absent: the function's own sample args.
    args: dict[str, Any] | None = None


class Declaration(Spec):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    entity: str | None = None  # entity type the set is about (None: a no_tool topic without one)
    count: int = Field(1, ge=1, le=3)  # parallel: the same steps over this many entities
    where: dict[str, str | list[str]] = Field(default_factory=dict)
    steps: list[Step] = Field(default_factory=list)
    questions: Questions
    topic: str | None = None  # no_tool
    reason: str | None = None  # no_tool: what is asked and why no offered tool returns it


class ItemKinds(Spec):
    parallel: list[Declaration] = Field(default_factory=list)
    multi_step: list[Declaration] = Field(default_factory=list)
    no_tool: list[Declaration] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ItemKinds:
        seen: set[str] = set()
        for kind in KINDS:
            for decl in getattr(self, kind):
                if decl.name in seen:
                    raise ValueError(f"{kind}: declaration name {decl.name!r} is used twice")
                seen.add(decl.name)
        return self

    def declarations(self, kind: str) -> list[Declaration]:
        return list(getattr(self, kind))

    def by_name(self, name: str) -> tuple[str, Declaration]:
        for kind in KINDS:
            for decl in getattr(self, kind):
                if decl.name == name:
                    return kind, decl
        raise CatalogError(f"no declaration {name!r} in catalog/item_kinds.yaml")


def step_args(decl: Declaration, index: int, catalog: Catalog) -> dict[str, Any]:
    """The declared arguments of step ``index`` (the function's own sample args when not given)."""
    step = decl.steps[index]
    if step.args is not None:
        return dict(step.args)
    sample = catalog[step.function].function.sample
    return dict(sample.args) if sample is not None else {}


def link(value: Any) -> FromObservation | None:
    """The observation link an argument declares ({from: path, step: n}), else None."""
    if isinstance(value, dict) and "from" in value:
        return FromObservation(**value)
    return None


def _entity_fields(decl: Declaration, types: dict) -> set[str]:
    if decl.entity is None:
        return set()
    fields = set(types[decl.entity]["fields"])
    return fields | ({"species_common", "taxon_id"} if "species" in fields else set())


def _check(kind: str, decl: Declaration, catalog: Catalog, types: dict) -> str | None:
    """The first problem of one declaration, or None."""
    if decl.entity is not None and decl.entity not in types:
        return f"entity type {decl.entity!r} is not in catalog/entities.yaml"
    fields = _entity_fields(decl, types)
    for key in decl.where:
        if key not in fields:
            return f"where: {key!r} is not a field of {decl.entity}"
    if kind == "no_tool":
        if decl.steps:
            return "a no_tool declaration has no steps"
        if not decl.topic or not decl.reason:
            return "a no_tool declaration needs a topic and a reason (why no offered tool answers it)"
    else:
        if decl.entity is None:
            return f"a {kind} declaration needs an entity type"
        calls = len(decl.steps) * decl.count
        if kind == "parallel" and not 2 <= calls <= 3:
            return f"a parallel set has 2-3 calls (steps x count), not {calls}"
        if kind == "multi_step" and (len(decl.steps) < 2 or decl.count != 1):
            return "a multi_step declaration has two or more steps over one entity"
    names: set[str] = set(fields)
    for i, step in enumerate(decl.steps):
        if step.function not in catalog:
            return f"step {i + 1}: unknown function {step.function!r} (not in the catalog)"
        tool = catalog[step.function]
        args = step_args(decl, i, catalog)
        for arg, value in args.items():
            if arg not in tool.function.params:
                return f"step {i + 1}: {step.function} has no parameter {arg!r}"
            linked = link(value) if isinstance(value, dict) else None
            if isinstance(value, dict) and linked is None:
                return f"step {i + 1}: {arg}: a mapping must be {{from: path}}"
            if linked is not None:
                if kind != "multi_step" or i == 0:
                    return f"step {i + 1}: {arg}: only a later multi_step step reads an observation"
                source = linked.step or i
                if source > i:
                    return f"step {i + 1}: {arg}: step {source} is not an earlier step"
                if not linked.path or not all(PATH_PART.fullmatch(p) for p in linked.path.split(".")):
                    return f"step {i + 1}: {arg}: bad path {linked.path!r} (dotted names and list indices)"
                continue
            for used in PLACEHOLDER.findall(value) if isinstance(value, str) else []:
                if used not in fields:
                    return f"step {i + 1}: {arg}: {{{used}}} is not a field of {decl.entity}"
        missing = [n for n, p in tool.function.params.items() if p.required and n not in args]
        if missing:
            return f"step {i + 1}: {step.function} needs {', '.join(missing)}"
    # Placeholders: call k's (1-based, in order) arguments and entity fields as {name_k}, call 1's
    # also as {name}; a multi_step question may use only the first step's.
    order = [(e, s) for e in range(decl.count) for s in range(len(decl.steps))]
    for position, (_, s) in enumerate(order if kind == "parallel" else order[:1]):
        plain = {a for a, v in step_args(decl, s, catalog).items() if link(v) is None} | fields
        names |= {f"{a}_{position + 1}" for a in plain} | (plain if position == 0 else set())
    if kind == "no_tool":
        names |= {"topic"}
    for style in ("broad", "specific"):
        for template in getattr(decl.questions, style):
            for used in PLACEHOLDER.findall(template):
                said = DERIVED_NAME.fullmatch(used)  # {species_name}: the wording's name of {species}
                if used not in names and not (said and said.group(1) + (said.group(2) or "") in names):
                    return f"questions.{style}: {{{used}}} is not an argument or entity field of the set"
    return None


@lru_cache(maxsize=8)
def load_item_kinds(catalog_dir: Path = CATALOG_DIR) -> ItemKinds:
    """``catalog/item_kinds.yaml``, every declaration checked against the catalog (empty if absent)."""
    path = Path(catalog_dir) / "item_kinds.yaml"
    if not path.exists():
        return ItemKinds()
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict) or set(raw) - set(KINDS):
        raise CatalogError(f"{path}: the top level has the kinds {', '.join(KINDS)} only")
    kinds: dict[str, list] = {}
    for kind in KINDS:
        kinds[kind] = []
        for i, entry in enumerate(raw.get(kind) or []):
            label = entry.get("name", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
            kinds[kind].append(build_spec(Declaration, entry, f"{path}: {kind} {label}"))
    try:
        spec = ItemKinds(**kinds)
    except ValidationError as exc:
        raise CatalogError(f"{path}: {exc.errors()[0]['msg']}") from exc
    catalog = load_catalog(Path(catalog_dir))
    types = entity_types(Path(catalog_dir))
    for kind in KINDS:
        for decl in spec.declarations(kind):
            problem = _check(kind, decl, catalog, types)
            if problem:
                raise CatalogError(f"{path}: {kind} {decl.name}: {problem}")
    return spec


Kind = Literal["parallel", "multi_step", "no_tool"]
