"""Class balancing: random undersampling, random oversampling, or class weights for the loss."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import BalanceConfig
from driftloop.errors import InputError


@dataclass
class BalanceResult:
    frame: pd.DataFrame
    before: dict[str, int]
    after: dict[str, int]
    class_weights: dict[str, float] | None = None
    report: dict[str, Any] = field(default_factory=dict)


def class_counts(labels: pd.Series, label_set: list[str]) -> dict[str, int]:
    counts = labels.value_counts()
    return {label: int(counts.get(label, 0)) for label in label_set}


def replay(
    frame: pd.DataFrame, reference_snapshots: set[str], max_new_share: float | None, *, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Replay earlier data so that rows from new snapshots make up at most ``max_new_share`` of the table.

    "New" means not among ``reference_snapshots`` (the snapshots the champion was trained on). A big
    new batch would otherwise dominate the training set and the model would drift toward it,
    forgetting what the older data taught; earlier rows are repeated (sampled with replacement)
    until they hold ``1 - max_new_share`` of the rows. Nothing is dropped. With no reference (no
    champion yet), no new rows, or ``max_new_share`` None, the table is returned as it is.
    """
    is_new = ~frame["snapshot_id"].isin(reference_snapshots)
    n_new, n_old = int(is_new.sum()), int((~is_new).sum())
    report: dict[str, Any] = {"new_rows": n_new, "earlier_rows": n_old, "replayed_rows": 0}
    if max_new_share is None or not reference_snapshots or n_new == 0 or n_old == 0:
        return frame, report
    wanted_old = int(np.ceil(n_new * (1.0 - max_new_share) / max_new_share))
    extra = wanted_old - n_old
    if extra <= 0:
        return frame, report
    rng = np.random.default_rng(seed)
    earlier = frame[~is_new]
    replayed = earlier.iloc[rng.integers(0, n_old, extra)]
    report["replayed_rows"] = int(extra)
    return pd.concat([frame, replayed], ignore_index=True), report


def as_clean_labels(rows: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Human-labelled rows (``text``, ``label``) in the weak-label schema: confidence 1, one-hot probabilities."""
    unknown = sorted(set(rows["label"]) - set(labels))
    if unknown:
        raise InputError(f"reviewed rows carry labels {unknown} that are not in data.labels {labels}; fix the file")
    one_hot = np.eye(len(labels))[rows["label"].map({name: i for i, name in enumerate(labels)}).to_numpy()]
    return rows.assign(label_confidence=1.0, label_probs=list(one_hot), is_synthetic=False)


def balance(frame: pd.DataFrame, cfg: BalanceConfig, labels: list[str], *, seed: int) -> BalanceResult:
    """Resample (or weight) ``frame`` so that no class dwarfs another.

    ``target_ratio`` is the wanted smallest-class / largest-class ratio: undersampling trims
    every class to at most ``smallest / target_ratio`` rows; oversampling repeats rows of every
    class up to ``largest * target_ratio``. Classes absent from ``frame`` stay absent.
    """
    if "label" not in frame.columns:
        raise KeyError(f"balance needs a 'label' column; got columns {list(frame.columns)}")
    before = class_counts(frame["label"], labels)
    present = {k: v for k, v in before.items() if v > 0}
    if not present:
        raise ValueError("balance got no labelled rows; check the weak-labeling report (all rows abstained?)")
    rng = np.random.default_rng(seed)
    class_weights = None
    if cfg.strategy == "undersample":
        cap = max(1, int(np.ceil(min(present.values()) / cfg.target_ratio)))
        parts = [_sample(frame[frame["label"] == k], min(n, cap), rng, replace=False) for k, n in present.items()]
        out = pd.concat(parts)
    elif cfg.strategy == "oversample":
        floor = int(np.floor(max(present.values()) * cfg.target_ratio))
        parts = []
        for k, n in present.items():
            rows = frame[frame["label"] == k]
            extra = max(0, floor - n)
            parts.append(pd.concat([rows, _sample(rows, extra, rng, replace=True)]) if extra else rows)
        out = pd.concat(parts)
    else:
        out = frame
        if cfg.strategy == "class_weight":
            total = sum(present.values())
            # sklearn's "balanced" weighting: n_samples / (n_classes * n_class_samples).
            class_weights = {k: total / (len(present) * n) for k, n in present.items()}
    # Shuffle so that resampled classes are not in contiguous blocks downstream.
    out = out.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    after = class_counts(out["label"], labels)
    report = {"strategy": cfg.strategy, "target_ratio": cfg.target_ratio, "before": before, "after": after}
    if class_weights is not None:
        report["class_weights"] = class_weights
    return BalanceResult(frame=out, before=before, after=after, class_weights=class_weights, report=report)


def _sample(rows: pd.DataFrame, n: int, rng: np.random.Generator, *, replace: bool) -> pd.DataFrame:
    if n == 0:
        return rows.iloc[:0]
    idx = rng.choice(len(rows), size=n, replace=replace)
    return rows.iloc[np.sort(idx)] if not replace else rows.iloc[idx]
