"""Weak labeling: apply the LFs to the unlabelled pool and turn their votes into calibrated labels.

Three aggregators are compared on the gold dev rows that get at least one vote, every run: Snorkel's LabelModel,
the majority vote and a vote weighted by dev-estimated LF accuracies (scored out of fold); the best single LF is
reported beside them. ``weak_label.aggregator: auto`` uses the best dev macro-F1 of the three. When too few
covered pool rows carry two or more votes (``weak_label.min_overlap``), the LabelModel cannot estimate LF
accuracies from agreements and drifts to the class prior: ``auto`` then leaves it out and says so.

The chosen aggregator is calibrated on the same dev rows with one temperature (``driftloop.tasks.calibration``);
``label_confidence`` is then the chance the weak label is right, and ``weak_label.min_confidence`` (default: the
gate's ``validation.min_label_confidence``) drops only rows more likely wrong than that. Rows where every LF
abstains are dropped and counted (``abstained_rows``): they are the pool for self-training.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from snorkel.labeling import LFAnalysis
from snorkel.labeling.model import LabelModel, MajorityLabelVoter

from driftloop.config import WeakLabelConfig
from driftloop.tasks.aggregate import (
    Aggregator,
    aggregator_arrays,
    aggregator_from_arrays,
    describe,
    fit_weighted_vote,
    label_model_arrays,
    label_model_from_arrays,
    out_of_fold_weighted_vote,
)
from driftloop.tasks.calibration import Calibration, calibrate, expected_calibration_error, is_flat, reliability_bins
from driftloop.tasks.lf import ABSTAIN, TEXT_COLUMN, apply_lfs, load_lfs
from driftloop.tasks.weak_label_votes import (
    LABEL_COLUMN,
    LF,
    Votes,
    check_inputs,
    collect_votes,
    gold_rows,
    prior_class_balance,
)

__all__ = [
    "Aggregator",
    "WeakLabelResult",
    "aggregator_arrays",
    "aggregator_from_arrays",
    "apply_lfs",
    "label_checker",
    "label_model_arrays",
    "label_model_from_arrays",
    "load_lfs",
    "predict_proba",
    "weak_label",
]

log = logging.getLogger(__name__)

# Dev sets are a few hundred rows: 10 bins keep each bin's accuracy estimate meaningful.
ECE_BINS = 10
# Report how many pool rows each of these confidence thresholds would drop (gate advice).
CONFIDENCE_STEPS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class WeakLabelResult:
    """The weakly labelled pool, the per-LF analysis (indexed by LF name), run metrics and the fitted labelers.

    ``aggregator`` is the calibrated weak labeler in use; ``label_model`` Snorkel's LabelModel (always fitted,
    for the comparison). ``uncovered`` holds the pool rows no LF voted on (self-training's pool) and
    ``pool_votes``/``pool_probs`` the label matrix and calibrated probabilities of every pool row in input order
    (NaN rows where every LF abstained), for the review queue.
    """

    frame: pd.DataFrame
    analysis: pd.DataFrame
    metrics: dict[str, Any]
    label_model: LabelModel
    lfs: list[LF] = field(repr=False)
    labels: list[str] = field(default_factory=list)
    aggregator: Aggregator | None = None
    uncovered: pd.DataFrame | None = None
    pool_votes: np.ndarray | None = field(default=None, repr=False)
    pool_probs: np.ndarray | None = field(default=None, repr=False)
    dev_probs: np.ndarray | None = field(default=None, repr=False)
    dev_targets: np.ndarray | None = field(default=None, repr=False)

    def predict_proba(self, texts: pd.Series) -> np.ndarray:
        """Calibrated weak-label probabilities (n, k) for new texts; all-NaN rows where every LF abstains."""
        return predict_proba(texts, self.lfs, self.aggregator or self.label_model)


def predict_proba(texts: pd.Series, lfs: Sequence[LF], model: Aggregator | LabelModel) -> np.ndarray:
    """Weak-label probabilities (n, k) in label order; rows where every LF abstains are all NaN.

    ``model`` is an :class:`Aggregator` (calibrated, what the pipeline uses) or a bare Snorkel ``LabelModel``.
    NaN rather than Snorkel's uniform row, so a caller (augmentation checking a synthetic row's inherited label)
    cannot mistake "no evidence" for a confident or a tied prediction.
    """
    L = apply_lfs(pd.DataFrame({TEXT_COLUMN: pd.Series(texts).reset_index(drop=True)}), lfs)
    probs = np.full((len(L), model.cardinality), np.nan)
    covered = (L != ABSTAIN).any(axis=1)
    if covered.any():
        probs[covered] = model.predict_proba(L[covered])
    return probs


def weak_label(
    pool: pd.DataFrame,
    dev: pd.DataFrame,
    lfs: Sequence[LF],
    cfg: WeakLabelConfig,
    labels: list[str],
    seed: int,
    *,
    gate_min_confidence: float = 0.0,
    reviewed: pd.DataFrame | None = None,
    pool_votes: np.ndarray | None = None,
) -> WeakLabelResult:
    """Label the pool with the LFs and the best calibrated aggregator; report the comparison and LF analysis.

    Args:
        pool: unlabelled rows with a ``text`` column (other columns are kept).
        dev: gold rows with ``text`` and ``label`` (label names from ``labels``), at least two classes.
        lfs: resolved LFs from ``load_lfs``.
        cfg: the ``weak_label`` config section.
        labels: the label set in class-index order (``cfg.data.labels``).
        seed: seeds the LabelModel and the folds.
        gate_min_confidence: ``validation.min_label_confidence``; the confidence floor when
            ``cfg.min_confidence`` is unset.
        reviewed: human-reviewed rows (``text``, ``label``); they join dev for LF accuracy estimates, the
            aggregator comparison and calibration (never for early stopping or test).
        pool_votes: the LF votes of ``pool`` (rows x LFs, in ``lfs`` order) when already computed, e.g. cached per
            shard; the label model still fits on all of them.

    Returns:
        ``WeakLabelResult``: ``frame`` holds the labelled pool rows with ``label``, ``label_confidence``
        (calibrated top class probability) and ``label_probs`` (list in ``labels`` order).
    """
    lfs = list(lfs)
    check_inputs(pool, dev, lfs, labels)
    gold, y_gold = gold_rows(dev, reviewed, labels)
    class_balance, balance_source = prior_class_balance(cfg, y_gold[: len(dev)], labels)
    votes = collect_votes(pool, gold, y_gold, len(dev), lfs, len(labels), pool_votes)
    notes: list[str] = []
    choice = _aggregate(votes, class_balance, cfg, lfs, labels, seed, notes)
    threshold = cfg.min_confidence if cfg.min_confidence is not None else gate_min_confidence
    labelled = _label_pool(pool, votes, choice.aggregator, labels, threshold, notes)
    notes += _class_warnings(votes.L_pool, votes.L_gold, labelled.counts, labels)
    for note in notes:
        log.warning("weak labels: %s", note)
    metrics = _metrics(pool, votes, choice, labelled, cfg, lfs, labels, (class_balance, balance_source), notes, seed)
    analysis = _lf_analysis(votes.L_pool, votes.L_dev, votes.y_dev, lfs, labels, choice.label_model)
    if choice.aggregator.lf_accuracy is not None:
        analysis["weighted_vote_accuracy"] = list(choice.aggregator.lf_accuracy)
    return WeakLabelResult(
        frame=labelled.frame,
        analysis=analysis,
        metrics=metrics,
        label_model=choice.label_model,
        lfs=lfs,
        labels=list(labels),
        aggregator=choice.aggregator,
        uncovered=pool.iloc[np.flatnonzero(~votes.covered)].reset_index(drop=True),
        pool_votes=votes.L_pool,
        pool_probs=labelled.pool_probs,
        dev_probs=choice.dev_probs,
        dev_targets=votes.y_gc,
    )


@dataclass(frozen=True)
class _Choice:
    """The LabelModel fitted on the pool, the dev comparison of the aggregators and the calibrated one in use."""

    label_model: LabelModel
    overlap: float
    identifiable: bool
    chosen: str
    reason: str
    comparison: dict[str, dict[str, Any]]
    best_lf: dict[str, Any] | None
    aggregator: Aggregator
    calibration: Calibration | None
    dev_raw: np.ndarray
    dev_probs: np.ndarray


@dataclass(frozen=True)
class _Labelled:
    """The confident pool rows with their weak labels, and the calibrated probabilities behind them."""

    frame: pd.DataFrame
    pool_probs: np.ndarray
    confidence: np.ndarray
    confident: np.ndarray
    threshold: float
    counts: pd.Series


def _aggregate(
    votes: Votes,
    class_balance: np.ndarray,
    cfg: WeakLabelConfig,
    lfs: list[LF],
    labels: list[str],
    seed: int,
    notes: list[str],
) -> _Choice:
    """Fit the LabelModel on the pool, compare the aggregators on the gold rows with votes, calibrate the chosen."""
    k = len(labels)
    label_model = _fit_label_model(votes.L_pool, class_balance, cfg, seed)
    n_votes = (votes.L_pool[votes.covered] != ABSTAIN).sum(axis=1)
    overlap = float((n_votes > 1).mean())
    identifiable = overlap >= cfg.min_overlap
    if is_flat(label_model.predict_proba(votes.L_pool[votes.covered])):
        notes.append(
            f"the LabelModel's outputs are nearly flat (top probability within 0.05 of 1/{k} on most pool rows): "
            "it learned little from the LF agreements"
        )
    candidates = _candidate_probs(votes.L_gc, votes.y_gc, label_model, class_balance, cfg, seed)
    comparison = {name: _scores(votes.y_gc, probs, k) for name, probs in candidates.items()}
    best_lf = _best_single_lf(votes.L_gc, votes.y_gc, lfs, labels)
    chosen, reason = _choose(cfg, comparison, identifiable, overlap, notes)
    aggregator = _new_aggregator(chosen, votes, label_model, class_balance, cfg)
    aggregator, calibration, dev_raw, dev_probs = _calibrated(aggregator, chosen, candidates, votes, cfg, seed, k)
    return _Choice(
        label_model=label_model,
        overlap=overlap,
        identifiable=identifiable,
        chosen=chosen,
        reason=reason,
        comparison=comparison,
        best_lf=best_lf,
        aggregator=aggregator,
        calibration=calibration,
        dev_raw=dev_raw,
        dev_probs=dev_probs,
    )


def _new_aggregator(
    chosen: str, votes: Votes, label_model: LabelModel, class_balance: np.ndarray, cfg: WeakLabelConfig
) -> Aggregator:
    """The uncalibrated aggregator named ``chosen``; the weighted vote's LF accuracies come from the gold rows."""
    k = len(class_balance)
    if chosen == "label_model":
        return Aggregator("label_model", k, tuple(float(p) for p in class_balance), label_model=label_model)
    if chosen == "weighted_vote":
        return fit_weighted_vote(
            votes.L_gc,
            votes.y_gc,
            class_balance,
            prior_accuracy=cfg.lf_prior_accuracy,
            prior_strength=cfg.lf_prior_strength,
        )
    return Aggregator("majority_vote", k, tuple(float(p) for p in class_balance))


