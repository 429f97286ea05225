"""The rebuild flow: sample -> execute -> discover -> synthesize -> judge -> quality -> review push.

The stages and their order are the registry's (``biocurate.stages``); ``flows/run.py`` runs
them as Prefect tasks under the job lock.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.states import State

from biocurate.config import load_config
from biocurate.stages import job_stages
from flows.run import final_state, run_job


@flow(name="rebuild", log_prints=False)
def rebuild(
    config_path: str | None = None, overrides: dict | None = None, stages: list[str] | None = None
) -> dict | State:
    """Run the stages in order against the store; record the run and its summary table.

    One job at a time per store: a second rebuild (or drift check) refuses with the holder's
    pid, host and start time; a lock left by a killed process is taken over.
    """
    config = load_config(config_path, overrides)
    names = job_stages("rebuild", stages)
    result = run_job(config, "rebuild", names)
    if "quality" in names:
        from biocurate.quality_report import expectation_report

        create_table_artifact(
            key="quality-expectations",
            table=expectation_report(config),
            description=f"biocurate quality checks after run {result['run_id']}: "
            "pass/fail per expectation (latest QC configuration)",
        )
    return final_state(result)
