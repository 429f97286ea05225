"""Conformance with BioTool's wrappers: the request we build is the request BioTool sends (issue 15, section 2).

The golden file ``tests/data/biotool/requests.jsonl`` holds, per (function, arguments), the request
BioTool's own wrapper sends (recorded without network by ``scripts/biotool_requests.py``). For each
line we validate BioTool's arguments with our tool's schema, build our request with
``build_request`` and compare method, URL, query parameters (as multisets) and body. Headers are
not compared: both sides ask for the same formats through parameters, and Accept is a
transport detail. Differences documented in ``tests/data/biotool/deviations.yaml`` (function ->
aspect -> reason) are allowed; any other difference fails, reported per function.

Run as a script to write the differences report:
``.venv/bin/python -m tests.test_biotool_conformance > tests/data/biotool/differences.md``.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest
import yaml

from biocurate.catalog import TRANSPORT_ARGUMENTS, build_request, load_catalog

DATA = Path(__file__).resolve().parent / "data" / "biotool"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "biotool_deviations.md"

# Wire parameters left out of the comparison, with why: the catalog's transport-only arguments
# (accepted, never sent) and the identity parameters our executor adds to every E-utilities request.
IGNORED_PARAMS = {
    **TRANSPORT_ARGUMENTS,
    "tool": "NCBI identity: our executor adds tool= to every E-utilities request",
    "email": "NCBI identity: our executor adds email= to every E-utilities request",
}

# What a difference is about; deviations.yaml keys use these (optionally ".<name>", e.g. params.size).
KINDS = {
    "function_missing": "function missing from our catalog",
    "no_request": "one side sends no HTTP request",
    "param_missing": "BioTool argument not in our catalog",
    "validation": "our schema rejects BioTool's value form",
    "method": "different HTTP method",
    "url": "different URL (host or path)",
    "http_name": "different HTTP parameter name for the same argument",
    "value_form": "same HTTP parameter, different value form",
    "default_param": "parameter sent by default on one side only",
    "arg_not_sent": "argument sent on one side only",
    "body": "different request body",
}
ASPECT = {
    "function_missing": "function",
    "no_request": "request",
    "param_missing": "arguments",
    "validation": "arguments",
    "method": "method",
    "url": "url",
    "http_name": "params",
    "value_form": "params",
    "default_param": "params",
    "arg_not_sent": "params",
    "body": "body",
}


def golden() -> list[dict]:
    return [json.loads(line) for line in (DATA / "requests.jsonl").read_text().splitlines() if line]


@lru_cache(maxsize=1)
def deviations() -> dict[str, dict[str, str]]:
    return (yaml.safe_load((DATA / "deviations.yaml").read_text()) or {}).get("deviations") or {}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _multiset(pairs) -> Counter:
    return Counter((k, v) for k, v in pairs or [] if k not in IGNORED_PARAMS)


def compare_params(expected: list, ours: list, arguments: dict, our_http: dict[str, str]) -> list[dict]:
    """Differences between two query-parameter multisets, each named by its kind."""
    bt, mine = _multiset(expected), _multiset(ours)
    only_bt, only_mine = bt - mine, mine - bt
    names_bt = sorted({k for k, _ in only_bt})
    names_mine = sorted({k for k, _ in only_mine})
    # a wire name "comes from an argument" when it is the argument's name (BioTool) or its http_name (ours)
    arg_names = {_norm(a) for a in arguments} | {_norm(our_http[a]) for a in arguments if a in our_http}

    def values(counter, name):
        return sorted(v for (k, v), n in counter.items() for _ in range(n) if k == name)

    diffs = []
    for name in sorted(set(names_bt) & set(names_mine)):
        diffs.append(
            {
                "kind": "value_form",
                "key": name,
                "detail": f"{name}: BioTool {values(bt, name)} vs ours {values(mine, name)}",
            }
        )
    unmatched_mine = [n for n in names_mine if n not in names_bt]
    for name in [n for n in names_bt if n not in names_mine]:
        twin = next((m for m in unmatched_mine if _norm(m) == _norm(name)), None)
        if twin:
            unmatched_mine.remove(twin)
            diffs.append(
                {
                    "kind": "http_name",
                    "key": name,
                    "detail": f"BioTool sends {name}={values(bt, name)}, ours {twin}={values(mine, twin)}",
                }
            )
        elif _norm(name) in arg_names:
            diffs.append(
                {
                    "kind": "arg_not_sent",
                    "key": name,
                    "detail": f"BioTool sends {name}={values(bt, name)}, ours does not",
                }
            )
        else:
            diffs.append(
                {
                    "kind": "default_param",
                    "key": name,
                    "detail": f"BioTool adds {name}={values(bt, name)}, ours does not",
                }
            )
    for name in unmatched_mine:
        kind = "arg_not_sent" if _norm(name) in arg_names else "default_param"
        diffs.append({"kind": kind, "key": name, "detail": f"ours adds {name}={values(mine, name)}, BioTool does not"})
    return diffs


def _schema_errors(tool, arguments: dict) -> list[dict]:
    """Our validation (every value form the catalog accepts) on BioTool's arguments, one diff per problem."""
    schema = tool.validation_schema()
    diffs = []
    unknown = sorted(set(arguments) - set(schema["properties"]))
    for name in unknown:
        diffs.append({"kind": "param_missing", "key": name, "detail": f"{name}={arguments[name]!r} not in our catalog"})
    known = {k: v for k, v in arguments.items() if k not in unknown}
    relaxed = {**schema, "additionalProperties": True}
    for err in jsonschema.Draft202012Validator(relaxed).iter_errors(known):
        where = ".".join(str(p) for p in err.path) or "(arguments)"
        key = str(err.path[0]) if err.path else "(arguments)"
        if err.validator == "required":  # name the parameter we require
            key = re.sub(r"^'(.+)' is a required property$", r"\1", err.message)
        detail = tool.validate(known) if err.path else f"{where}: {err.message} [{err.validator}]"
        diffs.append({"kind": "validation", "key": key, "form": _value_form(err), "detail": detail})
    return diffs


