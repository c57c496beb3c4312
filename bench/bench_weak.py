"""Benchmark: weak supervision that generalises, on the SMS demo and the BBC News set (issue 12).

Run: ``python -m bench.bench_weak [--quick] [--train] [--seeds 3] [--datasets sms_spam bbc_news] [--set a.b=c]
[--review-train METHOD] [--supervised-only] [--augment-ablation [RATIO ...]] [--keep [ARM ...]] [--no-review]
[--out FILE]``. Always: the
three aggregators (Snorkel LabelModel, majority vote, dev-accuracy-weighted vote) on gold dev and gold test, the chosen
one, and weak-label ECE on gold dev before/after temperature calibration (the goal: <= 0.05); unless ``--no-review``, a
review simulation without retraining (100 queued vs 100 random reviewed rows re-estimating the weak labeler). With
``--train``: each dataset's own config (``configs/<name>.yaml``: train, balance, self_train sections, plus ``--set``
overrides), the end model on the weak labels, its self-training rounds and, where the pool has gold labels, the fully
supervised upper bound (same model, config and balancing, gold labels), mean ± std over ``--seeds``. ``--review-train
METHOD``: the review simulation with retraining (gold as the reviewer, 3 seeds). ``--augment-ablation [RATIO ...]``:
the config's augmentation run once per ``augment.max_synthetic_ratio``, then round-0 end models on the weak rows with
and without the synthetic rows, paired by seed. Writes ``bench/results/weak_supervision.json``
(``weak_supervision.quick.json`` with ``--quick``) after every seed; other datasets' entries in the file are kept,
each with the command that made it.
Seeds are numbered as the pipeline numbers ``train.seeds`` (``seed_numbers``): ``--seeds 3`` runs project.seed,
+1, +2 (42-44); ``--keep`` always did, the figures transcribed from the README (``readme_*.json``) used 0-2.
Defaults are never tuned on gold test.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from bench.record import command_line, machine_info, read_results, result_path, write_result
from driftloop.config import ReviewConfig, WeakLabelConfig, load_config
from driftloop.tasks.demo_data import read_sms_corpus, split_demo
from driftloop.tasks.evaluate import band
from driftloop.tasks.lf import load_lfs
from driftloop.tasks.news_data import LABELS as NEWS_LABELS
from driftloop.tasks.news_data import read_bbc_corpus, split_news
from driftloop.tasks.review import build_queue
from driftloop.tasks.seed_sweep import seed_numbers
from driftloop.tasks.weak_label import predict_proba, weak_label

REPO = Path(__file__).resolve().parents[1]
STEM, TITLE = "weak_supervision", "Weak supervision: labelers, end models, review, augmentation"


def _save(out: Path, report: dict[str, Any]) -> None:
    """Save the report so far in the result envelope (a long run leaves usable figures behind)."""
    write_result(STEM, report, title=TITLE, quick=report["quick"], path=out)


def _datasets(quick: bool) -> dict[str, dict[str, Any]]:
    from driftloop.config import DemoDataConfig

    sms = split_demo(read_sms_corpus(), DemoDataConfig(), seed=42)
    news = split_news(read_bbc_corpus(), seed=42, sample=900 if quick else None)
    return {
        "sms_spam": {
            "parts": sms,
            "labels": ["ham", "spam"],
            "lfs": "configs/lfs/sms_spam.py",
            "config": "configs/sms_spam.yaml",
        },
        "bbc_news": {
            "parts": news,
            "labels": NEWS_LABELS,
            "lfs": "configs/lfs/bbc_news.py",
            "config": "configs/bbc_news.yaml",
        },
    }


def _scores(y: np.ndarray, probs: np.ndarray, k: int, fallback: int) -> dict[str, float]:
    covered = np.isfinite(probs).all(axis=1)
    pred = np.where(covered, np.nan_to_num(probs).argmax(axis=1), fallback)
    return {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0)), 4),
        "coverage": round(float(covered.mean()), 4),
    }


def _codes(frame: pd.DataFrame, labels: list[str]) -> np.ndarray:
    return frame["label"].map({n: i for i, n in enumerate(labels)}).to_numpy()


def weak_figures(name: str, ds: dict[str, Any], seed: int | None = None) -> tuple[dict[str, Any], Any]:
    parts, labels = ds["parts"], ds["labels"]
    lfs = load_lfs(str(REPO / ds["lfs"]), labels)
    cfg = load_config(REPO / ds["config"])  # the dataset's own weak_label section and gate threshold
    seed = cfg.project.seed if seed is None else seed
    result = weak_label(
        parts["pool"],
        parts["gold_dev"],
        lfs,
        cfg.weak_label,
        labels,
        seed=seed,
        gate_min_confidence=cfg.validation.min_label_confidence,
    )
    test = parts["gold_test"]
    y = _codes(test, labels)
    fallback = int(np.bincount(_codes(parts["gold_dev"], labels), minlength=len(labels)).argmax())
    on_test = {"chosen": _scores(y, result.predict_proba(test["text"]), len(labels), fallback)}
    on_test["label_model"] = _scores(y, predict_proba(test["text"], lfs, result.label_model), len(labels), fallback)
    m = result.metrics
    keys = ("aggregator", "aggregator_reason", "coverage", "covered_overlap_share", "label_model_identifiable")
    return {
        **{k: m[k] for k in keys},
        "dev": m["aggregators_dev"],
        "best_single_lf_dev": m["best_single_lf_dev"],
        "calibration": m["calibration"],
        "dev_ece_goal_met": m["dev_ece"] is not None and m["dev_ece"] <= 0.05,
        "labelled_rows": m["labelled_rows"],
        "dropped_low_confidence": m["dropped_low_confidence"],
        "test": on_test,
        "warnings": m["warnings"],
    }, result


def review_simulation(
    ds: dict[str, Any], result: Any, seeds: int, n: int = 100, *, base_seed: int
) -> dict[str, Any] | None:
    """Gold pool labels as the reviewer: re-estimate the weak labeler with 100 queued vs 100 random reviewed rows."""
    parts, labels = ds["parts"], ds["labels"]
    if "pool_labels" not in parts:
        return None
    pool = parts["pool_labels"]
    lfs = load_lfs(str(REPO / ds["lfs"]), labels)
    y_test = _codes(parts["gold_test"], labels)
    fallback = int(np.bincount(_codes(parts["gold_dev"], labels), minlength=len(labels)).argmax())
    queue = build_queue(pool, result.pool_votes, result.pool_probs, labels, ReviewConfig(queue_size=n))
    picked = {"queue": pool.set_index("text").loc[queue["text"]].reset_index()}
    out: dict[str, list[float]] = {"queue": [], "random": [], "none": []}
    for seed in seed_numbers(base_seed, seeds):
        picked["random"] = pool.sample(n, random_state=seed)
        for arm in ("none", "queue", "random"):
            reviewed = None if arm == "none" else picked[arm][["text", "label"]]
            again = weak_label(
                parts["pool"],
                parts["gold_dev"],
                lfs,
                WeakLabelConfig(lf_module="x"),
                labels,
                seed=seed,
                gate_min_confidence=0.5,
                reviewed=reviewed,
            )
            out[arm].append(
                _scores(y_test, again.predict_proba(parts["gold_test"]["text"]), len(labels), fallback)["macro_f1"]
            )
    return {
        "rows": n,
        "seeds": seeds,
        "what": "weak labeler's test macro-F1 after re-estimating LF accuracies with reviewed rows (no retraining)",
        **{arm: {"mean": round(float(np.mean(v)), 4), "std": round(float(np.std(v)), 4)} for arm, v in out.items()},
        "queue_beats_random": bool(np.mean(out["queue"]) > np.mean(out["random"])),
    }


def _pool_gold(name: str, ds: dict[str, Any]) -> pd.DataFrame:
    """Gold labels of the pool rows (the simulated reviewer): BBC keeps them; the SMS pool gets them from the corpus."""
    parts = ds["parts"]
    if "pool_labels" in parts:
        return parts["pool_labels"][["text", "label"]]
    corpus = read_sms_corpus().drop_duplicates("text")[["text", "label"]]
    return parts["pool"].merge(corpus, on="text", how="inner")


def review_training_simulation(
    name: str, ds: dict[str, Any], cfg: Any, seeds: int, method: str, n: int = 100
) -> dict[str, Any]:
    """100 queued vs 100 random reviewed rows (gold as the reviewer), each followed by the pipeline's retraining.

    Per seed: weak labels + end model without review (``none``); the queue is built from that run exactly as
    ``driftloop review export`` builds it (LF votes, calibrated weak labels, the end model's probabilities).
    Each arm then re-runs weak labelling with the reviewed rows (LF accuracy estimates), trains on the weak
    labels with the reviewed rows as clean labels (as the balance step does), and is scored on gold test.
    """
    from driftloop.tasks.balance import as_clean_labels, balance
    from driftloop.tasks.train import train

    parts, labels = ds["parts"], ds["labels"]
    dev, test = parts["gold_dev"], parts["gold_test"]
    y_test = _codes(test, labels)
    gold = _pool_gold(name, ds)
    lfs = load_lfs(str(REPO / ds["lfs"]), labels)
    train_cfg = cfg.train.with_method(method)

    def run(reviewed: pd.DataFrame | None, seed: int) -> tuple[Any, Any, dict[str, float]]:
        weak = weak_label(
            parts["pool"],
            dev,
            lfs,
            cfg.weak_label,
            labels,
            seed=seed,
            gate_min_confidence=cfg.validation.min_label_confidence,
            reviewed=reviewed,
        )
        frame = weak.frame.assign(is_synthetic=False)
        if reviewed is not None:
            frame = pd.concat([frame[~frame["text"].isin(reviewed["text"])], as_clean_labels(reviewed, labels)])
        balanced = balance(frame.reset_index(drop=True), cfg.balance, labels, seed=seed)
        fit = train(balanced.frame, dev, labels, train_cfg, seed=seed, class_weights=balanced.class_weights)
        probs = fit.classifier.predict_proba(test["text"].tolist(), batch_size=train_cfg.eval_batch_size)
        return weak, fit, _scores(y_test, probs, len(labels), 0)

    arms: dict[str, list[float]] = {"none": [], "queue": [], "random": []}
    reasons: list[dict[str, int]] = []
    for seed in seed_numbers(cfg.project.seed, seeds):
        weak, fit, scores = run(None, seed)
        arms["none"].append(scores["macro_f1"])
        end_probs = fit.classifier.predict_proba(parts["pool"]["text"].tolist(), batch_size=train_cfg.eval_batch_size)
        queue = build_queue(
            parts["pool"], weak.pool_votes, weak.pool_probs, labels, ReviewConfig(queue_size=n), end_probs=end_probs
        )
        counts: dict[str, int] = {}
        for entry in queue["reasons"]:
            for reason in filter(None, entry.split(";")):
                counts[reason] = counts.get(reason, 0) + 1
        reasons.append(counts)
        picked = {
            "queue": queue[["text"]].merge(gold, on="text", how="inner").drop_duplicates("text"),
            "random": gold.sample(n, random_state=seed),
        }
        for arm, rows in picked.items():
            arms[arm].append(run(rows[["text", "label"]].reset_index(drop=True), seed)[2]["macro_f1"])
        print(name, "review seed", seed, {k: v[-1] for k, v in arms.items()}, flush=True)
    gain = {arm: [100 * (a - b) for a, b in zip(arms[arm], arms["none"], strict=True)] for arm in ("queue", "random")}
    return {
        "rows": n,
        "seeds": seeds,
        "end_model_method": method,
        "what": "gold-test macro-F1 after reviewing 100 rows and retraining (weak labels re-estimated, reviewed rows "
        "as clean training labels); none = no review",
        **{arm: band(v, 4) for arm, v in arms.items()},
        "points_gained": {arm: band(v, 4) for arm, v in gain.items()},
        "queue_reasons_per_seed": reasons,
        "queue_beats_random": bool(np.mean(arms["queue"]) > np.mean(arms["random"])),
    }


def train_figures(
    name: str,
    ds: dict[str, Any],
    result: Any,
    seeds: int,
    cfg: Any,
    label_model_test: dict[str, float],
    out: Path,
    report: dict[str, Any],
) -> dict[str, Any]:
    """End model (round 0), self-training rounds and, with pool gold labels, the fully supervised upper bound.

    ``cfg`` is the dataset's resolved config: its ``train``, ``balance`` and ``self_train`` sections are what the
    pipeline uses (self-training switched on here so that one fit yields the figures with and without it).
    """
    from driftloop.tasks.balance import balance
    from driftloop.tasks.self_train import self_train
    from driftloop.tasks.train import train

    parts, labels = ds["parts"], ds["labels"]
    test = parts["gold_test"]
    st_cfg = cfg.self_train.model_copy(update={"enabled": True})
    runs: dict[str, list[dict[str, float]]] = {"end_model": [], "self_trained": [], "supervised": []}
    per_seed: list[dict[str, Any]] = []
    figures: dict[str, Any] = {
        "train_config": cfg.train.model_dump(mode="json"),
        "balance_config": cfg.balance.model_dump(mode="json"),
        "self_train_config": st_cfg.model_dump(mode="json"),
        "supervised": "same train/balance config, gold pool labels (one-hot soft targets)",
        "label_model_test": label_model_test,
        "seeds": [],
        "per_seed": per_seed,
    }
    numbers = seed_numbers(cfg.project.seed, seeds)
    for i, seed in enumerate(numbers):
        started = time.perf_counter()
        balanced = balance(result.frame, cfg.balance, labels, seed=seed)
        st = self_train(
            balanced.frame,
            result.uncovered,
            parts["gold_dev"],
            labels,
            cfg.train,
            st_cfg,
            seed=seed,
            train_fn=train,
            test=test,
            class_weights=balanced.class_weights,
        )
        record: dict[str, Any] = {
            "seed": seed,
            "rounds": st.rounds,
            "kept_round": st.kept_round,
        }
        runs["end_model"].append(st.rounds[0]["test"])
        runs["self_trained"].append(st.rounds[st.kept_round]["test"])
        if "pool_labels" in parts:
            runs["supervised"].append(supervised_fit(ds, cfg, seed, _pool_gold(name, ds)))
            record["supervised_test"] = runs["supervised"][-1]
        record["seconds"] = round(time.perf_counter() - started, 1)
        per_seed.append(record)
        figures["seeds"] = numbers[: i + 1]
        figures["summary"] = _train_summary(runs, label_model_test)
        report["datasets"][name]["training"] = figures
        _save(out, report)  # after every seed: a long run leaves usable figures behind
        print(name, "seed", seed, figures["summary"], flush=True)
    return figures


def augmentation_ablation(
    name: str,
    ds: dict[str, Any],
    result: Any,
    seeds: int,
    cfg: Any,
    ratios: list[float],
    out: Path,
    report: dict[str, Any],
) -> dict[str, Any]:
    """Round-0 end models with and without the config's augmentation, paired by seed on the same weak labels.

    The ``augment`` section of the dataset's config runs once per ``augment.max_synthetic_ratio`` in ``ratios``
    (switched on if it is off), as the pipeline runs it: the calibrated weak labeler checks each rewrite's label and
    dev/test texts are excluded. Each seed then trains on the balanced weak rows alone and on the balanced weak +
    synthetic rows of each ratio, with the same balance and train sections, so the difference is what the synthetic
    rows do to the end model.
    """
    from driftloop.tasks.augment import augment
    from driftloop.tasks.balance import balance
    from driftloop.tasks.self_train import scores
    from driftloop.tasks.train import train
    from driftloop.tasks.weak_label import label_checker

    parts, labels = ds["parts"], ds["labels"]
    dev, test = parts["gold_dev"], parts["gold_test"]
    weak = result.frame
    if "row_id" not in weak.columns:  # the pipeline's cleaning step gives every row an id; the bench's split does not
        weak = weak.assign(row_id=[f"pool:{i}" for i in range(len(weak))])
    figures: dict[str, Any] = {
        "weak_rows": {lbl: int((weak["label"] == lbl).sum()) for lbl in labels},
        "augmentations": {},
        "per_seed": [],
    }
    arms = {"weak_only": weak}
    for ratio in ratios:
        aug_cfg = cfg.augment.model_copy(update={"enabled": True, "max_synthetic_ratio": ratio})
        started = time.perf_counter()
        generated = augment(
            weak,
            aug_cfg,
            labels,
            seed=cfg.project.seed,
            label_check=label_checker(result.lfs, result.aggregator or result.label_model),
            existing_texts=pd.concat([dev["text"], test["text"]]).tolist(),
        )
        synthetic = generated.frame  # only the accepted synthetic rows
        arm = f"synthetic_ratio_{ratio:g}"
        figures["augmentations"][arm] = {
            "augment_config": aug_cfg.model_dump(mode="json"),
            "seconds": round(time.perf_counter() - started, 1),
            "synthetic_rows": {lbl: int((synthetic["label"] == lbl).sum()) for lbl in labels},
            "per_method": synthetic["aug_method"].value_counts().to_dict(),
        }
        print(name, arm, figures["augmentations"][arm]["synthetic_rows"], flush=True)
        arms[arm] = pd.concat([weak, synthetic], ignore_index=True)
    for seed in seed_numbers(cfg.project.seed, seeds):
        record: dict[str, Any] = {"seed": seed}
        for arm, frame in arms.items():
            balanced = balance(frame, cfg.balance, labels, seed=seed)
            fit = train(balanced.frame, dev, labels, cfg.train, seed=seed, class_weights=balanced.class_weights)
            record[arm] = {
                split: scores(fit.classifier, gold, labels, cfg.train.eval_batch_size)
                for split, gold in (("dev", dev), ("test", test))
            }
        record["test_macro_f1_points_over_weak_only"] = {
            arm: round(100 * (record[arm]["test"]["macro_f1"] - record["weak_only"]["test"]["macro_f1"]), 2)
            for arm in arms
            if arm != "weak_only"
        }
        figures["per_seed"].append(record)
        figures["summary"] = {
            f"{arm}_{split}": {
                m: band([r[arm][split][m] for r in figures["per_seed"]], 4) for m in ("accuracy", "macro_f1")
            }
            for arm in arms
            for split in ("dev", "test")
        }
        figures["summary"]["test_macro_f1_points_over_weak_only"] = {
            arm: band([r["test_macro_f1_points_over_weak_only"][arm] for r in figures["per_seed"]], 4)
            for arm in arms
            if arm != "weak_only"
        }
        report["datasets"][name]["augmentation_ablation"] = figures
        _save(out, report)
        print(name, "augmentation ablation, seed", seed, figures["summary"]["test_macro_f1_points_over_weak_only"])
    return figures


def keep_figures(
    name: str,
    ds: dict[str, Any],
    result: Any,
    seeds: int,
    cfg: Any,
    label_model_test: dict[str, float],
    arms: list[str],
    out: Path,
    report: dict[str, Any],
) -> dict[str, Any]:
    """Does the end model earn its keep: the pipeline's end model (weak rows + the gold training half of gold dev,
    early-stopped on the held-out half) against the label model and the gold-only baseline (the same model on the
    gold training half alone), per seed, on gold test. ``weak_only`` adds the previous default (weak rows only,
    early-stopped on all of gold dev). Seeds are the pipeline's: project.seed, project.seed + 1, ... (``seed_numbers``)
    """
    from driftloop.tasks.balance import balance
    from driftloop.tasks.gold_rows import split_gold_dev, with_gold_rows
    from driftloop.tasks.self_train import scores
    from driftloop.tasks.train import train

    parts, labels = ds["parts"], ds["labels"]
    test, batch = parts["gold_test"], cfg.train.eval_batch_size
    split = split_gold_dev(parts["gold_dev"], cfg.gold_rows, seed=cfg.project.seed)
    per_seed: list[dict[str, Any]] = []
    figures: dict[str, Any] = {
        "train_config": cfg.train.model_dump(mode="json"),
        "gold_rows_config": cfg.gold_rows.model_dump(mode="json"),
        "split": split.summary(),
        "label_model_test": label_model_test,
        "arms": arms,
        "per_seed": per_seed,
    }
    for seed in seed_numbers(cfg.project.seed, seeds):
        started = time.perf_counter()
        balanced = balance(result.frame, cfg.balance, labels, seed=seed)
        # arm -> (training rows, early-stopping rows, class weights)
        inputs = {
            "end_model": (with_gold_rows(balanced.frame, split.train, cfg.gold_rows), split.held_out, balanced),
            "gold_only": (split.train, split.held_out, None),
            "weak_only": (balanced.frame, parts["gold_dev"], balanced),
        }
        record: dict[str, Any] = {"seed": seed}
        for arm in arms:
            rows, dev, balanced_for = inputs[arm]
            class_weights = None if balanced_for is None else balanced_for.class_weights
            fit = train(rows, dev, labels, cfg.train, seed=seed, class_weights=class_weights)
            record[arm] = {**scores(fit.classifier, test, labels, batch), "dev_macro_f1": fit.best_dev_macro_f1}
            record[arm] = {k: round(float(v), 4) for k, v in record[arm].items()}
        best = max(label_model_test["macro_f1"], record["gold_only"]["macro_f1"]) if "gold_only" in record else None
        if best is not None and "end_model" in record:
            record["end_model_points_over_best_baseline"] = round(100 * (record["end_model"]["macro_f1"] - best), 2)
        record["seconds"] = round(time.perf_counter() - started, 1)
        per_seed.append(record)
        figures["summary"] = {
            arm: {m: band([r[arm][m] for r in per_seed], 4) for m in ("accuracy", "macro_f1")} for arm in arms
        }
        if per_seed and "end_model_points_over_best_baseline" in per_seed[0]:
            figures["summary"]["end_model_points_over_best_baseline"] = band(
                [r["end_model_points_over_best_baseline"] for r in per_seed], 4
            )
        report["datasets"][name]["keep"] = figures
        _save(out, report)  # after every seed: a long run leaves usable figures behind
        print(name, "seed", seed, record, flush=True)
    return figures


def supervised_fit(ds: dict[str, Any], cfg: Any, seed: int, pool_gold: pd.DataFrame) -> dict[str, float]:
    """The fully supervised upper bound: same model, train and balance config, gold labels for the same pool rows."""
    from driftloop.tasks.balance import as_clean_labels, balance
    from driftloop.tasks.train import train

    parts, labels = ds["parts"], ds["labels"]
    gold = balance(as_clean_labels(pool_gold, labels), cfg.balance, labels, seed=seed)
    fit = train(gold.frame, parts["gold_dev"], labels, cfg.train, seed=seed, class_weights=gold.class_weights)
    probs = fit.classifier.predict_proba(parts["gold_test"]["text"].tolist(), batch_size=cfg.train.eval_batch_size)
    return _scores(_codes(parts["gold_test"], labels), probs, len(labels), 0)


def _train_summary(runs: dict[str, list[dict[str, float]]], label_model_test: dict[str, float]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        name: {metric: band([r[metric] for r in rs], 4) for metric in ("accuracy", "macro_f1")}
        for name, rs in runs.items()
        if rs
    }
    for name in ("end_model", "self_trained"):
        gains = [100 * (r["macro_f1"] - label_model_test["macro_f1"]) for r in runs[name]]
        summary[name]["macro_f1_points_over_label_model"] = band(gains, 4)
    if runs["supervised"]:
        ratios = [e["accuracy"] / s["accuracy"] for e, s in zip(runs["self_trained"], runs["supervised"], strict=False)]
        summary["self_trained"]["accuracy_share_of_supervised"] = band(ratios, 4)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="BBC sample of 900 rows, 1 seed.")
    parser.add_argument("--train", action="store_true", help="Also train end models (slow on CPU).")
    parser.add_argument("--seeds", type=int, default=3, help="N seeds: project.seed .. project.seed + N - 1.")
    parser.add_argument("--datasets", nargs="+", default=["sms_spam", "bbc_news"], help="Which datasets to run.")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="Config override for every dataset, e.g. --set train.epochs=2 (recorded in the JSON).",
    )
    parser.add_argument("--no-review", action="store_true", help="Skip the review simulation.")
    parser.add_argument(
        "--review-train",
        metavar="METHOD",
        help="Review simulation with retraining, end model trained with this train.method (e.g. feature, lora).",
    )
    parser.add_argument(
        "--supervised-only",
        action="store_true",
        help="Only the fully supervised upper bound (SMS: the pool's gold labels from the corpus).",
    )
    parser.add_argument(
        "--augment-ablation",
        nargs="*",
        type=float,
        metavar="RATIO",
        help=(
            "End models with and without the config's augmentation, paired by seed (round 0, no self-training); "
            "one augmented arm per augment.max_synthetic_ratio RATIO (none given: the config's)."
        ),
    )
    parser.add_argument(
        "--keep",
        nargs="*",
        choices=["end_model", "gold_only", "weak_only"],
        metavar="ARM",
        help=(
            "Does the end model earn its keep: the pipeline's end model and the gold-only baseline (default arms), "
            "plus weak_only (weak rows alone, the previous default), per seed, beside the label model."
        ),
    )
    parser.add_argument("--out", type=Path, help=f"Result file; default bench/results/{STEM}.json (.quick.json).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("driftloop").setLevel(logging.INFO)  # training progress: step, loss, dev macro-F1
    seeds = 1 if args.quick else args.seeds
    out = args.out or result_path(STEM, quick=args.quick)
    # Other datasets' figures in an existing file are kept: each dataset records the command that made it.
    previous = read_results(out)
    report: dict[str, Any] = {
        "quick": args.quick,
        "datasets": {k: v for k, v in previous.get("datasets", {}).items() if k not in args.datasets},
    }
    command = command_line()
    for name, ds in _datasets(args.quick).items():
        if name not in args.datasets:
            continue
        started = time.perf_counter()
        cfg = load_config(REPO / ds["config"], args.overrides)
        figures, result = weak_figures(name, ds, seed=cfg.project.seed)
        figures["run"] = {
            "command": command,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "overrides": args.overrides,
            "machine": machine_info(),
        }
        report["datasets"][name] = figures
        if not args.no_review:
            figures["review"] = review_simulation(ds, result, seeds=3, base_seed=cfg.project.seed)
        _save(out, report)
        print(name, {k: figures[k] for k in ("aggregator", "calibration", "test")}, figures.get("review"), flush=True)
        if args.review_train:
            figures["review_with_retraining"] = review_training_simulation(name, ds, cfg, 3, args.review_train)
            _save(out, report)
        if args.supervised_only:
            gold = _pool_gold(name, ds)  # the SMS pool's labels come back from the corpus
            scores = [supervised_fit(ds, cfg, seed, gold) for seed in seed_numbers(cfg.project.seed, seeds)]
            figures["supervised_upper_bound"] = {
                "seeds": seeds,
                "pool_rows_with_gold": len(gold),
                "per_seed": scores,
                **{m: band([r[m] for r in scores], 4) for m in ("accuracy", "macro_f1")},
            }
            _save(out, report)
        if args.augment_ablation is not None:
            ratios = args.augment_ablation or [cfg.augment.max_synthetic_ratio]
            augmentation_ablation(name, ds, result, seeds, cfg, ratios, out, report)
        if args.keep is not None:
            arms = args.keep or ["end_model", "gold_only"]
            keep_figures(name, ds, result, seeds, cfg, figures["test"]["chosen"], arms, out, report)
        if args.train:
            train_figures(name, ds, result, seeds, cfg, figures["test"]["chosen"], out, report)
        figures["run"]["seconds"] = round(time.perf_counter() - started, 1)
        _save(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