def _calibrated(
    aggregator: Aggregator,
    chosen: str,
    candidates: dict[str, np.ndarray],
    votes: Votes,
    cfg: WeakLabelConfig,
    seed: int,
    k: int,
) -> tuple[Aggregator, Calibration | None, np.ndarray, np.ndarray]:
    """The aggregator with its dev-fitted temperature, the calibration, and its raw and calibrated dev probs."""
    L_gc, y_gc = votes.L_gc, votes.y_gc
    dev_raw = aggregator.raw_proba(L_gc) if len(y_gc) else np.zeros((0, k))
    calibration = None
    if cfg.calibration == "temperature" and len(y_gc) >= 2:
        # Fit on the in-sample probabilities of the final aggregator; report the out-of-fold ECE of the
        # weighted vote's own out-of-fold probabilities (never scored on the rows it was estimated on).
        calibration = calibrate(candidates[chosen] if chosen == "weighted_vote" else dev_raw, y_gc, ECE_BINS, seed=seed)
        aggregator = aggregator.with_temperature(calibration.temperature)
    dev_probs = aggregator.predict_proba(L_gc) if len(y_gc) else dev_raw
    return aggregator, calibration, dev_raw, dev_probs


def _label_pool(
    pool: pd.DataFrame,
    votes: Votes,
    aggregator: Aggregator,
    labels: list[str],
    threshold: float,
    notes: list[str],
) -> _Labelled:
    """Weak-label the covered pool rows and keep those at least ``threshold`` confident."""
    covered = votes.covered
    pool_probs = np.full((len(pool), len(labels)), np.nan)
    pool_probs[covered] = aggregator.predict_proba(votes.L_pool[covered])
    probs = pool_probs[covered]
    if is_flat(probs):
        notes.append("the weak labels are nearly flat after calibration: the LFs barely separate the classes")
    confidence = probs.max(axis=1)
    confident = confidence >= threshold
    frame = pool.iloc[np.flatnonzero(covered)[confident]].reset_index(drop=True)
    kept_probs = probs[confident]
    frame[LABEL_COLUMN] = np.asarray(labels, dtype=object)[kept_probs.argmax(axis=1)]
    frame["label_confidence"] = kept_probs.max(axis=1).astype(float)
    frame["label_probs"] = kept_probs.tolist()
    counts = frame[LABEL_COLUMN].value_counts()
    return _Labelled(frame, pool_probs, confidence, confident, threshold, counts)


