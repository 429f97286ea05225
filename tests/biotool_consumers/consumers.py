"""BioTool's record and ShareGPT consumers, reimplemented from reading its scripts (no code copied).

BioTool (github.com/gxx27/BioTool, the commit in ``wrappers.json``) reads a dataset folder, its
``data/`` (``BioTool.json``, ``BioTool_train.json``, ``BioTool_test.json``, ``tools.json``,
``function_mapping.json``), in these places, followed here step by step without network:

- ``script/unified_evaluate.py`` (and ``concurrent_evaluate.py``, which reuses it):
  ``load_function_mapping`` (function -> ``(info["database"], info["tool"])``), ``load_db_mapping``
  (the database lower-cased; metrics have the buckets ncbi, uniprot, ensembl and overall),
  ``extract_tool_call`` (``<tool_call> JSON </tool_call>``, ``Action:``/``Action Input:``, or raw
  JSON with ``name`` and ``parameters``/``arguments``), ``normalize_function_call`` (name and
  arguments, ``json.dumps(sort_keys=True)``) for exact match, ``call_bioapi_function`` (a name not
  in the mapping fails; else import ``<database>.<tool>.api``, ``getattr`` the name and call it
  with ``**arguments``; any exception fails), ``evaluate_single`` (exact match first, else both
  calls), ``compute_metrics``.
- ``script/openai_eval_func.py``: ``load_dataset`` (a JSON list, or JSON lines for ``.jsonl``),
  ``to_openai_messages`` (its own system prompt, then each ``human``/``user`` turn as a user
  message), the per-example ``tools`` (a JSON string or a list; a non-empty list goes to the chat
  API as ``tools``, anything else silently falls back to all of ``tools.json``),
  ``build_gold_label`` (each ``function_call`` turn inside ``<tool_call>`` tags).
- ``script/data_construction/get_observation.py``: a record's own ``database``/``tool`` name the
  module its function is imported from.
- ``script/data_construction/convert.py``: a train/test example is the system turn, then the
  conversation; ``tools`` a JSON string of OpenAI-form schemas from ``tools.json``.

The wrappers are modelled by ``wrappers.json`` (modules, required parameters) and
``tests/data/biotool/signatures.json`` (parameter names): calling a function binds its arguments
as Python would, which is all a dispatch can check offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

HERE = Path(__file__).resolve().parent
SIGNATURES = HERE.parent / "data" / "biotool" / "signatures.json"
DATABASES = ("ncbi", "uniprot", "ensembl")  # compute_metrics' buckets
RECORD_FILES = ("BioTool.json",)
SHAREGPT_FILES = ("BioTool_train.json", "BioTool_test.json")

# One entry of the chat API's `tools` (OpenAI API reference, "Create chat completion": a tool is
# {type: "function", function: {name, description, parameters, strict}}, the name 1-64 of
# [a-zA-Z0-9_-]); what openai_eval_func.py hands on from a record's `tools`.
OPENAI_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "parameters"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                "description": {"type": "string"},
                "strict": {"type": "boolean"},
                "parameters": {
                    "type": "object",
                    "required": ["type", "properties"],
                    "properties": {"type": {"const": "object"}, "properties": {"type": "object"}},
                },
            },
        },
    },
}


# ---------------------------------------------------------------------------------------------
# The wrappers, offline


@dataclass
class Wrappers:
    modules: dict[str, dict[str, dict]]  # "<database>.<tool>.api" -> function -> {required, ...}
    params: dict[str, list[str]]  # function -> its parameter names

    @classmethod
    def load(cls) -> Wrappers:
        modules = json.loads((HERE / "wrappers.json").read_text())["modules"]
        return cls(modules, json.loads(SIGNATURES.read_text())["functions"])

    def functions(self) -> set[str]:
        return {name for functions in self.modules.values() for name in functions}

    def call(self, database: Any, tool: Any, name: Any, arguments: Any) -> None:
        """What importing ``<database>.<tool>.api`` and calling ``name(**arguments)`` raises
        before any request is sent (nothing when the call would go out)."""
        module = f"{database}.{tool}.api"
        if module not in self.modules:
            raise ModuleNotFoundError(f"No module named {module!r}")
        if name not in self.modules[module]:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if not isinstance(arguments, dict):
            raise TypeError(f"{name}() argument after ** must be a mapping, not {type(arguments).__name__}")
        spec = self.modules[module][name]
        unexpected = [a for a in arguments if a not in self.params[name]]
        if unexpected and not spec["takes_any_keyword"]:
            raise TypeError(f"{name}() got an unexpected keyword argument {unexpected[0]!r}")
        missing = [p for p in spec["required"] if p not in arguments]
        if missing:
            raise TypeError(f"{name}() missing required argument(s): {', '.join(missing)}")


# ---------------------------------------------------------------------------------------------
# unified_evaluate.py


def load_function_mapping(path: Path) -> dict[str, tuple[str, str]]:
    raw = json.loads(path.read_text())
    return {fn: (info["database"], info["tool"]) for fn, info in raw.items()}


def load_db_mapping(path: Path) -> dict[str, str]:
    return {fn: info["database"].lower() for fn, info in json.loads(path.read_text()).items()}


def extract_tool_call(text: str) -> dict | None:
    if not text:
        return None
    if "<tool_call>" in text and "</tool_call>" in text:
        inner = text[text.find("<tool_call>") + len("<tool_call>") : text.find("</tool_call>")]
        try:
            return json.loads(inner.strip())
        except ValueError:
            pass
    if "Action:" in text and "Action Input:" in text:
        start = text.find("Action:") + len("Action:")
        end = text.find("\n", start)
        name = text[start : end if end != -1 else len(text)].strip()
        start = text.find("Action Input:") + len("Action Input:")
        end = text.find("\n", start)
        try:
            return {
                "name": name,
                "arguments": json.loads(text[start : end if end != -1 else len(text)].strip().strip("`")),
            }
        except ValueError:
            pass
    try:
        data = json.loads(text.strip())
    except ValueError:
        return None
    if isinstance(data, dict) and "name" in data:
        if "parameters" in data:
            return {"name": data["name"], "arguments": data["parameters"]}
        if "arguments" in data:
            return data
    return None


def normalize_function_call(call: dict) -> str:
    arguments = call.get("arguments", {})
    if isinstance(arguments, dict):
        arguments = dict(sorted(arguments.items()))
    return json.dumps({"name": call.get("name", ""), "arguments": arguments}, sort_keys=True)


def call_bioapi_function(
    name: str, arguments: Any, mapping: dict[str, tuple[str, str]], wrappers: Wrappers
) -> tuple[bool, str]:
    if name not in mapping:
        return False, f"Function {name} not found in mapping"
    database, tool = mapping[name]
    try:
        wrappers.call(database, tool, name, arguments)
    except Exception as exc:  # noqa: BLE001 - BioTool reports every exception as a failed call
        return False, str(exc)
    return True, "(dispatched; not sent: no network)"


def evaluate_single(prediction: dict, mapping: dict[str, tuple[str, str]], wrappers: Wrappers) -> dict:
    predict_call = extract_tool_call(prediction.get("predict", ""))
    label_call = extract_tool_call(prediction.get("label", ""))
    result = {"exact_match": False, "api_success": False, "predict_call": predict_call, "label_call": label_call}
    if predict_call and label_call and normalize_function_call(predict_call) == normalize_function_call(label_call):
        result["exact_match"] = True
        return result
    ok = {}
    for side, call in (("predict", predict_call), ("label", label_call)):
        ok[side] = (
            bool(call) and call_bioapi_function(call.get("name", ""), call.get("arguments", {}), mapping, wrappers)[0]
        )
    result["api_success"] = ok["predict"] and ok["label"]
    return result


def compute_metrics(results: list[dict], db_mapping: dict[str, str]) -> dict[str, dict]:
    buckets: dict[str, list[dict]] = {db: [] for db in DATABASES}
    for r in results:
        name = (r.get("label_call") or {}).get("name") or (r.get("predict_call") or {}).get("name")
        db = db_mapping.get(name, "").lower() if name else ""
        if db in buckets:
            buckets[db].append(r)

    def calc(items: list[dict]) -> dict:
        n = len(items)
        em = sum(1 for r in items if r["exact_match"])
        return {"count": n, "em": 100 * em / n if n else 0.0}

    return {**{db: calc(items) for db, items in buckets.items()}, "overall": calc(results)}


# ---------------------------------------------------------------------------------------------
# openai_eval_func.py


def load_dataset(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise ValueError(f"Expected list in {path}")
    return data


def to_openai_messages(example: dict) -> list[dict]:
    messages = [{"role": "system", "content": "(openai_eval_func's system prompt)"}]
    for turn in example.get("conversations", []):
        sender = (turn.get("from") or turn.get("role") or "").lower()
        if sender in ("human", "user"):
            messages.append({"role": "user", "content": turn.get("value") or turn.get("content") or ""})
    return messages


def example_tools(example: dict) -> list | None:
    """The per-example tools, or None when BioTool would fall back to all of tools.json."""
    tools = example.get("tools")
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except ValueError:
            return None
    return tools if isinstance(tools, list) and tools else None


def build_gold_label(example: dict) -> str:
    parts = []
    for turn in example.get("conversations", []):
        if (turn.get("from") or turn.get("role") or "").lower() == "function_call":
            value = (turn.get("value") or "").strip()
            if value:
                parts.append(value if "<tool_call>" in value else f"<tool_call>\n{value}\n</tool_call>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# A published folder through all of the above


@dataclass
class Report:
    records: dict[str, int] = field(default_factory=dict)  # file -> records loaded
    dispatched: dict[str, int] = field(default_factory=dict)  # file -> gold calls that dispatch
    metrics: dict[str, dict] = field(default_factory=dict)  # ShareGPT file -> compute_metrics
    failures: list[tuple[str, int | None, str]] = field(default_factory=list)  # (file, record, why)

    def fail(self, file: str, index: int | None, why: str) -> None:
        self.failures.append((file, index, why))


def _dispatch(report: Report, file: str, i: int, call: Any, mapping: dict, wrappers: Wrappers) -> bool:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) or "arguments" not in call:
        report.fail(file, i, f"function_calling is not {{name, arguments}}: {call!r:.80}")
        return False
    ok, why = call_bioapi_function(call["name"], call["arguments"], mapping, wrappers)
    if not ok:
        report.fail(file, i, why)
    return ok


def check_records(report: Report, path: Path, mapping: dict, wrappers: Wrappers) -> None:
    """BioTool.json-style records: loaded, dispatched by their own database/tool (as
    get_observation.py) and by function_mapping.json (as the evaluation), the same module both ways."""
    file = path.name
    records = load_dataset(path)
    report.records[file] = len(records)
    report.dispatched[file] = 0
    for i, r in enumerate(records):
        if not isinstance(r, dict) or set(r) != {"user_query", "function_calling", "observation", "database", "tool"}:
            report.fail(file, i, f"not a BioTool record: keys {sorted(r) if isinstance(r, dict) else type(r)}")
            continue
        if not isinstance(r["user_query"], str) or not r["user_query"].strip():
            report.fail(file, i, "user_query is not a non-empty string")
        observation = r["observation"]
        if isinstance(observation, str) and observation.lstrip()[:1] in ("{", "["):
            try:
                json.loads(observation)
            except ValueError:
                report.fail(file, i, "observation is JSON text cut short")
        if r["database"] not in DATABASES:
            report.fail(file, i, f"database {r['database']!r} is none of BioTool's {DATABASES}")
        call = r["function_calling"]
        if not _dispatch(report, file, i, call, mapping, wrappers):
            continue
        try:
            wrappers.call(r["database"], r["tool"], call["name"], call["arguments"])
        except Exception as exc:  # noqa: BLE001 - get_observation.py logs any exception as an error record
            report.fail(file, i, f"by the record's database/tool: {exc}")
            continue
        if mapping[call["name"]] != (r["database"], r["tool"]):
            report.fail(file, i, f"database/tool {r['database']}/{r['tool']} differ from function_mapping.json")
            continue
        report.dispatched[file] += 1


def check_sharegpt(report: Report, path: Path, mapping: dict, db_mapping: dict, wrappers: Wrappers) -> None:
    """BioTool_{train,test}.json: the layout convert.py writes, the prompt and tools
    openai_eval_func.py sends, the gold label it writes, scored by unified_evaluate.py against
    itself (exact match) and dispatched."""
    file = path.name
    examples = load_dataset(path)
    report.records[file] = len(examples)
    report.dispatched[file] = 0
    results = []
    for i, example in enumerate(examples):
        turns = example.get("conversations") if isinstance(example, dict) else None
        if not isinstance(turns, list) or [t.get("from") for t in turns] != ["system", "human", "function_call"]:
            report.fail(file, i, "conversations are not system, human, function_call (convert.py's layout)")
            continue
        if [m["role"] for m in to_openai_messages(example)] != ["system", "user"]:
            report.fail(file, i, "not exactly one question for the chat API")
        tools = example_tools(example)
        if tools is None:
            report.fail(file, i, "no per-example tools: BioTool would offer all of tools.json")
            continue
        bad = [t for t in tools if not jsonschema.Draft202012Validator(OPENAI_TOOL).is_valid(t)]
        if bad:
            report.fail(file, i, f"a tool is not in the OpenAI tool form: {json.dumps(bad[0])[:80]}")
            continue
        label = build_gold_label(example)
        gold = extract_tool_call(label)
        if gold is None:
            report.fail(file, i, "the gold label holds no tool call")
            continue
        if gold.get("name") not in {t["function"]["name"] for t in tools}:
            report.fail(file, i, f"the gold function {gold.get('name')!r} is not among the offered tools")
        if _dispatch(report, file, i, gold, mapping, wrappers):
            report.dispatched[file] += 1
        results.append(evaluate_single({"predict": label, "label": label}, mapping, wrappers))
    report.metrics[file] = compute_metrics(results, db_mapping)


def check_tools(report: Report, folder: Path, wrappers: Wrappers) -> set[str]:
    tools = json.loads((folder / "tools.json").read_text())
    for i, tool in enumerate(tools):
        if not jsonschema.Draft202012Validator(OPENAI_TOOL).is_valid(tool):
            report.fail("tools.json", i, "not in the OpenAI tool form")
    names = {t.get("function", {}).get("name") for t in tools if isinstance(t, dict)}
    unknown = sorted(str(n) for n in names - wrappers.functions())
    if unknown:
        report.fail("tools.json", None, f"functions BioTool does not have: {', '.join(unknown)}")
    return names


def check_folder(folder: Path, wrappers: Wrappers | None = None, records: tuple[str, ...] = RECORD_FILES) -> Report:
    """Everything BioTool's consumers do with a data folder, offline; the files it names must be
    there. ``records``: the files in BioTool.json's record format."""
    wrappers = wrappers or Wrappers.load()
    report = Report()
    mapping = load_function_mapping(folder / "function_mapping.json")
    db_mapping = load_db_mapping(folder / "function_mapping.json")
    names = check_tools(report, folder, wrappers)
    if names != set(mapping):
        report.fail("function_mapping.json", None, "does not name the functions of tools.json")
    for name in records:
        check_records(report, folder / name, mapping, wrappers)
    for name in SHAREGPT_FILES:
        check_sharegpt(report, folder / name, mapping, db_mapping, wrappers)
    return report
