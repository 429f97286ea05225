"""Execute candidate calls: async httpx, per-host rate limits, retries, a response cache.

Every outcome is classified and stored in ``api_responses`` (raw body gzip-compressed, with
the request fingerprint, status, latency and fetch time); only ``ok`` responses become
observations. Transports: ``live`` (the real APIs), ``record`` (live, and every response is
saved into the snapshot) and ``replay`` (answer only from the snapshot; a miss is recorded as
``replay_miss`` naming the request).

How a body is classified and read (its format per the call's arguments, the observation
builders) lives in ``biocurate.observations``; this module keeps the transport, the per-host
scheduling of a stage (a queue and workers per host, the process's limiter per host from
``biocurate.ratelimit``), the BLAST submit/poll protocol and the observation pass over stored
bodies. It is over 400 lines formatted because these share the ``Attempt`` and
``api_responses`` row shapes.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import duckdb
import httpx
import polars as pl

from biocurate.catalog import Catalog, Request, Tool, build_request
from biocurate.config import Config, mask_secret_bytes, secret
from biocurate.hashing import content_hash, sha256_bytes
from biocurate.observations import NotAnAnswer, UnexpectedShape, build_observation
from biocurate.observations.blast import BlastRejected, job_status, parse_submission, status_outcome
from biocurate.observations.formats import classify
from biocurate.outcomes import API_ERROR, HTTP_ERROR, INVALID_BODY, OK, REPLAY_MISS, TIMEOUT, definite_sql
from biocurate.progress import progress
from biocurate.ratelimit import HostLimiter, backoff_delay, retry_after_seconds, shared_limiter
from biocurate.snapshot import BoundedCache, Snapshot, display_url, fingerprint
from biocurate.store import EVERY_CALL, Part, call_parts, insert_new, release, utcnow

__all__ = ["classify", "execute_calls", "build_observations", "pending_calls", "Executor", "make_client"]
RETRY_STATUS = {429, 500, 502, 503, 504}
RELEASE_HEADERS = ("x-uniprot-release", "x-release", "x-ensembl-release")
REPLAY_HOLD_SECONDS = 1.0  # a replay releases the store after a batch once it held it this long
# Answers a replay writes at a time (a live run writes every [execute] batch_size answers). An insert
# of 200 answers took as long as one of 1,000: at 100k calls, 500 inserts took 8.2 s of a 14.6 s stage.
REPLAY_WRITE_ROWS = 2_000


class ReplayMiss(Exception):
    pass


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers from a snapshot folder; never touches the network."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url.copy_with(query=None))
        params = list(request.url.params.multi_items())
        body = (
            json.loads(request.content)
            if request.content and request.headers.get("content-type", "").startswith("application/json")
            else (dict(httpx.QueryParams(request.content.decode())) if request.content else None)
        )
        found = self.snapshot.get(fingerprint(request.method, url, params, body))
        if found is None:
            raise ReplayMiss(f"no recorded response for {request.method} {display_url(url, params)}")
        entry, content = found
        return httpx.Response(
            entry.status,
            headers={"content-type": entry.content_type, "x-snapshot-origin": entry.origin},
            content=content,
            request=request,
        )


@dataclass
class Attempt:
    outcome: str
    status: int | None = None
    error: str | None = None
    content_type: str = ""
    body: bytes = b""
    latency_ms: float = 0.0
    attempts: int = 0
    release: str | None = None
    stored: StoredBody | None = None  # the body as stored (replay: made once per recorded file)


@dataclass(frozen=True)
class StoredBody:
    """A body as ``api_responses`` keeps it: its sha256 and its gzip (mtime 0: same body, same bytes)."""

    sha256: str | None
    gzipped: bytes | None

    @classmethod
    def of(cls, body: bytes) -> StoredBody:
        return cls(sha256_bytes(body), gzip.compress(body, mtime=0)) if body else cls(None, None)


# Replayed answers kept per (recorded file, format asked): its outcome and stored body, made once.
REPLAYED_CACHE_BYTES = 64 * 2**20


@dataclass
class Executor:
    config: Config
    transport_name: str
    client: httpx.AsyncClient
    snapshot: Snapshot | None = None
    # Replay without HTTP machinery (the snapshot answers the request itself): a third of the
    # time per call at 100k calls. None: replay goes through ReplayTransport like any transport.
    replay: Snapshot | None = None
    # Network accounting: ``sent`` requests the server answered (any status), ``connection_failed``
    # (no connection: never a request), ``timed_out`` (no answer in time), ``throttled`` (429 or
    # 503 with Retry-After, also counted in ``sent``).
    counts: Counter[str] = field(default_factory=Counter)
    # (file, format) -> (outcome, error, body, stored body) of replayed answers: many requests of a
    # replay share few recorded files, so each is read, classified and compressed once.
    replayed: BoundedCache = field(
        default_factory=lambda: BoundedCache(REPLAYED_CACHE_BYTES, lambda v: 2 * len(v[2]) + 200)
    )

    def replay_answer(self, req: Request, response_format: str, key: str | None = None) -> Attempt:
        """The snapshot's answer to ``req`` (``key``: its fingerprint, when already known)."""
        assert self.replay is not None
        entry = self.replay.entries.get(key or req.fingerprint())
        if entry is None:
            return Attempt(
                REPLAY_MISS,
                error=f"no recorded response for {req.method} {display_url(req.url, req.params)}",
                attempts=1,
            )
        cache_key = (entry.file, entry.status, entry.content_type, response_format)
        answered = self.replayed.get(cache_key)
        if answered is None:
            body = self.replay.body(entry)
            outcome, error = classify(entry.status, entry.content_type, body, response_format)
            answered = (outcome, error, body, StoredBody.of(body))
            self.replayed.put(cache_key, answered)
        outcome, error, body, stored = answered
        return Attempt(outcome, entry.status, error, entry.content_type, body, 0.0, 1, stored=stored)

    def limiter(self, host: str, url: str = "") -> HostLimiter:
        """The process's limiter for ``host`` (shared by every batch and stage; ``url`` where it really goes)."""
        if self.transport_name == "replay":  # no network, nothing to be polite to
            return shared_limiter(("replay", host), float("inf"), 64)
        ex = self.config.execute
        limit = ex.hosts.get(host)
        rate, conc = (limit.rate_per_second, limit.max_concurrency) if limit else (5.0, 4)
        if host == "eutils.ncbi.nlm.nih.gov" and secret("ncbi_api_key"):
            rate = max(rate, 10.0)  # NCBI allows 10/s with an API key
        split = urlsplit(url)
        return shared_limiter(
            (host, split.scheme, split.netloc),
            rate * ex.rate_safety,
            conc,
            decrease=ex.rate_decrease,
            recovery=ex.rate_recovery,
        )

    def host_of(self, tool: Tool) -> str:
        return urlsplit(tool.base_url).hostname or ""

    def workers_for(self, tool: Tool) -> int:
        """Calls of one host in progress at once (requests in flight stay under its concurrency cap)."""
        limiter = self.limiter(self.host_of(tool), self.wire_url(tool.base_url))
        return max(self.config.execute.batch_size, limiter.max_concurrency)

    def wire_url(self, url: str) -> str:
        """Where a request really goes: overrides point live traffic elsewhere (a replay keeps the real URLs)."""
        for original, replacement in self.config.execute.base_urls.items() if self.transport_name != "replay" else ():
            if url.startswith(original):
                return replacement.rstrip("/") + url[len(original) :]
        return url

    def wire_params(self, tool: Tool, req: Request) -> list[tuple[str, str | int | float | bool | None]]:
        params: list[tuple[str, str | int | float | bool | None]] = list(req.params)
        if tool.source == "ncbi":
            params += [("tool", self.config.execute.ncbi_tool), ("email", self.config.execute.ncbi_email)]
            key = secret("ncbi_api_key")
            if key:
                params.append(("api_key", key))
        return params

    async def fetch(
        self, tool: Tool, req: Request, response_format: str | None = None, key: str | None = None
    ) -> Attempt:
        """One call's answer; ``response_format`` is the format its arguments ask for (catalog),
        ``key`` the request's fingerprint when the caller has it."""
        if tool.function.blast and tool.function.fixed.get("CMD") == "Put":
            return await self.blast(tool, req)
        return await self.send(tool, req, record_format=response_format, key=key)

    async def pause(self, seconds: float) -> None:
        """Protocol waits (BLAST's RTOE and polling) are real only when talking to a server."""
        if self.transport_name != "replay" and seconds > 0:
            await asyncio.sleep(seconds)

    async def blast(self, tool: Tool, req: Request) -> Attempt:
        """NCBI BLAST: submit (Put), wait RTOE, poll SearchInfo at most once a minute, then Get the report.

        The submission reply is parsed strictly: an error page (no RID line in its QBlastInfo
        block) is stored as ``api_error`` with the server's message, and only the RID the reply
        issued is ever polled.
        """
        ex = self.config.execute
        submitted = await self.send(tool, req)
        if submitted.outcome not in (OK, API_ERROR):
            return submitted
        try:
            rid, rtoe = parse_submission(submitted.body.decode("utf-8", "replace"))
        except BlastRejected as exc:
            return Attempt(
                API_ERROR,
                submitted.status,
                f"BLAST accepted no search: {exc}"[:300],
                submitted.content_type,
                submitted.body,
                submitted.latency_ms,
                submitted.attempts,
            )
        waited = float(rtoe)
        await self.pause(min(waited, ex.blast_max_wait_seconds))
        attempts = submitted.attempts
        while True:
            info = await self.send(
                tool,
                Request("GET", req.url, [("CMD", "Get"), ("FORMAT_OBJECT", "SearchInfo"), ("RID", rid)], req.headers),
                record_format="html",
            )
            attempts += info.attempts
            if info.status is None or info.outcome in (HTTP_ERROR, REPLAY_MISS):  # no status page
                return Attempt(
                    info.outcome,
                    info.status,
                    f"BLAST job {rid}: {info.error or 'no status page'}",
                    info.content_type,
                    info.body,
                    info.latency_ms,
                    attempts,
                )
            status = job_status(info.body.decode("utf-8", "replace")) or "UNKNOWN"
            if status == "READY":
                break
            if status not in ("WAITING", "RUNNING"):
                outcome, reason = status_outcome(rid, status)
                return Attempt(outcome, info.status, reason, info.content_type, info.body, info.latency_ms, attempts)
            if waited >= ex.blast_max_wait_seconds:
                self.counts["job_pending"] += 1  # the server answered: the job is still running
                return Attempt(
                    TIMEOUT,
                    info.status,
                    f"BLAST job {rid} not ready after {waited:.0f}s",
                    info.content_type,
                    info.body,
                    info.latency_ms,
                    attempts,
                )
            await self.pause(ex.blast_poll_seconds)
            waited += max(ex.blast_poll_seconds, 1.0)
        report = await self.send(
            tool,
            Request("GET", req.url, [("CMD", "Get"), ("FORMAT_TYPE", "Text"), ("RID", rid)], req.headers),
            record_format="text",
        )
        report.attempts += attempts
        return report

    async def send(self, tool: Tool, req: Request, record_format: str | None = None, key: str | None = None) -> Attempt:
        response_format = record_format or tool.function.response
        if self.replay is not None:
            return self.replay_answer(req, response_format, key)
        ex = self.config.execute
        url = self.wire_url(req.url)
        limiter = self.limiter(self.host_of(tool), url)
        attempt = Attempt(outcome=TIMEOUT)
        for number in range(1, ex.max_retries + 2):
            attempt.attempts = number
            async with limiter.slots:
                sent_at = await limiter.wait_turn()
                started = time.perf_counter()
                try:
                    response = await self.client.request(
                        req.method,
                        url,
                        params=self.wire_params(tool, req),
                        headers=req.headers,
                        json=req.json_body,
                        data=req.form,
                        timeout=ex.timeout_seconds,
                    )
                    body = mask_secret_bytes(response.content)  # a key echoed back is not kept
                except ReplayMiss as exc:
                    return Attempt(REPLAY_MISS, error=str(exc), attempts=number)
                except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # no connection: nothing was sent
                    self.counts["connection_failed"] += 1
                    attempt = Attempt(
                        HTTP_ERROR, error=f"connection failed: {type(exc).__name__}: {exc}", attempts=number
                    )
                    wait = None
                except httpx.TimeoutException as exc:
                    self.counts["timed_out"] += 1
                    attempt = Attempt(
                        TIMEOUT, error=f"timed out after {ex.timeout_seconds}s ({type(exc).__name__})", attempts=number
                    )
                    wait = None
                except httpx.TransportError as exc:
                    self.counts["connection_failed"] += 1
                    attempt = Attempt(
                        HTTP_ERROR, error=f"connection failed: {type(exc).__name__}: {exc}", attempts=number
                    )
                    wait = None
                else:
                    self.counts["sent"] += 1
                    latency = (time.perf_counter() - started) * 1000
                    ctype = response.headers.get("content-type", "")
                    outcome, error = classify(response.status_code, ctype, body, response_format)
                    release = next((response.headers[h] for h in RELEASE_HEADERS if h in response.headers), None)
                    attempt = Attempt(outcome, response.status_code, error, ctype, body, latency, number, release)
                    wait = retry_after_seconds(response.headers.get("retry-after"))
                    if response.status_code == 429 or (response.status_code == 503 and wait is not None):
                        self.counts["throttled"] += 1
                        limiter.throttle(wait, sent_at)  # slower from now on, and nobody before Retry-After
                    elif response.status_code < 500:
                        limiter.succeeded()
                    if response.status_code not in RETRY_STATUS:
                        if self.snapshot is not None:
                            self.record(tool, req, response, response_format)
                        return attempt
            if number <= ex.max_retries:
                await asyncio.sleep(
                    max(wait or 0.0, backoff_delay(number - 1, ex.backoff_seconds, ex.max_backoff_seconds))
                )
        return attempt

    def record(self, tool: Tool, req: Request, response: httpx.Response, response_format: str) -> None:
        ext = {"json": "json", "xml": "xml", "fasta": "fasta", "html": "html", "tsv": "tsv", "gff3": "gff3"}.get(
            response_format, "txt"
        )
        key = req.fingerprint()
        assert self.snapshot is not None
        self.snapshot.add(
            method=req.method,
            url=req.url,
            params=req.params,
            body=req.json_body or req.form,
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            content=mask_secret_bytes(response.content),
            file=f"{tool.source}/{tool.name}__{key[:10]}.{ext}",
            origin="real",
            provenance=f"recorded live {utcnow().isoformat(timespec='seconds')}Z",
        )