def _metrics(
    pool: pd.DataFrame,
    votes: Votes,
    choice: _Choice,
    labelled: _Labelled,
    cfg: WeakLabelConfig,
    lfs: list[LF],
    labels: list[str],
    balance: tuple[np.ndarray, str],
    notes: list[str],
    seed: int,
) -> dict[str, Any]:
    """The run's weak-label metrics: coverage, the aggregator comparison, calibration and what was kept."""
    L_pool, covered, frame = votes.L_pool, votes.covered, labelled.frame
    class_balance, balance_source = balance
    return {
        "n_lfs": len(lfs),
        "labels": list(labels),
        "pool_rows": int(len(pool)),
        "labelled_rows": int(len(frame)),
        "abstained_rows": int((~covered).sum()),
        "dropped_low_confidence": int((~labelled.confident).sum()),
        "min_confidence": float(labelled.threshold),
        "min_confidence_source": "weak_label.min_confidence"
        if cfg.min_confidence is not None
        else "validation.min_label_confidence",
        "coverage": float(covered.mean()) if len(pool) else 0.0,
        "pool_overlap_share": float(((L_pool != ABSTAIN).sum(axis=1) > 1).mean()),
        "covered_overlap_share": choice.overlap,
        "label_model_identifiable": bool(choice.identifiable),
        "pool_conflict_share": float(_conflicted(L_pool).mean()),
        **_dev_metrics(votes.L_dev, votes.y_dev, choice.label_model, labels),
        "gold_rows_for_estimates": int(len(votes.y_gold)),
        "reviewed_rows": int(len(votes.y_gold) - votes.n_dev),
        "aggregator": choice.chosen,
        "aggregator_requested": cfg.aggregator,
        "aggregator_reason": choice.reason,
        "aggregators_dev": choice.comparison,
        "best_single_lf_dev": choice.best_lf,
        "weak_label_model": describe(choice.aggregator, [lf.name for lf in lfs]),
        "calibration": None if choice.calibration is None else choice.calibration.summary(),
        "dev_ece": None if choice.calibration is None else choice.calibration.summary()["dev_ece"],
        "reliability_dev": reliability_bins(choice.dev_probs, votes.y_gc, ECE_BINS),
        "reliability_dev_raw": reliability_bins(choice.dev_raw, votes.y_gc, ECE_BINS),
        "rows_below_confidence": {f"{t:.1f}": int((labelled.confidence < t).sum()) for t in CONFIDENCE_STEPS},
        "label_distribution": {name: int(labelled.counts.get(name, 0)) for name in labels},
        "mean_label_confidence": float(frame["label_confidence"].mean()) if len(frame) else None,
        "class_balance": [float(p) for p in class_balance],
        "class_balance_source": balance_source,
        "warnings": notes,
        "seed": int(seed),
    }


