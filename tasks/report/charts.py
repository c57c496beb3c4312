"""Charts for the HTML reports: matplotlib figures serialised as small inline SVG.

Text stays text (``svg.fonttype: none``) so it takes the page's font, and every neutral colour
(text, axes, ticks, grid) is written as ``currentColor`` so one chart reads in light and dark mode.
Series colours are the Okabe-Ito palette, distinguishable by colour-blind readers on both backgrounds.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever serialised

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# A colour no chart uses on purpose: replaced by currentColor in the SVG text.
_INK = "#010203"
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#999999"]
GOOD, WARN, BAD = "#009E73", "#E69F00", "#D55E00"
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "driftloop",
    "font.family": "sans-serif",
    "font.size": 9,
    "text.color": _INK,
    "axes.edgecolor": _INK,
    "axes.labelcolor": _INK,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "xtick.color": _INK,
    "ytick.color": _INK,
    "grid.color": _INK,
    "grid.alpha": 0.15,
    "legend.frameon": False,
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.transparent": True,
}


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _styled(chart: Callable[..., str]) -> Callable[..., str]:
    """Build the whole chart (figure, axes, artists) under the report style; rcParams are read at creation."""

    @functools.wraps(chart)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        with matplotlib.rc_context(_RC):
            return chart(*args, **kwargs)

    return wrapper


def to_svg(fig: Figure, key: str, title: str) -> str:
    """Serialise ``fig`` as an inline ``<svg>`` element; ``key`` makes its element ids unique in the page."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE: invalid inside HTML
    svg = svg.replace(_INK, "currentColor")
    # matplotlib's ids (clip paths, glyphs) repeat across figures: prefix them per chart.
    svg = re.sub(r'id="([^"]+)"', rf'id="{key}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{key}-\1"', svg)
    svg = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1 class="chart"', svg, count=1)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"\n\s*", "\n", svg)
    return svg.replace("<svg", f'<svg role="img" aria-label="{title}"', 1)


@_styled
def grouped_bars(
    groups: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str, ylabel: str, key: str
) -> str:
    """Bars per group, one colour per series (class counts before/after, shares reference/current)."""
    x = np.arange(len(groups))
    n = max(len(series), 1)
    width = 0.8 / n
    fig = _figure(max(3.6, 0.9 * len(groups) * n + 1.5), 2.6)
    ax = fig.subplots()
    for i, (name, values) in enumerate(series.items()):
        bars = ax.bar(x + (i - (n - 1) / 2) * width, values, width=width * 0.95, label=name)
        ax.bar_label(bars, fontsize=7, fmt="%g")
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.legend(fontsize=8)
    return to_svg(fig, key, title)


@_styled
def lf_bars(names: Sequence[str], coverage: Sequence[float], accuracy: Sequence[float | None], *, key: str) -> str:
    """Per-LF pool coverage and gold-dev accuracy side by side (tasks/plots.py lf_figure, as SVG)."""
    order = np.argsort(np.asarray(coverage, dtype=float))
    names = [names[i] for i in order]
    cov = np.asarray(coverage, dtype=float)[order]
    acc = np.array([np.nan if a is None else a for a in accuracy], dtype=float)[order]
    y = np.arange(len(names))
    fig = _figure(7.0, 0.24 * len(names) + 1.0)
    cov_ax, acc_ax = fig.subplots(1, 2, sharey=True)
    cov_ax.barh(y, cov, color=PALETTE[0])
    cov_ax.set_yticks(y, names, fontsize=7.5)
    cov_ax.set_xlabel("coverage of the unlabelled pool")
    filled = np.nan_to_num(acc)
    colors = np.where(filled >= 0.9, GOOD, np.where(filled >= 0.7, WARN, BAD))
    acc_ax.barh(y, filled, color=colors)
    acc_ax.set_xlim(0, 1)
    acc_ax.set_xlabel("accuracy on the gold dev set")
    for ax in (cov_ax, acc_ax):
        ax.grid(axis="x")
    return to_svg(fig, key, "Labeling functions: coverage and dev accuracy")


@_styled
def histogram(edges: Sequence[float], counts: Sequence[int], *, title: str, xlabel: str, key: str) -> str:
    """A histogram from precomputed bin edges and counts."""
    edges = np.asarray(edges, dtype=float)
    fig = _figure(4.2, 2.4)
    ax = fig.subplots()
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=PALETTE[0], edgecolor="none")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.set_title(title, loc="left")
    return to_svg(fig, key, title)