def make_client(config: Config, replay: Snapshot | None = None) -> tuple[httpx.AsyncClient, Snapshot | None]:
    """The HTTP client of one batch; ``replay`` passes an already loaded snapshot (read once per stage)."""
    ex = config.execute
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    if ex.transport == "replay":
        snapshot = replay or Snapshot(config.path(ex.snapshot_dir))
        return httpx.AsyncClient(transport=ReplayTransport(snapshot), limits=limits), None
    client = httpx.AsyncClient(
        http2=True,
        limits=limits,
        follow_redirects=True,
        headers={"User-Agent": "biocurate/0.1 (+https://github.com/biocurate)"},
    )
    return client, (Snapshot(config.path(ex.snapshot_dir)) if ex.transport == "record" else None)


def pending_calls(
    con: duckdb.DuckDBPyConnection, config: Config, only: list[str] | None = None, part: Part = EVERY_CALL
) -> list[tuple[str, str, str]]:
    """Valid calls (of ``part``) without a final answer that is still fresh (the response cache).

    A client error (4xx other than 408/425/429: the resource does not exist, the request is
    malformed) is final too: asking again gives the same answer, so an unchanged rebuild asks
    nothing. Timeouts, 5xx, 429 and connection failures are asked again.
    """
    where, params = _pending(config, only)
    return con.execute(
        f"select c.call_id, c.function, c.arguments from candidate_calls c where {where} "
        f"and {part.where('c.call_id')} order by c.call_id",
        params,
    ).fetchall()


