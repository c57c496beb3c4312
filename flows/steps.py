"""Prefect tasks: each loads its inputs from the catalog, calls one pure step in ``tasks/``,
saves the output through the catalog and publishes a Prefect artifact.

Tasks hand each other artifact keys (content hashes), never DataFrames, so a retried or
re-run task finds its inputs on disk and an unchanged step is a cache hit.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from driftloop.atomic import atomic_path, write_json
from driftloop.catalog import Catalog, content_hash
from driftloop.config import DriftloopConfig
from driftloop.flows.ingestion import ingest_paths, load_role
from driftloop.tasks.plots import balance_figure, lf_figure, save_figure

if TYPE_CHECKING:
    from driftloop.tasks.evaluate import EvaluationResult
    from driftloop.tasks.train import TrainResult

CODE_VERSION = "1"


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except Exception:  # called outside a flow run (task.fn in unit tests)
        return logging.getLogger("driftloop")


def _artifact_key(run_id: str, stage: str) -> str:
    return f"{stage}-{run_id}".lower().replace("_", "-").replace(":", "-")


def _publish_table(run_id: str, stage: str, rows: list[dict[str, Any]], description: str) -> None:
    try:
        create_table_artifact(key=_artifact_key(run_id, stage), table=rows, description=description)
    except Exception as err:  # artifacts are a convenience; never fail a step over one
        _logger().warning("could not publish %s artifact: %s", stage, err)


def _publish_markdown(run_id: str, stage: str, markdown: str, description: str) -> None:
    try:
        create_markdown_artifact(key=_artifact_key(run_id, stage), markdown=markdown, description=description)
    except Exception as err:
        _logger().warning("could not publish %s artifact: %s", stage, err)


def _report_path(catalog: Catalog, step: str, key: str) -> Path:
    return catalog.derived_path(step, key, suffix=".json")


def _cached(catalog: Catalog, step: str, key: str) -> tuple[pd.DataFrame, dict] | None:
    frame = catalog.read_derived(step, key)
    report = _report_path(catalog, step, key)
    if frame is None or not report.exists():
        return None
    return frame, json.loads(report.read_text(encoding="utf-8"))


def _save(catalog: Catalog, step: str, key: str, frame: pd.DataFrame, report: dict) -> None:
    catalog.write_derived(step, key, frame)
    write_json(_report_path(catalog, step, key), report)


@task(name="ingest", retries=2, retry_delay_seconds=2, persist_result=True)
def ingest_task(cfg: DriftloopConfig, run_id: str) -> list[dict]:
    """Snapshot every new file in data/incoming/; quarantine unusable ones."""
    catalog = Catalog.from_config(cfg)
    outcomes = [o.as_dict() for o in ingest_paths(catalog, cfg)]
    log = _logger()
    for o in outcomes:
        if o["reason"]:
            log.warning("%s %s: %s", o["status"], o["source"], o["reason"])
        else:
            log.info(
                "%s %s -> snapshot %s (%s rows, %s)", o["status"], o["source"], o["snapshot_id"], o["rows"], o["role"]
            )
    _publish_table(run_id, "ingest", outcomes, "Incoming files and what became of them")
    return outcomes


@task(name="load-datasets", retries=2, retry_delay_seconds=2, persist_result=True)
def load_datasets_task(cfg: DriftloopConfig) -> dict:
    """Gather the snapshots of each role into canonical frames; fail clearly if a role is missing."""
    catalog = Catalog.from_config(cfg)
    out: dict[str, Any] = {}
    for role in ("unlabelled", "gold_dev", "gold_test"):
        frame, snapshot_ids = load_role(catalog, cfg, role)
        if frame.empty:
            raise RuntimeError(
                f"no {role} data has been ingested; drop a file into {catalog.incoming_dir} "
                f"(gold files match {cfg.data.role_patterns}) or run `driftloop demo-data`"
            )
        key = content_hash("load", role, snapshot_ids, cfg.section_hash("data"))
        catalog.write_derived("load", key, frame)
        out[role] = {"key": key, "rows": len(frame), "snapshot_ids": snapshot_ids}
    return out


@task(name="validate-raw", persist_result=True)
def validate_raw_task(cfg: DriftloopConfig, run_id: str, datasets: dict) -> dict:
    """Run the raw-batch suite on every snapshot of this run; a critical failure stops the run."""
    from driftloop.tasks.validate import failure_from_report, suite_parameters, validate

    catalog = Catalog.from_config(cfg)
    params = suite_parameters(cfg, "raw")
    results = []
    for role, info in datasets.items():
        frame = catalog.read_derived("load", info["key"])
        for snapshot_id, batch in frame.groupby("snapshot_id", sort=False):
            report = validate(
                batch.reset_index(drop=True),
                cfg.validation.raw_suite,
                params,
                gx_root=catalog.root,
                run_name=f"{run_id}-raw-{snapshot_id}",
                build_data_docs=cfg.validation.build_data_docs,
            )
            results.append(
                {
                    "snapshot_id": snapshot_id,
                    "role": role,
                    "rows": len(batch),
                    "success": report.success,
                    "warnings": len(report.warnings),
                    "data_docs": str(report.data_docs) if report.data_docs else None,
                }
            )
            if not report.success:
                raise failure_from_report(report, subject=f"raw batch {snapshot_id} ({role})")
    _publish_table(run_id, "validate-raw", results, "Great Expectations raw-batch suite, one row per snapshot")
    return {"success": True, "batches": results}


@task(name="clean", persist_result=True)
def clean_task(cfg: DriftloopConfig, run_id: str, datasets: dict) -> dict:
    """Clean the pool (with dedup and gold-overlap removal) and normalise the gold sets."""
    from driftloop.tasks.clean import clean, normalize_texts

    catalog = Catalog.from_config(cfg)
    section = cfg.section_hash("clean")
    out: dict[str, Any] = {}
    dev = catalog.read_derived("load", datasets["gold_dev"]["key"])
    test = catalog.read_derived("load", datasets["gold_test"]["key"])
    for role, gold in (("gold_dev", dev), ("gold_test", test)):
        key = content_hash("clean", datasets[role]["key"], section, CODE_VERSION)
        normalised = gold.assign(text=normalize_texts(gold["text"], cfg.clean))
        catalog.write_derived("clean", key, normalised)
        out[role] = {"key": key, "rows": len(normalised)}
    key = content_hash(
        "clean",
        datasets["unlabelled"]["key"],
        datasets["gold_dev"]["key"],
        datasets["gold_test"]["key"],
        section,
        CODE_VERSION,
    )
    cached = _cached(catalog, "clean", key)
    if cached is None:
        pool = catalog.read_derived("load", datasets["unlabelled"]["key"])
        reference = pd.concat([dev["text"], test["text"]], ignore_index=True)
        result = clean(pool, cfg.clean, reference_texts=reference)
        report = {**result.report, "dropped": result.dropped}
        _save(catalog, "clean", key, result.frame, report)
    else:
        report = cached[1]
    out["unlabelled"] = {"key": key, "rows": report["rows_out"], "report": report}
    _logger().info("cleaned pool: %s -> %s rows; dropped %s", report["rows_in"], report["rows_out"], report["dropped"])
    _publish_table(
        run_id,
        "clean",
        [{"rule": k, "dropped": v} for k, v in report["dropped"].items()],
        f"Cleaning drops by rule ({report['rows_in']} rows in, {report['rows_out']} out)",
    )
    return out


@task(name="weak-label", persist_result=True)
def weak_label_task(cfg: DriftloopConfig, run_id: str, cleaned: dict) -> dict:
    """Apply the labeling functions, fit the label model, keep the rows it can label."""
    from driftloop.tasks.weak_label import load_lfs, weak_label

    catalog = Catalog.from_config(cfg)
    lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels, base_dir=Path.cwd())
    lf_source = _lf_source_hash(cfg.weak_label.lf_module)
    key = content_hash(
        "weak_label",
        cleaned["unlabelled"]["key"],
        cleaned["gold_dev"]["key"],
        cfg.section_hash("weak_label", "data"),
        cfg.project.seed,
        lf_source,
        CODE_VERSION,
    )
    pool = catalog.read_derived("clean", cleaned["unlabelled"]["key"])
    dev = catalog.read_derived("clean", cleaned["gold_dev"]["key"])
    test = catalog.read_derived("clean", cleaned["gold_test"]["key"])
    result = weak_label(pool, dev, lfs, cfg.weak_label, cfg.data.labels, seed=cfg.project.seed)
    metrics = dict(result.metrics)
    _save(catalog, "weak_label", key, result.frame, metrics)
    # The label model's own test predictions: evaluation reports it beside the end model.
    with atomic_path(_label_model_path(catalog, key)) as tmp:  # augmentation's label check reuses it
        result.label_model.save(str(tmp))
    test_probs = result.predict_proba(test["text"])
    catalog.write_derived(
        "weak_label",
        f"{key}.test_probs",
        pd.DataFrame({"row_id": test["row_id"], "label_probs": list(map(list, test_probs))}),
    )
    run_dir = catalog.run_dir(run_id)
    analysis = result.analysis.reset_index().rename(columns={"index": "lf"})
    with atomic_path(run_dir / "lf_analysis.csv") as tmp:
        analysis.to_csv(tmp, index=False)
    save_figure(lf_figure(analysis), run_dir / "lf_analysis.png")
    _logger().info(
        "weak labels: %s LFs, coverage %.3f, label model dev acc %.3f vs majority vote %.3f, %s rows abstained",
        metrics["n_lfs"],
        metrics["coverage"],
        metrics["label_model_dev_accuracy"],
        metrics["majority_vote_dev_accuracy"],
        metrics["abstained_rows"],
    )
    _publish_table(
        run_id,
        "lf-analysis",
        json.loads(analysis.to_json(orient="records")),
        "Labeling-function analysis: coverage, overlaps, conflicts, dev accuracy",
    )
    return {
        "key": key,
        "metrics": metrics,
        "test_probs_key": f"{key}.test_probs",
        "lf_analysis": str(run_dir / "lf_analysis.csv"),
    }


def _label_model_path(catalog: Catalog, weak_key: str) -> Path:
    return catalog.derived_path("weak_label", weak_key, suffix=".label_model.pkl")


def _lf_source_hash(spec: str) -> str:
    """Hash of the LF module's source, so editing an LF invalidates cached labels."""
    import importlib.util

    path = Path(spec)
    if not path.suffix == ".py":
        found = importlib.util.find_spec(spec)
        path = Path(found.origin) if found and found.origin else path
    return content_hash(path.read_text(encoding="utf-8")) if path.is_file() else "unknown"


