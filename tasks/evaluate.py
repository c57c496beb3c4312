"""Evaluate a classifier on the gold test set: accuracy, F1s, per-class scores, calibration, baselines.

Metrics come from scikit-learn (``evaluate.load`` needs the hub). Synthetic rows never count:
rows with ``is_synthetic`` set are dropped before any metric, and the count is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from driftloop.config import EvaluateConfig
from driftloop.errors import EvaluationInputError


@dataclass
class ClassificationMetrics:
    """Scores of one predictor on the gold test rows."""

    accuracy: float
    macro_f1: float
    micro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    ece: float | None = None


@dataclass
class EvaluationResult:
    """Test-set evaluation of the end model, the label model and a majority-class baseline."""

    accuracy: float
    macro_f1: float
    micro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    ece: float
    ece_bins: int
    labels: list[str]
    n_test: int
    n_synthetic_excluded: int
    majority_baseline: dict[str, Any]
    label_model: dict[str, Any] | None = None
    plots: dict[str, str] = field(default_factory=dict)

    @property
    def label_model_accuracy(self) -> float | None:
        return None if self.label_model is None else self.label_model["accuracy"]

    @property
    def beats_label_model(self) -> bool | None:
        return None if self.label_model is None else self.macro_f1 > self.label_model["macro_f1"]

    @property
    def metrics(self) -> dict[str, Any]:
        """Everything as JSON-able data (metrics.json, the registry, the model card)."""
        return {
            **asdict(self),
            "label_model_accuracy": self.label_model_accuracy,
            "beats_label_model": self.beats_label_model,
        }

    def summary(self) -> dict[str, Any]:
        """The ``evaluation.*`` keys of the run summary."""
        return {
            "accuracy": round(self.accuracy, 6),
            "macro_f1": round(self.macro_f1, 6),
            "micro_f1": round(self.micro_f1, 6),
            "per_class": self.per_class,
            "ece": round(self.ece, 6),
            "label_model_accuracy": None if self.label_model is None else round(self.label_model["accuracy"], 6),
            "label_model_macro_f1": None if self.label_model is None else round(self.label_model["macro_f1"], 6),
            "majority_accuracy": round(self.majority_baseline["accuracy"], 6),
            "majority_macro_f1": round(self.majority_baseline["macro_f1"], 6),
            "confusion_matrix": self.confusion_matrix,
            "beats_label_model": self.beats_label_model,
            "n_test": self.n_test,
            "n_synthetic_excluded": self.n_synthetic_excluded,
        }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """ECE: bin by top-class confidence in equal-width bins, average |accuracy - confidence| by bin size."""
    conf, correct, edges = _calibration_inputs(probs, y_true, n_bins)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def _calibration_inputs(
    probs: np.ndarray, y_true: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(float)
    return conf, correct, np.linspace(0.0, 1.0, n_bins + 1)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], probs: np.ndarray | None = None, ece_bins: int = 15
) -> ClassificationMetrics:
    """Accuracy, macro/micro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    idx = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    per_class = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=idx, average="macro", zero_division=0)),
        micro_f1=float(f1_score(y_true, y_pred, labels=idx, average="micro", zero_division=0)),
        per_class=per_class,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        ece=None if probs is None else expected_calibration_error(probs, y_true, ece_bins),
    )


def _check_probs(probs: Any, n_rows: int, k: int, name: str, allow_abstain: bool = False) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (n_rows, k):
        raise EvaluationInputError(
            f"{name} has shape {probs.shape}; expected ({n_rows}, {k}): one row per test row "
            "(in test-table order), one column per label"
        )
    bad = ~np.isfinite(probs)
    # The label model marks "every LF abstained" with an all-NaN row; anything else non-finite is a bug.
    if bad.any() and not (allow_abstain and (bad.all(axis=1) | ~bad.any(axis=1)).all()):
        raise EvaluationInputError(
            f"{name} holds NaN or inf values" + (" (only whole all-NaN rows mean abstain)" if allow_abstain else "")
        )
    return probs


