"""Evaluation: score a tool-calling model, or the retrieval baseline, on a published version.

A model is reached through any OpenAI-compatible chat completions endpoint with ``tools``, via the
same provider layer as synthesis (``biocurate.llm.ChatClient``: concurrency, rate, retries,
accounting and the cache in ``llm_calls``). It sees what the export shows (the items are read by
``biocurate.eval_items``): the version's system prompt and user question, and its tool list (the
gold tool plus distractors, as in ``openai/<split>.jsonl``), or every tool of the catalog
(``tools_mode = "catalog"``).

Per item (``eval_predictions``): exact match, function-name match, argument precision/recall and
schema validity (the rules are in ``biocurate.metrics``); API success, i.e. the predicted call
executes to a non-error observation through our executor: a call equal (under the argument rule)
to a stored call, or with the fingerprint of a stored response, is answered by the stored
response (``api_responses``); any other goes out through the configured transport (live, record,
or replay from the snapshot) and its answer is cached in ``eval_responses``. An undecided outcome
(replay miss, timeout, 5xx or 429 after retries) is null, and counts as a failure in aggregates;
and response similarity, the cosine of the sentence embeddings of the predicted and the gold
observations (0 without a predicted observation), with the embedding model's name stored in the
run. Aggregates with confidence intervals per database, tool, function and category go to
``eval_scores``; ``biocurate.eval_report`` compares runs and writes Markdown with PNG plots.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import duckdb
import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from biocurate.catalog import Catalog, build_request, load_catalog
from biocurate.config import Config, LLMConfig, mask_secrets, secret
from biocurate.eval_items import EvalError, load_items, resolve_version
from biocurate.execute import Executor, make_client
from biocurate.hashing import canonical_json, content_hash
from biocurate.metrics import Predicted, Z, aggregate, canonical_arguments, parse_tool_call, score_call
from biocurate.observations import NotAnAnswer, UnexpectedShape, build_observation
from biocurate.outcomes import OK, is_definite
from biocurate.snapshot import display_url
from biocurate.store import insert_new, utcnow
from biocurate.version import code_version

BATCH = 50
# the confidence levels of the intervals (the ones metrics has a z value for)
CONFIDENCE_LEVELS = tuple(Z)


def eval_api_key() -> str | None:
    """The key for the evaluated model's endpoint: $BIOCURATE_EVAL_API_KEY, else the generator's
    $BIOCURATE_LLM_API_KEY; none for local servers. Sent only in the Authorization header."""
    return secret("eval_api_key") or secret("llm_api_key")


class EvalSettings(BaseModel):
    """Everything that shapes a run's scores besides the model and the data (stored with the run;
    the model's request settings are an ``LLMConfig``, see ``model_config``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split: Literal["test", "validation"] = "test"
    tools_mode: Literal["export", "catalog"] = "export"
    embedder: Literal["minilm", "lexical"] = "minilm"
    confidence: float = 0.95  # one of CONFIDENCE_LEVELS
    bootstrap_samples: int = Field(1000, ge=100)
    bootstrap_seed: int = 0
    limit: int | None = Field(None, ge=1)  # only the first N items by item id (a quick look)

    @field_validator("confidence")
    @classmethod
    def _known_confidence(cls, value: float) -> float:
        if value not in CONFIDENCE_LEVELS:
            raise ValueError(f"confidence must be one of {', '.join(map(str, CONFIDENCE_LEVELS))}")
        return value


def model_config(model: str, base_url: str | None = None, **settings) -> LLMConfig:
    """The evaluated model's request settings: greedy (temperature 0) and patient by default."""
    return LLMConfig(
        **{
            "provider": "openai",
            "model": model,
            "base_url": base_url or LLMConfig().base_url,
            "temperature": 0.0,
            "timeout_seconds": 120.0,
            **settings,
        }
    )


# ---------------------------------------------------------------------------------------------
# Predictions


def prompt_version(items: list[dict], tools_mode: str) -> str:
    systems = sorted({m["content"] for i in items for m in i["messages"] if m["role"] == "system"})
    return "eval-" + content_hash(systems, tools_mode, length=8)


