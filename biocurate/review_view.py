"""What a reviewer sees in Label Studio: the guide as the project's instructions, and each task's
question, call(s), observation and judge line, laid out for reading (annotations/label_config.xml
shows these fields)."""

from __future__ import annotations

import json

from biocurate.config import Config
from biocurate.errors import ReviewError


def instructions_html(config: Config) -> str:
    """The reviewer guide (config.review.instructions, Markdown) as the HTML Label Studio shows."""
    from markdown_it import MarkdownIt

    path = config.path(config.review.instructions)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReviewError(f"the reviewer guide {path} (review.instructions) cannot be read: {exc}") from exc
    html = MarkdownIt("commonmark").enable("table").render(text).strip()
    # Label Studio keeps class attributes and <style> but drops style attributes (bleach), and its
    # page styles reset lists, paragraph spacing and table borders: restore them for the guide.
    return f'<div class="bc-guide"><style>{INSTRUCTION_CSS}</style>\n{html}\n</div>'


INSTRUCTION_CSS = (
    ".bc-guide p { margin: 0 0 0.6em; } "
    ".bc-guide ul { list-style: disc; padding-left: 1.5em; margin: 0 0 0.6em; } "
    ".bc-guide ol { list-style: decimal; padding-left: 1.5em; margin: 0 0 0.6em; } "
    ".bc-guide h2 { margin: 0.8em 0 0.3em; } "
    ".bc-guide table { border-collapse: collapse; margin: 0 0 0.8em; } "
    ".bc-guide th, .bc-guide td { border: 1px solid #d9d9d9; padding: 3px 6px; text-align: left; vertical-align: top; }"
)


def _pretty(text: str | None) -> str:
    """JSON text indented (one key a line, so that it wraps); other text as it is."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        return text


def _calls_text(row: dict) -> str:
    """The call, pretty-printed; an item with several calls (a ``calls`` list) shows each, in order."""
    calls = row.get("calls")
    if isinstance(calls, str):
        calls = json.loads(calls)
    if not calls:
        calls = [{"name": row["function"], "arguments": row["arguments"]}]
    shown = []
    for n, call in enumerate(calls, 1):
        arguments = call.get("arguments", {})
        arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        text = json.dumps({"name": call.get("name") or call.get("function"), "arguments": arguments}, indent=2)
        shown.append(text if len(calls) == 1 else f"Call {n} of {len(calls)}:\n{text}")
    return "\n\n".join(shown)


JUDGE_REASON_CHARS = 160


def _judge_line(row: dict) -> str:
    """The judge's opinion in one short line (the reason cut at JUDGE_REASON_CHARS)."""
    if row["verdict"] is None:
        return "Automatic judge: no judgment yet."
    reason = " ".join((row["reason"] or "").split())
    if len(reason) > JUDGE_REASON_CHARS:
        reason = reason[: JUDGE_REASON_CHARS - 1].rstrip() + "…"
    score = f", score {row['score']:.2f}" if row["score"] is not None else ""
    return f"Automatic judge ({row['model']}): {row['verdict']}{score}" + (f". Reason: {reason}" if reason else ".")


def no_tool_answer(spec: dict) -> str:
    """A no_tool item's answer (no call; docs/item_kinds.md): the set's own ``answer`` if sampling
    wrote one, else a reply built from its ``reason`` (why none of the offered tools returns what
    is asked). What review shows and publish exports."""
    if spec.get("answer"):
        return str(spec["answer"])
    reason = " ".join(str(spec.get("reason") or "").split()).rstrip(".")
    if not reason:
        return "None of the available tools can answer this question."
    # the declarations' reasons read "asks for ...; the offered tools return ..."
    subject = "The question " if reason.startswith("asks") else ""
    return f"None of the available tools can answer this question. {subject}{reason}."


KIND_HEADS = {
    "parallel": "Parallel: {n} independent calls, made together in one turn (order free).",
    "multi_step": "Multi-step: {n} calls in order; a later call uses a value from an earlier call's observation.",
}


def _fed_note(step: dict) -> str:
    """Which value of a multi_step call came from which earlier observation."""
    notes = []
    for parameter, source in (step.get("fed_by") or {}).items():
        source = source if isinstance(source, dict) else {"value": source}
        origin = f"call {step['depends_on'] + 1}" if step.get("depends_on") is not None else "an earlier call"
        path = f" at {source['from']}" if source.get("from") else ""
        notes.append(f"  {parameter} = {json.dumps(source.get('value'))}: from the observation of {origin}{path}")
    return ("\n" + "\n".join(notes)) if notes else ""


def _set_texts(row: dict) -> tuple[str, str]:
    """(call, observation) fields of a call-set task: every call in order, each observation under
    the number of its call; a no_tool item says that no call is the answer, and why."""
    steps = row.get("steps") or []
    if row["kind"] == "no_tool" or not steps:
        spec = row.get("spec") or {}
        reason = " ".join(str(spec.get("reason") or "not given").split())
        return (
            f"No call: the correct answer is not to call any tool. The answer: {no_tool_answer(spec)}\n\n"
            f"Why no offered tool answers it: {reason}",
            "(none: no call is made)",
        )
    n = len(steps)
    calls, observations = [KIND_HEADS.get(row["kind"], "{n} calls").format(n=n)], []
    for i, step in enumerate(steps, 1):
        arguments = json.loads(step["arguments"]) if isinstance(step["arguments"], str) else step["arguments"]
        text = json.dumps({"name": step["function"], "arguments": arguments}, indent=2)
        calls.append(f"Call {i} of {n}:\n{text}{_fed_note(step)}")
        observations.append(f"Observation of call {i} ({step['function']}):\n{_pretty(step['observation'])}")
    return "\n\n".join(calls), "\n\n".join(observations)


def task_data(row: dict) -> dict:
    """The task's data fields from an ITEMS_SQL row (biocurate.review); a call set's row also has
    ``steps`` and ``spec`` (``biocurate.review._with_steps``)."""
    if row.get("kind", "single") != "single":
        call, observation = _set_texts(row)
        first = (row.get("steps") or [{}])[0]
        return {
            "ext_id": row["query_id"],
            "query": row["text"],
            "call": call,
            "observation": observation,
            "judge": _judge_line(row),
            "judge_verdict": row["verdict"],
            "tool": first.get("function") or row["kind"],
            "database": row["database"],
            "tool_group": row["tool_group"],
            "category": row["category"],
            "priority": row["priority"],
            "kind": row["kind"],
        }
    return {
        "ext_id": row["query_id"],
        "query": row["text"],
        "call": _calls_text(row),
        "observation": _pretty(row["observation"]),
        "judge": _judge_line(row),
        "judge_verdict": row["verdict"],
        "tool": row["function"],
        "database": row["database"],
        "tool_group": row["tool_group"],
        "category": row["category"],
        "priority": row["priority"],
    }