def _pending(config: Config, only: list[str] | None) -> tuple[str, list]:
    """The condition on ``candidate_calls c`` that ``pending_calls`` selects by, and its parameters."""
    cutoff = utcnow() - timedelta(hours=config.execute.cache_max_age_hours)
    chosen = "" if only is None else "and c.call_id in (select unnest(?::varchar[]))"
    where = f"""c.valid {chosen} and not exists (
            select 1 from api_responses r
            where r.call_id = c.call_id and r.fetched_at >= ? and {definite_sql("r")}
        )"""
    return where, [cutoff] if only is None else [only, cutoff]


@dataclass
class ExecuteSummary:
    requested: int = 0
    cached: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    observations: int = 0
    invalid_bodies: dict[str, str] = field(default_factory=dict)
    http_requests: int = 0  # requests the servers answered, retries included (0 in replay)
    connection_failures: int = 0  # attempts that never reached a server (not requests)
    timeouts: int = 0  # attempts without an answer in time (not counted as requests)
    throttled: int = 0  # answers 429 (or 503 with Retry-After): the host's rate was lowered
    jobs_pending: int = 0  # BLAST jobs the server still reports running (timeouts, asked again next run)

    def count_network(self, counts: Counter[str]) -> None:
        self.http_requests += counts["sent"]
        self.connection_failures += counts["connection_failed"]
        self.timeouts += counts["timed_out"]
        self.throttled += counts["throttled"]

    def network_note(self) -> str:
        """The stage note's account of the network: requests, and attempts that were not requests."""
        return (
            f"{self.http_requests} requests answered ({self.throttled} of them 429/503 throttles), "
            f"{self.connection_failures} connection failures and {self.timeouts} timeouts not counted as requests"
        )


