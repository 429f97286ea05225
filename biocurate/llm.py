"""Any OpenAI-compatible chat completions endpoint (OpenAI, OpenRouter, vLLM, llama.cpp, Ollama).

The provider layer only (what to ask lives with its stage: the generator in ``synthesis``, the
judge in ``judge``, tool-calling evaluation in ``evaluate``): async httpx with a concurrency cap,
an even request rate (``ratelimit``), retries with backoff that honour Retry-After, timeouts,
and per-attempt accounting (tokens, latency, cost from the configured prices, HTTP tries) in
``llm_calls``, whose answers are also the cache: an identical prompt is answered from the store and
costs nothing. Every attempt is a row, failed ones too; only an answer (status ok) is ever served
from the cache, so a prompt that failed is asked again and its answer kept. An error text keeps no
secret (``config.mask_secrets``, applied before it is cut to length).
Rendering a prompt and parsing a reply are separate functions, each tested on its own; a reply
that is not the JSON asked for gets one bounded repair request, then is recorded in
``generation_failures`` with its raw text.

A request may offer ``tools`` (OpenAI function calling, used by ``biocurate eval``): it then asks
for no JSON text format, and the stored ``response_text`` is the whole reply message as JSON
(content and tool_calls), parsed back into ``Reply.tool_calls``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx

from biocurate.config import LLMConfig, mask_secrets
from biocurate.hashing import canonical_json, content_hash
from biocurate.ratelimit import HostLimiter, backoff_delay, retry_after_seconds
from biocurate.store import insert_new, release

BATCH = 50  # prompts sent together (one asyncio.run); their rows are written after each batch


class ReplyError(ValueError):
    """The model's reply is not the JSON that was asked for."""


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str

    @property
    def version(self) -> str:
        return f"{self.name}-{content_hash(self.template, length=8)}"

    def render(self, **values) -> str:
        return self.template.format(**values)


def load_prompt(prompt_dir: Path, name: str) -> Prompt:
    return Prompt(name, (Path(prompt_dir) / f"{name}.md").read_text())


