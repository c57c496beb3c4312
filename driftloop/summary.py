"""The run record: ``runs/<run_id>/summary.json`` as one typed model, written by the pipeline stage by stage.

Every reader (the report, the runs index, the CLI, the retrain gate, review, export, MLflow) reads this model, never
the raw JSON: a field is present or ``None`` by its type, so no reader guesses at a key. ``schema_version`` names the
shape; a summary of another shape is refused with a message saying what to do (:class:`SummaryError`).

A section is ``None`` when its stage did not run (augmentation off, training off, a run that failed before it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from driftloop.atomic import write_json
from driftloop.errors import InputError

SCHEMA_VERSION = 2
Status = Literal["running", "succeeded", "failed", "crashed", "cancelled"]


class SummaryError(InputError):
    """A summary.json that is not a run record of this version."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class IngestedFile(_Record):
    """One landed file: snapshotted, skipped (seen before), quarantined or failed, and why."""

    source: str
    status: str
    role: str
    snapshot_id: str | None = None
    rows: int | None = None
    reason: str | None = None
    warning: str | None = None


class DataFigures(_Record):
    """Rows per role, the snapshots read, and what cleaning dropped (by rule, with example texts)."""

    raw_rows: int
    gold_dev_rows: int
    gold_test_rows: int
    snapshots: dict[str, list[str]]
    clean_rows: int | None = None
    dropped: dict[str, int] = {}
    drop_examples: dict[str, list[str]] = {}  # by rule in ``dropped``: a few dropped texts (may be empty)


class RawBatch(_Record):
    snapshot_id: str
    role: str
    rows: int
    success: bool
    warnings: int
    data_docs: str | None = None


class RawValidation(_Record):
    success: bool
    batches: list[RawBatch]


class TrainValidation(_Record):
    """The training-set gate (Great Expectations): passed, critical failures, warnings, table statistics."""

    success: bool
    critical_failures: list[str]
    warnings: list[str]
    statistics: dict[str, Any]
    data_docs: str | None = None


class Validation(_Record):
    raw: RawValidation
    success: bool | None = None  # the training-set gate's verdict; False when the run failed before it
    data_docs: str | None = None
    train: TrainValidation | None = None


class Histogram(_Record):
    edges: list[float]
    counts: list[int]


class LabelerScores(_Record):
    """One labeler (label model, weighted or majority vote, best single LF) on the gold dev rows."""

    accuracy: float | None = None
    f1_macro: float | None = None
    ece_raw: float | None = None
    ece: float | None = None
    mean_confidence: float | None = None
    lf: str | None = None
    coverage: float | None = None
    accuracy_where_it_votes: float | None = None


class Calibration(_Record):
    """Temperature scaling of the weak labels on gold dev; ``dev_ece`` is out of fold."""

    temperature: float
    dev_ece_raw: float
    dev_ece_calibrated_in_sample: float
    dev_ece: float
    calibration_rows: int


class WeakLabeling(_Record):
    """The weak labels: coverage, the labeler chosen on gold dev against the others, calibration, confidence."""

    n_lfs: int
    labels: list[str]
    pool_rows: int
    labelled_rows: int
    abstained_rows: int
    dropped_low_confidence: int
    min_confidence: float
    min_confidence_source: str
    coverage: float
    pool_overlap_share: float
    covered_overlap_share: float | None = None
    label_model_identifiable: bool
    pool_conflict_share: float
    gold_rows_for_estimates: int
    reviewed_rows: int
    aggregator: str
    aggregator_requested: str
    aggregator_reason: str
    aggregators_dev: dict[str, LabelerScores]
    best_single_lf_dev: LabelerScores | None = None
    weak_label_model: dict[str, Any]  # the chosen labeler's parameters (kind, temperature, LF accuracies)
    calibration: Calibration | None = None
    dev_ece: float | None = None
    reliability_dev: list[dict[str, Any]] | None = None
    reliability_dev_raw: list[dict[str, Any]] | None = None
    rows_below_confidence: dict[str, int]
    label_distribution: dict[str, int]
    mean_label_confidence: float | None = None
    class_balance: list[float]
    class_balance_source: str
    warnings: list[str]
    seed: int
    dev_rows: int
    dev_scored_rows: int
    dev_coverage: float
    dev_accuracy_basis: str
    majority_vote_dev_ties: int | None = None
    label_model_dev_per_class: dict[str, dict[str, float]] = {}
    confidence_histogram: Histogram | None = None
    lf_analysis: str


class Artifacts(_Record):
    """Catalog keys of the run's derived tables (``catalog.read_artifact(name, key)``)."""

    clean: str
    gold_dev: str
    gold_test: str
    weak_label: str
    balance: str | None = None


class Augmentation(_Record):
    generated: int
    accepted: int
    rejected_by_reason: dict[str, int]
    per_method: dict[str, dict[str, int]]
    per_class: dict[str, dict[str, int]]
    timings: dict[str, Any]
    samples: str | None = None


class Replay(_Record):
    """Earlier rows replayed so new data cannot crowd them out (balance.max_new_share)."""

    new_rows: int
    earlier_rows: int
    replayed_rows: int


class Balance(_Record):
    strategy: str
    target_ratio: float | None = None
    before: dict[str, int]
    after: dict[str, int]
    class_weights: dict[str, float] | None = None
    replay: Replay | None = None


