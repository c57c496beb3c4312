"""Synthetic run summaries for report, export and CLI tests: every stage, in the shape ``driftloop.summary`` checks.

``summary_dict`` is the JSON a run folder holds (tests edit it to drop stages); ``summary_of`` the typed record.
"""

from __future__ import annotations

import copy
from typing import Any

from driftloop.summary import SCHEMA_VERSION, RunSummary
from driftloop.tasks.gold_rows import compare_with_baselines

INGEST = [
    {
        "source": "data/incoming/pool.csv",
        "status": "ingested",
        "role": "unlabelled",
        "snapshot_id": "aa11",
        "rows": 1000,
        "reason": None,
    },
    {
        "source": "data/incoming/bad.csv",
        "status": "quarantined",
        "role": "unlabelled",
        "snapshot_id": None,
        "rows": None,
        "reason": "malformed CSV (row 3 has 4 fields); fix the quoting",
    },
]
WEAK = {
    "n_lfs": 2,
    "labels": ["ham", "spam"],
    "labelled_rows": 900,
    "abstained_rows": 40,
    "dropped_low_confidence": 0,
    "min_confidence": 0.0,
    "min_confidence_source": "weak_label.min_confidence",
    "coverage": 0.95,
    "pool_overlap_share": 0.4,
    "covered_overlap_share": 0.42,
    "label_model_identifiable": True,
    "pool_conflict_share": 0.02,
    "gold_rows_for_estimates": 200,
    "reviewed_rows": 0,
    "aggregator": "label_model",
    "aggregator_requested": "auto",
    "aggregator_reason": "best dev macro-F1 on rows with votes: label_model 0.9100, majority_vote 0.9012",
    "aggregators_dev": {
        "label_model": {"accuracy": 0.93, "f1_macro": 0.91, "ece_raw": 0.05},
        "majority_vote": {"accuracy": 0.91, "f1_macro": 0.9012, "ece_raw": 0.12},
    },
    "best_single_lf_dev": {"lf": "ham_short", "f1_macro": 0.5, "accuracy": 0.7},
    "weak_label_model": {"kind": "label_model"},
    "calibration": None,
    "dev_ece": None,
    "reliability_dev": None,
    "reliability_dev_raw": None,
    "rows_below_confidence": {"0.6": 10, "0.9": 30},
    "label_distribution": {"ham": 800, "spam": 100},
    "mean_label_confidence": 0.97,
    "class_balance": [0.87, 0.13],
    "class_balance_source": "gold dev",
    "warnings": [],
    "seed": 42,
    "dev_rows": 200,
    "dev_scored_rows": 190,
    "dev_coverage": 0.95,
    "dev_accuracy_basis": "dev rows with at least one LF vote",
    "confidence_histogram": {"edges": [0.5, 0.75, 1.0], "counts": [30, 870]},
    "lf_analysis": "runs/run-1/lf_analysis.csv",
}
AUGMENTATION = {
    "generated": 10,
    "accepted": 8,
    "rejected_by_reason": {"similarity_too_high": 2, "empty": 0},
    "per_method": {"eda": {"generated": 10, "accepted": 8}},
    "per_class": {"spam": {"generated": 10, "accepted": 8}},
    "timings": {"total_s": 3.0, "eda/eda": {"load_s": 1.0, "generate_s": 0.5}},
}
TRAINING = {
    "model": "minilm",
    "method": "lora",
    "requested_method": "lora",
    "fallback_reason": None,
    "trainable_params": 1000,
    "total_params": 22_000_000,
    "epochs": 2.0,
    "steps": 40,
    "train_samples_per_s": 50.0,
    "peak_rss_mb": 900.0,
    "peak_gpu_mem_mb": None,
    "best_dev_macro_f1": 0.9,
    "best_step": 20,
    "train_seconds": 30.0,
    "resumed_from_step": 10,
    "device": "cpu",
    "precision": "fp32",
    "fingerprint": "f00d",
    "seed": 42,
    "rows": {"weak": 1200, "synthetic": 8, "gold": 100, "gold_held_out": 100},
}
SELF_TRAINING = {
    "rounds": [
        {
            "round": 0,
            "added_per_class": {"ham": 0, "spam": 0},
            "dev": {"accuracy": 0.95, "macro_f1": 0.9},
            "kept": True,
        },
        {
            "round": 1,
            "added_per_class": {"ham": 37, "spam": 2},
            "dev": {"accuracy": 0.94, "macro_f1": 0.89},
            "kept": False,
        },
    ],
    "kept_round": 0,
}