def _fit_label_model(L_pool: np.ndarray, class_balance: np.ndarray, cfg: WeakLabelConfig, seed: int) -> LabelModel:
    label_model = LabelModel(cardinality=len(class_balance), verbose=False)
    with _single_torch_thread():
        # Fit on every pool row: abstains are part of what the model explains (each LF's coverage).
        label_model.fit(
            L_pool,
            class_balance=class_balance,
            n_epochs=cfg.label_model.n_epochs,
            lr=cfg.label_model.lr,
            l2=cfg.label_model.l2,
            # Snorkel's own floor shrinks with the pool (1e-4 at 2k rows); then one LF that looks perfect
            # outvotes every other LF, and dev accuracy swung 0.977-0.996 between pool variants.
            mu_eps=cfg.label_model.mu_eps,
            seed=seed,
            progress_bar=False,
        )
    return label_model


def _candidate_probs(
    L: np.ndarray, y: np.ndarray, label_model: LabelModel, prior: np.ndarray, cfg: WeakLabelConfig, seed: int
) -> dict[str, np.ndarray]:
    """Each aggregator's dev probabilities; the weighted vote's out of fold (its accuracies come from dev)."""
    k = len(prior)
    if len(y) == 0:
        return {name: np.zeros((0, k)) for name in ("label_model", "weighted_vote", "majority_vote")}
    return {
        "label_model": label_model.predict_proba(L),
        "weighted_vote": out_of_fold_weighted_vote(
            L, y, prior, prior_accuracy=cfg.lf_prior_accuracy, prior_strength=cfg.lf_prior_strength, seed=seed
        ),
        "majority_vote": Aggregator("majority_vote", k, tuple(prior)).raw_proba(L),
    }


