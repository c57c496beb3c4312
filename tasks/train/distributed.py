"""Multi-process training: the same :func:`~driftloop.tasks.train.trainer.train` under ``accelerate launch`` (DDP/FSDP).

:func:`launch_train` takes what :func:`train` takes. With ``train.num_processes`` of 1 it *is* ``train``; above 1 it
writes the tables and settings to a temp folder, runs ``accelerate launch --num_processes N -m
driftloop.tasks.train.distributed <folder>`` as a subprocess, and loads the model folder that rank 0 saved back
into a :class:`TrainResult` (the classifier in memory, as ``train`` returns it).

Each rank runs ``train`` with :class:`DDPLoop`: the batches are the single-process batches of
``batch_size x num_processes`` rows (the same pure function of seed and epoch); rank ``r`` takes slice ``r`` of each
and scales its share of the loss so that DDP's gradient average equals the single-process gradient of that whole
batch. So N processes with ``batch_size`` B train like one process with batch ``N x B``. Rank 0 takes the checkpoint
folder's lock, writes the checkpoints (the loop's ``is_main_process`` hook) and the model folder; every rank resumes
from the same checkpoint, so a rerun resumes exactly as a single-process run does. Rank 0 computes the dev metric and
broadcasts it, so every rank takes the same early-stopping decision.

With ``train.distributed=fsdp`` the ranks train with :class:`FSDPLoop` instead: the same batches, with parameters,
gradients and optimizer state sharded by FSDP2; the checkpoints hold whole tensors gathered from the shards.

On CPU the launcher uses accelerate's torchrun path (``--multi_gpu``) and the ranks build ``Accelerator(cpu=True)``
(gloo): ``accelerate launch --cpu`` without mpirun starts a single process.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from driftloop.atomic import write_json
from driftloop.config import TrainConfig
from driftloop.errors import ConfigError, DriftloopError, TrainingLaunchError
from driftloop.hardware import choose_device
from driftloop.tasks.train.classifier import TextClassifier, autocast
from driftloop.tasks.train.data import pad_batch
from driftloop.tasks.train.fit import FitInputs
from driftloop.tasks.train.loop import GradientLoop, soft_cross_entropy
from driftloop.tasks.train.trainer import TrainResult, train

log = logging.getLogger("driftloop.train")

RESULT_FILE = "result.json"
MODEL_DIR = "model"


class DDPLoop(GradientLoop):
    """The gradient loop of one rank: a slice of every global batch, gradients averaged by DDP."""

    def __init__(self, inputs: FitInputs, run_dir: Path | None, on_step, accelerator) -> None:
        self.acc = accelerator
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        # The loop counts steps, epochs and evaluations over global batches of batch_size x world rows.
        global_cfg = inputs.cfg.model_copy(update={"batch_size": inputs.cfg.batch_size * self.world})
        super().__init__(dataclasses.replace(inputs, cfg=global_cfg), run_dir, on_step)
        self.ddp_model = self._wrap()

    def _wrap(self) -> torch.nn.Module:
        # DDP broadcasts rank 0's weights now; checkpoints and the best state keep using the unwrapped model.
        return self.acc.prepare_model(self.model)

    def backward(self, loss: torch.Tensor) -> None:
        self.acc.backward(loss)

    def is_main_process(self) -> bool:
        return bool(self.acc.is_main_process)

    def _all_reduce(self, value: torch.Tensor) -> torch.Tensor:
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.SUM)
        return value

    def evaluate_dev(self) -> float:
        metric = torch.zeros(1, dtype=torch.float64, device=self.device)
        if self.is_main_process():
            metric += super().evaluate_dev()
        torch.distributed.broadcast(metric, src=0)  # one decision for every rank (early stopping, best step)
        return float(metric.item())

    def _micro_step(self, batch: np.ndarray, scale: float) -> float:
        mine, share = np.array_split(batch, self.world)[self.rank], 1.0
        if len(mine) == 0:  # fewer rows than ranks: still run forward/backward (DDP all-reduces), with no weight
            mine, share = batch[:1], 0.0
        inputs = pad_batch([self.ids[i] for i in mine], self.clf.tokenizer.pad_token_id, self.device)
        target, weight = self.targets[mine].to(self.device), self.weights[mine].to(self.device)
        with autocast(self.device, self.clf.autocast_dtype):
            logits = self.ddp_model(**inputs).logits
        # This rank's part of the whole batch's weighted mean loss: the parts of all ranks sum to it.
        part = soft_cross_entropy(logits, target, weight) * (
            share * float(weight.sum()) / max(float(self.weights[batch].sum()), 1e-12)
        )
        total = self._all_reduce(part.detach().to(torch.float64).reshape(1).clone())
        if not torch.isfinite(total).all():  # the same value on every rank: all of them stop together
            self._diverged(f"loss is {total.item()}")
        self.backward(part * (self.world * scale))  # DDP averages over ranks: x world makes it the sum
        return float(total.item())


class FSDPLoop(DDPLoop):
    """:class:`DDPLoop` with parameters, gradients and optimizer state sharded across the ranks (FSDP2).

    Each transformer block is one ``fully_shard`` unit, then the root. A forward pass all-gathers a block's
    parameters and frees them after; backward reduce-scatters the gradients (their mean over ranks, as DDP), so the
    batch arithmetic of :class:`DDPLoop` holds unchanged. Whatever leaves the loop is whole: the best state and the
    checkpoints hold gathered tensors (every rank joins the gather; rank 0 writes), and a resume hands each rank its
    shard of them. Dev evaluation runs on every rank, since each forward needs all of them.
    """

    gathers_state = True

    def __init__(self, inputs: FitInputs, run_dir: Path | None, on_step, accelerator) -> None:
        # Before the optimizer takes the parameters; the model is still in CPU memory, its shards go to the device.
        shard_model(inputs.classifier.model, accelerator.num_processes, inputs.classifier.device)
        super().__init__(inputs, run_dir, on_step, accelerator)

    def _wrap(self) -> torch.nn.Module:
        return self.model  # fully_shard changed the model in place

    def _trainable(self) -> list[tuple[str, torch.Tensor]]:
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def snapshot_weights(self) -> dict[str, torch.Tensor]:
        return full_trainable_state(self.model)

    def restore_weights(self, state: Mapping[str, torch.Tensor]) -> None:
        from torch.distributed.tensor import distribute_tensor

        params = dict(self._trainable())
        if set(params) != set(state):
            raise RuntimeError("checkpoint does not match the model; delete the checkpoint folder")
        with torch.no_grad():
            for name, p in params.items():
                # Every rank holds the whole tensor: each keeps its own shard, no communication needed.
                whole = state[name].to(p.device, p.dtype)
                p.copy_(distribute_tensor(whole, p.device_mesh, p.placements, src_data_rank=None))

    def optimizer_state(self) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        # Whole tensors, keyed by parameter name; with cpu_offload only rank 0 (the writer) receives them.
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(self.model, self.optimizer, options=options)

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True)  # every rank read the whole state from the checkpoint
        set_optimizer_state_dict(self.model, self.optimizer, optim_state_dict=state, options=options)

    def evaluate_dev(self) -> float:
        metric = torch.tensor([GradientLoop.evaluate_dev(self)], dtype=torch.float64, device=self.device)
        self.model.reshard()  # the root unit stays gathered after a forward with no backward to follow
        torch.distributed.broadcast(metric, src=0)  # equal already; rank 0's value makes the decision certain
        return float(metric.item())


def shard_model(model: torch.nn.Module, world: int, device: torch.device) -> None:
    """FSDP2 ``fully_shard`` over ``world`` ranks: each block of the longest module list (the layers), then the root.

    Each call moves that unit's shards to ``device`` and frees the whole tensors, so a device holds its shards plus
    one gathered block at a time, never the whole model.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (world,))
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    for block in max(lists, key=len, default=[]):
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def full_trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Whole CPU copies of a sharded model's trainable parameters; every rank must call it (it all-gathers)."""
    model.reshard()  # type: ignore[operator]  # sharded again, if a forward left the root unit gathered
    return {
        n: p.full_tensor().detach().to("cpu", copy=True).contiguous()
        for n, p in model.named_parameters()
        if p.requires_grad
    }


