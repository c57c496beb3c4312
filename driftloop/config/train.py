"""The ``train`` section: the keys every training method reads (:class:`TrainConfig`), and one class per method
family holding only the keys that family reads, chosen by ``train.method`` (as peft has ``LoraConfig``,
``IA3Config``, ``PromptTuningConfig``)."""

from __future__ import annotations

import logging
import warnings
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, TypeAdapter, model_validator

from driftloop.config.base import _Section

log = logging.getLogger("driftloop.config")

METHOD_HELP = (
    "lora (adapters on every linear layer by default), qlora (LoRA over a 4-bit NF4 base, GPU), full (all weights), "
    "feature (frozen encoder + head), prompt_tuning, prefix_tuning, p_tuning or ia3. Each method reads the shared "
    "train keys and its own: the rows below that name their methods."
)


class TrainConfig(_Section):
    """Fine-tuning a sequence classifier (transformers + PEFT) on the weakly labelled training set: the keys every
    method reads. Each method's own keys are in its class below; build one with :meth:`TrainConfig.of`."""

    enabled: bool = Field(False, description="Fine-tune a classifier after validation.")
    # --- model and method ---
    model: str = Field(
        "minilm",
        description=(
            "Base model: 'minilm' (the offline all-MiniLM-L6-v2 wheel), 'gemma3-270m' (the offline Gemma 3 270M "
            "decoder with a classification head; 3-7x MiniLM's time per step on CPU), a local folder or a hub name."
        ),
    )
    method: Literal["lora", "qlora", "full", "feature", "prompt_tuning", "prefix_tuning", "p_tuning", "ia3"] = Field(
        "lora", description=METHOD_HELP
    )
    strict: bool = Field(
        False, description="Fail instead of falling back when the method cannot run here (qlora without a GPU)."
    )
    # --- optimisation ---
    epochs: int = Field(
        4, ge=1, description="Upper bound on passes over the training set (early stopping may end sooner)."
    )
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps; default: run all epochs."
    )
    min_steps: int = Field(
        100,
        ge=0,
        description=(
            "Train at least this many optimizer steps, with more epochs on a small training set, and stop early only "
            "after them: a few hundred rows (the gold-only baseline) would otherwise stop after a few dozen steps, "
            "before the model leaves the majority class. max_steps still caps."
        ),
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
    num_processes: int = Field(
        1,
        ge=1,
        description=(
            "Training processes: above 1, the fine-tune runs under `accelerate launch` (DDP: one process per GPU, or "
            "gloo on CPU); batch_size is per process, so the effective batch is batch_size x "
            "gradient_accumulation_steps x num_processes. Rank 0 writes checkpoints and the model folder."
        ),
    )
    distributed: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description=(
            "With num_processes above 1: ddp keeps a whole model on every process; fsdp shards parameters, "
            "gradients and optimizer state across the processes (PyTorch FSDP2 fully_shard, one unit per "
            "transformer block), for a base that does not fit one device. fsdp does not take qlora's 4-bit weights."
        ),
    )
    seeds: int = Field(
        1,
        ge=1,
        le=20,
        description=(
            "Fine-tune this many seeds (project.seed, project.seed + 1, ...). The one with the best gold dev macro-F1 "
            "is kept; the summary's seed_band reports every seed's gold test scores, their mean and std, and the "
            "points over the label model. Costs one training per seed."
        ),
    )
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
            "auto: bf16 autocast on a GPU with native bf16 (+ tf32), fp32 on CPU so that results reproduce across "
            "machines; bf16: also on CPU (faster with AVX512-BF16/AMX, CPU-dependent results)."
        ),
    )
    attn_implementation: Literal["auto", "sdpa", "eager"] = Field(
        "auto", description="Attention kernel; auto: sdpa where the model supports it."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, ~30% slower."
    )
    deterministic: bool = Field(True, description="Use deterministic kernels so a seeded run repeats exactly.")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if type(self) not in METHOD_CLASSES:
            raise TypeError("TrainConfig holds the shared keys only: build a method's config with TrainConfig.of(...)")
        if self.distributed == "fsdp" and self.method in ("qlora", "feature"):
            raise ValueError(
                f"train.distributed fsdp cannot shard train.method {self.method!r}: use lora or full "
                "(with precision bf16 on GPU), or train.distributed ddp"
            )
        return self

    @staticmethod
    def of(**values: Any) -> TrainConfig:
        """The config of ``values["method"]`` (default lora), validated: a LoraTrainConfig, IA3TrainConfig, ...; keys
        of other methods are dropped with a deprecation warning (:func:`drop_other_methods_keys`)."""
        return _ADAPTER.validate_python(values)

    def with_method(self, method: str) -> TrainConfig:
        """This config for another method: the keys that method reads carried over, its other keys at defaults."""
        target = method_class(method)
        if target is None:
            raise ValueError(
                f"train.method {method!r} is not one of {[m for c in METHOD_CLASSES for m in methods_of(c)]}"
            )
        carried = {k: v for k, v in self.model_dump().items() if k in target.model_fields}
        return TrainConfig.of(**{**carried, "method": method})

    @property
    def resolved_learning_rate(self) -> float:
        """The learning rate in use: the one set, else the default for ``method``."""
        if self.learning_rate is not None:
            return self.learning_rate
        return {"full": 1e-4, "ia3": 3e-3, "prompt_tuning": 1e-2, "prefix_tuning": 1e-2, "p_tuning": 1e-2}.get(
            self.method, 1e-3
        )


