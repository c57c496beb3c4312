"""The model stages as Prefect tasks: fine-tune, evaluate on the gold test set, save and promote.

They hand a ``TrainResult`` (a model in memory) from task to task: nothing to persist or hash, so
caching is off. Resume after a crash comes from the training checkpoints instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from driftloop.atomic import write_json
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig
from driftloop.flows.publish import logger, publish_markdown, publish_table
from driftloop.tasks.contracts import Balanced, Cleaned, Datasets, FineTuned, Promotion, SelfTrained, WeakLabels

if TYPE_CHECKING:
    from driftloop.tasks.evaluate import EvaluationResult
    from driftloop.tasks.gold_rows import GoldSplit
    from driftloop.tasks.train import TrainResult


def _gold_split(cfg: DriftloopConfig, catalog: Catalog, cleaned: Cleaned) -> GoldSplit:
    """Gold dev cut into the rows that train and the rows held out to select (the same cut in every step)."""
    from driftloop.tasks.gold_rows import split_gold_dev

    dev = catalog.read_artifact(cleaned.gold_dev.artifact, cleaned.gold_dev.key)
    return split_gold_dev(dev, cfg.gold_rows, seed=cfg.project.seed)


def _end_model_training_set(cfg: DriftloopConfig, catalog: Catalog, balanced: Balanced, split: GoldSplit):
    """The validated weak-labelled training set plus the gold training rows."""
    from driftloop.tasks.gold_rows import with_gold_rows

    train_df = catalog.read_artifact(balanced.train.artifact, balanced.train.key)
    return with_gold_rows(train_df, split.train, cfg.gold_rows)


@task(name="fine-tune", cache_policy=NO_CACHE, persist_result=False)
def fine_tune_task(cfg: DriftloopConfig, run_id: str, balanced: Balanced, cleaned: Cleaned) -> FineTuned:
    """Fine-tune the configured model on the validated training set plus the gold training rows, once per seed;
    early-stop on the held-out gold dev rows' macro-F1.

    With ``train.seeds`` above 1 the fit with the best dev macro-F1 is kept; the others stay in memory for the seed
    band and their resume state is released now.
    """
    from driftloop.tasks.gold_rows import training_rows
    from driftloop.tasks.seed_sweep import fit_seeds, seed_numbers

    catalog = Catalog.from_config(cfg)
    split = _gold_split(cfg, catalog, cleaned)
    train_df = _end_model_training_set(cfg, catalog, balanced, split)
    dev_df = split.held_out
    rows = {**training_rows(train_df), "gold_held_out": len(dev_df)}
    logger().info(
        "training rows: %(weak)d weak-labelled, %(synthetic)d synthetic, %(gold)d gold; "
        "%(gold_held_out)d gold dev rows held out to select",
        rows,
    )
    sweep = fit_seeds(
        train_df,
        dev_df,
        cfg.data.labels,
        cfg.train,
        seeds=seed_numbers(cfg.project.seed, cfg.train.seeds),
        class_weights=balanced.class_weights,
        checkpoint_dir=catalog.derived_dir / "train_checkpoints",
        log=logger(),
    )
    result, fits = sweep.kept, list(sweep.fits)
    write_json(catalog.run_dir(run_id) / "training_history.json", result.history)
    publish_table(
        run_id,
        "fine-tune",
        [{k: v for k, v in fit.summary().items() if not isinstance(v, dict)} for fit in fits],
        f"Fine-tuning {result.model} ({result.method})",
    )
    return FineTuned(result=result, fits=fits, rows=rows)


@task(name="self-train", cache_policy=NO_CACHE, persist_result=False)
def self_train_task(
    cfg: DriftloopConfig, run_id: str, base: TrainResult, balanced: Balanced, cleaned: Cleaned, weak: WeakLabels
) -> SelfTrained:
    """Pseudo-label the pool rows no LF covers with the end model and train again; held-out gold dev keeps or drops
    a round."""
    from driftloop.tasks.self_train import self_train
    from driftloop.tasks.train import launch_train, release_checkpoints

    catalog = Catalog.from_config(cfg)
    split = _gold_split(cfg, catalog, cleaned)
    outcome = self_train(
        _end_model_training_set(cfg, catalog, balanced, split),
        catalog.read_artifact("weak_label.uncovered", weak.key),
        split.held_out,
        cfg.data.labels,
        cfg.train,
        cfg.self_train,
        seed=base.seed,  # the kept seed's: with train.seeds > 1 it may not be project.seed
        train_fn=launch_train,
        test=catalog.read_artifact(cleaned.gold_test.artifact, cleaned.gold_test.key),
        class_weights=balanced.class_weights,
        base_result=base,
    )
    if outcome.result is not base:  # a later round won: the first fit's resume state is no longer needed
        release_checkpoints(base)
    write_json(catalog.run_dir(run_id) / "self_training.json", outcome.rounds)
    for record in outcome.rounds:
        logger().info(
            "self-training round %s: added %s, dev macro-F1 %s, %s",
            record["round"],
            record["added_per_class"],
            (record.get("dev") or {}).get("macro_f1"),
            "kept" if record.get("kept") else record.get("stopped", "dropped"),
        )
    publish_table(
        run_id,
        "self-train",
        [
            {
                "round": r["round"],
                **{f"added {k}": v for k, v in r["added_per_class"].items()},
                "dev macro-F1": (r.get("dev") or {}).get("macro_f1"),
                "test macro-F1": (r.get("test") or {}).get("macro_f1"),
                "kept": r.get("kept"),
            }
            for r in outcome.rounds
        ],
        "Self-training rounds on the rows no LF covers",
    )
    return SelfTrained(result=outcome.result, rounds=outcome.rounds, kept_round=outcome.kept_round)


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False)
def evaluate_task(
    cfg: DriftloopConfig, run_id: str, result: TrainResult, cleaned: Cleaned, weak: WeakLabels
) -> EvaluationResult:
    """Score the model, the label model and a majority baseline on the gold test set (never synthetic rows)."""
    import numpy as np

    from driftloop.tasks.augment import assert_no_synthetic
    from driftloop.tasks.evaluate import evaluate

    catalog = Catalog.from_config(cfg)
    test = catalog.read_artifact(cleaned.gold_test.artifact, cleaned.gold_test.key)
    assert_no_synthetic(test, "gold_test")
    lm = catalog.read_artifact("weak_label.test_probs", weak.key)
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
    publish_table(run_id, "evaluate", rows, f"Gold test set ({evaluation.n_test} rows)")
    logger().info(
        "test: accuracy %.4f, macro-F1 %.4f (label model accuracy %s)",
        evaluation.accuracy,
        evaluation.macro_f1,
        evaluation.label_model_accuracy,
    )
    return evaluation


@task(name="gold-only-baseline", cache_policy=NO_CACHE, persist_result=False)
def gold_baseline_task(cfg: DriftloopConfig, run_id: str, cleaned: Cleaned) -> dict[str, Any] | None:
    """The same model fine-tuned on the gold training rows alone, early-stopped on the same held-out rows, on gold
    test: what the rows a user labelled by hand give without the pipeline. None when no gold row trains."""
    from driftloop.tasks.gold_rows import baseline_record
    from driftloop.tasks.self_train import scores
    from driftloop.tasks.train import launch_train as train

    catalog = Catalog.from_config(cfg)
    split = _gold_split(cfg, catalog, cleaned)
    if split.train.empty or split.held_out.empty:
        return None
    logger().info("gold-only baseline: fine-tuning on %d gold dev rows alone", len(split.train))
    fit = train(split.train, split.held_out, cfg.data.labels, cfg.train, seed=cfg.project.seed)
    test = catalog.read_artifact(cleaned.gold_test.artifact, cleaned.gold_test.key)
    on_test = scores(fit.classifier, test, cfg.data.labels, cfg.train.eval_batch_size)
    record = {
        **baseline_record(on_test, dev_macro_f1=fit.best_dev_macro_f1, rows=len(split.train)),
        "train_seconds": round(fit.train_seconds, 1),
    }
    logger().info("gold-only baseline on gold test: macro-F1 %(macro_f1).4f, accuracy %(accuracy).4f", record)
    return record


@task(name="baselines", cache_policy=NO_CACHE, persist_result=False)
def baselines_task(run_id: str, evaluation: EvaluationResult, gold_only: dict[str, Any] | None) -> dict[str, Any]:
    """The end model beside the label model and the gold-only baseline on gold test, and the verdict."""
    from driftloop.tasks.gold_rows import compare_with_baselines

    end_model = {"macro_f1": evaluation.macro_f1, "accuracy": evaluation.accuracy}
    compared = compare_with_baselines(end_model, evaluation.label_model, gold_only)
    logger().info(compared["verdict"])
    rows = [
        {"predictor": name.replace("_", " "), **{k: compared[name][k] for k in ("macro_f1", "accuracy")}}
        for name in ("end_model", "label_model", "gold_only")
        if compared[name]
    ]
    publish_table(run_id, "baselines", rows, compared["verdict"])
    return compared


@task(name="seed-band", cache_policy=NO_CACHE, persist_result=False)
def seed_band_task(
    cfg: DriftloopConfig, run_id: str, tuned: FineTuned, cleaned: Cleaned, evaluation: EvaluationResult
) -> dict[str, Any]:
    """Every seed's fit on gold test, their mean and std, and the points over the label model.

    Each seed's dev score is the one its training picked the kept checkpoint by (``best_dev_macro_f1``).
    """
    from driftloop.tasks.seed_sweep import gold_test_band

    catalog = Catalog.from_config(cfg)
    test = catalog.read_artifact(cleaned.gold_test.artifact, cleaned.gold_test.key)
    lm = evaluation.label_model
    band = gold_test_band(
        tuned.fits,
        tuned.result,
        test,
        cfg.data.labels,
        batch_size=cfg.train.eval_batch_size,
        label_model_macro_f1=None if lm is None else lm["macro_f1"],
    )
    f1, over = band["test_macro_f1"], band.get("points_over_label_model")
    logger().info(
        "%d seeds: test macro-F1 %.4f +- %.4f%s",
        f1["n"],
        f1["mean"],
        f1["std"],
        "" if over is None else f" ({over['mean']:+.2f} +- {over['std']:.2f} points over the label model)",
    )
    publish_table(
        run_id, "seed-band", band["seeds"], f"Seed band: gold test macro-F1 {f1['mean']:.4f} +- {f1['std']:.4f}"
    )
    return band


@task(name="compare-with-champion", cache_policy=NO_CACHE, persist_result=False)
def compare_task(cfg: DriftloopConfig, run_id: str, result: TrainResult, cleaned: Cleaned) -> dict[str, Any]:
    """Score challenger and champion on every gold test set today; the paired significance test on all of them.

    Returns the extra promotion metrics: ``test_sets`` (the challenger, set by set), ``champion_now`` (the
    champion re-scored on the same rows) and ``significance``. Without a champion, only ``test_sets``.
    """
    import numpy as np

    from driftloop.tasks.champion_check import metrics_per_test_set
    from driftloop.tasks.registry import Registry
    from driftloop.tasks.significance import compare
    from driftloop.tasks.train import load_classifier

    catalog = Catalog.from_config(cfg)
    test = catalog.read_artifact(cleaned.gold_test.artifact, cleaned.gold_test.key)
    texts, labels = test["text"].tolist(), cfg.data.labels
    ours = result.classifier.predict_proba(texts, batch_size=cfg.train.eval_batch_size)
    registry = Registry(catalog.models_dir)
    champion = registry.champion()
    # compared_with: promotion refuses this comparison if the champion has changed by then (compare-and-swap).
    extra: dict[str, Any] = {
        "test_sets": metrics_per_test_set(test, ours, labels),
        "compared_with": None if champion is None else champion.version,
    }
    if champion is None:
        return extra
    try:
        theirs = load_classifier(registry.resolve_path(champion), device=cfg.train.device).predict_proba(
            texts, batch_size=cfg.train.eval_batch_size
        )
    except Exception as err:  # a deleted or unreadable champion folder: fall back to its stored metrics
        logger().warning(
            "could not re-score champion %s (%s); comparing with its stored metrics", champion.version, err
        )
        return extra
    y = test["label"].map({name: i for i, name in enumerate(labels)}).to_numpy()
    overall = metrics_per_test_set(test.assign(snapshot_id="all"), theirs, labels)["all"]
    extra["champion_now"] = {
        "version": champion.version,
        "macro_f1": overall["macro_f1"],
        "per_class_f1": overall["per_class_f1"],
        "test_sets": metrics_per_test_set(test, theirs, labels),
    }
    if cfg.promotion.test != "none":
        significance = compare(
            y,
            np.asarray(theirs).argmax(axis=1),
            np.asarray(ours).argmax(axis=1),
            test=cfg.promotion.test,
            level=cfg.promotion.significance_level,
            n_samples=cfg.promotion.bootstrap_samples,
            seed=cfg.project.seed,
            k=len(labels),
        )
        extra["significance"] = significance.summary()
        logger().info("versus champion %s: %s", champion.version, significance.describe())
    return extra


@task(name="promote", cache_policy=NO_CACHE, persist_result=False)
def promote_task(
    cfg: DriftloopConfig,
    run_id: str,
    result: TrainResult,
    evaluation: EvaluationResult,
    datasets: Datasets,
    comparison: dict[str, Any] | None = None,
) -> Promotion:
    """Save the model as models/<run_id>/, register it, and make it champion if it beats the current one."""
    from driftloop.tasks.registry import Registry, promotion_metrics
    from driftloop.tasks.train import release_checkpoints, save_model

    catalog = Catalog.from_config(cfg)
    snapshots = datasets.snapshots
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
        {**promotion_metrics(evaluation.metrics), **(comparison or {})},
        cfg.promotion,
        data_snapshots=lineage,
        config_hash=cfg.config_hash,
        method=result.method,
        base_model=result.model,
        extra={"run_id": run_id},
    )
    release_checkpoints(result)  # only now: a crash before this point resumes instead of retraining
    verdict = "PROMOTED to champion" if decision.promoted else "kept as challenger"
    logger().info("model %s %s: %s", run_id, verdict, decision.reason)
    publish_markdown(
        run_id,
        "promote",
        f"**{run_id}: {verdict}**\n\n{decision.reason}\n\nModel folder: `{folder}`",
        "Champion/challenger decision",
    )
    return Promotion(model_dir=str(folder), decision=decision.summary())
