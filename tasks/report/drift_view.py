"""A drift check's JSON as plain data for the drift report and the runs index.

Drift JSONs changed shape over time: older ones hold ``signals`` as ``{name: value}`` with a
``thresholds`` dict and an ``exceeded`` list; newer ones a list of tested signals with p-values,
effects and explanations. Every key is read defensively, so any of them renders.
"""

from __future__ import annotations

from typing import Any

from driftloop.tasks.report import charts


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def signal_rows(drift: dict[str, Any]) -> list[dict[str, Any]]:
    """Every signal as name, scope, statistic, value, threshold, p-values, alarm and detail."""
    signals = drift.get("signals") or []
    if isinstance(signals, dict):  # the old shape
        thresholds = drift.get("thresholds") or {}
        exceeded = set(drift.get("exceeded") or [])
        return [
            {
                "name": name,
                "scope": None,
                "statistic": name,
                "value": _num(value),
                "threshold": _num(thresholds.get(name) or thresholds.get(f"max_{name}")),
                "p_value": None,
                "p_adjusted": None,
                "alarm": name in exceeded,
                "detail": None,
            }
            for name, value in signals.items()
        ]
    rows = []
    for s in signals:
        if not isinstance(s, dict):
            continue
        rows.append(
            {
                "name": str(s.get("name", "?")),
                "scope": s.get("scope"),
                "statistic": s.get("statistic"),
                "value": _num(s.get("effect", s.get("value"))),
                "threshold": _num(s.get("min_effect", s.get("threshold"))),
                "p_value": _num(s.get("p_value")),
                "p_adjusted": _num(s.get("p_adjusted")),
                "alarm": bool(s.get("alarm")),
                "detail": s.get("detail"),
            }
        )
    return rows


def drift_verdict(drift: dict[str, Any]) -> dict[str, str]:
    """tone, headline and reason of one drift check."""
    drifted = drift.get("drifted")
    verdict = drift.get("verdict")
    action = drift.get("action")
    if drifted is None and verdict is None:
        return {
            "tone": "warn",
            "headline": "Drift check (no verdict recorded)",
            "reason": str(drift.get("reason") or ""),
        }
    tone = "bad" if drifted or verdict in ("drift", "drifted") else "ok"
    headline = str(verdict or ("Drift detected" if drifted else "No drift"))
    headline = headline[:1].upper() + headline[1:]
    if action:
        headline += f" — {str(action).replace('_', ' ')}"
    reason = drift.get("reason")
    if not reason:
        alarms = [s["name"] for s in signal_rows(drift) if s["alarm"]]
        reason = f"Signals past their threshold: {', '.join(alarms)}." if alarms else "No signal passed its threshold."
    return {"tone": tone, "headline": headline, "reason": str(reason)}


def _side(data: Any) -> list[tuple[str, str]]:
    if not isinstance(data, dict):
        return []
    return [(str(k), v if isinstance(v, str) else str(v)) for k, v in data.items() if not isinstance(v, dict | list)]


def drift_view(drift: dict[str, Any], *, stamp: str) -> dict[str, Any]:
    """Everything the drift template shows."""
    rows = signal_rows(drift)
    explanations = drift.get("explanations") or {}
    shares = explanations.get("class_shares") or {}
    share_chart = None
    ref, cur = shares.get("reference") or {}, shares.get("current") or {}
    if ref or cur:
        labels = list(dict.fromkeys([*ref, *cur]))
        share_chart = charts.grouped_bars(
            labels,
            {"reference": [ref.get(k, 0) for k in labels], "current": [cur.get(k, 0) for k in labels]},
            title="Weak-label class shares",
            ylabel="share",
            key=f"shares-{stamp}",
        )
    plotted = [r for r in rows if r["value"] is not None]
    accuracy = explanations.get("estimated_accuracy") or {}
    return {
        "stamp": stamp,
        "checked_at": drift.get("checked_at") or stamp,
        "verdict": drift_verdict(drift),
        "drifted": drift.get("drifted"),
        "action": drift.get("action"),
        "reference": _side(drift.get("reference")) or [("rows", str(drift.get("reference_rows", "–")))],
        "current": _side(drift.get("current")) or [("rows", str(drift.get("current_rows", "–")))],
        "signals": rows,
        "signal_chart": charts.signal_bars(plotted, key=f"sig-{stamp}") if plotted else None,
        "new_examples": [e for e in explanations.get("new_examples") or [] if isinstance(e, dict)][:20],
        "terms_over": [t for t in explanations.get("terms_over") or [] if isinstance(t, dict)][:20],
        "terms_under": [t for t in explanations.get("terms_under") or [] if isinstance(t, dict)][:20],
        "share_chart": share_chart,
        "lf_coverage": [r for r in explanations.get("lf_coverage") or [] if isinstance(r, dict)],
        "estimated_accuracy": accuracy if isinstance(accuracy, dict) and accuracy else None,
    }
