"""Back-translation backend ``ctranslate2``: Marian models converted to CTranslate2 (int8 on CPU)."""

from __future__ import annotations

from collections.abc import Sequence

from driftloop.config import BackTranslationConfig
from driftloop.resources import ctranslate2_model_dir, require_module, resolve_model
from driftloop.tasks.augment.backends.base import Augmenter, Generation, Runtime, load_error, one_line, register
from driftloop.tasks.augment.backends.hf_seq2seq import nbest_generations


@register
class CTranslate2BackTranslator(Augmenter):
    """Round trip through Marian models converted to CTranslate2 (int8 on CPU), converted once and cached."""

    name = "ctranslate2"
    method = "back_translation"

    def __init__(self, cfg: BackTranslationConfig, runtime: Runtime):
        from transformers import AutoTokenizer

        self.ct2 = require_module("ctranslate2", "pip install ctranslate2", "the ctranslate2 back-translation backend")
        self.cfg = cfg
        self.compute_type = cfg.compute_type
        if self.compute_type == "auto":
            self.compute_type = "int8_float16" if runtime.device == "cuda" else "int8"
        self.directions = []
        for name in (cfg.forward_model, cfg.backward_model):
            source = resolve_model(name, runtime.cache_dir)
            try:
                tokenizer = AutoTokenizer.from_pretrained(source)
                folder = ctranslate2_model_dir(source, self.compute_type, runtime.cache_dir)
            except (OSError, ValueError) as err:
                raise load_error("translation model", name, err) from None
            translator = self.ct2.Translator(str(folder), device=runtime.device, compute_type=self.compute_type)
            self.directions.append((translator, tokenizer))
        self.model_id = f"{cfg.forward_model} -> {cfg.backward_model}"
        self.params = {"max_length": cfg.max_length, "num_beams": cfg.num_beams, "compute_type": self.compute_type}

    def translate(self, texts: Sequence[str], direction: int, n: int = 1) -> list[list[str]]:
        """``n`` translations per text through one direction (0: forward, 1: backward)."""
        translator, tokenizer = self.directions[direction]
        cfg = self.cfg
        ids = tokenizer(list(texts), truncation=True, max_length=cfg.max_length)["input_ids"]
        tokens = [tokenizer.convert_ids_to_tokens(row) for row in ids]
        # n-best beam search rather than sampling: CTranslate2's sampling ignores set_random_seed
        # (OpenNMT/CTranslate2#1757), and augmentation must be reproducible.
        results = translator.translate_batch(
            tokens,
            max_batch_size=cfg.batch_size,
            max_decoding_length=cfg.max_length,
            beam_size=max(cfg.num_beams, n),
            num_hypotheses=n,
        )
        return [
            [
                one_line(tokenizer.decode(tokenizer.convert_tokens_to_ids(hyp), skip_special_tokens=True))
                for hyp in r.hypotheses
            ]
            for r in results
        ]

    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        pivot = self.translate(texts, 0)
        back = self.translate([p[0] for p in pivot], 1, n)
        return nbest_generations(back)
