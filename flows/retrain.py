"""Keeping the model fresh: a watcher that turns landed files into a ``driftloop.data.landed`` event,
and the one retrain flow that every trigger (data landed, drift detected) goes through.

The scheduled drift check lives in flows/drift.py; it only emits ``driftloop.drift.detected``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.events import emit_event

from driftloop.atomic import file_lock
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig, load_config
from driftloop.tasks.retrain_gate import RetrainPlan, SnapshotInfo, plan_retrain

if TYPE_CHECKING:
    from driftloop.tasks.landing import IngestOutcome

# This module is what a served watcher or retrain run imports before it counts as started: it stays
# light (no model or validation stack), so a run starts seconds sooner and "nothing to do" ends fast.
# The pipeline is imported only when there is something to train.

DATA_LANDED_EVENT = "driftloop.data.landed"


# A tick waits up to this many times ingest.stable_s for files still being written, then leaves them to the next.
_SETTLE_ROUNDS = 3


def resource_id(cfg: DriftloopConfig, kind: str) -> str:
    """The event resource id of this project's landing folder (``incoming``) or drift check (``drift``)."""
    return f"driftloop.{kind}.{cfg.project.name}"


def _resource(cfg: DriftloopConfig, kind: str) -> dict[str, str]:
    return {"prefect.resource.id": resource_id(cfg, kind), "prefect.resource.name": cfg.project.name}


@task(name="take-landed-files", retries=1, retry_delay_seconds=2)
def take_landed_files(cfg: DriftloopConfig) -> list[IngestOutcome]:
    """Ingest the files in data/incoming/ whose size and mtime have settled; wait a little for the others."""
    from driftloop.tasks.landing import ingest_paths

    catalog = Catalog.from_config(cfg)
    log = get_run_logger()
    outcomes: dict[str, IngestOutcome] = {}
    deadline = time.monotonic() + _SETTLE_ROUNDS * cfg.ingest.stable_s
    while True:
        batch = ingest_paths(catalog, cfg, wait=False, remember=True)  # a changing file waits for the next tick
        outcomes.update({o.source: o for o in batch})
        pending = [o.source for o in batch if o.status == "pending"]
        wait = _until_stable(pending, cfg.ingest.stable_s)
        if not pending or time.monotonic() + wait > deadline:
            break
        log.info("waiting %.2fs for %d file(s) still being written (ingest.stable_s)", wait, len(pending))
        time.sleep(wait)
    for o in outcomes.values():
        if o.status in ("quarantined", "failed"):
            log.warning("%s %s: %s", o.status, o.source, o.reason)
        elif o.status == "pending":
            log.info("%s", o.reason)
        else:
            log.info("%s %s -> snapshot %s (%s rows, %s)", o.status, o.source, o.snapshot_id, o.rows, o.role)
        if o.warning:
            log.warning("%s", o.warning)
    return list(outcomes.values())


def _until_stable(paths: list[str], stable_s: float) -> float:
    """Seconds until the first of these files has gone ``stable_s`` without a change (a landed file is
    often older than that already; waiting a whole interval each round would add it to every landing)."""
    ages = []
    for path in paths:
        try:
            ages.append(time.time() - os.stat(path).st_mtime)
        except OSError:
            ages.append(0.0)
    return min((max(stable_s - age, 0.0) + 0.05 for age in ages), default=0.0)


