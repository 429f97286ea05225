"""Executor throughput against the loopback API stand-in, versus the published collection method.

N calls spread over NCBI E-utilities, Ensembl and UniProt; the stand-in answers after 50 ms and
enforces each host's real limit (429 + Retry-After when exceeded). The same run also measures a
sequential baseline that sleeps 0.5 s between calls, as the published dataset was collected.
Prints achieved requests/s per host, % of the summed limits, 429s received, and the ratio.

    .venv/bin/python bench/executor.py [--calls-per-second-of-limit 12] [--baseline-calls 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from biocurate.catalog import build_request, load_catalog  # noqa: E402
from biocurate.config import load_config  # noqa: E402
from biocurate.execute import execute_calls  # noqa: E402
from biocurate.hashing import content_hash  # noqa: E402
from biocurate.snapshot import Snapshot  # noqa: E402
from biocurate.store import Store, insert_new  # noqa: E402
from tests.standins.api import ApiStandIn  # noqa: E402

LIMITS = {"eutils.ncbi.nlm.nih.gov": 3, "rest.ensembl.org": 15, "rest.uniprot.org": 10}
FUNCTIONS = {
    "eutils.ncbi.nlm.nih.gov": ("esummary", lambda i: {"db": "gene", "id": str(1000 + i)}),
    "rest.ensembl.org": ("lookup_by_id", lambda i: {"id": f"ENSG{i:011d}"}),
    "rest.uniprot.org": ("get_uniprotkb_entry", lambda i: {"accession": f"P{i % 10}{i:04d}"[:6]}),
}
BODY = {
    "esummary": {"header": {"type": "esummary"}, "result": {"uids": ["1"], "1": {"name": "X"}}},
    "lookup_by_id": {"id": "ENSG", "display_name": "X", "object_type": "Gene"},
    "get_uniprotkb_entry": {"primaryAccession": "P00000", "entryType": "UniProtKB reviewed (Swiss-Prot)"},
}


def build(tmp: Path, seconds: float):
    catalog = load_catalog()
    snapshot = Snapshot(tmp / "snap")
    calls = []
    for host, limit in LIMITS.items():
        name, make_args = FUNCTIONS[host]
        tool = catalog[name]
        for i in range(int(limit * seconds)):
            args = make_args(i)
            req = build_request(tool, args)
            snapshot.add(
                method=req.method,
                url=req.url,
                params=req.params,
                body=None,
                status=200,
                content_type="application/json",
                content=json.dumps(BODY[name]).encode(),
                file=f"{tool.source}/{name}_{i}.json",
                origin="illustrative",
                provenance="bench",
            )
            calls.append(
                {
                    "call_id": content_hash("call", name, args),
                    "function": name,
                    "arguments": json.dumps(args),
                    "template": "bench",
                    "database": tool.database,
                    "tool_group": tool.group,
                    "category": tool.category,
                    "valid": True,
                    "_host": host,
                    "_req": req,
                }
            )
    return catalog, snapshot, calls


def per_host_rates(requests, hosts):
    rates = {}
    for host in hosts:
        times = sorted(r[0] for r in requests if r[1] == host and r[3] != 429)
        rates[host] = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return rates


def max_in_window(requests, host):
    times = sorted(r[0] for r in requests if r[1] == host)
    return max((sum(1 for t in times if s <= t < s + 1.0) for s in times), default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="calls per host = limit x seconds")
    parser.add_argument("--baseline-calls", type=int, default=20)
    ns = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    catalog, snapshot, calls = build(tmp, ns.seconds)
    server = ApiStandIn(snapshot, latency=0.05, rate_limits=dict(LIMITS)).start()
    try:
        cfg = load_config(
            ROOT / "biocurate.toml",
            overrides={
                "store.path": str(tmp / "s.duckdb"),
                "execute.transport": "live",
                "execute.base_urls": server.base_urls(),
                "execute.batch_size": 10_000,
                "execute.hosts": {h: {"rate_per_second": r, "max_concurrency": 8} for h, r in LIMITS.items()},
            },
        )
        with Store(cfg.store.path).open() as con:
            insert_new(con, "candidate_calls", [{k: v for k, v in c.items() if not k.startswith("_")} for c in calls])
            started = time.perf_counter()
            summary = execute_calls(cfg, con, catalog, "bench")
            ours_seconds = time.perf_counter() - started
        ours = list(server.requests)
        server.requests.clear()

        # Baseline: one request at a time, 0.5 s sleep between calls (the published scripts).
        started = time.perf_counter()
        with httpx.Client() as client:
            for call in calls[: ns.baseline_calls]:
                req = call["_req"]
                url = req.url
                for original, replacement in server.base_urls().items():
                    url = url.replace(original, replacement)
                client.request(req.method, url, params=req.params, headers=req.headers)
                time.sleep(0.5)
        base_rate = ns.baseline_calls / (time.perf_counter() - started)
    finally:
        server.stop()

    rates = per_host_rates(ours, LIMITS)
    total_rate = sum(rates.values())
    summed_limits = sum(LIMITS.values())
    print(f"{len(calls)} calls over {len(LIMITS)} hosts, 50 ms latency, real limits; outcomes {summary.outcomes}")
    print(f"{'host':28} {'limit/s':>8} {'achieved/s':>11} {'% limit':>8} {'max in 1 s':>10} {'429s':>5}")
    for host, limit in LIMITS.items():
        n429 = sum(1 for r in ours if r[1] == host and r[3] == 429)
        print(
            f"{host:28} {limit:8} {rates[host]:11.2f} {100 * rates[host] / limit:7.1f}% "
            f"{max_in_window(ours, host):10} {n429:5}"
        )
    print(f"{'all hosts':28} {summed_limits:8} {total_rate:11.2f} {100 * total_rate / summed_limits:7.1f}%")
    print(f"wall time {ours_seconds:.1f} s for {len(calls)} calls = {len(calls) / ours_seconds:.2f} req/s overall")
    print(f"baseline (sequential, 0.5 s sleep): {base_rate:.2f} req/s")
    print(
        f"ratio executor / baseline (summed per-host rates): {total_rate / base_rate:.1f}x; "
        f"(wall-clock): {len(calls) / ours_seconds / base_rate:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
