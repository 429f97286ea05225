"""Any OpenAI-compatible chat completions endpoint (OpenAI, OpenRouter, vLLM, llama.cpp, Ollama).

The provider layer: async httpx with a concurrency cap, an even request rate, retries with
backoff that honour Retry-After, timeouts, and per-call accounting (tokens, latency, cost from
the configured prices) in ``llm_calls``, which is also the cache: an identical prompt is
answered from the store and costs nothing. Rendering a prompt and parsing a reply are separate
functions, each tested on its own; a reply that is not the JSON asked for gets one bounded
repair request, then is recorded in ``generation_failures`` with its raw text.

A request may offer ``tools`` (OpenAI function calling, used by ``biocurate eval``): it then asks
for no JSON text format, and the stored ``response_text`` is the whole reply message as JSON
(content and tool_calls), parsed back into ``Reply.tool_calls``.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx

from biocurate.catalog import Catalog
from biocurate.config import Config, LLMConfig, secret
from biocurate.hashing import canonical_json, content_hash
from biocurate.execute import HostLimiter, retry_after_seconds
from biocurate.store import insert_new, utcnow
from biocurate.synthesis import STYLES, identifiers

BATCH = 50


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


def parse_json_reply(text: str) -> dict:
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


def parse_queries(reply: dict, k: int) -> list[tuple[str, str]]:
    items = reply.get("queries")
    if not isinstance(items, list) or not items:
        raise ReplyError("reply has no 'queries' list")
    out = []
    for item in items[:k]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ReplyError(f"a query has no text: {item!r}")
        style = item.get("style") if item.get("style") in STYLES else STYLES[len(out) % 2]
        out.append((style, " ".join(item["text"].split())))
    return out


def parse_judgment(reply: dict) -> tuple[str, float, str]:
    verdict = reply.get("verdict")
    if verdict not in ("accept", "reject", "unsure"):
        raise ReplyError(f"verdict must be accept, reject or unsure, got {verdict!r}")
    try:
        score = float(reply.get("score"))
    except (TypeError, ValueError):
        raise ReplyError(f"score is not a number: {reply.get('score')!r}") from None
    if not 0 <= score <= 1:
        raise ReplyError(f"score {score} is outside 0..1")
    return verdict, score, str(reply.get("reason") or "")[:500]


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
        self._limiter: HostLimiter | None = None
        self._limiter_loop = None
        self.requests_made = 0
        self.pending_rows: list[dict] = []

    @property
    def limiter(self) -> HostLimiter:
        """The rate limiter of the running event loop: each batch runs in its own ``asyncio.run``
        and asyncio primitives belong to one loop; the request pacing carries over."""
        loop = asyncio.get_running_loop()
        if self._limiter_loop is not loop:
            fresh = HostLimiter(self.cfg.requests_per_second, self.cfg.max_concurrency)
            if self._limiter is not None:
                fresh.next_slot = self._limiter.next_slot
            self._limiter, self._limiter_loop = fresh, loop
        return self._limiter

    def request_body(self, prompt: str | list[dict], tools: list[dict] | None = None) -> dict:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        body = {"model": self.cfg.model, "messages": messages,
                "temperature": self.cfg.temperature, "seed": self.cfg.seed}
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
            f"({', '.join('?' * len(hashes))})", hashes).fetchall()
        return dict(rows)

    async def _post(self, client: httpx.AsyncClient, body: dict) -> tuple[str | None, dict, str, str | None, float]:
        """(text, usage, status, error, latency ms) after retries."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.cfg.base_url.rstrip("/") + "/chat/completions"
        status, error = "http_error", None
        for attempt in range(self.cfg.max_retries + 1):
            wait = None
            async with self.limiter.slots:
                await self.limiter.wait_turn()
                started = time.perf_counter()
                try:
                    response = await client.post(url, json=body, headers=headers, timeout=self.cfg.timeout_seconds)
                    self.requests_made += 1
                except httpx.TimeoutException:
                    status, error = "timeout", f"no answer within {self.cfg.timeout_seconds}s"
                except httpx.TransportError as exc:
                    status, error = "http_error", f"connection failed: {exc}"
                else:
                    latency = (time.perf_counter() - started) * 1000
                    if response.status_code == 200:
                        data = response.json()
                        message = data["choices"][0]["message"]
                        text = canonical_json(message) if "tools" in body else message.get("content")
                        return text, data.get("usage") or {}, "ok", None, latency
                    status, error = "http_error", f"HTTP {response.status_code}: {response.text[:200]}"
                    if response.status_code not in (408, 409, 429, 500, 502, 503, 504):
                        return None, {}, status, error, latency
                    wait = retry_after_seconds(response.headers.get("retry-after"))
            if attempt < self.cfg.max_retries:
                await asyncio.sleep(wait if wait is not None else min(30.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2))
        return None, {}, status, error, 0.0

    async def ask(self, client: httpx.AsyncClient, prompt: str | list[dict], purpose: str, version: str,
                  subject_id: str, cache: dict[str, str], tools: list[dict] | None = None) -> Reply:
        body = self.request_body(prompt, tools)
        key = self.prompt_hash(body)
        if key in cache:
            return Reply(key, cache[key], "ok", cached=True,
                         tool_calls=parse_tool_message(cache[key])[1] if tools else None)
        text, usage, status, error, latency = await self._post(client, body)
        p_tok, c_tok = usage.get("prompt_tokens"), usage.get("completion_tokens")
        cost = ((p_tok or 0) * self.cfg.price_per_million_prompt + (c_tok or 0) * self.cfg.price_per_million_completion) / 1e6
        self.pending_rows.append({
            "prompt_hash": key, "purpose": purpose, "model": self.cfg.model, "base_url": self.cfg.base_url,
            "prompt_version": version, "request": canonical_json(body), "response_text": text,
            "status": status, "error": error, "prompt_tokens": p_tok, "completion_tokens": c_tok,
            "cost_usd": cost, "latency_ms": latency, "subject_id": subject_id, "run_id": self.run_id})
        return Reply(key, text, status, error,
                     tool_calls=parse_tool_message(text)[1] if tools and status == "ok" else None)

    def flush(self) -> None:
        insert_new(self.con, "llm_calls", self.pending_rows)
        self.pending_rows = []


