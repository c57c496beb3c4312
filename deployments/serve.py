"""Serve driftloop's deployments from a long-running process against a Prefect server.

    prefect server start &                                   # or any Prefect 3 server
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    driftloop serve --config configs/sms_spam.yaml

Three deployments, and one gate for every retrain:
- ``watch-incoming``: every ``service.watch_interval_s`` seconds (the fallback poll), ingest landed files
  and emit ``driftloop.data.landed`` when any is new. With ``service.file_events`` the served process also
  watches data/incoming/ for file events (inotify) and runs the same watcher flow at once. One tick at a time.
- ``retrain``: triggered by ``driftloop.data.landed`` and ``driftloop.drift.detected``, debounced
  (``service.debounce_s``), one run at a time (``service.collision_strategy``); trains on everything pending
  or ends with "nothing to do".
- ``drift-check``: on ``drift.schedule_cron``, compare new data with the reference; emit
  ``driftloop.drift.detected`` on drift.

At start-up, runs left Running or Pending by a serve process that died are marked Crashed, which also
releases the deployment concurrency slots they held (otherwise a limit-1 retrain would wait forever).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from datetime import timedelta
from pathlib import Path

from driftloop.atomic import file_lock
from driftloop.catalog import SUPPORTED_SUFFIXES, Catalog
from driftloop.config import DriftloopConfig, load_config
from driftloop.runtime import apply_defaults

apply_defaults()

WATCH_DEPLOYMENT = "driftloop-watch-incoming/watch-incoming"
RETRAIN_DEPLOYMENT = "driftloop-retrain/retrain"
DRIFT_DEPLOYMENT = "driftloop-drift-check/drift-check"
_ACTIVE = ("RUNNING", "PENDING", "CANCELLING")

log = logging.getLogger("driftloop.serve")


def serve_tag(cfg: DriftloopConfig) -> str:
    """The tag on every flow run this project's serve process starts (reconciliation finds them by it)."""
    return f"driftloop-serve:{cfg.project.name}"


def build_deployments(config_path: str, overrides: list[str] | None = None) -> list:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from driftloop.flows.drift import DRIFT_EVENT, drift_check
    from driftloop.flows.retrain import DATA_LANDED_EVENT, resource_id, retrain, watch_incoming

    cfg = load_config(config_path, overrides or [])
    params = {"config_path": config_path, "overrides": list(overrides or [])}
    tags = ["driftloop", cfg.project.name, serve_tag(cfg)]
    window = timedelta(seconds=cfg.service.debounce_s)
    return [
        watch_incoming.to_deployment(
            name="watch-incoming",
            interval=cfg.service.watch_interval_s,
            parameters=params,
            tags=tags,
            # A tick that would overlap a running one is pointless: cancel it (the landing lock backs this up).
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy="CANCEL_NEW"),
            description="Ingest landed files; emit driftloop.data.landed when any is new.",
        ),
        retrain.to_deployment(
            name="retrain",
            parameters=params,
            tags=tags,
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=cfg.service.collision_strategy),
            description="The one retrain gate: trains on everything pending, or ends with 'nothing to do'.",
            triggers=[
                # Debounce: the first event of a burst schedules one run at the end of the window; the
                # rest of the burst falls in the same window; the run then reads everything pending.
                DeploymentEventTrigger(
                    expect={DATA_LANDED_EVENT, DRIFT_EVENT},
                    match={"prefect.resource.id": [resource_id(cfg, "incoming"), resource_id(cfg, "drift")]},
                    threshold=1,
                    within=window,
                    schedule_after=window,
                    parameters=params,
                )
            ],
        ),
        drift_check.to_deployment(
            name="drift-check",
            cron=cfg.drift.schedule_cron,
            parameters=params,
            tags=tags,
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy="CANCEL_NEW"),
            description="Scheduled drift check; emits driftloop.drift.detected when new data has drifted.",
        ),
    ]