def _scores(y: np.ndarray, probs: np.ndarray, k: int) -> dict[str, Any]:
    if len(y) == 0:
        return {"accuracy": None, "f1_macro": None, "ece_raw": None, "mean_confidence": None}
    pred = probs.argmax(axis=1)
    classes = list(range(k))
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1_macro": float(f1_score(y, pred, labels=classes, average="macro", zero_division=0)),
        "ece_raw": float(expected_calibration_error(probs, y, ECE_BINS)),
        "mean_confidence": float(probs.max(axis=1).mean()),
    }


def _choose(
    cfg: WeakLabelConfig, comparison: dict[str, dict[str, Any]], identifiable: bool, overlap: float, notes: list[str]
) -> tuple[str, str]:
    if not identifiable:
        notes.append(
            f"only {overlap:.1%} of covered pool rows have 2+ LF votes (weak_label.min_overlap={cfg.min_overlap}): "
            "the LabelModel cannot estimate LF accuracies from agreements"
            + (", so auto falls back to the dev-accuracy-weighted vote" if cfg.aggregator == "auto" else "")
        )
    if cfg.aggregator != "auto":
        return cfg.aggregator, f"weak_label.aggregator={cfg.aggregator}"
    allowed = [n for n in ("label_model", "weighted_vote", "majority_vote") if identifiable or n != "label_model"]
    if comparison[allowed[0]]["f1_macro"] is None:
        return "weighted_vote", "no dev row has an LF vote: nothing to compare on; weighted vote with prior accuracies"
    # Ties keep the earlier (richer) model; the weighted vote's score is out of fold, so it has no head start.
    best = max(allowed, key=lambda n: (round(comparison[n]["f1_macro"], 6), round(comparison[n]["accuracy"], 6)))
    table = ", ".join(f"{n} {comparison[n]['f1_macro']:.4f}" for n in allowed)
    excluded = "" if identifiable else " (label model left out: too little LF overlap)"
    return best, f"best dev macro-F1 on rows with votes: {table}{excluded}"


def _best_single_lf(L: np.ndarray, y: np.ndarray, lfs: list[LF], labels: list[str]) -> dict[str, Any] | None:
    """The single LF with the best dev macro-F1 when it alone labels (its abstains count as wrong)."""
    if len(y) == 0:
        return None
    classes = list(range(len(labels)))
    scores = [f1_score(y, L[:, j], labels=classes, average="macro", zero_division=0) for j in range(L.shape[1])]
    j = int(np.argmax(scores))
    fires = L[:, j] != ABSTAIN
    return {
        "lf": lfs[j].name,
        "f1_macro": float(scores[j]),
        "accuracy": float((L[:, j] == y).mean()),
        "accuracy_where_it_votes": float((L[fires, j] == y[fires]).mean()) if fires.any() else None,
        "coverage": float(fires.mean()),
    }


def _class_warnings(L_pool: np.ndarray, L_gold: np.ndarray, counts: pd.Series, labels: list[str]) -> list[str]:
    notes = []
    voted = set(np.unique(L_pool[L_pool != ABSTAIN]).tolist()) | set(np.unique(L_gold[L_gold != ABSTAIN]).tolist())
    silent = [name for i, name in enumerate(labels) if i not in voted]
    if silent:
        notes.append(
            f"no LF votes for class(es) {silent}: the weak labels can never be these; add LFs for them "
            "(or review rows with `driftloop review export`)"
        )
    missing = [name for name in labels if name not in silent and int(counts.get(name, 0)) == 0]
    if missing:
        notes.append(f"class(es) {missing} have LF votes but no weakly labelled pool row after aggregation")
    return notes


