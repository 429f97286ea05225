"""The declarative tool catalog: one YAML spec per source in ``catalog/``.

A spec states, for every function, its HTTP method, path template, typed parameters, response
format, observation builder, sampling template and question templates. Executing any function
is generic (``build_request``); only observation builders are code.

Names, types and value forms are BioTool's (docs/biotool_deviations.md); the value rules live in
``biocurate.value_forms``. Longer than 400 lines because the spec models, the request they build
(``build_request`` and its inverse ``arguments_from_request``) and their loading are one contract
that tests/test_biotool_conformance.py pins as a whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from biocurate import value_forms
from biocurate.errors import CatalogError
from biocurate.hashing import canonical_json, content_hash
from biocurate.snapshot import fingerprint

CATALOG_DIR = Path(__file__).resolve().parent.parent / "catalog"
CATEGORIES = ("variation", "genomics", "proteomics", "evolution", "general_biology")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SpecT = TypeVar("SpecT", bound=Spec)


class Param(Spec):
    """One argument of a function, named and typed as BioTool's wrappers and schemas have it.

    ``type`` is the JSON type BioTool publishes (a flag is ``boolean``, a list of fields a
    ``string``); the forms a call may use beyond it, the canonical form and the wire form are
    in ``biocurate.value_forms``.
    """

    type: Literal["string", "integer", "number", "boolean", "array"] = "string"
    # path, query string, JSON body, form body; "none": accepted, never sent (its description says why)
    location: Literal["path", "query", "body", "form", "none"] = Field("query", alias="in")
    required: bool = False
    description: str = ""
    enum: list[Any] | None = None
    # BioTool's wrapper default: sent when the argument is absent (a null argument sends nothing)
    default: Any = None
    # The API's own value when the parameter is not sent, when it is the same as ``default``:
    # sending it or not asks the same question (scripts/snapshot.py rekey relies on it).
    server_default: Any = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    encode: Literal["int", "bool", "csv", "repeat", "json", "plain", "split", "crlf"] = "plain"
    http_name: str | None = None  # wire name when it differs (format_ -> format)
    items: Literal["string", "integer"] = "string"  # item type of an array
    many: bool = False  # the value may also be a list of values (sent as repeated parameters)
    also: list[Literal["string", "integer", "number", "boolean"]] = Field(default_factory=list)  # more types
    # The value names a thing (gene, accession, rs-id...) and must appear verbatim in every question.
    identifier: bool = False

    @property
    def is_list(self) -> bool:
        """The value is a set of items (a JSON list or a comma-separated string)."""
        return self.type == "array" or self.encode in ("split", "csv")

    def json_schema(self) -> dict:
        """This parameter in the schema offered to models (BioTool's form: its type and description)."""
        schema: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.type == "array":
            schema["items"] = {"type": self.items}
        for key in ("enum", "default", "pattern", "minimum", "maximum"):
            value = getattr(self, key)
            if value is not None:
                schema[key] = value
        return schema

    def accepted_schema(self) -> dict:
        """Every form a call may give the value in (validation)."""
        rules = {"enum": self.enum, "pattern": self.pattern, "minimum": self.minimum, "maximum": self.maximum}
        if self.type in ("boolean", "array"):
            rules = {}
        elif self.type in ("integer", "number"):
            rules = {"minimum": self.minimum, "maximum": self.maximum}
        return value_forms.accepted_schema(
            self.type,
            required=self.required,
            many=self.many or self.is_list,
            also=tuple(self.also),
            item_kind=self.items,
            **rules,
        )

    def normalize(self, value: Any) -> Any:
        """The canonical form of a value (keys, dedup, exact match)."""
        return value_forms.normalize(
            value, self.type, is_list=self.is_list or self.many, item_kind=self.items, enum=self.enum
        )

    def biotool_form(self, value: Any) -> Any:
        """A value as BioTool's calls write it (what sampling stores and exports)."""
        return value_forms.biotool_form(value, self.type, self.encode)

    def wire(self, value: Any) -> list[str]:
        """The values this argument puts on the wire (none for null)."""
        return value_forms.wire_values(value, self.encode)


class Vary(Spec):
    values: list[Any]
    weight: float = Field(0.5, ge=0, le=1)


class SampleTemplate(Spec):
    entity: str  # entity type, or "none" for calls that need no entity
    args: dict[str, Any] = Field(default_factory=dict)  # "{field}" placeholders from the entity
    cases: list[dict[str, Any]] = Field(default_factory=list)  # fixed argument sets (entity "none")
    vary: dict[str, Vary] = Field(default_factory=dict)  # optional parameters worth varying
    where: dict[str, str | list[str]] = Field(default_factory=dict)  # entity field must equal value (or one of them)


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
    uses: list[str] = Field(default_factory=list)  # parameter sets of source.yaml (``param_sets``)
    # Transport-only arguments this function accepts (names of TRANSPORT_ARGUMENTS); the source's by default.
    transport: list[str] | None = None
    # Wire parameters always sent (e.g. retmode); in the form body when the function posts a form.
    fixed: dict[str, Any] = Field(default_factory=dict)
    # At least one of these argument sets must be given (e.g. an id, or a History server reference).
    requires_any: list[list[str]] = Field(default_factory=list)
    sample: SampleTemplate | None = None
    questions: Questions | None = None
    blast: bool = False  # NCBI BLAST submit/poll protocol
    # False where BioTool's dispatcher cannot run our calls of it (a deviation in docs/biotool_deviations.md):
    # its items are left out of the BioTool-flavour files of a published version (biocurate.publish.biotool).
    biotool_runs: bool = True
    discovers: list[Discovery] = Field(default_factory=list)

    @model_validator(mode="after")
    def _path_params_exist(self) -> Function:
        for name, param in self.params.items():
            slots = ("{" + name + "}", "{/" + name + "}")
            if param.location == "path" and not any(slot in self.path for slot in slots):
                raise ValueError(f"path parameter {name!r} is not in path {self.path!r}")
            if "{/" + name + "}" in self.path and param.required:
                raise ValueError(f"path segment {{/{name}}} is optional: {name!r} cannot be required")
        return self

    @model_validator(mode="after")
    def _format_rules_name_options(self) -> Function:
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
    param_sets: dict[str, dict[str, Param]] = Field(default_factory=dict)  # shared by name (``uses``)
    transport: list[str] = Field(default_factory=list)  # transport-only arguments every function accepts


# Arguments BioTool's wrappers take that change only how the answer travels, never the answer.
# A function accepts those its source (or itself) lists under ``transport``; they are never sent,
# never part of the schema offered to models, and dropped from canonical arguments (keys, dedup).
TRANSPORT_ARGUMENTS: dict[str, str] = {
    "callback": "Ensembl JSONP: wraps the same JSON answer in a call to the named JavaScript function",
    "timeout": "how long the client waits for an answer, in seconds",
    "api_key": "NCBI rate-limit key: the executor adds NCBI_API_KEY from the environment, never from a call",
}


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
    transport: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.function.name

    def schema(self) -> dict:
        """The OpenAI function-calling schema of this tool, as BioTool publishes its tools."""
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

    def validation_schema(self) -> dict:
        """The JSON Schema of the arguments a call may give: every value form BioTool's calls use,
        null for an optional parameter, and the transport-only arguments."""
        fn = self.function
        props = {name: p.accepted_schema() for name, p in fn.params.items()}
        props.update({name: {} for name in self.transport})
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "required": [name for name, p in fn.params.items() if p.required],
            "additionalProperties": False,
        }
        if fn.requires_any:
            schema["anyOf"] = [{"required": names} for names in fn.requires_any]
        return schema

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
        validator = jsonschema.Draft202012Validator(self.validation_schema())
        errors = sorted(validator.iter_errors(arguments), key=lambda e: (list(e.path), e.validator))
        if not errors:
            return None
        err = errors[0]
        if not err.path:
            if err.validator == "anyOf":  # requires_any
                wanted = " or ".join("+".join(names) for names in self.function.requires_any)
                return f"{self.name}: give {wanted}"
            if err.validator == "additionalProperties":
                unknown = sorted(set(arguments) - set(self.function.params) - set(self.transport))
                return f"{self.name}: unknown parameter(s) {', '.join(unknown)}: not in the catalog"
            return f"{self.name}: parameter (arguments): {err.message}"
        name = str(err.path[0])
        param = self.function.params.get(name)
        if param is None or len(err.path) > 1 and err.validator != "anyOf":
            return f"{self.name}: parameter {'.'.join(str(p) for p in err.path)}: {err.message}"
        forms = value_forms.describe_forms(param.type, many=param.many, also=tuple(param.also), enum=param.enum)
        bounds = "".join(f", {k} {getattr(param, k)}" for k in ("minimum", "maximum") if getattr(param, k) is not None)
        return f"{self.name}: parameter {name}: {arguments[name]!r} is not {forms}{bounds}"

    def canonical_arguments(self, arguments: dict) -> dict:
        """The canonical form of a call's arguments (the argument rule of ``biocurate.metrics``):
        values normalised by type, lists as sorted sets, nulls, transport-only arguments and values
        equal to the parameter's default dropped; an unknown argument is kept as written."""
        out = {}
        for name, value in arguments.items():
            if value is None or name in self.transport and name not in self.function.params:
                continue
            param = self.function.params.get(name)
            if param is None:
                out[name] = value
                continue
            value = param.normalize(value)
            if param.default is not None and canonical_json(value) == canonical_json(param.normalize(param.default)):
                continue
            out[name] = value
        return out

    def biotool_arguments(self, arguments: dict) -> dict:
        """Arguments in BioTool's value forms (flags 1/0 or true/false as the source writes them,
        lists as comma-separated text); other values and unknown names are kept as given."""
        params = self.function.params
        return {k: params[k].biotool_form(v) if k in params else v for k, v in arguments.items()}


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


