"""Augmentation backends: each turns a batch of texts into candidate rewrites.

A backend is one class registered by name with ``@register``; the config picks it by name
(``augment.<method>.backend``). Built-ins:

- back_translation: ``apertium`` (Debian rule-based MT, offline), ``marian`` (transformers
  MarianMT), ``ctranslate2`` (the same Marian models converted to CTranslate2, int8 on CPU)
- paraphrase: ``causal-lm`` (few-shot prompted decoder, default the packaged Gemma 3 270M),
  ``seq2seq`` (T5/BART-style paraphraser)
- eda: ``eda`` (nlpaug word edits: WordNet synonym, swap, delete, misspelling)

Backends load their models in ``__init__`` and generate in batches; none fetches from a hub.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import itertools
import random
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from driftloop.config import BackTranslationConfig, EdaConfig, ParaphraseConfig
from driftloop.errors import InputError, ResourceError
from driftloop.resources import (
    ctranslate2_model_dir,
    prepare_wordnet,
    require_executable,
    require_module,
    resolve_model,
)

Method = Literal["back_translation", "paraphrase", "eda"]
APERTIUM_INSTALL = "apt-get install -y apertium apertium-eng-spa (one apertium-<pair> package per language pair)"


@dataclass(frozen=True)
class Generation:
    """One candidate: the index of its source text in the batch, the text, per-candidate settings."""

    source: int
    text: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Runtime:
    """Where backends run and cache: a resolved device ("cpu"/"cuda") and the cache folder."""

    device: str = "cpu"
    cache_dir: Path | None = None


class Augmenter(abc.ABC):
    """A backend: loads its model once, then rewrites batches of texts."""

    name: ClassVar[str]
    method: ClassVar[Method]
    takes_options: ClassVar[bool] = False  # whether it reads the free-form ``options`` of its config section
    model_id: str  # goes into the aug_model lineage column
    params: dict[str, Any]  # static settings, merged into aug_params

    @abc.abstractmethod
    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        """Up to ``n`` candidates per text; a text may get fewer when its rewrite fails."""


_REGISTRY: dict[str, type[Augmenter]] = {}


def register(cls: type[Augmenter]) -> type[Augmenter]:
    """Class decorator: make a backend selectable by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"augmentation backend {cls.name!r} is already registered by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def registered_backends(method: Method | None = None) -> dict[str, Method]:
    """Registered backend names and the method each implements."""
    return {name: cls.method for name, cls in sorted(_REGISTRY.items()) if method in (None, cls.method)}


def backend_class(method: Method, name: str) -> type[Augmenter]:
    """The class registered as ``name``, checked to implement ``method``."""
    cls = _REGISTRY.get(name)
    if cls is None or cls.method != method:
        choices = sorted(registered_backends(method))
        raise InputError(f"augment.{method}.backend: unknown backend {name!r} for {method}; choose one of {choices}")
    return cls


def build_augmenter(method: Method, cfg: Any, runtime: Runtime) -> Augmenter:
    """Instantiate (and so load) the backend the method's config section names."""
    cls = backend_class(method, cfg.backend)
    if cfg.options and not cls.takes_options:
        raise InputError(
            f"augment.{method}.options: backend {cfg.backend!r} takes no options, got {sorted(cfg.options)}"
        )
    return cls(cfg, runtime)


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return " ".join(str(text).split())


@contextlib.contextmanager
def python_seeded(seed: int) -> Iterator[None]:
    """Seed ``random`` and NumPy's global RNG for a block, restoring their state after (nlpaug uses both)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextlib.contextmanager
def torch_seeded(seed: int, device: str) -> Iterator[None]:
    """Seed torch sampling for a block without disturbing the caller's RNG streams."""
    import torch

    devices = [torch.cuda.current_device()] if device == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    # Batching texts of similar length keeps padding, and so wasted compute, small.
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); Linux only, else False."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _torch_dtype(dtype: str, device: str):
    """Config dtype name -> torch dtype; 'auto' is bfloat16 on a GPU or a bf16-capable CPU, else float32."""
    import torch

    if dtype == "auto":
        # Measured on 2 cores with AVX512-BF16: Gemma 270M decodes ~2.5x faster in bf16 than in fp32.
        return torch.bfloat16 if device == "cuda" or cpu_has_native_bf16() else torch.float32
    return getattr(torch, dtype)


