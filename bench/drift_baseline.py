"""The drift detector driftloop shipped before issue 14, kept only as the benchmark's baseline.

Three signals against fixed thresholds: domain-classifier cross-validated ROC AUC > 0.75,
weak-label PSI > 0.2, text-length PSI > 0.25. No test, no batch-size awareness.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from driftloop.tasks.drift.stats import psi

MAX_DOMAIN_AUC, MAX_LABEL_PSI, MAX_LENGTH_PSI = 0.75, 0.2, 0.25


def binned_psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    return psi(np.histogram(reference, edges)[0], np.histogram(current, edges)[0])


def domain_auc(reference: np.ndarray, current: np.ndarray, *, seed: int, folds: int = 5) -> float:
    x = np.vstack([reference, current])
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    folds = int(min(folds, len(reference), len(current)))
    clf = LogisticRegression(max_iter=1000, class_weight="balanced", C=1.0)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(clf, x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def old_detect(
    ref_emb: np.ndarray,
    cur_emb: np.ndarray,
    ref_labels: np.ndarray,
    cur_labels: np.ndarray,
    ref_len: np.ndarray,
    cur_len: np.ndarray,
    n_classes: int,
    seed: int = 0,
) -> tuple[bool, dict[str, float]]:
    ref_counts = np.bincount(ref_labels[ref_labels >= 0], minlength=n_classes)
    cur_counts = np.bincount(cur_labels[cur_labels >= 0], minlength=n_classes)
    signals = {
        "domain_auc": domain_auc(ref_emb, cur_emb, seed=seed),
        "label_psi": psi(ref_counts, cur_counts),
        "length_psi": binned_psi(ref_len, cur_len),
    }
    drifted = (
        signals["domain_auc"] > MAX_DOMAIN_AUC
        or signals["label_psi"] > MAX_LABEL_PSI
        or signals["length_psi"] > MAX_LENGTH_PSI
    )
    return drifted, signals
