"""What the weak-label step stores and draws: its catalog artifacts and the run folder's LF figures.

:func:`weak_label_artifacts` runs :func:`driftloop.tasks.weak_label.weak_label` on the cleaned tables and returns
the step's artifacts by name (what ``flows/steps.py::weak_label_task`` caches); :func:`write_weak_figures` writes
the LF analysis (CSV and chart) and the weak labels' reliability diagram on gold dev into a run folder;
:func:`weak_label_line` is the step's log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.atomic import write_text
from driftloop.config import WeakLabelConfig
from driftloop.tasks.aggregate import aggregator_arrays
from driftloop.tasks.evaluate import plot_reliability
from driftloop.tasks.plots import lf_figure, save_figure
from driftloop.tasks.weak_label import weak_label


def confidence_histogram(values: pd.Series, bins: int = 20) -> dict[str, list]:
    """Counts of weak-label confidences in equal bins over [0, 1], for the report's histogram."""
    counts, edges = np.histogram(values.to_numpy(dtype=float), bins=bins, range=(0.0, 1.0))
    return {"edges": [round(float(e), 4) for e in edges], "counts": counts.tolist()}


def weak_label_artifacts(
    pool: pd.DataFrame,
    dev: pd.DataFrame,
    test: pd.DataFrame,
    lfs: Sequence[Any],
    cfg: WeakLabelConfig,
    labels: list[str],
    *,
    seed: int,
    gate_min_confidence: float,
    reviewed: pd.DataFrame | None = None,
    pool_votes: np.ndarray | None = None,
) -> dict[str, object]:
    """Weak-label ``pool`` and return the step's artifacts by their catalog names (``weak_label.*``).

    ``pool_votes``: the LF votes cached per shard by the clean stage, in ``pool``'s row order (None: apply the LFs).
    """
    result = weak_label(
        pool,
        dev,
        lfs,
        cfg,
        labels,
        seed=seed,
        gate_min_confidence=gate_min_confidence,
        reviewed=reviewed,
        pool_votes=pool_votes,
    )
    # The label model's own gold-test predictions: evaluation reports it beside the end model.
    test_probs = result.predict_proba(test["text"])
    return {
        "weak_label.frame": result.frame,
        "weak_label.report": {
            **result.metrics,
            "confidence_histogram": confidence_histogram(result.frame["label_confidence"]),
        },
        # The weak labeler in use (calibrated), for augmentation's label check; saved as arrays, not pickled.
        "weak_label.labeler": aggregator_arrays(result.aggregator),
        "weak_label.test_probs": pd.DataFrame({"row_id": test["row_id"], "label_probs": list(map(list, test_probs))}),
        "weak_label.analysis": result.analysis.reset_index().rename(columns={"index": "lf"}),
        "weak_label.uncovered": result.uncovered,  # self-training's pool: the rows no LF voted on
        "weak_label.dev_probs": {"probs": result.dev_probs, "targets": result.dev_targets},
    }


def write_weak_figures(
    analysis: pd.DataFrame, dev_probs: dict[str, Any], run_dir: Path, *, ece_bins: int
) -> dict[str, Path]:
    """Write ``lf_analysis.csv``, ``lf_analysis.png`` and (with gold dev targets) ``weak_label_reliability.png``."""
    out = {"lf_analysis": run_dir / "lf_analysis.csv", "lf_chart": run_dir / "lf_analysis.png"}
    write_text(out["lf_analysis"], analysis.to_csv(index=False))
    save_figure(lf_figure(analysis), out["lf_chart"])
    if len(dev_probs["targets"]):
        out["reliability"] = plot_reliability(
            dev_probs["probs"], dev_probs["targets"], ece_bins, run_dir / "weak_label_reliability.png"
        )
    return out


def weak_label_line(metrics: dict[str, Any]) -> str:
    """The step's one-line log summary: LFs, coverage, abstained rows, the labeler chosen and its dev ECE."""
    ece = metrics.get("dev_ece")
    return (
        f"weak labels: {metrics['n_lfs']} LFs, coverage {metrics['coverage']:.3f}, {metrics['abstained_rows']} rows "
        f"abstained; labeler {metrics['aggregator']} ({metrics['aggregator_reason']})"
        + ("" if ece is None else f"; dev ECE {ece:.3f} after calibration")
    )