def execute_calls(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, only: list[str] | None = None
) -> ExecuteSummary:
    """Fetch every pending call (of ``only``, when given: the chain stage's new steps); every
    ``batch_size`` answers are written as they complete.

    Each host has its own queue and workers in one event loop for the whole stage, so a slow
    host (BLAST polling) never holds the others, and a crash loses at most the answers not yet
    written. Each host's pacing is the process's (``Executor.limiter``), across stages too.
    """
    summary = ExecuteSummary()
    total_valid = (
        con.execute("select count(*) from candidate_calls where valid").fetchall()[0][0]
        if only is None
        else con.execute(
            "select count(*) from candidate_calls where valid and call_id in (select unnest(?::varchar[]))", [only]
        ).fetchall()[0][0]
    )
    where, params = _pending(config, only)
    (pending,) = con.execute(f"select count(*) from candidate_calls c where {where}", params).fetchall()[0]
    summary.cached = total_valid - pending
    replay = (
        Snapshot(config.path(config.execute.snapshot_dir)) if pending and config.execute.transport == "replay" else None
    )
    with progress("execute", pending) as bar:
        released = [time.monotonic()]
        held: list[dict] = []  # a replay's answers not yet written

        def write(rows: list[dict], last: bool = False) -> None:
            # A replay's answers are written REPLAY_WRITE_ROWS at a time (see there): they come
            # fast and cost nothing to fetch again.
            held.extend(rows)
            if config.execute.transport == "replay" and len(held) < REPLAY_WRITE_ROWS and not last:
                return
            rows = held[:]
            held.clear()
            if not rows:
                return
            insert_new(con, "api_responses", rows)
            # The store is free while the next batch is fetched. A replay waits on no server: its
            # batches follow each other fast, and a release costs a reopen, so it releases once
            # the store was held REPLAY_HOLD_SECONDS (others still get in about every second).
            if config.execute.transport != "replay" or time.monotonic() - released[0] >= REPLAY_HOLD_SECONDS:
                release(con)
                released[0] = time.monotonic()
            for row in rows:
                summary.outcomes[row["outcome"]] = summary.outcomes.get(row["outcome"], 0) + 1
            summary.requested += len(rows)
            bar.advance(len(rows))

        counts: Counter[str] = Counter()
        try:
            # the work listed a part of the calls at a time (one part below WORK_PART_CALLS calls)
            for part in call_parts(con) if pending else []:
                todo = pending_calls(con, config, only, part)
                if todo:
                    release(con)
                    asyncio.run(_fetch_by_host(config, catalog, todo, run_id, write, replay, counts))
                del todo
        finally:
            write([], last=True)  # what a replay still holds, also when the fetching failed
        summary.jobs_pending = counts["job_pending"]
        if config.execute.transport != "replay":
            summary.count_network(counts)
    summary.observations = build_observations(config, con, catalog, run_id, summary)
    return summary


