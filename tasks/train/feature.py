"""Method ``feature``: embed once with the frozen encoder, fit a logistic-regression head on dev macro-F1.

No gradient loop, no checkpoints: embedding is the only expensive part and it runs once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from driftloop.tasks.train.classifier import MeanPoolClassifier
from driftloop.tasks.train.fit import FitInputs, FitOutcome, macro_f1

log = logging.getLogger("driftloop.train")

# Inverse regularisation strengths tried; the best on dev macro-F1 wins.
C_GRID = (0.1, 1.0, 10.0, 100.0)


class FeatureHeadFit:
    """Fit the linear head of a :class:`MeanPoolClassifier` by logistic regression on pooled embeddings."""

    def __init__(self, inputs: FitInputs):
        self.clf, self.cfg, self.seed = inputs.classifier, inputs.cfg, inputs.seed
        self.train_texts = inputs.train_df["text"].astype(str).tolist()
        self.dev_texts = inputs.dev_df["text"].astype(str).tolist()
        self.targets, self.weights, self.dev_codes = inputs.targets, inputs.weights, inputs.dev_codes

    def run(self) -> FitOutcome:
        from sklearn.linear_model import LogisticRegression

        t0 = time.perf_counter()
        batch = self.cfg.eval_batch_size
        x_train, x_dev = self.clf.embed(self.train_texts, batch), self.clf.embed(self.dev_texts, batch)
        embed_time = time.perf_counter() - t0
        n, k = self.targets.shape
        # Soft labels for a logistic regression: each row once per class, weighted by that class's probability.
        x_rep = np.repeat(x_train, k, axis=0)
        y_rep = np.tile(np.arange(k), n)
        w_rep = (self.targets * self.weights[:, None]).reshape(-1)
        keep = w_rep > 0
        best: tuple[float, float, Any] = (-1.0, 0.0, None)
        history = []
        # Model selection on dev macro-F1 plays the part of early stopping here.
        for c in C_GRID:
            head = LogisticRegression(C=c, max_iter=2000, random_state=self.seed)
            head.fit(x_rep[keep], y_rep[keep], sample_weight=w_rep[keep])
            metric = macro_f1(self.dev_codes, lr_logits(head, x_dev, k).argmax(axis=1), k)
            history.append({"C": c, "dev_macro_f1": round(metric, 6)})
            log.info("feature head C=%g: dev macro-F1 %.4f", c, metric)
            if metric > best[0]:
                best = (metric, c, head)
        weight, bias = lr_weights(best[2], k)
        model: MeanPoolClassifier = self.clf.model  # type: ignore[assignment]
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(weight))
            model.head.bias.copy_(torch.from_numpy(bias))
        model.eval()
        return FitOutcome(
            epochs=1.0,
            steps=0,
            samples_per_s=(len(self.train_texts) + len(self.dev_texts)) / embed_time,
            best_metric=best[0],
            best_step=0,
            train_seconds=time.perf_counter() - t0,
            history=history,
        )


def lr_weights(head: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted scikit-learn LogisticRegression as (k, d) weights and (k,) biases of a softmax head."""
    coef, intercept = head.coef_.astype(np.float32), head.intercept_.astype(np.float32)
    if coef.shape[0] == 1:  # binary: scikit-learn keeps one row; softmax([-z/2, z/2]) == sigmoid(z)
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
    full_w = np.zeros((k, coef.shape[1]), dtype=np.float32)
    full_b = np.full(k, -1e4, dtype=np.float32)  # classes never seen in training get ~0 probability
    full_w[head.classes_] = coef
    full_b[head.classes_] = intercept
    return full_w, full_b


def lr_logits(head: Any, x: np.ndarray, k: int) -> np.ndarray:
    """Logits of the softmax head :func:`lr_weights` builds, for embeddings ``x``."""
    w, b = lr_weights(head, k)
    return x @ w.T + b