def _load_error(kind: str, name_or_path: str, err: Exception) -> ResourceError:
    return ResourceError(
        f"cannot load the {kind} {name_or_path!r} offline ({type(err).__name__}: {err}); "
        "give a local folder (config.json + weights + tokenizer files) or a model already in the Hugging Face cache"
    )


# --------------------------------------------------------------------------------------------
# Back-translation
# --------------------------------------------------------------------------------------------

_MARK = "XQDLMARK{}XQ"
_MARK_RE = re.compile(r"^\s*XQDLMARK(\d+)XQ\s*$", re.MULTILINE)
_MARK_ANYWHERE = re.compile(r"XQDLMARK\d+XQ")


def reverse_pair(pair: str) -> str:
    """'eng-spa' -> 'spa-eng'."""
    source, _, pivot = pair.partition("-")
    return f"{pivot}-{source}"


def apertium_input(texts: Sequence[str]) -> str:
    """Texts as Apertium paragraphs, each between numbered marker paragraphs."""
    # Markers are unknown words, which Apertium passes through untouched; numbering them lets the
    # parser detect a lost or merged paragraph instead of silently shifting every later output.
    parts = [_MARK.format(0)]
    for i, text in enumerate(texts):
        parts += [one_line(_MARK_ANYWHERE.sub(" ", text)), _MARK.format(i + 1)]
    return "\n\n".join(parts) + "\n"


def parse_apertium_output(output: str, n: int) -> list[str | None]:
    """Translations in input order; None where the markers around a text did not come back intact."""
    result: list[str | None] = [None] * n
    marks = list(_MARK_RE.finditer(output))
    for here, after in itertools.pairwise(marks):
        index = int(here.group(1))
        if int(after.group(1)) == index + 1 and index < n:
            result[index] = one_line(output[here.end() : after.start()])
    return result


@register
class ApertiumBackTranslator(Augmenter):
    """Round trip source -> pivot -> source through Apertium, one process call per direction."""

    name = "apertium"
    method = "back_translation"

    def __init__(self, cfg: BackTranslationConfig, runtime: Runtime):
        self.executable = require_executable("apertium", APERTIUM_INSTALL, "apertium back-translation")
        installed = self.installed_modes(self.executable)
        self.pairs = list(cfg.apertium_pairs)
        missing = [mode for pair in self.pairs for mode in (pair, reverse_pair(pair)) if mode not in installed]
        if missing:
            packages = " ".join(sorted({f"apertium-{pair}" for pair in self.pairs}))
            raise ResourceError(
                f"apertium modes {missing} are not installed (installed: {sorted(installed) or 'none'}); "
                f"install the language-pair packages, e.g. apt-get install -y apertium {packages}"
            )
        self.model_id = "apertium:" + ",".join(self.pairs)
        self.params = {"pairs": self.pairs}

    @staticmethod
    def installed_modes(executable: str = "apertium") -> set[str]:
        """Modes ``apertium -l`` lists (e.g. eng-spa, spa-eng)."""
        listing = subprocess.run([executable, "-l"], capture_output=True, text=True, timeout=60, check=False)
        return {line.strip() for line in listing.stdout.splitlines() if line.strip()}

    def translate(self, texts: Sequence[str], mode: str) -> list[str | None]:
        """Translate all texts with one ``apertium -u <mode>`` call."""
        if not texts:
            return []
        done = subprocess.run(
            [self.executable, "-u", mode],
            input=apertium_input(texts),
            capture_output=True,
            text=True,
            timeout=120 + 0.05 * len(texts),
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"apertium -u {mode} failed with exit code {done.returncode}: {done.stderr.strip()[:500]}"
            )
        return parse_apertium_output(done.stdout, len(texts))

    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        out: list[Generation] = []
        for pair in self.pairs[:n]:
            pivot = self.translate(texts, pair)
            kept = [i for i, t in enumerate(pivot) if t]
            back = self.translate([pivot[i] for i in kept], reverse_pair(pair))
            out += [Generation(i, t, {"pair": pair}) for i, t in zip(kept, back) if t is not None]
        return out


