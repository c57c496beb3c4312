"""Multi-process training for real: `accelerate launch` with 2 CPU processes (gloo) on a tiny random BERT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from driftloop.config import TrainConfig
from driftloop.tasks.train import load_classifier, macro_f1, save_model, train
from driftloop.tasks.train.distributed import launch_train
from tests.prefect_server import kill_group, wait_for
from tests.tiny_models import sms_like_frame, tiny_bert_dir

LABELS = ["ham", "spam"]
pytestmark = [pytest.mark.processes, pytest.mark.usefixtures("one_torch_thread")]


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
        min_steps=0,
    )
    return TrainConfig.of(**{**base, **overrides})


def _test_f1(clf, test_df) -> float:
    probs = clf.predict_proba(test_df["text"].tolist(), 64)
    codes = test_df["label"].map({name: i for i, name in enumerate(LABELS)}).to_numpy()
    return macro_f1(codes, probs.argmax(axis=1), len(LABELS))


REPO = Path(__file__).resolve().parents[1]


def _no_dropout_bert(folder: Path) -> str:
    # No dropout: the ranks draw their masks for half a batch each, so with dropout the runs would only agree
    # in distribution. Without it they follow the same trajectory, which checks the gradient arithmetic.
    base = tiny_bert_dir(folder)
    config = json.loads((base / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (base / "config.json").write_text(json.dumps(config))
    return str(base)


def _frames():
    return sms_like_frame(96, seed=0), sms_like_frame(32, seed=1), sms_like_frame(48, seed=2)


def test_two_processes_train_like_one_with_the_same_effective_batch(tmp_path):
    base = _no_dropout_bert(tmp_path / "bert")
    train_df, dev_df, test_df = _frames()
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


# The killed run: a process of its own that trains under FSDP with checkpoints, as the test's first run did.
_FSDP_RUN = """
import sys
from pathlib import Path
from tests.test_ddp import LABELS, _cfg, _frames
from driftloop.tasks.train.distributed import launch_train
train_df, dev_df, _ = _frames()
cfg = _cfg(sys.argv[1], batch_size=8, num_processes=2, distributed="fsdp", keep_checkpoints=True)
launch_train(train_df, dev_df, LABELS, cfg, seed=0, checkpoint_dir=Path(sys.argv[2]))
"""


def test_fsdp_shards_the_model_trains_like_one_process_and_resumes_after_sigkill(tmp_path):
    base = _no_dropout_bert(tmp_path / "bert")
    train_df, dev_df, test_df = _frames()
    cfg = _cfg(base, batch_size=8, num_processes=2, distributed="fsdp", keep_checkpoints=True)
    sharded = launch_train(train_df, dev_df, LABELS, cfg, seed=0, checkpoint_dir=tmp_path / "a")
    one = train(train_df, dev_df, LABELS, _cfg(base, batch_size=16), seed=0)

    # Sharded parameters, gradients and optimizer state give the same trajectory as one process with batch 16.
    assert sharded.steps == one.steps == 36 and sharded.resolved_config["train"]["distributed"] == "fsdp"
    losses = [h["train_loss"] for h in sharded.history]
    assert losses[-1] < losses[0] * 0.7, losses
    assert np.allclose(losses, [h["train_loss"] for h in one.history], rtol=1e-3, atol=1e-4)
    texts = test_df["text"].tolist()
    # Rank 0 gathered the shards into a whole model folder, which loads like any other.
    assert np.allclose(sharded.classifier.predict_proba(texts, 64), one.classifier.predict_proba(texts, 64), atol=1e-4)
    reloaded = load_classifier(save_model(sharded, tmp_path / "model"), device="cpu")
    assert np.allclose(reloaded.predict_proba(texts, 64), sharded.classifier.predict_proba(texts, 64), atol=1e-5)

    # A real SIGKILL of the whole process tree right after the first checkpoint (step 6, gathered from the shards),
    # then a rerun: every rank takes its shard of the checkpoint and the run ends where the uninterrupted one did.
    marker = tmp_path / "hung.txt"
    env = {**os.environ, "DRIFTLOOP_FAILPOINT": "after-train-checkpoint", "DRIFTLOOP_FAILPOINT_MARKER": str(marker)}
    killed = subprocess.Popen(
        [sys.executable, "-c", _FSDP_RUN, base, str(tmp_path / "b")], cwd=REPO, env=env, start_new_session=True
    )
    try:
        wait_for(marker.exists, 300, "rank 0 to write its first checkpoint", [killed], every=0.2)
        os.killpg(killed.pid, signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    finally:
        kill_group(killed, signal.SIGKILL)
    assert [p.name for p in (tmp_path / "b" / sharded.fingerprint).iterdir()] == ["step-0000006"]
    resumed = launch_train(train_df, dev_df, LABELS, cfg, seed=0, checkpoint_dir=tmp_path / "b")
    assert resumed.resumed_from_step == 6 and resumed.steps == 36
    assert np.allclose([h["train_loss"] for h in resumed.history], losses, rtol=1e-4, atol=1e-5)
    assert np.allclose(
        resumed.classifier.predict_proba(texts, 64), sharded.classifier.predict_proba(texts, 64), atol=1e-5
    )
