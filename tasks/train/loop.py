"""The gradient-descent loop: soft-label loss, dev evaluation, early stopping, exact resume.

Why a hand-written loop instead of ``transformers.Trainer``: short texts of very different
lengths train ~2x faster with dynamic padding + length-grouped batches (see
``bench/bench_train.py``), soft labels from the label model need a custom loss anyway, and the
loop stays small enough to make every checkpoint atomic and every resume exact.

To run it under a launcher (accelerate, DDP), subclass :class:`GradientLoop` and override the
hooks :meth:`~GradientLoop.backward`, :meth:`~GradientLoop.optimizer_step` and
:meth:`~GradientLoop.is_main_process`; the data order is a pure function of (seed, epoch).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from driftloop.errors import TrainingDivergedError
from driftloop.failpoints import failpoint
from driftloop.progress import duration
from driftloop.tasks.train.checkpoints import (
    complete_checkpoints,
    load_trainable_state,
    read_checkpoint,
    trainable_state,
    write_checkpoint,
)
from driftloop.tasks.train.classifier import autocast
from driftloop.tasks.train.data import epoch_batches, pad_batch, tokenize
from driftloop.tasks.train.fit import FitInputs, FitOutcome, macro_f1

log = logging.getLogger("driftloop.train")


class TrainingInterrupted(Exception):
    """Raised by an ``on_step`` callback to stop a run (tests use it to simulate a kill)."""


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean of -sum_c t_c log softmax(z)_c; equals weighted CE for one-hot targets."""
    per_row = -(targets * torch.log_softmax(logits.float(), dim=-1)).sum(dim=-1)
    return (per_row * weights).sum() / weights.sum().clamp(min=1e-12)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every GPU too)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextlib.contextmanager