async def ask_and_parse(chat: ChatClient, client, prompt: str, purpose: str, version: str, subject: str,
                        cache: dict, parse, shape: str, repair: "Prompt"):
    """(parsed value, None) or (None, failure row). One repair request at most."""
    reply = await chat.ask(client, prompt, purpose, version, subject, cache)
    if reply.status != "ok":
        return None, (reply, f"{reply.status}: {reply.error}")
    try:
        return parse(parse_json_reply(reply.text)), None
    except ReplyError as first:
        # The repair is the same conversation, continued: the model sees its answer and the shape.
        conversation = [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply.text or ""},
                        {"role": "user", "content": repair.render(shape=shape)}]
        fixed = await chat.ask(client, conversation, "repair", repair.version, subject, cache)
        if fixed.status == "ok":
            try:
                return parse(parse_json_reply(fixed.text)), None
            except ReplyError:
                pass
        return None, (reply, f"unparseable reply after one repair: {first}")


def _failure(stage: str, subject: str, reply: Reply, reason: str, run_id: str) -> dict:
    return {"failure_id": content_hash("failure", reply.prompt_hash, stage), "stage": stage, "subject_id": subject,
            "prompt_hash": reply.prompt_hash, "reason": reason, "raw_text": reply.text, "run_id": run_id}


def few_shot_examples(con: duckdb.DuckDBPyConnection, tool_group: str, limit: int = 3) -> str:
    """Already accepted items of the same tool group, when there are some."""
    rows = con.execute(
        "select user_query, function_calling from dataset_items where tool = ? "
        "and version_id = (select max(version_id) from dataset_versions) order by item_id limit ?",
        [tool_group, limit]).fetchall()
    if not rows:
        return ""
    shots = "\n".join(f"- Question: {q}\n  Call: {c}" for q, c in rows)
    return f"Examples of accepted questions for similar calls:\n{shots}\n\n"