@dataclasses.dataclass
class AccelerateRank:
    """:class:`~driftloop.tasks.train.trainer.RankContext` for a rank started by ``accelerate launch``."""

    accelerator: Any

    @property
    def device(self) -> torch.device:
        device = torch.device(self.accelerator.device)
        # accelerate says "cpu:0" on CPU, which torch.load's map_location (checkpoint resume) does not accept.
        return torch.device("cpu") if device.type == "cpu" else device

    @property
    def is_main_process(self) -> bool:
        return bool(self.accelerator.is_main_process)

    def make_loop(self, inputs: FitInputs, run_dir: Path | None, on_step) -> GradientLoop:
        loop = FSDPLoop if inputs.cfg.distributed == "fsdp" else DDPLoop
        return loop(inputs, run_dir, on_step, self.accelerator)


# ---- the launcher (parent process) ----------------------------------------------------------------------------


def launch_train(
    train_df: pd.DataFrame,
    dev_df: pd.DataFrame,
    labels: Sequence[str],
    cfg: TrainConfig,
    *,
    seed: int = 42,
    class_weights: Mapping[str, float] | None = None,
    checkpoint_dir: str | Path | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """:func:`train`, on ``cfg.num_processes`` processes (``accelerate launch``) when that is above 1.

    Raises what :func:`train` raises (a rank's driftloop error comes back as the same class), plus
    ``TrainingLaunchError`` when the launch itself fails and ``ConfigError`` when there are fewer GPUs than processes.
    """
    n = cfg.num_processes
    if n <= 1:
        return train(train_df, dev_df, labels, cfg, seed=seed, class_weights=class_weights,
                     checkpoint_dir=checkpoint_dir, on_step=on_step)  # fmt: skip
    if cfg.method == "feature":  # a closed-form head: no gradient loop to spread over processes
        log.warning("train.method=feature fits in one go; train.num_processes=%d is ignored", n)
        return train(train_df, dev_df, labels, cfg, seed=seed, class_weights=class_weights,
                     checkpoint_dir=checkpoint_dir, on_step=on_step)  # fmt: skip
    if on_step is not None:
        raise ValueError("on_step callbacks cannot cross process boundaries; use train.num_processes=1")
    device = choose_device(cfg.device, "train.device")
    if device == "cuda" and torch.cuda.device_count() < n:
        raise ConfigError(
            f"train.num_processes={n} but {torch.cuda.device_count()} GPU(s) are visible: DDP runs one process per "
            f"GPU; set train.num_processes={torch.cuda.device_count()} (or train.device=cpu for CPU processes)"
        )
    with tempfile.TemporaryDirectory(prefix="driftloop-ddp-") as tmp:
        work = Path(tmp)
        train_df.to_pickle(work / "train.pkl")  # exact round trip (label_probs lists, dtypes): the fingerprint
        dev_df.to_pickle(work / "dev.pkl")  # of a rerun matches, so resume works as in one process
        write_json(
            work / "args.json",
            {
                "labels": list(labels),
                "cfg": cfg.model_dump(mode="json"),
                "seed": seed,
                "class_weights": dict(class_weights) if class_weights is not None else None,
                "checkpoint_dir": str(Path(checkpoint_dir).resolve()) if checkpoint_dir is not None else None,
                "cpu": device == "cpu",
            },
        )
        _run_ranks(work, n, cpu=device == "cpu")
        return _load_result(work, cfg)


def accelerate_command(work: Path, n: int, port: int) -> list[str]:
    """The ``accelerate launch`` command line for ``n`` ranks on this machine."""
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        # torchrun's launcher: on CPU too (the ranks pass cpu=True and use gloo); --cpu alone needs mpirun.
        "--multi_gpu", "--num_processes", str(n), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
        "-m", "driftloop.tasks.train.distributed", str(work),
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Linux: this process gets SIGTERM when its parent dies, even by SIGKILL. The launcher sets it for torchrun (which
    # then stops the ranks), and each rank for itself (for when torchrun is killed outright).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _run_ranks(work: Path, n: int, cpu: bool) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if cpu and "OMP_NUM_THREADS" not in env:  # the cores are shared among the ranks
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n))
    cmd = accelerate_command(work, n, _free_port())
    log.info("launching %d training processes: %s", n, " ".join(cmd[1:]))
    tail: deque[str] = deque(maxlen=400)
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_die_with_parent
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            log.info("%s", line.rstrip())
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            if proc.poll() is None:
                proc.kill()
    if code != 0:
        _raise_rank_error(work, code, list(tail))