@flow(name="driftloop-watch-incoming", log_prints=True)
def watch_incoming(config_path: str = "configs/sms_spam.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """Ingest whatever landed in data/incoming/; emit one ``driftloop.data.landed`` event if any is new.

    One tick at a time: a tick that finds another holding the landing lock does nothing (the served
    deployment also has a concurrency limit of 1). Whatever a file does wrong, it is quarantined or
    reported ``failed`` and this flow still completes.
    """
    cfg = load_config(config_path, overrides or [])
    catalog = Catalog.from_config(cfg)
    try:
        with file_lock(catalog.landing_lock_path, wait=False):
            known = {s.snapshot_id for s in catalog.snapshots()}
            outcomes = take_landed_files(cfg)
            # New = what the manifest gained, not what an attempt reported: a retried task sees its
            # first attempt's snapshots as already ingested.
            new = [s.snapshot_id for s in catalog.snapshots() if s.snapshot_id not in known]
    except BlockingIOError:
        print("another watcher tick holds the landing lock; this one leaves the folder to it")
        return {"skipped": True, "new_snapshots": [], "pending": [], "quarantined": [], "failed": []}
    if new:
        emit_event(
            event=DATA_LANDED_EVENT,
            resource=_resource(cfg, "incoming"),
            payload={"config_path": config_path, "snapshots": new},
        )
        print(f"{len(new)} new snapshot(s): emitted {DATA_LANDED_EVENT}")
    else:
        retry_lost_retrain(cfg, config_path)
    reconcile_summaries(cfg)

    def of(status: str) -> list[dict]:
        return [o.as_dict() for o in outcomes if o.status == status]

    return {
        "skipped": False,
        "new_snapshots": new,
        "pending": of("pending"),
        "quarantined": of("quarantined"),
        "failed": of("failed"),
    }


def current_plan(cfg: DriftloopConfig, now: datetime | None = None) -> RetrainPlan:
    """What a retrain run would do now, from the manifest and the last successful run."""
    catalog = Catalog.from_config(cfg)
    snaps = [SnapshotInfo(s.snapshot_id, s.role, s.rows) for s in catalog.snapshots()]
    return plan_retrain(snaps, catalog.latest_run(), now or datetime.now(UTC), cfg.service)


RETRAIN_FLOW = "driftloop-retrain"


@flow(name=RETRAIN_FLOW, log_prints=True)
def retrain(config_path: str = "configs/sms_spam.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """The one gate for every retrain: train on everything pending, or end COMPLETED with "nothing to do".

    Triggered (debounced) by ``driftloop.data.landed`` and ``driftloop.drift.detected``; the deployment
    runs one at a time. The run reads the manifest, not its trigger's payload, so a burst of triggers
    trains once. Inside the cooldown it schedules one run of its own deployment for the cooldown's end.
    """
    cfg = load_config(config_path, overrides or [])
    plan = current_plan(cfg)
    result: dict[str, Any] = plan.as_dict()
    print(f"retrain gate: {plan.action} ({plan.reason})")
    if plan.action == "defer" and plan.not_before is not None:
        result["follow_up_run"] = _schedule_follow_up(plan.not_before)
    if plan.action != "train":
        return result
    from driftloop.flows.pipeline import pipeline

    # The gate trains only on pending data (a drift event with nothing new ends 'nothing to do').
    summary = pipeline(config_path=config_path, overrides=overrides, trigger="data")
    result.update(run_id=summary.run_id, status=summary.status)
    return result


def _latest_retrain_state() -> str | None:
    """The state type of the latest retrain run; None when there is none or one is still on its way."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[RETRAIN_FLOW])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
    if not runs or runs[0].state is None or not runs[0].state.is_final():
        return None
    return runs[0].state.type.value


def reconcile_summaries(cfg: DriftloopConfig) -> list[str]:
    """Runs whose summary still says ``running`` but whose Prefect run ended CRASHED, FAILED or CANCELLED (a process
    killed outright writes nothing): their summary, report and the runs index say so. Returns their run ids."""
    from driftloop.flows.report import write_index, write_run_report

    catalog = Catalog.from_config(cfg)
    stale = [s for s in catalog.run_summaries() if s.status == "running" and s.prefect_flow_runs]
    if not stale:
        return []
    from prefect.client.orchestration import get_client

    ended = []
    with get_client(sync_client=True) as client:
        for summary in stale:
            try:
                states = [client.read_flow_run(flow_run_id).state for flow_run_id in summary.prefect_flow_runs]
            except Exception as err:  # noqa: BLE001 - the API is down or forgot the run: the next tick looks again
                print(f"could not read run {summary.run_id}'s Prefect state ({type(err).__name__}); later")
                continue
            lost = next((s for s in states if s is not None and s.is_final() and not s.is_completed()), None)
            if lost is None:
                continue
            summary.status = lost.type.value.lower()
            summary.error = f"Prefect ended the run {lost.type.value}: {lost.message or lost.name}"
            summary.write(catalog.run_dir(summary.run_id) / "summary.json")
            write_run_report(catalog, summary.run_id, cfg)
            ended.append(summary.run_id)
            print(f"run {summary.run_id} ended {lost.type.value} in Prefect; its summary and report say so now")
    if ended:
        write_index(catalog)
    return ended


def retry_lost_retrain(cfg: DriftloopConfig, config_path: str) -> bool:
    """Start the retrain again when the latest one ended CRASHED or FAILED and its data is still pending (a Prefect
    server restart, a killed worker): the service does not wait for the next file. Its training resumes from its
    checkpoint. Once per pending set at a time, with back-off (tasks/retrain_gate.py)."""
    from driftloop.atomic import write_json
    from driftloop.tasks.retrain_gate import retry_lost_retrain as decide

    catalog = Catalog.from_config(cfg)
    plan = current_plan(cfg)
    if plan.action != "train":
        return False
    try:
        latest = _latest_retrain_state()
    except Exception as err:  # noqa: BLE001 - the API is down: the next tick looks again
        print(f"could not read the latest retrain's state ({type(err).__name__}: {err}); the next tick looks again")
        return False
    try:
        retries = json.loads(catalog.retrain_retries_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        retries = {}
    retry, reason, record = decide(plan, latest, retries, datetime.now(UTC))
    if record != retries:
        write_json(catalog.retrain_retries_path, record)
    if retry:
        emit_event(
            event=DATA_LANDED_EVENT,
            resource=_resource(cfg, "incoming"),
            payload={"config_path": config_path, "snapshots": plan.pending, "retry": reason},
        )
        print(f"{reason}: emitted {DATA_LANDED_EVENT}")
    return retry


def _schedule_follow_up(when: datetime) -> str | None:
    """Schedule this deployment to run at ``when`` (once per time: an idempotency key); None outside a deployment."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import deployment
    from prefect.states import Scheduled

    if not deployment.id:
        print(f"not served: run the retrain again after {when.isoformat(timespec='seconds')}")
        return None
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters=deployment.parameters,
            state=Scheduled(scheduled_time=when),
            idempotency_key=f"driftloop-cooldown-{when.isoformat(timespec='seconds')}",
        )
    print(f"scheduled flow run {run.name} for {when.isoformat(timespec='seconds')}")
    return str(run.id)
