"""Turning an LF label matrix into class probabilities: majority vote, accuracy-weighted vote, Snorkel's LabelModel.

All three are wrapped in one picklable :class:`Aggregator` that also carries the calibration temperature, so the
pool, the gold test set and augmentation's label check see the same calibrated weak labeler.

- ``majority_vote``: Laplace-smoothed vote shares ((votes + 1) / (n_votes + k)); no gold labels used.
- ``weighted_vote``: each LF's precision ``a`` on the gold rows it votes on (shrunk towards ``prior_accuracy``
  by ``prior_strength`` pseudo-votes) is its posterior for the class it votes; votes combine naive-Bayes style.
  The accuracies come from gold rows, not from LF agreements, so it needs no overlap between LFs (Snorkel's
  LabelModel does).
- ``label_model``: Snorkel's LabelModel, fitted on the pool.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from snorkel.labeling.model import LabelModel

from driftloop.tasks.calibration import apply_temperature
from driftloop.tasks.lf import ABSTAIN

AggregatorKind = Literal["label_model", "majority_vote", "weighted_vote"]
AGGREGATORS: tuple[AggregatorKind, ...] = ("label_model", "weighted_vote", "majority_vote")


@dataclass(frozen=True)
class Aggregator:
    """A fitted weak labeler: how votes become probabilities, then a temperature."""

    kind: AggregatorKind
    cardinality: int
    class_prior: tuple[float, ...]
    lf_accuracy: tuple[float, ...] | None = None
    label_model: LabelModel | None = None
    temperature: float = 1.0

    def raw_proba(self, L: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities (n, k) for rows with at least one vote (callers filter all-abstain rows)."""
        L = np.asarray(L)
        if self.kind == "label_model":
            if self.label_model is None:
                raise RuntimeError("a label_model aggregator needs its fitted LabelModel")
            return self.label_model.predict_proba(L)
        if self.kind == "majority_vote":
            counts = vote_counts(L, self.cardinality)
            return (counts + 1.0) / (counts.sum(axis=1, keepdims=True) + self.cardinality)
        if self.lf_accuracy is None:
            raise RuntimeError("a weighted_vote aggregator needs lf_accuracy")
        return weighted_vote_proba(L, np.asarray(self.lf_accuracy), np.asarray(self.class_prior))

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (n, k)."""
        probs = self.raw_proba(L)
        return probs if self.temperature == 1.0 else apply_temperature(probs, self.temperature)

    def with_temperature(self, temperature: float) -> Aggregator:
        return replace(self, temperature=float(temperature))


def vote_counts(L: np.ndarray, k: int) -> np.ndarray:
    """(n, k) number of LF votes per class."""
    counts = np.zeros((len(L), k), dtype=float)
    for c in range(k):
        counts[:, c] = (L == c).sum(axis=1)
    return counts


def weighted_vote_proba(L: np.ndarray, accuracy: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Naive-Bayes combination of each voting LF's dev precision: P(y | votes) ∝ P(y) ∏_j P(y | vote_j) / P(y).

    An LF that votes class c is right with probability ``accuracy[j]`` (its dev precision, which already holds
    the class prior); its remaining mass goes to the other classes in proportion to the prior. One vote alone
    gives exactly that LF's precision, so a rare class's own LF is not outvoted by the prior, and a second
    agreeing vote sharpens the label.
    """
    n = len(L)
    log_prior = np.log(prior)
    scores = np.tile(log_prior, (n, 1))
    for j in range(L.shape[1]):
        votes = L[:, j]
        rows = np.flatnonzero(votes != ABSTAIN)
        if rows.size == 0:
            continue
        c = votes[rows]
        a = accuracy[j]
        # log P(y|vote) - log P(y) for y != c, then the voted class's own term.
        rest = np.log((1.0 - a) / (1.0 - prior[c]))
        scores[rows] += rest[:, None]
        scores[rows, c] += np.log(a) - log_prior[c] - rest
    scores -= scores.max(axis=1, keepdims=True)
    out = np.exp(scores)
    return out / out.sum(axis=1, keepdims=True)


