"""Benchmark multi-process training: `accelerate launch` with 2 CPU processes (gloo) against 1 process.

Run: ``python -m bench.bench_ddp [--quick]``. Writes bench/results/ddp.json (``ddp.quick.json`` with ``--quick``).

Three variants: 1 process, 2 processes under DDP (``train.distributed=ddp``) and 2 under FSDP2 (``fsdp``: parameters,
gradients and optimizer state sharded, so each rank all-gathers every block in forward and backward).

Same model (the packaged MiniLM, LoRA, fp32), same SMS rows, same number of optimizer steps and the same effective
batch: 1 process x batch 32 against 2 processes x batch 16. The single process gets every core as torch threads; the
2 ranks share them (OMP_NUM_THREADS = cores / 2, as the launcher sets it). Each variant runs in a fresh subprocess;
variants alternate (1, 2, 1, 2, ...) so that load from other processes hits both alike, and the median counts.
``train_samples_per_s`` counts training time only (the loop's own clock); ``wall_s`` is the whole call, including
process start, model load on every rank, the dev evaluation and (2 processes) saving and reloading the model folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.record import write_result

LABELS = ["ham", "spam"]
GLOBAL_BATCH = 32


VARIANTS = {"1": (1, "ddp"), "2-ddp": (2, "ddp"), "2-fsdp": (2, "fsdp")}


def _worker(n_proc: int, distributed: str, steps: int) -> dict[str, Any]:
    from driftloop.config import TrainConfig
    from driftloop.tasks.demo_data import read_sms_corpus
    from driftloop.tasks.train.distributed import launch_train

    corpus = read_sms_corpus().sample(frac=1.0, random_state=0).reset_index(drop=True)
    dev, rows = corpus.iloc[:200], corpus.iloc[200 : 200 + steps * GLOBAL_BATCH]
    cfg = TrainConfig.of(
        model="minilm", method="lora", device="cpu", precision="fp32", label_mode="hard",
        batch_size=GLOBAL_BATCH // n_proc, num_processes=n_proc, distributed=distributed, max_steps=steps, epochs=1,
        early_stopping_patience=None, evals_per_epoch=1, log_steps=10_000,
    )  # fmt: skip
    t0 = time.perf_counter()
    result = launch_train(rows[["text", "label"]], dev[["text", "label"]], LABELS, cfg, seed=0)
    wall = time.perf_counter() - t0
    return {
        "processes": n_proc,
        "distributed": distributed,
        "batch_per_process": cfg.batch_size,
        "steps": result.steps,
        "train_samples_per_s": round(result.train_samples_per_s, 2),
        "train_seconds": round(result.train_seconds, 2),
        "wall_s": round(wall, 2),
        "dev_macro_f1": round(result.best_dev_macro_f1, 4),
        "peak_rss_mb_per_process": round(result.peak_rss_mb, 1),
    }


def _run(variant: str, steps: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_ddp", "--worker", variant, "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        raise RuntimeError(f"worker {variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smoke run: 6 steps, one repeat.")
    parser.add_argument("--worker", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=30, help="Optimizer steps per run (batch 32).")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.worker is not None:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        print(json.dumps(_worker(*VARIANTS[args.worker], args.steps)))
        return {}
    steps, repeats = (6, 1) if args.quick else (args.steps, args.repeats)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            runs[variant].append(_run(variant, steps))
            print(json.dumps(runs[variant][-1]), flush=True)

    def median(variant: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[variant]), 2)

    keys = ("train_samples_per_s", "wall_s", "peak_rss_mb_per_process")
    named = {"one_process": "1", "two_processes": "2-ddp", "two_processes_fsdp": "2-fsdp"}
    summary: dict[str, Any] = {name: {k: median(v, k) for k in keys} for name, v in named.items()}
    for name in ("two_processes", "two_processes_fsdp"):
        suffix = "" if name == "two_processes" else "_fsdp"
        summary[f"speedup_train_samples_per_s{suffix}"] = round(
            summary[name]["train_samples_per_s"] / summary["one_process"]["train_samples_per_s"], 3
        )
        summary[f"speedup_wall{suffix}"] = round(summary["one_process"]["wall_s"] / summary[name]["wall_s"], 3)
    out = {
        "quick": args.quick,
        "setup": {
            "model": "minilm",
            "method": "lora",
            "precision": "fp32",
            "global_batch": GLOBAL_BATCH,
            "steps": steps,
            "repeats": repeats,
        },  # fmt: skip
        "summary": summary,
        "runs": runs,
    }
    title = "Multi-process training: 2 CPU processes (DDP, FSDP) vs 1"
    path = write_result("ddp", out, title=title, quick=args.quick, machine={"load_avg_1m": os.getloadavg()[0]})
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
