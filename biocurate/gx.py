"""The Great Expectations layer: suites from JSON, an in-memory GX context, Data Docs.

Suites live in ``expectations/<suite>.json``: each expectation is a GX expectation type with
its kwargs, a name, a human-readable reason, an optional ``detail`` (a format string over the
row, appended to the reason of a failing row) and an optional default severity; ``$name``
values come from ``[quality]`` (or ``[execute]``) in the config, ``$catalog.<name>`` values from
the catalog (the names a natural question never holds), and ``[quality] severity``
overrides severities, so thresholds are not code. A suite's ``level`` (row, dataset, balance)
says which frame the quality stage gives it (``biocurate.quality``).

``GXRunner`` validates one suite on a pandas frame and returns the failing item ids per
expectation; each validation result is stored beside the Data Docs site so its index lists
every run, and ``biocurate.data_docs`` makes the site readable offline (local stylesheet, a plain
list of the runs in the index). The custom expectations are in ``biocurate.expectations_gx`` (registered when the
runner starts). Great Expectations itself is imported only when a runner is made: importing
this module stays cheap for the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from biocurate.config import Config
from biocurate.errors import ConfigError

LEVELS = ("row", "dataset", "balance")
SEVERITIES = ("blocking", "warning")
# Lists kept in a stored GX result (the Data Docs); qc_results hold every failing row.
DOCS_LIST_LIMIT = 20


# --- suites and settings -------------------------------------------------------------------


def load_suites(suites_dir: Path) -> list[dict]:
    """Every ``*.json`` suite, checked for shape; expectation names are unique across suites."""
    suites: list[dict] = []
    seen: dict[str, str] = {}
    for path in sorted(Path(suites_dir).glob("*.json")):
        try:
            suite = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
        suite["file"] = str(path)
        suite.setdefault("level", "row")
        if suite["level"] not in LEVELS or not suite.get("name") or not suite.get("expectations"):
            raise ConfigError(f"{path}: a suite needs a name, expectations and a level in {LEVELS}")
        for spec in suite["expectations"]:
            missing = {"name", "type", "kwargs", "reason"} - set(spec)
            if missing:
                raise ConfigError(f"{path}: expectation {spec.get('name', '?')} lacks {sorted(missing)}")
            if spec["name"] in seen:
                raise ConfigError(f"{path}: expectation name {spec['name']} is also used in {seen[spec['name']]}")
            if spec.get("severity", "blocking") not in SEVERITIES:
                raise ConfigError(f"{path}: expectation {spec['name']}: severity must be one of {SEVERITIES}")
            seen[spec["name"]] = path.name
        suites.append(suite)
    if not suites:
        raise ConfigError(f"no expectation suites (*.json) in {suites_dir}")
    return suites


# "$catalog.<name>" kwargs: lists taken from the configured catalog.
CATALOG_VALUES = ("code_names",)


def catalog_value(name: str, config: Config) -> list[str]:
    """``code_names``: the catalog's function names (but ``[quality] leak_allowed`` words) and
    code-like parameter names, which a natural question never holds."""
    from biocurate.catalog import load_catalog
    from biocurate.mentions import MentionRules

    if name not in CATALOG_VALUES:
        raise ConfigError(f"expectation kwarg $catalog.{name}: no such catalog list; known: {list(CATALOG_VALUES)}")
    catalog = load_catalog(config.path(config.sample.catalog_dir))
    return MentionRules.code_names(catalog, config.quality.leak_allowed)


def resolve_kwargs(kwargs: dict, config: Config) -> dict:
    """Replace "$setting" values with the config's [quality] (or [execute]) settings, and
    "$catalog.<name>" values with lists from the catalog (``catalog_value``)."""
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, str) and value.startswith("$catalog."):
            value = catalog_value(value[len("$catalog.") :], config)
        elif isinstance(value, str) and value.startswith("$"):
            name = value[1:]
            source = next((s for s in (config.quality, config.execute) if name in type(s).model_fields), None)
            if source is None:
                raise ConfigError(f"expectation kwarg {key}={value}: no setting {name} in [quality] or [execute]")
            value = getattr(source, name)
        out[key] = value
    return out


def resolve_suite(suite: dict, config: Config) -> dict:
    """The suite with every expectation's kwargs resolved (``resolve_kwargs``): done once per
    validation, not per chunk (a ``$catalog`` list loads the catalog, 40 ms)."""
    return {
        **suite,
        "expectations": [{**s, "kwargs": resolve_kwargs(s["kwargs"], config)} for s in suite["expectations"]],
    }


def severities(config: Config, suites: list[dict]) -> dict[str, str]:
    """Expectation name -> blocking/warning: the config's override, else the suite's default."""
    names = {spec["name"]: spec.get("severity", "blocking") for s in suites for spec in s["expectations"]}
    unknown = sorted(set(config.quality.severity) - set(names))
    if unknown:
        raise ConfigError(f"[quality] severity names unknown expectations {unknown}; known: {sorted(names)}")
    return {name: config.quality.severity.get(name, default) for name, default in names.items()}


def _percent(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def merge_results(into, more):
    """``into`` (a GX suite validation result) extended by ``more``, the same suite on further rows:
    counts summed, percentages recomputed, lists joined (cut to DOCS_LIST_LIMIT), success if both."""
    for a, b in zip(into.results, more.results, strict=True):
        ra, rb = a.result, b.result
        for key in ("element_count", "unexpected_count", "missing_count"):
            if key in ra or key in rb:
                ra[key] = (ra.get(key) or 0) + (rb.get(key) or 0)
        total, missing, unexpected = (ra.get(k) or 0 for k in ("element_count", "missing_count", "unexpected_count"))
        for key, value in (
            ("unexpected_percent", _percent(unexpected, total - missing)),
            ("unexpected_percent_nonmissing", _percent(unexpected, total - missing)),
            ("unexpected_percent_total", _percent(unexpected, total)),
            ("missing_percent", _percent(missing, total)),
        ):
            if key in ra:
                ra[key] = value
        if "partial_unexpected_counts" in ra:
            counts: dict[str, tuple[Any, int]] = {}
            for entry in [*ra["partial_unexpected_counts"], *(rb.get("partial_unexpected_counts") or [])]:
                key = repr(entry["value"])
                counts[key] = (entry["value"], counts.get(key, (None, 0))[1] + entry["count"])
            ordered = sorted(counts.values(), key=lambda vc: -vc[1])
            ra["partial_unexpected_counts"] = [{"value": v, "count": c} for v, c in ordered][:DOCS_LIST_LIMIT]
        for key, value in ra.items():
            if isinstance(value, list) and key not in ("partial_unexpected_counts", "unexpected_index_column_names"):
                ra[key] = (value + list(rb.get(key) or []))[:DOCS_LIST_LIMIT]
        a.success = bool(a.success and b.success)
    into.success = all(r.success for r in into.results)
    stats = into.statistics
    stats["successful_expectations"] = sum(bool(r.success) for r in into.results)
    stats["unsuccessful_expectations"] = len(into.results) - stats["successful_expectations"]
    stats["success_percent"] = _percent(stats["successful_expectations"], len(into.results))
    return into


# --- the runner ----------------------------------------------------------------------------


class GXRunner:
    """An in-memory GX context whose validation results and Data Docs go to ``docs_dir``."""

    def __init__(self, docs_dir: Path):
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from great_expectations.execution_engine import pandas_execution_engine

        import biocurate.expectations_gx  # noqa: F401  (registers the custom expectations)

        # GX fingerprints every pandas batch under this many bytes (pandas' hash of every row, then
        # md5) for a batch marker (in Data Docs under "Show more info"). A stored result merges a
        # suite's chunks (SuiteCheck) and kept the first chunk's fingerprint, which identified
        # nothing; the hashing, a batch per suite and chunk, took 3 to 4 s at 100k calls.
        pandas_execution_engine.HASH_THRESHOLD = 0

        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
        project = DataContextConfig(store_backend_defaults=defaults, progress_bars=ProgressBarsConfig(globally=False))
        # Results persist next to the site so the index lists every run, not only this one.
        project.stores[defaults.validation_results_store_name]["store_backend"] = {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir / ".results"),
        }
        project.data_docs_sites = {
            "biocurate": {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
        self.gx = gx
        self.docs_dir = docs_dir
        self.context = gx.get_context(mode="ephemeral", project_config=project)
        self.source = self.context.data_sources.add_pandas("store")
        self.assets: dict[str, Any] = {}
        self.keys: list = []

    def validate(
        self, suite: dict, frame: pd.DataFrame, config: Config, severity: dict[str, str], run_name: str
    ) -> dict[str, list[str]]:
        """Validate one suite on ``frame``; return expectation name -> failing item ids."""
        return self.validate_chunks(suite, [frame], config, severity, run_name)

    def validate_chunks(
        self,
        suite: dict,
        frames: Iterable[pd.DataFrame],
        config: Config,
        severity: dict[str, str],
        run_name: str,
        each: Callable[[pd.DataFrame, dict[str, list[str]]], None] | None = None,
    ) -> dict[str, list[str]]:
        """Validate one suite on frames made one at a time (bounded memory: a frame is dropped once
        checked), as one validation (``SuiteCheck``): failing item ids in frame order. ``each(frame,
        failing)`` sees each frame's failures while the frame is still in memory."""
        check = SuiteCheck(self, suite, config, severity, run_name)
        failing: dict[str, list[str]] = {}
        for frame in frames:
            part = check.check(frame)
            if each is not None:
                each(frame, part)
            for name, ids in part.items():
                failing.setdefault(name, []).extend(ids)
        check.finish()
        return failing

    def _check(self, suite: dict, frame: pd.DataFrame, severity: dict[str, str]):
        """One frame's (failing item ids per expectation, GX result with lists cut to DOCS_LIST_LIMIT);
        ``suite`` resolved (``resolve_suite``)."""
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
        from great_expectations.expectations.metadata_types import FailureSeverity

        expectations = [
            ExpectationConfiguration(
                type=spec["type"],
                kwargs=spec["kwargs"],
                meta={"name": spec["name"], "reason": spec["reason"]},
                description=f"{spec['name']}: {spec['reason']} ({severity[spec['name']]})",
                severity=FailureSeverity.CRITICAL if severity[spec["name"]] == "blocking" else FailureSeverity.WARNING,
            ).to_domain_obj()
            for spec in suite["expectations"]
        ]
        asset = suite["level"] if suite["level"] == "balance" else "questions"
        # GX hashes the whole frame for every batch: give it only the columns the suite reads.
        columns = [
            "item_id",
            *dict.fromkeys(
                v
                for spec in suite["expectations"]
                for k, v in spec["kwargs"].items()
                if k in ("column", "column_A", "column_B")
            ),
        ]
        frame = frame[columns]
        if asset not in self.assets:
            self.assets[asset] = self.source.add_dataframe_asset(asset).add_batch_definition_whole_dataframe("all")
        result = (
            self.assets[asset]
            .get_batch(batch_parameters={"dataframe": frame})
            .validate(
                self.gx.ExpectationSuite(
                    name=suite["name"], expectations=expectations, meta={"description": suite.get("description", "")}
                ),
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["item_id"]},
            )
        )
        failing: dict[str, list[str]] = {}
        for res in result.results:
            name = res.expectation_config.meta["name"]
            if res.exception_info.get("raised_exception"):
                # A broken metric must not look like bad data: stop with the real error.
                raise ConfigError(
                    f"{suite['file']}: expectation {name} could not run: {res.exception_info.get('exception_message')}"
                )
            failing[name] = [row["item_id"] for row in res.result.get("unexpected_index_list") or []]
            for key in list(res.result):
                value = res.result[key]
                if key == "unexpected_index_query":
                    del res.result[key]
                elif isinstance(value, list) and len(value) > DOCS_LIST_LIMIT:
                    res.result[key] = value[:DOCS_LIST_LIMIT]
        return failing, result

    def _store(self, result, suite_name: str, run_name: str) -> None:
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run_id,
            batch_identifier="biocurate",
        )
        # The page's "Run Name" and "Run Time" come from the result's meta (else "__none__").
        result.meta["run_id"] = run_id
        self.context.validation_results_store.store_validation_results(result, key)
        self.keys.append(key)

    def build_docs(self) -> Path:
        """Render this run's results and rebuild the index (which lists every stored run)."""
        from biocurate.data_docs import make_offline

        self.context.build_data_docs(site_names=["biocurate"], resource_identifiers=self.keys)
        make_offline(self.docs_dir)
        return self.docs_dir / "index.html"


class SuiteCheck:
    """One suite validated on frames given one at a time (several suites can take turns on each
    frame), stored by ``finish`` as one validation result whose counts cover every frame
    (``merge_results``). ``suite`` is the suite with its kwargs resolved (``resolve_suite``)."""

    def __init__(self, runner: GXRunner, suite: dict, config: Config, severity: dict[str, str], run_name: str):
        self.runner, self.severity, self.run_name = runner, severity, run_name
        self.suite = resolve_suite(suite, config)
        self.merged = None
        self.failed: dict[str, int] = {spec["name"]: 0 for spec in suite["expectations"]}

    def check(self, frame: pd.DataFrame) -> dict[str, list[str]]:
        """The frame's failing item ids per expectation (counted in ``failed``)."""
        failing, result = self.runner._check(self.suite, frame, self.severity)
        self.merged = result if self.merged is None else merge_results(self.merged, result)
        for name, ids in failing.items():
            self.failed[name] = self.failed.get(name, 0) + len(ids)
        return failing

    def finish(self) -> None:
        if self.merged is not None:
            self.runner._store(self.merged, self.suite["name"], self.run_name)
