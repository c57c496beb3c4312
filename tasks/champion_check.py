"""Challenger against champion on the same gold rows today: every gold test set ever ingested, per class.

The registry's stored champion metrics were measured on the test sets that existed when the champion
was trained. A retrain that forgets a distribution the champion handled only shows up when both
models are scored on every gold test set now, set by set: a regression on an old set can hide
inside a gain on a new one when the sets are pooled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

_EPS = 1e-12


def metrics_per_test_set(test: pd.DataFrame, probs: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Accuracy, macro-F1 and per-class F1 on each gold test set (``snapshot_id``) separately.

    Classes absent from a set are left out of its per-class F1: a set without spam says nothing
    about spam.
    """
    if "snapshot_id" not in test.columns or "label" not in test.columns:
        raise KeyError(f"metrics_per_test_set needs 'snapshot_id' and 'label' columns; got {list(test.columns)}")
    if len(probs) != len(test):
        raise ValueError(f"got {len(probs)} probability rows for {len(test)} test rows")
    index = {name: i for i, name in enumerate(labels)}
    y = test["label"].map(index).to_numpy()
    pred = np.asarray(probs).argmax(axis=1)
    out: dict[str, dict[str, Any]] = {}
    for snapshot_id, rows in test.groupby("snapshot_id", sort=True).indices.items():
        present = sorted(set(y[rows].tolist()))
        per_class = f1_score(y[rows], pred[rows], labels=present, average=None, zero_division=0)
        out[str(snapshot_id)] = {
            "n": int(len(rows)),
            "accuracy": float(accuracy_score(y[rows], pred[rows])),
            "macro_f1": float(np.mean(per_class)),
            "per_class_f1": {labels[c]: float(f) for c, f in zip(present, per_class, strict=True)},
        }
    return out


def forgetting(
    challenger: Mapping[str, Mapping[str, Any]], champion: Mapping[str, Mapping[str, Any]], tolerance: float
) -> list[str]:
    """Every (test set, class) where the challenger's F1 is below the champion's by more than ``tolerance``."""
    regressions = []
    for snapshot_id in sorted(set(challenger) & set(champion)):
        ours, theirs = challenger[snapshot_id]["per_class_f1"], champion[snapshot_id]["per_class_f1"]
        for label in sorted(set(ours) & set(theirs)):
            drop = float(theirs[label]) - float(ours[label])
            if drop > tolerance + _EPS:
                regressions.append(
                    f"{label!r} on test set {snapshot_id} {float(theirs[label]):.4f} -> {float(ours[label]):.4f}"
                )
    return regressions
