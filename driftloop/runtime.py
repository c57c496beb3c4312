"""Process defaults every driftloop entry point applies before Prefect, torch or transformers load."""

from __future__ import annotations

import logging
import os
import warnings

DEFAULT_ENV = {
    # Offline by design: fail at once instead of retrying a model hub, and send no analytics.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    # Idle OpenMP threads sleep instead of spinning (spinning made 2-thread training 3x slower on 2 busy cores).
    "OMP_WAIT_POLICY": "PASSIVE",
    # Progress from the steps' own loggers (training, augmentation) goes to the Prefect run log too.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "driftloop",
    # ... and outside a flow (predict, benches, tests) those lines stay local without a warning each.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


def apply_defaults() -> None:
    """Set each variable of :data:`DEFAULT_ENV` unless the user already has."""
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    # bitsandbytes warns on import that its optional CPU 4-bit kernels are absent; driftloop never
    # runs 4-bit on CPU (qlora falls back to lora there), so the warning is noise.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    # PEFT 0.21 reads transformers' deprecated `is_gradient_checkpointing` on every adapter it builds.
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def enable_progress_logging() -> None:
    """Let the steps' INFO progress lines through (Prefect attaches handlers, not levels, to extra loggers)."""
    logger = logging.getLogger("driftloop")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