@task(name="balance", persist_result=True)
def balance_task(cfg: DriftloopConfig, run_id: str, labelled_key: str, synthetic_key: str | None) -> dict:
    """Even out the classes of weak-labelled (plus any synthetic) rows."""
    from driftloop.tasks.balance import balance

    catalog = Catalog.from_config(cfg)
    frame = catalog.read_derived("weak_label", labelled_key).assign(is_synthetic=False)
    if synthetic_key is not None:
        frame = pd.concat([frame, catalog.read_derived("augment", synthetic_key)], ignore_index=True)
    result = balance(frame, cfg.balance, cfg.data.labels, seed=cfg.project.seed)
    key = content_hash(
        "balance", labelled_key, synthetic_key, cfg.section_hash("balance"), cfg.project.seed, CODE_VERSION
    )
    _save(catalog, "balance", key, result.frame, result.report)
    save_figure(
        balance_figure(result.before, result.after, cfg.balance.strategy), catalog.run_dir(run_id) / "balance.png"
    )
    _logger().info("balance (%s): %s -> %s", cfg.balance.strategy, result.before, result.after)
    _publish_table(
        run_id,
        "balance",
        [{"label": k, "before": result.before[k], "after": result.after[k]} for k in cfg.data.labels],
        f"Per-class counts before and after balancing ({cfg.balance.strategy})",
    )
    return {"key": key, **result.report}


