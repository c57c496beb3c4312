"""Gold dev rows that train as well as select, the gold-only baseline's record and the earned-its-keep verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.config import GoldRowsConfig, TrainConfig
from driftloop.tasks.gold_rows import compare_with_baselines, split_gold_dev, training_rows, with_gold_rows
from driftloop.tasks.registry import gold_only_note
from driftloop.tasks.train import build_targets

LABELS = ["ham", "spam"]


def _dev(n_ham: int = 40, n_spam: int = 10) -> pd.DataFrame:
    texts = [f"ham text {i}" for i in range(n_ham)] + [f"spam text {i}" for i in range(n_spam)]
    return pd.DataFrame({"row_id": [f"d{i}" for i in range(len(texts))], "text": texts,
                         "label": ["ham"] * n_ham + ["spam"] * n_spam})  # fmt: skip


def test_the_split_is_stratified_disjoint_and_covers_gold_dev():
    dev = _dev()
    split = split_gold_dev(dev, GoldRowsConfig(train_share=0.5), seed=42)
    assert split.train["label"].value_counts().to_dict() == {"ham": 20, "spam": 5}
    assert set(split.train["text"]).isdisjoint(split.held_out["text"])
    assert sorted([*split.train["text"], *split.held_out["text"]]) == sorted(dev["text"])


def test_a_row_keeps_its_side_when_gold_dev_grows_and_every_class_keeps_held_out_rows():
    cfg = GoldRowsConfig(train_share=0.5)
    small = split_gold_dev(_dev(40, 10), cfg, seed=42)
    grown = split_gold_dev(_dev(400, 100), cfg, seed=42)
    moved = set(small.held_out["text"]) & set(grown.train["text"])
    assert len(moved) <= 0.2 * len(small.held_out)  # a rank cut-off moves a few rows, never most of them
    one_spam = split_gold_dev(_dev(10, 1), GoldRowsConfig(train_share=0.9), seed=42)
    assert (one_spam.held_out["label"] == "spam").sum() == 1 and (one_spam.held_out["label"] == "ham").sum() >= 1
    assert split_gold_dev(_dev(), GoldRowsConfig(train_share=0.0), seed=42).train.empty


def test_gold_rows_train_on_their_one_hot_labels_with_their_weight():
    weak = pd.DataFrame({"text": ["a", "b"], "label": ["ham", "spam"], "label_probs": [[0.7, 0.3], [0.2, 0.8]],
                         "is_synthetic": [False, True]})  # fmt: skip
    gold = _dev(2, 1)
    table = with_gold_rows(weak, gold, GoldRowsConfig(weight=3.0))
    assert training_rows(table) == {"weak": 1, "synthetic": 1, "gold": 3}
    assert table["row_id"].dropna().str.startswith("gold:").all()
    targets, weights = build_targets(table, LABELS, TrainConfig.of(label_mode="soft"), {"ham": 1.0, "spam": 2.0})
    np.testing.assert_allclose(targets[:2], [[0.7, 0.3], [0.2, 0.8]], rtol=1e-6)
    np.testing.assert_allclose(targets[2:], [[1, 0], [1, 0], [0, 1]])
    # Row weight times the expected class weight under the target.
    np.testing.assert_allclose(weights, [1.3, 1.8, 3.0, 3.0, 6.0], rtol=1e-6)


@pytest.mark.parametrize(
    "end, gold_only, earned, best, points",
    [
        (0.97, {"macro_f1": 0.95, "accuracy": 0.98}, True, "label_model", 1.0),
        (0.95, {"macro_f1": 0.97, "accuracy": 0.99}, False, "gold_only", -2.0),
        (0.97, None, True, "label_model", 1.0),
    ],
)
def test_the_verdict_compares_with_the_better_baseline(end, gold_only, earned, best, points):
    out = compare_with_baselines({"macro_f1": end, "accuracy": 0.98}, {"macro_f1": 0.96, "accuracy": 0.97}, gold_only)
    assert (out["earned"], out["best_baseline"], out["points_over_best_baseline"]) == (earned, best, points)
    assert ("earned its keep" in out["verdict"]) is earned and out["verdict"].endswith("on gold test.")


def test_no_baseline_no_verdict():
    out = compare_with_baselines({"macro_f1": 0.9, "accuracy": 0.9}, None, None)
    assert out["earned"] is None and "nothing shows" in out["verdict"]


def test_promotion_notes_a_challenger_that_does_not_beat_the_gold_only_baseline():
    assert "does not beat the gold-only baseline" in gold_only_note({"macro_f1": 0.95, "gold_only_macro_f1": 0.96})
    assert gold_only_note({"macro_f1": 0.97, "gold_only_macro_f1": 0.96}) == ""
    assert gold_only_note({"macro_f1": 0.97}) == ""
