"""The one-line answer at the top of a report: did this run pass, and why.

Pure functions over a run's ``summary.json`` (and its resolved config, to know which optional
stages were switched on). A failed run names the stage it stopped at: the first stage whose
output is missing from the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (stage name, test that its output is in the summary), in pipeline order.
_STAGES: list[tuple[str, Any]] = [
    ("ingest", lambda s: "ingest" in s),
    ("loading the snapshots", lambda s: "data" in s),
    ("raw-batch validation", lambda s: bool((s.get("validation") or {}).get("raw"))),
    ("cleaning", lambda s: "clean_rows" in (s.get("data") or {})),
    ("weak labeling", lambda s: "weak_labeling" in s),
    ("augmentation", lambda s: "augmentation" in s),
    ("balancing", lambda s: "balance" in s),
    ("training-set validation", lambda s: bool((s.get("validation") or {}).get("train"))),
    ("fine-tuning", lambda s: "training" in s),
    ("evaluation", lambda s: "evaluation" in s),
    ("promotion", lambda s: "promotion" in s),
]


@dataclass(frozen=True)
class Verdict:
    """What a reader must know first: ``tone`` is ok / warn / bad, ``headline`` a few words, ``reason`` one sentence."""

    tone: str
    headline: str
    reason: str
    failed_stage: str | None = None
    keep: str | None = None  # did the pipeline earn its keep: the end model against the honest baselines


def _enabled(config: dict[str, Any] | None, section: str, default: bool) -> bool:
    return bool(((config or {}).get(section) or {}).get("enabled", default))


def failed_stage(summary: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    """The first stage whose output is missing from a failed run's summary."""
    for name, done in _STAGES:
        if name == "augmentation" and not _enabled(config, "augment", "augmentation" in summary):
            continue
        if name in ("fine-tuning", "evaluation", "promotion") and not _enabled(config, "train", True):
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


def verdict(summary: dict[str, Any], config: dict[str, Any] | None = None) -> Verdict:
    """The verdict of one run: failed at stage X, promoted, kept as challenger, or passed (data only)."""
    status = summary.get("status")
    if status == "failed":
        stage = failed_stage(summary, config)
        reason = first_sentence(str(summary.get("error") or "no error message was recorded"))
        return Verdict("bad", f"Failed at {stage}", reason, stage)
    if status in ("crashed", "cancelled"):
        reason = first_sentence(str(summary.get("error") or "the run was stopped from outside"))
        headline = "Crashed (stopped from outside)" if status == "crashed" else "Cancelled"
        return Verdict("bad", headline, f"{reason}. The service starts a lost retrain again while its data is "
                       "pending (driftloop serve); or run `driftloop run` again.")  # fmt: skip
    if status == "running":
        return Verdict("warn", "Still running (or interrupted)", "The run has not written its final status yet.")
    keep = (summary.get("baselines") or {}).get("verdict")
    promotion = summary.get("promotion")
    if promotion:
        reason = first_sentence(str(promotion.get("reason") or ""), 300)
        if promotion.get("promoted"):
            return Verdict("ok", "Promoted to champion", reason, keep=keep)
        return Verdict("warn", "Passed, kept as challenger", reason, keep=keep)
    if "evaluation" in summary:
        reason = "The model was trained and evaluated; no promotion decision was recorded."
        return Verdict("ok", "Passed", reason, keep=keep)
    rows = (summary.get("balance") or {}).get("after") or {}
    return Verdict(
        "ok",
        "Passed (data only)",
        f"The training set passed its quality gate with {sum(rows.values()):,} rows; training is switched off.",
    )


def key_figures(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The handful of numbers shown beside the verdict: label, value, a short note."""
    figures: list[dict[str, Any]] = []
    evaluation = summary.get("evaluation") or {}
    if evaluation.get("macro_f1") is not None:
        note = None
        if evaluation.get("label_model_macro_f1") is not None:
            note = f"label model {evaluation['label_model_macro_f1']:.3f}"
        figures.append({"label": "test macro-F1", "value": f"{evaluation['macro_f1']:.3f}", "note": note})
        figures.append(
            {
                "label": "test accuracy",
                "value": f"{evaluation['accuracy']:.3f}",
                "note": f"majority class {evaluation['majority_accuracy']:.3f}"
                if evaluation.get("majority_accuracy") is not None
                else None,
            }
        )
    baselines = summary.get("baselines") or {}
    if baselines.get("points_over_best_baseline") is not None:
        others = [
            f"{name.replace('_', ' ').replace('gold only', 'gold-only')} {baselines[name]['macro_f1']:.3f}"
            for name in ("gold_only", "label_model")
            if baselines.get(name)
        ]
        figures.append(
            {
                "label": "vs best baseline",
                "value": f"{baselines['points_over_best_baseline']:+.2f} pts",
                "note": ", ".join(others),
            }
        )
    data = summary.get("data") or {}
    if data.get("raw_rows") is not None:
        clean = data.get("clean_rows")
        figures.append(
            {
                "label": "pool rows",
                "value": f"{data['raw_rows']:,}",
                "note": f"{clean:,} after cleaning" if clean is not None else None,
            }
        )
    weak = summary.get("weak_labeling") or {}
    if weak.get("coverage") is not None:
        # The labeler the run chose (summaries from before the comparison: the label model).
        chosen = weak.get("aggregator") or "label_model"
        dev = (weak.get("aggregators_dev") or {}).get(chosen, {}).get("accuracy", weak.get("label_model_dev_accuracy"))
        figures.append(
            {
                "label": "LF coverage",
                "value": f"{weak['coverage']:.1%}",
                "note": f"{chosen.replace('_', ' ')} dev acc {dev:.3f}" if dev is not None else None,
            }
        )
    after = (summary.get("balance") or {}).get("after")
    if after:
        gold = ((summary.get("training") or {}).get("rows") or {}).get("gold")
        note = f"+ {gold:,} gold dev rows" if gold else None
        figures.append({"label": "training rows", "value": f"{sum(after.values()):,}", "note": note})
    if summary.get("duration_s") is not None:
        figures.append({"label": "duration", "value": duration(summary["duration_s"]), "note": None})
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