def synthesize_with_llm(config: Config, con, catalog: Catalog, run_id: str, todo, summary):
    cfg = config.synthesis.generator
    prompt_dir = config.path(config.synthesis.prompt_dir)
    prompt, repair = load_prompt(prompt_dir, "generate_v1"), load_prompt(prompt_dir, "repair_v1")
    chat = ChatClient(cfg, secret("llm_api_key"), con, run_id)
    k = config.synthesis.queries_per_call
    shape = '{"queries": [{"style": "broad", "text": "..."}, {"style": "specific", "text": "..."}]}'

    async def batch(rows):
        rendered = []
        for call_id, function, arguments, _fields, observation_id, observation in rows:
            tool = catalog[function]
            args = json.loads(arguments)
            text = prompt.render(
                k=k, styles=", ".join(STYLES[i % 2] for i in range(k)),
                identifiers=", ".join(identifiers(tool, args)) or "(none)",
                examples=few_shot_examples(con, tool.group),
                description=tool.function.description,
                call=canonical_json({"name": function, "arguments": args}), observation=observation)
            rendered.append((call_id, observation_id, text))
        cache = chat.cached([chat.prompt_hash(chat.request_body(t)) for _, _, t in rendered])
        async with httpx.AsyncClient() as client:
            return rendered, await asyncio.gather(*(
                ask_and_parse(chat, client, text, "generate", prompt.version, call_id, cache,
                              lambda r: parse_queries(r, k), shape, repair)
                for call_id, _, text in rendered))

    for start in range(0, len(todo), BATCH):
        rendered, results = asyncio.run(batch(todo[start : start + BATCH]))
        queries, failures = [], []
        for (call_id, observation_id, _), (parsed, failure) in zip(rendered, results):
            summary.calls += 1
            if failure:
                failures.append(_failure("synthesize", call_id, failure[0], failure[1], run_id))
                summary.failures[failure[1].split(":")[0]] = summary.failures.get(failure[1].split(":")[0], 0) + 1
                continue
            for style, text in parsed:
                queries.append({
                    "query_id": content_hash("query", call_id, text, "openai", cfg.model, prompt.version),
                    "call_id": call_id, "observation_id": observation_id, "text": text, "style": style,
                    "generator": "openai", "model": cfg.model, "prompt_version": prompt.version,
                    "temperature": cfg.temperature, "seed": cfg.seed, "run_id": run_id})
        chat.flush()
        insert_new(con, "generation_failures", failures)
        summary.queries_new += insert_new(con, "queries", queries)
    summary.requests = chat.requests_made
    return summary


def judge_with_llm(config: Config, con, catalog: Catalog, run_id: str):
    from biocurate.judge import JudgeSummary, unjudged

    cfg = config.synthesis.judge
    prompt_dir = config.path(config.synthesis.prompt_dir)
    prompt, repair = load_prompt(prompt_dir, "judge_v1"), load_prompt(prompt_dir, "repair_v1")
    chat = ChatClient(cfg, secret("judge_api_key") or secret("llm_api_key"), con, run_id)
    todo = unjudged(con, cfg.model)
    summary = JudgeSummary()
    shape = '{"verdict": "accept", "score": 0.9, "reason": "..."}'

    async def batch(rows):
        rendered = [(qid, prompt.render(query=text, description=catalog[fn].function.description,
                                        call=canonical_json({"name": fn, "arguments": json.loads(args)}),
                                        observation=obs)) for qid, text, fn, args, obs in rows]
        cache = chat.cached([chat.prompt_hash(chat.request_body(t)) for _, t in rendered])
        async with httpx.AsyncClient() as client:
            return rendered, await asyncio.gather(*(
                ask_and_parse(chat, client, text, "judge", prompt.version, qid, cache, parse_judgment, shape, repair)
                for qid, text in rendered))

    for start in range(0, len(todo), BATCH):
        rendered, results = asyncio.run(batch(todo[start : start + BATCH]))
        rows, failures = [], []
        for (query_id, _), (parsed, failure) in zip(rendered, results):
            if failure:
                failures.append(_failure("judge", query_id, failure[0], failure[1], run_id))
                continue
            verdict, score, reason = parsed
            rows.append({"judgment_id": content_hash("judgment", query_id, "openai", cfg.model, prompt.version),
                         "query_id": query_id, "judge": "openai", "model": cfg.model,
                         "prompt_version": prompt.version, "verdict": verdict, "score": score,
                         "reason": reason, "run_id": run_id})
            summary.verdicts[verdict] = summary.verdicts.get(verdict, 0) + 1
        chat.flush()
        insert_new(con, "generation_failures", failures)
        summary.judged += len(rows)
        summary.new += insert_new(con, "judgments", rows)
    summary.requests = chat.requests_made
    return summary