def parse_json_reply(text: str | None) -> dict:
    """The JSON object in a reply: bare, in a code fence, or with prose around it."""
    if text is None:
        raise ReplyError("empty reply")
    candidate = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", candidate, re.S)
    if fence:
        candidate = fence.group(1).strip()
    try:
        value = json.loads(candidate)
    except ValueError:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start < 0 or end <= start:
            raise ReplyError(f"no JSON object in the reply: {text[:120]!r}") from None
        try:
            value = json.loads(candidate[start : end + 1])
        except ValueError as exc:
            raise ReplyError(f"reply is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ReplyError(f"expected a JSON object, got {type(value).__name__}")
    return value


@dataclass
class Reply:
    prompt_hash: str
    text: str | None
    status: str
    error: str | None = None
    cached: bool = False
    tool_calls: list[dict] | None = None  # set when the request offered tools


def parse_tool_message(text: str | None) -> tuple[str | None, list[dict]]:
    """(content, tool_calls) of a stored tool-calling reply message."""
    if not text:
        return None, []
    message = json.loads(text)
    return message.get("content"), list(message.get("tool_calls") or [])


class ChatClient:
    def __init__(self, cfg: LLMConfig, api_key: str | None, con: duckdb.DuckDBPyConnection, run_id: str):
        self.cfg, self.api_key, self.con, self.run_id = cfg, api_key, con, run_id
        # one limiter across batches (each its own asyncio.run): the request pacing carries over
        self.limiter = HostLimiter(cfg.requests_per_second, cfg.max_concurrency)
        self.requests_made = 0
        self.pending_rows: list[dict] = []
        self.asked: Counter[str] = Counter()  # attempts per prompt in this run (numbers each attempt)

    def request_body(self, prompt: str | list[dict], tools: list[dict] | None = None) -> dict:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": messages,
            "temperature": self.cfg.temperature,
            "seed": self.cfg.seed,
        }
        if tools:  # the answer is a tool call, not a JSON text
            body["tools"] = tools
        else:
            body["response_format"] = {"type": "json_object"}
        return body

    def prompt_hash(self, body: dict) -> str:
        return content_hash("llm", self.cfg.base_url.rstrip("/"), body)

    def cached(self, hashes: list[str]) -> dict[str, str]:
        if not hashes:
            return {}
        rows = self.con.execute(
            "select prompt_hash, response_text from llm_calls where status = 'ok' and prompt_hash in "
            f"({', '.join('?' * len(hashes))})",
            hashes,
        ).fetchall()
        return dict(rows)

    async def _post(
        self, client: httpx.AsyncClient, body: dict
    ) -> tuple[str | None, dict, str, str | None, float, int]:
        """(text, usage, status, error, latency ms, tries) after retries."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.cfg.base_url.rstrip("/") + "/chat/completions"
        status, error = "http_error", None
        for attempt in range(self.cfg.max_retries + 1):
            wait = None
            async with self.limiter.slots:
                sent_at = await self.limiter.wait_turn()
                started = time.perf_counter()
                try:
                    response = await client.post(url, json=body, headers=headers, timeout=self.cfg.timeout_seconds)
                    self.requests_made += 1
                except httpx.TimeoutException:
                    status, error = "timeout", f"no answer within {self.cfg.timeout_seconds}s"
                except httpx.TransportError as exc:
                    status, error = "http_error", f"connection failed: {mask_secrets(str(exc))[:200]}"
                else:
                    latency = (time.perf_counter() - started) * 1000
                    if response.status_code == 200:
                        self.limiter.succeeded()
                        data = response.json()
                        message = data["choices"][0]["message"]
                        text = canonical_json(message) if "tools" in body else message.get("content")
                        return text, data.get("usage") or {}, "ok", None, latency, attempt + 1
                    # masked before it is cut: a cut could leave part of a key that no longer matches
                    status, error = "http_error", f"HTTP {response.status_code}: {mask_secrets(response.text)[:200]}"
                    if response.status_code not in (408, 409, 429, 500, 502, 503, 504):
                        return None, {}, status, error, latency, attempt + 1
                    wait = retry_after_seconds(response.headers.get("retry-after"))
                    if response.status_code == 429 or (response.status_code == 503 and wait is not None):
                        self.limiter.throttle(wait, sent_at)  # slower from now on (AIMD), as the executor
            if attempt < self.cfg.max_retries:
                await asyncio.sleep(wait if wait is not None else backoff_delay(attempt, 0.5, 30.0))
        return None, {}, status, error, 0.0, self.cfg.max_retries + 1

    async def ask(
        self,
        client: httpx.AsyncClient,
        prompt: str | list[dict],
        purpose: str,
        version: str,
        subject_id: str,
        cache: dict[str, str],
        tools: list[dict] | None = None,
    ) -> Reply:
        body = self.request_body(prompt, tools)
        key = self.prompt_hash(body)
        if key not in cache:  # a prompt the batch did not look up (a repair): its stored answer, if any
            cache.update(self.cached([key]))
        if key in cache:
            return Reply(
                key, cache[key], "ok", cached=True, tool_calls=parse_tool_message(cache[key])[1] if tools else None
            )
        text, usage, status, error, latency, tries = await self._post(client, body)
        self.asked[key] += 1
        p_tok, c_tok = usage.get("prompt_tokens"), usage.get("completion_tokens")
        cost = (
            (p_tok or 0) * self.cfg.price_per_million_prompt + (c_tok or 0) * self.cfg.price_per_million_completion
        ) / 1e6
        self.pending_rows.append(
            {
                # an answer never shares a key with a failure, even when a run asks the same prompt again
                "attempt_id": content_hash("llm-attempt", key, self.run_id, self.asked[key], status, text, error),
                "tries": tries,
                "prompt_hash": key,
                "purpose": purpose,
                "model": self.cfg.model,
                "base_url": self.cfg.base_url,
                "prompt_version": version,
                "request": canonical_json(body),
                "response_text": text,
                "status": status,
                "error": error,
                "prompt_tokens": p_tok,
                "completion_tokens": c_tok,
                "cost_usd": cost,
                "latency_ms": latency,
                "subject_id": subject_id,
                "run_id": self.run_id,
            }
        )
        return Reply(
            key, text, status, error, tool_calls=parse_tool_message(text)[1] if tools and status == "ok" else None
        )

    def flush(self) -> None:
        insert_new(self.con, "llm_calls", self.pending_rows)
        self.pending_rows = []


async def ask_and_parse(
    chat: ChatClient,
    client,
    prompt: str,
    purpose: str,
    version: str,
    subject: str,
    cache: dict,
    parse,
    shape: str,
    repair: Prompt,
):
    """(parsed value, None) or (None, failure row). One repair request at most."""
    reply = await chat.ask(client, prompt, purpose, version, subject, cache)
    if reply.status != "ok":
        return None, (reply, f"{reply.status}: {reply.error}")
    try:
        return parse(parse_json_reply(reply.text)), None
    except ReplyError as first:
        # The repair is the same conversation, continued: the model sees its answer and the shape.
        conversation = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": reply.text or ""},
            {"role": "user", "content": repair.render(shape=shape)},
        ]
        fixed = await chat.ask(client, conversation, "repair", repair.version, subject, cache)
        if fixed.status == "ok":
            try:
                return parse(parse_json_reply(fixed.text)), None
            except ReplyError:
                pass
        return None, (reply, f"unparseable reply after one repair: {first}")


def failure_row(stage: str, subject: str, reply: Reply, reason: str, run_id: str) -> dict:
    return {
        "failure_id": content_hash("failure", reply.prompt_hash, stage),
        "stage": stage,
        "subject_id": subject,
        "prompt_hash": reply.prompt_hash,
        "reason": reason,
        "raw_text": reply.text,
        "run_id": run_id,
    }


@dataclass
class Ask:
    """One prompt of a batch: what it is about (``subject``: a call, set or question), its text
    and prompt version, how its reply is parsed, and what the caller keeps with it (``item``)."""

    subject: str
    prompt: str
    version: str
    parse: Callable[[dict], Any]
    item: Any = None


@dataclass
class Asked:
    """What ``ask_and_record`` did: rows new in its table, and each failure as (ask, reply, reason)."""

    new: int = 0
    failures: list[tuple[Ask, Reply, str]] = field(default_factory=list)


def ask_and_record(
    chat: ChatClient,
    batches: Iterable[list[Ask]],
    purpose: str,
    shape: str,
    repair: Prompt,
    table: str,
    record: Callable[[Ask, Any], list[dict]],
    stage: str | None = None,
) -> Asked:
    """Ask the model every prompt of ``batches`` (a batch at a time, each at most ``BATCH``): the
    stored answers first, one repair at most; the store is released while the model answers. After
    each batch its ``llm_calls``, its failures (``generation_failures`` of ``stage``, default
    ``purpose``) and the rows ``record(ask, parsed)`` makes of each usable answer (into ``table``)
    are written. Serves the generator and the judge, of single calls and of call sets alike."""
    con, done = chat.con, Asked()
    for asks in batches:
        cache = chat.cached([chat.prompt_hash(chat.request_body(a.prompt)) for a in asks])
        release(con)  # the store is free while the model answers
        results = asyncio.run(_ask_all(chat, asks, purpose, shape, repair, cache))
        rows, failures = [], []
        for ask, (parsed, failure) in zip(asks, results, strict=True):
            if failure:
                failures.append(failure_row(stage or purpose, ask.subject, failure[0], failure[1], chat.run_id))
                done.failures.append((ask, *failure))
                continue
            rows += record(ask, parsed)
        chat.flush()
        insert_new(con, "generation_failures", failures)
        done.new += insert_new(con, table, rows)
    return done


async def _ask_all(chat: ChatClient, asks: list[Ask], purpose: str, shape: str, repair: Prompt, cache: dict) -> list:
    async with httpx.AsyncClient() as client:
        return await asyncio.gather(
            *(
                ask_and_parse(chat, client, a.prompt, purpose, a.version, a.subject, cache, a.parse, shape, repair)
                for a in asks
            )
        )
