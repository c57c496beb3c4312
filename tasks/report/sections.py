"""The sections of a run report, as plain data for the templates: one builder per pipeline stage.

Each builder takes what the stage left in the summary (plus the run folder's tables, already read
by the caller) and returns a dict, or None when the stage did not run. Nothing here reads files.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from driftloop.tasks.report import charts


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def ingest_section(summary: dict[str, Any]) -> dict[str, Any] | None:
    outcomes = summary.get("ingest")
    if outcomes is None:
        return None
    data = summary.get("data") or {}
    snapshots = data.get("snapshots") or {}
    by_status = Counter(str(o.get("status")) for o in outcomes)
    problems = [o for o in outcomes if o.get("status") in ("quarantined", "failed") or o.get("reason")]
    return {
        "files": outcomes,
        "by_status": dict(by_status),
        "problems": problems,
        "snapshots": {role: len(ids) for role, ids in snapshots.items()},
        "rows": {k: data.get(k) for k in ("raw_rows", "gold_dev_rows", "gold_test_rows") if k in data},
    }


def cleaning_section(summary: dict[str, Any]) -> dict[str, Any] | None:
    data = summary.get("data") or {}
    if "clean_rows" not in data:
        return None
    dropped = data.get("dropped") or {}
    # Examples of dropped rows per rule, when the cleaning step recorded them.
    examples = data.get("drop_examples") or (summary.get("cleaning") or {}).get("examples") or {}
    raw = data.get("raw_rows") or 0
    rules = [
        {
            "rule": rule,
            "dropped": count,
            "share": (count / raw) if raw else None,
            "examples": [str(e)[:200] for e in (examples.get(rule) or [])],
        }
        for rule, count in dropped.items()
    ]
    return {
        "raw_rows": raw,
        "clean_rows": data.get("clean_rows"),
        "rules": rules,
        "has_examples": any(r["examples"] for r in rules),
    }


def weak_label_section(summary: dict[str, Any], lf_rows: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    weak = summary.get("weak_labeling")
    if weak is None:
        return None
    pool = weak.get("pool_rows") or summary.get("data", {}).get("clean_rows")
    abstained = weak.get("abstained_rows")
    lfs = []
    for row in lf_rows or []:
        polarity = row.get("polarity")
        if isinstance(polarity, list | tuple):
            polarity = ", ".join(map(str, polarity))
        lfs.append(
            {
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
        )
    chart = None
    if lfs:
        chart = charts.lf_bars(
            [r["lf"] for r in lfs], [r["coverage"] or 0.0 for r in lfs], [r["dev_accuracy"] for r in lfs], key="lf"
        )
    histogram = weak.get("confidence_histogram")
    confidence_chart = None
    if histogram and histogram.get("edges") and histogram.get("counts"):
        confidence_chart = charts.histogram(
            histogram["edges"],
            histogram["counts"],
            title="Label confidence",
            xlabel="top-class probability",
            key="conf",
        )
    return {
        "metrics": weak,
        "labelers": _labelers(weak),
        "calibration": weak.get("calibration"),
        "reliability_chart": _weak_reliability(weak),
        "warnings": weak.get("warnings") or [],
        "abstain_rate": (abstained / pool) if abstained is not None and pool else None,
        "lfs": lfs,
        "chart": chart,
        "confidence_chart": confidence_chart,
        "label_distribution": weak.get("label_distribution") or {},
        "per_class": weak.get("label_model_dev_per_class") or {},
    }


def _labelers(weak: dict[str, Any]) -> list[dict[str, Any]]:
    """The labelers compared on gold dev (label model, majority and weighted vote), the chosen one marked, then the
    best single LF; empty for a summary written before the comparison existed."""
    rows = [
        {"labeler": name.replace("_", " "), "chosen": name == weak.get("aggregator"), **scores}
        for name, scores in (weak.get("aggregators_dev") or {}).items()
    ]
    single = weak.get("best_single_lf_dev")
    if rows and single:
        rows.append({"labeler": "best single LF", "lf": single.get("lf"), "chosen": False, **single})
    return rows


def _weak_reliability(weak: dict[str, Any]) -> str | None:
    """Reliability of the weak labels on gold dev, before and after calibration."""
    if not weak.get("reliability_dev"):
        return None
    return charts.reliability(weak["reliability_dev"], key="weakrel", before=weak.get("reliability_dev_raw"))


def augmentation_section(
    summary: dict[str, Any], samples: list[dict[str, Any]] | None, per_verdict: int
) -> dict[str, Any] | None:
    aug = summary.get("augmentation")
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
    timings = aug.get("timings") or {}
    methods = []
    for name, counts in (aug.get("per_method") or {}).items():
        # timings: "<method>/<backend>": {load_s, generate_s, ...}, one entry per backend that ran
        ran = {k.split("/", 1)[1]: t for k, t in timings.items() if k.startswith(f"{name}/") and isinstance(t, dict)}
        seconds = sum(float(t.get("load_s") or 0) + float(t.get("generate_s") or 0) for t in ran.values())
        methods.append(
            {"method": name, **counts, "backend": ", ".join(ran) or None, "seconds": seconds if ran else None}
        )
    return {
        "report": aug,
        "methods": methods,
        "per_class": aug.get("per_class") or {},
        "rejected_by_reason": {k: v for k, v in (aug.get("rejected_by_reason") or {}).items() if v},
        "total_s": timings.get("total_s"),
        "pairs": pairs,
    }


def balance_section(summary: dict[str, Any]) -> dict[str, Any] | None:
    balance = summary.get("balance")
    if not balance or not balance.get("before"):
        return None
    before, after = balance["before"], balance.get("after") or {}
    labels = list(before)
    chart = charts.grouped_bars(
        labels,
        {"before": [before.get(k, 0) for k in labels], "after": [after.get(k, 0) for k in labels]},
        title=f"Rows per class ({balance.get('strategy', 'balancing')})",
        ylabel="rows",
        key="balance",
    )
    rows = [{"label": k, "before": before.get(k), "after": after.get(k)} for k in labels]
    return {"report": balance, "rows": rows, "chart": chart, "class_weights": balance.get("class_weights")}


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
    summary: dict[str, Any], validation_train: dict[str, Any] | None, data_docs_link: str | None
) -> dict[str, Any] | None:
    validation = summary.get("validation") or {}
    raw = (validation.get("raw") or {}).get("batches") or []
    if not raw and not validation.get("train") and validation_train is None:
        return None
    train = validation_train or validation.get("train") or {}
    rows = expectation_rows(train.get("results"))
    return {
        "raw_batches": raw,
        "train_ran": bool(train),
        "success": train.get("success", validation.get("success")),
        "statistics": train.get("statistics") or {},
        "expectations": rows,
        "failed": sum(not r["success"] for r in rows),
        "critical_failures": train.get("critical_failures") or [],
        "data_docs": data_docs_link,
    }


def training_section(summary: dict[str, Any], history: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    training = summary.get("training")
    if training is None:
        return None
    history = history or []
    chart = None
    if any("step" in h and "dev_macro_f1" in h for h in history):
        chart = charts.training_curves(history, best_step=_num(training.get("best_step")), key="train")
    scalars = {k: v for k, v in training.items() if not isinstance(v, dict | list)}
    resumed = training.get("resumed_from_step")
    return {
        "summary": training,
        "scalars": scalars,
        "resume": f"resumed from a checkpoint at step {resumed}" if resumed else None,
        "chart": chart,
        # Methods without steps (a frozen-feature head) log one dev score per candidate instead.
        "history": history if chart is None else [],
    }


def evaluation_section(summary: dict[str, Any], images: dict[str, str]) -> dict[str, Any] | None:
    evaluation = summary.get("evaluation")
    if evaluation is None:
        return None
    per_class = [{"label": label, **(scores or {})} for label, scores in (evaluation.get("per_class") or {}).items()]
    confusion = None
    if evaluation.get("confusion_matrix"):
        confusion = charts.confusion(evaluation["confusion_matrix"], [r["label"] for r in per_class], key="cm")
    reliability = None
    if evaluation.get("reliability"):
        reliability = charts.reliability(evaluation["reliability"], key="rel")
    gold_only = (summary.get("baselines") or {}).get("gold_only") or {}
    baselines = [
        {
            "predictor": "fine-tuned model",
            "accuracy": evaluation.get("accuracy"),
            "macro_f1": evaluation.get("macro_f1"),
        },
        {
            "predictor": "label model",
            "accuracy": evaluation.get("label_model_accuracy"),
            "macro_f1": evaluation.get("label_model_macro_f1"),
        },
        {
            "predictor": "fine-tuned on the gold training rows alone",
            "accuracy": gold_only.get("accuracy"),
            "macro_f1": gold_only.get("macro_f1"),
        },
        {
            "predictor": "majority class",
            "accuracy": evaluation.get("majority_accuracy"),
            "macro_f1": evaluation.get("majority_macro_f1"),
        },
    ]
    return {
        "metrics": evaluation,
        "per_class": per_class,
        "baselines": [b for b in baselines if b["accuracy"] is not None],
        "self_training": (summary.get("self_training") or {}).get("rounds") or [],
        "seed_band": summary.get("seed_band"),
        "confusion_svg": confusion,
        "reliability_svg": reliability,
        "confusion_png": None if confusion else images.get("confusion_matrix"),
        "reliability_png": None if reliability else images.get("reliability"),
    }


def promotion_section(
    summary: dict[str, Any], challenger: dict[str, Any] | None, champion: dict[str, Any] | None
) -> dict[str, Any] | None:
    """``challenger``/``champion``: the registry's metric records of this run's model and the champion it faced."""
    promotion = summary.get("promotion")
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
        "champion_version": (champion or {}).get("version") or promotion.get("champion_before"),
        "test_sets": (challenger or {}).get("data_snapshots", {}).get("test")
        or (summary.get("data") or {}).get("snapshots", {}).get("gold_test")
        or [],
    }
