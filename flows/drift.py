"""The drift job: re-execute the latest published version's calls, record what changed, and send
changed items back to review (judge and quality checks again, then the review push) before the
next publish. The comparison itself is ``biocurate.drift``; this flow only orders the stages.
"""
from __future__ import annotations

from prefect import flow

from biocurate.config import load_config
from biocurate.drift import stage_drift_check
from flows.rebuild import run_job

DRIFT_STAGES = ["drift_check", "judge", "quality", "review_push"]


@flow(name="drift", log_prints=False)
def drift(config_path: str | None = None, overrides: dict | None = None) -> dict:
    """Check the latest published version against the APIs now; changed items go back to review."""
    config = load_config(config_path, overrides)
    return run_job(config, "drift", DRIFT_STAGES, stages={"drift_check": stage_drift_check})