def _executor(config: Config, client: httpx.AsyncClient, snapshot: Snapshot | None, replay: Snapshot | None):
    return Executor(
        config,
        config.execute.transport,
        client,
        snapshot=snapshot,
        replay=replay if config.execute.transport == "replay" else None,
    )


async def _fetch_by_host(
    config: Config,
    catalog: Catalog,
    todo: list[tuple[str, str, str]],
    run_id: str,
    write: Callable[[list[dict]], None],
    replay: Snapshot | None = None,
    counts: Counter[str] | None = None,
) -> None:
    """Per-host queues, each drained by its own workers; ``write`` gets every ``batch_size`` rows."""
    client, snapshot = make_client(config, replay)
    executor = _executor(config, client, snapshot, replay)
    queues: dict[str, deque] = {}
    for call in todo:
        queues.setdefault(executor.host_of(catalog[call[1]]), deque()).append(call)
    done: list[dict] = []
    size = config.execute.batch_size

    async def worker(queue: deque) -> None:
        while queue:
            done.append(await _fetch_row(executor, catalog, queue.popleft(), run_id))
            if len(done) >= size:
                rows = done[:]
                done.clear()
                write(rows)

    async with client:
        workers = []
        for queue in queues.values():
            count = min(len(queue), executor.workers_for(catalog[queue[0][1]]))
            workers += [worker(queue) for _ in range(count)]
        try:
            await asyncio.gather(*workers)
        finally:
            if done:
                write(done)
            if counts is not None:
                counts.update(executor.counts)


