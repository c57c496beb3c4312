"""Multi-process training for real: `accelerate launch` with 2 CPU processes (gloo) on a tiny random BERT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftloop.config import TrainConfig
from driftloop.tasks.train import load_classifier, macro_f1, save_model, train
from driftloop.tasks.train.distributed import launch_train
from tests.tiny_models import sms_like_frame, tiny_bert_dir

LABELS = ["ham", "spam"]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]


def _cfg(model: str, **overrides) -> TrainConfig:
    base = dict(
        model=model,
        method="lora",
        epochs=6,
        batch_size=16,
        eval_batch_size=64,
        learning_rate=1e-2,
        lora_dropout=0.0,
        evals_per_epoch=1,
        early_stopping_patience=None,
        log_steps=1000,
        precision="fp32",
        device="cpu",
        label_mode="hard",
    )
    return TrainConfig(**{**base, **overrides})


def _test_f1(clf, test_df) -> float:
    probs = clf.predict_proba(test_df["text"].tolist(), 64)
    codes = test_df["label"].map({name: i for i, name in enumerate(LABELS)}).to_numpy()
    return macro_f1(codes, probs.argmax(axis=1), len(LABELS))


def test_two_processes_train_like_one_with_the_same_effective_batch(tmp_path):
    base = tiny_bert_dir(tmp_path / "bert")
    # No dropout: the ranks draw their masks for half a batch each, so with dropout the runs would only agree
    # in distribution. Without it they follow the same trajectory, which checks the gradient arithmetic.
    config = json.loads((base / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (base / "config.json").write_text(json.dumps(config))
    base = str(base)
    train_df, dev_df, test_df = sms_like_frame(96, seed=0), sms_like_frame(32, seed=1), sms_like_frame(48, seed=2)
    ckpt = tmp_path / "ckpt"

    two = launch_train(train_df, dev_df, LABELS, _cfg(base, batch_size=8, num_processes=2, keep_checkpoints=True),
                       seed=0, checkpoint_dir=ckpt)  # fmt: skip
    one = train(train_df, dev_df, LABELS, _cfg(base, batch_size=16), seed=0)

    # It trained: 96 rows / (8 x 2) = 6 steps an epoch x 6, the loss fell, and every rank counted the same steps.
    assert two.steps == one.steps == 36 and two.resolved_config["device"] == "cpu"
    losses = [h["train_loss"] for h in two.history]
    assert losses[-1] < losses[0] * 0.7, losses
    # The same trajectory as one process with batch 16: the DDP gradient is that batch's gradient.
    assert np.allclose(losses, [h["train_loss"] for h in one.history], rtol=1e-3, atol=1e-4)
    assert abs(two.best_dev_macro_f1 - one.best_dev_macro_f1) <= 0.005
    assert abs(_test_f1(two.classifier, test_df) - _test_f1(one.classifier, test_df)) <= 0.005

    # The model came back from rank 0's folder; saved again (the registry's way), it reloads with equal predictions.
    saved = save_model(two, tmp_path / "model")
    reloaded = load_classifier(saved, device="cpu")
    texts = test_df["text"].tolist()
    assert np.allclose(reloaded.predict_proba(texts, 64), two.classifier.predict_proba(texts, 64), atol=1e-5)

    # Rank 0 wrote the checkpoints; a rerun on the same data resumes from them, as one process does.
    assert [p.name for p in (ckpt / two.fingerprint).iterdir()] == ["step-0000036"]
    again = launch_train(train_df, dev_df, LABELS, _cfg(base, batch_size=8, num_processes=2, keep_checkpoints=True),
                         seed=0, checkpoint_dir=ckpt)  # fmt: skip
    assert again.resumed_from_step == 36 and again.best_dev_macro_f1 == two.best_dev_macro_f1