def evaluate(
    test_df: pd.DataFrame,
    labels: Sequence[str],
    probs: np.ndarray,
    cfg: EvaluateConfig | None = None,
    *,
    label_model_probs: np.ndarray | None = None,
    plots_dir: str | Path | None = None,
) -> EvaluationResult:
    """Score the end model (and the label model) on the gold rows of ``test_df``.

    Args:
        test_df: gold test table with ``text`` and ``label``; rows with ``is_synthetic`` true are dropped.
        labels: the label set in class-index order.
        probs: end-model class probabilities, one row per ``test_df`` row (synthetic rows included, they are
            dropped together with their rows).
        label_model_probs: the label model's probabilities on the same rows, for the comparison.
        plots_dir: where to write ``confusion_matrix.png`` and ``reliability.png`` (skipped when None or
            ``cfg.plots`` is false).
    """
    cfg = cfg or EvaluateConfig()
    labels = list(labels)
    for column in ("text", "label"):
        if column not in test_df.columns:
            raise EvaluationInputError(f"test table lacks column {column!r}; it has {list(test_df.columns)}")
    probs = _check_probs(probs, len(test_df), len(labels), "probs")
    lm_probs = (
        None
        if label_model_probs is None
        else _check_probs(label_model_probs, len(test_df), len(labels), "label_model_probs", allow_abstain=True)
    )
    gold = np.ones(len(test_df), dtype=bool)
    if "is_synthetic" in test_df.columns:
        gold = ~test_df["is_synthetic"].fillna(False).astype(bool).to_numpy()
    if not gold.any():
        raise EvaluationInputError("test table has no gold rows (all are synthetic or it is empty)")
    frame = test_df.loc[gold]
    probs = probs[gold]
    y_true = pd.Index(labels).get_indexer(frame["label"].astype(str))
    if (y_true < 0).any():
        unknown = sorted(set(frame["label"].astype(str)[y_true < 0]))[:5]
        raise EvaluationInputError(f"test table has labels {unknown} outside data.labels {labels}")

    model_metrics = classification_metrics(y_true, probs.argmax(axis=1), labels, probs, cfg.ece_bins)
    # Constant prediction of the most frequent test class: the floor any useful model must clear.
    majority = int(np.bincount(y_true, minlength=len(labels)).argmax())
    label_model = None
    if lm_probs is not None:
        label_model = _label_model_metrics(y_true, lm_probs[gold], labels, majority, cfg.ece_bins)
    base = classification_metrics(y_true, np.full_like(y_true, majority), labels)
    majority_baseline = {"label": labels[majority], **asdict(base)}

    result = EvaluationResult(
        accuracy=model_metrics.accuracy,
        macro_f1=model_metrics.macro_f1,
        micro_f1=model_metrics.micro_f1,
        per_class=model_metrics.per_class,
        confusion_matrix=model_metrics.confusion_matrix,
        ece=float(model_metrics.ece),
        ece_bins=cfg.ece_bins,
        labels=labels,
        n_test=int(gold.sum()),
        n_synthetic_excluded=int((~gold).sum()),
        majority_baseline=majority_baseline,
        label_model=label_model,
    )
    if plots_dir is not None and cfg.plots:
        plots_dir = Path(plots_dir)
        result.plots = {
            "confusion_matrix": str(
                plot_confusion_matrix(np.array(result.confusion_matrix), labels, plots_dir / "confusion_matrix.png")
            ),
            "reliability": str(plot_reliability(probs, y_true, cfg.ece_bins, plots_dir / "reliability.png")),
        }
    return result


def _label_model_metrics(
    y_true: np.ndarray, lm_probs: np.ndarray, labels: list[str], fallback: int, ece_bins: int
) -> dict[str, Any]:
    """Label-model scores on every test row: where all LFs abstained (NaN row) it falls back to ``fallback``."""
    covered = np.isfinite(lm_probs).all(axis=1)
    pred = np.where(covered, np.nan_to_num(lm_probs).argmax(axis=1), fallback)
    metrics = asdict(classification_metrics(y_true, pred, labels))
    metrics["ece"] = expected_calibration_error(lm_probs[covered], y_true[covered], ece_bins) if covered.any() else None
    metrics["coverage"] = float(covered.mean())
    metrics["accuracy_on_covered"] = float((pred[covered] == y_true[covered]).mean()) if covered.any() else None
    metrics["abstain_fallback"] = labels[fallback]
    return metrics


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], target: Path) -> Path:
    """Confusion-matrix heat map (rows: gold, columns: predicted), written atomically as PNG."""
    from driftloop.tasks.plots import confusion_matrix_figure, save_figure  # matplotlib loads only when plotting

    save_figure(confusion_matrix_figure(matrix, list(labels)), target)
    return target


def plot_reliability(probs: np.ndarray, y_true: np.ndarray, n_bins: int, target: Path) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal, ECE in the title."""
    from driftloop.tasks.plots import reliability_figure, save_figure

    conf, correct, edges = _calibration_inputs(probs, y_true, n_bins)
    centers, accs = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            centers.append((lo + hi) / 2)
            accs.append(correct[in_bin].mean())
    ece = expected_calibration_error(probs, y_true, n_bins)
    save_figure(reliability_figure(centers, accs, n_bins, ece), target)
    return target


def band(values: Sequence[float], digits: int = 6) -> dict[str, Any]:
    """Mean, population std (ddof 0) and count of one score over seeds, rounded to ``digits``."""
    return {
        "mean": round(float(np.mean(values)), digits),
        "std": round(float(np.std(values)), digits),
        "n": len(values),
    }


def seed_band(per_seed: Sequence[dict[str, Any]], label_model_macro_f1: float | None = None) -> dict[str, Any]:
    """Mean and std over seeds of their gold test scores, and each seed's macro-F1 points over the label model.

    ``per_seed``: one record per seed with ``test_macro_f1`` and ``test_accuracy`` (other keys, such as ``seed``,
    ``dev_macro_f1`` and ``kept``, ride along). The std is the population std (ddof 0), as ``bench/bench_weak.py``
    reports it (:func:`band`).
    """
    f1s = [float(r["test_macro_f1"]) for r in per_seed]
    out: dict[str, Any] = {
        "seeds": [dict(r) for r in per_seed],
        "test_macro_f1": band(f1s),
        "test_accuracy": band([float(r["test_accuracy"]) for r in per_seed]),
    }
    if label_model_macro_f1 is not None:
        out["label_model_macro_f1"] = round(float(label_model_macro_f1), 6)
        out["points_over_label_model"] = band([100.0 * (f - label_model_macro_f1) for f in f1s])
    return out
