"""The declarative tool catalog: one YAML spec per source in ``catalog/``.

A spec states, for every function, its HTTP method, path template, typed parameters, response
format, observation builder, sampling template and question templates. Executing any function
is generic (``build_request``); only observation builders are code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from biocurate.errors import CatalogError
from biocurate.hashing import content_hash
from biocurate.snapshot import fingerprint

CATALOG_DIR = Path(__file__).resolve().parent.parent / "catalog"
CATEGORIES = ("variation", "genomics", "proteomics", "evolution", "general_biology")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(Spec):
    type: Literal["string", "integer", "number", "boolean", "array"] = "string"
    location: Literal["path", "query", "body", "form"] = Field("query", alias="in")
    required: bool = False
    description: str = ""
    enum: list[Any] | None = None
    default: Any = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    # How a value is written on the wire: booleans as 1/0 ("int") or true/false ("bool");
    # arrays joined with commas ("csv") or repeated ("repeat") or sent as a JSON list ("json").
    encode: Literal["int", "bool", "csv", "repeat", "json", "plain"] = "plain"
    http_name: str | None = None  # wire name when it differs (format_ -> format)
    items: Literal["string", "integer"] = "string"
    # The value names a thing (gene, accession, rs-id...) and must appear verbatim in every question.
    identifier: bool = False

    def json_schema(self) -> dict:
        schema: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.type == "array":
            schema["items"] = {"type": self.items}
        for key in ("enum", "default", "pattern", "minimum", "maximum"):
            value = getattr(self, key)
            if value is not None:
                schema[key] = value
        return schema


class Vary(Spec):
    values: list[Any]
    weight: float = Field(0.5, ge=0, le=1)


class SampleTemplate(Spec):
    entity: str  # entity type, or "none" for calls that need no entity
    args: dict[str, Any] = Field(default_factory=dict)  # "{field}" placeholders from the entity
    cases: list[dict[str, Any]] = Field(default_factory=list)  # fixed argument sets (entity "none")
    vary: dict[str, Vary] = Field(default_factory=dict)  # optional parameters worth varying
    where: dict[str, str] = Field(default_factory=dict)  # entity field must equal value


class Questions(Spec):
    broad: list[str] = Field(min_length=1)
    specific: list[str] = Field(min_length=1)


class Discovery(Spec):
    """Entities a response reveals (live expansion): they become seeds of the next rebuild.

    ``each`` is a dotted path to a list (or object) in the JSON response ("" for the root);
    ``fields`` maps entity fields to a dotted path inside each item, to "{argument}" (a value
    of the call's arguments) or to "=literal".
    """

    entity: str
    each: str = ""
    fields: dict[str, str]
    limit: int = Field(20, ge=1)


ResponseFormat = Literal["json", "xml", "text", "fasta", "html", "tsv", "gff3"]


class FormatRule(Spec):
    """The response format (and observation builder) of a call whose arguments take these values.

    ``when`` maps parameters to a value, a list of values, or null (the argument not given).
    """

    when: dict[str, Any] = Field(min_length=1)
    response: ResponseFormat
    observation: str = "auto"

    def matches(self, arguments: dict, params: dict[str, Param]) -> bool:
        for name, expected in self.when.items():
            value = arguments.get(name, params[name].default)
            if isinstance(expected, list):
                if value is None or str(value) not in {str(e) for e in expected}:
                    return False
            elif (value is None) != (expected is None) or (value is not None and str(value) != str(expected)):
                return False
        return True


class Function(Spec):
    name: str
    method: Literal["GET", "POST"] = "GET"
    path: str
    description: str
    response: ResponseFormat = "json"
    observation: str = "auto"
    # The response format per option value (e.g. format_=fasta answers FASTA); the first match wins.
    formats: list[FormatRule] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Param] = Field(default_factory=dict)
    fixed: dict[str, Any] = Field(default_factory=dict)  # wire parameters always sent (e.g. retmode)
    sample: SampleTemplate | None = None
    questions: Questions | None = None
    blast: bool = False  # NCBI BLAST submit/poll protocol
    discovers: list[Discovery] = Field(default_factory=list)

    @model_validator(mode="after")
    def _path_params_exist(self) -> "Function":
        for name, param in self.params.items():
            placeholder = "{" + name + "}"
            if param.location == "path" and placeholder not in self.path:
                raise ValueError(f"path parameter {name!r} is not in path {self.path!r}")
        return self

    @model_validator(mode="after")
    def _format_rules_name_options(self) -> "Function":
        for rule in self.formats:
            for name, expected in rule.when.items():
                if name not in self.params:
                    raise ValueError(f"formats: {name!r} is not a parameter of {self.name}")
                enum = self.params[name].enum
                for value in expected if isinstance(expected, list) else [expected]:
                    if enum is not None and value is not None and value not in enum:
                        raise ValueError(f"formats: {name}={value!r} is not one of its values {enum}")
        return self


class Group(Spec):
    """One tool group (sub-API): ``catalog/<source>/<group>.yaml``."""

    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    description: str = ""
    base_url: str | None = None  # when the group has its own root (NCBI BLAST)
    functions: list[Function]


class Source(Spec):
    """Shared settings of one API: ``catalog/<source>/source.yaml``."""

    source: Literal["ncbi", "ensembl", "uniprot"]
    database: str
    base_url: str
    headers: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    """One function with the context of its source and group."""

    function: Function
    source: str
    database: str
    group: str
    category: str
    base_url: str
    headers: dict[str, str]

    @property
    def name(self) -> str:
        return self.function.name

    def schema(self) -> dict:
        """The OpenAI function-calling schema of this tool."""
        fn = self.function
        props = {name: p.json_schema() for name, p in fn.params.items()}
        required = [name for name, p in fn.params.items() if p.required]
        return {
            "type": "function",
            "function": {
                "name": fn.name,
                "description": fn.description,
                "parameters": {
                    "type": "object",
                    "properties": props,
                    "required": required,
                    "additionalProperties": False,
                },
            },
        }

    def spec_hash(self) -> str:
        return content_hash(self.function.model_dump(mode="json"), self.base_url, self.group)

    def response_for(self, arguments: dict) -> tuple[str, str]:
        """(response format, observation builder) of a call: its first matching ``formats`` rule."""
        fn = self.function
        for rule in fn.formats:
            if rule.matches(arguments, fn.params):
                return rule.response, rule.observation
        return fn.response, fn.observation

    def validate(self, arguments: dict) -> str | None:
        """None when the arguments fit the schema, else the failing parameter and the reason."""
        validator = jsonschema.Draft202012Validator(self.schema()["function"]["parameters"])
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        if not errors:
            return None
        err = errors[0]
        where = ".".join(str(p) for p in err.path) or "(arguments)"
        return f"{self.name}: parameter {where}: {err.message}"


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    json_body: Any = None
    form: dict[str, str] | None = None

    def fingerprint(self) -> str:
        """The key of this request in snapshots and response caches."""
        return fingerprint(self.method, self.url, self.params, self.json_body or self.form)


def _wire(param: Param, value: Any) -> list[str]:
    if param.type == "boolean":
        if param.encode == "bool":
            return ["true" if value else "false"]
        return ["1" if value else "0"]
    if param.type == "array":
        items = [str(v) for v in value]
        if param.encode == "repeat":
            return items
        if param.encode == "json":
            return [json.dumps(value)]
        return [",".join(items)]
    return [str(value)]


def build_request(tool: Tool, arguments: dict) -> Request:
    """Turn validated arguments into an HTTP request, using only the catalog's host and path."""
    fn = tool.function
    path = fn.path
    params: list[tuple[str, str]] = [(k, str(v)) for k, v in fn.fixed.items()]
    body: dict[str, Any] = {}
    form: dict[str, str] = {}
    for name, value in arguments.items():
        param = fn.params[name]
        wire_name = param.http_name or name
        if param.location == "path":
            path = path.replace("{" + name + "}", quote(str(value), safe=":-_.,"))
        elif param.location == "body":
            body[wire_name] = value
        elif param.location == "form":
            form[wire_name] = _wire(param, value)[0]
        else:
            params.extend((wire_name, v) for v in _wire(param, value))
    root = tool.base_url.rstrip("/")
    headers = {**tool.headers, **fn.headers}
    return Request(
        method=fn.method,
        url=root + path,
        params=params,
        headers=headers,
        json_body=body or None,
        form=form or None,
    )


class Catalog:
    """All tools, by function name."""

    def __init__(self, tools: list[Tool]):
        self.tools = {t.name: t for t in tools}

    def __getitem__(self, name: str) -> Tool:
        try:
            return self.tools[name]
        except KeyError:
            raise CatalogError(f"unknown function {name!r}: not in the catalog") from None

    def __contains__(self, name: str) -> bool:
        return name in self.tools

    def __iter__(self):
        return iter(self.tools.values())

    def __len__(self) -> int:
        return len(self.tools)

    def groups(self) -> set[tuple[str, str]]:
        return {(t.source, t.group) for t in self}

    def tools_json(self, names: list[str] | None = None) -> list[dict]:
        chosen = names if names is not None else sorted(self.tools)
        return [self[n].schema() for n in chosen]

    def function_mapping(self, names: list[str] | None = None) -> dict:
        chosen = names if names is not None else sorted(self.tools)
        return {n: {"database": self[n].database, "tool": self[n].group} for n in chosen}


def _load_yaml(path: Path, model: type[Spec]) -> Spec:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return model(**raw)
    except (ValidationError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        else:
            detail = str(exc)
        raise CatalogError(f"{path}: {detail}") from exc


@lru_cache(maxsize=8)
def load_catalog(catalog_dir: Path = CATALOG_DIR) -> Catalog:
    """Every group file ``catalog/<source>/<group>.yaml``, with its ``source.yaml``."""
    tools: list[Tool] = []
    seen: dict[str, Path] = {}
    for source_file in sorted(Path(catalog_dir).glob("*/source.yaml")):
        source = _load_yaml(source_file, Source)
        for path in sorted(source_file.parent.glob("*.yaml")):
            if path.name == "source.yaml":
                continue
            group = _load_yaml(path, Group)
            for fn in group.functions:
                if fn.name in seen:
                    raise CatalogError(f"{path}: function {fn.name} is also defined in {seen[fn.name]}")
                seen[fn.name] = path
                tools.append(
                    Tool(
                        function=fn,
                        source=source.source,
                        database=source.database,
                        group=path.stem,
                        category=group.category,
                        base_url=group.base_url or source.base_url,
                        headers=source.headers,
                    )
                )
    if not tools:
        raise CatalogError(f"no tool specs found in {catalog_dir}")
    return Catalog(tools)


def published_functions(catalog_dir: Path = CATALOG_DIR) -> dict[str, str]:
    """function -> "source/group" of the published BioTool list (catalog/published_functions.tsv)."""
    lines = [l for l in (Path(catalog_dir) / "published_functions.tsv").read_text().splitlines()
             if l and not l.startswith("#")]
    header = lines[0].split("\t")
    rows = [dict(zip(header, l.split("\t"))) for l in lines[1:]]
    return {r["function"]: f"{r['source']}/{r['group']}" for r in rows}
