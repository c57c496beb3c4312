"""Tiny randomly initialised models and data for fast CPU tests (no hub, no big weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SPAM_TEMPLATES = [
    "WIN a FREE prize now call {n} to claim",
    "URGENT you have won cash reply {n} now",
    "free entry txt WIN to {n} claim your prize",
    "claim your free ringtone text {n} now",
]
HAM_TEMPLATES = [
    "see you at lunch at {n} ok",
    "are we still meeting at {n} tonight",
    "sorry i will be late home by {n}",
    "can you pick up milk on the way {n}",
]


def sms_like_frame(n: int = 64, seed: int = 0, spam_share: float = 0.5) -> pd.DataFrame:
    """A small spam/ham table with ``text``, ``label``, ``label_confidence`` and ``label_probs``."""
    rng = np.random.default_rng(seed)
    is_spam = rng.random(n) < spam_share
    templates = np.where(is_spam, rng.integers(0, len(SPAM_TEMPLATES), n), rng.integers(0, len(HAM_TEMPLATES), n))
    numbers = rng.integers(1, 99, n)
    texts = [
        (SPAM_TEMPLATES if s else HAM_TEMPLATES)[t].format(n=num) for s, t, num in zip(is_spam, templates, numbers)
    ]
    conf = rng.uniform(0.7, 1.0, n)
    p_spam = np.where(is_spam, conf, 1 - conf)
    return pd.DataFrame(
        {
            "text": texts,
            "label": np.where(is_spam, "spam", "ham"),
            "label_confidence": conf,
            "label_probs": [[1 - p, p] for p in p_spam],
        }
    )


def tiny_tokenizer(corpus: list[str] | None = None):
    """A BERT-style WordPiece tokenizer over the words of a few sentences, as a PreTrainedTokenizerFast.

    The vocabulary is built from the sorted word set rather than by ``WordPieceTrainer``, whose
    tie-breaking is not stable across processes: token ids (and so test results) must not drift.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    corpus = corpus or [t.format(n=i) for t in SPAM_TEMPLATES + HAM_TEMPLATES for i in range(100)]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for line in corpus for w in line.lower().split()})
    vocab = {tok: i for i, tok in enumerate(specials + words)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def tiny_bert_dir(folder: Path, seed: int = 0) -> Path:
    """Save a random 2-layer, hidden-64 BertModel + its tokenizer under ``folder`` (a loadable base model)."""
    import torch
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_causal_lm_dir(folder: Path, seed: int = 0) -> Path:
    """Save a random 2-layer Qwen2 causal LM (a decoder with a ``score`` head for classification) + tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    tokenizer = tiny_tokenizer()
    tokenizer.eos_token = "[SEP]"
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