class TrainingRows(_Record):
    """Which rows trained the end model, and how many gold dev rows were held out to select it."""

    weak: int
    synthetic: int
    gold: int
    gold_held_out: int


class Training(_Record):
    """The kept fit: model, method, size, speed, best dev score, and which rows trained."""

    model: str
    method: str
    requested_method: str
    fallback_reason: str | None = None
    trainable_params: int
    total_params: int
    epochs: float
    steps: int
    train_samples_per_s: float
    peak_rss_mb: float
    peak_gpu_mem_mb: float | None = None
    best_dev_macro_f1: float
    best_step: int | None = None
    train_seconds: float
    resumed_from_step: int | None = None
    device: str | None = None
    precision: str | None = None
    fingerprint: str
    seed: int
    rows: TrainingRows


class DevTestScores(_Record):
    accuracy: float
    macro_f1: float


class SelfTrainRound(_Record):
    """One pseudo-labelling round: rows added per class, its held-out dev (and gold test) scores, kept or not."""

    round: int
    added_per_class: dict[str, int]
    dev: DevTestScores | None = None
    test: DevTestScores | None = None
    kept: bool
    stopped: str | None = None


class SelfTraining(_Record):
    rounds: list[SelfTrainRound]
    kept_round: int


class ClassScores(_Record):
    precision: float
    recall: float
    f1: float
    support: int


class TestSetScores(_Record):
    n: int
    accuracy: float
    macro_f1: float
    per_class_f1: dict[str, float]


class Evaluation(_Record):
    """The end model on gold test, beside the label model and the majority class; per test set too."""

    accuracy: float
    macro_f1: float
    micro_f1: float
    per_class: dict[str, ClassScores]
    ece: float
    label_model_accuracy: float | None = None
    label_model_macro_f1: float | None = None
    majority_accuracy: float
    majority_macro_f1: float
    confusion_matrix: list[list[int]]
    beats_label_model: bool | None = None
    n_test: int
    n_synthetic_excluded: int
    plots: dict[str, str]
    test_sets: dict[str, TestSetScores] = {}  # by gold test snapshot


class Scores(_Record):
    macro_f1: float
    accuracy: float
    dev_macro_f1: float | None = None  # the gold-only baseline: its held-out dev score, and what it trained on
    train_rows: int | None = None
    train_seconds: float | None = None


class Baselines(_Record):
    """The end model against the honest baselines on gold test, and whether the pipeline earned its keep."""

    end_model: Scores
    label_model: Scores | None = None
    gold_only: Scores | None = None
    earned: bool | None = None
    best_baseline: str | None = None
    points_over_best_baseline: float | None = None
    verdict: str


class Band(_Record):
    mean: float
    std: float
    n: int


class SeedFit(_Record):
    seed: int
    dev_macro_f1: float
    test_macro_f1: float
    test_accuracy: float
    kept: bool


class SeedBand(_Record):
    seeds: list[SeedFit]
    test_macro_f1: Band
    test_accuracy: Band
    label_model_macro_f1: float | None = None
    points_over_label_model: Band | None = None


class Promotion(_Record):
    promoted: bool
    challenger: str
    champion_before: str | None = None
    champion_after: str | None = None
    reason: str
    model_dir: str
    champion_now: dict[str, Any] | None = None
    significance: dict[str, Any] | None = None


class RunSummary(_Record):
    """One pipeline run, as ``runs/<run_id>/summary.json`` holds it."""

    schema_version: Literal[2] = SCHEMA_VERSION
    run_id: str
    config_hash: str
    config_path: str
    run_dir: str
    status: Status = "running"
    started_at: str
    prefect_flow_runs: list[str] = []  # this run's Prefect flow run and its parent's: a killed run is reconciled
    trigger: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    error: str | None = None
    ingest: list[IngestedFile] | None = None
    data: DataFigures | None = None
    validation: Validation | None = None
    weak_labeling: WeakLabeling | None = None
    artifacts: Artifacts | None = None
    augmentation: Augmentation | None = None
    balance: Balance | None = None
    training: Training | None = None
    self_training: SelfTraining | None = None
    evaluation: Evaluation | None = None
    baselines: Baselines | None = None
    seed_band: SeedBand | None = None
    promotion: Promotion | None = None

    @classmethod
    def read(cls, path: str | Path) -> RunSummary:
        """Load and check one summary.json; :class:`SummaryError` names the file and what to do."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SummaryError(f"no summary.json at {path}; is {path.parent} a run folder (runs/<run_id>/)?") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SummaryError(f"{path} is not a readable run summary ({err}); is it a run folder?") from err
        return cls.parse(data, path)

    @classmethod
    def parse(cls, data: Any, where: str | Path = "summary") -> RunSummary:
        if not isinstance(data, dict):
            raise SummaryError(f"{where} holds {type(data).__name__}, not a run summary")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SummaryError(
                f"{where} is a run summary of schema {version or 1}, this driftloop reads schema {SCHEMA_VERSION}: "
                "run the pipeline again to record this data in the current shape, or read the file with the "
                "driftloop version that wrote it"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise SummaryError(f"{where} is not a valid run summary: {err}") from err

    def write(self, path: str | Path) -> Path:
        """Atomically, as JSON (None-valued fields left out)."""
        return write_json(Path(path), self.model_dump(mode="json", exclude_none=True))
