"""Publish: human-accepted items -> an immutable, documented, reproducible dataset version.

The modules, in the order a publish runs them: ``selection`` (which queries are exported, with
which text, and why the others are not), ``splits`` (stable, leakage-free splits and their
checks), ``formats`` (export records and the registry of export formats; BioTool's names and
values in ``biotool``), ``card`` (counts, provenance, plots and the dataset card), ``versions``
(``publish`` itself: digest, atomic write, the store's records), and ``diff`` (comparing
versions). Longer SQL is in ``sql/``.
"""

from __future__ import annotations

from biocurate.publish.card import counts_of, dataset_card, provenance, upstream_releases, write_plots
from biocurate.publish.common import SPLITS, PublishError
from biocurate.publish.diff import DIFF_FIELDS, VersionDiff, diff_versions, version_items
from biocurate.publish.formats import FORMATS, ExportFormat, dumps
from biocurate.publish.records import Distractors, Records
from biocurate.publish.selection import (
    ACCEPTED_FAILS_QC,
    CALL_EDITED,
    CONFLICTING,
    DRIFT_HELD,
    EDIT_FAILED_QC,
    EDIT_NOT_CHECKED,
    FAILED_QC,
    MISSING_ROWS,
    NOT_CHECKED,
    NOT_IN_CATALOG,
    NOT_PUSHED,
    PENDING,
    REASONS,
    REJECTED,
    SPLIT_CONFLICT,
    select_items,
)
from biocurate.publish.splits import SplitPlan, assign_splits, group_key, split_at, split_checks
from biocurate.publish.versions import PublishResult, publish
from biocurate.publish.writing import write_formats

__all__ = [
    "ACCEPTED_FAILS_QC",
    "CALL_EDITED",
    "CONFLICTING",
    "DIFF_FIELDS",
    "DRIFT_HELD",
    "EDIT_FAILED_QC",
    "EDIT_NOT_CHECKED",
    "FAILED_QC",
    "FORMATS",
    "MISSING_ROWS",
    "NOT_CHECKED",
    "NOT_IN_CATALOG",
    "NOT_PUSHED",
    "PENDING",
    "REASONS",
    "REJECTED",
    "SPLITS",
    "SPLIT_CONFLICT",
    "Distractors",
    "ExportFormat",
    "PublishError",
    "PublishResult",
    "SplitPlan",
    "VersionDiff",
    "assign_splits",
    "counts_of",
    "dataset_card",
    "diff_versions",
    "dumps",
    "group_key",
    "provenance",
    "publish",
    "Records",
    "select_items",
    "split_at",
    "split_checks",
    "upstream_releases",
    "version_items",
    "write_formats",
    "write_plots",
]
