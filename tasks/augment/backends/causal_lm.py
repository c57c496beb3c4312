"""Paraphrase backend ``causal-lm``: a few-shot (or chat-template) prompted decoder, default Gemma 3 270M."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from driftloop.config import ParaphraseConfig
from driftloop.hardware import weights_dtype
from driftloop.progress import track
from driftloop.resources import resolve_model
from driftloop.tasks.augment.backends.base import (
    Augmenter,
    Generation,
    Runtime,
    load_error,
    one_line,
    register,
    torch_seeded,
)
from driftloop.tasks.batching import length_sorted_batches


@register
class CausalLMParaphraser(Augmenter):
    """Few-shot (or chat-template) paraphrasing with a causal LM; batched, left-padded, stops at end of line.

    Every prompt starts with the same instruction and examples, so their key/value cache is
    computed once and shared by every batch; only each text's own suffix is prefilled.
    """

    name = "causal-lm"
    method = "paraphrase"

    def __init__(self, cfg: ParaphraseConfig, runtime: Runtime):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.device = runtime.device
        path = resolve_model(cfg.model, runtime.cache_dir)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=weights_dtype(cfg.dtype, runtime.device))
        except (OSError, ValueError) as err:
            raise load_error("causal LM", cfg.model, err) from None
        self.model = model.to(runtime.device).eval()
        self.use_chat = cfg.chat_template == "auto" and bool(getattr(self.tokenizer, "chat_template", None))
        eos = self.model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.append(self.tokenizer.eos_token_id)
        # A paraphrase is one line: any token holding a newline ends it (Gemma has dozens such tokens;
        # byte-level BPE spells the newline "Ċ", SentencePiece byte fallback "<0x0A>").
        newline_ids = [
            i for tok, i in self.tokenizer.get_vocab().items() if "\n" in tok or "Ċ" in tok or tok == "<0x0A>"
        ]
        self.stop_ids = sorted(set(eos_ids + newline_ids))
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos_ids[0]
        self.sampler = top_p_sampler(cfg.temperature, cfg.top_p)
        self.model_id = cfg.model
        self.params = {
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_new_tokens": cfg.max_new_tokens,
            "prompt": "chat" if self.use_chat else f"few-shot:{len(cfg.examples)}",
        }

    def prompt(self, text: str) -> str:
        """The full prompt for one text."""
        cfg = self.cfg
        if self.use_chat:
            message = f"{cfg.instruction} Reply with the rewritten message only.\n\nMessage: {text}"
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
            )
        shots = "".join(f"Message: {one_line(e.source)}\nRewrite: {one_line(e.rewrite)}\n\n" for e in cfg.examples)
        return f"{cfg.instruction}\n\n{shots}Message: {text}\nRewrite:"

    def _encode(self, prompt: str) -> list[int]:
        # A chat template writes its own special tokens; a plain prompt gets the tokenizer's BOS.
        return self.tokenizer(prompt, add_special_tokens=not self.use_chat)["input_ids"]

    def _prefix_cache(self, prefix: list[int]):
        """Key/value cache of the shared prompt prefix, or None when the model's cache cannot be reused."""
        import torch
        from transformers import DynamicCache

        if len(prefix) < 2:
            return None
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True)
        cache = out.past_key_values
        return cache if isinstance(cache, DynamicCache) else None

    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        cfg = self.cfg
        texts = [one_line(t) for t in texts]
        prompts = [self._encode(self.prompt(t)) for t in texts]
        if not prompts:
            return []
        # The shared prefix ends at least one token before the shortest prompt, so each suffix is non-empty.
        prefix_len = min(len(common_prefix(prompts)), min(map(len, prompts)) - 1)
        cache = self._prefix_cache(prompts[0][:prefix_len])
        if cache is None:
            prefix_len = 0
        prefix = prompts[0][:prefix_len]
        source_tokens = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        jobs = [i for i in range(len(texts)) for _ in range(n)]
        out: list[Generation] = []
        with torch_seeded(seed, self.device), torch.inference_mode():
            batches = length_sorted_batches([len(prompts[i]) for i in jobs], cfg.batch_size)
            for batch in track(batches, "paraphrase", len(jobs), "candidates"):
                rows = [jobs[j] for j in batch]
                suffixes = [prompts[i][prefix_len:] for i in rows]
                width = max(map(len, suffixes))
                ids = torch.full((len(rows), prefix_len + width), self.pad_id, dtype=torch.long)
                mask = torch.zeros_like(ids)
                ids[:, :prefix_len] = torch.tensor(prefix, dtype=torch.long)
                mask[:, :prefix_len] = 1
                for r, suffix in enumerate(suffixes):
                    # Padding sits between the shared prefix and each suffix; position ids follow the
                    # mask, so every row sees exactly its unpadded prompt.
                    ids[r, prefix_len + width - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
                    mask[r, prefix_len + width - len(suffix) :] = 1
                # A paraphrase is about as long as its source; the cap stops run-on samples early.
                longest = max(source_tokens[i] for i in rows)
                options: dict[str, Any] = {}
                if cache is not None:
                    batch_cache = copy.deepcopy(cache)
                    batch_cache.batch_repeat_interleave(len(rows))
                    options["past_key_values"] = batch_cache
                # An explicit config: a model's own defaults (repetition penalty, top-k ...) must not leak in.
                settings = GenerationConfig(
                    do_sample=False,
                    num_beams=1,
                    max_new_tokens=min(cfg.max_new_tokens, int(1.5 * longest) + 8),
                    eos_token_id=self.stop_ids,
                    pad_token_id=self.pad_id,
                )
                generated = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    generation_config=settings,
                    logits_processor=LogitsProcessorList([self.sampler]),
                    **options,
                )
                decoded = self.tokenizer.batch_decode(generated[:, ids.shape[1] :], skip_special_tokens=True)
                out += [Generation(i, _first_line(text)) for i, text in zip(rows, decoded)]
        return out


def top_p_sampler(temperature: float, top_p: float, top_k: int = 256):
    """A logits processor that samples the next token itself, for use with greedy ``generate``.

    transformers' top-p warper sorts the whole vocabulary at every step and then samples from it:
    with Gemma's 262k-token vocabulary that was half of all CPU time. Here nucleus sampling runs
    within the ``top_k`` most likely tokens (which hold the nucleus of any trained LM), and the
    chosen token is the only one left with a finite score, so greedy decoding picks it.
    """
    import torch
    from transformers import LogitsProcessor

    class TopPSampler(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            top_scores, top_ids = torch.topk(scores.float(), k=min(top_k, scores.shape[-1]), dim=-1)
            probs = torch.softmax(top_scores / temperature, dim=-1)
            # Keep the smallest prefix whose mass reaches top_p; the top token always stays.
            outside = (probs.cumsum(dim=-1) - probs) >= top_p
            probs = probs.masked_fill(outside, 0.0)
            choice = top_ids.gather(-1, torch.multinomial(probs, 1))
            picked = torch.full_like(scores, float("-inf"))
            return picked.scatter_(-1, choice, 0.0)

    return TopPSampler()


def common_prefix(rows: Sequence[Sequence[int]]) -> list[int]:
    """The longest token sequence every row starts with."""
    first = rows[0]
    end = len(first)
    for row in rows[1:]:
        end = min(end, len(row))
        mismatch = next((k for k in range(end) if row[k] != first[k]), end)
        end = mismatch
    return list(first[:end])


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.split("\n", 1)[0].strip() if stripped else ""
