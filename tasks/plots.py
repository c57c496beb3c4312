"""Figures a person would rather look at than read: class balance, LF quality, confusion, calibration.

One style for every PNG driftloop writes: object-oriented ``Figure`` objects (no pyplot state, so
nothing leaks between runs or threads) with a constrained layout, saved atomically by
:func:`save_figure`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def balance_figure(before: dict[str, int], after: dict[str, int], strategy: str) -> Figure:
    """Grouped bars of per-class row counts before and after balancing."""
    labels = list(before)
    x = np.arange(len(labels))
    fig = Figure(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.2), layout="constrained")
    ax = fig.subplots()
    for offset, (name, counts) in zip((-0.2, 0.2), (("before", before), ("after", after))):
        bars = ax.bar(x + offset, [counts[k] for k in labels], width=0.4, label=name)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(x, labels)
    ax.set_ylabel("rows")
    ax.set_title(f"Class balance ({strategy})")
    ax.legend(frameon=False)
    return fig


def lf_figure(analysis: pd.DataFrame) -> Figure:
    """Per-LF pool coverage and gold-dev accuracy, side by side, one row per LF."""
    frame = analysis.sort_values("pool_coverage")
    names = frame["lf"].tolist()
    y = np.arange(len(names))
    fig = Figure(figsize=(8.0, 0.28 * len(names) + 1.4), layout="constrained")
    cov_ax, acc_ax = fig.subplots(1, 2, sharey=True)
    cov_ax.barh(y, frame["pool_coverage"], color="tab:blue")
    cov_ax.set_yticks(y, names, fontsize=8)
    cov_ax.set_xlabel("coverage of the unlabelled pool")
    accuracy = frame["dev_accuracy"].astype(float)
    colors = np.where(
        accuracy.fillna(0) >= 0.9, "tab:green", np.where(accuracy.fillna(0) >= 0.7, "tab:orange", "tab:red")
    )
    acc_ax.barh(y, accuracy.fillna(0), color=colors)
    acc_ax.set_xlim(0, 1)
    acc_ax.set_xlabel("accuracy on the gold dev set")
    fig.suptitle("Labeling functions")
    return fig


def confusion_matrix_figure(matrix: np.ndarray, labels: list[str]) -> Figure:
    """Confusion-matrix heat map (rows: gold, columns: predicted) with the count in each cell."""
    size = max(3.5, 0.6 * len(labels) + 2)
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    peak = matrix.max() if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    ax.set_title("Confusion matrix (gold test)")
    return fig


def reliability_figure(centers: list[float], accuracies: list[float], n_bins: int, ece: float) -> Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal, ECE in the title."""
    fig = Figure(figsize=(4.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.bar(centers, accuracies, width=1.0 / n_bins, edgecolor="black", alpha=0.7, label="accuracy per bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability, ECE={ece:.4f}")
    ax.legend(loc="upper left")
    return fig


def save_figure(fig: Figure, path) -> None:
    """Write a figure as PNG atomically."""
    from driftloop.atomic import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