@contextlib.contextmanager
def _single_torch_thread() -> Iterator[None]:
    # The LabelModel's matrices are (n_lfs * k) square: intra-op threads only add sync overhead
    # (measured: 500 epochs took 0.4 s on one thread, 8 s on two busy cores).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _conflicted(L: np.ndarray) -> np.ndarray:
    voted = np.where(L == ABSTAIN, np.iinfo(L.dtype).max, L)
    lowest = voted.min(axis=1)
    highest = np.where(L == ABSTAIN, np.iinfo(L.dtype).min, L).max(axis=1)
    return (lowest != highest) & (highest != np.iinfo(L.dtype).min)


def _dev_metrics(L_dev: np.ndarray, y_dev: np.ndarray, label_model: LabelModel, labels: list[str]) -> dict[str, Any]:
    covered = (L_dev != ABSTAIN).any(axis=1)
    y = y_dev[covered]
    out: dict[str, Any] = {
        "dev_rows": int(len(y_dev)),
        "dev_scored_rows": int(covered.sum()),
        "dev_coverage": float(covered.mean()) if len(y_dev) else 0.0,
        "dev_accuracy_basis": "dev rows with at least one LF vote",
    }
    if not covered.any():
        return out
    lm_pred = label_model.predict_proba(L_dev[covered]).argmax(axis=1)
    voter = MajorityLabelVoter(cardinality=len(labels))
    ties = voter.predict(L_dev[covered], tie_break_policy="abstain") == ABSTAIN
    all_classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y, lm_pred, labels=all_classes, zero_division=0)
    return {
        **out,
        "majority_vote_dev_ties": int(ties.sum()),
        "label_model_dev_per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
    }


def _lf_analysis(
    L_pool: np.ndarray, L_dev: np.ndarray, y_dev: np.ndarray, lfs: list[LF], labels: list[str], label_model: LabelModel
) -> pd.DataFrame:
    # An LF that never fires on dev has no empirical accuracy: NaN, without a divide warning. Snorkel's
    # conflict count calls scipy.sparse.diags on ints, which warns about a future dtype change.
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"scipy\.sparse")
        pool_summary = LFAnalysis(L_pool, lfs).lf_summary()
        dev_summary = LFAnalysis(L_dev, lfs).lf_summary(y_dev)
        learned = label_model.get_weights().astype(float)
    names = np.asarray(labels, dtype=object)
    # Indexed by LF name like Snorkel's lf_summary; reset_index() gives an "lf" column.
    return pd.DataFrame(
        {
            "kind": [type(lf).__name__ for lf in lfs],
            "polarity": [[str(names[i]) for i in sorted(p)] for p in pool_summary["Polarity"]],
            "pool_coverage": pool_summary["Coverage"].to_numpy(dtype=float),
            "pool_overlaps": pool_summary["Overlaps"].to_numpy(dtype=float),
            "pool_conflicts": pool_summary["Conflicts"].to_numpy(dtype=float),
            "dev_coverage": dev_summary["Coverage"].to_numpy(dtype=float),
            "dev_overlaps": dev_summary["Overlaps"].to_numpy(dtype=float),
            "dev_conflicts": dev_summary["Conflicts"].to_numpy(dtype=float),
            "dev_correct": dev_summary["Correct"].to_numpy(dtype=int),
            "dev_incorrect": dev_summary["Incorrect"].to_numpy(dtype=int),
            "dev_accuracy": dev_summary["Emp. Acc."].to_numpy(dtype=float),
            "learned_accuracy": learned,
        },
        index=pd.Index([lf.name for lf in lfs], name="lf"),
    )


def label_checker(lfs: Sequence[LF], label_model: Aggregator | LabelModel) -> Callable[[list[str]], np.ndarray]:
    """texts -> the weak labeler's class index per text, or -1 where every LF abstains (no evidence either way).

    Augmentation uses it to reject a rewrite whose inherited label the labeling functions now contradict.
    """

    def check(texts: list[str]) -> np.ndarray:
        probs = predict_proba(pd.Series(texts, dtype=object), lfs, label_model)
        out = np.full(len(texts), -1)
        covered = ~np.isnan(probs).any(axis=1)
        out[covered] = probs[covered].argmax(axis=1)
        return out

    return check
