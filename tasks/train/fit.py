"""What every fitting procedure shares: the dev metric it selects on and the outcome it reports.

Two procedures fit a model: :class:`~driftloop.tasks.train.loop.GradientLoop` (every method with
trainable weights) and :class:`~driftloop.tasks.train.feature.FeatureHeadFit` (method ``feature``).
Both take a :class:`FitInputs` and return a :class:`FitOutcome` from ``run()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from driftloop.config import TrainConfig
from driftloop.tasks.train.classifier import TextClassifier


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Macro-F1 over all ``k`` classes (absent classes count as 0, as in scikit-learn with labels=range(k))."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=list(range(k)), average="macro", zero_division=0))


@dataclass
class FitInputs:
    """Everything a fitting procedure needs, prepared by :func:`~driftloop.tasks.train.trainer.train`.

    ``targets`` (n, k) and ``weights`` (n,) are aligned with ``train_df``; ``dev_codes`` with ``dev_df``.
    """

    classifier: TextClassifier
    cfg: TrainConfig
    train_df: pd.DataFrame
    dev_df: pd.DataFrame
    targets: np.ndarray
    weights: np.ndarray
    dev_codes: np.ndarray
    seed: int
    fingerprint: str


@dataclass
class FitOutcome:
    """What a fitting procedure reports; the classifier holds the selected (best) weights afterwards."""

    epochs: float
    steps: int
    samples_per_s: float
    best_metric: float
    best_step: int
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_step: int | None = None


class Fit(Protocol):
    """A fitting procedure: ``run()`` fits the classifier in place and reports."""

    def run(self) -> FitOutcome: ...
