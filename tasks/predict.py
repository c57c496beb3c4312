"""Predict labels and probabilities for texts with the registry's champion model, in batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import CleanConfig
from driftloop.errors import NoChampionError
from driftloop.tasks.clean import normalize_texts
from driftloop.tasks.registry import ModelVersion, Registry
from driftloop.tasks.train import TRAINING_CONFIG_FILE, TextClassifier, load_classifier


@dataclass
class Prediction:
    """Predictions for a list of texts, in input order."""

    labels: list[str]
    probabilities: np.ndarray  # (n_texts, n_labels), columns in ``label_names`` order
    label_names: list[str]
    model_version: str | None = None

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(axis=1) if len(self.labels) else np.zeros(0)

    def records(self, texts: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One JSON-able dict per text: label, confidence, {label: probability} (and the text when given)."""
        out = []
        for i, label in enumerate(self.labels):
            row: dict[str, Any] = {
                "label": label,
                "confidence": round(float(self.probabilities[i].max()), 6),
                "probs": {n: round(float(p), 6) for n, p in zip(self.label_names, self.probabilities[i])},
            }
            if texts is not None:
                row = {"text": texts[i], **row}
            out.append(row)
        return out


def champion_folder(models_dir: str | Path) -> tuple[ModelVersion, Path]:
    """The champion's registry entry and its model folder (one registry read)."""
    registry = Registry(models_dir)
    champion = registry.champion()
    if champion is None:
        raise NoChampionError(
            f"no champion model in {registry.path}: run the pipeline with train.enabled=true until a model is promoted"
        )
    return champion, registry.resolve_path(champion)


def predict(
    texts: Sequence[str], classifier: TextClassifier, batch_size: int = 64, model_version: str | None = None
) -> Prediction:
    """Labels + probabilities for ``texts`` with ``classifier``."""
    texts = [str(t) for t in texts]
    probs = classifier.predict_proba(texts, batch_size=batch_size)
    labels = [classifier.labels[i] for i in probs.argmax(axis=1)] if len(texts) else []
    return Prediction(
        labels=labels, probabilities=probs, label_names=list(classifier.labels), model_version=model_version
    )


def training_clean_config(model_dir: str | Path) -> CleanConfig | None:
    """The text cleaning the model was trained on (saved with it by the pipeline); None if not recorded."""
    saved = json.loads((Path(model_dir) / TRAINING_CONFIG_FILE).read_text(encoding="utf-8"))
    clean = (saved.get("pipeline") or {}).get("clean")
    return CleanConfig.model_validate(clean) if clean is not None else None


def predict_with_champion(
    texts: Sequence[str], models_dir: str | Path, batch_size: int = 64, device: str = "auto"
) -> Prediction:
    """Load the champion and predict ``texts`` (what ``driftloop predict`` runs).

    The texts get the same normalisation (NFKC, markup, control characters, whitespace) the model
    saw in training, so serving does not drift from training.
    """
    champion, folder = champion_folder(models_dir)
    classifier = load_classifier(folder, device=device)
    clean_cfg = training_clean_config(folder)
    inputs = [str(t) for t in texts]
    if clean_cfg is not None and inputs:
        inputs = normalize_texts(pd.Series(inputs, dtype=object), clean_cfg).tolist()
    return predict(inputs, classifier, batch_size, model_version=champion.version)
