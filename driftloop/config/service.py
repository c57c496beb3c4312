"""Config sections for running as a service: drift, ingest, the retrain gate, reports, tracking, runtime."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from driftloop.config.base import _Section

DEFAULT_DRIFT_THRESHOLDS: dict[str, float] = {
    "class_prior": 0.05,
    "domain_classifier": 0.55,
    "length": 0.1,
    "casing": 0.1,
    "lf_coverage": 0.05,
    "lf_conflict": 0.05,
    "model_prediction": 0.05,
    "model_confidence": 0.03,
    "estimated_accuracy": 0.02,
}


class DriftConfig(_Section):
    """When new data counts as drifted, and how the service reacts.

    Every signal is a two-sample test calibrated to the batch size; the family of tests (every
    signal, on the newest batch and on everything since the reference) is corrected to
    ``family_alpha``, and a signal alarms only where its effect also reaches its minimum in ``thresholds``.
    """

    thresholds: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_DRIFT_THRESHOLDS),
        description=(
            "Signals to run and the minimum effect each needs to alarm: class_prior / model_prediction (total "
            "variation), domain_classifier (ROC AUC), length / casing (KS distance), lf_coverage / lf_conflict "
            "(rate change), model_confidence (mean change), estimated_accuracy (drop); or 'module:Class' for your own."
        ),
    )
    family_alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="Family-wise false-alarm rate across all signals and scopes of one check."
    )
    correction: Literal["holm", "bonferroni"] = Field(
        "holm", description="Multiple-testing correction that keeps the family-wise rate at family_alpha."
    )
    scopes: list[Literal["newest", "since_reference"]] = Field(
        default_factory=lambda: ["newest", "since_reference"],
        description="Compare the newest batch alone and/or everything since the reference (both count in the family).",
    )
    persistence_k: int = Field(1, ge=1, description="Alarm only when at least k of the last n checks found drift.")
    persistence_n: int = Field(1, ge=1, description="Window n of the k-of-n persistence rule (1: alarm at once).")
    embedding_model: str = Field("minilm", description="Sentence encoder of the domain classifier (tasks/embed.py).")
    domain_components: int = Field(
        32, ge=2, description="PCA components the domain classifier sees (speed, and less fitting of noise)."
    )
    new_examples: int = Field(10, ge=0, description="How many of the most novel texts the report lists.")
    top_terms: int = Field(15, ge=0, description="How many over- and under-represented terms the report lists.")
    min_current_rows: int = Field(50, ge=2, description="Fewest new rows needed to judge drift.")
    max_rows: int = Field(
        1000, ge=10, description="Embed and predict at most this many rows per side; LF and length tests see all."
    )
    schedule_cron: str = Field("0 3 * * *", description="Cron schedule of the drift-check deployment.")
    retrain_on_drift: bool = Field(
        True, description="On drift, emit driftloop.drift.detected (the retrain trigger); false: alert only."
    )

    @model_validator(mode="after")
    def _sample_holds_the_minimum(self) -> DriftConfig:
        if self.max_rows < self.min_current_rows:
            raise ValueError(
                f"drift.max_rows ({self.max_rows}) must be >= drift.min_current_rows "
                f"({self.min_current_rows}): the sample could never be judged"
            )
        if self.persistence_k > self.persistence_n:
            raise ValueError(
                f"drift.persistence_k ({self.persistence_k}) must be <= drift.persistence_n ({self.persistence_n})"
            )
        if not self.thresholds or not self.scopes:
            raise ValueError("drift.thresholds and drift.scopes need at least one entry each")
        unknown = sorted(n for n in self.thresholds if n not in DEFAULT_DRIFT_THRESHOLDS and ":" not in n)
        if unknown:
            raise ValueError(
                f"drift.thresholds names unknown signal(s) {unknown}; built-in: {sorted(DEFAULT_DRIFT_THRESHOLDS)}, "
                "or name your own class as 'package.module:ClassName'"
            )
        return self


class IngestConfig(_Section):
    """What the landing folder accepts, and when a landed file counts as completely written."""

    max_file_mb: float = Field(
        1024.0, gt=0.0, description="Largest file ingest reads; a bigger one is quarantined (reason only, no copy)."
    )
    max_rows: int = Field(
        2_000_000,
        ge=1,
        description=(
            "Most rows (CSV/TSV/JSON Lines: lines) one file may hold, checked before the table is built, and for "
            "Parquet also its uncompressed size against max_file_mb: memory stays bounded by rows, not by bytes on "
            "disk (a small compressed file can hold millions of rows)."
        ),
    )
    mixed_types: Literal["reject", "cast"] = Field(
        "reject",
        description="A column mixing text with numbers or objects: quarantine the file, or cast the values to text "
        "with a warning.",
    )
    stable_s: float = Field(
        1.0,
        ge=0.0,
        description="The watcher takes a landed file only once its size and mtime have not changed for this long.",
    )


class ServiceConfig(_Section):
    """`driftloop serve`: how landings are noticed and how every retrain goes through one gate."""

    file_events: bool = Field(
        True, description="Watch data/incoming/ for file events (inotify) in the served process, besides the poll."
    )
    watch_interval_s: int = Field(
        60, ge=5, description="Fallback poll: how often the watch deployment looks for new files in data/incoming/."
    )
    debounce_s: float = Field(
        1.0,
        ge=0.5,
        description="Retrain trigger window: landed/drift events within it make one retrain run, started at its end.",
    )
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = Field(
        "ENQUEUE", description="What a retrain run does while another one runs: wait for it, or be cancelled."
    )
    cooldown_s: int = Field(
        0, ge=0, description="Least time from the last successful run's end to the next retrain; sooner ones defer."
    )
    min_new_rows: int = Field(
        1,
        ge=1,
        description="Fewest new unlabelled rows that make a retrain worth running; new labelled data always does.",
    )
    runner_poll_s: float = Field(
        0.5, ge=0.2, description="How often the served process asks the Prefect server for runs that are due."
    )


class ReportConfig(_Section):
    """The HTML run report, the runs index and the run-to-run comparison."""

    enabled: bool = Field(
        True, description="Write runs/<run_id>/report.html and refresh runs/index.html at the end of every run."
    )
    metric_change: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="Highlight a rate or metric (accuracy, F1, coverage, class share) that moved at least this much.",
    )
    size_change: float = Field(
        0.2, ge=0.0, description="Highlight a row count that changed by at least this share (0.2: 20%)."
    )
    examples_per_group: int = Field(
        5, ge=0, le=50, description="Example rows shown per cleaning rule and per augmentation verdict."
    )


class MlflowConfig(_Section):
    """Optional MLflow experiment tracking (pip install 'driftloop[mlflow]')."""

    enabled: bool = Field(False, description="Log each run to MLflow: params, metrics, report, plots and model.")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default: a local SQLite store at <project.root>/mlruns/mlflow.db."
    )
    experiment: str | None = Field(None, description="MLflow experiment name; default: project.name.")
    log_model: bool = Field(True, description="Upload the model folder as artifacts (adapter or full weights).")


class TrackingConfig(_Section):
    """Experiment tracking outside driftloop's own files."""

    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)