def build_request(tool: Tool, arguments: dict) -> Request:
    """Turn validated arguments into an HTTP request, using only the catalog's host and path.

    An absent argument sends its parameter's ``default`` (BioTool's wrapper default); a null one
    sends nothing; transport-only and ``in: none`` arguments are never sent.
    """
    fn = tool.function
    path = fn.path
    posts_form = any(p.location == "form" for p in fn.params.values())
    params: list[tuple[str, str]] = []
    body: dict[str, Any] = {}
    form: dict[str, str] = {}
    for key, value in fn.fixed.items():
        if posts_form:
            form[key] = str(value)
        else:
            params.append((key, str(value)))
    for name, param in fn.params.items():
        value = arguments[name] if name in arguments else param.default
        if value is None or param.location == "none":
            continue
        wire_name = param.http_name or name
        if param.location == "path":
            text = quote(str(value), safe=":-_.,")
            path = path.replace("{" + name + "}", text).replace("{/" + name + "}", "/" + text)
        elif param.location == "body":
            body[wire_name] = value
        elif param.location == "form":
            form.update({wire_name: v for v in param.wire(value)[:1]})  # noqa: B035 (one value per form field)
        else:
            params.extend((wire_name, v) for v in param.wire(value))
    for name, param in fn.params.items():  # an optional path parameter not given ends the path there
        if param.location == "path" and not param.required:
            path = re.sub(r"\{/?" + re.escape(name) + r"\}.*", "", path)
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


