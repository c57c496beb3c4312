"""Training data: contract checks, targets, tokenisation, padding, epoch batches, the run fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from driftloop.config import TrainConfig
from driftloop.errors import TrainInputError
from driftloop.tasks.batching import shuffled_batches

log = logging.getLogger("driftloop.train")

# Config fields that change neither the numbers nor the data order: a resume may differ in these.
FINGERPRINT_EXEMPT = {"enabled", "log_steps", "keep_checkpoints", "eval_batch_size", "merge", "strict", "seeds"}
#: Optional column of the training table: a per-row loss weight (1 where absent).
ROW_WEIGHT_COLUMN = "row_weight"


def require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """Raise TrainInputError naming the table when it lacks a column or has no rows."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TrainInputError(f"{name} table lacks column(s) {missing}; it has {list(frame.columns)}")
    if frame.empty:
        raise TrainInputError(f"{name} table is empty; training needs labelled rows in it")


def label_indices(frame: pd.DataFrame, labels: Sequence[str], name: str) -> np.ndarray:
    """Class index of each row's ``label``; TrainInputError for a label outside ``labels``."""
    index = pd.Index(labels)
    codes = index.get_indexer(frame["label"].astype(str))
    if (codes < 0).any():
        unknown = sorted(set(frame["label"].astype(str)[codes < 0]))[:5]
        raise TrainInputError(f"{name} table has labels {unknown} outside data.labels {list(labels)}")
    return codes


def build_targets(
    train_df: pd.DataFrame, labels: Sequence[str], cfg: TrainConfig, class_weights: Mapping[str, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row target distributions (n, k) and loss weights (n,) from the training table."""
    k = len(labels)
    codes = label_indices(train_df, labels, "train")
    one_hot = np.eye(k, dtype=np.float32)[codes]
    targets = one_hot
    if cfg.label_mode == "soft" and "label_probs" in train_df.columns:
        probs = train_df["label_probs"]
        has = probs.notna().to_numpy()
        if has.any():
            stacked = np.asarray(probs[has].tolist(), dtype=np.float32)
            if stacked.ndim != 2 or stacked.shape[1] != k:
                raise TrainInputError(
                    f"train.label_probs must hold {k} probabilities per row (one per data.labels entry)"
                )
            if not np.isfinite(stacked).all() or (stacked < 0).any():
                raise TrainInputError("train.label_probs holds NaN, inf or negative values; fix the weak-label step")
            sums = stacked.sum(axis=1, keepdims=True)
            if (sums <= 0).any():
                raise TrainInputError("train.label_probs has an all-zero row; drop rows where every LF abstained")
            targets = one_hot.copy()
            targets[has] = stacked / sums
    elif cfg.label_mode == "soft":
        log.info("train table has no label_probs column: soft mode trains on one-hot gold labels")
    weights = np.ones(len(train_df), dtype=np.float32)
    if ROW_WEIGHT_COLUMN in train_df.columns:  # e.g. gold rows weighted against weak ones (tasks/gold_rows.py)
        weights = train_df[ROW_WEIGHT_COLUMN].fillna(1.0).to_numpy(dtype=np.float32)
    if class_weights and cfg.use_class_weights:
        unknown = set(class_weights) - set(labels)
        if unknown:
            raise TrainInputError(f"class_weights names labels {sorted(unknown)} outside data.labels {list(labels)}")
        per_class = np.array([float(class_weights.get(lbl, 1.0)) for lbl in labels], dtype=np.float32)
        # The expected class weight under the target distribution (equals w[y] for one-hot rows).
        weights = weights * (targets @ per_class)
    return targets, weights


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated, unpadded (padding happens per batch)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)["input_ids"]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` for one batch, right-padded to a multiple of 8, on ``device``."""
    # Multiples of 8 map onto GPU tensor cores and, on CPU, bound the number of distinct shapes
    # (each new shape costs a oneDNN kernel set-up); the extra padding is at most 7 tokens.
    width = -(-max(len(s) for s in seqs) // 8) * 8
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def epoch_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group_by_length: bool
) -> list[np.ndarray]:
    """Batches of row indices for one epoch, a pure function of (seed, epoch) so a resume replays it."""
    rng = np.random.default_rng([seed, epoch])
    return shuffled_batches(lengths, batch_size, rng, group_by_length=group_by_length)


def data_fingerprint(
    train_df: pd.DataFrame,
    dev_df: pd.DataFrame,
    labels: Sequence[str],
    cfg: TrainConfig,
    seed: int,
    class_weights: Mapping[str, float] | None,
) -> str:
    """Hash of everything that determines the training trajectory; checkpoints only resume on a match."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in FINGERPRINT_EXEMPT}
    digest.update(json.dumps([settings, list(labels), seed, dict(class_weights or {})], sort_keys=True).encode())
    for frame in (train_df, dev_df):
        cols = [c for c in ("text", "label", "label_confidence") if c in frame.columns]
        digest.update(pd.util.hash_pandas_object(frame[cols].astype(str), index=False).to_numpy().tobytes())
        if "label_probs" in frame.columns:
            digest.update(frame["label_probs"].astype(str).str.cat(sep="|").encode())
    return digest.hexdigest()[:16]
