"""Config sections for the data stages: project, data, demo split, cleaning, weak labels, balance, validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from driftloop.config.base import Role, _Section
from driftloop.packaged import packaged_suite


class ProjectConfig(_Section):
    name: str = Field("driftloop", description="Project name, used in run ids and the registry.")
    root: Path = Field(
        Path("."),
        description="Folder that holds data/, runs/ and models/; relative: to the config file's folder.",
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
        ...,
        description="Python file (relative to the config file's folder) or dotted module that defines LFS, the LFs.",
    )
    label_model: LabelModelConfig = Field(default_factory=LabelModelConfig)
    min_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "Drop weakly labelled rows whose calibrated top class probability is below this; default: "
            "validation.min_label_confidence, so the training-set gate's confidence check holds."
        ),
    )
    aggregator: Literal["auto", "label_model", "weighted_vote", "majority_vote"] = Field(
        "auto",
        description=(
            "How LF votes become labels; auto: the best dev macro-F1 of the three (the label model only when LFs "
            "overlap enough to estimate their accuracies)."
        ),
    )
    min_overlap: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description=(
            "Share of covered pool rows with 2+ LF votes below which the LabelModel cannot learn LF accuracies; "
            "auto then uses a vote weighted by dev-estimated LF accuracies instead."
        ),
    )
    calibration: Literal["temperature", "none"] = Field(
        "temperature", description="Calibrate weak-label probabilities on the gold dev rows that have LF votes."
    )
    lf_prior_accuracy: float = Field(
        0.7, gt=0.0, lt=1.0, description="Prior accuracy of an LF, for the weighted vote's dev estimates."
    )
    lf_prior_strength: float = Field(
        2.0, ge=0.0, description="Pseudo-votes behind lf_prior_accuracy: how far few dev votes are trusted."
    )


class BalanceConfig(_Section):
    strategy: Literal["none", "undersample", "oversample", "class_weight"] = Field(
        "oversample",
        description="How to even out classes: drop majority rows, repeat minority rows, or weight the loss.",
    )
    target_ratio: float = Field(
        1.0, gt=0.0, le=1.0, description="Wanted (smallest class / largest class) after resampling."
    )
    max_new_share: float | None = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description=(
            "Most of the training rows that may come from snapshots the champion was not trained on; earlier rows "
            "are replayed (repeated) to keep the rest, so a big new batch cannot make the model forget. null: off."
        ),
    )


class ValidationConfig(_Section):
    raw_suite: Path = Field(
        None,
        validate_default=True,
        description="GX suite (JSON) run on every raw incoming batch; null: the packaged expectations/raw_batch.json.",
    )
    train_suite: Path = Field(
        None,
        validate_default=True,
        description="GX suite (JSON) run on the final training set; null: the packaged expectations/training_set.json.",
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

    @field_validator("raw_suite", "train_suite", mode="before")
    @classmethod
    def _packaged_by_default(cls, value: Any, info: Any) -> Any:
        # null (the default) means the suite packaged with driftloop: found in a checkout or a wheel alike.
        if value is None:
            return packaged_suite({"raw_suite": "raw_batch", "train_suite": "training_set"}[info.field_name])
        return value