@task(name="validate-train", persist_result=True)
def validate_train_task(cfg: DriftloopConfig, run_id: str, train_key: str) -> dict:
    """Run the training-set suite; a failed critical expectation stops the run."""
    from driftloop.tasks.validate import failure_from_report, format_failures, suite_parameters, validate

    catalog = Catalog.from_config(cfg)
    # Oversampled repeats share a row_id; the suite's duplicate check counts distinct rows only.
    frame = catalog.read_derived("balance", train_key)
    report = validate(
        frame,
        cfg.validation.train_suite,
        suite_parameters(cfg, "train"),
        gx_root=catalog.root,
        run_name=f"{run_id}-train",
        build_data_docs=cfg.validation.build_data_docs,
    )
    summary = {
        "success": report.success,
        "critical_failures": report.critical_failures,
        "warnings": report.warnings,
        "statistics": report.statistics,
        "data_docs": str(report.data_docs) if report.data_docs else None,
    }
    write_json(catalog.run_dir(run_id) / "validation_train.json", {**summary, "results": report.results})
    lines = [f"**Training set gate: {'PASSED' if report.success else 'FAILED'}**", ""]
    if not report.success or report.warnings:
        lines += ["```", format_failures(report), "```"]
    if report.data_docs:
        lines.append(f"\nData Docs: `{report.data_docs}`")
    _publish_markdown(run_id, "validate-train", "\n".join(lines), "Great Expectations training-set gate")
    if not report.success:
        raise failure_from_report(report, subject="training set")
    return summary


