"""Asking the evaluated model, per item kind (issue 18).

The model is reached through the provider layer of synthesis (``biocurate.llm.ChatClient``:
concurrency, rate, retries, accounting and the cache in ``llm_calls``, so a second run replays
every reply). It sees what the export shows: the version's system prompt, the user question and
the offered tools.

- ``single``, ``parallel``, ``no_tool``: one turn; every tool call of the reply is kept, in order
  (a single item is scored on its first call, as before; a parallel item on all of them; a
  ``no_tool`` item on there being none).
- ``multi_step``: a real conversation. Each call the model makes is executed by our executor
  (``biocurate.eval_api.api_results``: the stored response, the eval cache, or the configured
  transport) and its observation (the same text the dataset's observations are built as; for a
  failed call ``{"error": ...}``) is sent back as a ``tool`` message; the model then makes its next
  call, until it answers without a call or ``EvalSettings.max_steps`` turns have passed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import duckdb
import httpx

from biocurate.catalog import Catalog
from biocurate.config import Config, LLMConfig
from biocurate.eval_api import ApiResult, api_results
from biocurate.hashing import canonical_json, content_hash
from biocurate.metrics import Predicted, parse_tool_call

BATCH = 50


@dataclass
class Conversation:
    """One item's exchange with the model: the messages so far and every call and its result."""

    item: dict
    messages: list[dict]
    tools: list[dict]
    preds: list[Predicted] = field(default_factory=list)
    results: list[ApiResult] = field(default_factory=list)
    raw: list[str | None] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    done: bool = False
    first: Predicted | None = None


def prompt_version(items: list[dict], tools_mode: str) -> str:
    systems = sorted({m["content"] for i in items for m in i["messages"] if m["role"] == "system"})
    return "eval-" + content_hash(systems, tools_mode, length=8)


def _first(reply, calls: list[Predicted]) -> Predicted:
    """What the reply is scored as when one call is looked at (single items; the first call)."""
    if reply.status != "ok":
        return Predicted("request_failed", error=f"{reply.status}: {reply.error}")
    if not calls:
        return Predicted("no_call", error="the reply has no tool call")
    return calls[0]


def valid_call(catalog: Catalog, pred: Predicted) -> dict | None:
    """The call {"name", "arguments"} when it can be executed (known function, valid arguments)."""
    if pred.status != "call" or pred.name not in catalog.tools or pred.arguments is None:
        return None
    if catalog.tools[pred.name].validate(pred.arguments) is not None:
        return None
    return {"name": pred.name, "arguments": pred.arguments}


def tool_message(call_id: str, result: ApiResult) -> dict:
    """The observation of an executed call as the model sees it."""
    if result.observation is not None:
        content = result.observation
    else:
        content = canonical_json({"error": result.outcome + (f": {result.error}" if result.error else "")})
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def predict_with_model(
    config: Config,
    settings,
    llm: LLMConfig,
    api_key: str | None,
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    items: list[dict],
    run_id: str,
) -> list[dict]:
    """One prediction per item: {"pred", "preds", "raw_output", "prompt_hash", "n_calls"} and, for
    multi_step, {"results", "turns"} (what each call's execution gave, the model turns)."""
    from biocurate.llm import ChatClient

    chat = ChatClient(llm, api_key, con, run_id)
    version = prompt_version(items, settings.tools_mode)
    every_tool = catalog.tools_json() if settings.tools_mode == "catalog" else None
    states = [Conversation(item, list(item["messages"]), every_tool or item["tools"]) for item in items]
    for turn in range(settings.max_steps):
        active = [s for s in states if not s.done]
        if not active:
            break
        for start in range(0, len(active), BATCH):
            _turn(config, chat, con, catalog, active[start : start + BATCH], version, run_id)
            chat.flush()  # a stopped run keeps what it paid for
        if turn == 0:
            for s in states:  # a one-turn kind is done after its first reply
                s.done = s.done or s.item["kind"] != "multi_step"
    out = []
    for s in states:
        conversation = s.item["kind"] == "multi_step"
        out.append(
            {
                "pred": s.first,
                "preds": s.preds,
                "raw_output": canonical_json(s.raw) if conversation else s.raw[0],
                "prompt_hash": s.hashes[0],
                "n_calls": len(s.preds),
                **({"results": s.results, "turns": len(s.raw)} if conversation else {}),
            }
        )
    return out


def _turn(
    config: Config,
    chat,
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    batch: list[Conversation],
    version: str,
    run_id: str,
) -> None:
    """One model turn for each conversation of the batch; a multi_step conversation's calls are
    executed and their observations appended as tool messages."""
    cache = chat.cached([chat.prompt_hash(chat.request_body(s.messages, s.tools)) for s in batch])

    async def ask_all() -> list:
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(
                *(chat.ask(client, s.messages, "eval", version, s.item["item_id"], cache, tools=s.tools) for s in batch)
            )

    executed: list[tuple[Conversation, str, Predicted]] = []
    for s, reply in zip(batch, asyncio.run(ask_all()), strict=True):
        s.raw.append(reply.text)
        s.hashes.append(reply.prompt_hash)
        tool_calls = [dict(c) for c in (reply.tool_calls or [])] if reply.status == "ok" else []
        calls = [parse_tool_call(c) for c in tool_calls]
        if s.first is None:
            s.first = _first(reply, calls)
        s.preds += calls
        if not calls or s.item["kind"] != "multi_step":
            s.done = True
            continue
        for n, c in enumerate(tool_calls):  # tool messages answer calls by id: every call needs one
            c["id"] = c.get("id") or f"call_{len(s.raw)}_{n}"
        content = json.loads(reply.text).get("content") if reply.text else None
        s.messages.append({"role": "assistant", "content": content, "tool_calls": tool_calls})
        executed += [(s, c["id"], pred) for c, pred in zip(tool_calls, calls, strict=True)]
    if not executed:
        return
    results = api_results(config, con, catalog, [valid_call(catalog, p) for _, _, p in executed], run_id)
    for (s, call_id, _pred), result in zip(executed, results, strict=True):
        s.results.append(result)
        s.messages.append(tool_message(call_id, result))
