"""Seed sweeps (tasks/seed_sweep.py): one numbering, the kept fit, released checkpoints, the gold test band."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from driftloop.config import TrainConfig
from driftloop.tasks.seed_sweep import SeedSweep, choose_fit, fit_seeds, gold_test_band, seed_numbers
from tests.tiny_models import sms_like_frame, tiny_bert_dir

LABELS = ["ham", "spam"]


def test_seeds_are_numbered_from_the_base_seed() -> None:
    assert seed_numbers(42, 3) == [42, 43, 44]
    assert seed_numbers(42, 1) == [42]
    assert seed_numbers(0, 2) == [0, 1]
    with pytest.raises(ValueError, match="at least one seed"):
        seed_numbers(42, 0)


def _fit(seed: int, dev: float, checkpoint_dir: Path | None = None) -> SimpleNamespace:
    return SimpleNamespace(seed=seed, best_dev_macro_f1=dev, checkpoint_dir=checkpoint_dir)


def test_choose_fit_keeps_the_best_dev_score_and_the_first_of_equal_ones() -> None:
    a, b, c = _fit(42, 0.80), _fit(43, 0.90), _fit(44, 0.90)
    assert choose_fit([a, b, c]) is b
    assert choose_fit([c, b, a]) is c
    assert choose_fit([a]) is a
    with pytest.raises(ValueError):
        choose_fit([])


def _fake_train(dev_by_seed: dict[int, float], root: Path, calls: list[dict]):
    """A train_fn that records its arguments and leaves a checkpoint folder per seed, as training does."""

    def train_fn(train_df, dev_df, labels, cfg, *, seed, class_weights=None, checkpoint_dir=None):
        calls.append({"seed": seed, "rows": len(train_df), "class_weights": class_weights, "dir": checkpoint_dir})
        run_dir = root / f"seed-{seed}"
        run_dir.mkdir(parents=True)
        return _fit(seed, dev_by_seed[seed], run_dir)

    return train_fn


def test_fit_seeds_trains_once_per_seed_keeps_the_best_and_releases_the_others(tmp_path, caplog) -> None:
    calls: list[dict] = []
    train_fn = _fake_train({42: 0.7, 43: 0.9, 44: 0.9}, tmp_path, calls)
    frame = sms_like_frame(8)
    with caplog.at_level(logging.INFO, logger="driftloop.tasks.seed_sweep"):
        sweep = fit_seeds(
            frame,
            frame,
            LABELS,
            TrainConfig.of(),
            seeds=seed_numbers(42, 3),
            class_weights={"ham": 1.0, "spam": 2.0},
            checkpoint_dir=tmp_path / "ckpt",
            train_fn=train_fn,
        )
    assert isinstance(sweep, SeedSweep)
    assert [c["seed"] for c in calls] == [42, 43, 44] == sweep.seeds
    assert all(c["class_weights"] == {"ham": 1.0, "spam": 2.0} and c["dir"] == tmp_path / "ckpt" for c in calls)
    assert sweep.kept is sweep.fits[1] and sweep.kept.seed == 43  # 43 and 44 tie: the first is kept
    assert sweep.dev_macro_f1 == (0.7, 0.9, 0.9)
    assert [f.checkpoint_dir.exists() for f in sweep.fits] == [False, True, False]  # only the kept fit resumes
    assert "fine-tuning seed 42 (1 of 3)" in caplog.text
    assert "kept seed 43: dev macro-F1 0.7000, 0.9000, 0.9000" in caplog.text
    with pytest.raises(dataclasses.FrozenInstanceError):
        sweep.kept = sweep.fits[0]  # type: ignore[misc]


def test_one_seed_logs_no_sweep(tmp_path, caplog) -> None:
    calls: list[dict] = []
    frame = sms_like_frame(8)
    train_fn = _fake_train({42: 0.5}, tmp_path, calls)
    with caplog.at_level(logging.INFO, logger="driftloop.tasks.seed_sweep"):
        sweep = fit_seeds(frame, frame, LABELS, TrainConfig.of(), seeds=[42], train_fn=train_fn)
    assert sweep.seeds == [42] and sweep.kept.checkpoint_dir.exists()
    assert "fine-tuning seed" not in caplog.text and "kept seed" not in caplog.text
    with pytest.raises(ValueError, match="at least one seed"):
        fit_seeds(frame, frame, LABELS, TrainConfig.of(), seeds=[], train_fn=train_fn)


class _Fixed:
    """A classifier that predicts the given class for every row."""

    def __init__(self, cls: int):
        self.cls = cls

    def predict_proba(self, texts, batch_size=128):
        probs = np.zeros((len(texts), len(LABELS)))
        probs[:, self.cls] = 1.0
        return probs


def test_gold_test_band_scores_every_fit_and_marks_the_kept_one() -> None:
    test = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["ham", "ham", "ham", "spam"]})
    fits = [
        SimpleNamespace(seed=42, best_dev_macro_f1=0.61234567, classifier=_Fixed(0)),
        SimpleNamespace(seed=43, best_dev_macro_f1=0.7, classifier=_Fixed(1)),
    ]
    band = gold_test_band(fits, fits[1], test, LABELS, batch_size=2, label_model_macro_f1=0.25)
    assert band["seeds"] == [
        {"seed": 42, "dev_macro_f1": 0.612346, "test_macro_f1": round(3 / 7, 6), "test_accuracy": 0.75, "kept": False},
        {"seed": 43, "dev_macro_f1": 0.7, "test_macro_f1": 0.2, "test_accuracy": 0.25, "kept": True},
    ]
    assert band["test_accuracy"] == {"mean": 0.5, "std": 0.25, "n": 2}
    assert band["test_macro_f1"]["n"] == 2 and band["label_model_macro_f1"] == 0.25
    assert band["points_over_label_model"]["n"] == 2
    assert "points_over_label_model" not in gold_test_band(fits, fits[0], test, LABELS, batch_size=2)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_real_tiny_sweep_keeps_the_best_fit_and_releases_the_other_checkpoints(tmp_path) -> None:
    base = tiny_bert_dir(tmp_path / "bert")
    cfg = TrainConfig.of(
        model=str(base),
        method="lora",
        batch_size=16,
        eval_batch_size=32,
        learning_rate=2e-2,
        lora_dropout=0.0,
        evals_per_epoch=1,
        min_steps=0,
        early_stopping_patience=None,
        log_steps=1000,
        precision="fp32",
        max_steps=2,
    )
    train_df, dev_df = sms_like_frame(32, seed=0), sms_like_frame(16, seed=1)
    sweep = fit_seeds(train_df, dev_df, LABELS, cfg, seeds=seed_numbers(7, 2), checkpoint_dir=tmp_path / "ckpt")
    assert sweep.seeds == [7, 8]
    assert sweep.kept is choose_fit(sweep.fits)
    assert sweep.kept.best_dev_macro_f1 == max(sweep.dev_macro_f1)
    for fit in sweep.fits:
        assert fit.checkpoint_dir is not None
        assert fit.checkpoint_dir.exists() == (fit is sweep.kept)
