"""Record where BioTool's wrappers live and what they require, from a BioTool checkout.

Writes ``wrappers.json`` beside this file: for each module BioTool's dispatcher imports
(``<database>.<tool>.api``, a package directory with an ``api.py``), its public functions and the
parameters each requires (no default). Parameter names per function are in
``tests/data/biotool/signatures.json``; this file adds the module paths and the required ones.
It reads BioTool's source with ``ast`` (nothing is imported or run, no code is copied).

    mkdir -p /tmp/biotool && git -C /work/.mirror/gxx27+BioTool/repo archive HEAD | tar -x -C /tmp/biotool
    .venv/bin/python -m tests.biotool_consumers.record_wrappers /tmp/biotool --commit <sha>
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

OUT = Path(__file__).with_name("wrappers.json")


def required_of(fn: ast.FunctionDef) -> list[str]:
    args = fn.args
    positional = args.posonlyargs + args.args
    without_default = positional[: len(positional) - len(args.defaults)]
    return [a.arg for a in without_default] + [
        a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None
    ]


def record(checkout: Path) -> dict[str, dict[str, dict]]:
    modules: dict[str, dict[str, dict]] = {}
    for api in sorted(checkout.glob("*/*/api.py")):
        database, tool = api.parts[-3], api.parts[-2]
        for node in ast.parse(api.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                modules.setdefault(f"{database}.{tool}.api", {})[node.name] = {
                    "required": required_of(node),
                    "takes_any_keyword": node.args.kwarg is not None,
                }
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--commit", required=True)
    args = parser.parse_args()
    data = {
        "biotool": {
            "repository": "github.com/gxx27/BioTool",
            "commit": args.commit,
            "recorded_by": "tests/biotool_consumers/record_wrappers.py",
        },
        "modules": record(args.checkout),
    }
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{sum(len(f) for f in data['modules'].values())} functions in {len(data['modules'])} modules -> {OUT}")


if __name__ == "__main__":
    main()