def reconcile_orphans(cfg: DriftloopConfig) -> list[str]:
    """Mark Crashed every run this project's serve process left Running/Pending/Cancelling, and their subflows.

    Called before serving, while holding the project's serve lock: no live serve process owns such a run.
    Crashing them through the API releases the deployment concurrency slots they held.
    Returns the names of the runs it crashed.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.states import Crashed

    active = FlowRunFilterState(type=FlowRunFilterStateType(any_=list(_ACTIVE)))
    crashed: list[str] = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[serve_tag(cfg)]), state=active)
        )
        while runs:
            for run in runs:
                client.set_flow_run_state(
                    run.id,
                    Crashed(message="its driftloop serve process died; found and closed when serve started again"),
                    force=True,
                )
                crashed.append(run.name)
            # Subflows (the pipeline inside a retrain) are tagged only through their parent.
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[r.id for r in runs]), state=active
                )
            )
    return crashed


class LandingWatcher(threading.Thread):
    """Runs the watcher flow as soon as data/incoming/ reports a file event (inotify via watchfiles)."""

    def __init__(self, cfg: DriftloopConfig, config_path: str, overrides: list[str], stop: threading.Event):
        super().__init__(name="driftloop-landing-watcher", daemon=True)
        self.cfg, self.config_path, self.overrides, self.stop = cfg, config_path, overrides, stop
        self.incoming = Catalog.from_config(cfg).incoming_dir

    def run(self) -> None:
        try:
            import watchfiles

            self.incoming.mkdir(parents=True, exist_ok=True)
            for _changes in watchfiles.watch(
                self.incoming,
                watch_filter=_is_landing,
                stop_event=self.stop,
                debounce=300,
                recursive=False,
                raise_interrupt=False,
            ):
                self._tick()
        except Exception as err:  # noqa: BLE001 - the poll deployment still covers the folder
            log.warning(
                "file-event watching stopped (%s: %s); the %ss poll goes on",
                type(err).__name__,
                err,
                self.cfg.service.watch_interval_s,
            )

    def _tick(self) -> None:
        from prefect import tags

        from driftloop.flows.retrain import watch_incoming

        try:
            with tags("driftloop", self.cfg.project.name, serve_tag(self.cfg), "file-event"):
                watch_incoming(config_path=self.config_path, overrides=self.overrides)
        except Exception as err:  # noqa: BLE001 - a failed tick must not end the watching
            log.warning("watcher tick after a file event failed: %s: %s", type(err).__name__, err)


def _is_landing(change, path: str) -> bool:
    """Only table files that appeared or changed; dot-names (files being copied) and deletions are ignored."""
    import watchfiles

    name = Path(path).name
    return (
        change != watchfiles.Change.deleted
        and not name.startswith(".")
        and Path(name).suffix.lower() in SUPPORTED_SUFFIXES
    )


def serve_all(config_path: str, overrides: list[str] | None = None) -> None:
    """Register and serve the deployments until interrupted (SIGTERM pauses them)."""
    if not os.environ.get("PREFECT_API_URL"):
        raise RuntimeError(
            "PREFECT_API_URL is not set: serving needs a Prefect server. Start one with "
            "`prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    from prefect import serve

    overrides = list(overrides or [])
    cfg = load_config(config_path, overrides)
    lock = Catalog.from_config(cfg).root / "data" / ".serve.lock"
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(lock, wait=False))
        except BlockingIOError:
            raise RuntimeError(
                f"another `driftloop serve` is already serving this project (it holds {lock}); stop it first, "
                f"or serve from another project folder"
            ) from None
        deployments = build_deployments(config_path, overrides)
        crashed = reconcile_orphans(cfg)
        if crashed:
            print(f"marked {len(crashed)} orphaned run(s) Crashed and released their slots: {', '.join(crashed)}")
        stop = threading.Event()
        stack.callback(stop.set)
        if cfg.service.file_events:
            LandingWatcher(cfg, config_path, overrides, stop).start()
        serve(*deployments, query_seconds=cfg.service.runner_poll_s)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Serve driftloop's Prefect deployments.")
    parser.add_argument("--config", default="configs/sms_spam.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    serve_all(args.config, args.overrides)
