"""Serve driftloop's deployments from a long-running process against a Prefect server.

    prefect server start &                                   # or any Prefect 3 server
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    driftloop serve --config configs/sms_spam.yaml

Three deployments:
- ``watch-incoming``: every ``drift.watch_interval_s`` seconds, ingest landed files and emit
  ``driftloop.data.landed`` when any is new;
- ``retrain-on-new-data``: the pipeline, triggered by that event;
- ``drift-check``: on ``drift.schedule_cron``, compare new data with the last run's and
  retrain when it drifted.
"""

from __future__ import annotations

import os

from driftloop.config import load_config
from driftloop.runtime import apply_defaults

apply_defaults()


def build_deployments(config_path: str, overrides: list[str] | None = None) -> list:
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from driftloop.flows.pipeline import pipeline
    from driftloop.flows.retrain import DATA_LANDED_EVENT, drift_check, watch_incoming

    cfg = load_config(config_path, overrides or [])
    params = {"config_path": config_path, "overrides": list(overrides or [])}
    tags = ["driftloop", cfg.project.name]
    return [
        watch_incoming.to_deployment(
            name="watch-incoming",
            interval=cfg.drift.watch_interval_s,
            parameters=params,
            tags=tags,
            description="Ingest landed files; emit driftloop.data.landed when any is new.",
        ),
        pipeline.to_deployment(
            name="retrain-on-new-data",
            parameters=params,
            tags=tags,
            description="The full pipeline, run whenever new data lands.",
            triggers=[
                DeploymentEventTrigger(
                    expect={DATA_LANDED_EVENT},
                    match={"prefect.resource.id": f"driftloop.incoming.{cfg.project.name}"},
                    parameters=params,
                )
            ],
        ),
        drift_check.to_deployment(
            name="drift-check",
            cron=cfg.drift.schedule_cron,
            parameters=params,
            tags=tags,
            description="Scheduled drift check; retrains when new data has drifted.",
        ),
    ]


def serve_all(config_path: str, overrides: list[str] | None = None) -> None:
    """Register and serve the deployments until interrupted (SIGTERM pauses them)."""
    if not os.environ.get("PREFECT_API_URL"):
        raise RuntimeError(
            "PREFECT_API_URL is not set: serving needs a Prefect server. Start one with "
            "`prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    from prefect import serve

    serve(*build_deployments(config_path, overrides))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Serve driftloop's Prefect deployments.")
    parser.add_argument("--config", default="configs/sms_spam.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    serve_all(args.config, args.overrides)