def predict_with_model(
    settings: EvalSettings,
    llm: LLMConfig,
    api_key: str | None,
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    items: list[dict],
    run_id: str,
) -> list[dict]:
    """Ask the model about every item (cached in llm_calls); one {"pred", "raw_output", ...} each."""
    from biocurate.llm import ChatClient

    chat = ChatClient(llm, api_key, con, run_id)
    version = prompt_version(items, settings.tools_mode)
    every_tool = catalog.tools_json() if settings.tools_mode == "catalog" else None
    out: list[dict] = []
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        asks = [(i, i["messages"], every_tool or i["tools"]) for i in batch]
        cache = chat.cached([chat.prompt_hash(chat.request_body(m, t)) for _, m, t in asks])

        async def run(asks: list[tuple], cache: dict) -> list:
            async with httpx.AsyncClient() as client:
                return await asyncio.gather(
                    *(chat.ask(client, m, "eval", version, i["item_id"], cache, tools=t) for i, m, t in asks)
                )

        for reply in asyncio.run(run(asks, cache)):
            if reply.status != "ok":
                pred = Predicted("request_failed", error=f"{reply.status}: {reply.error}")
            elif not reply.tool_calls:
                pred = Predicted("no_call", error="the reply has no tool call")
            else:
                pred = parse_tool_call(reply.tool_calls[0])
            out.append(
                {
                    "pred": pred,
                    "raw_output": reply.text,
                    "prompt_hash": reply.prompt_hash,
                    "n_calls": len(reply.tool_calls or []),
                }
            )
        chat.flush()  # a stopped run keeps what it paid for
    return out


# ---------------------------------------------------------------------------------------------
# API success


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


# ---------------------------------------------------------------------------------------------
# A run


@dataclass
class EvalResult:
    run_id: str
    label: str
    items: int
    overall: list[dict] = field(default_factory=list)
    by_database: list[dict] = field(default_factory=list)


def failure_text(exc: BaseException, limit: int = 1000) -> str:
    """A failed run's error as stored in ``eval_runs.error``: every configured secret masked by
    value (``mask_secrets``) before the text is cut, so a cut never leaves part of a key."""
    return mask_secrets(f"{type(exc).__name__}: {exc}")[:limit]


def _new_run_id() -> str:
    return "eval-" + utcnow().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def run_eval(
    config: Config,
    con: duckdb.DuckDBPyConnection,
    version_ref: str,
    settings: EvalSettings,
    llm: LLMConfig | None = None,
    api_key: str | None = None,
    baseline: str | None = None,
    label: str | None = None,
) -> EvalResult:
    """Score a model (``llm``, see ``model_config``) or a baseline (``baseline="retrieval"``) on a
    version's split; every prediction and score is stored; returns the overall scores."""
    from biocurate.embeddings import get_embedder

    if (llm is None) == (baseline is None):
        raise EvalError("name either a model (--model) or a baseline (--baseline retrieval)")
    if baseline not in (None, "retrieval"):
        raise EvalError(f"unknown baseline {baseline!r}: the one baseline is 'retrieval'")
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    version = resolve_version(con, version_ref)
    items = load_items(version, settings.split, with_prompts=baseline is None)
    if settings.limit:
        items = items[: settings.limit]
    embedder = get_embedder(settings.embedder)  # fail before any request when it cannot load
    run_id = _new_run_id()
    kind = "baseline" if baseline else "model"
    name = llm.model if llm else f"{baseline} baseline"
    stored = {
        **settings.model_dump(mode="json"),
        "request": llm.model_dump(mode="json", exclude={"provider"}) if llm else None,
    }
    identity = {
        "version": version.version_id,
        "content_hash": version.content_hash,
        "kind": kind,
        "settings": stored,
        "embedder": embedder.name,
        "transport": config.execute.transport,
    }
    con.execute(
        "insert into eval_runs (run_id, label, kind, model, base_url, version_id, split, tools_mode, prompt_version,"
        " embedder, transport, settings, settings_hash, code_version, items, status, started_at)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
        [  # texts a user typed (a key pasted into a URL, a label) are masked like every stored text
            run_id,
            mask_secrets(label or name),
            kind,
            mask_secrets(name),
            mask_secrets(llm.base_url) if llm else None,
            version.version_id,
            settings.split,
            "n/a" if baseline else settings.tools_mode,
            None if baseline else prompt_version(items, settings.tools_mode),
            embedder.name,
            config.execute.transport,
            mask_secrets(json.dumps(stored)),
            content_hash(identity),
            code_version(),
            len(items),
            utcnow(),
        ],
    )
    try:
        if baseline:
            from biocurate.baseline import predict

            train = load_items(version, "train", with_prompts=False)
            predictions = predict(embedder, catalog, train, items)
            for p in predictions:
                p.update(prompt_hash=None, n_calls=1)
        else:
            assert llm is not None  # exactly one of llm and baseline (checked above)
            predictions = predict_with_model(settings, llm, api_key, con, catalog, items, run_id)
        rows = score_items(config, con, catalog, embedder, items, predictions, run_id)
        insert_new(con, "eval_predictions", rows)
        scores = aggregate(rows, settings.confidence, settings.bootstrap_samples, settings.bootstrap_seed)
        insert_new(con, "eval_scores", [{"run_id": run_id, **s} for s in scores])
        overall = [s for s in scores if s["level"] == "overall"]
        con.execute(
            "update eval_runs set status = 'completed', finished_at = ?, summary = ? where run_id = ?",
            [
                utcnow(),
                json.dumps({s["metric"]: {k: s[k] for k in ("value", "ci_low", "ci_high", "n")} for s in overall}),
                run_id,
            ],
        )
    except BaseException as exc:
        con.execute(
            "update eval_runs set status = 'failed', finished_at = ?, error = ? where run_id = ?",
            [utcnow(), failure_text(exc), run_id],
        )
        raise
    return EvalResult(run_id, label or name, len(items), overall, [s for s in scores if s["level"] == "database"])


