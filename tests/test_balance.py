import pandas as pd
import pytest

from driftloop.config import BalanceConfig
from driftloop.tasks.balance import balance

LABELS = ["ham", "spam", "promo"]


@pytest.fixture
def frame():
    labels = ["ham"] * 12 + ["spam"] * 4 + ["promo"] * 2
    return pd.DataFrame(
        {
            "row_id": [f"r{i}" for i in range(len(labels))],
            "text": [f"t{i}" for i in range(len(labels))],
            "label": labels,
        }
    )


def test_undersample_caps_every_class(frame):
    res = balance(frame, BalanceConfig(strategy="undersample", target_ratio=1.0), LABELS, seed=0)
    assert res.before == {"ham": 12, "spam": 4, "promo": 2}
    assert res.after == {"ham": 2, "spam": 2, "promo": 2}
    assert set(res.frame["row_id"]) <= set(frame["row_id"]) and res.frame["row_id"].is_unique


def test_oversample_to_target_ratio_repeats_real_rows(frame):
    res = balance(frame, BalanceConfig(strategy="oversample", target_ratio=0.5), LABELS, seed=0)
    assert res.after == {"ham": 12, "spam": 6, "promo": 6}
    assert set(res.frame["row_id"]) == set(frame["row_id"])


def test_class_weight_keeps_rows_and_reports_weights(frame):
    res = balance(frame, BalanceConfig(strategy="class_weight"), LABELS, seed=0)
    assert res.after == res.before
    assert res.class_weights["promo"] == pytest.approx(18 / (3 * 2))
    assert res.report["class_weights"] == res.class_weights


def test_deterministic_and_input_untouched(frame):
    copy = frame.copy()
    a = balance(frame, BalanceConfig(strategy="oversample"), LABELS, seed=3).frame
    b = balance(frame, BalanceConfig(strategy="oversample"), LABELS, seed=3).frame
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(frame, copy)


def test_missing_label_column_and_empty_input():
    with pytest.raises(KeyError, match="label"):
        balance(pd.DataFrame({"text": ["a"]}), BalanceConfig(), LABELS, seed=0)
    with pytest.raises(ValueError, match="no labelled rows"):
        balance(pd.DataFrame({"text": [], "label": []}), BalanceConfig(), LABELS, seed=0)
