"""`biocurate serve`: the scheduled deployments, with crons and parameters from ``[schedule]``.

  rebuild      flows.rebuild:rebuild       the same flow `biocurate rebuild` runs
  review-sync  flows.jobs:review_sync      `biocurate review pull`, then `biocurate review push`
  drift        flows.drift:drift           `biocurate drift check`
  publish      flows.jobs:publish          `biocurate publish`

Every deployment gets the absolute path of the config file it was served with
(``config_path``) plus the job's ``parameters`` from the config. Cron schedules fire only on a
real Prefect server (``scripts/prefect_server.sh start``, then ``PREFECT_API_URL``); the
ephemeral server creates no scheduled runs. Run as ``python -m flows.serve [--config FILE]``:
``serve`` must run under the ``__main__`` guard, because each flow run starts in a fresh
process that imports its flow's module. A served run whose biocurate run ends degraded or failed
ends its flow run Failed (named "Degraded" or "Failed", what to fix as the message:
``flows.run.final_state``), so a schedule's failures show in the UI and its notifications.
"""

from __future__ import annotations

import argparse
import inspect
import os
from pathlib import Path

from biocurate.config import DEFAULT_CONFIG, load_config
from biocurate.errors import ConfigError

# job in [schedule] -> (deployment name, "module:flow")
JOBS = {
    "rebuild": ("rebuild", "flows.rebuild:rebuild"),
    "review_sync": ("review-sync", "flows.jobs:review_sync"),
    "drift": ("drift", "flows.drift:drift"),
    "publish": ("publish", "flows.jobs:publish"),
}


def config_file(config_path: str | Path | None) -> Path:
    """The config file a served job will load (absolute), as ``load_config`` would pick it."""
    return Path(config_path or os.environ.get("BIOCURATE_CONFIG") or DEFAULT_CONFIG).resolve()


def _flow(target: str):
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def deployments(config_path: str | Path | None = None) -> list:
    """The enabled jobs of ``[schedule]`` as Prefect deployments (not yet registered)."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    path = config_file(config_path)
    config = load_config(path)
    out = []
    for job, (name, target) in JOBS.items():
        schedule = getattr(config.schedule, job)
        if not schedule.enabled:
            continue
        flow = _flow(target)
        accepted = set(inspect.signature(flow.fn).parameters)
        unknown = sorted(set(schedule.parameters) - accepted)
        if unknown:
            raise ConfigError(
                f"{path}: [schedule.{job}] parameters {unknown} are not parameters of the "
                f"{name} flow (it takes {sorted(accepted)})"
            )
        out.append(
            flow.to_deployment(
                name=name,
                schedule=Cron(schedule.cron, timezone=config.schedule.timezone),
                parameters={"config_path": str(path), **schedule.parameters},
                description=f"biocurate {name}: {(flow.fn.__doc__ or '').strip().splitlines()[0]}",
                tags=["biocurate"],
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    if not out:
        raise ConfigError(f"{path}: every job in [schedule] is disabled: nothing to serve")
    return out


def main(argv: list[str] | None = None) -> None:
    from prefect import serve

    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: biocurate.toml or $BIOCURATE_CONFIG)")
    args = parser.parse_args(argv)
    serve(*deployments(args.config))


if __name__ == "__main__":
    main()