def _raise_rank_error(work: Path, code: int, tail: list[str]) -> None:
    import driftloop.errors as errors

    for path in sorted(work.glob("error-*.json")):
        err = json.loads(path.read_text(encoding="utf-8"))
        cls = getattr(errors, err["type"], None)
        if isinstance(cls, type) and issubclass(cls, DriftloopError):
            raise cls(err["message"])
    # torchrun's summary comes last; the rank's own traceback is what says what went wrong.
    starts = [i for i, line in enumerate(tail) if "Traceback (most recent call last)" in line]
    shown = tail[starts[0] : starts[0] + 40] if starts else tail[-30:]
    raise TrainingLaunchError(
        f"accelerate launch exited with {code}; the output of the training processes:\n"
        + "\n".join(shown)
        + "\nFix the cause above, or set train.num_processes=1 to train in this process."
    )


def _load_result(work: Path, cfg: TrainConfig) -> TrainResult:
    from driftloop.tasks.train.model_dir import load_classifier

    fields = json.loads((work / RESULT_FILE).read_text(encoding="utf-8"))
    ranks = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(work.glob("rank-*.json"))]
    fields["peak_rss_mb"] = max([fields["peak_rss_mb"], *(r["peak_rss_mb"] for r in ranks)])
    if fields.get("checkpoint_dir"):
        fields["checkpoint_dir"] = Path(fields["checkpoint_dir"])
    classifier = load_classifier(work / MODEL_DIR, device=cfg.device)
    return TrainResult(classifier=classifier, **fields)