async def _fetch_row(executor: Executor, catalog: Catalog, call: tuple[str, str, str], run_id: str) -> dict:
    """One call fetched, as its ``api_responses`` row."""
    call_id, function, arguments = call
    tool = catalog[function]
    args = json.loads(arguments)
    req = build_request(tool, args)
    fp = req.fingerprint()
    result = await executor.fetch(tool, req, tool.response_for(args)[0], fp)
    source = executor.replay.entries.get(fp) if executor.replay is not None else None  # the answering entry
    stored = result.stored or StoredBody.of(result.body)
    body_sha = stored.sha256
    return {
        "response_id": content_hash("response", fp, result.outcome, result.status, body_sha),
        "call_id": call_id,
        "fingerprint": fp,
        "method": req.method,
        "url": display_url(req.url, req.params),
        "status_code": result.status,
        "outcome": result.outcome,
        "error": result.error,
        "content_type": result.content_type,
        "body": stored.gzipped,
        "body_sha256": body_sha,
        "latency_ms": result.latency_ms,
        "attempts": result.attempts,
        "transport": executor.config.execute.transport,
        "upstream_release": result.release,
        "snapshot_origin": source.origin if source else None,  # for the response_provenance view
        "snapshot_provenance": source.provenance if source else None,
        "fetched_at": utcnow(),
        "run_id": run_id,
    }


async def _fetch_batch(
    config: Config,
    catalog: Catalog,
    batch,
    run_id: str,
    replay: Snapshot | None = None,
    counts: Counter[str] | None = None,
) -> list[dict]:
    """One batch fetched at once (drift checks); hosts' pacing is still the process's."""
    client, snapshot = make_client(config, replay)
    executor = _executor(config, client, snapshot, replay)
    async with client:
        try:
            return list(await asyncio.gather(*(_fetch_row(executor, catalog, call, run_id) for call in batch)))
        finally:
            if counts is not None:
                counts.update(executor.counts)


def build_observations(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str, summary: ExecuteSummary
) -> int:
    """Observations for ok responses that have none yet (rebuilt from stored bodies, no refetch).

    Responses are read ``OBSERVATION_BATCH`` at a time, so memory stays flat however many are
    waiting. An observation is a function of the body and how it is read (builder, format, media
    type), so a body met again (same sha256) is not read or built again (``ObservationCache``).
    """
    waiting = con.sql(
        """
        select r.response_id from api_responses r
        where r.outcome = 'ok'
          and not exists (select 1 from observations o where o.response_id = r.response_id)
        order by r.response_id
        """
    ).pl()["response_id"]
    built = ObservationCache(config.execute.observation_max_chars)
    written = 0
    for start in range(0, len(waiting), OBSERVATION_BATCH):
        con.register("_waiting", waiting.slice(start, OBSERVATION_BATCH).to_frame())
        try:
            rows = con.execute(
                "select r.response_id, r.call_id, c.function, c.arguments, r.content_type, r.body_sha256 "
                "from api_responses r join _waiting using (response_id) join candidate_calls c using (call_id) "
                "order by r.response_id"
            ).fetchall()
            written += _observe(con, catalog, run_id, summary, rows, built)
        finally:
            con.unregister("_waiting")
    return written


