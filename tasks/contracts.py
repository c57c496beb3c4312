"""What the pipeline's stages hand each other: frozen, typed records of catalog keys, reports and row counts.

A stage never passes a DataFrame to the next one: it passes a ``Table`` (the declared artifact name
and the cache key under which the catalog holds it), so a retried or re-run task finds its inputs
on disk, and an unchanged stage is a cache hit. Reports stay plain JSON-able mappings: they are
what a person reads, and what lands in ``summary.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Table:
    """A derived table in the catalog: ``catalog.read_artifact(artifact, key)`` reads it back."""

    artifact: str
    key: str
    rows: int


@dataclass(frozen=True)
class Datasets:
    """The ingested data of one run, per role, with the snapshots each role was gathered from."""

    unlabelled: Table
    gold_dev: Table
    gold_test: Table
    snapshots: Mapping[str, list[str]]
    reviewed: Table | None = None  # rows people labelled (`driftloop review import`), when there are any

    def tables(self) -> dict[str, Table]:
        tables = {"unlabelled": self.unlabelled, "gold_dev": self.gold_dev, "gold_test": self.gold_test}
        return tables if self.reviewed is None else {**tables, "reviewed": self.reviewed}


@dataclass(frozen=True)
class RawValidation:
    """The raw-batch suite's verdict on each snapshot of the run."""

    success: bool
    batches: list[dict[str, Any]]


@dataclass(frozen=True)
class Cleaned:
    """The cleaned pool (deduplicated, gold overlap removed) and the normalised gold sets."""

    pool: Table
    gold_dev: Table
    gold_test: Table
    report: Mapping[str, Any]
    reviewed: Table | None = None

    @property
    def dropped(self) -> dict[str, int]:
        return dict(self.report["dropped"])


@dataclass(frozen=True)
class WeakLabels:
    """The weakly labelled pool; the label model and its gold-test probabilities share the table's key."""

    labelled: Table
    metrics: Mapping[str, Any]
    lf_analysis: str  # the run folder's lf_analysis.csv

    @property
    def key(self) -> str:
        return self.labelled.key


@dataclass(frozen=True)
class Augmented:
    """Synthetic rows that passed the filter (``None`` when none did), the report and the samples CSV."""

    synthetic: Table | None
    report: Mapping[str, Any]
    samples: str


@dataclass(frozen=True)
class Balanced:
    """The training set after balancing, with its report (strategy, counts before and after, class weights)."""

    train: Table
    report: Mapping[str, Any]

    @property
    def class_weights(self) -> dict[str, float] | None:
        weights = self.report.get("class_weights")
        return dict(weights) if weights else None


@dataclass(frozen=True)
class TrainGate:
    """The training-set suite's verdict."""

    success: bool
    critical_failures: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    statistics: Mapping[str, Any]
    data_docs: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "critical_failures": list(self.critical_failures),
            "warnings": list(self.warnings),
            "statistics": dict(self.statistics),
            "data_docs": self.data_docs,
        }


@dataclass(frozen=True)
class FineTuned:
    """The fit kept (best held-out gold dev macro-F1 over ``train.seeds`` seeds, the first on a tie) and every seed's
    fit."""

    result: Any  # driftloop.tasks.train.TrainResult: a model in memory
    fits: list[Any]  # one TrainResult per seed, in seed order; the kept one included
    rows: dict[str, int]  # which rows trained (weak, synthetic, gold) and how many gold dev rows were held out


@dataclass(frozen=True)
class SelfTrained:
    """The model self-training kept (the first fit when no round beat it) and the record of every round."""

    result: Any  # driftloop.tasks.train.TrainResult: a model in memory
    rounds: list[dict[str, Any]]
    kept_round: int


@dataclass(frozen=True)
class Promotion:
    """Where the model was saved and the registry's champion/challenger decision."""

    model_dir: str
    decision: Mapping[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return bool(self.decision.get("promoted"))

    def summary(self) -> dict[str, Any]:
        return {**self.decision, "model_dir": self.model_dir}