@task(name="augment", persist_result=True)
def augment_task(cfg: DriftloopConfig, run_id: str, weak: dict, cleaned: dict) -> dict:
    """Rewrite minority-class rows (back-translation, paraphrase, EDA) and keep the ones that pass the filter."""
    from driftloop.tasks.augment import assert_no_synthetic, augment

    catalog = Catalog.from_config(cfg)
    key = content_hash(
        "augment",
        weak["key"],
        cleaned["gold_dev"]["key"],
        cleaned["gold_test"]["key"],
        cfg.section_hash("augment", "data"),
        cfg.project.seed,
        CODE_VERSION,
    )
    samples_path = catalog.derived_path("augment", key, suffix=".samples.csv")
    cached = _cached(catalog, "augment", key)
    if cached is not None and samples_path.exists():
        frame, report = cached
    else:
        pool = catalog.read_derived("weak_label", weak["key"])
        dev = catalog.read_derived("clean", cleaned["gold_dev"]["key"])
        test = catalog.read_derived("clean", cleaned["gold_test"]["key"])
        assert_no_synthetic(dev, "gold_dev")
        assert_no_synthetic(test, "gold_test")
        result = augment(
            pool,
            cfg.augment,
            cfg.data.labels,
            seed=cfg.project.seed,
            label_check=_label_check(cfg, catalog, weak["key"]),
            existing_texts=pd.concat([dev["text"], test["text"]]).tolist(),
        )
        frame, report = result.frame, result.report
        with atomic_path(samples_path) as tmp:
            result.samples.to_csv(tmp, index=False)
        _save(catalog, "augment", key, frame, report)
    run_dir = catalog.run_dir(run_id)
    with atomic_path(run_dir / "augmentation_samples.csv") as tmp:
        tmp.write_bytes(samples_path.read_bytes())
    _publish_markdown(
        run_id,
        "augment",
        _augment_markdown(report, pd.read_csv(samples_path, keep_default_na=False)),
        "Augmentation: counts per method, class and rejection reason; sample pairs",
    )
    return {"key": key if len(frame) else None, "report": report, "samples": str(run_dir / "augmentation_samples.csv")}


def _label_check(cfg: DriftloopConfig, catalog: Catalog, weak_key: str):
    """texts -> the label model's class index, or -1 where every LF abstains (no evidence either way)."""
    import numpy as np
    from snorkel.labeling.model import LabelModel

    from driftloop.tasks.weak_label import load_lfs, predict_proba

    lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels, base_dir=Path.cwd())
    label_model = LabelModel(cardinality=len(cfg.data.labels), verbose=False)
    label_model.load(str(_label_model_path(catalog, weak_key)))

    def check(texts: list[str]) -> np.ndarray:
        probs = predict_proba(pd.Series(texts, dtype=object), lfs, label_model)
        out = np.full(len(texts), -1)
        covered = ~np.isnan(probs).any(axis=1)
        out[covered] = probs[covered].argmax(axis=1)
        return out

    return check


def _augment_markdown(report: dict, samples: pd.DataFrame, per_verdict: int = 8) -> str:
    lines = [
        f"**{report['accepted']} accepted of {report['generated']} generated**",
        "",
        "| method | generated | accepted |",
        "|---|---|---|",
    ]
    lines += [f"| {m} | {v['generated']} | {v['accepted']} |" for m, v in report["per_method"].items()]
    rejected = {k: v for k, v in report["rejected_by_reason"].items() if v}
    lines += [
        "",
        "Rejected by reason: " + (", ".join(f"{k} {v}" for k, v in rejected.items()) or "none"),
        "",
        "| verdict | method | source | candidate | similarity | reason |",
        "|---|---|---|---|---|---|",
    ]
    cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")[:160]  # noqa: E731
    for verdict in ("accepted", "rejected"):
        for row in samples[samples["verdict"] == verdict].head(per_verdict).itertuples():
            lines.append(
                f"| {verdict} | {row.method} | {cell(row.source)} | {cell(row.candidate)} | "
                f"{row.similarity} | {row.reason} |"
            )
    return "\n".join(lines)


