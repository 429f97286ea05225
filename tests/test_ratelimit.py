"""Rate limits under pressure: adaptive rates (AIMD), Retry-After for every waiter, hosts independent.

Against the loopback API stand-in; timings are generous (2 busy cores): the assertions compare
orders and ratios of the stand-in's request timestamps, not tight wall-clock figures.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from biocurate.catalog import build_request, load_catalog
from biocurate.execute import Executor, execute_calls
from biocurate.hashing import content_hash
from biocurate.ratelimit import HostLimiter
from biocurate.snapshot import Snapshot
from biocurate.store import Store, insert_new
from tests.pipeline_helpers import live_execute_config
from tests.standins.api import ApiStandIn, Fault

ENSEMBL, UNIPROT = "rest.ensembl.org", "rest.uniprot.org"
BODIES = {
    "lookup_by_id": lambda a: {"id": a["id"], "display_name": "BRCA2", "object_type": "Gene", "species": "human"},
    "get_uniprotkb_entry": lambda a: {
        "primaryAccession": a["accession"],
        "entryType": "UniProtKB reviewed (Swiss-Prot)",
        "proteinDescription": {"recommendedName": {"fullName": {"value": "Cellular tumor antigen p53"}}},
    },
}


def add_calls(con, snapshot: Snapshot, function: str, args_list: list[dict], prefix: str = "") -> list[str]:
    """One call per arguments, each answered 200 by the stand-in; ``prefix`` orders the call ids."""
    tool = load_catalog()[function]
    rows: list[dict] = []
    for args in args_list:
        req = build_request(tool, args)
        snapshot.add(
            method=req.method,
            url=req.url,
            params=req.params,
            body=None,
            status=200,
            content_type="application/json",
            content=json.dumps(BODIES[function](args)).encode(),
            file=f"{tool.source}/{content_hash('f', args)[:12]}.json",
            origin="illustrative",
            provenance="test",
        )
        rows.append(
            {
                "call_id": prefix + content_hash("call", function, args),
                "function": function,
                "arguments": json.dumps(args),
                "template": "test",
                "database": tool.database,
                "tool_group": tool.group,
                "category": tool.category,
                "valid": True,
            }
        )
    insert_new(con, "candidate_calls", rows)
    return [r["call_id"] for r in rows]


def ensembl_ids(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"ENSG{i:011d}"} for i in range(start, start + n)]


@pytest.fixture
def setup(tmp_path):
    snapshot = Snapshot(tmp_path / "snap")
    server = ApiStandIn(snapshot).start()

    def config(hosts: dict[str, float] | None = None, **execute):
        execute = {"max_retries": 4, "backoff_seconds": 0.05, "timeout_seconds": 10.0, "rate_safety": 1.0, **execute}
        if hosts:
            execute["hosts"] = {h: {"rate_per_second": r, "max_concurrency": 4} for h, r in hosts.items()}
        return live_execute_config(tmp_path, server, **execute)

    yield server, snapshot, config
    server.stop()


def limiter_of(cfg, server: ApiStandIn, host: str) -> HostLimiter:
    """The process's limiter the executor uses for ``host`` (the same object every stage gets)."""
    executor = Executor(cfg, cfg.execute.transport, httpx.AsyncClient())
    return executor.limiter(host, server.base_urls()[f"https://{host}"])


def test_throttle_halves_once_per_rate_and_successes_climb_back_to_the_configured_rate():
    limiter = HostLimiter(10.0, 2, decrease=0.5, recovery=1.0)
    sent_before = time.monotonic()
    limiter.throttle(None, sent_before)
    assert limiter.rate == pytest.approx(5.0)
    # answers to requests sent before the decrease say nothing about the new rate
    limiter.throttle(None, sent_before)
    assert limiter.rate == pytest.approx(5.0) and limiter.throttled == 2 and limiter.decreases == 1
    limiter.throttle(None, time.monotonic())
    assert limiter.rate == pytest.approx(2.5) and limiter.decreases == 2
    rates = []
    for _ in range(12):
        time.sleep(0.2)
        limiter.succeeded()
        rates.append(limiter.rate)
    assert rates == sorted(rates)  # additive increase, step by step
    assert rates[0] > 2.5
    assert rates[-1] == 10.0  # back to the configured rate, never above it
    assert max(rates) <= 10.0


