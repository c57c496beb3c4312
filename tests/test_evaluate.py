"""Evaluation on the gold test set: hand-checked metrics, ECE, plots, synthetic rows excluded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.config import EvaluateConfig
from driftloop.errors import EvaluationInputError
from driftloop.tasks.evaluate import evaluate, expected_calibration_error

LABELS = ["ham", "spam"]


@pytest.fixture()
def example() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    # 6 ham, 4 spam. The model gets one ham wrong (row 5) and one spam wrong (row 9).
    test = pd.DataFrame({"text": [f"t{i}" for i in range(10)], "label": ["ham"] * 6 + ["spam"] * 4})
    p_spam = np.array([0.1, 0.1, 0.2, 0.1, 0.3, 0.6, 0.9, 0.8, 0.9, 0.4])
    probs = np.column_stack([1 - p_spam, p_spam])
    # The label model says spam for everything except rows 0-2, so 3 ham rows + 0 spam rows are right.
    lm_spam = np.array([0.2, 0.2, 0.2, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7])
    return test, probs, np.column_stack([1 - lm_spam, lm_spam])


def test_metrics_match_a_hand_computed_example(example, tmp_path):
    test, probs, lm_probs = example
    result = evaluate(test, LABELS, probs, EvaluateConfig(), label_model_probs=lm_probs, plots_dir=tmp_path)
    # ham: TP 5, FP 1 (row 9), FN 1 (row 5); spam: TP 3, FP 1, FN 1
    assert result.accuracy == pytest.approx(0.8)
    assert result.per_class["ham"] == pytest.approx({"precision": 5 / 6, "recall": 5 / 6, "f1": 5 / 6, "support": 6})
    assert result.per_class["spam"] == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4})
    assert result.macro_f1 == pytest.approx((5 / 6 + 0.75) / 2)
    assert result.micro_f1 == pytest.approx(0.8)
    assert result.confusion_matrix == [[5, 1], [1, 3]]
    assert result.label_model_accuracy == pytest.approx(0.7)  # rows 0-2 ham right + rows 6-9 spam right
    assert result.majority_baseline["label"] == "ham" and result.majority_baseline["accuracy"] == pytest.approx(0.6)
    assert result.beats_label_model is True
    summary = result.summary()
    for key in ("accuracy", "macro_f1", "per_class", "label_model_accuracy"):
        assert key in summary
    for name in ("confusion_matrix", "reliability"):
        png = tmp_path / f"{name}.png"
        assert result.plots[name] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_ece_of_a_known_case():
    # All 10 predictions at confidence 0.9, 8 correct: one bin, |0.8 - 0.9| = 0.1.
    probs = np.tile([0.9, 0.1], (10, 1))
    y_true = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, y_true, 15) == pytest.approx(0.1)
    # Two bins: conf 0.6 (2 rows, 1 right) and conf 1.0 (2 rows, both right): 0.5*0.1 + 0.5*0 = 0.05.
    probs = np.array([[0.6, 0.4], [0.4, 0.6], [1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1]), 15) == pytest.approx(0.05)


def test_synthetic_rows_never_count(example):
    test, probs, lm_probs = example
    clean = evaluate(test, LABELS, probs, label_model_probs=lm_probs)
    # Three synthetic rows that the model gets wrong: metrics must not move.
    synthetic = pd.DataFrame({"text": ["s1", "s2", "s3"], "label": ["spam"] * 3})
    mixed = pd.concat([test.assign(is_synthetic=False), synthetic.assign(is_synthetic=True)], ignore_index=True)
    wrong = np.tile([0.99, 0.01], (3, 1))
    result = evaluate(mixed, LABELS, np.vstack([probs, wrong]), label_model_probs=np.vstack([lm_probs, wrong]))
    assert result.n_test == 10 and result.n_synthetic_excluded == 3
    assert result.accuracy == clean.accuracy and result.per_class == clean.per_class
    assert result.label_model_accuracy == clean.label_model_accuracy


def test_label_model_abstains_fall_back_to_the_majority_class(example):
    test, probs, lm_probs = example
    lm_probs = lm_probs.copy()
    lm_probs[[3, 6]] = np.nan  # every LF abstained on a ham row (3) and a spam row (6)
    lm = evaluate(test, LABELS, probs, label_model_probs=lm_probs).label_model
    assert lm["coverage"] == pytest.approx(0.8) and lm["abstain_fallback"] == "ham"
    # Row 3 turns right (ham fallback, was spam), row 6 turns wrong: 7 of 10 right overall, 6 of 8 covered.
    assert lm["accuracy"] == pytest.approx(0.7) and lm["accuracy_on_covered"] == pytest.approx(0.75)
    half_nan = lm_probs.copy()
    half_nan[0, 0] = np.nan
    with pytest.raises(EvaluationInputError, match="all-NaN rows"):
        evaluate(test, LABELS, probs, label_model_probs=half_nan)


def test_plots_can_be_switched_off(example, tmp_path):
    test, probs, _ = example
    result = evaluate(test, LABELS, probs, EvaluateConfig(plots=False), plots_dir=tmp_path)
    assert result.plots == {} and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t, p: (t.drop(columns=["label"]), p), "label"),
        (lambda t, p: (t, p[:-1]), "shape"),
        (lambda t, p: (t.assign(label="eggs"), p), "outside data.labels"),
        (lambda t, p: (t.assign(is_synthetic=True), p), "no gold rows"),
        (lambda t, p: (t, np.full_like(p, np.nan)), "NaN"),
    ],
)
def test_bad_inputs_are_rejected(example, mutate, message):
    test, probs, _ = example
    bad_test, bad_probs = mutate(test, probs)
    with pytest.raises(EvaluationInputError, match=message):
        evaluate(bad_test, LABELS, bad_probs)


def test_seed_band_reports_mean_std_and_points_over_the_label_model():
    from driftloop.tasks.evaluate import seed_band

    per_seed = [
        {"seed": 42, "test_macro_f1": 0.97, "test_accuracy": 0.98, "kept": True},
        {"seed": 43, "test_macro_f1": 0.95, "test_accuracy": 0.97, "kept": False},
    ]
    band = seed_band(per_seed, label_model_macro_f1=0.955)
    assert band["test_macro_f1"] == {"mean": 0.96, "std": 0.01, "n": 2}
    assert band["points_over_label_model"]["mean"] == pytest.approx(0.5)
    assert band["points_over_label_model"]["std"] == pytest.approx(1.0)
    assert band["seeds"] == per_seed and band["seeds"][0] is not per_seed[0]
    assert "points_over_label_model" not in seed_band(per_seed)
