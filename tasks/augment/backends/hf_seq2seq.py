"""A transformers encoder-decoder with its tokenizer, shared by the marian and seq2seq backends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from driftloop.hardware import weights_dtype
from driftloop.progress import track
from driftloop.tasks.augment.backends.base import Generation, load_error, one_line
from driftloop.tasks.batching import length_sorted_batches


class HFSeq2Seq:
    """A transformers encoder-decoder with its tokenizer, generating in length-sorted batches."""

    def __init__(self, name_or_path: str, device: str, dtype: str = "float32"):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path, dtype=weights_dtype(dtype, device))
        except (OSError, ValueError) as err:
            raise load_error("seq2seq model", name_or_path, err) from None
        self.model = model.to(device).eval()
        self.device = device

    def generate(
        self,
        texts: Sequence[str],
        *,
        n: int,
        batch_size: int,
        max_length: int,
        num_beams: int = 1,
        sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int | None = None,
    ) -> list[list[str]]:
        """``n`` outputs per input text, in input order."""
        import torch

        outputs: list[list[str]] = [[] for _ in texts]
        lengths = [len(t) for t in texts]
        options: dict[str, Any] = {"num_return_sequences": n, "max_new_tokens": max_new_tokens or max_length}
        if sample:
            options.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            options.update(do_sample=False, num_beams=max(num_beams, n))
        with torch.inference_mode():
            for batch in track(length_sorted_batches(lengths, batch_size), "seq2seq generate", len(texts), "texts"):
                enc = self.tokenizer(
                    [texts[i] for i in batch], return_tensors="pt", padding=True, truncation=True, max_length=max_length
                ).to(self.device)
                generated = self.model.generate(**enc, **options)
                decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
                for row, text in zip(np.repeat(batch, n), decoded):
                    outputs[row].append(one_line(text))
        return outputs


def nbest_generations(outputs: list[list[str]]) -> list[Generation]:
    """Candidates from n-best lists, each tagged with its rank."""
    return [Generation(i, text, {"hypothesis": k}) for i, texts in enumerate(outputs) for k, text in enumerate(texts)]
