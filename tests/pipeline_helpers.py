"""Helpers for the tests that run whole jobs (incremental, crash, drift, serve, dask).

A config file for the demo data whose executor talks `live` to the loopback API stand-in (and,
when given, whose generator and judge talk to the loopback LLM stand-in), the reviewer's part
done as rows in the store (accept every survivor), and a fingerprint of a store's content
(keys per table) for comparing runs.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from biocurate.config import Config, load_config
from biocurate.hashing import content_hash
from biocurate.store import Store, insert_new, utcnow
from tests.conftest import ROOT

FAST_HOSTS = {
    h: {"rate_per_second": 500.0, "max_concurrency": 8}
    for h in ("eutils.ncbi.nlm.nih.gov", "blast.ncbi.nlm.nih.gov", "rest.ensembl.org", "rest.uniprot.org")
}
# Keys of the tables a rebuild writes (what must match between two runs of the same work).
CONTENT_KEYS = {
    "tools": "select function from tools",
    "entities": "select entity_id from entities",
    "candidate_calls": "select call_id from candidate_calls",
    "api_responses": "select response_id from api_responses",
    "observations": "select observation_id from observations",
    "queries": "select query_id from queries",
    "judgments": "select judgment_id from judgments",
    "llm_calls": "select prompt_hash from llm_calls",
    # Not the per-run summary rows of each expectation (item_kind 'expectation'): they name their run.
    "qc_results": "select qc_id from qc_results where item_kind <> 'expectation'",
}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_config(path: Path, settings: dict) -> Path:
    """The shipped biocurate.toml merged with ``settings`` (nested dicts), written as TOML."""
    data = _merge(tomllib.loads((ROOT / "biocurate.toml").read_text()), settings)
    lines = [f"root = {_toml_value(ROOT)}"]
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def standin_settings(tmp_path: Path, api, llm=None, **sections) -> dict:
    """Settings for the demo data against the loopback stand-ins, everything under tmp_path."""
    settings = {
        "store": {"path": str(tmp_path / "store.duckdb")},
        # BLAST is left out: the demo snapshot holds a BLAST job that never finishes (status
        # WAITING), an answer that is, rightly, asked again on every rebuild.
        "sample": {"quota": {"function": {"blast": 0}}},
        "execute": {
            "transport": "live",
            "base_urls": api.base_urls(),
            "hosts": FAST_HOSTS,
            "max_retries": 1,
            "backoff_seconds": 0.01,
            "timeout_seconds": 5.0,
            "blast_poll_seconds": 0.0,
            "blast_max_wait_seconds": 0.0,
        },
        "review": {"enabled": False},
        "publish": {"out_dir": str(tmp_path / "versions")},
        "quality": {"data_docs_dir": str(tmp_path / "data_docs")},
    }
    if llm is not None:
        model = {
            "provider": "openai",
            "base_url": llm.base_url,
            "model": "standin-1",
            "requests_per_second": 500.0,
            "max_concurrency": 8,
            "max_retries": 1,
        }
        settings["synthesis"] = {"generator": model, "judge": {**model, "model": "standin-judge"}}
    return _merge(settings, sections)


def accept_survivors(store: Path, annotator: str = "reviewer@test") -> int:
    """What a reviewer does in Label Studio, as rows: every survivor pushed and accepted."""
    now = utcnow()
    with Store(store).open() as con:
        survivors = [
            r[0]
            for r in con.execute(
                "select query_id from survivors where query_id not in (select query_id from review_tasks) "
                "order by query_id"
            ).fetchall()
        ]
        start = con.execute("select coalesce(max(task_id), 0) from review_tasks").fetchall()[0][0]
        insert_new(
            con,
            "review_tasks",
            [
                {
                    "query_id": q,
                    "content_hash": "test",
                    "project_id": 1,
                    "task_id": start + i + 1,
                    "priority": 0.5,
                    "pushed_at": now,
                    "updated_at": now,
                }
                for i, q in enumerate(survivors)
            ],
        )
        accept(con, survivors, annotator)
    return len(survivors)


def accept(con, query_ids: list[str], annotator: str = "reviewer@test") -> None:
    """A (new) accepting annotation on each query's task, made now."""
    now = utcnow()
    tasks = dict(con.execute("select query_id, task_id from review_tasks").fetchall())
    insert_new(
        con,
        "annotations",
        [
            {
                "annotation_id": content_hash("test-annotation", q, now),
                "ls_annotation_id": 10_000_000 + tasks[q],
                "task_id": tasks[q],
                "query_id": q,
                "annotator": annotator,
                "verdict": "accept",
                "created_at": now,
                "updated_at": now,
                "pulled_at": now,
            }
            for q in query_ids
        ],
    )


def content_keys(store: Path) -> dict[str, set[str]]:
    """The key set of every table a rebuild writes."""
    with Store(store).open(read_only=True) as con:
        return {t: {r[0] for r in con.execute(sql).fetchall()} for t, sql in CONTENT_KEYS.items()}


def demo_config_at(folder: Path, **overrides) -> Config:
    """The shipped config (demo seeds, catalog, snapshot) with the store, the published versions and
    the data docs in ``folder`` and no review; ``overrides`` as load_config's (dotted keys)."""
    return load_config(
        ROOT / "biocurate.toml",
        overrides={
            "store.path": str(folder / "store.duckdb"),
            "review.enabled": False,
            "publish.out_dir": str(folder / "versions"),
            "quality.data_docs_dir": str(folder / "data_docs"),
            **overrides,
        },
    )


def eval_config_at(folder: Path, functions: dict[str, int], kinds: dict[str, int], **overrides) -> Config:
    """demo_config_at for a small version to evaluate: ``functions`` sampled calls per function (no
    others), ``kinds`` sets per kind, half the items in train and half in test."""
    return demo_config_at(
        folder,
        **{
            "sample.calls_per_function": 0,
            "sample.quota": {"function": functions},
            "sample.kinds": kinds,
            "publish.train": 0.5,
            "publish.validation": 0.0,
            "publish.test": 0.5,
            **overrides,
        },
    )


def live_execute_config(tmp_path: Path, api, **execute) -> Config:
    """The shipped config with its executor talking `live` to the loopback API stand-in ``api``
    (snapshot in tmp_path/snap, store tmp_path/s.duckdb); ``execute`` overrides [execute] keys."""
    settings = {"transport": "live", "snapshot_dir": str(tmp_path / "snap"), "base_urls": api.base_urls(), **execute}
    return load_config(
        ROOT / "biocurate.toml",
        overrides={"store.path": str(tmp_path / "s.duckdb"), **{f"execute.{k}": v for k, v in settings.items()}},
    )