class _HFSeq2Seq:
    """A transformers encoder-decoder with its tokenizer, generating in length-sorted batches."""

    def __init__(self, name_or_path: str, device: str, dtype: str = "float32"):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path, dtype=_torch_dtype(dtype, device))
        except (OSError, ValueError) as err:
            raise _load_error("seq2seq model", name_or_path, err) from None
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
            for batch in _length_batches(lengths, batch_size):
                enc = self.tokenizer(
                    [texts[i] for i in batch], return_tensors="pt", padding=True, truncation=True, max_length=max_length
                ).to(self.device)
                generated = self.model.generate(**enc, **options)
                decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
                for row, text in zip(np.repeat(batch, n), decoded):
                    outputs[row].append(one_line(text))
        return outputs


def _nbest_generations(outputs: list[list[str]]) -> list[Generation]:
    """Candidates from n-best lists, each tagged with its rank."""
    return [Generation(i, text, {"hypothesis": k}) for i, texts in enumerate(outputs) for k, text in enumerate(texts)]


@register
class MarianBackTranslator(Augmenter):
    """Round trip through two transformers MarianMT models (batched ``generate``, GPU if present).

    Several candidates per source are the n best return trips of a beam search.
    """

    name = "marian"
    method = "back_translation"

    def __init__(self, cfg: BackTranslationConfig, runtime: Runtime):
        self.cfg = cfg
        self.forward = _HFSeq2Seq(resolve_model(cfg.forward_model, runtime.cache_dir), runtime.device)
        self.backward = _HFSeq2Seq(resolve_model(cfg.backward_model, runtime.cache_dir), runtime.device)
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
        return _nbest_generations(back)


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
                raise _load_error("translation model", name, err) from None
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
        return _nbest_generations(back)


# --------------------------------------------------------------------------------------------
# Paraphrase
# --------------------------------------------------------------------------------------------


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
            model = AutoModelForCausalLM.from_pretrained(path, dtype=_torch_dtype(cfg.dtype, runtime.device))
        except (OSError, ValueError) as err:
            raise _load_error("causal LM", cfg.model, err) from None
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
            for batch in _length_batches([len(prompts[i]) for i in jobs], cfg.batch_size):
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


@register
class Seq2SeqParaphraser(Augmenter):
    """A T5/BART-style paraphraser by hub name or path; sampled, several outputs per input."""

    name = "seq2seq"
    method = "paraphrase"

    def __init__(self, cfg: ParaphraseConfig, runtime: Runtime):
        self.cfg = cfg
        self.device = runtime.device
        self.model = _HFSeq2Seq(resolve_model(cfg.model, runtime.cache_dir), runtime.device, dtype=cfg.dtype)
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


# --------------------------------------------------------------------------------------------
# EDA (easy data augmentation)
# --------------------------------------------------------------------------------------------

# Function words and SMS shorthand never worth replacing (no NLTK stopword corpus offline).
STOPWORDS = frozenset(
    """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves ok okay u ur r n da txt msg pls plz im ill
dont cant wont lol hey hi hello yes yeah
""".split()
)  # noqa: SIM905 - a word list reads better as text
# Tokens with digits (phone numbers, codes, prices) or of one or two characters stay as they are.
_PROTECTED_RE = r"(?:\S*\d\S*|\S{1,2})$"


_EDGE_PUNCT = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


def _split_punct(token: str) -> tuple[str, str, str]:
    """'(later,' -> ('(', 'later', ',')."""
    lead, core, trail = _EDGE_PUNCT.match(token).groups()
    return lead, core, trail


def _skip_token(token: str, first: bool) -> bool:
    core = _split_punct(token)[1]
    has_inner_capital = any(c.isupper() for c in (core[1:] if first else core))
    # Capitalised words mid-sentence are mostly names, brands or months: "May" is not a hawthorn.
    return not core.isalpha() or len(core) < 3 or core.lower() in STOPWORDS or has_inner_capital


