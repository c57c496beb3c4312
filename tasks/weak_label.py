"""Weak labeling: apply the LFs to the unlabelled pool and aggregate their votes with Snorkel's LabelModel.

Rows where every LF abstains are dropped and counted (``abstained_rows``): Snorkel's LabelModel would
give them a uniform distribution, which is no label at all. Dev accuracies of the label model and of
the majority-vote baseline are measured on the same dev rows, those with at least one LF vote
(``dev_coverage`` says how many); the majority vote breaks ties with Snorkel's deterministic
"random" policy, so both models predict every scored row.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from snorkel.labeling import LabelingFunction, LFAnalysis
from snorkel.labeling.model import LabelModel, MajorityLabelVoter

from driftloop.config import WeakLabelConfig
from driftloop.tasks.lf import ABSTAIN, TEXT_COLUMN, VectorLF, apply_lfs, load_lfs

__all__ = ["WeakLabelResult", "apply_lfs", "load_lfs", "predict_proba", "weak_label"]

LABEL_COLUMN = "label"
# Snorkel's LabelModel refuses fewer LFs than this.
MIN_LFS = 3

LF = VectorLF | LabelingFunction


@dataclass
class WeakLabelResult:
    """The weakly labelled pool, the per-LF analysis (indexed by LF name), run metrics and the fitted label model."""

    frame: pd.DataFrame
    analysis: pd.DataFrame
    metrics: dict[str, Any]
    label_model: LabelModel
    lfs: list[LF] = field(repr=False)
    labels: list[str] = field(default_factory=list)

    def predict_proba(self, texts: pd.Series) -> np.ndarray:
        """Label-model probabilities (n, k) for new texts; all-NaN rows where every LF abstains."""
        return predict_proba(texts, self.lfs, self.label_model)


def predict_proba(texts: pd.Series, lfs: Sequence[LF], label_model: LabelModel) -> np.ndarray:
    """Label-model probabilities (n, k) in label order; rows where every LF abstains are all NaN.

    NaN rather than Snorkel's uniform row, so a caller (augmentation checking a synthetic row's
    inherited label) cannot mistake "no evidence" for a confident or a tied prediction.
    """
    L = apply_lfs(pd.DataFrame({TEXT_COLUMN: pd.Series(texts).reset_index(drop=True)}), lfs)
    probs = np.full((len(L), label_model.cardinality), np.nan)
    covered = (L != ABSTAIN).any(axis=1)
    if covered.any():
        probs[covered] = label_model.predict_proba(L[covered])
    return probs


def weak_label(
    pool: pd.DataFrame,
    dev: pd.DataFrame,
    lfs: Sequence[LF],
    cfg: WeakLabelConfig,
    labels: list[str],
    seed: int,
) -> WeakLabelResult:
    """Label the pool with the LFs and a LabelModel; report LF analysis and dev accuracy.

    Args:
        pool: unlabelled rows with a ``text`` column (other columns are kept).
        dev: gold rows with ``text`` and ``label`` (label names from ``labels``), at least two classes.
        lfs: resolved LFs from ``load_lfs``.
        cfg: the ``weak_label`` config section.
        labels: the label set in class-index order (``cfg.data.labels``).
        seed: seeds the LabelModel.

    Returns:
        ``WeakLabelResult``: ``frame`` holds the labelled pool rows with ``label``, ``label_confidence``
        (top class probability) and ``label_probs`` (list in ``labels`` order).
    """
    k = len(labels)
    lfs = list(lfs)
    _check_inputs(pool, dev, lfs, labels)
    y_dev = dev[LABEL_COLUMN].map({name: i for i, name in enumerate(labels)}).to_numpy(dtype=np.int64)
    class_balance, balance_source = _class_balance(cfg, y_dev, labels)

    L_pool = apply_lfs(pool, lfs)
    L_dev = apply_lfs(dev, lfs)
    _check_votes(L_pool, lfs, k, "pool")
    _check_votes(L_dev, lfs, k, "dev")
    covered = (L_pool != ABSTAIN).any(axis=1)
    if not covered.any():
        raise ValueError(
            f"no LF votes on any of the {len(pool)} pool rows: the LFs do not fit this data; check weak_label.lf_module"
        )

    label_model = LabelModel(cardinality=k, verbose=False)
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

    probs = label_model.predict_proba(L_pool[covered])
    confidence = probs.max(axis=1)
    confident = confidence >= cfg.min_confidence
    frame = pool.iloc[np.flatnonzero(covered)[confident]].reset_index(drop=True)
    kept_probs = probs[confident]
    frame[LABEL_COLUMN] = np.asarray(labels, dtype=object)[kept_probs.argmax(axis=1)]
    frame["label_confidence"] = kept_probs.max(axis=1).astype(float)
    frame["label_probs"] = kept_probs.tolist()

    dev_metrics = _dev_metrics(L_dev, y_dev, label_model, labels)
    counts = frame[LABEL_COLUMN].value_counts()
    metrics: dict[str, Any] = {
        "n_lfs": len(lfs),
        "labels": list(labels),
        "pool_rows": int(len(pool)),
        "labelled_rows": int(len(frame)),
        "abstained_rows": int((~covered).sum()),
        "dropped_low_confidence": int((~confident).sum()),
        "min_confidence": float(cfg.min_confidence),
        "coverage": float(covered.mean()) if len(pool) else 0.0,
        "pool_overlap_share": float(((L_pool != ABSTAIN).sum(axis=1) > 1).mean()),
        "pool_conflict_share": float(_conflicted(L_pool).mean()),
        **dev_metrics,
        "label_distribution": {name: int(counts.get(name, 0)) for name in labels},
        "mean_label_confidence": float(frame["label_confidence"].mean()) if len(frame) else None,
        "class_balance": [float(p) for p in class_balance],
        "class_balance_source": balance_source,
        "seed": int(seed),
    }
    analysis = _lf_analysis(L_pool, L_dev, y_dev, lfs, labels, label_model)
    return WeakLabelResult(
        frame=frame, analysis=analysis, metrics=metrics, label_model=label_model, lfs=lfs, labels=list(labels)
    )


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


def _check_inputs(pool: pd.DataFrame, dev: pd.DataFrame, lfs: list[LF], labels: list[str]) -> None:
    for name, frame, needed in (("pool", pool, [TEXT_COLUMN]), ("dev", dev, [TEXT_COLUMN, LABEL_COLUMN])):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} frame lacks column(s) {missing}; got {list(frame.columns)}")
    if len(pool) == 0:
        raise ValueError("pool is empty: there is nothing to label")
    if len(lfs) < MIN_LFS:
        raise ValueError(f"Snorkel's LabelModel needs at least {MIN_LFS} LFs; the LF module has {len(lfs)}")
    unknown = sorted(set(dev[LABEL_COLUMN].dropna()) - set(labels))
    if unknown or dev[LABEL_COLUMN].isna().any():
        raise ValueError(
            f"dev labels must all be in data.labels {labels}; found unknown {unknown[:5]} or missing labels"
        )
    present = sorted(set(dev[LABEL_COLUMN]))
    if len(present) < 2:
        raise ValueError(
            f"the gold dev set holds {len(present)} class(es) {present}, a single class at most: LF accuracy and "
            "the class balance need at least two classes; add dev rows of the other labels"
        )


def _class_balance(cfg: WeakLabelConfig, y_dev: np.ndarray, labels: list[str]) -> tuple[np.ndarray, str]:
    override = cfg.label_model.class_balance
    if override is not None:
        if len(override) != len(labels):
            raise ValueError(
                f"weak_label.label_model.class_balance has {len(override)} entries but data.labels has {len(labels)}"
            )
        balance = np.asarray(override, dtype=float)
        return balance / balance.sum(), "config"
    # Add-one smoothing: a class missing from a small dev set must keep a non-zero prior, or the
    # LabelModel could never predict it.
    counts = np.bincount(y_dev, minlength=len(labels)).astype(float) + 1.0
    return counts / counts.sum(), "gold_dev"


def _check_votes(L: np.ndarray, lfs: list[LF], k: int, where: str) -> None:
    bad = (L < ABSTAIN) | (L >= k)
    if bad.any():
        j = int(np.argwhere(bad.any(axis=0))[0][0])
        raise ValueError(
            f"LF {lfs[j].name!r} returned {int(L[bad.any(axis=1)][0, j])} on the {where} set; "
            f"votes must be -1 (abstain) or a class index 0..{k - 1}"
        )


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
        return {**out, "label_model_dev_accuracy": None, "majority_vote_dev_accuracy": None}
    lm_pred = label_model.predict_proba(L_dev[covered]).argmax(axis=1)
    voter = MajorityLabelVoter(cardinality=len(labels))
    mv_pred = voter.predict(L_dev[covered], tie_break_policy="random")
    ties = voter.predict(L_dev[covered], tie_break_policy="abstain") == ABSTAIN
    all_classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y, lm_pred, labels=all_classes, zero_division=0)
    return {
        **out,
        "label_model_dev_accuracy": float(accuracy_score(y, lm_pred)),
        "majority_vote_dev_accuracy": float(accuracy_score(y, mv_pred)),
        "label_model_dev_f1_macro": float(f1_score(y, lm_pred, labels=all_classes, average="macro", zero_division=0)),
        "majority_vote_dev_f1_macro": float(f1_score(y, mv_pred, labels=all_classes, average="macro", zero_division=0)),
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
