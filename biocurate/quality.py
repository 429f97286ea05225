"""Quality checks with Great Expectations: every rule explicit, every rejection explained.

Suites live in ``expectations/<suite>.json``: each expectation is a GX expectation type with
its kwargs, a name and a human-readable reason; ``$name`` values come from ``[quality]`` in
the config, so thresholds are not code. GX validates a pandas frame pulled from DuckDB (one
row per query, with its call, observation and latest judgment); every row gets a
``qc_results`` record per expectation. Survivors (the ``survivors`` view) are the queries
with no blocking failure.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.hashing import content_hash
from biocurate.judge import JARGON
from biocurate.store import insert_new
from biocurate.synthesis import identifiers


def load_suites(suites_dir: Path) -> list[dict]:
    suites = []
    for path in sorted(Path(suites_dir).glob("*.json")):
        suite = json.loads(path.read_text())
        suite["file"] = str(path)
        suites.append(suite)
    return suites


def resolve_kwargs(kwargs: dict, config: Config) -> dict:
    """Replace "$setting" values with the config's [quality] (or [execute]) settings."""
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, str) and value.startswith("$"):
            name = value[1:]
            source = config.quality if hasattr(config.quality, name) else config.execute
            value = getattr(source, name)
        out[key] = value
    return out


def qc_config_hash(config: Config, suites: list[dict]) -> str:
    return content_hash(config.quality.model_dump(mode="json"), config.execute.observation_max_chars,
                        [{k: v for k, v in s.items() if k != "file"} for s in suites], length=16)


def query_frame(con: duckdb.DuckDBPyConnection, catalog: Catalog, qc_hash: str) -> pd.DataFrame:
    """Queries not yet checked under this QC config, with the columns the suites look at."""
    frame = con.execute(
        """
        select q.query_id as item_id, q.call_id, q.text, c.function, c.arguments, c.valid as call_valid,
               o.text as observation, j.verdict, j.score
        from queries q
        join candidate_calls c using (call_id)
        join observations o on o.observation_id = q.observation_id
        left join (select query_id, arg_max(verdict, created_at) as verdict, arg_max(score, created_at) as score
                   from judgments group by query_id) j using (query_id)
        where not exists (select 1 from qc_results r where r.item_id = q.query_id and r.qc_config_hash = ?)
        order by q.query_id
        """,
        [qc_hash],
    ).df()
    if frame.empty:
        return frame
    known, contains, leaks = [], [], []
    for function, arguments, text in zip(frame["function"], frame["arguments"], frame["text"]):
        tool = catalog.tools.get(function)
        known.append(tool is not None)
        args = json.loads(arguments)
        contains.append(tool is not None and all(i in text for i in identifiers(tool, args)))
        params = list(tool.function.params) if tool else []
        leaks.append(
            function.lower() in text.lower()
            or JARGON.search(text) is not None
            or re.search(r"https?://", text) is not None
            or any(re.search(rf"\b{re.escape(p)}\b", text) for p in params if "_" in p or p != p.lower())
        )
    frame["function_known"] = known
    frame["contains_identifiers"] = contains
    frame["leaks_api"] = leaks
    frame["words"] = frame["text"].str.split().str.len()
    frame["call_and_text"] = frame["call_id"] + "\x1f" + frame["text"].str.lower().str.strip()
    frame["verdict"] = frame["verdict"].fillna("missing")
    frame["score"] = frame["score"].fillna(-1.0)
    return frame


def _gx_batch(frame: pd.DataFrame):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = ctx.data_sources.add_pandas("store").add_dataframe_asset("items").add_batch_definition_whole_dataframe("all")
    return gx, batch_def.get_batch(batch_parameters={"dataframe": frame})


@dataclass
class QualitySummary:
    checked: int = 0
    survivors: int = 0
    failing: dict[str, int] = field(default_factory=dict)  # "suite.expectation" -> items


def run_quality(config: Config, con: duckdb.DuckDBPyConnection, catalog: Catalog, run_id: str) -> QualitySummary:
    suites = load_suites(config.path(config.quality.suites_dir))
    qc_hash = qc_config_hash(config, suites)
    frame = query_frame(con, catalog, qc_hash)
    summary = QualitySummary(checked=len(frame))
    if frame.empty:
        summary.survivors = con.execute("select count(*) from survivors").fetchall()[0][0]
        return summary
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    gx, batch = _gx_batch(frame)
    rows = []
    for suite in suites:
        expectations = [
            ExpectationConfiguration(type=e["type"], kwargs=resolve_kwargs(e["kwargs"], config),
                                     meta={"name": e["name"]}).to_domain_obj()
            for e in suite["expectations"]
        ]
        result = batch.validate(
            gx.ExpectationSuite(name=suite["name"], expectations=expectations),
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["item_id"]},
        )
        by_name = {e["name"]: e for e in suite["expectations"]}
        for res in result.results:
            spec = by_name[res.expectation_config.meta["name"]]
            if res.exception_info.get("raised_exception"):
                # A broken metric must not look like bad data: stop with the real error.
                raise RuntimeError(f"{suite['file']}: expectation {spec['name']} could not run: "
                                   f"{res.exception_info.get('exception_message')}")
            failing = {row["item_id"] for row in res.result.get("unexpected_index_list") or []}
            severity = config.quality.severity.get(spec["name"], spec.get("severity", "blocking"))
            summary.failing[f"{suite['name']}.{spec['name']}"] = len(failing)
            for item_id in frame["item_id"]:
                passed = item_id not in failing
                rows.append({
                    "qc_id": content_hash("qc", item_id, suite["name"], spec["name"], qc_hash),
                    "item_kind": "query", "item_id": item_id, "suite": suite["name"],
                    "expectation": spec["name"], "passed": passed, "severity": severity,
                    "reason": None if passed else spec["reason"], "qc_config_hash": qc_hash, "run_id": run_id,
                })
    insert_new(con, "qc_results", rows)
    summary.survivors = con.execute("select count(*) from survivors").fetchall()[0][0]
    return summary
