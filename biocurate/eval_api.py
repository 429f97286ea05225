"""API success of predicted calls: what executing a call gives, through our executor.

A call equal (under the argument rule) to a stored call, or with the fingerprint of a stored
response, is answered by the stored response (``api_responses``); any other goes out through the
configured transport (live, record, or replay from the snapshot) and its answer is cached in
``eval_responses``. An undecided outcome (replay miss, timeout, 5xx or 429 after retries) is
``success = None``. Used to score a prediction and, in a multi_step conversation, to answer the
model's call with the observation it sees before its next call (``biocurate.eval_model``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass
from datetime import timedelta

import duckdb

from biocurate.catalog import Catalog, build_request
from biocurate.config import Config
from biocurate.execute import Executor, make_client
from biocurate.hashing import canonical_json
from biocurate.metrics import canonical_arguments
from biocurate.observations import NotAnAnswer, UnexpectedShape, build_observation
from biocurate.outcomes import OK, is_definite
from biocurate.snapshot import display_url
from biocurate.store import insert_new, utcnow


@dataclass
class ApiResult:
    outcome: str
    success: bool | None
    source: str | None = None  # stored | cache | executed
    observation: str | None = None
    error: str | None = None


# A response as stored: (outcome, status code, body, error); stored bodies are gzip-compressed.
Answer = tuple[str, int | None, bytes | None, str | None]


def _judge(config: Config, tool, answer: Answer, source: str, compressed: bool = True) -> ApiResult:
    outcome, status, body, error = answer
    if not is_definite(outcome, status):
        return ApiResult(outcome, None, source, None, error)
    if outcome != OK:
        return ApiResult(outcome, False, source, None, error)
    try:
        raw = (gzip.decompress(body) if compressed else body) if body else b""
        _, text = build_observation(
            tool.function.observation, tool.function.response, raw, config.execute.observation_max_chars
        )
    except NotAnAnswer as exc:  # well formed but no answer: an empty result, a job's status
        return ApiResult(exc.outcome, False if is_definite(exc.outcome, status) else None, source, None, str(exc))
    except UnexpectedShape as exc:
        return ApiResult("invalid_body", False, source, None, f"unexpected response shape: {exc}")
    return ApiResult(OK, True, source, text, None)


def api_results(
    config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, calls: list[dict | None], run_id: str
) -> list[ApiResult]:
    """For each schema-valid call {"name", "arguments"} (None for the others): what executing it gives."""
    out: dict[int, ApiResult] = {}
    wanted: dict[int, tuple] = {}
    for i, call in enumerate(calls):
        if call is None:
            out[i] = ApiResult("invalid_call", False)
            continue
        tool = catalog[call["name"]]
        req = build_request(tool, call["arguments"])
        fp = req.fingerprint()
        key = (call["name"], canonical_json(canonical_arguments(tool, call["arguments"])))
        wanted[i] = (tool, req, fp, key)
    if not wanted:
        return [out[i] for i in range(len(calls))]
    # Stored responses, by fingerprint or by an equal call; the latest decided answer wins.
    functions = sorted({w[0].name for w in wanted.values()})
    fps = sorted({w[2] for w in wanted.values()})
    stored_fp: dict[str, Answer] = {}
    stored_call: dict[tuple, Answer] = {}
    rows = con.execute(
        f"""
        select c.function, c.arguments, r.fingerprint, r.outcome, r.status_code, r.body, r.error
        from api_responses r join candidate_calls c using (call_id)
        where c.function in ({", ".join("?" * len(functions))}) or r.fingerprint in ({", ".join("?" * len(fps))})
        order by r.fetched_at
        """,
        [*functions, *fps],
    ).fetchall()
    for function, arguments, fp, outcome, status, body, error in rows:
        if not is_definite(outcome, status) or function not in catalog:
            continue
        answer = (outcome, status, body, error)  # the body stays compressed until it is used
        stored_fp[fp] = answer
        stored_call[(function, canonical_json(canonical_arguments(catalog[function], json.loads(arguments))))] = answer
    cutoff = utcnow() - timedelta(hours=config.execute.cache_max_age_hours)
    cached: dict[str, Answer] = {
        fp: (outcome, status, body, error)
        for fp, outcome, status, body, error in con.execute(
            f"select fingerprint, outcome, status_code, body, error from eval_responses "
            f"where fetched_at >= ? and fingerprint in ({', '.join('?' * len(fps))})",
            [cutoff, *fps],
        ).fetchall()
    }
    todo: dict[str, tuple] = {}
    for i, (tool, req, fp, key) in wanted.items():
        hit = stored_fp.get(fp) or stored_call.get(key)
        if hit:
            out[i] = _judge(config, tool, hit, "stored")
        elif fp in cached:
            out[i] = _judge(config, tool, cached[fp], "cache")
        else:
            todo.setdefault(fp, (tool, req, calls[i]))
    fetched = asyncio.run(_execute(config, list(todo.items()))) if todo else {}
    new_rows = []
    for fp, (tool, req, call) in todo.items():
        attempt = fetched[fp]
        if is_definite(attempt.outcome, attempt.status):
            new_rows.append(
                {
                    "fingerprint": fp,
                    "function": tool.name,
                    "arguments": canonical_json(call["arguments"]),
                    "url": display_url(req.url, req.params),
                    "transport": config.execute.transport,
                    "status_code": attempt.status,
                    "outcome": attempt.outcome,
                    "error": attempt.error,
                    "content_type": attempt.content_type,
                    "body": gzip.compress(attempt.body, mtime=0) if attempt.body else None,
                    "fetched_at": utcnow(),
                    "run_id": run_id,
                }
            )
    if new_rows:
        con.execute(
            "delete from eval_responses where fingerprint in (select unnest(?))", [[r["fingerprint"] for r in new_rows]]
        )
        insert_new(con, "eval_responses", new_rows)
    for i, (tool, _req, fp, _key) in wanted.items():
        if i not in out:
            a = fetched[fp]
            out[i] = _judge(config, tool, (a.outcome, a.status, a.body, a.error), "executed", compressed=False)
    return [out[i] for i in range(len(calls))]


async def _execute(config: Config, todo: list[tuple[str, tuple]]) -> dict:
    client, snapshot = make_client(config)
    executor = Executor(config, config.execute.transport, client, snapshot=snapshot)
    async with client:
        attempts = await asyncio.gather(*(executor.fetch(tool, req) for _, (tool, req, _) in todo))
    return {fp: attempt for (fp, _), attempt in zip(todo, attempts, strict=True)}