class _AdapterTrainConfig(TrainConfig):
    """Keys every PEFT adapter method reads (not a method of its own)."""

    modules_to_save: list[str] | None = Field(
        None,
        description=(
            "Extra modules trained in full next to the adapter (the head always is); default: the BERT pooler when "
            "the model has one."
        ),
    )


class _LayerAdapterTrainConfig(_AdapterTrainConfig):
    """Keys of the adapters that sit on chosen layers: lora, qlora, ia3 (not a method of its own)."""

    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None,
        description=(
            "Modules that get LoRA/IA3 weights (names or 'all-linear'); default: all-linear for lora/qlora, PEFT's "
            "choice for ia3."
        ),
    )
    merge: bool = Field(False, description="Also save the adapter merged into the base weights.")


class LoraTrainConfig(_LayerAdapterTrainConfig):
    """lora: low-rank adapters on the chosen layers; qlora: the same over a 4-bit NF4 base (GPU)."""

    method: Literal["lora", "qlora"] = Field("lora", description=METHOD_HELP)
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")


class IA3TrainConfig(_LayerAdapterTrainConfig):
    """ia3: learned scaling vectors on the chosen layers (the fewest trainable weights)."""

    method: Literal["ia3"] = Field("ia3", description=METHOD_HELP)


class PromptTrainConfig(_AdapterTrainConfig):
    """prompt_tuning, prefix_tuning, p_tuning: trained virtual tokens in front of the input, the base frozen."""

    method: Literal["prompt_tuning", "prefix_tuning", "p_tuning"] = Field("prompt_tuning", description=METHOD_HELP)
    num_virtual_tokens: int = Field(20, ge=1, le=256, description="Virtual tokens.")


class FullTrainConfig(TrainConfig):
    """full: every weight of the base model trained."""

    method: Literal["full"] = Field("full", description=METHOD_HELP)


class FeatureTrainConfig(TrainConfig):
    """feature: the encoder frozen, a logistic-regression head fitted on its mean-pooled embeddings."""

    method: Literal["feature"] = Field("feature", description=METHOD_HELP)


METHOD_CLASSES: tuple[type[TrainConfig], ...] = (
    LoraTrainConfig,
    IA3TrainConfig,
    PromptTrainConfig,
    FullTrainConfig,
    FeatureTrainConfig,
)


def methods_of(cls: type[TrainConfig]) -> tuple[str, ...]:
    """The train.method values a config class serves."""
    return get_args(cls.model_fields["method"].annotation)


def method_class(method: str) -> type[TrainConfig] | None:
    """The config class that holds ``method``'s keys; None for an unknown method."""
    return next((c for c in METHOD_CLASSES if method in methods_of(c)), None)


def drop_other_methods_keys(values: Any) -> Any:
    """Keys only other methods read, set beside this one (the flat train section of earlier releases took them):
    dropped with a deprecation warning naming the methods that read them. From the next release they fail."""
    if not isinstance(values, dict):
        return values
    method = str(values.get("method", "lora"))
    own = method_class(method)
    if own is None:
        return values  # validation names the unknown method
    kept = {"method": method, **values}  # the discriminator: lora when unset, as before
    for key in [k for k in values if k not in own.model_fields]:
        readers = [m for c in METHOD_CLASSES if key in c.model_fields for m in methods_of(c)]
        if not readers:
            continue  # not a train key at all: validation names it
        message = (
            f"train.{key} is read only by train.method {', '.join(readers)}; train.method is {method}, so it is "
            "ignored. Deprecated: remove it (from the next release it is an error)."
        )
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        log.warning(message)
        del kept[key]
    return kept


TrainMethodConfig = Annotated[
    LoraTrainConfig | IA3TrainConfig | PromptTrainConfig | FullTrainConfig | FeatureTrainConfig,
    Field(discriminator="method"),
    BeforeValidator(drop_other_methods_keys),
]
_ADAPTER: TypeAdapter[TrainConfig] = TypeAdapter(TrainMethodConfig)
