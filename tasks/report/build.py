"""Views of a run, of the runs index and of a drift check: plain data the templates render.

The caller (``flows/report.py``) reads the run folders; everything here works on the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driftloop.summary import RunSummary
from driftloop.tasks.report import charts
from driftloop.tasks.report.compare import Thresholds, compare, run_figures
from driftloop.tasks.report.drift_view import drift_verdict, drift_view, signal_rows
from driftloop.tasks.report.sections import (
    augmentation_section,
    balance_section,
    cleaning_section,
    evaluation_section,
    ingest_section,
    promotion_section,
    training_section,
    validation_section,
    weak_label_section,
)
from driftloop.tasks.report.verdict import RunStages, duration, key_figures, verdict

TRIGGERS = ("manual", "data", "drift", "schedule")


@dataclass(frozen=True)
class RunData:
    """What one run left behind, already read: its summary and the tables of its folder.

    ``images``: PNGs of the run folder as ``data:`` URIs, by stem (``confusion_matrix``), for the
    charts the summary has no numbers for. ``links``: relative links from the report to other files.
    """

    summary: RunSummary
    stages: RunStages = field(default_factory=RunStages)
    lf_rows: list[dict[str, Any]] | None = None
    validation_train: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None
    augmentation_samples: list[dict[str, Any]] | None = None
    images: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    drift: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @property
    def trigger(self) -> str:
        return self.summary.trigger or "manual"


SECTION_TITLES = {
    "ingest": "Ingest",
    "cleaning": "Cleaning",
    "weak_labeling": "Weak labeling",
    "augmentation": "Augmentation",
    "balance": "Balance",
    "validation": "Validation",
    "training": "Training",
    "evaluation": "Evaluation",
    "promotion": "Promotion",
    "drift": "Drift",
    "comparison": "Compared with earlier runs",
}


def _comparison(run: RunData, other: RunData | None, label: str, thresholds: Thresholds) -> dict[str, Any] | None:
    if other is None:
        return None
    rows = compare(run_figures(run.summary, run.lf_rows), run_figures(other.summary, other.lf_rows), thresholds)
    return {
        "label": label,
        "run_id": other.run_id,
        "status": other.summary.status,
        "finished_at": other.summary.finished_at,
        "link": other.links.get("self"),
        "rows": rows,
        "flagged": sum(1 for r in rows if r["flag"]),
    }


def run_view(
    run: RunData,
    *,
    previous: RunData | None = None,
    champion_run: RunData | None = None,
    challenger_record: dict[str, Any] | None = None,
    champion_record: dict[str, Any] | None = None,
    thresholds: Thresholds | None = None,
    examples_per_group: int = 5,
) -> dict[str, Any]:
    """Everything the run template shows, section by section; a section is None when its stage did not run."""
    thresholds = thresholds or Thresholds()
    summary = run.summary
    sections: dict[str, Any] = {
        "ingest": ingest_section(summary),
        "cleaning": cleaning_section(summary),
        "weak_labeling": weak_label_section(summary, run.lf_rows),
        "augmentation": augmentation_section(summary, run.augmentation_samples, examples_per_group),
        "balance": balance_section(summary),
        "validation": validation_section(summary, run.validation_train, run.links.get("data_docs")),
        "training": training_section(summary, run.history),
        "evaluation": evaluation_section(summary, run.images),
        "promotion": promotion_section(summary, challenger_record, champion_record),
        "drift": drift_view(run.drift, stamp="run") if run.drift else None,
    }
    comparisons = [
        c
        for c in (
            _comparison(run, previous, "previous run", thresholds),
            _comparison(run, champion_run, "champion's run", thresholds)
            if champion_run is not None and champion_run.run_id != (previous.run_id if previous else None)
            else None,
        )
        if c is not None
    ]
    if champion_run is not None and previous is not None and champion_run.run_id == previous.run_id:
        comparisons[0]["label"] = "previous run (the champion's)"
    sections["comparison"] = {"items": comparisons, "thresholds": thresholds} if comparisons else None
    order = ["comparison", *(k for k in sections if k != "comparison")]  # the page shows the comparison first
    nav = [{"id": k, "title": SECTION_TITLES[k]} for k in order if sections[k] is not None]
    return {
        "kind": "run",
        "title": f"Run {run.run_id}",
        "run_id": run.run_id,
        "summary": summary,
        "trigger": run.trigger,
        "verdict": verdict(summary, run.stages),
        "figures": key_figures(summary),
        "sections": sections,
        "nav": nav,
        "links": run.links,
        "duration": duration(summary.duration_s) if summary.duration_s is not None else None,
    }


def _index_row(run: RunData) -> dict[str, Any]:
    s = run.summary
    return {
        "run_id": run.run_id,
        "started_at": s.started_at,
        "finished_at": s.finished_at,
        "trigger": run.trigger,
        "status": s.status,
        "verdict": verdict(s, run.stages),
        "macro_f1": s.evaluation.macro_f1 if s.evaluation else None,
        "over_baselines": s.baselines.points_over_best_baseline if s.baselines else None,
        "accuracy": s.evaluation.accuracy if s.evaluation else None,
        "coverage": s.weak_labeling.coverage if s.weak_labeling else None,
        "clean_rows": s.data.clean_rows if s.data else None,
        "promoted": s.promotion.promoted if s.promotion else None,
        "duration": duration(s.duration_s) if s.duration_s is not None else None,
        "links": run.links,
    }


def index_view(runs: list[RunData], drifts: list[tuple[str, dict[str, Any], str | None]]) -> dict[str, Any]:
    """The runs index: every run newest first, a trend of test macro-F1, and the drift checks.

    ``drifts``: (stamp, drift JSON, relative link to its HTML) per drift check.
    """
    ordered = sorted(runs, key=lambda r: r.summary.finished_at or r.summary.started_at)
    points = [
        (r.summary.started_at[5:16].replace("T", " "), r.summary.evaluation.macro_f1)
        for r in ordered
        if r.summary.evaluation is not None
    ]
    trend = charts.trend(points, ylabel="test macro-F1", key="trend") if len(points) >= 2 else None
    drift_rows = []
    for stamp, drift, link in sorted(drifts, key=lambda d: d[0], reverse=True):
        alarms = [s["name"] for s in signal_rows(drift) if s["alarm"]]
        drift_rows.append(
            {
                "stamp": stamp,
                "checked_at": drift.get("checked_at") or stamp,
                "verdict": drift_verdict(drift),
                "action": drift.get("action"),
                "alarms": alarms,
                "link": link,
            }
        )
    rows = [_index_row(r) for r in reversed(ordered)]
    counts = {t: sum(1 for r in rows if r["trigger"] == t) for t in TRIGGERS}
    return {
        "kind": "index",
        "title": "driftloop runs",
        "runs": rows,
        "trend": trend,
        "trend_points": len(points),
        "drifts": drift_rows,
        "latest": rows[0] if rows else None,
        "counts": counts,
        "failed": sum(1 for r in rows if r["status"] == "failed"),
    }


def drift_page_view(drift: dict[str, Any], stamp: str, links: dict[str, str] | None = None) -> dict[str, Any]:
    """The drift report of one scheduled check."""
    view = drift_view(drift, stamp=stamp)
    return {"kind": "drift", "title": f"Drift check {stamp}", "drift": view, "links": links or {}}
