"""Drift detection between the data a model was trained on and data that landed since.

Three signals, each with a threshold in config:

- ``domain_auc``: a classifier tries to tell reference from current sentence embeddings
  (cross-validated ROC AUC). 0.5 means indistinguishable; near 1.0 means a new domain.
- ``label_psi``: population stability index of the weak-label class distribution, i.e. a
  shift of class priors (for the demo: a burst of spam).
- ``length_psi``: PSI of text length in characters, a cheap sanity signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from driftloop.config import DriftConfig

_EPS = 1e-4


@dataclass
class DriftReport:
    drifted: bool
    signals: dict[str, float]
    thresholds: dict[str, float]
    exceeded: list[str]
    reference_rows: int
    current_rows: int
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "signals": self.signals,
            "thresholds": self.thresholds,
            "exceeded": self.exceeded,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            **self.details,
        }


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two distributions given as counts or shares over the same bins."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref = np.clip(ref / max(ref.sum(), _EPS), _EPS, None)
    cur = np.clip(cur / max(cur.sum(), _EPS), _EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def binned_psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of a numeric feature, binned at the reference quantiles."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    return psi(np.histogram(reference, edges)[0], np.histogram(current, edges)[0])


def domain_auc(reference: np.ndarray, current: np.ndarray, *, seed: int, folds: int = 5) -> float:
    """Cross-validated ROC AUC of a linear classifier separating current from reference embeddings."""
    x = np.vstack([reference, current])
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    folds = int(min(folds, len(reference), len(current)))
    if folds < 2:
        return 0.5
    clf = LogisticRegression(max_iter=1000, class_weight="balanced", C=1.0)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(clf, x, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def detect_drift(
    *,
    reference_embeddings: np.ndarray,
    current_embeddings: np.ndarray,
    reference_labels: np.ndarray,
    current_labels: np.ndarray,
    reference_lengths: np.ndarray,
    current_lengths: np.ndarray,
    n_classes: int,
    cfg: DriftConfig,
    seed: int,
) -> DriftReport:
    """Compare current data with the reference on all three signals.

    Args:
        *_embeddings: one sentence embedding per row.
        *_labels: weak-label class index per row, -1 where every LF abstained (ignored).
        *_lengths: text length in characters per row.
    """
    if len(current_embeddings) < cfg.min_current_rows:
        raise ValueError(
            f"only {len(current_embeddings)} new rows; drift needs at least drift.min_current_rows="
            f"{cfg.min_current_rows} to say anything"
        )
    ref_counts = np.bincount(reference_labels[reference_labels >= 0], minlength=n_classes)
    cur_counts = np.bincount(current_labels[current_labels >= 0], minlength=n_classes)
    signals = {
        "domain_auc": round(domain_auc(reference_embeddings, current_embeddings, seed=seed), 4),
        "label_psi": round(psi(ref_counts, cur_counts), 4),
        "length_psi": round(binned_psi(reference_lengths, current_lengths), 4),
    }
    thresholds = {"domain_auc": cfg.max_domain_auc, "label_psi": cfg.max_label_psi, "length_psi": cfg.max_length_psi}
    exceeded = [name for name, value in signals.items() if value > thresholds[name]]
    return DriftReport(
        drifted=bool(exceeded),
        signals=signals,
        thresholds=thresholds,
        exceeded=exceeded,
        reference_rows=len(reference_embeddings),
        current_rows=len(current_embeddings),
        details={
            "reference_label_share": (ref_counts / max(ref_counts.sum(), 1)).round(4).tolist(),
            "current_label_share": (cur_counts / max(cur_counts.sum(), 1)).round(4).tolist(),
        },
    )
