"""A seed ensemble: several fits of the same config on the same rows, whose class probabilities are averaged.

With ``train.seeds`` above 1 and ``train.ensemble: true`` the end model is every seed's fit at once. Averaging
seeds cancels part of the noise each fit learns from weak labels, and removes the draw of which seed gold dev
happens to prefer. It costs one forward pass per seed at prediction time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.tasks.train.fit import macro_f1
from driftloop.tasks.train.trainer import TrainResult


class EnsembleClassifier:
    """The mean of its members' class probabilities; the same prediction interface as ``TextClassifier``."""

    def __init__(self, members: Sequence[Any]):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        labels = list(members[0].labels)
        for member in members[1:]:
            if list(member.labels) != labels:
                raise ValueError(f"ensemble members disagree on labels: {labels} and {list(member.labels)}")
        self.members = list(members)
        self.labels = labels
        first = self.members[0]
        self.method, self.max_length, self.device = first.method, first.max_length, first.device
        self.tokenizer = first.tokenizer

    def predict_proba(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Mean class probabilities over the members, shape (len(texts), len(labels))."""
        texts = [str(t) for t in texts]
        return np.mean([m.predict_proba(texts, batch_size=batch_size) for m in self.members], axis=0).astype(np.float32)

    def predict(self, texts: Sequence[str], batch_size: int = 128) -> list[str]:
        """Top label per text."""
        probs = self.predict_proba(texts, batch_size)
        return [self.labels[i] for i in probs.argmax(axis=1)]


@dataclass
class EnsembleResult:
    """Every seed's :class:`TrainResult` as one end model; reads like a ``TrainResult`` where the flow needs it."""

    members: list[TrainResult]
    dev_macro_f1: float = float("nan")  # set by :func:`ensemble`
    classifier: EnsembleClassifier = field(init=False)

    def __post_init__(self) -> None:
        self.classifier = EnsembleClassifier([m.classifier for m in self.members])

    @property
    def seeds(self) -> list[int]:
        return [m.seed for m in self.members]

    @property
    def seed(self) -> int:
        """The first member's seed (self-training retrains every member, each with its own seed)."""
        return self.members[0].seed

    @property
    def best_dev_macro_f1(self) -> float:
        return self.dev_macro_f1

    @property
    def model(self) -> str:
        return self.members[0].model

    @property
    def method(self) -> str:
        return self.members[0].method

    @property
    def fallback_reason(self) -> str | None:
        return self.members[0].fallback_reason

    @property
    def resolved_config(self) -> dict[str, Any]:
        return self.members[0].resolved_config

    @property
    def history(self) -> list[dict[str, Any]]:
        return [{"seed": m.seed, **record} for m in self.members for record in m.history]

    def summary(self) -> dict[str, Any]:
        """The first member's ``training.*`` keys, with the ensemble's dev score, seeds and summed cost."""
        first = self.members[0].summary()
        return {
            **first,
            "ensemble": {
                "seeds": self.seeds,
                "member_dev_macro_f1": [round(m.best_dev_macro_f1, 6) for m in self.members],
            },
            "best_dev_macro_f1": round(self.dev_macro_f1, 6),
            "steps": sum(m.steps for m in self.members),
            "train_seconds": round(sum(m.train_seconds for m in self.members), 2),
            "peak_rss_mb": round(max(m.peak_rss_mb for m in self.members), 1),
        }


def ensemble(
    members: Sequence[TrainResult], dev: pd.DataFrame, labels: Sequence[str], batch_size: int
) -> EnsembleResult:
    """The seed ensemble of ``members``, scored on gold ``dev`` (``text``, ``label``)."""
    labels = list(labels)
    result = EnsembleResult(list(members))
    probs = result.classifier.predict_proba(dev["text"].tolist(), batch_size=batch_size)
    y = dev["label"].map({name: i for i, name in enumerate(labels)}).to_numpy()
    result.dev_macro_f1 = float(macro_f1(y, probs.argmax(axis=1), len(labels)))
    return result