# The model stages hand a TrainResult (a model in memory) from task to task: nothing to persist or hash.
@task(name="fine-tune", cache_policy=NO_CACHE, persist_result=False)
def fine_tune_task(
    cfg: DriftloopConfig, run_id: str, train_key: str, dev_key: str, class_weights: dict[str, float] | None
) -> TrainResult:
    """Fine-tune the configured model on the validated training set; early-stop on gold dev macro-F1."""
    from driftloop.tasks.train import train

    catalog = Catalog.from_config(cfg)
    result = train(
        catalog.read_derived("balance", train_key),
        catalog.read_derived("clean", dev_key),
        cfg.data.labels,
        cfg.train,
        seed=cfg.project.seed,
        class_weights=class_weights,
        checkpoint_dir=catalog.derived_dir / "train_checkpoints",
    )
    write_json(catalog.run_dir(run_id) / "training_history.json", result.history)
    _publish_table(
        run_id,
        "fine-tune",
        [{k: v for k, v in result.summary().items() if not isinstance(v, dict)}],
        f"Fine-tuning {result.model} ({result.method})",
    )
    return result


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False)
def evaluate_task(
    cfg: DriftloopConfig, run_id: str, result: TrainResult, test_key: str, label_model_probs_key: str
) -> EvaluationResult:
    """Score the model, the label model and a majority baseline on the gold test set (never synthetic rows)."""
    import numpy as np

    from driftloop.tasks.augment import assert_no_synthetic
    from driftloop.tasks.evaluate import evaluate

    catalog = Catalog.from_config(cfg)
    test = catalog.read_derived("clean", test_key)
    assert_no_synthetic(test, "gold_test")
    lm = catalog.read_derived("weak_label", label_model_probs_key)
    lm_probs = np.array(lm.set_index("row_id").loc[test["row_id"], "label_probs"].tolist(), dtype=float)
    probs = result.classifier.predict_proba(test["text"].tolist(), batch_size=cfg.train.eval_batch_size)
    evaluation = evaluate(
        test, cfg.data.labels, probs, cfg.evaluate, label_model_probs=lm_probs, plots_dir=catalog.run_dir(run_id)
    )
    rows = [{"predictor": "fine-tuned model", "accuracy": evaluation.accuracy, "macro_f1": evaluation.macro_f1}]
    if evaluation.label_model is not None:
        rows.append(
            {
                "predictor": "label model",
                "accuracy": evaluation.label_model["accuracy"],
                "macro_f1": evaluation.label_model["macro_f1"],
            }
        )
    rows.append(
        {
            "predictor": "majority class",
            "accuracy": evaluation.majority_baseline["accuracy"],
            "macro_f1": evaluation.majority_baseline["macro_f1"],
        }
    )
    _publish_table(run_id, "evaluate", rows, f"Gold test set ({evaluation.n_test} rows)")
    _logger().info(
        "test: accuracy %.4f, macro-F1 %.4f (label model accuracy %s)",
        evaluation.accuracy,
        evaluation.macro_f1,
        evaluation.label_model_accuracy,
    )
    return evaluation


@task(name="promote", cache_policy=NO_CACHE, persist_result=False)
def promote_task(
    cfg: DriftloopConfig,
    run_id: str,
    result: TrainResult,
    evaluation: EvaluationResult,
    snapshots: dict[str, list[str]],
) -> dict:
    """Save the model as models/<run_id>/, register it, and make it champion if it beats the current one."""
    from driftloop.tasks.registry import Registry, promotion_metrics
    from driftloop.tasks.train import release_checkpoints, save_model

    catalog = Catalog.from_config(cfg)
    lineage = {"train": snapshots["unlabelled"], "dev": snapshots["gold_dev"], "test": snapshots["gold_test"]}
    folder = save_model(
        result,
        catalog.models_dir / run_id,
        evaluation=evaluation.metrics,
        data_snapshots=lineage,
        run_config=cfg.resolved(),
        extra_files={Path(p).name: p for p in evaluation.plots.values()},
    )
    decision = Registry(catalog.models_dir).register_and_promote(
        run_id,
        folder,
        promotion_metrics(evaluation.metrics),
        cfg.promotion,
        data_snapshots=lineage,
        config_hash=cfg.config_hash,
        method=result.method,
        base_model=result.model,
        extra={"run_id": run_id},
    )
    release_checkpoints(result)  # only now: a crash before this point resumes instead of retraining
    verdict = "PROMOTED to champion" if decision.promoted else "kept as challenger"
    _logger().info("model %s %s: %s", run_id, verdict, decision.reason)
    _publish_markdown(
        run_id,
        "promote",
        f"**{run_id}: {verdict}**\n\n{decision.reason}\n\nModel folder: `{folder}`",
        "Champion/challenger decision",
    )
    return {**decision.summary(), "model_dir": str(folder)}
