"""The drift job: re-execute the latest published version's calls, record what changed, and send
changed items back to review (judge and quality checks on their new versions, then the review
push) before the next publish. The comparison itself is ``biocurate.drift``; the stages are the
registry's ``drift`` job (``biocurate.stages``).
"""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from biocurate.config import load_config
from flows.run import final_state, run_job


@flow(name="drift", log_prints=False)
def drift(config_path: str | None = None, overrides: dict | None = None) -> dict | State:
    """Check the latest published version against the APIs now; changed items go back to review."""
    config = load_config(config_path, overrides)
    return final_state(run_job(config, "drift"))
