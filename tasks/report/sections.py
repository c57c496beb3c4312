"""The sections of a run report, as plain data for the templates: one builder per pipeline stage.

Each builder takes what the stage left in the summary (plus the run folder's tables, already read
by the caller) and returns a dict, or None when the stage did not run. Nothing here reads files.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from driftloop.summary import RunSummary, WeakLabeling
from driftloop.tasks.report import charts


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def ingest_section(summary: RunSummary) -> dict[str, Any] | None:
    if summary.ingest is None:
        return None
    outcomes = [o.model_dump() for o in summary.ingest]
    data = summary.data
    return {
        "files": outcomes,
        "by_status": dict(Counter(o.status for o in summary.ingest)),
        "problems": [o for o in outcomes if o["status"] in ("quarantined", "failed") or o["reason"]],
        "snapshots": {role: len(ids) for role, ids in data.snapshots.items()} if data else {},
        "rows": {}
        if data is None
        else {"raw_rows": data.raw_rows, "gold_dev_rows": data.gold_dev_rows, "gold_test_rows": data.gold_test_rows},
    }


def cleaning_section(summary: RunSummary) -> dict[str, Any] | None:
    data = summary.data
    if data is None or data.clean_rows is None:
        return None
    raw = data.raw_rows
    rules = [
        {
            "rule": rule,
            "dropped": count,
            "share": (count / raw) if raw else None,
            "examples": [str(e)[:200] for e in data.drop_examples[rule]],
        }
        for rule, count in data.dropped.items()
    ]
    return {
        "raw_rows": raw,
        "clean_rows": data.clean_rows,
        "rules": rules,
        "has_examples": any(r["examples"] for r in rules),
    }


def _lf_row(row: dict[str, Any]) -> dict[str, Any]:
    """One row of the run folder's lf_analysis.csv, as the LF table shows it."""
    polarity = row.get("polarity")
    if isinstance(polarity, list | tuple):
        polarity = ", ".join(map(str, polarity))
    return {
        "lf": row.get("lf"),
        "kind": row.get("kind"),
        "polarity": str(polarity or "").strip("[]").replace("'", ""),
        "coverage": _num(row.get("pool_coverage")),
        "overlaps": _num(row.get("pool_overlaps")),
        "conflicts": _num(row.get("pool_conflicts")),
        "dev_accuracy": _num(row.get("dev_accuracy")),
        "dev_votes": (row.get("dev_correct") or 0) + (row.get("dev_incorrect") or 0)
        if row.get("dev_correct") is not None
        else None,
        "learned_accuracy": _num(row.get("learned_accuracy")),
    }


