"""Fine-tune a text classifier with transformers + PEFT in a compact, resumable torch loop.

Entry points: :func:`train` (tables + config in, :class:`TrainResult` with an in-memory
:class:`TextClassifier` out), :func:`save_model` (the model folder, written atomically) and
:func:`load_classifier` (back from that folder).

One idea per module:

- ``model``: the method table (:data:`METHODS`, one entry per ``train.method``), model building, PEFT, 4-bit;
- ``classifier``: :class:`TextClassifier` (prediction) and the feature method's :class:`MeanPoolClassifier`;
- ``data``: contract checks, soft targets, tokenisation, padding, epoch batches, the run fingerprint;
- ``fit``: what a fitting procedure takes and returns; ``loop``: the gradient loop; ``feature``: the
  logistic-regression head of method ``feature``;
- ``checkpoints``: atomic resume checkpoints and the run lock;
- ``trainer``: :func:`train`; ``model_dir``: the model folder and its model card;
- ``distributed``: :func:`launch_train`, ``train`` on ``train.num_processes`` processes (``accelerate launch``).
"""

from driftloop.tasks.train.checkpoints import CKPT_PREFIX
from driftloop.tasks.train.classifier import MeanPoolClassifier, TextClassifier
from driftloop.tasks.train.data import build_targets, data_fingerprint, epoch_batches
from driftloop.tasks.train.distributed import launch_train
from driftloop.tasks.train.feature import FeatureHeadFit
from driftloop.tasks.train.fit import FitInputs, FitOutcome, macro_f1
from driftloop.tasks.train.loop import GradientLoop, TrainingInterrupted, seed_everything, soft_cross_entropy
from driftloop.tasks.train.model import (
    ADAPTER_METHODS,
    HEAD_NAMES,
    METHODS,
    TrainMethod,
    build_model,
    build_peft_config,
    build_qlora_quantization,
    count_params,
    method_spec,
    resolve_method,
)
from driftloop.tasks.train.model_dir import (
    FEATURE_HEAD_FILE,
    LABEL_MAP_FILE,
    METRICS_FILE,
    TRAINING_CONFIG_FILE,
    load_classifier,
    model_card,
    save_model,
)
from driftloop.tasks.train.trainer import TrainResult, release_checkpoints, train

__all__ = [
    "ADAPTER_METHODS",
    "CKPT_PREFIX",
    "FEATURE_HEAD_FILE",
    "HEAD_NAMES",
    "LABEL_MAP_FILE",
    "METHODS",
    "METRICS_FILE",
    "TRAINING_CONFIG_FILE",
    "FeatureHeadFit",
    "FitInputs",
    "FitOutcome",
    "GradientLoop",
    "MeanPoolClassifier",
    "TextClassifier",
    "TrainMethod",
    "TrainResult",
    "TrainingInterrupted",
    "build_model",
    "build_peft_config",
    "build_qlora_quantization",
    "build_targets",
    "count_params",
    "data_fingerprint",
    "epoch_batches",
    "launch_train",
    "load_classifier",
    "macro_f1",
    "method_spec",
    "model_card",
    "release_checkpoints",
    "resolve_method",
    "save_model",
    "seed_everything",
    "soft_cross_entropy",
    "train",
]
