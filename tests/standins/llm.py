"""A loopback OpenAI-compatible chat completions server with scripted behaviours.

It answers POST /v1/chat/completions like the real API (choices, message, usage). By default it
writes plausible questions that keep the identifiers the prompt asks for, and accepting
judgments; `mode` switches to fenced JSON, a malformed first answer (then a good repair), an
always-malformed answer, or a 500 before answering.

A request that offers `tools` gets a tool-calling answer scripted per question in `tool_script`
(user question -> (behaviour, gold call)): "right" (the gold call, arguments in another order),
"wrong_name" (the first other offered tool, same arguments), "wrong_args" (the gold function, its
first argument's value changed), "malformed" (the gold function, arguments that are not JSON) or
"no_call" (prose only). A question not in the script gets no call. For item kinds beyond one call
(issue 18): "calls" answers with every call of ``{"calls": [...]}`` in one reply (several
tool_calls), and "chain" plays ``{"steps": [...]}`` across turns: its n-th reply (n = assistant
messages so far) is step n, whose ``from_observation`` arguments ({parameter: key}) are read from
the last tool message's content (the observation it was sent; the first value under that key),
and once the steps are done it answers in prose.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class LLMStandIn:
    # ok | fenced | malformed_then_ok | always_malformed | error_once | rate_limited_once | slow_once
    # | unavailable (503 to every request) | echo_auth (401 whose error message repeats the request's
    # Authorization header after ``echo_pad`` characters, as some gateways do)
    mode: str = "ok"
    echo_pad: int = 0
    requests: list[dict] = field(default_factory=list)
    _errors_left: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    tool_script: dict[str, tuple[str, dict]] = field(default_factory=dict)

    def start(self) -> LLMStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                status, payload = stand_in.answer(self.path, body, self.headers.get("authorization"))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def content_for(self, messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if "previous answer was not valid JSON" in prompt:
            if self.mode == "always_malformed":
                return "Sorry, here it is: queries = [broad, specific]"
            return self.good_answer(messages[0]["content"])
        if self.mode in ("malformed_then_ok", "always_malformed"):
            return "Here are the questions: {queries: [broad question, specific question"
        answer = self.good_answer(prompt)
        return f"```json\n{answer}\n```" if self.mode == "fenced" else answer

    def good_answer(self, prompt: str) -> str:
        if "You judge training data" in prompt:
            return json.dumps({"verdict": "accept", "score": 0.9, "reason": "the data answers the question"})
        if "SET QUESTIONS (" in prompt:  # generate_<kind>_v1: questions about a call set (issue 18)
            return self.set_answer(prompt)
        if "PHASE 1" in prompt:  # generate_v2: the argument mapping first, then the questions
            keep = re.findall(
                r"^  - (\S+) \((\w+)\)$", prompt.split("Keep these verbatim:")[1].split("- WORDS")[0], re.M
            )
            said = prompt.split("Say these in words:")[1].split("- OMIT")[0]
            words = re.findall(r"^  - (\w+) = .*?: say '([^']+)'", said, re.M)
            for name, mention in re.findall(r"^  - (\w+) = .*?never write it as it is; mention (.*)$", said, re.M):
                words += [(name, w) for w in re.findall(r"(?:^|, )([^,(]+?) \(", mention)]
            analysis = {**{n: "KEEP: verbatim" for _, n in keep}, **{n: f"WORDS: {w}" for n, w in words}}
            subject = " ".join([w for _, w in words] + [v for v, _ in keep]) or "this entry"
            return json.dumps(
                {
                    "param_analysis": analysis,
                    "queries": [
                        {
                            "style": "broad",
                            "text": f"What is currently known about {subject} in the literature and databases?",
                        },
                        {"style": "specific", "text": f"Which exact records and values are reported for {subject}?"},
                    ],
                }
            )
        found = re.search(r"exactly as written \(same case and punctuation\): (.*)", prompt)
        idents = found.group(1).strip() if found else "(none)"
        subject = "this entry" if idents == "(none)" else idents
        return json.dumps(
            {
                "queries": [
                    {
                        "style": "broad",
                        "text": f"What is currently known about {subject} in the literature and databases?",
                    },
                    {"style": "specific", "text": f"Which exact records and values are reported for {subject}?"},
                ]
            }
        )

    def set_answer(self, prompt: str) -> str:
        """Questions about a call set that follow the prompt: every listed call's values kept
        verbatim or said as told (parallel, multi_step), the first of the words only the last call
        returns asked for (multi_step), the topic asked about (no_tool)."""
        kind = prompt.split("SET QUESTIONS (")[1].split(")")[0]
        if kind == "no_tool":
            topic = prompt.split("Topic: ")[1].splitlines()[0].strip()
            texts = [
                f"Which clinical trials have tested treatments for {topic}, and what did they conclude?",
                f"How do patients with {topic} respond to current therapies in clinical practice?",
            ]
        else:
            values = []
            for line in re.findall(r"^  - call \d+ \(\w+\): (.*)$", prompt, re.M):
                keep = line.split("keep verbatim: ")[1].split("; say in words:")[0]
                values += [v.split(" (")[0] for v in keep.split(", ") if v != "(none)"]
                values += re.findall(r"say '([^']+)'", line.split("; say in words:")[1])
            subject = " and ".join(values) or "this entry"
            if kind == "multi_step":
                asks = prompt.split("such as: ")[1].splitlines()[0].split(", ")[0]
                texts = [
                    f"Starting from {subject}, what {asks} is reported further on?",
                    f"For {subject}, which {asks} do the linked records give?",
                ]
            else:
                texts = [
                    f"How do {subject} compare in the databases?",
                    f"What do the records report for {subject} side by side?",
                ]
        return json.dumps({"queries": [{"style": "broad", "text": texts[0]}, {"style": "specific", "text": texts[1]}]})

    def answer(self, path: str, body: dict, auth: str | None):
        with self._lock:
            self.requests.append({"path": path, "body": body, "auth": auth})
            if self.mode == "error_once" and self._errors_left:
                self._errors_left -= 1
                return 500, {"error": {"message": "overloaded"}}
            if self.mode == "unavailable":
                return 503, {"error": {"message": "service unavailable"}}
            if self.mode == "echo_auth":
                return 401, {"error": {"message": f"{'x' * self.echo_pad} Authorization: {auth}", "type": "auth"}}
            if self.mode == "rate_limited_once" and self._errors_left:
                self._errors_left -= 1
                return 429, {"error": {"message": "Rate limit reached", "type": "requests"}}
            slow = self.mode == "slow_once" and self._errors_left
            if slow:
                self._errors_left -= 1
        if slow:
            import time

            time.sleep(2.0)  # longer than the client's timeout in the test
        if not path.endswith("/chat/completions"):
            return 404, {"error": {"message": "not found"}}
        prompt = " ".join(m.get("content") or "" for m in body["messages"])
        if body.get("tools"):
            question = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
            message = self.tool_message(question, [t["function"]["name"] for t in body["tools"]], body["messages"])
            content = message.get("content") or json.dumps(message.get("tool_calls"))
        else:
            content = self.content_for(body["messages"])
            message = {"role": "assistant", "content": content}
        usage = {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": len(content.split()),
            "total_tokens": len(prompt.split()) + len(content.split()),
        }
        return 200, {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {"index": 0, "finish_reason": "tool_calls" if message.get("tool_calls") else "stop", "message": message}
            ],
            "usage": usage,
        }

    def tool_message(self, question: str, offered: list[str], messages: list[dict] | None = None) -> dict:
        behaviour, gold = self.tool_script.get(question, ("no_call", {}))
        if behaviour == "no_call":
            return {"role": "assistant", "content": "I am not sure which tool answers this."}
        if behaviour == "calls":
            return self.calls_message(gold["calls"])
        if behaviour == "chain":
            turn = sum(1 for m in messages or [] if m["role"] == "assistant")
            if turn >= len(gold["steps"]):
                return {"role": "assistant", "content": "Here is what the records say."}
            step = gold["steps"][turn]
            tool = [m for m in messages or [] if m["role"] == "tool"]
            seen = json.loads(tool[-1]["content"]) if tool else None
            filled = {p: first_value(seen, key) for p, key in step.get("from_observation", {}).items()}
            return self.calls_message([{"name": step["name"], "arguments": {**step["arguments"], **filled}}])
        name, args = gold["name"], dict(gold["arguments"])
        if behaviour == "right":
            arguments = json.dumps(dict(reversed(list(args.items()))))  # order must not matter
        elif behaviour == "wrong_name":
            name = next(n for n in offered if n != gold["name"])
            arguments = json.dumps(args)
        elif behaviour == "wrong_args":
            first = sorted(args)[0]
            args[first] = f"{args[first]}X" if isinstance(args[first], str) else "X"
            arguments = json.dumps(args)
        elif behaviour == "malformed":
            arguments = json.dumps(args)[:-1] + ", 'extra': True"
        else:
            raise ValueError(f"unknown tool behaviour {behaviour!r}")
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_standin", "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        }

    @staticmethod
    def calls_message(calls: list[dict]) -> dict:
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_standin_{n}",
                    "type": "function",
                    "function": {
                        "name": c["name"],
                        "arguments": json.dumps(dict(reversed(list(c["arguments"].items())))),
                    },
                }
                for n, c in enumerate(calls)
            ],
        }


def first_value(data, key: str):
    """The first value under ``key`` in a JSON document (depth first), or None."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        data = list(data.values())
    if isinstance(data, list):
        for value in data:
            found = first_value(value, key)
            if found is not None:
                return found
    return None
