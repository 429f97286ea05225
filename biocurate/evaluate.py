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
run. Items of every kind (issue 18): ``single`` as above, ``parallel`` calls matched as a set,
``multi_step`` run as a conversation in which the model sees each call's observation from our
executor before its next call (``biocurate.eval_model``), ``no_tool`` scored by the absence of a
call; call precision, recall and F1 give partial credit (``biocurate.metrics.score_calls``).
Aggregates with confidence intervals overall and per kind, database, tool, function and category go to
``eval_scores``; ``biocurate.eval_report`` compares runs and writes Markdown with PNG plots.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from biocurate.catalog import Catalog, load_catalog
from biocurate.config import Config, LLMConfig, mask_secrets, secret
from biocurate.eval_api import ApiResult, api_results
from biocurate.eval_items import EvalError, load_items, resolve_version
from biocurate.eval_model import predict_with_model, prompt_version, valid_call
from biocurate.hashing import canonical_json, content_hash
from biocurate.metrics import Predicted, Z, aggregate, call_f1, score_call, score_calls
from biocurate.store import insert_new, utcnow
from biocurate.version import code_version

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
    max_steps: int = Field(6, ge=1)  # model turns of a multi_step conversation at most

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
# A run


@dataclass
class EvalResult:
    run_id: str
    label: str
    items: int
    overall: list[dict] = field(default_factory=list)
    by_database: list[dict] = field(default_factory=list)
    by_kind: list[dict] = field(default_factory=list)


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
                p.update(prompt_hash=None, n_calls=len(p["preds"]))
        else:
            assert llm is not None  # exactly one of llm and baseline (checked above)
            predictions = predict_with_model(config, settings, llm, api_key, con, catalog, items, run_id)
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
    return EvalResult(
        run_id,
        label or name,
        len(items),
        overall,
        [s for s in scores if s["level"] == "database"],
        [s for s in scores if s["level"] == "kind"],
    )


def _set_api(pred: Predicted, results: list[ApiResult]) -> ApiResult:
    """API success of every call of a set: all succeed, one failed, or undecided."""
    if not results:
        return ApiResult(pred.status if pred.status != "call" else "no_call", None)
    failed = [r for r in results if r.success is False]
    undecided = [r for r in results if r.success is None]
    worst = (failed or undecided or results)[0]
    success = False if failed else (None if undecided else True)
    return ApiResult(worst.outcome, success, worst.source, None, next((r.error for r in results if r.error), None))


def _score(catalog: Catalog, item: dict, p: dict) -> dict:
    """The item's scores by its kind (``metrics``): the first call of a single item, every call of a set."""
    if item["kind"] == "single":
        s = score_call(catalog, item["gold"], p["pred"])
        called = int(p["pred"].status == "call")
        s.update(call_gold=1, call_predicted=called, call_matched=int(s["exact_match"]))
        s["call_f1"] = call_f1(s["call_matched"], called, 1)
        s["pred_calls"] = [s["pred_canonical"]] if called else []
        return s
    s = score_calls(catalog, item["kind"], item["gold_calls"], p["preds"])
    if p["pred"].status == "request_failed":  # no answer is not an answer without a call
        s["exact_match"] = s["name_match"] = False
        s["call_f1"] = 0.0
    s["pred_calls"] = s["pred_canonical"]
    s["pred_canonical"] = s["pred_canonical"][0] if s["pred_canonical"] else None
    return s


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
    scored = [_score(catalog, item, p) for item, p in zip(items, predictions, strict=True)]
    # What executing the predicted calls gives: a single item's first (schema-valid) call; every
    # call of a set, unless its conversation already executed them.
    wanted: list[tuple[int, dict | None]] = []
    for i, (item, p, s) in enumerate(zip(items, predictions, scored, strict=True)):
        if item["kind"] == "single":
            wanted.append(
                (i, {"name": p["pred"].name, "arguments": p["pred"].arguments} if s["schema_valid"] else None)
            )
        elif "results" not in p:
            wanted += [(i, valid_call(catalog, pred)) for pred in p["preds"]]
    executed: dict[int, list[ApiResult]] = {}
    for (i, _), result in zip(wanted, api_results(config, con, catalog, [c for _, c in wanted], run_id), strict=True):
        executed.setdefault(i, []).append(result)
    api: list[ApiResult] = []
    pred_texts: list[str | None] = []
    sim_pairs: dict[int, tuple[str, str]] = {}
    for i, (item, p, s) in enumerate(zip(items, predictions, scored, strict=True)):
        if item["kind"] == "single":
            a = executed[i][0]
            if p["pred"].status != "call":
                a.outcome = p["pred"].status  # no_call | malformed | request_failed
            api.append(a)
            pred_texts.append(a.observation)
            if a.observation is not None:
                sim_pairs[i] = (a.observation, item["observation"])
            continue
        results = p.get("results", executed.get(i, []))
        a = _set_api(p["pred"], results)
        api.append(a)
        observations = [r.observation for r in results]
        pred_texts.append(canonical_json(observations) if results else None)
        by_gold = {g: observations[k] for k, g in s["pairs"].items() if g is not None and k < len(observations)}
        if any(by_gold.values()):  # the predicted observations in the gold calls' order, against the gold ones
            sim_pairs[i] = (
                "\n".join(by_gold.get(g) or "" for g in range(len(item["gold_calls"]))),
                "\n".join(item["gold_observations"]),
            )
    keys = list(sim_pairs)
    sims = dict(
        zip(
            keys,
            embedder.similarity([sim_pairs[i][0] for i in keys], [sim_pairs[i][1] for i in keys]),
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
                "status": pred.status if item["kind"] == "single" or not p["preds"] else "call",
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
                "pred_observation": pred_texts[i],
                "similarity": sims.get(i, 0.0),
                "prompt_hash": p.get("prompt_hash"),
                "retrieved_item_id": p.get("retrieved_item_id"),
                "kind": item["kind"],
                "gold_calls": canonical_json(item["gold_calls"]),
                "pred_calls": "[" + ",".join(c or "null" for c in s["pred_calls"]) + "]",
                "call_gold": s["call_gold"],
                "call_predicted": s["call_predicted"],
                "call_matched": s["call_matched"],
                "call_f1": s["call_f1"],
                "turns": p.get("turns"),
            }
        )
    return rows