class DaskConfig(_Section):
    """The Dask cluster the sharded data stages run on when ``runtime.task_runner`` is ``dask``."""

    address: str | None = Field(
        None, description="Scheduler address of an existing Dask cluster (tcp://host:8786); null: start a LocalCluster."
    )
    n_workers: int = Field(2, ge=1, description="Workers of the LocalCluster (ignored with dask.address).")
    threads_per_worker: int = Field(
        1, ge=1, description="Threads per LocalCluster worker; also each worker's polars and BLAS thread cap."
    )
    processes: bool = Field(
        True, description="LocalCluster workers are processes; false: threads of this process (one shared GIL)."
    )
    memory_limit: str = Field(
        "auto", description="Memory limit per LocalCluster worker, e.g. '3GB'; auto: RAM/workers."
    )
    gpus_per_worker: int = Field(
        0, ge=0, description="GPU resource each LocalCluster worker advertises; neural stages run only where it is > 0."
    )


class RuntimeConfig(_Section):
    """Where and how the data stages execute; never changes their results."""

    task_runner: Literal["local", "dask"] = Field(
        "local", description="local: one process; dask: data stages map over shards on a Dask cluster."
    )
    shard_rows: int = Field(
        250_000, ge=100, description="Most pool rows per shard of the sharded stages; bounds their peak memory."
    )
    dask: DaskConfig = Field(default_factory=DaskConfig)
