"""Resume checkpoints: ``<checkpoint_dir>/<fingerprint>/step-000123/``, each published atomically.

A checkpoint holds the trainable weights, the best weights so far, optimizer + scheduler state,
every RNG state and the loop state (``state.json``, written last). Only the newest complete one is
kept. A lock beside the run folder stops two processes training on the same folder at once.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from driftloop.atomic import atomic_dir, file_lock, write_json
from driftloop.errors import TrainingBusyError

CKPT_PREFIX = "step-"


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the parameters that take gradients."""
    return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy ``state`` (from :func:`trainable_state`) back into the model's trainable parameters."""
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in state]
    if missing or any(n not in params for n in state):
        raise RuntimeError(f"checkpoint does not match the model (missing {missing[:3]}); delete the checkpoint folder")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoints in ``run_dir``, oldest first."""
    if not run_dir.is_dir():
        return []
    found = [
        p
        for p in run_dir.iterdir()
        if p.is_dir() and re.fullmatch(rf"{CKPT_PREFIX}\d+", p.name) and (p / "state.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(CKPT_PREFIX) :]))


def write_checkpoint(
    run_dir: Path,
    step: int,
    weights: Mapping[str, torch.Tensor],
    best_state: Mapping[str, torch.Tensor] | None,
    optimizer_state: dict[str, Any],
    scheduler_state: dict[str, Any],
    loop_state: dict[str, Any],
) -> Path:
    """Publish the checkpoint of ``step`` and delete the older ones.

    ``weights``/``best_state``: whole (unsharded) tensors by parameter name (:func:`trainable_state`);
    ``optimizer_state``: what the loop's optimizer restores from (``optimizer.state_dict()`` in one process).
    """
    from safetensors.torch import save_file

    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / f"{CKPT_PREFIX}{step:07d}"
    with atomic_dir(target, replace=True) as tmp:
        save_file(dict(weights), str(tmp / "trainable.safetensors"))
        if best_state is not None:
            save_file(dict(best_state), str(tmp / "best.safetensors"))
        torch.save({"optimizer": optimizer_state, "scheduler": scheduler_state}, tmp / "optim.pt")
        rng = {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        torch.save(rng, tmp / "rng.pt")
        write_json(tmp / "state.json", loop_state)  # written last: its presence marks the checkpoint complete
    for old in complete_checkpoints(run_dir)[:-1]:
        shutil.rmtree(old, ignore_errors=True)
    return target


@dataclass
class Checkpoint:
    """A checkpoint read back: the loop state, whole weights, best weights, optimizer and scheduler state."""

    loop_state: dict[str, Any]
    weights: dict[str, torch.Tensor]
    best_state: dict[str, torch.Tensor] | None
    optimizer_state: dict[str, Any]
    scheduler_state: dict[str, Any]


def read_checkpoint(path: Path, device: torch.device) -> Checkpoint:
    """Read a checkpoint and restore the RNG states; the loop puts weights and optimizer state back itself."""
    from safetensors.torch import load_file

    best = load_file(str(path / "best.safetensors")) if (path / "best.safetensors").exists() else None
    optim = torch.load(path / "optim.pt", map_location=device, weights_only=False)
    # Our own file: the numpy/python RNG states are pickled tuples, which weights_only would refuse.
    rng = torch.load(path / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return Checkpoint(
        loop_state=json.loads((path / "state.json").read_text(encoding="utf-8")),
        weights=load_file(str(path / "trainable.safetensors")),
        best_state=best,
        optimizer_state=optim["optimizer"],
        scheduler_state=optim["scheduler"],
    )


@contextlib.contextmanager
def exclusive(run_dir: Path | None) -> Iterator[None]:
    """Hold ``<run_dir>.lock`` while training: two runs on one checkpoint folder would delete each other's files."""
    if run_dir is None:
        yield
        return
    lock = run_dir.with_name(run_dir.name + ".lock")  # left in place: unlinking a flock file races
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(lock, wait=False))
        except BlockingIOError:
            raise TrainingBusyError(
                f"another run is already training on the same data, config and seed (lock {lock} is held); "
                "let it finish and register its model instead of training the same model twice"
            ) from None
        yield