def _value_form(err: jsonschema.ValidationError) -> str:
    """Which of BioTool's value forms our schema rejects (groups the report)."""
    value = err.instance
    if err.validator == "required":
        return "we require what BioTool leaves optional"
    if value is None:
        return "null for an optional parameter"
    if isinstance(value, list):
        return "list where we take one value"
    if isinstance(value, str) and "," in value:
        return "comma-separated string"
    return f"{type(value).__name__} ({value!r}) rejected ({err.validator})"


def compare(line: dict) -> list[dict]:
    """All differences between BioTool's request for one golden line and ours."""
    catalog = load_catalog()
    fn = line["function"]
    if fn not in catalog:
        return [{"kind": "function_missing", "key": "", "detail": f"{fn} is not in the catalog"}]
    tool, arguments, expected = catalog[fn], line["arguments"], line["request"]
    if expected is None:
        return [
            {
                "kind": "no_request",
                "key": "",
                "detail": f"BioTool's {fn} sends no HTTP request "
                f"(a post-processing helper taking {sorted(arguments)}); ours is an HTTP call",
            }
        ]
    problems = _schema_errors(tool, arguments)
    if tool.validate(arguments) is not None and not problems:  # the tool's own rule disagrees with ours here
        problems.append({"kind": "validation", "key": "(arguments)", "detail": tool.validate(arguments)})
    if problems:
        return problems
    ours = build_request(tool, arguments)
    diffs = []
    if expected["method"] != ours.method:
        diffs.append({"kind": "method", "key": "", "detail": f"BioTool {expected['method']} vs ours {ours.method}"})
    if unquote(expected["url"]) != unquote(ours.url):  # compared decoded: quoting differs, the path does not
        diffs.append(
            {"kind": "url", "key": "", "detail": f"BioTool {unquote(expected['url'])} vs ours {unquote(ours.url)}"}
        )
    our_http = {n: p.http_name or n for n, p in tool.function.params.items()}
    diffs += compare_params(expected["params"], ours.params, arguments, our_http)
    for d in compare_params(expected["form"], sorted((ours.form or {}).items()), arguments, our_http):
        diffs.append({**d, "kind": "body", "detail": f"form body: {d['detail']}"})
    if (expected["json"] or None) != (ours.json_body or None):
        diffs.append(
            {"kind": "body", "key": "json", "detail": f"JSON body: BioTool {expected['json']} vs ours {ours.json_body}"}
        )
    return diffs


