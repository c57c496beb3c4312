"""Self-training on the pool rows no LF covers: the end model pseudo-labels them, gold dev decides what stays.

Round 0 is the model trained on the weak labels. Each later round pseudo-labels the uncovered rows with the best
model so far, keeps those at or above ``self_train.min_confidence`` (at most ``max_per_class_ratio`` x that
class's weak-labelled rows, most confident first, so no class floods), and trains again on weak + pseudo
labels. Pseudo rows carry their confidence as ``label_confidence`` and the model's probabilities as soft
targets. A round is kept only when its gold dev macro-F1 beats the best so far by ``min_dev_gain``; the first
round that does not ends the loop. Test metrics are reported per round and never used for a decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from driftloop.config import SelfTrainConfig, TrainConfig

TrainFn = Callable[..., Any]


@dataclass
class SelfTrainResult:
    """The kept model (a ``TrainResult``), its training table and one record per round."""

    result: Any
    train_frame: pd.DataFrame
    rounds: list[dict[str, Any]] = field(default_factory=list)
    kept_round: int = 0


def scores(classifier: Any, frame: pd.DataFrame, labels: Sequence[str], batch_size: int) -> dict[str, float]:
    """Accuracy and macro-F1 of ``classifier`` on a gold table (``text``, ``label``)."""
    probs = classifier.predict_proba(frame["text"].tolist(), batch_size=batch_size)
    y = frame["label"].map({name: i for i, name in enumerate(labels)}).to_numpy()
    pred = probs.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=list(range(len(labels))), average="macro", zero_division=0)),
    }


def pseudo_label(
    probs: np.ndarray,
    uncovered: pd.DataFrame,
    labels: Sequence[str],
    class_counts: dict[str, int],
    cfg: SelfTrainConfig,
) -> pd.DataFrame:
    """The confident uncovered rows as training rows, capped per class by ``max_per_class_ratio``."""
    confidence = probs.max(axis=1)
    pred = probs.argmax(axis=1)
    parts = []
    for c, name in enumerate(labels):
        idx = np.flatnonzero((pred == c) & (confidence >= cfg.min_confidence))
        cap = int(np.ceil(cfg.max_per_class_ratio * class_counts.get(name, 0)))
        idx = idx[np.argsort(-confidence[idx], kind="stable")][:cap]
        if len(idx):
            part = uncovered.iloc[idx].copy()
            part["label"] = name
            part["label_confidence"] = confidence[idx].astype(float)
            part["label_probs"] = probs[idx].tolist()
            part["is_pseudo_label"] = True
            parts.append(part)
    if not parts:
        return uncovered.iloc[:0].assign(label=[], label_confidence=[], label_probs=[], is_pseudo_label=[])
    return pd.concat(parts, ignore_index=True)


def self_train(
    train_frame: pd.DataFrame,
    uncovered: pd.DataFrame,
    dev: pd.DataFrame,
    labels: Sequence[str],
    train_cfg: TrainConfig,
    cfg: SelfTrainConfig,
    *,
    seed: int,
    train_fn: TrainFn,
    test: pd.DataFrame | None = None,
    class_weights: dict[str, float] | None = None,
    base_result: Any | None = None,
) -> SelfTrainResult:
    """Train (or take ``base_result`` as round 0), then up to ``cfg.rounds`` pseudo-labelling rounds.

    Args:
        train_frame: the balanced weak-labelled training table (``text``, ``label``, ``label_confidence`` ...).
        uncovered: pool rows no LF voted on (``WeakLabelResult.uncovered``).
        dev: gold dev (``text``, ``label``): early stopping inside each fit and the keep/stop decision.
        train_fn: ``driftloop.tasks.train.train`` (injected, so this module stays free of the training stack).
        test: gold test rows, reported per round only.
    """
    labels = list(labels)
    batch = train_cfg.eval_batch_size
    fit = lambda frame: train_fn(frame, dev, labels, train_cfg, seed=seed, class_weights=class_weights)  # noqa: E731
    best = base_result if base_result is not None else fit(train_frame)
    best_dev = scores(best.classifier, dev, labels, batch)
    rounds = [
        {
            "round": 0,
            "added_per_class": {name: 0 for name in labels},
            "dev": best_dev,
            "test": None if test is None else scores(best.classifier, test, labels, batch),
            "kept": True,
        }
    ]
    best_frame, kept_round = train_frame, 0
    if not cfg.enabled or uncovered is None or len(uncovered) == 0:
        return SelfTrainResult(best, best_frame, rounds, kept_round)
    # Caps count distinct weak-labelled rows per class, not oversampled copies.
    distinct = train_frame.drop_duplicates("row_id") if "row_id" in train_frame.columns else train_frame
    class_counts = distinct["label"].value_counts().to_dict()
    for r in range(1, cfg.rounds + 1):
        probs = best.classifier.predict_proba(uncovered["text"].tolist(), batch_size=batch)
        pseudo = pseudo_label(probs, uncovered, labels, class_counts, cfg)
        added = pseudo["label"].value_counts().to_dict()
        record: dict[str, Any] = {"round": r, "added_per_class": {n: int(added.get(n, 0)) for n in labels}}
        if pseudo.empty:
            rounds.append({**record, "dev": None, "test": None, "kept": False, "stopped": "no confident row"})
            break
        frame = pd.concat([train_frame, pseudo], ignore_index=True)
        candidate = fit(frame)
        dev_scores = scores(candidate.classifier, dev, labels, batch)
        kept = dev_scores["macro_f1"] > best_dev["macro_f1"] + cfg.min_dev_gain
        record.update(
            dev=dev_scores,
            test=None if test is None else scores(candidate.classifier, test, labels, batch),
            kept=bool(kept),
        )
        rounds.append(record)
        if not kept:
            break
        best, best_dev, best_frame, kept_round = candidate, dev_scores, frame, r
    return SelfTrainResult(best, best_frame, rounds, kept_round)