OBSERVATION_BATCH = 5000
OBSERVATION_CACHE_CHARS = 32 * 2**20  # observations (and refusals) kept by body, in characters


class ObservationCache:
    """(builder, format, media type, body sha256) -> what ``build_observation`` made of that body:
    ("ok", builder used, text), or the refusal ("refused" | "invalid", outcome, message). Bounded."""

    def __init__(self, max_chars: int):
        self.max_chars = max_chars
        self.made = BoundedCache(OBSERVATION_CACHE_CHARS, lambda v: len(v[2]) + 100)

    def results(self, con: duckdb.DuckDBPyConnection, keys: dict[str, tuple]) -> dict[str, tuple]:
        """response_id -> result for ``keys`` (response_id -> cache key); what the cache lacks is
        built from the stored bodies, each distinct body read once."""
        out: dict[str, tuple] = {}
        first: dict[tuple, str] = {}  # a key not in the cache -> the first response that has it
        for rid, key in keys.items():
            found = self.made.get(key)
            if found is None:
                first.setdefault(key, rid)
            else:
                out[rid] = found
        if first:
            con.register(
                "_bodies_wanted", pl.DataFrame({"response_id": list(first.values())}, schema={"response_id": pl.String})
            )
            try:
                bodies = dict(
                    con.execute(
                        "select r.response_id, r.body from api_responses r join _bodies_wanted using (response_id)"
                    ).fetchall()
                )
            finally:
                con.unregister("_bodies_wanted")
            built = {key: self.build(key, gzip.decompress(bodies[rid])) for key, rid in first.items()}
            out.update((rid, built[key]) for rid, key in keys.items() if key in built)
        return out

    def build(self, key: tuple, body: bytes) -> tuple:
        name, response_format, content_type, _ = key
        try:
            made: tuple = ("ok", *build_observation(name, response_format, body, self.max_chars, content_type))
        except NotAnAnswer as exc:
            made = ("refused", exc.outcome, str(exc))
        except UnexpectedShape as exc:
            made = ("invalid", INVALID_BODY, str(exc))
        self.made.put(key, made)
        return made


def _observe(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    run_id: str,
    summary: ExecuteSummary,
    rows: list,
    built: ObservationCache,
) -> int:
    keys: dict[str, tuple] = {}
    for response_id, _, function, arguments, content_type, body_sha in rows:
        response_format, name = catalog[function].response_for(json.loads(arguments))
        # a body without its sha256 (never written so) is read on its own
        keys[response_id] = (name, response_format, content_type or "", body_sha or response_id)
    made = built.results(con, keys)
    new, refused = [], []
    for response_id, call_id, function, _, _, _ in rows:
        kind, first, second = made[response_id]
        if kind == "refused":
            # Well formed but no answer (an empty result, a job's status): never an observation.
            refused.append((response_id, first, f"{function}: {second}"[:500]))
            continue
        if kind == "invalid":
            # Not what the builder understands: keep the response, but never as an observation.
            refused.append((response_id, first, f"{function}: unexpected response shape: {second}"[:500]))
            summary.invalid_bodies[response_id] = f"{function}: unexpected response shape: {second}"
            continue
        new.append((content_hash("observation", call_id, second), call_id, response_id, second, first, len(second)))
    if refused:
        con.register(
            "_refused",
            pl.DataFrame(refused, schema=["response_id", "outcome", "error"], orient="row"),
        )
        try:
            con.execute(
                "update api_responses set outcome = f.outcome, error = f.error "
                "from _refused f where api_responses.response_id = f.response_id"
            )
        finally:
            con.unregister("_refused")
    frame = pl.DataFrame(
        new,
        schema={
            "observation_id": pl.String,
            "call_id": pl.String,
            "response_id": pl.String,
            "text": pl.String,
            "builder": pl.String,
            "chars": pl.Int64,
        },
        orient="row",
    ).with_columns(pl.lit(run_id, pl.String).alias("run_id"))
    return insert_new(con, "observations", frame)
