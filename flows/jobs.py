"""The other scheduled jobs: review sync (pull, then push) and publish.

They run the same registered stages as `biocurate review pull`, `biocurate review push` and
`biocurate publish`, under the store's job lock; scheduled, they wait up to
``[schedule] lock_wait_seconds`` for a running rebuild or drift check to finish.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from biocurate.config import load_config
from flows.run import final_state, run_job


@flow(name="review-sync", log_prints=False)
def review_sync(
    config_path: str | None = None, overrides: dict | None = None, lock_wait_seconds: float | None = None
) -> dict | State:
    """Pull new annotations from Label Studio, then push new survivors (review pull + review push)."""
    config = load_config(config_path, overrides)
    wait = config.schedule.lock_wait_seconds if lock_wait_seconds is None else lock_wait_seconds
    return final_state(run_job(config, "review_sync", lock_wait=wait))


@flow(name="publish", log_prints=False)
def publish(
    config_path: str | None = None, overrides: dict | None = None, lock_wait_seconds: float | None = None
) -> dict | State:
    """Publish human-accepted items as a new dataset version (as `biocurate publish`)."""
    config = load_config(config_path, overrides)
    wait = config.schedule.lock_wait_seconds if lock_wait_seconds is None else lock_wait_seconds
    return final_state(run_job(config, "publish", lock_wait=wait))
