"""Back-translation backend ``marian``: a round trip through two transformers MarianMT models."""

from __future__ import annotations

from collections.abc import Sequence

from driftloop.config import BackTranslationConfig
from driftloop.resources import resolve_model
from driftloop.tasks.augment.backends.base import Augmenter, Generation, Runtime, register
from driftloop.tasks.augment.backends.hf_seq2seq import HFSeq2Seq, nbest_generations


@register
class MarianBackTranslator(Augmenter):
    """Round trip through two transformers MarianMT models (batched ``generate``, GPU if present).

    Several candidates per source are the n best return trips of a beam search.
    """

    name = "marian"
    method = "back_translation"

    def __init__(self, cfg: BackTranslationConfig, runtime: Runtime):
        self.cfg = cfg
        self.forward = HFSeq2Seq(resolve_model(cfg.forward_model, runtime.cache_dir), runtime.device)
        self.backward = HFSeq2Seq(resolve_model(cfg.backward_model, runtime.cache_dir), runtime.device)
        self.model_id = f"{cfg.forward_model} -> {cfg.backward_model}"
        self.params = {"max_length": cfg.max_length, "num_beams": cfg.num_beams}

    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        cfg = self.cfg
        pivot = self.forward.generate(
            texts, n=1, batch_size=cfg.batch_size, max_length=cfg.max_length, num_beams=cfg.num_beams
        )
        # Several candidates per source are the n best return trips of a beam search: deterministic, and
        # the same recipe as the ctranslate2 backend (whose sampling cannot be seeded).
        back = self.backward.generate(
            [p[0] for p in pivot], n=n, batch_size=cfg.batch_size, max_length=cfg.max_length, num_beams=cfg.num_beams
        )
        return nbest_generations(back)
