"""Figures a person would rather look at than read: class balance and labeling-function quality."""

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


def save_figure(fig: Figure, path) -> None:
    """Write a figure as PNG atomically."""
    from driftloop.atomic import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
