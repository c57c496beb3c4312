"""The gold dev rows train the end model as well as select it, and the run says whether it earned its keep.

Weak supervision leans on its clean validation rows; fine-tuning on a few hundred of them directly is a strong
baseline that often beats it (Zhu et al., "Weaker Than You Think", ACL 2023). So the gold dev set is split once,
stratified by label and stable as it grows:

- the *training* rows join the weak-labelled training set with their gold labels (``gold_rows.train_share``);
- the *held-out* rows early-stop every fit, choose seeds and self-training rounds, and give out-of-fold dev scores.

No dev row scores a model that trained on it. The same split trains the gold-only baseline (the same model on the
gold training rows alone), so the end model is compared with both cheap alternatives a user already holds: the
labeling functions (the label model) and the rows they labelled by hand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import GoldRowsConfig
from driftloop.tasks.train.data import ROW_WEIGHT_COLUMN

#: Marks the gold rows in the end model's training table.
GOLD_COLUMN = "is_gold"


@dataclass(frozen=True)
class GoldSplit:
    """Gold dev, cut into the rows that train and the rows held out to select."""

    train: pd.DataFrame
    held_out: pd.DataFrame

    def summary(self) -> dict[str, int]:
        return {"gold_train_rows": len(self.train), "gold_held_out_rows": len(self.held_out)}


def _text_rank(texts: pd.Series, seed: int) -> np.ndarray:
    """A number in [0, 1) per text from its content: a row keeps its side of the split when gold dev grows."""
    salt = str(seed).encode()
    return np.array(
        [int.from_bytes(hashlib.blake2b(salt + str(t).encode(), digest_size=8).digest(), "big") / 2**64 for t in texts]
    )


def split_gold_dev(dev: pd.DataFrame, cfg: GoldRowsConfig, seed: int) -> GoldSplit:
    """Split gold dev by label: within each class the ``train_share`` of rows with the lowest text hash train.

    Every class keeps at least one held-out row (early stopping needs every class it can), and a class with one row
    only is held out. ``train_share`` 0 holds out everything.
    """
    if cfg.train_share <= 0 or dev.empty:
        return GoldSplit(train=dev.iloc[:0].copy(), held_out=dev.copy())
    rank = pd.Series(_text_rank(dev["text"], seed), index=dev.index)
    train_index: list = []
    for _, group in rank.groupby(dev["label"], sort=True):
        n_train = min(int(np.floor(cfg.train_share * len(group))), len(group) - 1)
        train_index += list(group.sort_values(kind="stable").index[:n_train])
    is_train = dev.index.isin(train_index)
    return GoldSplit(train=dev[is_train].copy(), held_out=dev[~is_train].copy())


def with_gold_rows(train: pd.DataFrame, gold: pd.DataFrame, cfg: GoldRowsConfig) -> pd.DataFrame:
    """The training table plus the gold training rows: gold labels (one-hot, no ``label_probs``), weight, flag."""
    out = train.assign(**{GOLD_COLUMN: False, ROW_WEIGHT_COLUMN: 1.0})
    if gold.empty:
        return out
    rows = gold[["text", "label"]].assign(**{GOLD_COLUMN: True, ROW_WEIGHT_COLUMN: float(cfg.weight)})
    if "row_id" in gold.columns:
        rows["row_id"] = gold["row_id"].astype(str).radd("gold:")
    if "label_probs" in out.columns:
        rows["label_probs"] = None  # soft mode: a gold row's target is its one-hot label
    if "is_synthetic" in out.columns:
        rows["is_synthetic"] = False
    return pd.concat([out, rows], ignore_index=True)


def training_rows(train: pd.DataFrame) -> dict[str, int]:
    """Which rows trained the end model: weak-labelled, synthetic and gold."""
    gold = train[GOLD_COLUMN].fillna(False).astype(bool) if GOLD_COLUMN in train.columns else False
    synthetic = train["is_synthetic"].fillna(False).astype(bool) if "is_synthetic" in train.columns else False
    n_gold, n_synthetic = int(np.sum(gold)), int(np.sum(synthetic))
    return {"weak": len(train) - n_gold - n_synthetic, "synthetic": n_synthetic, "gold": n_gold}


def compare_with_baselines(
    end_model: Mapping[str, float], label_model: Mapping[str, float] | None, gold_only: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The end model beside the honest baselines on gold test, and whether it beats the better of them.

    Args:
        end_model: the end model's gold test ``macro_f1`` and ``accuracy``.
        label_model: the label model's (the LFs alone), or None when it was not scored.
        gold_only: :func:`baseline_record` of the gold-only baseline, or None when it did not run.

    Returns:
        ``end_model``, ``label_model``, ``gold_only``, and the verdict: ``earned`` (None without a baseline),
        ``best_baseline``, ``points_over_best_baseline`` and a one-sentence ``verdict``.
    """
    out: dict[str, Any] = {
        "end_model": _figures(end_model),
        "label_model": _figures(label_model) if label_model else None,
        "gold_only": dict(gold_only) if gold_only else None,
    }
    present = {name: out[name] for name in ("label_model", "gold_only") if out[name] is not None}
    if not present:
        verdict = "No baseline was scored on this run, so nothing shows whether the pipeline paid off."
        return {**out, "earned": None, "best_baseline": None, "points_over_best_baseline": None, "verdict": verdict}
    best_name, best = max(present.items(), key=lambda item: item[1]["macro_f1"])
    points = round(100.0 * (end_model["macro_f1"] - best["macro_f1"]), 2)
    who = {"label_model": "the label model (the LFs alone)", "gold_only": "the model trained on the gold rows alone"}
    if points > 0:
        verdict = (
            f"The pipeline earned its keep: its end model beats {who[best_name]}, the better baseline, "
            f"by {points:.2f} macro-F1 points on gold test."
        )
    else:
        verdict = (
            f"The pipeline did not earn its keep on this run: {who[best_name]} scores {-points:.2f} macro-F1 "
            "points at or above its end model on gold test."
        )
    return {
        **out,
        "earned": points > 0,
        "best_baseline": best_name,
        "points_over_best_baseline": points,
        "verdict": verdict,
    }


def _figures(scores: Mapping[str, Any]) -> dict[str, float]:
    return {k: round(float(scores[k]), 6) for k in ("macro_f1", "accuracy")}


def baseline_record(scores: Mapping[str, float], *, dev_macro_f1: float | None, rows: int) -> dict:
    """One baseline's entry in the run summary."""
    return {
        "macro_f1": round(float(scores["macro_f1"]), 6),
        "accuracy": round(float(scores["accuracy"]), 6),
        "dev_macro_f1": None if dev_macro_f1 is None else round(float(dev_macro_f1), 6),
        "train_rows": rows,
    }
