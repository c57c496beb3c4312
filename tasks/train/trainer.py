"""The training entry point: tables + config in, a :class:`TrainResult` with the classifier in memory out."""

from __future__ import annotations

import resource
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch
from torch import nn

from driftloop.config import TrainConfig
from driftloop.errors import TrainInputError
from driftloop.hardware import autocast_dtype, choose_device
from driftloop.redact import redact
from driftloop.resources import hub_name, resolve_model
from driftloop.tasks.train.checkpoints import exclusive
from driftloop.tasks.train.classifier import TextClassifier
from driftloop.tasks.train.data import build_targets, data_fingerprint, label_indices, require_columns
from driftloop.tasks.train.feature import FeatureHeadFit
from driftloop.tasks.train.fit import Fit, FitInputs, FitOutcome
from driftloop.tasks.train.loop import GradientLoop, determinism, seed_everything
from driftloop.tasks.train.model import TrainMethod, build_model, count_params, method_spec, resolve_method


@dataclass
class TrainResult:
    """Outcome of :func:`train`: the classifier in memory plus what the run summary reports."""

    classifier: TextClassifier
    model: str
    method: str
    requested_method: str
    trainable_params: int
    total_params: int
    epochs: float
    steps: int
    train_samples_per_s: float
    peak_rss_mb: float
    best_dev_macro_f1: float
    best_step: int
    train_seconds: float
    fingerprint: str
    seed: int
    resolved_config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_step: int | None = None
    fallback_reason: str | None = None
    peak_gpu_mem_mb: float | None = None
    # Resume state, kept until the model is safely saved: release_checkpoints() removes it.
    checkpoint_dir: Path | None = None

    def summary(self) -> dict[str, Any]:
        """The ``training.*`` keys of the run summary."""
        return {
            "model": self.model,
            "method": self.method,
            "requested_method": self.requested_method,
            "fallback_reason": self.fallback_reason,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "epochs": round(self.epochs, 3),
            "steps": self.steps,
            "train_samples_per_s": round(self.train_samples_per_s, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "peak_gpu_mem_mb": None if self.peak_gpu_mem_mb is None else round(self.peak_gpu_mem_mb, 1),
            "best_dev_macro_f1": round(self.best_dev_macro_f1, 6),
            "best_step": self.best_step,
            "train_seconds": round(self.train_seconds, 2),
            "resumed_from_step": self.resumed_from_step,
            "device": self.resolved_config.get("device"),
            "precision": self.resolved_config.get("precision"),
            "fingerprint": self.fingerprint,
            "seed": self.seed,
        }


class RankContext(Protocol):
    """One rank of a multi-process run (see ``tasks/train/distributed.py``): its device, and the loop it trains with."""

    device: torch.device
    is_main_process: bool

    def make_loop(
        self, inputs: FitInputs, run_dir: Path | None, on_step: Callable[[dict[str, Any]], None] | None
    ) -> GradientLoop: ...


def library_versions() -> dict[str, str]:
    """torch, transformers and peft versions, recorded with every model."""
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux: the process peak so far (the bench runs each variant in its own process).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train(
    train_df: pd.DataFrame,
    dev_df: pd.DataFrame,
    labels: Sequence[str],
    cfg: TrainConfig,
    *,
    seed: int = 42,
    class_weights: Mapping[str, float] | None = None,
    checkpoint_dir: str | Path | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    rank: RankContext | None = None,
) -> TrainResult:
    """Fine-tune ``cfg.model`` on ``train_df``, early-stopping on dev macro-F1; return the best model.

    Args:
        train_df: ``text``, ``label`` and (soft mode) ``label_probs`` in ``labels`` order; optional ``is_synthetic``.
        dev_df: gold ``text`` + ``label`` for early stopping.
        labels: the label set in class-index order.
        cfg: the ``train`` config section.
        seed: seeds weights init, data order and dropout.
        class_weights: {label: weight} from balancing; used when ``cfg.use_class_weights``.
        checkpoint_dir: resume state lives in ``checkpoint_dir/<fingerprint>/``; a rerun with the same data,
            config and seed resumes from the last complete checkpoint. None: no checkpoints.
        on_step: called after each optimizer step with the loop state; raising stops the run.
        rank: set by the per-rank entry of a multi-process run: its device and gradient loop; rank 0 alone takes
            the checkpoint folder's lock (and writes the checkpoints). None: one process.

    Raises:
        TrainInputError: a table breaks the data contract.
        TrainingDivergedError: the loss became NaN or infinite.
    """
    labels = list(labels)
    _check_tables(train_df, dev_df)
    targets, weights = build_targets(train_df, labels, cfg, class_weights)
    dev_codes = label_indices(dev_df, labels, "dev")
    plan = _plan(train_df, dev_df, labels, cfg, seed, class_weights, rank)
    _prepare_cuda(plan.device)

    seed_everything(seed)
    with determinism(cfg.deterministic, plan.device):
        model, classifier = _build_classifier(cfg, labels, plan, rank)
        inputs = FitInputs(classifier, cfg, train_df, dev_df, targets, weights, dev_codes, seed, plan.fingerprint)
        outcome, run_dir = _fit(inputs, plan, checkpoint_dir, on_step, rank)
    return _result(cfg, seed, labels, class_weights, plan, _Fitted(model, classifier, outcome, run_dir))


@dataclass(frozen=True)
class _Plan:
    """What a run settles before building the model: device, method (after any fallback), fingerprint, base path."""

    device: torch.device
    method: str
    fallback_reason: str | None
    spec: TrainMethod
    fingerprint: str
    base_path: str


@dataclass(frozen=True)
class _Fitted:
    """The trained model, its classifier wrapper, the fit's outcome and the checkpoint folder it used (if any)."""

    model: nn.Module
    classifier: TextClassifier
    outcome: FitOutcome
    run_dir: Path | None


def _check_tables(train_df: pd.DataFrame, dev_df: pd.DataFrame) -> None:
    """Both tables hold ``text`` and ``label``; dev holds gold rows only (it drives early stopping)."""
    require_columns(train_df, ["text", "label"], "train")
    require_columns(dev_df, ["text", "label"], "dev")
    if "is_synthetic" in dev_df.columns and dev_df["is_synthetic"].fillna(False).astype(bool).any():
        raise TrainInputError(
            "dev table holds synthetic rows (is_synthetic=True); early stopping must use gold rows only"
        )


def _plan(
    train_df: pd.DataFrame,
    dev_df: pd.DataFrame,
    labels: list[str],
    cfg: TrainConfig,
    seed: int,
    class_weights: Mapping[str, float] | None,
    rank: RankContext | None,
) -> _Plan:
    """Resolve the device, the method (and any fallback from it), the data fingerprint and the base model path."""
    device = rank.device if rank is not None else torch.device(choose_device(cfg.device, "train.device"))
    method, fallback_reason = resolve_method(cfg, device)
    spec = method_spec(method)
    fingerprint = data_fingerprint(train_df, dev_df, labels, cfg, seed, class_weights)
    return _Plan(device, method, fallback_reason, spec, fingerprint, resolve_model(cfg.model))


def _prepare_cuda(device: torch.device) -> None:
    """TF32 matmuls on CUDA, and a fresh peak-memory counter for the run's report."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)


def _build_classifier(
    cfg: TrainConfig, labels: list[str], plan: _Plan, rank: RankContext | None
) -> tuple[nn.Module, TextClassifier]:
    """The model and its classifier wrapper, on the run's device and autocast precision."""
    # FSDP loads the base in CPU memory: sharding then moves each rank's shards, block by block, to its device.
    sharded = rank is not None and cfg.distributed == "fsdp"
    device = plan.device
    model, tokenizer = build_model(cfg, labels, plan.method, torch.device("cpu") if sharded else device, plan.base_path)
    classifier = TextClassifier(
        model,
        tokenizer,
        labels,
        method=plan.method,
        max_length=cfg.max_length,
        device=device,
        autocast_dtype=autocast_dtype(cfg.precision, device),
    )
    return model, classifier


def _fit(
    inputs: FitInputs,
    plan: _Plan,
    checkpoint_dir: str | Path | None,
    on_step: Callable[[dict[str, Any]], None] | None,
    rank: RankContext | None,
) -> tuple[FitOutcome, Path | None]:
    """Run the fit under the checkpoint folder's lock; the outcome and that folder (None: no checkpoints)."""
    # The feature head is fitted in one go: no gradient loop, so no checkpoints to resume from.
    run_dir = (
        Path(checkpoint_dir) / plan.fingerprint if checkpoint_dir is not None and plan.spec.kind != "feature" else None
    )
    with exclusive(run_dir if rank is None or rank.is_main_process else None):
        fit: Fit
        if plan.spec.kind == "feature":
            fit = FeatureHeadFit(inputs)
        elif rank is not None:
            fit = rank.make_loop(inputs, run_dir, on_step)
        else:
            fit = GradientLoop(inputs, run_dir, on_step)
        return fit.run(), run_dir


def _result(
    cfg: TrainConfig,
    seed: int,
    labels: list[str],
    class_weights: Mapping[str, float] | None,
    plan: _Plan,
    fitted: _Fitted,
) -> TrainResult:
    """The run's :class:`TrainResult`, with the resolved config the model is saved with."""
    trainable, total = count_params(fitted.model)
    outcome, device = fitted.outcome, plan.device
    resolved = {
        "train": redact(cfg.model_dump(mode="json")),
        "seed": seed,
        "learning_rate": cfg.resolved_learning_rate,
        "labels": labels,
        "method": plan.method,
        "requested_method": cfg.method,
        "base_model": cfg.model,
        "base_model_path": plan.base_path,
        "base_model_hub_name": hub_name(cfg.model),
        "device": device.type,
        "precision": "bf16" if fitted.classifier.autocast_dtype is not None else "fp32",
        "class_weights": dict(class_weights) if class_weights and cfg.use_class_weights else None,
        "fingerprint": plan.fingerprint,
        "versions": library_versions(),
    }
    return TrainResult(
        classifier=fitted.classifier,
        model=cfg.model,
        method=plan.method,
        requested_method=cfg.method,
        trainable_params=trainable,
        total_params=total,
        epochs=outcome.epochs,
        steps=outcome.steps,
        train_samples_per_s=outcome.samples_per_s,
        peak_rss_mb=_peak_rss_mb(),
        best_dev_macro_f1=outcome.best_metric,
        best_step=outcome.best_step,
        train_seconds=outcome.train_seconds,
        fingerprint=plan.fingerprint,
        seed=seed,
        resolved_config=resolved,
        history=outcome.history,
        resumed_from_step=outcome.resumed_from_step,
        checkpoint_dir=fitted.run_dir if fitted.run_dir is not None and not cfg.keep_checkpoints else None,
        fallback_reason=plan.fallback_reason,
        peak_gpu_mem_mb=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    )


def release_checkpoints(result: TrainResult) -> None:
    """Delete the run's resume state; call once the model is saved (train.keep_checkpoints=true keeps it)."""
    if result.checkpoint_dir is not None:
        shutil.rmtree(result.checkpoint_dir, ignore_errors=True)
