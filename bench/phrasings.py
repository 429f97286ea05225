"""Distinct phrasings per function, once argument values are masked.

Two questions of a function are the same phrasing when they differ only in the call's argument
values: each value is masked, as written in the call and as it is said in words
(``biocurate.wording``: "human" for homo_sapiens, "human TP53" and "TP53" for
gene:TP53 AND organism_id:9606), longest first, case-insensitively, whole words only. Prints,
per function, the items and the distinct masked questions, then the average per function.

    .venv/bin/python bench/phrasings.py data/out/versions/v0001          # a published version folder
    .venv/bin/python bench/phrasings.py data/out/biocurate.duckdb        # a store: its latest version
    .venv/bin/python bench/phrasings.py STORE --version v0002 [--json] [--min 5]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from biocurate.catalog import Catalog, load_catalog  # noqa: E402
from biocurate.vocabulary import argument_text  # noqa: E402
from biocurate.wording import Wording, wording  # noqa: E402

MASK = "<v>"


def folder_items(folder: Path) -> list[tuple[str, dict, str]]:
    """(function, arguments, question) of every item of a published version folder: its split files
    biotool/{train,validation,test}.json (or, without them, BioTool.json, which holds them all)."""
    files = [folder / "biotool" / f"{split}.json" for split in ("train", "validation", "test")]
    files = [f for f in files if f.exists()] or [f for f in [folder / "biotool" / "BioTool.json"] if f.exists()]
    if not files:
        raise SystemExit(
            f"{folder}: no biotool/train.json, validation.json, test.json (not a published version folder)"
        )
    out = []
    for path in files:
        for item in json.loads(path.read_text()):
            call = item["function_calling"]
            out.append((call["name"], call.get("arguments") or {}, item["user_query"]))
    return out


def store_items(store: Path, version: str | None) -> list[tuple[str, dict, str]]:
    """The items of a store's published version (the latest unless ``version``)."""
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        version = version or con.execute("select max(version_id) from dataset_versions").fetchall()[0][0]
        if version is None:
            raise SystemExit(f"{store}: no published version")
        rows = con.execute(
            "select function_calling, user_query from dataset_items where version_id = ?", [version]
        ).fetchall()
    finally:
        con.close()
    out = []
    for call, question in rows:
        call = json.loads(call) if isinstance(call, str) else call
        out.append((call["name"], call.get("arguments") or {}, question))
    return out


def values_of(function: str, arguments: dict, catalog: Catalog, words: Wording) -> list[str]:
    """Every way the call's argument values can appear in a question, longest first."""
    values: set[str] = set()
    for value in arguments.values():
        values.add(argument_text(value))
        if isinstance(value, list):
            values.update(str(v) for v in value)
    if function in catalog:
        try:
            said = words.say(catalog[function], arguments)
        except (KeyError, ValueError, TypeError):  # an argument shape the catalog does not know
            said = None
        if said is not None:
            values.update(said.fields.values())
    return sorted((v for v in values if len(v.strip()) >= 2), key=len, reverse=True)


def masked(question: str, values: list[str]) -> str:
    text = question
    for value in values:
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", MASK, text, flags=re.I)
    return " ".join(text.split())


def phrasings(items: list[tuple[str, dict, str]], catalog: Catalog, words: Wording) -> dict[str, tuple[int, int]]:
    """function -> (items, distinct masked questions)."""
    seen: dict[str, set[str]] = defaultdict(set)
    count: dict[str, int] = defaultdict(int)
    for function, arguments, question in items:
        seen[function].add(masked(question, values_of(function, arguments, catalog, words)))
        count[function] += 1
    return {f: (count[f], len(seen[f])) for f in sorted(seen)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a published version folder or a store (.duckdb)")
    parser.add_argument("--version", help="with a store: the version (default: the latest)")
    parser.add_argument("--min", type=int, default=5, help="name the functions with fewer phrasings")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    items = store_items(args.source, args.version) if args.source.is_file() else folder_items(args.source)
    table = phrasings(items, load_catalog(), wording())
    average = sum(d for _, d in table.values()) / len(table) if table else 0.0
    few = [f for f, (_, d) in table.items() if d < args.min]
    summary = {
        "functions": len(table),
        "items": len(items),
        "average_phrasings": round(average, 2),
        "items_per_function": round(len(items) / len(table), 2) if table else 0.0,
        f"functions_below_{args.min}": len(few),
    }
    if args.json:
        print(
            json.dumps(
                {"per_function": {f: {"items": n, "phrasings": d} for f, (n, d) in table.items()}, **summary}, indent=2
            )
        )
        return 0
    width = max((len(f) for f in table), default=8)
    print(f"{'function':<{width}}  items  phrasings")
    for function, (n, d) in table.items():
        print(f"{function:<{width}}  {n:>5}  {d:>9}")
    print()
    print(
        f"{summary['functions']} functions, {summary['items']} items ({summary['items_per_function']} per function); "
        f"average distinct phrasings per function: {summary['average_phrasings']}"
    )
    print(f"functions with fewer than {args.min} phrasings: {len(few)}" + (f" ({', '.join(few)})" if few else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