def arguments_from_request(
    tool: Tool, url: str, params: list[tuple[str, str]], form: dict[str, Any] | None = None
) -> dict | None:
    """The call a request of this tool makes (the inverse of ``build_request``), or None when the URL
    is not this tool's. A wire parameter the tool does not know is kept under its wire name."""
    fn = tool.function
    pattern = re.escape(tool.base_url.rstrip("/") + fn.path)
    for name, param in fn.params.items():
        if param.location == "path":
            pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]*)")
            pattern = pattern.replace(re.escape("{/" + name + "}"), f"(?:/(?P<{name}>[^/]+))?")
    found = re.fullmatch(pattern, url)
    if not found:
        return None
    args: dict[str, Any] = {k: _typed(fn.params[k], unquote(v)) for k, v in found.groupdict().items() if v}
    by_wire = {(p.http_name or n): n for n, p in fn.params.items() if p.location in ("query", "form")}
    values: dict[str, list[str]] = {}
    for key, value in [*params, *((k, str(v)) for k, v in (form or {}).items())]:
        if str(fn.fixed.get(key, "\0")) == value:
            continue
        values.setdefault(key, []).append(value)
    for key, items in values.items():
        known = by_wire.get(key)
        if known is None:
            args[key] = items[0] if len(items) == 1 else items
            continue
        param = fn.params[known]
        if param.encode == "split":
            args[known] = ",".join(items)
        elif len(items) > 1:
            args[known] = [_typed(param, v) for v in items]
        else:
            args[known] = _typed(param, items[0])
    for name, param in fn.params.items():  # a wrapper default the request did not send
        if param.default is not None and name not in args and param.server_default != param.default:
            args[name] = None  # not sent: the server's own default, which differs from the wrapper's
    return args


def _typed(param: Param, text: str) -> Any:
    """A wire value in the BioTool form of its parameter."""
    if param.type == "integer" and text.lstrip("+-").isdigit():
        return int(text)
    if param.type == "number":
        try:
            return float(text)
        except ValueError:
            return text
    if param.type == "boolean" and param.encode in ("int", "bool"):
        return param.biotool_form(text)
    return text


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