def determinism(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels for the duration of the run; the caller's global setting comes back after."""
    before, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if enabled:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


@dataclass
class _Counters:
    """Running counters of one fit: training time and rows, the progress-log window, the loss since the last eval."""

    window_t: float
    samples: int = 0
    train_time: float = 0.0
    window_loss: float = 0.0
    window_n: int = 0
    window_samples: int = 0
    eval_loss_sum: float = 0.0
    eval_loss_n: int = 0

    def add_step(self, seconds: float, rows: int, loss: float) -> None:
        self.train_time += seconds
        self.samples += rows
        self.window_loss += loss
        self.window_n += 1
        self.window_samples += rows
        self.eval_loss_sum += loss
        self.eval_loss_n += 1


class GradientLoop:
    """One gradient-descent run: state that the checkpoint saves and the resume restores."""

    #: Whether snapshot_weights/optimizer_state gather from every rank (sharded training): then every rank takes
    #: part in a checkpoint, not only the one that writes it.
    gathers_state = False

    def __init__(
        self,
        inputs: FitInputs,
        run_dir: Path | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ):
        cfg, classifier = inputs.cfg, inputs.classifier
        self.clf, self.cfg, self.seed, self.fingerprint = classifier, cfg, inputs.seed, inputs.fingerprint
        self.run_dir, self.on_step = run_dir, on_step
        self.model, self.device = classifier.model, classifier.device
        self.ids = tokenize(classifier.tokenizer, inputs.train_df["text"].astype(str).tolist(), cfg.max_length)
        self.lengths = np.array([len(x) for x in self.ids])
        self.targets = torch.from_numpy(inputs.targets)
        self.weights = torch.from_numpy(inputs.weights)
        self.dev_texts = inputs.dev_df["text"].astype(str).tolist()
        self.dev_codes = inputs.dev_codes
        self.k = inputs.targets.shape[1]
        self.batches_per_epoch = math.ceil(len(self.ids) / cfg.batch_size)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / cfg.gradient_accumulation_steps)
        self.eval_interval = max(1, math.ceil(self.steps_per_epoch / cfg.evals_per_epoch))
        self.total_steps = max(cfg.epochs * self.steps_per_epoch, cfg.min_steps)
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.optimizer = self._optimizer()
        from transformers import get_linear_schedule_with_warmup

        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(cfg.warmup_ratio * self.total_steps), self.total_steps
        )
        self.state: dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "global_step": 0,
            "epoch": 0,
            "batch_in_epoch": 0,
            "best_metric": -1.0,
            "best_step": 0,
            "bad_evals": 0,
            "done": False,
            "history": [],
        }
        self.best_state: dict[str, torch.Tensor] | None = None

    # -- hooks a launcher may override ------------------------------------------------------------
    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate gradients of ``loss`` (already scaled for gradient accumulation)."""
        loss.backward()

    def optimizer_step(self) -> None:
        """Clip, step optimizer and scheduler, clear gradients."""
        if self.cfg.max_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], self.cfg.max_grad_norm
            )
            if hasattr(norm, "full_tensor"):  # FSDP: the norm is a DTensor over the shards
                norm = norm.full_tensor()
            if not torch.isfinite(norm):
                self._diverged(f"gradient norm is {norm.item()}")
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def is_main_process(self) -> bool:
        """Whether this process writes checkpoints (one process per run here)."""
        return True

    def snapshot_weights(self) -> dict[str, torch.Tensor]:
        """Whole CPU copies of the trainable parameters (the best state, a checkpoint's weights)."""
        return trainable_state(self.model)

    def restore_weights(self, state: Mapping[str, torch.Tensor]) -> None:
        """Put a :meth:`snapshot_weights` back into the model."""
        load_trainable_state(self.model, state)

    def optimizer_state(self) -> dict[str, Any]:
        """The optimizer state a checkpoint stores (only the main process's copy is written)."""
        return self.optimizer.state_dict()

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    # -- the loop -----------------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError(f"train.method {self.clf.method!r} left no trainable parameters")
        # No decay on biases and norm weights (1-D), the usual AdamW recipe.
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": self.cfg.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        kwargs = {"fused": True} if self.device.type == "cuda" else {}
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=self.cfg.resolved_learning_rate, **kwargs)

    def _resume(self) -> int | None:
        if self.run_dir is None:
            return None
        checkpoints = complete_checkpoints(self.run_dir)
        if not checkpoints:
            return None
        ckpt = read_checkpoint(checkpoints[-1], self.device)
        state = ckpt.loop_state
        if state.get("fingerprint") != self.fingerprint:
            raise RuntimeError(f"checkpoint {checkpoints[-1]} belongs to another run; delete {self.run_dir}")
        self.restore_weights(ckpt.weights)
        self.load_optimizer_state(ckpt.optimizer_state)
        self.scheduler.load_state_dict(ckpt.scheduler_state)
        self.state, self.best_state = state, ckpt.best_state
        log.info(
            "resumed from %s (step %d, best dev macro-F1 %.4f)",
            checkpoints[-1].name,
            state["global_step"],
            state["best_metric"],
        )
        return int(state["global_step"])

    def evaluate_dev(self) -> float:
        probs = self.clf.predict_proba(self.dev_texts, self.cfg.eval_batch_size)
        return macro_f1(self.dev_codes, probs.argmax(axis=1), self.k)

    def _after_eval(self, metric: float, train_loss: float) -> None:
        s = self.state
        s["history"].append(
            {
                "step": s["global_step"],
                "epoch": round(s["global_step"] / self.steps_per_epoch, 3),
                "train_loss": round(train_loss, 6),
                "dev_macro_f1": round(metric, 6),
            }
        )
        if metric > s["best_metric"]:
            s["best_metric"], s["best_step"], s["bad_evals"] = metric, s["global_step"], 0
            self.best_state = self.snapshot_weights()
        else:
            s["bad_evals"] += 1
        log.info("eval step %d: dev macro-F1 %.4f (best %.4f)", s["global_step"], metric, s["best_metric"])
        patience = self.cfg.early_stopping_patience
        if patience is not None and s["bad_evals"] >= patience and s["global_step"] >= self.cfg.min_steps:
            log.info(
                "early stop at step %d: dev macro-F1 has not improved for %d evaluations (best %.4f at step %d)",
                s["global_step"],
                patience,
                s["best_metric"],
                s["best_step"],
            )
            s["done"] = True

    def _checkpoint(self) -> None:
        if self.run_dir is None or not (self.is_main_process() or self.gathers_state):
            return
        weights, optimizer_state = self.snapshot_weights(), self.optimizer_state()  # a gather needs every rank
        if self.is_main_process():
            write_checkpoint(
                self.run_dir,
                self.state["global_step"],
                weights,
                self.best_state,
                optimizer_state,
                self.scheduler.state_dict(),
                self.state,
            )
            failpoint("after-train-checkpoint")

    def run(self) -> FitOutcome:
        resumed_from = self._resume()  # replaces self.state: bind `s` after it
        cfg, s = self.cfg, self.state
        counters = _Counters(window_t=time.perf_counter())
        self.model.train()
        log.info(
            "training %s (%s): %d rows, %d steps (%d per epoch), batch %d x %d accumulation",
            self.cfg.model,
            self.clf.method,
            len(self.ids),
            self.total_steps,
            self.steps_per_epoch,
            cfg.batch_size,
            cfg.gradient_accumulation_steps,
        )
        while not s["done"] and s["global_step"] < self.total_steps:
            batches = epoch_batches(self.lengths, cfg.batch_size, self.seed, s["epoch"], cfg.group_by_length)
            # Optimizer-step groups of micro-batches; the last group of an epoch may be short.
            while s["batch_in_epoch"] < len(batches) and not s["done"] and s["global_step"] < self.total_steps:
                end_of_epoch = self._train_step(batches, counters, resumed_from)
                if self.on_step is not None:
                    self.on_step(dict(s))
                if end_of_epoch:
                    break
        return self._finish(counters, resumed_from)

    def _train_step(self, batches: list[np.ndarray], counters: _Counters, resumed_from: int | None) -> bool:
        """One optimizer step over the next group of micro-batches, with its progress log, eval and checkpoint.

        Returns whether it ended the epoch.
        """
        s, accum = self.state, self.cfg.gradient_accumulation_steps
        group = batches[s["batch_in_epoch"] : s["batch_in_epoch"] + accum]
        t0 = time.perf_counter()
        n_rows = sum(len(b) for b in group)
        step_loss = 0.0
        for batch in group:
            loss = self._micro_step(batch, scale=len(batch) / n_rows)
            step_loss += loss * len(batch) / n_rows
        self.optimizer_step()
        s["global_step"] += 1
        s["batch_in_epoch"] += len(group)
        counters.add_step(time.perf_counter() - t0, n_rows, step_loss)
        self._log_progress(counters, resumed_from)
        end_of_epoch = s["batch_in_epoch"] >= len(batches)
        due = self._eval_due(end_of_epoch)
        if end_of_epoch:
            s["epoch"] += 1
            s["batch_in_epoch"] = 0
        if due or s["global_step"] >= self.total_steps:
            self._eval_and_checkpoint(counters)
        return end_of_epoch

    def _log_progress(self, counters: _Counters, resumed_from: int | None) -> None:
        """Every log_steps steps, and at least every 10 s so a slow fit still shows it is alive."""
        s = self.state
        now = time.perf_counter()
        if s["global_step"] % self.cfg.log_steps == 0 or now - counters.window_t >= 10.0:
            steps_done = s["global_step"] - (resumed_from or 0)
            left = (self.total_steps - s["global_step"]) * counters.train_time / max(steps_done, 1)
            log.info(
                "step %d/%d epoch %.2f loss %.4f lr %.2e samples/s %.1f, ~%s left in this fit",
                s["global_step"],
                self.total_steps,
                s["global_step"] / self.steps_per_epoch,
                counters.window_loss / counters.window_n,
                self.scheduler.get_last_lr()[0],
                counters.window_samples / max(now - counters.window_t, 1e-9),
                duration(left),
            )
            counters.window_loss, counters.window_n, counters.window_samples, counters.window_t = 0.0, 0, 0, now

    def _eval_due(self, end_of_epoch: bool) -> bool:
        """Whether the step just taken is an eval step (``eval_steps``, else ``evals_per_epoch`` and epoch ends)."""
        s = self.state
        if self.cfg.eval_steps:
            return s["global_step"] % self.cfg.eval_steps == 0
        step_in_epoch = math.ceil(s["batch_in_epoch"] / self.cfg.gradient_accumulation_steps)
        return end_of_epoch or step_in_epoch % self.eval_interval == 0

    def _eval_and_checkpoint(self, counters: _Counters) -> None:
        """Score dev, keep the best weights and checkpoint; the eval's time stays out of samples/s."""
        t_eval = time.perf_counter()
        self._after_eval(self.evaluate_dev(), counters.eval_loss_sum / max(counters.eval_loss_n, 1))
        counters.eval_loss_sum, counters.eval_loss_n = 0.0, 0
        self.model.train()
        self._checkpoint()
        counters.window_t += time.perf_counter() - t_eval  # samples/s counts training time only

    def _finish(self, counters: _Counters, resumed_from: int | None) -> FitOutcome:
        """Put the best weights back (or score the only ones) and report the fit."""
        s = self.state
        if self.best_state is None:  # resumed from a finished run, or no evaluation happened
            self._after_eval(self.evaluate_dev(), float("nan"))
        else:
            self.restore_weights(self.best_state)
        self.model.eval()
        return FitOutcome(
            epochs=s["global_step"] / self.steps_per_epoch,
            steps=s["global_step"],
            samples_per_s=counters.samples / counters.train_time if counters.train_time > 0 else 0.0,
            best_metric=s["best_metric"],
            best_step=s["best_step"],
            train_seconds=counters.train_time,
            history=s["history"],
            resumed_from_step=resumed_from,
        )

    def _micro_step(self, batch: np.ndarray, scale: float) -> float:
        inputs = pad_batch([self.ids[i] for i in batch], self.clf.tokenizer.pad_token_id, self.device)
        target = self.targets[batch].to(self.device)
        weight = self.weights[batch].to(self.device)
        with autocast(self.device, self.clf.autocast_dtype):
            logits = self.model(**inputs).logits
        loss = soft_cross_entropy(logits, target, weight)
        if not torch.isfinite(loss):
            self._diverged(f"loss is {loss.item()}")
        self.backward(loss * scale)
        return float(loss.detach())

    def _diverged(self, what: str) -> None:
        s = self.state
        raise TrainingDivergedError(
            f"{what} at optimizer step {s['global_step'] + 1} (epoch {s['epoch'] + 1}): training diverged, nothing was "
            f"saved or registered. Lower train.learning_rate (now {self.cfg.resolved_learning_rate:g}), keep "
            "train.max_grad_norm set, or use train.precision=fp32."
        )
