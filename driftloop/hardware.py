"""Device and precision choice, in one place for every step that runs a model (train, augment, embed).

torch is imported inside the functions: importing this module stays cheap for the CLI and config code.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.errors import DeviceUnavailableError

if TYPE_CHECKING:
    import torch


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (False when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def choose_device(choice: str, setting: str = "device") -> str:
    """``"cpu"`` or ``"cuda"`` for a config value ``auto|cpu|cuda``.

    Args:
        choice: the config value; ``auto`` takes the GPU when one is visible.
        setting: the config field it came from, named in the error (e.g. ``train.device``).

    Raises:
        DeviceUnavailableError: ``cuda`` was asked for and no GPU is visible.
    """
    if choice not in ("auto", "cpu", "cuda"):
        raise DeviceUnavailableError(f"{setting} is {choice!r}; use auto, cpu or cuda")
    if choice == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if choice == "cuda":
        raise DeviceUnavailableError(f"{setting} is 'cuda' but no CUDA GPU is available; set {setting}=auto or cpu")
    return "cpu"


def _device_type(device: Any) -> str:
    return getattr(device, "type", None) or str(device).split(":")[0]


@cache
def cpu_has_native_bf16() -> bool:
    """Whether the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX), read from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def native_bf16(device: Any) -> bool:
    """Whether ``device`` (``"cpu"``/``"cuda"`` or a torch.device) computes bfloat16 natively.

    Emulated bf16 (older GPUs, CPUs without AVX512-BF16/AMX) is slower than fp32, so "auto"
    precision only picks bf16 where this is true.
    """
    if _device_type(device) == "cuda":
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def autocast_dtype(precision: str, device: Any) -> torch.dtype | None:
    """The autocast dtype for a ``precision`` setting (``auto|fp32|bf16``); None means plain fp32."""
    import torch

    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if _reproducible_bf16(device) else None


def _reproducible_bf16(device: Any) -> bool:
    """What "auto" precision means: bf16 on a GPU with native bf16, fp32 on every CPU.

    bf16 on a CPU is fast only with AVX512-BF16/AMX, and its rounding then differs from the
    fp32 path other CPUs take, so the same commit gave different metrics on different x86
    machines. fp32 is the default that reproduces; ``bf16`` stays an opt-in for speed.
    """
    return _device_type(device) == "cuda" and native_bf16(device)


def weights_dtype(dtype: str, device: Any) -> torch.dtype:
    """The dtype to load weights in for a setting ``auto|float32|bfloat16|float16``.

    auto: bfloat16 on a GPU with native bf16, else float32 (see ``_reproducible_bf16``). On a CPU
    with AVX512-BF16, ``bfloat16`` decodes Gemma 270M ~2.5x faster than fp32 (measured on 2 cores):
    an opt-in for speed, at the cost of outputs that differ from other CPUs'.
    """
    import torch

    if dtype == "auto":
        return torch.bfloat16 if _reproducible_bf16(device) else torch.float32
    return getattr(torch, dtype)