def documented(fn: str, diff: dict) -> bool:
    table = deviations().get(fn) or {}
    aspect = ASPECT[diff["kind"]]
    return aspect in table or f"{aspect}.{diff['key']}" in table


@lru_cache(maxsize=1)
def results() -> dict[str, list[tuple[dict, list[dict]]]]:
    """function -> [(golden line, its differences)], in golden-file order."""
    out: dict[str, list] = defaultdict(list)
    for line in golden():
        out[line["function"]].append((line, compare(line)))
    return dict(out)


def _describe(line: dict) -> str:
    return f"[{line['case']}] {json.dumps(line['arguments'], sort_keys=True)[:160]}"


# ---------------------------------------------------------------- tests
def examples() -> list[dict]:
    return [json.loads(x) for x in (DATA / "example_calls.jsonl").read_text().splitlines() if x]


FUNCTIONS = sorted({line["function"] for line in golden()})


def test_golden_file_covers_every_function_and_every_parameter():
    from biocurate.catalog import published_functions

    signatures = json.loads((DATA / "signatures.json").read_text())["functions"]
    assert set(FUNCTIONS) == set(published_functions()) == set(signatures)
    seen = defaultdict(set)
    for line in golden():
        seen[line["function"]] |= set(line["arguments"]) | set(line["controls"])
        assert line["request"] or line["function"] == "postprocess_transcript_haplotypes", line
    unexercised = {fn: sorted(set(params) - seen[fn]) for fn, params in signatures.items() if set(params) - seen[fn]}
    assert unexercised == {}
    assert len(examples()) == 15


CONTROLS = {"return_response", "postprocess"}  # harness switches of BioTool's wrappers, not arguments


def test_every_biotool_parameter_is_in_the_catalog_under_its_name():
    """Each wrapper parameter is a catalog parameter or an accepted transport argument, and the catalog has
    no parameter BioTool's wrapper would refuse (except the documented postprocess_transcript_haplotypes)."""
    signatures = json.loads((DATA / "signatures.json").read_text())["functions"]
    missing, extra = {}, {}
    for fn, names in signatures.items():
        tool = load_catalog()[fn]
        ours = set(tool.function.params) | set(tool.transport)
        theirs = set(names) - CONTROLS
        if theirs - ours:
            missing[fn] = sorted(theirs - ours)
        if ours - theirs:
            extra[fn] = sorted(ours - theirs)
    assert missing == {"postprocess_transcript_haplotypes": ["result"]}
    assert extra == {"postprocess_transcript_haplotypes": ["id", "species"]}


def test_offered_schema_has_biotools_types_and_no_transport_arguments():
    for tool in load_catalog():
        props = tool.schema()["function"]["parameters"]["properties"]
        assert {p["type"] for p in props.values()} <= {"string", "integer", "number", "boolean"}, tool.name
        assert not set(props) & set(TRANSPORT_ARGUMENTS), tool.name
    for example in examples():  # BioTool's own published schemas of 15 functions
        ours = load_catalog()[example["function"]].schema()["function"]["parameters"]["properties"]
        for name, prop in example["biotool_schema"]["parameters"]["properties"].items():
            mine = ours.get(name) or ours.get(name + "_")  # BioTool's schema says format, its calls format_
            if mine is not None:
                assert mine["type"] == prop["type"], (example["function"], name)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_request_matches_biotool(fn):
    undocumented = [(line, d) for line, diffs in results().get(fn, []) for d in diffs if not documented(fn, d)]
    report = "\n".join(f"  {KINDS[d['kind']]}: {d['detail']}  {_describe(line)}" for line, d in undocumented)
    assert not undocumented, f"{fn}: {len(undocumented)} undocumented difference(s)\n{report}"


@pytest.mark.parametrize("example", examples(), ids=lambda e: f"{e['provenance']['index']}-{e['function']}")
def test_real_biotool_call_validates_and_builds_biotools_request(example):
    diffs = [d for d in compare(example) if not documented(example["function"], d)]
    assert not diffs, "\n".join(f"{KINDS[d['kind']]}: {d['detail']}" for d in diffs)


