"""Calibration of weak labels: expected calibration error, reliability bins and temperature scaling.

A weak label's ``label_confidence`` is used as a threshold (``weak_label.min_confidence``, the training-set
gate's ``validation.min_label_confidence``) and as a soft target. Both only mean something when a confidence
of 0.8 is right about 80% of the time. Snorkel's LabelModel is often far from that: with LFs that barely
overlap it cannot estimate their accuracies and its outputs shrink towards the class prior (95% accurate at a
mean confidence of 0.43). A single temperature, fitted on the gold dev rows that have votes, fixes the scale
without changing any argmax; it is reported out of fold so the dev ECE is not measured on the rows it was fit on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from driftloop.tasks.evaluate import expected_calibration_error

__all__ = [
    "Calibration",
    "apply_temperature",
    "cross_fitted_ece",
    "expected_calibration_error",
    "fit_temperature",
    "is_flat",
    "reliability_bins",
]

# Bounds on the temperature: 0.1 turns a 2:1 vote share into 1000:1 (a tiny perfect dev set must not push
# every row to certainty); above 20 everything is uniform.
_T_BOUNDS = (0.1, 20.0)
_EPS = 1e-12


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it did on gold dev."""

    temperature: float
    ece_before: float
    ece_after: float
    ece_after_out_of_fold: float | None
    n_rows: int

    def summary(self) -> dict[str, Any]:
        return {
            "temperature": round(self.temperature, 6),
            "dev_ece_raw": round(self.ece_before, 6),
            "dev_ece_calibrated_in_sample": round(self.ece_after, 6),
            "dev_ece": None if self.ece_after_out_of_fold is None else round(self.ece_after_out_of_fold, 6),
            "calibration_rows": self.n_rows,
        }


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probabilities: softmax(log p / T). T < 1 sharpens, T > 1 flattens; the argmax never changes."""
    probs = np.asarray(probs, dtype=float)
    logits = np.log(np.clip(probs, _EPS, 1.0)) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def _nll(probs: np.ndarray, y: np.ndarray, temperature: float) -> float:
    # Targets smoothed by Laplace's rule: a dev set with no error says "(n+1)/(n+2) right", not "always right",
    # so a small perfect dev set cannot drive the temperature to its floor and every row to certainty.
    n, k = probs.shape
    eps = 1.0 / (n + 2)
    targets = np.full((n, k), eps / (k - 1))
    targets[np.arange(n), y] = 1.0 - eps
    log_p = np.log(np.clip(apply_temperature(probs, temperature), _EPS, 1.0))
    return float(-(targets * log_p).sum(axis=1).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the (Laplace-smoothed) negative log-likelihood of ``y`` (1.0 for < 2 rows)."""
    probs = np.asarray(probs, dtype=float)
    y = np.asarray(y, dtype=np.int64)
    if len(y) < 2:
        return 1.0
    # Search log T: the NLL is smooth and unimodal in it, and the bounds stay symmetric around T = 1.
    res = minimize_scalar(
        lambda log_t: _nll(probs, y, float(np.exp(log_t))),
        bounds=tuple(np.log(_T_BOUNDS)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(res.x))


def cross_fitted_ece(probs: np.ndarray, y: np.ndarray, n_bins: int, *, folds: int = 5, seed: int = 0) -> float | None:
    """ECE of temperature-scaled probabilities where each row's temperature was fitted on the other folds."""
    n = len(y)
    if n < 2 * folds:
        return None
    order = np.random.default_rng(seed).permutation(n)
    scaled = np.empty_like(np.asarray(probs, dtype=float))
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part, assume_unique=True)
        scaled[part] = apply_temperature(probs[part], fit_temperature(probs[rest], y[rest]))
    return expected_calibration_error(scaled, y, n_bins)


def calibrate(probs: np.ndarray, y: np.ndarray, n_bins: int, *, seed: int = 0) -> Calibration:
    """Fit a temperature on (dev) ``probs`` and gold ``y``; report ECE before, after and after out of fold."""
    probs = np.asarray(probs, dtype=float)
    y = np.asarray(y, dtype=np.int64)
    temperature = fit_temperature(probs, y)
    return Calibration(
        temperature=temperature,
        ece_before=expected_calibration_error(probs, y, n_bins) if len(y) else float("nan"),
        ece_after=expected_calibration_error(apply_temperature(probs, temperature), y, n_bins)
        if len(y)
        else float("nan"),
        ece_after_out_of_fold=cross_fitted_ece(probs, y, n_bins, seed=seed),
        n_rows=int(len(y)),
    )


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int) -> list[dict[str, float | int]]:
    """One record per non-empty equal-width confidence bin: its range, rows, mean confidence and accuracy."""
    probs = np.asarray(probs, dtype=float)
    if len(probs) == 0:
        return []
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            rows.append(
                {
                    "low": round(float(lo), 4),
                    "high": round(float(hi), 4),
                    "rows": int(in_bin.sum()),
                    "confidence": round(float(conf[in_bin].mean()), 4),
                    "accuracy": round(float(correct[in_bin].mean()), 4),
                }
            )
    return rows


def is_flat(probs: np.ndarray, *, margin: float = 0.05, share: float = 0.5) -> bool:
    """Whether most rows (more than ``share``) have a top probability within ``margin`` of uniform 1/k."""
    probs = np.asarray(probs, dtype=float)
    if probs.size == 0:
        return False
    k = probs.shape[1]
    return bool((probs.max(axis=1) < 1.0 / k + margin).mean() > share)
