"""Tiny randomly initialised generation models saved to folders, for augmentation tests and benches.

Each builder writes a folder that ``from_pretrained`` loads like a hub model (config, weights,
tokenizer files), so the backends run their real loading code. Nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

CORPUS = [
    "Free entry in a weekly competition to win cup final tickets.",
    "Congratulations! You have won a prize, call now to claim it.",
    "Sorry, I will call you later, I am in a meeting.",
    "Are we still meeting for lunch tomorrow?",
    "URGENT! Your mobile number has won 2000 pounds, reply WIN now.",
    "Ok, I am leaving work now, be home in twenty minutes.",
    "Txt STOP to end your ringtone subscription, cost 150p per week.",
    "Did you get the message I sent you this morning?",
]


def train_sentencepiece(corpus: Sequence[str], prefix: Path, vocab_size: int) -> Path:
    """A unigram SentencePiece model over ``corpus``; returns the .model path."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(corpus)),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        num_threads=1,
        hard_vocab_limit=False,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def build_marian(
    folder: Path,
    *,
    corpus: Sequence[str] = CORPUS,
    spm_vocab: int = 120,
    vocab_size: int | None = None,
    d_model: int = 32,
    layers: int = 1,
    heads: int = 2,
    ffn: int = 64,
    seed: int = 0,
) -> Path:
    """A MarianMT model with a real MarianTokenizer (SentencePiece + vocab.json), random weights.

    ``vocab_size`` pads vocab.json with unused tokens up to a realistic size (opus-mt: ~58k), since
    the output projection dominates decoding cost. ``<pad>`` is the last id, as in opus-mt.
    """
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_file = train_sentencepiece(corpus, folder / "spm", spm_vocab)
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(model_file))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    tokens = ["</s>", "<unk>", *[p for p in pieces if p not in ("<unk>", "</s>", "<pad>")]]
    if vocab_size is not None:
        tokens += [f"<extra_{i}>" for i in range(vocab_size - 1 - len(tokens))]
    tokens.append("<pad>")
    vocab = {tok: i for i, tok in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(str(model_file), str(model_file), str(folder / "vocab.json"))
    tokenizer.save_pretrained(folder)
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_position_embeddings=512,
        pad_token_id=pad,
        eos_token_id=0,
        decoder_start_token_id=pad,
        forced_eos_token_id=0,
        activation_function="swish",
        scale_embedding=True,
    )
    torch.manual_seed(seed)
    MarianMTModel(config).eval().save_pretrained(folder)
    for leftover in ("spm.model", "spm.vocab"):
        (folder / leftover).unlink(missing_ok=True)
    return folder


def _char_tokenizer(corpus: Sequence[str], specials: Sequence[str], post: str | None):
    """A character-level fast tokenizer over the characters of ``corpus`` (deterministic ids)."""
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted({c for text in corpus for c in text} | set(" \n:"))
    vocab = {tok: i for i, tok in enumerate([*specials, *chars])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(list(specials))
    if post:
        backend.post_processor = processors.TemplateProcessing(
            single=post.replace("$", "$A"), special_tokens=[(s, vocab[s]) for s in specials if s in post]
        )
    return backend, vocab, PreTrainedTokenizerFast


def build_t5(folder: Path, *, corpus: Sequence[str] = CORPUS, seed: int = 0) -> Path:
    """A T5-style paraphraser (random weights) with a character-level tokenizer."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    folder = Path(folder)
    backend, vocab, fast = _char_tokenizer([*corpus, "paraphrase"], ["<pad>", "</s>", "<unk>"], "$ </s>")
    tokenizer = fast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    tokenizer.save_pretrained(folder)
    config = T5Config(
        vocab_size=len(vocab),
        d_model=32,
        d_ff=64,
        d_kv=16,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    T5ForConditionalGeneration(config).eval().save_pretrained(folder)
    return folder


CHAT_TEMPLATE = (
    "{% for m in messages %}<start>{{ m['role'] }}: {{ m['content'] }}<end>{% endfor %}"
    "{% if add_generation_prompt %}<start>assistant: {% endif %}"
)


def build_causal_lm(folder: Path, *, corpus: Sequence[str] = CORPUS, chat: bool = False, seed: int = 0) -> Path:
    """A tiny Gemma 3 text model (random weights; sliding + full attention layers like the real one)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    folder = Path(folder)
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start>", "<end>"]
    instruction = "Paraphrase each text message: say the same thing with other words, keeping names, numbers, links."
    text = [*corpus, instruction, "Reply with the rewritten message only."]
    backend, vocab, fast = _char_tokenizer(text, specials, "<bos> $")
    tokenizer = fast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        padding_side="left",
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = Gemma3TextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=32,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=2048,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    torch.manual_seed(seed)
    Gemma3ForCausalLM(config).eval().save_pretrained(folder)
    return folder