@_styled
def training_curves(history: Sequence[Mapping], *, best_step: float | None, key: str) -> str:
    """Train loss and dev macro-F1 per evaluation step, with the step whose weights were kept."""
    steps = [h.get("step", h.get("epoch")) for h in history]
    loss = [(x, h.get("train_loss", h.get("loss"))) for x, h in zip(steps, history)]
    loss = [(x, v) for x, v in loss if x is not None and v is not None]
    dev = [(x, h.get("dev_macro_f1")) for x, h in zip(steps, history)]
    dev = [(x, v) for x, v in dev if x is not None and v is not None]
    fig = _figure(6.4, 2.5)
    loss_ax, f1_ax = fig.subplots(1, 2)
    if loss:
        loss_ax.plot(*zip(*loss), marker="o" if len(loss) < 40 else None, ms=3, color=PALETTE[0])
    if dev:
        f1_ax.plot(*zip(*dev), marker="o" if len(dev) < 40 else None, ms=3, color=PALETTE[2])
    if best_step is not None:
        for ax in (loss_ax, f1_ax):
            ax.axvline(best_step, color=PALETTE[3], ls="--", lw=1, label="kept (best dev)")
        f1_ax.legend(fontsize=7, loc="lower right")
    for ax, title in ((loss_ax, "training loss"), (f1_ax, "dev macro-F1")):
        ax.set_xlabel("step")
        ax.set_title(title, loc="left")
        ax.grid()
    return to_svg(fig, key, "Training loss and dev macro-F1")


@_styled
def confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, key: str) -> str:
    """Confusion matrix with counts in the cells (rows: gold, columns: predicted)."""
    m = np.asarray(matrix, dtype=float)
    size = max(2.6, 0.7 * len(labels) + 1.4)
    fig = _figure(size, size * 0.9)
    ax = fig.subplots()
    shares = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.spines[:].set_visible(False)
    return to_svg(fig, key, "Confusion matrix")


@_styled
def reliability(bins: Sequence[Mapping], *, key: str, before: Sequence[Mapping] | None = None) -> str:
    """Accuracy against mean confidence per bin, with the diagonal of perfect calibration.

    ``bins``: records as ``driftloop.tasks.calibration.reliability_bins`` writes them (``rows``, ``confidence``,
    ``accuracy``). ``before``: the same bins before calibration, drawn beside ``bins`` (then labelled
    "calibrated"). A point's area grows with its bin's rows, so a bin of one row does not read like the bin that
    holds most of them.
    """
    fig = _figure(3.0, 2.8)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color=_INK, alpha=0.5, label="perfect calibration")
    series = [(None, bins, PALETTE[0])]
    if before:
        series = [("before calibration", before, PALETTE[1]), ("calibrated", bins, PALETTE[0])]
    total = max(sum(b.get("rows") or 0 for b in bins), 1)
    for label, records, color in series:
        used = [b for b in records if b.get("rows")]
        if used:
            xs, ys = [b["confidence"] for b in used], [b["accuracy"] for b in used]
            ax.plot(xs, ys, lw=1, color=color, label=label)
            ax.scatter(
                xs, ys, s=[8 + 120 * (b["rows"] / total) ** 0.5 for b in used], color=color, zorder=3, clip_on=False
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid()
    return to_svg(fig, key, "Reliability diagram")


@_styled
def signal_bars(signals: Sequence[Mapping], *, key: str) -> str:
    """Each drift signal's effect against its minimum effect; alarms in the warning colour."""
    names = [s["name"] for s in signals]
    y = np.arange(len(names))
    fig = _figure(5.6, 0.32 * len(names) + 0.9)
    ax = fig.subplots()
    values = [float(s.get("value") or 0.0) for s in signals]
    colors = [BAD if s.get("alarm") else GOOD for s in signals]
    ax.barh(y, values, color=colors, height=0.6)
    for i, s in enumerate(signals):
        if s.get("threshold") is not None:
            ax.plot([s["threshold"]] * 2, [i - 0.4, i + 0.4], color=_INK, lw=1.5)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("effect (bar) against its threshold (tick)")
    ax.grid(axis="x")
    return to_svg(fig, key, "Drift signals against their thresholds")


@_styled
def trend(points: Sequence[tuple[str, float]], *, ylabel: str, key: str) -> str:
    """A small line of a metric over runs, oldest left."""
    fig = _figure(6.0, 1.9)
    ax = fig.subplots()
    xs = np.arange(len(points))
    ax.plot(xs, [v for _, v in points], marker="o", ms=3.5, color=PALETTE[0])
    step = max(1, len(points) // 6)
    ax.set_xticks(xs[::step], [label for label, _ in points][::step], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y")
    return to_svg(fig, key, f"{ylabel} over runs")
