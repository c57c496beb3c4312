"""No forgetting: earlier data is replayed, and a challenger is judged on every gold test set ever ingested."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.config import BalanceConfig, PromotionConfig
from driftloop.tasks.balance import balance, replay
from driftloop.tasks.champion_check import forgetting, metrics_per_test_set
from driftloop.tasks.registry import decide

LABELS = ["ham", "spam"]


def _pool(old_spam: int, old_ham: int, new_ham: int) -> pd.DataFrame:
    """An earlier snapshot with both classes, and a big new batch that holds ham only."""
    rows = [("old", "spam")] * old_spam + [("old", "ham")] * old_ham + [("new", "ham")] * new_ham
    frame = pd.DataFrame(rows, columns=["snapshot_id", "label"])
    row_ids = [f"{s}:{i}" for i, s in enumerate(frame["snapshot_id"])]
    return frame.assign(row_id=row_ids, text=row_ids)


def test_a_big_new_batch_cannot_crowd_out_what_the_champion_learned():
    pool = _pool(old_spam=50, old_ham=50, new_ham=900)
    # Without replay the new batch is 90% of the rows and spam 5%: the newest data alone teaches "all is ham".
    assert (pool["label"] == "spam").mean() == pytest.approx(0.05)
    replayed, report = replay(pool, {"old"}, max_new_share=0.5, seed=0)
    new_share = (replayed["snapshot_id"] == "new").mean()
    assert new_share == pytest.approx(0.5, abs=0.01) and report["replayed_rows"] == 800
    assert (replayed["label"] == "spam").mean() == pytest.approx(0.25, abs=0.03)
    assert set(replayed["row_id"]) == set(pool["row_id"])  # nothing dropped, earlier rows repeated
    balanced = balance(replayed, BalanceConfig(strategy="undersample"), LABELS, seed=0)
    assert balanced.after["spam"] > 0.8 * 0.5 * len(balanced.frame)  # spam survives balancing with real weight


@pytest.mark.parametrize(
    ("reference", "share", "expected_extra"),
    [(set(), 0.5, 0), ({"old"}, None, 0), ({"old", "new"}, 0.5, 0), ({"old"}, 0.95, 0)],
)
def test_replay_is_a_no_op_when_there_is_nothing_to_protect(reference, share, expected_extra):
    pool = _pool(old_spam=50, old_ham=50, new_ham=900)
    out, report = replay(pool, reference, share, seed=0)
    assert report["replayed_rows"] == expected_extra and len(out) == len(pool)


def _predictions(test: pd.DataFrame, wrong: pd.Series) -> np.ndarray:
    y = test["label"].map({name: i for i, name in enumerate(LABELS)}).to_numpy()
    pred = np.where(wrong.to_numpy(), 1 - y, y)
    return np.eye(2)[pred]


def test_each_gold_test_set_is_scored_on_its_own():
    test = pd.DataFrame({"snapshot_id": ["t1"] * 4 + ["t2"] * 2, "label": ["ham", "spam"] * 2 + ["ham", "ham"]})
    metrics = metrics_per_test_set(test, _predictions(test, pd.Series([False] * 6)), LABELS)
    assert set(metrics) == {"t1", "t2"} and metrics["t1"]["macro_f1"] == 1.0
    assert metrics["t2"]["per_class_f1"] == {"ham": 1.0}  # a set without spam says nothing about spam
    with pytest.raises(KeyError, match="snapshot_id"):
        metrics_per_test_set(test.drop(columns="snapshot_id"), np.zeros((6, 2)), LABELS)


def test_a_challenger_that_forgets_an_old_test_set_is_not_promoted():
    """Better on the pooled test set, yet worse on the older set: the per-set guard catches it."""
    old = pd.DataFrame({"snapshot_id": "old", "label": ["spam"] * 20 + ["ham"] * 20})
    new = pd.DataFrame({"snapshot_id": "new", "label": ["spam"] * 100 + ["ham"] * 100})
    test = pd.concat([old, new], ignore_index=True)
    champion_wrong = pd.Series([False] * 40 + [i % 5 == 0 for i in range(200)])  # weak on the new set only
    challenger_wrong = pd.Series([i < 8 for i in range(40)] + [False] * 200)  # perfect on new, forgets old spam
    champion, challenger = (
        metrics_per_test_set(test, _predictions(test, w), LABELS) for w in (champion_wrong, challenger_wrong)
    )
    pooled = {
        name: metrics_per_test_set(test.assign(snapshot_id="all"), _predictions(test, w), LABELS)["all"]
        for name, w in (("champion", champion_wrong), ("challenger", challenger_wrong))
    }
    assert pooled["challenger"]["macro_f1"] > pooled["champion"]["macro_f1"] + 0.05
    assert forgetting(challenger, champion, tolerance=0.02) == [
        "'ham' on test set old 1.0000 -> 0.8333",
        "'spam' on test set old 1.0000 -> 0.7500",
    ]
    cfg = PromotionConfig(margin=0.0, per_class_tolerance=0.02, test="none")
    measured_now = {**pooled["champion"], "test_sets": champion}  # the champion re-scored on today's sets
    promote, reason = decide(
        {**pooled["challenger"], "test_sets": challenger, "champion_now": measured_now},
        {"macro_f1": 0.5, "per_class_f1": {}},  # what the champion scored in its own day is not compared
        cfg,
        champion_version="v1",
    )
    assert not promote and "forgets what v1 handled" in reason and "test set old" in reason