def _evaluation(f1: float) -> dict[str, Any]:
    return {
        "accuracy": 0.95,
        "macro_f1": f1,
        "micro_f1": 0.95,
        "per_class": {
            "ham": {"precision": 0.97, "recall": 0.97, "f1": 0.97, "support": 175},
            "spam": {"precision": 0.8, "recall": 0.8, "f1": f1 - 0.05, "support": 25},
        },
        "ece": 0.03,
        "label_model_accuracy": 0.94,
        "label_model_macro_f1": 0.88,
        "majority_accuracy": 0.875,
        "majority_macro_f1": 0.4667,
        "confusion_matrix": [[170, 5], [5, 20]],
        "beats_label_model": f1 > 0.88,
        "n_test": 200,
        "n_synthetic_excluded": 0,
        "plots": {},
    }


def _seed_band(f1: float) -> dict[str, Any]:
    return {
        "seeds": [
            {"seed": 42, "dev_macro_f1": 0.9, "test_macro_f1": f1, "test_accuracy": 0.95, "kept": True},
            {"seed": 43, "dev_macro_f1": 0.88, "test_macro_f1": 0.8123, "test_accuracy": 0.94, "kept": False},
        ],
        "test_macro_f1": {"mean": (f1 + 0.8123) / 2, "std": abs(f1 - 0.8123) / 2, "n": 2},
        "test_accuracy": {"mean": 0.945, "std": 0.005, "n": 2},
        "label_model_macro_f1": 0.88,
        "points_over_label_model": {"mean": 50 * (f1 + 0.8123) - 88, "std": 50 * abs(f1 - 0.8123), "n": 2},
    }


def _data(raw_rows: int) -> dict[str, Any]:
    return {
        "raw_rows": raw_rows,
        "gold_dev_rows": 200,
        "gold_test_rows": 200,
        "clean_rows": raw_rows - 60,
        "dropped": {"exact_duplicate": 40, "near_duplicate": 20},
        "drop_examples": {"exact_duplicate": ["see you at 5", "ok"], "near_duplicate": ["Ok lar..."]},
        "snapshots": {"unlabelled": ["aa11"], "gold_dev": ["bb22"], "gold_test": ["cc33"]},
    }


def _validation(raw_rows: int) -> dict[str, Any]:
    batch = {"snapshot_id": "aa11", "role": "unlabelled", "rows": raw_rows, "success": True, "warnings": 0}
    train = {"success": True, "critical_failures": [], "warnings": [], "statistics": {}}
    return {"raw": {"success": True, "batches": [batch]}, "success": True, "train": train}


def summary_dict(
    run_id: str, *, f1: float = 0.9, raw_rows: int = 1000, status: str = "succeeded", **extra: Any
) -> dict[str, Any]:
    """A run summary with every stage, as summary.json holds it; ``extra`` replaces whole top-level fields."""
    day = run_id[-1]
    summary = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "config_hash": "abcd" * 4,
        "config_path": "configs/sms_spam.yaml",
        "run_dir": f"runs/{run_id}",
        "status": status,
        "trigger": "manual",
        "started_at": f"2026-01-0{day}T10:00:00+00:00",
        "finished_at": f"2026-01-0{day}T10:05:00+00:00",
        "duration_s": 300.0,
        "ingest": copy.deepcopy(INGEST),
        "data": _data(raw_rows),
        "validation": _validation(raw_rows),
        "weak_labeling": {**copy.deepcopy(WEAK), "pool_rows": raw_rows - 60},
        "artifacts": {"clean": "c1", "gold_dev": "d1", "gold_test": "t1", "weak_label": "w1", "balance": "b1"},
        "augmentation": copy.deepcopy(AUGMENTATION),
        "balance": {"strategy": "oversample", "before": {"ham": 800, "spam": 108}, "after": {"ham": 800, "spam": 400}},
        "training": copy.deepcopy(TRAINING),
        "evaluation": _evaluation(f1),
        "baselines": compare_with_baselines(
            {"macro_f1": f1, "accuracy": 0.95},
            {"macro_f1": 0.88, "accuracy": 0.94},
            {"macro_f1": 0.86, "accuracy": 0.93, "dev_macro_f1": 0.85, "train_rows": 100},
        ),
        "self_training": copy.deepcopy(SELF_TRAINING),
        "seed_band": _seed_band(f1),
        "promotion": {
            "promoted": True,
            "challenger": run_id,
            "champion_before": None,
            "champion_after": run_id,
            "reason": "first model: no champion yet",
            "model_dir": f"models/{run_id}",
        },
    }
    summary.update(extra)
    return summary


def summary_of(run_id: str, **kwargs: Any) -> RunSummary:
    """:func:`summary_dict` as the typed record (checked on the way)."""
    return RunSummary.parse(summary_dict(run_id, **kwargs))