def weak_label_section(summary: RunSummary, lf_rows: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    weak = summary.weak_labeling
    if weak is None:
        return None
    lfs = [_lf_row(row) for row in lf_rows or []]
    chart = None
    if lfs:
        chart = charts.lf_bars(
            [r["lf"] for r in lfs], [r["coverage"] or 0.0 for r in lfs], [r["dev_accuracy"] for r in lfs], key="lf"
        )
    histogram = weak.confidence_histogram
    confidence_chart = None
    if histogram is not None and histogram.edges and histogram.counts:
        confidence_chart = charts.histogram(
            histogram.edges, histogram.counts, title="Label confidence", xlabel="top-class probability", key="conf"
        )
    return {
        "metrics": weak,
        "labelers": _labelers(weak),
        "calibration": weak.calibration,
        "reliability_chart": _weak_reliability(weak),
        "warnings": weak.warnings,
        "abstain_rate": (weak.abstained_rows / weak.pool_rows) if weak.pool_rows else None,
        "lfs": lfs,
        "chart": chart,
        "confidence_chart": confidence_chart,
        "label_distribution": weak.label_distribution,
    }


def _labelers(weak: WeakLabeling) -> list[dict[str, Any]]:
    """The labelers compared on gold dev (label model, majority and weighted vote), the chosen one marked, then the
    best single LF."""
    rows = [
        {"labeler": name.replace("_", " "), "chosen": name == weak.aggregator, **scores.model_dump()}
        for name, scores in weak.aggregators_dev.items()
    ]
    if rows and weak.best_single_lf_dev is not None:
        rows.append({"labeler": "best single LF", "chosen": False, **weak.best_single_lf_dev.model_dump()})
    return rows


def _weak_reliability(weak: WeakLabeling) -> str | None:
    """Reliability of the weak labels on gold dev, before and after calibration."""
    if not weak.reliability_dev:
        return None
    return charts.reliability(weak.reliability_dev, key="weakrel", before=weak.reliability_dev_raw)


def augmentation_section(
    summary: RunSummary, samples: list[dict[str, Any]] | None, per_verdict: int
) -> dict[str, Any] | None:
    aug = summary.augmentation
    if aug is None:
        return None
    samples = samples or []
    pairs = {
        verdict: [s for s in samples if s.get("verdict") == verdict][:per_verdict]
        for verdict in ("accepted", "rejected")
    }
    # Show rejected pairs across reasons, not the first N of the commonest one.
    rejected = [s for s in samples if s.get("verdict") == "rejected"]
    seen: dict[str, int] = {}
    spread = []
    for s in rejected:
        reason = str(s.get("reason"))
        if seen.get(reason, 0) < max(1, per_verdict // 2) and len(spread) < per_verdict:
            spread.append(s)
            seen[reason] = seen.get(reason, 0) + 1
    pairs["rejected"] = spread
    methods = []
    for name, counts in aug.per_method.items():
        # timings: "<method>/<backend>": {load_s, generate_s, ...}, one entry per backend that ran
        ran = {
            k.split("/", 1)[1]: t for k, t in aug.timings.items() if k.startswith(f"{name}/") and isinstance(t, dict)
        }
        seconds = sum(float(t.get("load_s") or 0) + float(t.get("generate_s") or 0) for t in ran.values())
        methods.append(
            {"method": name, **counts, "backend": ", ".join(ran) or None, "seconds": seconds if ran else None}
        )
    return {
        "report": aug,
        "methods": methods,
        "per_class": aug.per_class,
        "rejected_by_reason": {k: v for k, v in aug.rejected_by_reason.items() if v},
        "total_s": aug.timings["total_s"],
        "pairs": pairs,
    }


def balance_section(summary: RunSummary) -> dict[str, Any] | None:
    balance = summary.balance
    if balance is None or not balance.before:
        return None
    labels = list(balance.before)
    before = [balance.before[k] for k in labels]
    after = [balance.after[k] for k in labels]
    chart = charts.grouped_bars(
        labels,
        {"before": before, "after": after},
        title=f"Rows per class ({balance.strategy})",
        ylabel="rows",
        key="balance",
    )
    rows = [{"label": k, "before": b, "after": a} for k, b, a in zip(labels, before, after)]
    return {"report": balance, "rows": rows, "chart": chart, "class_weights": balance.class_weights}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def expectation_rows(gx_results: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every expectation of a GX validation result: pass/fail, severity, observed value and bound."""
    rows = []
    for r in (gx_results or {}).get("results") or []:
        config = r.get("expectation_config") or {}
        kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
        result = r.get("result") or {}
        if "observed_value" in result:
            observed = _short(result["observed_value"])
        elif "unexpected_count" in result:
            observed = f"{result['unexpected_count']} of {result.get('element_count', '?')} rows fail"
        elif (r.get("exception_info") or {}).get("raised_exception"):
            observed = "error: " + str(r["exception_info"].get("exception_message", ""))[:120]
        else:
            observed = "–"
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if "value_set" in kwargs:
            expected = "in " + _short(sorted(map(str, kwargs["value_set"])))
        elif low is not None or high is not None:
            expected = " – ".join([_short(low) if low is not None else "−∞", _short(high) if high is not None else "∞"])
        else:
            expected = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items() if k != "column") or "–"
        rows.append(
            {
                "expectation": str(config.get("type", "?")).removeprefix("expect_").replace("_", " "),
                "column": kwargs.get("column") or "table",
                "severity": str(config.get("severity") or (config.get("meta") or {}).get("severity") or "critical"),
                "success": bool(r.get("success")),
                "observed": observed,
                "expected": expected,
            }
        )
    return rows


def validation_section(
    summary: RunSummary, validation_train: dict[str, Any] | None, data_docs_link: str | None
) -> dict[str, Any] | None:
    """``validation_train``: the run folder's validation_train.json (every expectation's GX result)."""
    validation = summary.validation
    if validation is None:
        return None
    train = validation.train
    rows = expectation_rows((validation_train or {}).get("results"))
    return {
        "raw_batches": validation.raw.batches,
        "train_ran": train is not None,
        "success": validation.success,
        "statistics": train.statistics if train else {},
        "expectations": rows,
        "failed": sum(not r["success"] for r in rows),
        "critical_failures": train.critical_failures if train else [],
        "data_docs": data_docs_link,
    }


def training_section(summary: RunSummary, history: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    training = summary.training
    if training is None:
        return None
    history = history or []
    chart = None
    if any("step" in h and "dev_macro_f1" in h for h in history):
        chart = charts.training_curves(history, best_step=training.best_step, key="train")
    resumed = training.resumed_from_step
    return {
        "summary": training,
        "scalars": {k: v for k, v in training.model_dump().items() if not isinstance(v, dict | list)},
        "resume": f"resumed from a checkpoint at step {resumed}" if resumed else None,
        "chart": chart,
        # Methods without steps (a frozen-feature head) log one dev score per candidate instead.
        "history": history if chart is None else [],
    }


def _baseline_rows(summary: RunSummary) -> list[dict[str, Any]]:
    """The end model beside every baseline scored on gold test: label model, gold rows alone, majority class."""
    evaluation, baselines = summary.evaluation, summary.baselines
    gold_only = baselines.gold_only if baselines else None
    rows = [
        ("fine-tuned model", evaluation.accuracy, evaluation.macro_f1),
        ("label model", evaluation.label_model_accuracy, evaluation.label_model_macro_f1),
        (
            "fine-tuned on the gold training rows alone",
            gold_only.accuracy if gold_only else None,
            gold_only.macro_f1 if gold_only else None,
        ),
        ("majority class", evaluation.majority_accuracy, evaluation.majority_macro_f1),
    ]
    return [{"predictor": p, "accuracy": a, "macro_f1": f} for p, a, f in rows if a is not None]


def evaluation_section(summary: RunSummary, images: dict[str, str]) -> dict[str, Any] | None:
    evaluation = summary.evaluation
    if evaluation is None:
        return None
    per_class = [{"label": label, **scores.model_dump()} for label, scores in evaluation.per_class.items()]
    confusion = charts.confusion(evaluation.confusion_matrix, [r["label"] for r in per_class], key="cm")
    return {
        "metrics": evaluation,
        "per_class": per_class,
        "baselines": _baseline_rows(summary),
        "self_training": summary.self_training.rounds if summary.self_training else [],
        "seed_band": summary.seed_band,
        "confusion_svg": confusion,
        "reliability_png": images.get("reliability"),
    }


def promotion_section(
    summary: RunSummary, challenger: dict[str, Any] | None, champion: dict[str, Any] | None
) -> dict[str, Any] | None:
    """``challenger``/``champion``: the registry's metric records of this run's model and the champion it faced."""
    promotion = summary.promotion
    if promotion is None:
        return None
    rows = []
    mine, theirs = (challenger or {}).get("metrics") or {}, (champion or {}).get("metrics") or {}
    names = [k for k in ("macro_f1", "accuracy", "ece") if k in mine or k in theirs]
    for name in names:
        rows.append(
            {"name": f"test {name.replace('_', '-')}", "challenger": mine.get(name), "champion": theirs.get(name)}
        )
    f1_mine, f1_theirs = mine.get("per_class_f1") or {}, theirs.get("per_class_f1") or {}
    for label in list(f1_mine) + [k for k in f1_theirs if k not in f1_mine]:
        rows.append({"name": f"test F1 {label}", "challenger": f1_mine.get(label), "champion": f1_theirs.get(label)})
    for row in rows:
        a, b = row["challenger"], row["champion"]
        row["delta"] = a - b if isinstance(a, int | float) and isinstance(b, int | float) else None
    return {
        "decision": promotion,
        "rows": rows,
        "champion_version": (champion or {}).get("version") or promotion.champion_before,
        "test_sets": (challenger or {}).get("data_snapshots", {}).get("test") or summary.data.snapshots["gold_test"],
    }