def doc_rows() -> set[tuple[str, str]]:
    """(function, aspect) of each row of the deviation table in the docs (rows with a reason)."""
    rows = set()
    for line in DOCS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and re.fullmatch(r"`\w+`", cells[0]) and re.fullmatch(r"`[\w.]+`", cells[1]) and cells[-1]:
            rows.add((cells[0].strip("`"), cells[1].strip("`")))
    return rows


def test_every_deviation_is_observed_and_in_the_docs():
    observed = {(fn, ASPECT[d["kind"]], d["key"]) for fn, rows in results().items() for _, ds in rows for d in ds}
    stale = []
    for fn, aspects in deviations().items():
        for aspect, reason in aspects.items():
            base, _, key = aspect.partition(".")
            if not reason or not any(f == fn and a == base and (not key or k == key) for f, a, k in observed):
                stale.append(f"{fn}: {aspect}")
    assert not stale, f"deviations no longer observed (or without a reason): {stale}"
    listed = {(fn, aspect) for fn, aspects in deviations().items() for aspect in aspects}
    assert doc_rows() == listed, (
        f"{DOCS.name} table and deviations.yaml differ: only in the docs "
        f"{sorted(doc_rows() - listed)}, only in the yaml {sorted(listed - doc_rows())}"
    )


def test_summary():
    """Print counts by kind (run with -s); fails while any undocumented difference is left."""
    text = summary_markdown(brief=True)
    print(text)
    assert "undocumented: 0 " in text


# ---------------------------------------------------------------- the report
def _undocumented() -> dict[str, list[tuple[str, str, dict]]]:
    by_kind: dict[str, list[tuple[str, str, dict]]] = defaultdict(list)
    for fn, rows in results().items():
        for line, diffs in rows:
            for d in diffs:
                if not documented(fn, d):
                    by_kind[d["kind"]].append((fn, line["case"], d))
    return by_kind


def _cases(cases: list[str]) -> str:
    return ", ".join(cases[:4]) + (f" (+{len(cases) - 4})" if len(cases) > 4 else "")


def summary_markdown(brief: bool = False) -> str:
    res, by_kind = results(), _undocumented()
    failing = sorted({fn for items in by_kind.values() for fn, _, _ in items})
    total = sum(len(v) for v in by_kind.values())
    out = [
        "# BioTool conformance: differences between BioTool's requests and ours\n",
        f"{len(res)} functions, {sum(len(r) for r in res.values())} golden cases; "
        f"undocumented: {total} differences in {len(failing)} functions; "
        f"conforming functions: {len(res) - len(failing)}/{len(res)}.\n",
        "| kind | differences (case x detail) | functions |",
        "| --- | ---: | ---: |",
    ]
    for kind in KINDS:
        items = by_kind.get(kind, [])
        out.append(f"| {KINDS[kind]} (`{kind}`) | {len(items)} | {len({fn for fn, _, _ in items})} |")
    if brief:
        return "\n".join(out)
    documented_rows: dict[tuple[str, str], int] = defaultdict(int)
    for fn, rows in res.items():
        for _, diffs in rows:
            for d in diffs:
                if documented(fn, d):
                    aspect = ASPECT[d["kind"]]
                    table = deviations().get(fn) or {}
                    documented_rows[(fn, f"{aspect}.{d['key']}" if f"{aspect}.{d['key']}" in table else aspect)] += 1
    out.append(
        f"\nDocumented deviations (`deviations.yaml`, `docs/biotool_deviations.md`): {len(documented_rows)} rows "
        f"in {len({fn for fn, _ in documented_rows})} functions, seen in {sum(documented_rows.values())} differences:\n"
    )
    out += [f"- `{fn}` `{aspect}`: {n}" for (fn, aspect), n in sorted(documented_rows.items())]
    out.append(
        "\nGenerated by `python -m tests.test_biotool_conformance` from `requests.jsonl` and the catalog; "
        "a case name says which argument set (`base`, `opt:<param>`, `form:<param>=<value form>`, `all`, "
        "or a named branch)."
    )
    for kind in KINDS:
        items = by_kind.get(kind, [])
        if not items:
            continue
        out.append(f"\n## {KINDS[kind]} (`{kind}`): {len(items)}\n")
        if kind == "param_missing":
            out += _param_missing(items)
            continue
        if kind == "validation":
            out += _validation(items)
            continue
        grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
        for fn, case, d in items:
            grouped[(fn, d["detail"])].append(case)
        for (fn, detail), cases in sorted(grouped.items()):
            out.append(f"- `{fn}`: {detail} (cases: {_cases(cases)})")
    out += _extra_in_catalog() + _wrapper_errors() + _examples_section()
    return "\n".join(out) + "\n"


