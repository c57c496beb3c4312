"""Config sections for the model stages: training, self-training, review, evaluation, promotion."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from driftloop.config.base import _Section


class TrainConfig(_Section):
    """Fine-tuning a sequence classifier (transformers + PEFT) on the weakly labelled training set."""

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
        if self.distributed == "fsdp" and self.method in ("qlora", "feature"):
            raise ValueError(
                f"train.distributed fsdp cannot shard train.method {self.method!r}: use lora or full "
                "(with precision bf16 on GPU), or train.distributed ddp"
            )
        if self.method == "feature" and self.modules_to_save is not None:
            raise ValueError("train.modules_to_save applies to adapter methods, not train.method feature")
        return self


class SelfTrainConfig(_Section):
    """Self-training on the pool rows no LF covers (driftloop.tasks.self_train)."""

    enabled: bool = Field(False, description="Pseudo-label uncovered pool rows with the end model and train again.")
    rounds: int = Field(2, ge=1, le=10, description="Most pseudo-labelling rounds after the first fit.")
    min_confidence: float = Field(
        0.9, gt=0.0, le=1.0, description="Smallest end-model confidence for an uncovered row to join training."
    )
    max_per_class_ratio: float = Field(
        0.5, gt=0.0, le=10.0, description="Most pseudo-labelled rows per class, as a share of its weak-labelled rows."
    )
    min_dev_gain: float = Field(
        0.0, ge=0.0, le=1.0, description="A round is kept only if gold dev macro-F1 beats the best so far by more."
    )


class GoldRowsConfig(_Section):
    """What the gold dev rows do for the end model (driftloop.tasks.gold_rows): train it, select it, or both."""

    train_share: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description=(
            "Share of the gold dev rows (stratified by label) that join the end model's training set with their gold "
            "labels; the rest early-stop, choose seeds and self-training rounds, and give the out-of-fold dev scores. "
            "0: gold dev only selects, as before."
        ),
    )
    weight: float = Field(
        1.0, gt=0.0, le=100.0, description="Loss weight of a gold training row relative to a weak-labelled row."
    )
    baseline: bool = Field(
        True,
        description=(
            "Also fine-tune the same model on the gold training rows alone (early-stopped on the same held-out rows) "
            "and report it on gold test beside the label model and the end model. Needs train_share above 0."
        ),
    )


class ReviewConfig(_Section):
    """The human review queue (`driftloop review export`)."""

    queue_size: int = Field(100, ge=1, description="Rows per exported review queue.")
    rare_class_share: float = Field(
        0.05, gt=0.0, lt=1.0, description="A class below this share of the weak labels counts as rare (queued first)."
    )


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
    test: Literal["bootstrap", "mcnemar", "none"] = Field(
        "bootstrap",
        description=(
            "Paired test of challenger vs champion on the gold test set: bootstrap (macro-F1 difference) or mcnemar "
            "(accuracy); without a recorded test a challenger must beat the champion strictly."
        ),
    )
    significance_level: float = Field(
        0.05, gt=0.0, lt=0.5, description="A challenger is promoted only when the paired test's p-value is below this."
    )
    bootstrap_samples: int = Field(2000, ge=100, le=100_000, description="Resamples of the paired bootstrap test.")
