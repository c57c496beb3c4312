"""Run-to-run comparison: the figures of two runs side by side, changes past a threshold flagged.

A run's comparable figures are flattened from its summary (and its LF analysis rows)
into ``{name: (value, kind)}``; ``kind`` decides how a change is judged: ``rate`` (a share or
metric in [0, 1]: absolute change against ``metric_change``) or ``count`` (rows: relative change
against ``size_change``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftloop.summary import RunSummary


@dataclass(frozen=True)
class Thresholds:
    """When a change is worth a reader's attention."""

    metric_change: float = 0.02
    size_change: float = 0.2


def run_figures(summary: RunSummary, lf_rows: list[dict[str, Any]] | None = None) -> dict[str, tuple[float, str]]:
    """Every comparable figure of one run, by a readable name, with its kind (rate or count)."""
    out: dict[str, tuple[float, str]] = {}

    def put(name: str, value: Any, kind: str) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = (float(value), kind)

    if summary.data is not None:
        data = summary.data
        put("pool rows (raw)", data.raw_rows, "count")
        put("pool rows (clean)", data.clean_rows, "count")
        put("gold dev rows", data.gold_dev_rows, "count")
        put("gold test rows", data.gold_test_rows, "count")
    if summary.weak_labeling is not None:
        weak = summary.weak_labeling
        put("LF coverage", weak.coverage, "rate")
        for name, scores in weak.aggregators_dev.items():
            put(f"{name.replace('_', ' ')} dev accuracy", scores.accuracy, "rate")
        put("mean label confidence", weak.mean_label_confidence, "rate")
    if summary.balance is not None:
        for stage, counts in (("before", summary.balance.before), ("after", summary.balance.after)):
            total = sum(counts.values())
            put(f"training rows ({stage} balancing)", total if counts else None, "count")
            for label, count in counts.items():
                put(f"share of {label} ({stage} balancing)", count / total if total else None, "rate")
    if summary.evaluation is not None:
        evaluation = summary.evaluation
        put("test accuracy", evaluation.accuracy, "rate")
        put("test macro-F1", evaluation.macro_f1, "rate")
        put("test ECE", evaluation.ece, "rate")
        for label, scores in evaluation.per_class.items():
            put(f"test F1 {label}", scores.f1, "rate")
    for row in lf_rows or []:
        put(f"LF {row.get('lf')} coverage", row.get("pool_coverage"), "rate")
        put(f"LF {row.get('lf')} dev accuracy", row.get("dev_accuracy"), "rate")
    return out


def _changed(current: float, other: float, kind: str, thresholds: Thresholds) -> bool:
    if kind == "rate":
        return abs(current - other) >= thresholds.metric_change
    if other == 0:
        return current != 0
    return abs(current - other) / abs(other) >= thresholds.size_change


def compare(
    current: dict[str, tuple[float, str]],
    other: dict[str, tuple[float, str]],
    thresholds: Thresholds,
) -> list[dict[str, Any]]:
    """One row per figure either run has: both values, the change, and whether it passes the threshold.

    Rows are in the current run's order; figures only the other run has come last (for example an LF
    that was removed).
    """
    rows = []
    for name in list(current) + [n for n in other if n not in current]:
        mine, theirs = current.get(name), other.get(name)
        kind = (mine or theirs)[1]
        row: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "current": None if mine is None else mine[0],
            "other": None if theirs is None else theirs[0],
            "delta": None,
            "flag": mine is None or theirs is None,
        }
        if mine is not None and theirs is not None:
            row["delta"] = mine[0] - theirs[0]
            row["flag"] = _changed(mine[0], theirs[0], kind, thresholds)
        rows.append(row)
    return rows


def fmt_value(value: float | None, kind: str) -> str:
    """A figure as people read it: 0.912 for rates, 1,234 for counts, a dash for missing."""
    if value is None:
        return "–"
    return f"{value:.3f}" if kind == "rate" else f"{value:,.0f}"


def fmt_delta(delta: float | None, kind: str, other: float | None = None) -> str:
    """+0.031, −120 (−8%)."""
    if delta is None:
        return "new" if other is None else "gone"
    sign = "+" if delta > 0 else ("−" if delta < 0 else "±")
    if kind == "rate":
        return f"{sign}{abs(delta):.3f}"
    share = f" ({sign}{abs(delta) / abs(other):.0%})" if other else ""
    return f"{sign}{abs(delta):,.0f}{share}"
