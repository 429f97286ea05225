"""Mention rules and naturalness on a store: which questions fail which rule (issue 16).

Reads the store (read-only) and checks, with the same functions the quality suite's
``query_mentions_arguments`` and ``query_reads_naturally`` expectations use:

* every current question (``query_context``, reviewers' replacements excluded), and
* the items of the latest published version (``dataset_items``),

and prints, for each, how many fail each naturalness rule and each mention kind (with the
parameter), plus examples. The target of the question templates is 0 everywhere.

    .venv/bin/python bench/grounding.py [--store /tmp/copy.duckdb] [--examples 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from biocurate.catalog import load_catalog  # noqa: E402
from biocurate.config import load_config  # noqa: E402
from biocurate.gx import catalog_value, load_suites, resolve_kwargs  # noqa: E402
from biocurate.mentions import compiled, mention_rules  # noqa: E402
from biocurate.naturalness import problems  # noqa: E402


def naturalness_words(config) -> tuple[list[str], list[str]]:
    spec = next(
        e
        for s in load_suites(config.path(config.quality.suites_dir))
        for e in s["expectations"]
        if e["name"] == "query_reads_naturally"
    )
    kw = resolve_kwargs(spec["kwargs"], config)
    return kw["code_names"], [*kw.get("api_words", []), *kw.get("jargon", [])]


def check(rows, catalog, rules, names, words):
    """rows: (text, function, arguments JSON). Returns per-rule counters and examples."""
    unnatural, mentions, failing = Counter(), Counter(), {"natural": 0, "mentions": 0, "either": 0}
    examples: dict[str, list[str]] = defaultdict(list)
    for text, function, arguments in rows:
        found = problems(text, names, words)
        for rule in dict.fromkeys(r for r, _ in found):
            unnatural[rule] += 1
            examples[f"naturalness: {rule}"].append(f"{text}  [{function}]")
        missed = []
        tool = catalog.tools.get(function)
        if tool is not None:
            args = json.loads(arguments) if isinstance(arguments, str) else arguments
            for m in rules.mentions(tool, args):
                hit = compiled(m.pattern).search(text)
                if bool(hit) == m.absent:
                    key = f"{m.kind if not m.absent else 'species_if_named'} ({m.param.split()[0]})"
                    missed.append(key)
                    examples[f"mention: {key}"].append(f"{text}  [{function} {arguments}]")
        for key in dict.fromkeys(missed):
            mentions[key] += 1
        failing["natural"] += bool(found)
        failing["mentions"] += bool(missed)
        failing["either"] += bool(found or missed)
    return unnatural, mentions, failing, examples


def report(title: str, total: int, result, n_examples: int) -> None:
    unnatural, mentions, failing, examples = result
    print(
        f"\n## {title}: {total} questions; failing naturalness {failing['natural']}, "
        f"mentions {failing['mentions']}, either {failing['either']}"
    )
    print("\nnaturalness rule | questions")
    for rule, n in unnatural.most_common():
        print(f"  {rule} | {n}")
    print("\nmention kind (parameter) | questions")
    for key, n in mentions.most_common():
        print(f"  {key} | {n}")
    if n_examples:
        print("\nexamples")
        for key, items in sorted(examples.items()):
            for item in items[:n_examples]:
                print(f"  {key}: {item}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="store path (default: the config's)")
    parser.add_argument("--config", default=str(ROOT / "biocurate.toml"))
    parser.add_argument("--examples", type=int, default=2)
    args = parser.parse_args()
    config = load_config(Path(args.config), overrides={"store.path": args.store} if args.store else None)
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    rules = mention_rules(config.path(config.sample.catalog_dir), config.path(config.sample.seeds_dir))
    names, words = naturalness_words(config)
    assert names == catalog_value("code_names", config)
    con = duckdb.connect(str(config.store.path), read_only=True)
    views = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    replaced = (
        "where query_id not in (select query_id from qc_replaced_queries)" if "qc_replaced_queries" in views else ""
    )
    current = con.execute(f"select text, function, arguments::varchar from query_context {replaced}").fetchall()
    report("current questions", len(current), check(current, catalog, rules, names, words), args.examples)
    published = con.execute(
        "select user_query, function_calling->>'name', (function_calling->'arguments')::varchar from dataset_items "
        "where version_id = (select max(version_id) from dataset_versions)"
    ).fetchall()
    if published:
        report(
            "latest published version", len(published), check(published, catalog, rules, names, words), args.examples
        )


if __name__ == "__main__":
    main()