# libyaml's safe loader where PyYAML has it (its wheels do): about 10x faster than the pure-Python
# one, whose parse of the catalog took over a second at the start of every stage process.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """The parsed YAML of a catalog file; broken YAML is a CatalogError naming the file."""
    try:
        return yaml.load(path.read_text(), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc


def build_spec(model: type[SpecT], raw: Any, where: str) -> SpecT:
    """``model(**raw)``; a bad declaration is a CatalogError starting with ``where`` (the file, and
    the declaration in it) and naming the first field at fault."""
    try:
        return model(**raw)
    except (ValidationError, TypeError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        else:
            detail = str(exc)
        raise CatalogError(f"{where}: {detail}") from exc


def _load_yaml(path: Path, model: type[SpecT]) -> SpecT:
    return build_spec(model, read_yaml(path), str(path))


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
                tools.append(_tool(fn, source, path, group))
    if not tools:
        raise CatalogError(f"no tool specs found in {catalog_dir}")
    return Catalog(tools)


def _tool(fn: Function, source: Source, path: Path, group: Group) -> Tool:
    """A function of a group file with its source's parameter sets and transport arguments resolved."""
    params = dict(fn.params)  # the function's own declaration wins over a set's
    for name in fn.uses:
        if name not in source.param_sets:
            raise CatalogError(f"{path}: {fn.name} uses parameter set {name!r}, not in {source.source}/source.yaml")
        params.update({k: p for k, p in source.param_sets[name].items() if k not in params})
    transport = fn.transport if fn.transport is not None else source.transport
    unknown = sorted(set(transport) - set(TRANSPORT_ARGUMENTS))
    if unknown:
        raise CatalogError(f"{path}: {fn.name}: {unknown} not in TRANSPORT_ARGUMENTS")
    return Tool(
        function=fn.model_copy(update={"params": params}) if fn.uses else fn,
        source=source.source,
        database=source.database,
        group=path.stem,
        category=group.category,
        base_url=group.base_url or source.base_url,
        headers=source.headers,
        transport=tuple(t for t in transport if t not in params),
    )


def published_functions(catalog_dir: Path = CATALOG_DIR) -> dict[str, str]:
    """function -> "source/group" of the published BioTool list (catalog/published_functions.tsv)."""
    lines = [
        line
        for line in (Path(catalog_dir) / "published_functions.tsv").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    return {r["function"]: f"{r['source']}/{r['group']}" for r in rows}


# --- mention rules: catalog/mentions.yaml (applied by biocurate.mentions) -----------------

MENTION_KINDS = (
    "verbatim",
    "coordinates",
    "chromosome",
    "number",
    "percent",
    "species",
    "species_if_named",
    "name",
    "code",
    "query",
    "citation",
    "unsaid",
)


class MentionKind(Spec):
    """How a question mentions one value: a kind of MENTION_KINDS, with the table of words
    (catalog/words.yaml or mentions.yaml ``words``) a name or code may be said with."""

    kind: Literal[MENTION_KINDS]  # type: ignore[valid-type]
    words: str | None = None
    code_too: bool = False


class MentionSpec(Spec):
    """``catalog/mentions.yaml``: kinds per parameter name, per-function overrides, query-field
    roles, extra words, taxa and species aliases."""

    params: dict[str, MentionKind]
    functions: dict[str, dict[str, MentionKind]] = Field(default_factory=dict)
    query_roles: dict[str, MentionKind] = Field(default_factory=dict)
    words: dict[str, dict[str, list[str] | str]] = Field(default_factory=dict)
    taxa: dict[str, list[str]] = Field(default_factory=dict)
    species_aliases: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _kinds_as_words(cls, raw: Any) -> Any:
        """A kind may be written as a bare word (``symbol: verbatim``)."""
        if not isinstance(raw, dict):
            return raw

        def kinds(table: Any) -> Any:
            return (
                {k: {"kind": v} if isinstance(v, str) else v for k, v in table.items()}
                if isinstance(table, dict)
                else table
            )

        out = {**raw, "params": kinds(raw.get("params")), "query_roles": kinds(raw.get("query_roles", {}))}
        if isinstance(raw.get("functions"), dict):
            out["functions"] = {f: kinds(p) for f, p in raw["functions"].items()}
        return out


@lru_cache(maxsize=8)
def load_mentions(catalog_dir: Path = CATALOG_DIR) -> MentionSpec:
    """``catalog/mentions.yaml``, checked for shape (a bad kind is an error naming the file and key)."""
    spec = _load_yaml(Path(catalog_dir) / "mentions.yaml", MentionSpec)
    assert isinstance(spec, MentionSpec)
    return spec