def score_items(
    config: Config,
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    embedder,
    items: list[dict],
    predictions: list[dict],
    run_id: str,
) -> list[dict]:
    """One eval_predictions row per item: every metric, the raw output, the predicted observation."""
    scored = [score_call(catalog, item["gold"], p["pred"]) for item, p in zip(items, predictions, strict=True)]
    calls = [
        {"name": p["pred"].name, "arguments": p["pred"].arguments} if s["schema_valid"] else None
        for p, s in zip(predictions, scored, strict=True)
    ]
    api = api_results(config, con, catalog, calls, run_id)
    for p, result in zip(predictions, api, strict=True):
        if p["pred"].status != "call":
            result.outcome = p["pred"].status  # no_call | malformed | request_failed
    with_obs = [i for i, r in enumerate(api) if r.observation is not None]
    sims = dict(
        zip(
            with_obs,
            embedder.similarity([api[i].observation for i in with_obs], [items[i]["observation"] for i in with_obs]),
            strict=True,
        )
    )
    rows = []
    for i, (item, p, s, a) in enumerate(zip(items, predictions, scored, api, strict=True)):
        pred: Predicted = p["pred"]
        rows.append(
            {
                "run_id": run_id,
                "item_id": item["item_id"],
                "call_id": item["call_id"],
                "database": item["database"],
                "tool": item["tool"],
                "function": item["function"],
                "category": item.get("category"),
                "user_query": item["user_query"],
                "gold_call": canonical_json(item["gold"]),
                "status": pred.status,
                "pred_name": pred.name,
                "pred_arguments": pred.arguments_text,
                "pred_canonical": s["pred_canonical"],
                "n_calls": p.get("n_calls", 0),
                "raw_output": p.get("raw_output"),
                "error": pred.error or a.error,
                "exact_match": s["exact_match"],
                "name_match": s["name_match"],
                "arg_correct": s["arg_correct"],
                "arg_predicted": s["arg_predicted"],
                "arg_gold": s["arg_gold"],
                "arg_precision": s["arg_precision"],
                "arg_recall": s["arg_recall"],
                "schema_valid": s["schema_valid"],
                "schema_error": s["schema_error"],
                "api_outcome": a.outcome,
                "api_success": a.success,
                "api_source": a.source,
                "pred_observation": a.observation,
                "similarity": sims.get(i, 0.0),
                "prompt_hash": p.get("prompt_hash"),
                "retrieved_item_id": p.get("retrieved_item_id"),
            }
        )
    return rows