class _TopSenseWordNet:
    """WordNet synonyms from a word's most frequent senses, for nlpaug's SynonymAug.

    nlpaug would POS-tag with NLTK's perceptron tagger, which has no offline source; instead
    tokens to keep are tagged 'DT' (which SynonymAug skips) and the rest draw synonyms from the
    word's first senses only, which WordNet orders by frequency.
    """

    def __init__(self, senses: int = 2):
        from nltk.corpus import wordnet

        self.wordnet = wordnet
        self.senses = senses

    def pos_tag(self, tokens: list[str]) -> list[tuple[str, str]]:
        return [(t, "DT" if _skip_token(t, i == 0) else "") for i, t in enumerate(tokens)]

    def predict(self, word: str, pos: str | None = None) -> list[str]:
        # Tokens are whitespace-separated, so punctuation rides along and is put back around the synonym.
        lead, core, trail = _split_punct(word)
        synsets = self.wordnet.synsets(core.lower())[: self.senses]
        lemmas = dict.fromkeys(lemma.name() for synset in synsets for lemma in synset.lemmas())
        return [f"{lead}{lemma}{trail}" for lemma in lemmas if lemma.lower() != core.lower()]


@register
class EdaAugmenter(Augmenter):
    """Word-level edits with nlpaug: WordNet synonym, random swap, random delete, common misspelling."""

    name = "eda"
    method = "eda"

    def __init__(self, cfg: EdaConfig, runtime: Runtime):
        naw = require_module("nlpaug.augmenter.word", "pip install nlpaug nltk", "EDA augmentation")
        self.cfg = cfg
        self.actions = list(cfg.actions)
        # Whitespace tokens keep "£50", "it's" and "02/09/03" intact; nlpaug's default splits and re-spaces them.
        common = {"aug_p": cfg.aug_p, "aug_max": cfg.max_words, "tokenizer": str.split, "reverse_tokenizer": " ".join}
        self.augmenters: dict[str, Any] = {}
        if "synonym" in self.actions:
            prepare_wordnet(cache_dir=runtime.cache_dir)
            require_module("nltk", "pip install nltk", "WordNet synonyms")
            synonym = naw.SynonymAug(aug_src="wordnet", stopwords=sorted(STOPWORDS), **common)
            synonym.model = _TopSenseWordNet()
            self.augmenters["synonym"] = synonym
        if "swap" in self.actions:
            self.augmenters["swap"] = naw.RandomWordAug(action="swap", **common)
        if "delete" in self.actions:
            self.augmenters["delete"] = naw.RandomWordAug(action="delete", stopwords_regex=_PROTECTED_RE, **common)
        if "spelling" in self.actions:
            spelling = naw.SpellingAug(stopwords=sorted(STOPWORDS), stopwords_regex=_PROTECTED_RE, **common)
            # nlpaug stores the misspellings of a word in set order, which changes with the hash seed.
            spelling.model.dict = {word: sorted(options) for word, options in spelling.model.dict.items()}
            self.augmenters["spelling"] = spelling
        self.model_id = "nlpaug+wordnet-3.0" if "synonym" in self.actions else "nlpaug"
        self.params = {"aug_p": cfg.aug_p, "max_words": cfg.max_words}

    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        # Candidate k of text i uses action (i + k) mod len(actions): every text gets distinct edits.
        by_action: dict[str, list[int]] = {a: [] for a in self.actions}
        for i in range(len(texts)):
            for k in range(n):
                by_action[self.actions[(i + k) % len(self.actions)]].append(i)
        out: list[Generation] = []
        with python_seeded(seed):
            for action, rows in by_action.items():
                for start in range(0, len(rows), self.cfg.batch_size):
                    chunk = rows[start : start + self.cfg.batch_size]
                    edited = self.augmenters[action].augment([one_line(texts[i]) for i in chunk])
                    out += [Generation(i, one_line(t), {"action": action}) for i, t in zip(chunk, edited)]
        return out
