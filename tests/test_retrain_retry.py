"""A retrain that ended CRASHED or FAILED with its data still pending is started again by the service, once per
pending set at a time, with back-off (issue 33): the decision, pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftloop.tasks.retrain_gate import RETRY_BASE_S, RETRY_MAX, RetrainPlan, pending_key, retry_lost_retrain

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TRAIN = RetrainPlan("train", "2 new snapshots", pending=["b", "a"], new_rows=300)


@pytest.mark.parametrize(
    "plan, latest, retry",
    [
        (TRAIN, "CRASHED", True),
        (TRAIN, "FAILED", True),
        (TRAIN, "COMPLETED", False),  # the gate ran and decided; the next landing brings the next run
        (TRAIN, None, False),  # a retrain is scheduled, pending or running already
        (RetrainPlan("nothing", "nothing new"), "CRASHED", False),  # the data was trained after all
        (RetrainPlan("defer", "cooldown"), "CRASHED", False),
    ],
)
def test_only_a_lost_retrain_with_pending_data_is_retried(plan, latest, retry):
    assert retry_lost_retrain(plan, latest, {}, NOW)[0] is retry


def test_retries_back_off_stop_and_start_afresh_for_new_data():
    record: dict = {}
    now = NOW
    for attempt in range(1, RETRY_MAX + 1):
        retry, reason, record = retry_lost_retrain(TRAIN, "CRASHED", record, now)
        assert retry and f"retry {attempt}" in reason and record[pending_key(["a", "b"])]["tries"] == attempt
        too_soon, why, _ = retry_lost_retrain(TRAIN, "CRASHED", record, now + timedelta(seconds=1))
        assert not too_soon and ("waits" in why or attempt == RETRY_MAX)
        now += timedelta(seconds=RETRY_BASE_S * 2 ** (attempt - 1))
    assert retry_lost_retrain(TRAIN, "CRASHED", record, now + timedelta(days=1))[:2] == (
        False,
        f"the retrain of this pending data ended CRASHED {RETRY_MAX} times; not retrying again",
    )
    fresh = RetrainPlan("train", "new data", pending=["a", "b", "c"], new_rows=450)
    retry, _, kept = retry_lost_retrain(fresh, "CRASHED", record, now)
    assert retry and list(kept) == ["a,b,c"]  # the old set's record is dropped with it
