"""The one-line answer at the top of a report: did this run pass, and why.

Pure functions over a run's summary (and which optional stages its config switched on). A failed run names the
stage it stopped at: the first stage whose output is missing from the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftloop.summary import RunSummary


@dataclass(frozen=True)
class RunStages:
    """Which optional stages a run's config switched on (its saved config.yaml): a failed run is judged by them."""

    augment: bool = False
    train: bool = True


# (stage name, test that its output is in the summary), in pipeline order.
_STAGES: list[tuple[str, Callable[[RunSummary], bool]]] = [
    ("ingest", lambda s: s.ingest is not None),
    ("loading the snapshots", lambda s: s.data is not None),
    ("raw-batch validation", lambda s: s.validation is not None),
    ("cleaning", lambda s: s.data is not None and s.data.clean_rows is not None),
    ("weak labeling", lambda s: s.weak_labeling is not None),
    ("augmentation", lambda s: s.augmentation is not None),
    ("balancing", lambda s: s.balance is not None),
    ("training-set validation", lambda s: s.validation is not None and s.validation.train is not None),
    ("fine-tuning", lambda s: s.training is not None),
    ("evaluation", lambda s: s.evaluation is not None),
    ("promotion", lambda s: s.promotion is not None),
]


@dataclass(frozen=True)
class Verdict:
    """What a reader must know first: ``tone`` is ok / warn / bad, ``headline`` a few words, ``reason`` one sentence."""

    tone: str
    headline: str
    reason: str
    failed_stage: str | None = None
    keep: str | None = None  # did the pipeline earn its keep: the end model against the honest baselines


def failed_stage(summary: RunSummary, stages: RunStages) -> str:
    """The first stage whose output is missing from a failed run's summary."""
    for name, done in _STAGES:
        if name == "augmentation" and not stages.augment:
            continue
        if name in ("fine-tuning", "evaluation", "promotion") and not stages.train:
            continue
        if not done(summary):
            return name
    return "the end of the run"


def first_sentence(text: str, limit: int = 240) -> str:
    """The first sentence (or line) of an error message, cut to ``limit`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    cut = line.find(". ")
    line = line[: cut + 1] if 0 < cut else line
    return line if len(line) <= limit else line[: limit - 1] + "…"


def verdict(summary: RunSummary, stages: RunStages) -> Verdict:
    """The verdict of one run: failed at stage X, promoted, kept as challenger, or passed (data only)."""
    status = summary.status
    if status == "failed":
        stage = failed_stage(summary, stages)
        reason = first_sentence(summary.error or "no error message was recorded")
        return Verdict("bad", f"Failed at {stage}", reason, stage)
    if status in ("crashed", "cancelled"):
        reason = first_sentence(summary.error or "the run was stopped from outside")
        headline = "Crashed (stopped from outside)" if status == "crashed" else "Cancelled"
        return Verdict("bad", headline, f"{reason}. The service starts a lost retrain again while its data is "
                       "pending (driftloop serve); or run `driftloop run` again.")  # fmt: skip
    if status == "running":
        return Verdict("warn", "Still running (or interrupted)", "The run has not written its final status yet.")
    keep = summary.baselines.verdict if summary.baselines else None
    promotion = summary.promotion
    if promotion is not None:
        reason = first_sentence(promotion.reason, 300)
        if promotion.promoted:
            return Verdict("ok", "Promoted to champion", reason, keep=keep)
        return Verdict("warn", "Passed, kept as challenger", reason, keep=keep)
    if summary.evaluation is not None:
        reason = "The model was trained and evaluated; no promotion decision was recorded."
        return Verdict("ok", "Passed", reason, keep=keep)
    rows = sum(summary.balance.after.values()) if summary.balance else 0
    return Verdict(
        "ok",
        "Passed (data only)",
        f"The training set passed its quality gate with {rows:,} rows; training is switched off.",
    )


def _model_figures(summary: RunSummary) -> list[dict[str, Any]]:
    evaluation, baselines = summary.evaluation, summary.baselines
    figures: list[dict[str, Any]] = []
    if evaluation is not None:
        lm = evaluation.label_model_macro_f1
        figures.append(
            {
                "label": "test macro-F1",
                "value": f"{evaluation.macro_f1:.3f}",
                "note": None if lm is None else f"label model {lm:.3f}",
            }
        )
        figures.append(
            {
                "label": "test accuracy",
                "value": f"{evaluation.accuracy:.3f}",
                "note": f"majority class {evaluation.majority_accuracy:.3f}",
            }
        )
    if baselines is not None and baselines.points_over_best_baseline is not None:
        others = [
            f"{label} {scores.macro_f1:.3f}"
            for label, scores in (("gold-only", baselines.gold_only), ("label model", baselines.label_model))
            if scores is not None
        ]
        figures.append(
            {
                "label": "vs best baseline",
                "value": f"{baselines.points_over_best_baseline:+.2f} pts",
                "note": ", ".join(others),
            }
        )
    return figures


def _data_figures(summary: RunSummary) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    data, weak, balance = summary.data, summary.weak_labeling, summary.balance
    if data is not None:
        clean = data.clean_rows
        note = f"{clean:,} after cleaning" if clean is not None else None
        figures.append({"label": "pool rows", "value": f"{data.raw_rows:,}", "note": note})
    if weak is not None:
        chosen = weak.aggregator
        dev = weak.aggregators_dev[chosen].accuracy if chosen in weak.aggregators_dev else None
        figures.append(
            {
                "label": "LF coverage",
                "value": f"{weak.coverage:.1%}",
                "note": f"{chosen.replace('_', ' ')} dev acc {dev:.3f}" if dev is not None else None,
            }
        )
    if balance is not None and balance.after:
        gold = summary.training.rows.gold if summary.training else None
        note = f"+ {gold:,} gold dev rows" if gold else None
        figures.append({"label": "training rows", "value": f"{sum(balance.after.values()):,}", "note": note})
    return figures


def key_figures(summary: RunSummary) -> list[dict[str, Any]]:
    """The handful of numbers shown beside the verdict: label, value, a short note."""
    figures = _model_figures(summary) + _data_figures(summary)
    if summary.duration_s is not None:
        figures.append({"label": "duration", "value": duration(summary.duration_s), "note": None})
    return figures


def duration(seconds: float) -> str:
    """12.3 s, 4 min 05 s, 1 h 02 min."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
