"""Augmentation backends: each turns a batch of texts into candidate rewrites, one module per backend.

Built-ins (registered by name when this package is imported):

- back_translation: ``apertium`` (Debian rule-based MT, offline), ``marian`` (transformers
  MarianMT), ``ctranslate2`` (the same Marian models converted to CTranslate2, int8 on CPU)
- paraphrase: ``causal-lm`` (few-shot prompted decoder, default the packaged Gemma 3 270M),
  ``seq2seq`` (T5/BART-style paraphraser)
- eda: ``eda`` (nlpaug word edits: WordNet synonym, swap, delete, misspelling)

Backends load their models in ``__init__`` and generate in batches; none fetches from a hub. A new
backend is one :class:`Augmenter` subclass, registered with ``@register`` or named in the config by
dotted path (``package.module:ClassName``); see :mod:`driftloop.tasks.augment.backends.base`.
"""

from driftloop.tasks.augment.backends.apertium import (
    ApertiumBackTranslator,
    apertium_input,
    parse_apertium_output,
    reverse_pair,
)
from driftloop.tasks.augment.backends.base import (
    _REGISTRY,
    Augmenter,
    Generation,
    Method,
    Runtime,
    backend_class,
    build_augmenter,
    check_backend,
    one_line,
    python_seeded,
    register,
    registered_backends,
    torch_seeded,
)
from driftloop.tasks.augment.backends.causal_lm import CausalLMParaphraser, common_prefix, top_p_sampler
from driftloop.tasks.augment.backends.ctranslate2 import CTranslate2BackTranslator
from driftloop.tasks.augment.backends.eda import EdaAugmenter
from driftloop.tasks.augment.backends.marian import MarianBackTranslator
from driftloop.tasks.augment.backends.seq2seq import Seq2SeqParaphraser

__all__ = [
    "_REGISTRY",
    "ApertiumBackTranslator",
    "Augmenter",
    "CTranslate2BackTranslator",
    "CausalLMParaphraser",
    "EdaAugmenter",
    "Generation",
    "MarianBackTranslator",
    "Method",
    "Runtime",
    "Seq2SeqParaphraser",
    "apertium_input",
    "backend_class",
    "build_augmenter",
    "check_backend",
    "common_prefix",
    "one_line",
    "parse_apertium_output",
    "python_seeded",
    "register",
    "registered_backends",
    "reverse_pair",
    "top_p_sampler",
    "torch_seeded",
]