def _param_missing(items: list[tuple[str, str, dict]]) -> list[str]:
    names: dict[str, set[str]] = defaultdict(set)
    for fn, _, d in items:
        names[fn].add(d["key"])
    per_param: dict[str, set[str]] = defaultdict(set)
    for fn, params in names.items():
        for p in params:
            per_param[p].add(fn)
    common = sorted(p for p, fns in per_param.items() if len(fns) >= 5)
    out = [
        f"{sum(len(v) for v in names.values())} distinct (function, parameter) pairs in {len(names)} functions.\n",
        "Missing in many functions:\n",
    ]
    out += [f"- `{p}` ({len(per_param[p])} functions): {', '.join(sorted(per_param[p]))}" for p in common]
    out.append("\nOther missing parameters, by function:\n")
    for fn in sorted(names):
        rest = sorted(names[fn] - set(common))
        if rest:
            out.append(f"- `{fn}` ({len(rest)}): {', '.join(rest)}")
    return out


def _validation(items: list[tuple[str, str, dict]]) -> list[str]:
    groups: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    examples: dict[str, str] = {}
    for fn, case, d in items:
        groups[d["form"]][fn].add(d["key"])
        examples.setdefault(d["form"], f"`{fn}` [{case}] {d['detail']}")
    out = ["| rejected value form | (function, parameter) pairs | functions |", "| --- | ---: | ---: |"]
    for form, fns in sorted(groups.items(), key=lambda kv: -sum(len(v) for v in kv[1].values())):
        out.append(f"| {form} | {sum(len(v) for v in fns.values())} | {len(fns)} |")
    for form, fns in sorted(groups.items()):
        out.append(f"\n**{form}** (e.g. {examples[form]}):\n")
        out += [f"- `{fn}`: {', '.join(sorted(keys))}" for fn, keys in sorted(fns.items())]
    return out


def _extra_in_catalog() -> list[str]:
    signatures = json.loads((DATA / "signatures.json").read_text())["functions"]
    rows = []
    for fn, params in sorted(signatures.items()):
        if fn in load_catalog():
            extra = sorted(set(load_catalog()[fn].function.params) - set(params))
            if extra:
                rows.append(f"- `{fn}`: {', '.join(extra)}")
    return ["\n## Parameters in our catalog that BioTool's wrapper does not take (informational)\n", *rows]


def _wrapper_errors() -> list[str]:
    rows = [f"- `{line['function']}` [{line['case']}]: {line['error']}" for line in golden() if line.get("error")]
    return ["\n## BioTool wrapper errors seen while recording (informational)\n", *(rows or ["- none"])]


def _examples_section() -> list[str]:
    out = ["\n## BioTool's published data-construction examples (`example_calls.jsonl`)\n"]
    rejected = 0
    for ex in examples():
        diffs = [d for d in compare(ex) if not documented(ex["function"], d)]
        rejected += any(d["kind"] in ("param_missing", "validation", "function_missing") for d in diffs)
        missing = sorted(d["key"] for d in diffs if d["kind"] == "param_missing")
        shown = [f"param_missing: {', '.join(missing)}"] if missing else []
        shown += [f"{d['kind']}: {d['detail']}" for d in diffs if d["kind"] != "param_missing"]
        verdict = "; ".join(shown) or "validates and builds BioTool's request"
        out.append(f"- {ex['provenance']['index']} `{ex['function']}` {json.dumps(ex['arguments'])[:140]}: {verdict}")
    out.insert(1, f"{rejected} of {len(examples())} rejected by our catalog's validation today.\n")
    return out


if __name__ == "__main__":
    sys.stdout.write(summary_markdown())
