"""Maintain the offline demo snapshot.

  python scripts/snapshot.py missing            # sampled demo calls with no recorded response
  python scripts/snapshot.py add FUNCTION 'ARGS_JSON' --body-file F --origin illustrative \
        --provenance "why these facts are true" [--status 200] [--content-type application/json]

`record` mode (`biocurate rebuild --transport record`) replaces illustrative bodies with live ones.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from biocurate.catalog import build_request, load_catalog
from biocurate.config import load_config
from biocurate.sampling import sample_calls
from biocurate.seeds import load_seeds, species_table
from biocurate.snapshot import Snapshot, fingerprint


def request_key(tool, args):
    req = build_request(tool, args)
    return req, fingerprint(req.method, req.url, req.params, req.json_body or req.form)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("missing")
    add = sub.add_parser("add")
    add.add_argument("function")
    add.add_argument("arguments")
    add.add_argument("--body-file", required=True, type=Path)
    add.add_argument("--origin", choices=["real", "illustrative"], required=True)
    add.add_argument("--provenance", required=True)
    add.add_argument("--status", type=int, default=200)
    add.add_argument("--content-type", default="application/json")
    add.add_argument("--name", help="file name under responses/<source>/ (default: function + key)")
    ns = parser.parse_args()

    config = load_config()
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    snapshot = Snapshot(config.path(config.execute.snapshot_dir))
    if ns.cmd == "missing":
        seeds = load_seeds(config.path(config.sample.seeds_dir), config.path(config.sample.catalog_dir))
        calls = sample_calls(catalog, seeds.entities, species_table(config.path(config.sample.catalog_dir)), config.sample).calls
        missing = 0
        for call in calls:
            tool = catalog[call["function"]]
            if not call["valid"]:
                print(f"INVALID {call['function']} {json.dumps(call['arguments'])}: {call['invalid_reason']}")
                continue
            req, key = request_key(tool, call["arguments"])
            if snapshot.get(key) is None:
                missing += 1
                print(f"{call['function']}\t{json.dumps(call['arguments'])}\t{req.method} {req.url} {req.params}")
        print(f"# {missing} of {len(calls)} sampled calls have no recorded response", file=sys.stderr)
        return 0
    tool = catalog[ns.function]
    args = json.loads(ns.arguments)
    problem = tool.validate(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    req, key = request_key(tool, args)
    ext = {"application/json": "json", "text/xml": "xml", "application/xml": "xml", "text/html": "html"}.get(ns.content_type, "txt")
    name = ns.name or f"{ns.function}__{key[:10]}.{ext}"
    snapshot.add(method=req.method, url=req.url, params=req.params, body=req.json_body or req.form,
                 status=ns.status, content_type=ns.content_type, content=ns.body_file.read_bytes(),
                 file=f"{tool.source}/{name}", origin=ns.origin, provenance=ns.provenance)
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
