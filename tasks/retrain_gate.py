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
    last_success: Mapping[str, Any] | None,
    now: datetime,
    cfg: ServiceConfig,
) -> RetrainPlan:
    """Decide what a retrain run does with everything pending (not only what its trigger carried).

    Args:
        snapshots: every raw snapshot in the manifest.
        last_success: the last successful run's summary (``data.snapshots`` by role, ``finished_at``), or None.
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
    used = {sid for ids in (last_success.get("data", {}).get("snapshots") or {}).values() for sid in ids}
    new = [s for s in snapshots if s.snapshot_id not in used]
    pending = [s.snapshot_id for s in new]
    new_rows = sum(s.rows for s in new if s.role == "unlabelled")
    # Any labelled data (gold sets, reviewed rows) is worth a retrain however small.
    new_gold = [s.snapshot_id for s in new if s.role != "unlabelled"]
    last_id = last_success.get("run_id", "?")
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
    finished = _parse_time(last_success.get("finished_at"))
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
