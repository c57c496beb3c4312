"""Turning rows into what the drift signals compare: cleaned texts, LF votes, weak labels (LF
majority vote), and for a sample of rows sentence embeddings and champion probabilities."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from driftloop.tasks.drift.signals import DriftSide
from driftloop.tasks.drift.stats import apply_temperature
from driftloop.tasks.lf import ABSTAIN, TEXT_COLUMN, apply_lfs

Embedder = Callable[[list[str]], np.ndarray]
Predictor = Callable[[list[str]], np.ndarray]


def majority_vote(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-row LF majority vote (Snorkel's MajorityLabelVoter); -1 where every LF abstains or the top classes tie."""
    from snorkel.labeling.model import MajorityLabelVoter

    if len(votes) == 0:
        return np.zeros(0, dtype=np.int64)
    if votes.shape[1] == 0:
        return np.full(len(votes), ABSTAIN, dtype=np.int64)
    voter = MajorityLabelVoter(cardinality=n_classes)
    return np.asarray(voter.predict(votes, tie_break_policy="abstain"), dtype=np.int64)


def featurize(
    sides: Mapping[str, Sequence[str] | pd.Series],
    lfs: Sequence,
    n_classes: int,
    *,
    sample_size: int,
    seed: int,
    embed: Embedder | None = None,
    predict: Predictor | None = None,
    temperature: float | None = None,
) -> dict[str, DriftSide]:
    """One ``DriftSide`` per named side (texts already cleaned).

    LF votes cover every row (column operations, cheap at 100k rows); embeddings and champion
    probabilities cover a random sample of at most ``sample_size`` rows per side, embedded and
    predicted in one call for all sides together (a text in two sides is computed once).
    """
    rng = np.random.default_rng(seed)
    prepared: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for name, texts in sides.items():
        values = np.asarray(pd.Series(texts, dtype=object).fillna("").astype(str).to_numpy(), dtype=object)
        votes = apply_lfs(pd.DataFrame({TEXT_COLUMN: values}), lfs)
        n = len(values)
        sample = np.arange(n) if n <= sample_size else np.sort(rng.choice(n, sample_size, replace=False))
        prepared[name] = (values, votes, sample)

    unique: dict[str, int] = {}
    for values, _, sample in prepared.values():
        for text in values[sample]:
            unique.setdefault(text, len(unique))
    unique_texts = list(unique)
    embeddings = embed(unique_texts) if embed is not None and unique_texts else None
    probs = predict(unique_texts) if predict is not None and unique_texts else None
    calibrated = apply_temperature(probs, temperature) if probs is not None and temperature is not None else None

    out = {}
    for name, (values, votes, sample) in prepared.items():
        idx = np.fromiter((unique[t] for t in values[sample]), dtype=np.int64, count=len(sample))
        out[name] = DriftSide(
            texts=values,
            votes=votes,
            weak_labels=majority_vote(votes, n_classes),
            sample=sample,
            embeddings=None if embeddings is None else embeddings[idx],
            probs=None if probs is None else probs[idx],
            calibrated=None if calibrated is None else calibrated[idx],
        )
    return out