# ---- one rank (under accelerate launch) ---------------------------------------------------------------------


def _unsharded(result: TrainResult, main: bool) -> TrainResult:
    """``result`` with its FSDP-sharded model gathered into a whole one on the main rank (every rank must call it).

    The whole model is built in CPU memory: the model folder is written from it, and a base that needs FSDP need not
    fit one device.
    """
    from driftloop.tasks.train.checkpoints import load_trainable_state
    from driftloop.tasks.train.model import build_model

    weights = full_trainable_state(result.classifier.model)
    if not main:
        return result
    clf, rc = result.classifier, result.resolved_config
    cfg = TrainConfig.of(**rc["train"])
    cpu = torch.device("cpu")
    model, _ = build_model(cfg, clf.labels, result.method, cpu, rc["base_model_path"])
    load_trainable_state(model, weights)
    model.eval()
    whole = TextClassifier(model, clf.tokenizer, clf.labels, method=clf.method, max_length=clf.max_length, device=cpu)
    return dataclasses.replace(result, classifier=whole)


def rank_main(work: Path) -> None:
    """Train this rank's part; rank 0 saves the model folder (adapter, not merged) and the result fields."""
    from accelerate import Accelerator

    from driftloop.tasks.train.model_dir import save_model

    # torchrun starts each rank in a session of its own: without this, a SIGKILL of the launcher's process group
    # leaves the ranks running, holding the checkpoint lock (and the GPUs) with nobody to collect their model.
    _die_with_parent()
    args = json.loads((work / "args.json").read_text(encoding="utf-8"))
    accelerator = Accelerator(cpu=args["cpu"])
    rank = accelerator.process_index
    logging.basicConfig(
        level=logging.INFO if accelerator.is_main_process else logging.WARNING,
        format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s",
    )
    try:
        result = train(
            pd.read_pickle(work / "train.pkl"),
            pd.read_pickle(work / "dev.pkl"),
            args["labels"],
            TrainConfig.of(**args["cfg"]),
            seed=args["seed"],
            class_weights=args["class_weights"],
            checkpoint_dir=args["checkpoint_dir"],
            rank=AccelerateRank(accelerator),
        )
    except DriftloopError as exc:
        write_json(work / f"error-{rank}.json", {"type": type(exc).__name__, "message": str(exc)})
        raise
    write_json(work / f"rank-{rank}.json", {"peak_rss_mb": result.peak_rss_mb})
    if result.resolved_config["train"]["distributed"] == "fsdp":
        result = _unsharded(result, accelerator.is_main_process)
    if accelerator.is_main_process:
        rc = result.resolved_config
        # The parent loads this folder back; it merges (train.merge) when it saves the registered model.
        train_keys = {**rc["train"], "merge": False} if "merge" in rc["train"] else rc["train"]
        unmerged = dataclasses.replace(result, resolved_config={**rc, "train": train_keys})
        save_model(unmerged, work / MODEL_DIR)
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "classifier"}
        fields["checkpoint_dir"] = str(fields["checkpoint_dir"]) if fields["checkpoint_dir"] else None
        write_json(work / RESULT_FILE, fields)
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    rank_main(Path(sys.argv[1]))
    # Everything this rank owes is on disk and every rank has passed the barrier. Skip the interpreter's teardown:
    # under load a torch thread still joinable at exit now and then aborted a finished rank ("terminate called
    # without an active exception", SIGABRT with no Python frame), and torchrun then failed the whole run.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
