"""Config sections for the model stages after fine-tuning (driftloop/config/train.py): self-training, gold rows,
review, evaluation, promotion."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftloop.config.base import _Section


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
