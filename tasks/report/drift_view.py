"""A drift check's JSON as plain data for the drift report and the runs index.

A check's JSON (``runs/drift/<stamp>.json``, ``tasks/drift/check.py``'s ``DriftCheck.as_dict`` plus the sides
compared) holds a list of tested signals with p-values, effects and explanations. A check that stopped early
(too few new rows) holds no signals and no verdict.
"""

from __future__ import annotations

from typing import Any

from driftloop.tasks.report import charts


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def signal_rows(drift: dict[str, Any]) -> list[dict[str, Any]]:
    """Every signal as name, scope, statistic, value (effect), threshold (min effect), p-values, alarm, detail."""
    return [
        {
            "name": s["name"],
            "scope": s["scope"],
            "statistic": s["statistic"],
            "value": _num(s["effect"]),
            "threshold": _num(s["min_effect"]),
            "p_value": _num(s["p_value"]),
            "p_adjusted": _num(s["p_adjusted"]),
            "alarm": bool(s["alarm"]),
            "detail": s.get("detail"),
        }
        for s in drift.get("signals") or []
    ]


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
        "reference": _side(drift.get("reference")),
        "current": _side(drift.get("current")),
        "signals": rows,
        "signal_chart": charts.signal_bars(plotted, key=f"sig-{stamp}") if plotted else None,
        "new_examples": [e for e in explanations.get("new_examples") or [] if isinstance(e, dict)][:20],
        "terms_over": [t for t in explanations.get("terms_over") or [] if isinstance(t, dict)][:20],
        "terms_under": [t for t in explanations.get("terms_under") or [] if isinstance(t, dict)][:20],
        "share_chart": share_chart,
        "lf_coverage": [r for r in explanations.get("lf_coverage") or [] if isinstance(r, dict)],
        "estimated_accuracy": accuracy if isinstance(accuracy, dict) and accuracy else None,
    }
