"""The trained classifier in memory: used for dev evaluation, test evaluation and prediction."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from driftloop.progress import track
from driftloop.tasks.batching import length_sorted_batches
from driftloop.tasks.embed import mean_pool
from driftloop.tasks.train.data import pad_batch, tokenize


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """torch.autocast for ``dtype`` on ``device``; a no-op context for None (plain fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class _Logits:
    logits: torch.Tensor


class MeanPoolClassifier(nn.Module):
    """Frozen encoder, mean pooling over real tokens, L2 norm, then a linear head (method ``feature``)."""

    def __init__(self, encoder: nn.Module, head: nn.Linear):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return _Logits(self.head(self.embed(input_ids, attention_mask)))


class TextClassifier:
    """A trained classifier in memory: tokenizer + model + label set; predicts in length-sorted batches."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        labels: Sequence[str],
        *,
        method: str,
        max_length: int,
        device: torch.device,
        autocast_dtype: torch.dtype | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.method = method
        self.max_length = max_length
        self.device = device
        self.autocast_dtype = autocast_dtype

    def predict_proba(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Class probabilities, shape (len(texts), len(labels)), columns in ``labels`` order."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        ids = tokenize(self.tokenizer, texts, self.max_length)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), autocast(self.device, self.autocast_dtype):
                # Length-sorted batches keep padding (wasted compute) small; the indices undo the order.
                batches = length_sorted_batches([len(x) for x in ids], batch_size)
                for idx in track(batches, "predict", len(texts), "texts"):
                    batch = pad_batch([ids[i] for i in idx], self.tokenizer.pad_token_id, self.device)
                    logits = self.model(**batch).logits.float()
                    out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
        finally:
            self.model.train(was_training)
        return out

    def embed(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Pooled sentence embeddings of a :class:`MeanPoolClassifier` (method ``feature``), in input order."""
        model = self.model
        if not isinstance(model, MeanPoolClassifier):
            raise TypeError(f"embed needs a feature-method classifier, this one is {self.method!r}")
        texts = [str(t) for t in texts]
        ids = tokenize(self.tokenizer, texts, self.max_length)
        out = np.zeros((len(texts), model.head.in_features), dtype=np.float32)
        model.eval()
        with torch.inference_mode(), autocast(self.device, self.autocast_dtype):
            batches = length_sorted_batches([len(x) for x in ids], batch_size)
            for idx in track(batches, "embed", len(texts), "texts"):
                batch = pad_batch([ids[i] for i in idx], self.tokenizer.pad_token_id, self.device)
                out[idx] = model.embed(**batch).cpu().numpy()
        return out

    def predict(self, texts: Sequence[str], batch_size: int = 128) -> list[str]:
        """Top label per text."""
        probs = self.predict_proba(texts, batch_size)
        return [self.labels[i] for i in probs.argmax(axis=1)]
