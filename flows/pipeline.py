"""The main driftloop flow: ingest -> validate raw -> clean -> weak-label -> [augment] -> balance
-> validate -> [fine-tune -> evaluate -> promote]. It composes tasks; it computes nothing itself."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from prefect import flow

from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig, load_config
from driftloop.flows import model_steps, steps
from driftloop.flows.report import finish_run, run_trigger
from driftloop.runtime import enable_progress_logging
from driftloop.summary import Artifacts, DataFigures, RunSummary, SelfTraining, Validation
from driftloop.tasks.contracts import Balanced, Cleaned, Datasets, WeakLabels


def prefect_flow_runs() -> list[str]:
    """This flow run's id and its parent's (the retrain that started it), outermost first; empty outside Prefect."""
    from prefect.runtime import flow_run

    ids = [flow_run.get_parent_flow_run_id(), flow_run.id]
    return [str(i) for i in ids if i]


def new_run_id(cfg: DriftloopConfig) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{cfg.config_hash[:8]}-{secrets.token_hex(2)}"


@flow(name="driftloop-pipeline", log_prints=True)
def pipeline(
    config_path: str = "configs/sms_spam.yaml", overrides: list[str] | None = None, trigger: str | None = None
) -> RunSummary:
    """Run the whole pipeline once on everything ingested so far; return the run summary.

    Args:
        config_path: YAML config under configs/.
        overrides: ``a.b=c`` strings applied on top of the file.
        trigger: what started the run (manual, data, drift, schedule), shown in the report and the index;
            default: guessed from the Prefect deployment.
    """
    enable_progress_logging()
    cfg = load_config(config_path, overrides or [])
    catalog = Catalog.from_config(cfg)
    run_id = new_run_id(cfg)
    run_dir = catalog.start_run(cfg, run_id)
    summary = RunSummary(
        run_id=run_id,
        config_hash=cfg.config_hash,
        config_path=str(config_path),
        run_dir=str(run_dir),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        prefect_flow_runs=prefect_flow_runs(),
    )
    summary.write(run_dir / "summary.json")  # a run killed outright still shows in the index
    started = time.perf_counter()
    try:
        _run_stages(cfg, run_id, summary)
        summary.status = "succeeded"
    except Exception as err:
        summary.status = "failed"
        summary.error = f"{type(err).__name__}: {err}"
        if summary.validation is not None and summary.validation.success is None:
            summary.validation.success = False
        raise
    except BaseException as err:  # Prefect ending the run (a lost concurrency lease, a cancel), Ctrl-C
        summary.status = "crashed"
        summary.error = f"{type(err).__name__}: {err or 'the run was stopped from outside'}"
        raise
    finally:
        summary.duration_s = round(time.perf_counter() - started, 2)
        summary.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        summary.trigger = trigger or run_trigger()
        summary.write(run_dir / "summary.json")
        finish_run(cfg, summary)  # report, index, Prefect artifacts, MLflow: logs a warning, never raises
        print(f"run folder: {run_dir}")
    return summary


def _run_stages(cfg: DriftloopConfig, run_id: str, summary: RunSummary) -> None:
    summary.ingest = [o.as_dict() for o in steps.ingest_task(cfg, run_id)]
    datasets = steps.load_datasets_task(cfg)
    summary.data = DataFigures(
        raw_rows=datasets.unlabelled.rows,
        gold_dev_rows=datasets.gold_dev.rows,
        gold_test_rows=datasets.gold_test.rows,
        snapshots=dict(datasets.snapshots),
    )
    raw = steps.validate_raw_task(cfg, run_id, datasets)
    summary.validation = Validation(raw={"success": raw.success, "batches": raw.batches})

    cleaned = steps.clean_task(cfg, run_id, datasets)
    summary.data.clean_rows = cleaned.pool.rows
    summary.data.dropped = cleaned.dropped
    examples = cleaned.report.get("examples", {})
    summary.data.drop_examples = {rule: examples.get(rule, []) for rule in cleaned.dropped}

    weak = steps.weak_label_task(cfg, run_id, cleaned)
    summary.weak_labeling = {**weak.metrics, "lf_analysis": weak.lf_analysis}
    # Where this run's derived data lives (catalog.read_artifact(name, key)): for reports and the review queue.
    summary.artifacts = Artifacts(
        clean=cleaned.pool.key, gold_dev=cleaned.gold_dev.key, gold_test=cleaned.gold_test.key, weak_label=weak.key
    )

    augmented = None
    if cfg.augment.enabled:
        augmented = steps.augment_task(cfg, run_id, weak, cleaned)
        summary.augmentation = {**augmented.report, "samples": augmented.samples}

    balanced = steps.balance_task(cfg, run_id, weak, augmented, cleaned)
    summary.balance = dict(balanced.report)
    summary.artifacts.balance = balanced.train.key

    gate = steps.validate_train_task(cfg, run_id, balanced)
    summary.validation.success = gate.success
    summary.validation.data_docs = gate.data_docs
    summary.validation.train = gate.summary()
    if cfg.train.enabled:
        _model_stages(cfg, run_id, summary, datasets, cleaned, weak, balanced)


def _model_stages(
    cfg: DriftloopConfig,
    run_id: str,
    summary: RunSummary,
    datasets: Datasets,
    cleaned: Cleaned,
    weak: WeakLabels,
    balanced: Balanced,
) -> None:
    tuned = model_steps.fine_tune_task(cfg, run_id, balanced, cleaned)
    result = tuned.result
    summary.training = {**result.summary(), "rows": tuned.rows}
    if cfg.self_train.enabled:
        self_trained = model_steps.self_train_task(cfg, run_id, result, balanced, cleaned, weak)
        summary.self_training = SelfTraining(rounds=self_trained.rounds, kept_round=self_trained.kept_round)
        result = self_trained.result
    evaluation = model_steps.evaluate_task(cfg, run_id, result, cleaned, weak)
    summary.evaluation = {**evaluation.summary(), "plots": evaluation.plots}
    gold_only = model_steps.gold_baseline_task(cfg, run_id, cleaned) if cfg.gold_rows.baseline else None
    summary.baselines = model_steps.baselines_task(run_id, evaluation, gold_only)
    if len(tuned.fits) > 1:
        summary.seed_band = model_steps.seed_band_task(cfg, run_id, tuned, cleaned, evaluation)
    comparison = model_steps.compare_task(cfg, run_id, result, cleaned)
    summary.evaluation.test_sets = comparison["test_sets"]
    baselines = {"gold_only_macro_f1": gold_only["macro_f1"]} if gold_only else {}
    promotion = model_steps.promote_task(cfg, run_id, result, evaluation, datasets, {**comparison, **baselines})
    summary.promotion = {
        **promotion.summary(),
        **{k: comparison[k] for k in ("champion_now", "significance") if k in comparison},
    }
