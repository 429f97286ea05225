"""Maintain the offline demo snapshot.

  python scripts/snapshot.py missing            # sampled demo calls with no recorded response
  python scripts/snapshot.py rekey [--dry-run]   # file each entry under the request the catalog builds now
  python scripts/snapshot.py add FUNCTION 'ARGS_JSON' --body-file F --origin illustrative \
        --provenance "why these facts are true" [--status 200] [--content-type application/json]

`record` mode (`biocurate rebuild --transport record`) replaces illustrative bodies with live ones.

rekey: when the catalog changes how it writes a request (parameter names, value forms, defaults),
each recorded entry is read back into the call it answers (``arguments_from_request``), that call
is built again, and the entry is filed under the new request's fingerprint, keeping its body,
origin and provenance, but only when the new request asks the server the same thing: same URL, the
same parameters once (a) a comma-separated list and its repeated form are taken as one
(``fields=a,b`` = ``fields=a&fields=b``, as UniProt reads them), (b) form-body and query parameters
are pooled (BLAST reads CMD=Put from either), (c) a parameter at the API's own default
(``server_default`` in the catalog: UniProt's size=25, ELink's cmd=neighbor) is the same as no
parameter, and (d) a JSON body sent as a query string instead (the GA4GH beacon query takes
both). Any other change (e.g. einfo now asking for JSON) is reported, not re-keyed: record or add
a body for the new request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from biocurate.call_sets import sample_sets
from biocurate.catalog import Tool, arguments_from_request, build_request, load_catalog
from biocurate.config import load_config
from biocurate.item_kinds import load_item_kinds
from biocurate.sampling import sample_calls
from biocurate.seeds import load_seeds, species_table
from biocurate.snapshot import Snapshot


def request_key(tool, args):
    req = build_request(tool, args)
    return req, req.fingerprint()


def recorded_request(shown: str) -> tuple[str, list[tuple[str, str]], dict | None]:
    """(URL, query parameters, body) of an index row's request as ``Snapshot.add`` shows it."""
    url, _, body = shown.partition(" body=")
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return base, parse_qsl(parts.query, keep_blank_values=True), json.loads(body) if body else None


def asked(tool: Tool, method: str, url: str, params: list, body: dict | None) -> tuple:
    """What a request asks the server, with the wire differences that ask the same thing removed."""
    lists = {(p.http_name or n) for n, p in tool.function.params.items() if p.is_list}
    defaults = {
        ((p.http_name or n), str(p.server_default))
        for n, p in tool.function.params.items()
        if p.server_default is not None
    }
    pairs: Counter = Counter()
    for key, value in [*params, *((k, str(v)) for k, v in (body or {}).items())]:
        for item in value.split(",") if key in lists else [value]:
            if (key, item) not in defaults:
                pairs[(key, item)] += 1
    return unquote(url), sorted(pairs.items())


def rekey(snapshot: Snapshot, catalog, dry_run: bool) -> int:
    moved = kept = 0
    for key, entry in sorted(snapshot.entries.items(), key=lambda kv: kv[1].file):
        name = Path(entry.file).name.split("__")[0]
        if name not in catalog:
            continue  # a protocol step (BLAST SearchInfo), not a catalog call
        tool = catalog[name]
        url, params, body = recorded_request(entry.url)
        args = arguments_from_request(tool, url, params, body)
        if args is None:
            print(f"SKIP {entry.file}: {url} is not a URL of {name}")
            continue
        new = build_request(tool, args)
        if new.fingerprint() == key:
            continue
        old_method_ok = entry.method == new.method or (
            entry.method == "POST" and body and not new.form and not new.json_body
        )
        if not old_method_ok or asked(tool, entry.method, url, params, body) != asked(
            tool, new.method, new.url, new.params, new.json_body or new.form
        ):
            kept += 1
            print(
                f"KEEP {entry.file}: the catalog now asks something else: {new.method} "
                f"{new.url} {new.params} {new.json_body or new.form or ''}"
            )
            continue
        moved += 1
        print(f"MOVE {entry.file}: {json.dumps(args)}")
        if not dry_run:
            snapshot.move(key, method=new.method, url=new.url, params=new.params, body=new.json_body or new.form)
    if not dry_run:
        snapshot.save()
    print(
        f"# {moved} entries re-keyed, {kept} left under a request the catalog no longer builds"
        f"{' (dry run)' if dry_run else ''}",
        file=sys.stderr,
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("missing")
    rekey_cmd = sub.add_parser("rekey")
    rekey_cmd.add_argument("--dry-run", action="store_true")
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
    if ns.cmd == "rekey":
        return rekey(snapshot, catalog, ns.dry_run)
    if ns.cmd == "missing":
        seeds = load_seeds(config.path(config.sample.seeds_dir), config.path(config.sample.catalog_dir))
        species = species_table(config.path(config.sample.catalog_dir))
        calls = sample_calls(catalog, seeds.entities, species, config.sample).calls
        # the call sets' steps known at sampling ([sample.kinds]); a chain's later steps are known
        # only from its observations: a replay run's chain stage reports those it could not answer
        kinds = load_item_kinds(config.path(config.sample.catalog_dir))
        calls += sample_sets(catalog, kinds, seeds.entities, species, config.sample).calls
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
    ext = {"application/json": "json", "text/xml": "xml", "application/xml": "xml", "text/html": "html"}.get(
        ns.content_type, "txt"
    )
    name = ns.name or f"{ns.function}__{key[:10]}.{ext}"
    snapshot.add(
        method=req.method,
        url=req.url,
        params=req.params,
        body=req.json_body or req.form,
        status=ns.status,
        content_type=ns.content_type,
        content=ns.body_file.read_bytes(),
        file=f"{tool.source}/{name}",
        origin=ns.origin,
        provenance=ns.provenance,
    )
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
