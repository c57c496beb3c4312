"""The retrain gate: given what has been ingested and the last successful run, decide what a retrain run does.

Every retrain (a data landing, a drift alarm, a manual trigger) goes through this one decision, so a burst
of triggers costs one training and the rest end with "nothing to do". Pure: no Prefect, no paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from driftloop.config import ServiceConfig
from driftloop.summary import RunSummary

GOLD_ROLES = ("gold_dev", "gold_test")
ROLES = ("unlabelled", *GOLD_ROLES)


@dataclass(frozen=True)
class SnapshotInfo:
    """What the gate needs to know of one raw snapshot."""

    snapshot_id: str
    role: str
    rows: int


@dataclass(frozen=True)
class RetrainPlan:
    """``train``: run the pipeline now; ``nothing``: end COMPLETED without training; ``defer``: the cooldown
    is on, so nothing now and a run is due at ``not_before``."""

    action: Literal["train", "nothing", "defer"]
    reason: str
    pending: list[str] = field(default_factory=list)
    new_rows: int = 0
    not_before: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"action": self.action, "reason": self.reason, "pending": self.pending, "new_rows": self.new_rows}
        out["not_before"] = self.not_before.isoformat(timespec="seconds") if self.not_before else None
        return out


def plan_retrain(
    snapshots: Iterable[SnapshotInfo],
    last_success: RunSummary | None,
    now: datetime,
    cfg: ServiceConfig,
) -> RetrainPlan:
    """Decide what a retrain run does with everything pending (not only what its trigger carried).

    Args:
        snapshots: every raw snapshot in the manifest.
        last_success: the last successful run's summary (its snapshots by role, ``finished_at``), or None.
        now: the current time (timezone-aware).
        cfg: the service section (``min_new_rows``, ``cooldown_s``).
    """
    snapshots = list(snapshots)
    roles_present = {s.role for s in snapshots}
    if last_success is None:
        missing = [r for r in ROLES if r not in roles_present]
        if missing:
            return RetrainPlan(
                "nothing",
                f"nothing to do: no {' or '.join(missing)} data yet; land files for every role "
                f"(gold files match data.role_patterns) and the first training starts",
            )
        pending = [s.snapshot_id for s in snapshots]
        rows = sum(s.rows for s in snapshots if s.role == "unlabelled")
        return RetrainPlan("train", "first training: no successful run yet", pending, rows)
    used = {sid for ids in last_success.data.snapshots.values() for sid in ids} if last_success.data else set()
    new = [s for s in snapshots if s.snapshot_id not in used]
    pending = [s.snapshot_id for s in new]
    new_rows = sum(s.rows for s in new if s.role == "unlabelled")
    # Any labelled data (gold sets, reviewed rows) is worth a retrain however small.
    new_gold = [s.snapshot_id for s in new if s.role != "unlabelled"]
    last_id = last_success.run_id
    if not new:
        return RetrainPlan("nothing", f"nothing to do: no data landed since run {last_id}")
    if new_rows < cfg.min_new_rows and not new_gold:
        return RetrainPlan(
            "nothing",
            f"nothing to do yet: {new_rows} new row(s) since run {last_id}, fewer than service.min_new_rows="
            f"{cfg.min_new_rows} (and no new labelled data); they stay pending and count toward the next retrain",
            pending,
            new_rows,
        )
    finished = _parse_time(last_success.finished_at)
    if cfg.cooldown_s and finished is not None:
        not_before = finished + timedelta(seconds=cfg.cooldown_s)
        if now < not_before:
            return RetrainPlan(
                "defer",
                f"cooldown: run {last_id} finished less than service.cooldown_s={cfg.cooldown_s}s ago; "
                f"{len(pending)} pending snapshot(s) are trained at {not_before.isoformat(timespec='seconds')}",
                pending,
                new_rows,
                not_before,
            )
    what = f"{new_rows} new row(s)" + (f" and {len(new_gold)} new labelled snapshot(s)" if new_gold else "")
    return RetrainPlan("train", f"{what} since run {last_id}", pending, new_rows)


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


#: Prefect states a retrain can end in that leave its data untrained.
LOST_STATES = ("CRASHED", "FAILED")
#: A retry of one pending set waits this long after the previous one, doubled each time, at most this many times.
RETRY_BASE_S, RETRY_MAX = 60.0, 3


def pending_key(pending: Iterable[str]) -> str:
    """One name for a set of pending snapshots: a retry is counted per set, so new data starts afresh."""
    return ",".join(sorted(pending))


def retry_lost_retrain(
    plan: RetrainPlan, latest_state: str | None, retries: Mapping[str, Any], now: datetime
) -> tuple[bool, str, dict[str, Any]]:
    """Whether the service should start the retrain again: the latest retrain ended CRASHED or FAILED (a server
    restart, a killed worker) and its data is still pending. Once per pending set at a time, with back-off
    (``RETRY_BASE_S`` doubled per try, at most ``RETRY_MAX`` tries).

    Args:
        plan: what a retrain would do now (:func:`plan_retrain`).
        latest_state: the Prefect state type of the retrain deployment's latest run; None: no run, or one that is
            scheduled, pending or running (a retrain is coming anyway).
        retries: the record so far, ``{pending key: {"tries": n, "last": iso time}}``.

    Returns:
        (retry, reason, the record to keep).
    """
    key = pending_key(plan.pending)
    record = {k: v for k, v in retries.items() if k == key}  # older sets were trained or superseded
    if plan.action != "train" or latest_state not in LOST_STATES:
        return False, f"nothing to retry (gate: {plan.action}; latest retrain: {latest_state or 'none'})", record
    tries = int(record.get(key, {}).get("tries", 0))
    if tries >= RETRY_MAX:
        return False, f"the retrain of this pending data ended {latest_state} {tries} times; not retrying again", record
    last = record.get(key, {}).get("last")
    wait = RETRY_BASE_S * 2 ** max(tries - 1, 0) if tries else 0.0
    if last is not None and now < datetime.fromisoformat(last) + timedelta(seconds=wait):
        return False, f"retry {tries + 1} waits until {wait:.0f}s after the last one", record
    record[key] = {"tries": tries + 1, "last": now.isoformat(timespec="seconds")}
    reason = (
        f"the latest retrain ended {latest_state} with {len(plan.pending)} snapshot(s) still pending: retry {tries + 1}"
    )
    return True, reason, record
