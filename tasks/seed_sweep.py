"""Seed sweeps: one fit per seed, the fit kept, and every seed's fit on gold test.

One numbering everywhere: ``train.seeds: N`` (the pipeline) and ``--seeds N`` (``bench/bench_weak.py``) both run
seeds ``project.seed`` .. ``project.seed + N - 1`` (:func:`seed_numbers`; 42, 43, 44 with the shipped configs).
The fit with the best held-out gold dev macro-F1 is kept, the first of equal ones (:func:`choose_fit`); the other
fits stay in memory for the seed band, their resume checkpoints are released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.config import TrainConfig

TrainFn = Callable[..., Any]

_log = logging.getLogger(__name__)


def seed_numbers(base_seed: int, n: int) -> list[int]:
    """The seeds of an ``n``-seed sweep: ``base_seed``, ``base_seed + 1``, ..., ``base_seed + n - 1``."""
    if n < 1:
        raise ValueError(f"a seed sweep needs at least one seed, got {n}")
    return list(range(base_seed, base_seed + n))


@dataclass(frozen=True)
class SeedSweep:
    """Every seed's fit (``TrainResult``-like, in seed order) and the fit kept."""

    fits: tuple[Any, ...]
    kept: Any

    @property
    def seeds(self) -> list[int]:
        return [fit.seed for fit in self.fits]

    @property
    def dev_macro_f1(self) -> tuple[float, ...]:
        """Each seed's best held-out dev macro-F1, the score the kept fit was chosen by."""
        return tuple(float(fit.best_dev_macro_f1) for fit in self.fits)


def choose_fit(fits: Sequence[Any]) -> Any:
    """The fit with the best ``best_dev_macro_f1``; the first of equal ones."""
    if not fits:
        raise ValueError("no fit to choose from")
    return max(fits, key=lambda fit: fit.best_dev_macro_f1)  # max keeps the first of equal ones


def fit_seeds(
    train_df: pd.DataFrame,
    dev_df: pd.DataFrame,
    labels: Sequence[str],
    train_cfg: TrainConfig,
    *,
    seeds: Sequence[int],
    class_weights: Mapping[str, float] | None = None,
    checkpoint_dir: str | Path | None = None,
    train_fn: TrainFn | None = None,
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> SeedSweep:
    """Train once per seed on the same rows, keep the best on ``dev_df`` and release the others' checkpoints.

    Args:
        seeds: the seeds, in order (:func:`seed_numbers`).
        train_fn: ``train_fn(train_df, dev_df, labels, cfg, *, seed, class_weights, checkpoint_dir)``; default
            :func:`driftloop.tasks.train.launch_train`.
        log: where progress goes (a Prefect run logger in a flow); default this module's logger.
    """
    from driftloop.tasks.train import release_checkpoints

    if train_fn is None:
        from driftloop.tasks.train import launch_train as train_fn
    log = log or _log
    seeds = list(seeds)
    if not seeds:
        raise ValueError("a seed sweep needs at least one seed")
    fits = []
    for i, seed in enumerate(seeds, start=1):
        if len(seeds) > 1:
            log.info("fine-tuning seed %d (%d of %d)", seed, i, len(seeds))
        fits.append(
            train_fn(
                train_df,
                dev_df,
                labels,
                train_cfg,
                seed=seed,
                class_weights=class_weights,
                checkpoint_dir=checkpoint_dir,
            )
        )
    kept = choose_fit(fits)
    for fit in fits:
        if fit is not kept:
            release_checkpoints(fit)
    if len(fits) > 1:
        log.info("kept seed %d: dev macro-F1 %s", kept.seed, ", ".join(f"{f.best_dev_macro_f1:.4f}" for f in fits))
    return SeedSweep(fits=tuple(fits), kept=kept)


def gold_test_band(
    fits: Sequence[Any],
    kept: Any,
    test: pd.DataFrame,
    labels: Sequence[str],
    *,
    batch_size: int,
    label_model_macro_f1: float | None = None,
) -> dict[str, Any]:
    """Every seed's fit scored on gold test, their mean and std, and the points over the label model.

    Each seed's dev score is the one its training picked the kept checkpoint by (``best_dev_macro_f1``). Returns
    :func:`driftloop.tasks.evaluate.seed_band`'s dict: ``seeds`` holds one record per fit (``seed``,
    ``dev_macro_f1``, ``test_macro_f1``, ``test_accuracy``, ``kept``).
    """
    from driftloop.tasks.evaluate import seed_band
    from driftloop.tasks.self_train import scores

    per_seed = []
    for fit in fits:
        on_test = scores(fit.classifier, test, labels, batch_size)
        per_seed.append(
            {
                "seed": fit.seed,
                "dev_macro_f1": round(fit.best_dev_macro_f1, 6),
                "test_macro_f1": round(on_test["macro_f1"], 6),
                "test_accuracy": round(on_test["accuracy"], 6),
                "kept": fit is kept,
            }
        )
    return seed_band(per_seed, label_model_macro_f1)
