"""A training process for the fault tests: ``python -m tests.fault_train MODEL CKPT_DIR OUT_JSON [HANG_AT_STEP]``.

Trains a tiny random model on a fixed tiny table with resume checkpoints and writes what a rerun must
reproduce. With HANG_AT_STEP it stops at that optimizer step (after writing ``OUT_JSON.hung``) and waits
to be SIGKILLed: the kill lands at a known step, the way a real crash lands anywhere.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from driftloop.config import TrainConfig
from driftloop.tasks.train import train
from tests.tiny_models import sms_like_frame

LABELS = ["ham", "spam"]
CONFIG = dict(
    method="lora",
    batch_size=16,
    eval_batch_size=32,
    learning_rate=2e-2,
    lora_dropout=0.1,  # dropout: the RNG state must resume too
    epochs=3,
    min_steps=0,
    eval_steps=2,  # a checkpoint every 2 optimizer steps
    early_stopping_patience=None,
    log_steps=1000,
    precision="fp32",
)


def main(model: str, checkpoint_dir: str, out: str, hang_at: int | None = None) -> None:
    torch.set_num_threads(1)
    train_df, dev_df = sms_like_frame(64, seed=0), sms_like_frame(24, seed=1)

    def on_step(state: dict) -> None:
        if hang_at is not None and state["global_step"] == hang_at:
            Path(out + ".hung").write_text(str(state["global_step"]))
            while True:
                time.sleep(1)

    result = train(
        train_df, dev_df, LABELS, TrainConfig.of(model=model, **CONFIG), seed=7, checkpoint_dir=Path(checkpoint_dir),
        on_step=on_step,
    )  # fmt: skip
    probs = result.classifier.predict_proba(dev_df["text"].tolist())
    Path(out).write_text(
        json.dumps(
            {
                "steps": result.steps,
                "resumed_from_step": result.resumed_from_step,
                "train_loss": [h["train_loss"] for h in result.history],
                "best_dev_macro_f1": result.best_dev_macro_f1,
                "dev_probs": probs.tolist(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None)
