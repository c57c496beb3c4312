"""One drift check: every signal on every scope, family-wise correction, minimum effects,
persistence, explanations, a verdict and the action it implies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from driftloop.config import DriftConfig
from driftloop.tasks.drift import explain, stats
from driftloop.tasks.drift.signals import DriftSide, SignalContext, build_signals

Action = Literal["none", "retrain", "alert", "review"]


@dataclass
class DriftCheck:
    """The outcome of one check, in the shape of ``runs/drift/<stamp>.json`` (see ``as_dict``)."""

    drifted: bool
    raw_alarm: bool
    action: Action
    verdict: str
    reason: str
    signals: list[dict[str, Any]]
    explanations: dict[str, Any]
    uncovered: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "drifted": self.drifted,
            "raw_alarm": self.raw_alarm,
            "verdict": self.verdict,
            "reason": self.reason,
            "signals": self.signals,
            "skipped": self.skipped,
            "explanations": self.explanations,
        }

    @property
    def coverage_dropped(self) -> bool:
        return any(s["name"] == "lf_coverage" and s["alarm"] and s.get("dropped") for s in self.signals)


def run_signals(
    reference: DriftSide,
    scopes: Mapping[str, DriftSide],
    cfg: DriftConfig,
    ctx: SignalContext,
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]], list[str]]:
    """Every configured signal on every scope whose inputs exist; p-values corrected as one family.

    Returns (signal rows, extras by (name, scope), skipped notes).
    """
    rows: list[dict[str, Any]] = []
    extras: dict[tuple[str, str], dict[str, Any]] = {}
    skipped: list[str] = []
    names = list(cfg.thresholds)
    for key, signal in zip(names, build_signals(names)):
        missing = [need for need in sorted(signal.needs) if not reference.has(need)]
        for scope, current in scopes.items():
            missing_here = missing + [n for n in sorted(signal.needs) if not current.has(n) and n not in missing]
            if missing_here:
                skipped.append(f"{key} ({scope}): no {', '.join(missing_here)}")
                continue
            outcome = signal.test(reference, current, ctx)
            extras[(key, scope)] = outcome.extras
            row = {
                "name": key,
                "scope": scope,
                "statistic": round(float(outcome.statistic), 6),
                "p_value": float(outcome.p_value),
                "p_adjusted": 1.0,
                "effect": round(float(outcome.effect), 6),
                "min_effect": float(cfg.thresholds[key]),
                "alarm": False,
                "detail": outcome.detail,
            }
            for flag in ("dropped", "class"):
                if flag in outcome.extras:
                    row[flag] = outcome.extras[flag]
            rows.append(row)
    for row, p_adj in zip(rows, stats.adjust([r["p_value"] for r in rows], cfg.correction)):
        row["p_adjusted"] = float(p_adj)
        row["alarm"] = bool(p_adj <= cfg.family_alpha and row["effect"] >= row["min_effect"])
    return rows, extras, skipped


def persistent(raw_alarm: bool, previous_alarms: Sequence[bool], k: int, n: int) -> bool:
    """k-of-n persistence: alarm now only if this check and the last n-1 hold at least k raw alarms."""
    if not raw_alarm:
        return False
    window = list(previous_alarms)[-(n - 1) :] if n > 1 else []
    return sum(bool(a) for a in window) + 1 >= k


def check_drift(
    reference: DriftSide,
    scopes: Mapping[str, DriftSide],
    cfg: DriftConfig,
    *,
    labels: list[str],
    lf_names: list[str],
    seed: int = 0,
    previous_alarms: Sequence[bool] = (),
    explain_changes: bool = True,
) -> DriftCheck:
    """Compare each scope with the reference and decide.

    Args:
        reference: the data the champion was trained on (or the last run's).
        scopes: ``{"newest": ..., "since_reference": ...}`` (either may be missing).
        previous_alarms: raw alarms of earlier checks, oldest first (for k-of-n persistence).
        explain_changes: False skips the explanations (the benchmark's many draws need only the decision).
    """
    if not scopes:
        raise ValueError("check_drift needs at least one current scope (newest or since_reference)")
    ctx = SignalContext(
        labels=list(labels),
        lf_names=list(lf_names),
        seed=seed,
        domain_components=cfg.domain_components,
    )
    rows, extras, skipped = run_signals(reference, scopes, cfg, ctx)
    raw_alarm = any(r["alarm"] for r in rows)
    drifted = persistent(raw_alarm, previous_alarms, cfg.persistence_k, cfg.persistence_n)

    # Explain the scope with the strongest alarm (a drifted newest batch is not diluted by normal ones).
    alarmed = sorted((r for r in rows if r["alarm"]), key=lambda r: r["p_adjusted"])
    scope = (
        alarmed[0]["scope"] if alarmed else ("since_reference" if "since_reference" in scopes else next(iter(scopes)))
    )
    current = scopes[scope]
    explanations = (
        explain_scope(reference, current, scope, extras, cfg, labels, lf_names, seed) if explain_changes else {}
    )

    text = explain.verdict(rows, explanations, cfg.family_alpha, labels)
    if raw_alarm and not drifted:
        text = f"not yet: {text}; persistence needs {cfg.persistence_k} of the last {cfg.persistence_n} checks to alarm"
    check = DriftCheck(
        drifted=drifted,
        raw_alarm=raw_alarm,
        action="none",
        verdict=text,
        reason="",
        signals=rows,
        explanations=explanations,
        skipped=skipped,
    )
    if drifted and check.coverage_dropped:
        check.action = "review"
        check.uncovered = {name: np.flatnonzero(~side.covered) for name, side in scopes.items()}
    elif drifted:
        check.action = "retrain" if cfg.retrain_on_drift else "alert"
    fired = sorted({f"{r['name']}[{r['scope']}]" for r in rows if r["alarm"]})
    check.reason = (
        f"alarm on {', '.join(fired)} (family-wise alpha {cfg.family_alpha:g}, {cfg.correction}, {len(rows)} tests)"
        if fired
        else f"no signal alarms (family-wise alpha {cfg.family_alpha:g}, {cfg.correction}, {len(rows)} tests)"
    )
    return check


def explain_scope(
    reference: DriftSide,
    current: DriftSide,
    scope: str,
    extras: Mapping[tuple[str, str], dict[str, Any]],
    cfg: DriftConfig,
    labels: list[str],
    lf_names: list[str],
    seed: int,
) -> dict[str, Any]:
    over, under = explain.log_odds_terms(reference.texts, current.texts, top=cfg.top_terms, seed=seed)
    scores = extras.get(("domain_classifier", scope), {}).get("current_scores")
    return {
        "scope": scope,
        "new_examples": explain.new_examples(current, scores, cfg.new_examples),
        "terms_over": over,
        "terms_under": under,
        "class_shares": {
            "reference": explain.class_shares(reference, labels),
            "current": explain.class_shares(current, labels),
        },
        "lf_coverage": explain.lf_coverage_changes(reference, current, lf_names),
        "estimated_accuracy": explain.estimated_accuracy(reference, current, labels),
        "model": explain.model_summary(reference, current, labels),
    }
