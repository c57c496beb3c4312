"""The weak-label step's inputs: checked pool and gold rows, the class balance, and the LF votes on both.

``weak_label`` refuses bad inputs here before fitting anything: missing columns, too few LFs, a single-class dev
set, labels outside ``data.labels``, votes outside ``-1..k-1`` and a pool no LF votes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction

from driftloop.config import WeakLabelConfig
from driftloop.tasks.lf import ABSTAIN, TEXT_COLUMN, VectorLF, apply_lfs

LABEL_COLUMN = "label"
# Snorkel's LabelModel refuses fewer LFs than this.
MIN_LFS = 3

LF = VectorLF | LabelingFunction


@dataclass(frozen=True)
class Votes:
    """The LF votes on the pool and on the gold rows (dev first, then reviewed), with the gold class indices.

    ``covered`` marks the pool rows with at least one vote; ``L_gc``/``y_gc`` are the gold rows with one, the rows
    the aggregators are compared and calibrated on.
    """

    L_pool: np.ndarray
    L_gold: np.ndarray
    y_gold: np.ndarray
    n_dev: int
    covered: np.ndarray
    L_gc: np.ndarray
    y_gc: np.ndarray

    @property
    def L_dev(self) -> np.ndarray:
        return self.L_gold[: self.n_dev]

    @property
    def y_dev(self) -> np.ndarray:
        return self.y_gold[: self.n_dev]


def gold_rows(dev: pd.DataFrame, reviewed: pd.DataFrame | None, labels: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows the estimates use (dev, then any reviewed rows) and their class indices."""
    gold = dev
    if reviewed is not None and len(reviewed):
        _check_labelled(reviewed, labels, "reviewed")
        gold = pd.concat([dev[[TEXT_COLUMN, LABEL_COLUMN]], reviewed[[TEXT_COLUMN, LABEL_COLUMN]]], ignore_index=True)
    y_gold = gold[LABEL_COLUMN].map({name: i for i, name in enumerate(labels)}).to_numpy(dtype=np.int64)
    return gold, y_gold


def collect_votes(
    pool: pd.DataFrame,
    gold: pd.DataFrame,
    y_gold: np.ndarray,
    n_dev: int,
    lfs: list[LF],
    k: int,
    pool_votes: np.ndarray | None,
) -> Votes:
    """Apply the LFs (or take the given pool votes), check the votes, and refuse a pool no LF votes on."""
    L_pool = apply_lfs(pool, lfs) if pool_votes is None else np.asarray(pool_votes, dtype=np.int64)
    if L_pool.shape != (len(pool), len(lfs)):
        raise ValueError(
            f"pool_votes has shape {L_pool.shape}, expected ({len(pool)}, {len(lfs)}): one row per pool row and "
            "one column per LF; pass votes computed with these LFs on this pool, or none"
        )
    L_gold = apply_lfs(gold, lfs)
    _check_votes(L_pool, lfs, k, "pool")
    _check_votes(L_gold, lfs, k, "dev")
    covered = (L_pool != ABSTAIN).any(axis=1)
    if not covered.any():
        raise ValueError(
            f"no LF votes on any of the {len(pool)} pool rows: the LFs do not fit this data; check weak_label.lf_module"
        )
    gold_cov = (L_gold != ABSTAIN).any(axis=1)
    return Votes(L_pool, L_gold, y_gold, n_dev, covered, L_gold[gold_cov], y_gold[gold_cov])


def check_inputs(pool: pd.DataFrame, dev: pd.DataFrame, lfs: list[LF], labels: list[str]) -> None:
    """Refuse missing columns, an empty pool, too few LFs and a dev set without two known classes."""
    for name, frame, needed in (("pool", pool, [TEXT_COLUMN]), ("dev", dev, [TEXT_COLUMN, LABEL_COLUMN])):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} frame lacks column(s) {missing}; got {list(frame.columns)}")
    if len(pool) == 0:
        raise ValueError("pool is empty: there is nothing to label")
    if len(lfs) < MIN_LFS:
        raise ValueError(f"Snorkel's LabelModel needs at least {MIN_LFS} LFs; the LF module has {len(lfs)}")
    _check_labelled(dev, labels, "dev")
    present = sorted(set(dev[LABEL_COLUMN]))
    if len(present) < 2:
        raise ValueError(
            f"the gold dev set holds {len(present)} class(es) {present}, a single class at most: LF accuracy and "
            "the class balance need at least two classes; add dev rows of the other labels"
        )


def _check_labelled(frame: pd.DataFrame, labels: list[str], name: str) -> None:
    missing = [c for c in (TEXT_COLUMN, LABEL_COLUMN) if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks column(s) {missing}; got {list(frame.columns)}")
    unknown = sorted(set(frame[LABEL_COLUMN].dropna()) - set(labels))
    if unknown or frame[LABEL_COLUMN].isna().any():
        raise ValueError(
            f"{name} labels must all be in data.labels {labels}; found unknown {unknown[:5]} or missing labels"
        )


def prior_class_balance(cfg: WeakLabelConfig, y_dev: np.ndarray, labels: list[str]) -> tuple[np.ndarray, str]:
    """The class prior (config override, else smoothed dev counts) and where it came from."""
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
