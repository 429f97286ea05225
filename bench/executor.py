"""Executor throughput against the loopback API stand-in, versus the published collection method.

N calls spread over NCBI E-utilities, Ensembl and UniProt; the stand-in answers after 50 ms and
enforces each host's limit (429 + Retry-After when exceeded). Scenarios, all in one process:

- real limits: the stand-in enforces the configured limits; compared with a sequential baseline
  that sleeps 0.5 s between calls, as the published dataset was collected;
- tighter limits: the stand-in enforces limits 40 % below the configured ones (NCBI 1.8,
  Ensembl 9, UniProt 6 per second), once with a fixed rate (``rate_decrease = 1``, the baseline)
  and once adaptive (AIMD, the default). Prints the share of requests answered 429, the calls
  that exhausted their retries, and throughput as % of the stand-in's real limits.

    .venv/bin/python bench/executor.py [--seconds 12] [--baseline-calls 20] [--tight 0.6]
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


def run_scenario(tmp: Path, name: str, catalog, snapshot, calls, enforced: dict[str, float], **execute) -> dict:
    """One execute stage against a fresh stand-in enforcing ``enforced``; what the stand-in saw."""
    server = ApiStandIn(snapshot, latency=0.05, rate_limits=dict(enforced)).start()
    try:
        cfg = load_config(
            ROOT / "biocurate.toml",
            overrides={
                "store.path": str(tmp / f"{name}.duckdb"),
                "execute.transport": "live",
                "execute.base_urls": server.base_urls(),
                "execute.batch_size": 10_000,
                "execute.hosts": {h: {"rate_per_second": r, "max_concurrency": 8} for h, r in LIMITS.items()},
                **{f"execute.{k}": v for k, v in execute.items()},
            },
        )
        with Store(cfg.store.path).open() as con:
            insert_new(con, "candidate_calls", [{k: v for k, v in c.items() if not k.startswith("_")} for c in calls])
            started = time.perf_counter()
            summary = execute_calls(cfg, con, catalog, "bench")
            seconds = time.perf_counter() - started
            exhausted = con.execute(
                "select count(*) from api_responses where status_code in (429, 503) and attempts = ?",
                [cfg.execute.max_retries + 1],
            ).fetchall()[0][0]
    finally:
        server.stop()
    return {
        "requests": list(server.requests),
        "summary": summary,
        "seconds": seconds,
        "exhausted": exhausted,
        "enforced": enforced,
    }


def print_scenario(title: str, result: dict, calls: int) -> None:
    ours, enforced = result["requests"], result["enforced"]
    rates = per_host_rates(ours, enforced)
    n429 = sum(1 for r in ours if r[3] == 429)
    print(f"\n== {title}: {calls} calls; outcomes {result['summary'].outcomes}")
    print(f"{'host':28} {'enforced/s':>10} {'achieved/s':>11} {'% limit':>8} {'max in 1 s':>10} {'429s':>5}")
    for host, limit in enforced.items():
        host429 = sum(1 for r in ours if r[1] == host and r[3] == 429)
        print(
            f"{host:28} {limit:10.1f} {rates[host]:11.2f} {100 * rates[host] / limit:7.1f}% "
            f"{max_in_window(ours, host):10} {host429:5}"
        )
    total = sum(rates.values())
    print(f"{'all hosts':28} {sum(enforced.values()):10.1f} {total:11.2f} {100 * total / sum(enforced.values()):7.1f}%")
    print(
        f"requests {len(ours)}, answered 429: {n429} ({100 * n429 / max(len(ours), 1):.1f} %), "
        f"calls that exhausted their retries: {result['exhausted']}, wall time {result['seconds']:.1f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="calls per host = configured limit x seconds")
    parser.add_argument("--baseline-calls", type=int, default=20)
    parser.add_argument("--tight", type=float, default=0.6, help="enforced / configured limit in the tight scenario")
    ns = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    catalog, snapshot, calls = build(tmp, ns.seconds)

    real = run_scenario(tmp, "real", catalog, snapshot, calls, dict(LIMITS))
    # Baseline: one request at a time, 0.5 s sleep between calls (the published scripts).
    server = ApiStandIn(snapshot, latency=0.05).start()
    try:
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
    tight = {h: r * ns.tight for h, r in LIMITS.items()}
    fixed = run_scenario(tmp, "tight_fixed", catalog, snapshot, calls, tight, rate_decrease=1.0)
    adaptive = run_scenario(tmp, "tight_adaptive", catalog, snapshot, calls, tight)

    print_scenario("real limits (enforced = configured)", real, len(calls))
    total_rate = sum(per_host_rates(real["requests"], LIMITS).values())
    print(f"baseline (sequential, 0.5 s sleep): {base_rate:.2f} req/s")
    print(
        f"ratio executor / baseline (summed per-host rates): {total_rate / base_rate:.1f}x; "
        f"(wall-clock): {len(calls) / real['seconds'] / base_rate:.1f}x"
    )
    pct = round(100 * (1 - ns.tight))
    print_scenario(f"limits {pct} % below configured, fixed rate (rate_decrease = 1, baseline)", fixed, len(calls))
    print_scenario(f"limits {pct} % below configured, adaptive (AIMD)", adaptive, len(calls))
    share = sum(1 for r in adaptive["requests"] if r[3] == 429) / max(len(adaptive["requests"]), 1)
    target = share < 0.05 and adaptive["exhausted"] == 0
    print(f"\ntarget (under 5 % answered 429, no call exhausting its retries): {'met' if target else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
