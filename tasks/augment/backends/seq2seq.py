"""Paraphrase backend ``seq2seq``: a T5/BART-style paraphraser, sampled, several outputs per input."""

from __future__ import annotations

from collections.abc import Sequence

from driftloop.config import ParaphraseConfig
from driftloop.resources import resolve_model
from driftloop.tasks.augment.backends.base import Augmenter, Generation, Runtime, one_line, register, torch_seeded
from driftloop.tasks.augment.backends.hf_seq2seq import HFSeq2Seq


@register
class Seq2SeqParaphraser(Augmenter):
    """A T5/BART-style paraphraser by hub name or path; sampled, several outputs per input."""

    name = "seq2seq"
    method = "paraphrase"

    def __init__(self, cfg: ParaphraseConfig, runtime: Runtime):
        self.cfg = cfg
        self.device = runtime.device
        self.model = HFSeq2Seq(resolve_model(cfg.model, runtime.cache_dir), runtime.device, dtype=cfg.dtype)
        self.model_id = cfg.model
        self.params = {
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_new_tokens": cfg.max_new_tokens,
            "prefix": cfg.seq2seq_prefix,
        }

    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        cfg = self.cfg
        inputs = [cfg.seq2seq_prefix + one_line(t) for t in texts]
        with torch_seeded(seed, self.device):
            outputs = self.model.generate(
                inputs,
                n=n,
                batch_size=cfg.batch_size,
                max_length=512,
                sample=True,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                max_new_tokens=cfg.max_new_tokens,
            )
        return [Generation(i, text) for i, texts_i in enumerate(outputs) for text in texts_i]