def test_retry_after_stops_every_waiting_request_to_the_host(setup):
    """A 429 with Retry-After: 1 holds the requests already waiting for a slot, not just the retry."""
    server, snapshot, config = setup
    server.retry_after = 1.0
    cfg = config(hosts={ENSEMBL: 3.0})
    with Store(cfg.store.path).open() as con:
        calls = ensembl_ids(4)
        # the rejected call sorts first: three others are waiting for their turn when it comes back
        add_calls(con, snapshot, "lookup_by_id", calls[:1], prefix="0")
        add_calls(con, snapshot, "lookup_by_id", calls[1:], prefix="1")
        server.faults.append(Fault("429", calls[0]["id"], times=1))
        summary = execute_calls(cfg, con, load_catalog(), "r1")
        assert set(summary.outcomes) == {"ok"}
    [(rejected_at, *_)] = server.served(status=429)
    later = [t for t, host, _, status in server.requests if t > rejected_at]
    assert len(later) == 4  # the three others still waiting, and the retry
    assert min(later) - rejected_at >= 0.9
    assert summary.throttled == 1


def test_429s_lower_the_host_rate_and_it_recovers_once_they_stop(setup):
    """The stand-in allows 2/s, the config says 8/s: the rate comes down, then climbs back when the limit is lifted."""
    server, snapshot, config = setup
    server.retry_after = 0.5
    server.rate_limits = {ENSEMBL: 2}
    cfg = config(hosts={ENSEMBL: 8.0}, rate_recovery=0.25)
    catalog = load_catalog()
    with Store(cfg.store.path).open() as con:
        add_calls(con, snapshot, "lookup_by_id", ensembl_ids(12))
        first = execute_calls(cfg, con, catalog, "r1")
        assert set(first.outcomes) == {"ok"}
        limiter = limiter_of(cfg, server, ENSEMBL)
        lowered = limiter.rate
        assert limiter.decreases >= 1 and lowered < 8.0
        rejected = len(server.served(status=429))
        # at a fixed 8/s against 2/s most requests would be rejected; adapted, few are
        assert rejected <= 0.35 * len(server.requests)
        assert first.throttled == rejected and first.http_requests == len(server.requests)

        server.rate_limits = {}
        served = len(server.requests)
        add_calls(con, snapshot, "lookup_by_id", ensembl_ids(16, start=100))
        execute_calls(cfg, con, catalog, "r2")
    assert len(server.served(status=429)) == rejected  # none once the limit is lifted
    assert limiter_of(cfg, server, ENSEMBL) is limiter  # one limiter for the host, across stages
    assert lowered < limiter.rate <= 8.0
    second = sorted(t for t, *_ in server.requests[served:])
    assert len(second) == 16
    # back above the limit it was held to (2/s), and not above the configured 8/s (arrival jitter allowed)
    assert 2.5 < (len(second) - 1) / (second[-1] - second[0]) <= 8.5


def test_a_slow_host_does_not_hold_the_others(setup):
    """UniProt answers after 3 s; the Ensembl calls go out meanwhile (no barrier across hosts)."""
    server, snapshot, config = setup
    server.host_latency = {UNIPROT: 3.0}
    cfg = config(hosts={ENSEMBL: 20.0, UNIPROT: 5.0}, batch_size=1)
    with Store(cfg.store.path).open() as con:
        # the slow call sorts first: in batches of one, everything else would wait for it
        add_calls(con, snapshot, "get_uniprotkb_entry", [{"accession": "P04637"}], prefix="0")
        add_calls(con, snapshot, "lookup_by_id", ensembl_ids(6), prefix="1")
        summary = execute_calls(cfg, con, load_catalog(), "r1")
        assert summary.outcomes == {"ok": 7}
        rows = con.execute("select count(*) from api_responses").fetchall()[0][0]
    assert rows == 7
    [(slow_at, *_)] = server.served(host=UNIPROT)
    fast = [t for t, *_ in server.served(host=ENSEMBL)]
    assert len(fast) == 6
    # every Ensembl request arrived while the UniProt one was still being answered
    assert max(fast) < slow_at + 3.0


def test_the_limiter_paces_one_loop_after_another_and_threads():
    """The pacing is one per host: two event loops (one per thread) share it."""
    limiter = HostLimiter(rate_per_second=10, max_concurrency=2)
    times: list[float] = []

    async def batch():
        async def one():
            async with limiter.slots:
                times.append(await limiter.wait_turn())

        await asyncio.gather(*(one() for _ in range(3)))

    threads = [threading.Thread(target=asyncio.run, args=(batch(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times.sort()
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 6
    assert min(gaps) >= 0.09  # 10/s across both loops, never two at once