def lf_accuracies(
    L: np.ndarray, y: np.ndarray, k: int, *, prior_accuracy: float, prior_strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each LF's shrunk accuracy on the gold rows it votes on, and how many gold votes it had.

    Clipped to (1/k, 0.99): an LF no better than chance gets (almost) no weight, and none is infallible.
    """
    voted = L != ABSTAIN
    correct = ((L == y[:, None]) & voted).sum(axis=0).astype(float)
    n = voted.sum(axis=0).astype(float)
    acc = (correct + prior_accuracy * prior_strength) / (n + prior_strength)
    return np.clip(acc, 1.0 / k + 1e-3, 0.99), n


def fit_weighted_vote(
    L_gold: np.ndarray, y_gold: np.ndarray, prior: np.ndarray, *, prior_accuracy: float, prior_strength: float
) -> Aggregator:
    k = len(prior)
    acc, _ = lf_accuracies(L_gold, y_gold, k, prior_accuracy=prior_accuracy, prior_strength=prior_strength)
    return Aggregator(
        kind="weighted_vote",
        cardinality=k,
        class_prior=tuple(float(p) for p in prior),
        lf_accuracy=tuple(float(a) for a in acc),
    )


def out_of_fold_weighted_vote(
    L_gold: np.ndarray,
    y_gold: np.ndarray,
    prior: np.ndarray,
    *,
    prior_accuracy: float,
    prior_strength: float,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Weighted-vote probabilities for each gold row from accuracies estimated on the other folds.

    The comparison with the label model and the majority vote must not score the weighted vote on the very rows
    its accuracies came from.
    """
    n = len(y_gold)
    probs = np.empty((n, len(prior)))
    if n < 2 * folds:
        folds = max(2, n // 2) if n >= 4 else 1
    if folds == 1:
        agg = fit_weighted_vote(L_gold, y_gold, prior, prior_accuracy=prior_accuracy, prior_strength=prior_strength)
        return agg.raw_proba(L_gold)
    order = np.random.default_rng(seed).permutation(n)
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part, assume_unique=True)
        agg = fit_weighted_vote(
            L_gold[rest], y_gold[rest], prior, prior_accuracy=prior_accuracy, prior_strength=prior_strength
        )
        probs[part] = agg.raw_proba(L_gold[part])
    return probs


def describe(agg: Aggregator, lf_names: list[str]) -> dict[str, Any]:
    """JSON-able description for the run summary."""
    out: dict[str, Any] = {"kind": agg.kind, "temperature": round(agg.temperature, 6)}
    if agg.lf_accuracy is not None:
        out["lf_accuracy"] = {name: round(a, 4) for name, a in zip(lf_names, agg.lf_accuracy, strict=True)}
    return out


def label_model_arrays(label_model: LabelModel) -> dict[str, np.ndarray]:
    """A fitted label model as plain arrays (its weights ``mu`` and class balance ``p``), to save without pickle."""
    return {
        "mu": label_model.mu.detach().cpu().numpy(),
        "p": np.asarray(label_model.p, dtype=float),
        "cardinality": np.asarray(label_model.cardinality),
        "coverage": np.asarray(label_model.coverage, dtype=float),  # get_weights() reads it
    }


def label_model_from_arrays(arrays: dict[str, np.ndarray]) -> LabelModel:
    """Rebuild a Snorkel LabelModel from ``label_model_arrays``; it predicts exactly as the one that was saved."""
    k = int(arrays["cardinality"])
    mu = np.asarray(arrays["mu"])
    label_model = LabelModel(cardinality=k, verbose=False)
    # What fit() sets up before estimating mu: the LF count and the (dependency-free) clique tree.
    label_model._set_constants(np.zeros((1, mu.shape[0] // k), dtype=int))
    label_model._create_tree()
    # Sets the prior p and the diagonal P that get_weights() reads.
    label_model._set_class_balance(list(np.asarray(arrays["p"], dtype=float)), None)
    label_model.mu = torch.nn.Parameter(torch.from_numpy(mu))
    if "coverage" in arrays:
        label_model.coverage = np.asarray(arrays["coverage"], dtype=float)
    return label_model


def aggregator_arrays(agg: Aggregator) -> dict[str, np.ndarray]:
    """An aggregator as plain arrays (no pickle); ``aggregator_from_arrays`` rebuilds it exactly."""
    out = {
        "kind": np.asarray(agg.kind),
        "cardinality": np.asarray(agg.cardinality),
        "class_prior": np.asarray(agg.class_prior, dtype=float),
        "lf_accuracy": np.asarray(agg.lf_accuracy if agg.lf_accuracy is not None else [], dtype=float),
        "temperature": np.asarray(agg.temperature, dtype=float),
    }
    if agg.label_model is not None:
        out.update({f"label_model.{k}": v for k, v in label_model_arrays(agg.label_model).items()})
    return out


def aggregator_from_arrays(arrays: dict[str, np.ndarray]) -> Aggregator:
    kind = str(np.asarray(arrays["kind"]))
    if kind not in AGGREGATORS:
        raise ValueError(f"saved weak labeler has unknown kind {kind!r}; rerun the weak-label step")
    lm_keys = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("label_model.")}
    accuracy = np.asarray(arrays["lf_accuracy"], dtype=float)
    return Aggregator(
        kind=kind,  # type: ignore[arg-type]
        cardinality=int(arrays["cardinality"]),
        class_prior=tuple(float(p) for p in np.asarray(arrays["class_prior"])),
        lf_accuracy=tuple(float(a) for a in accuracy) if accuracy.size else None,
        label_model=label_model_from_arrays(lm_keys) if lm_keys else None,
        temperature=float(arrays["temperature"]),
    )
