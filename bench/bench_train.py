"""Benchmark fine-tuning: our loop (demo config) against HF Trainer padded to 128 tokens, on SMS texts.

Run: ``python -m bench.bench_train [--quick]``. Writes bench/results/train.json (``train.quick.json`` with
``--quick``).

Sections:
- ``cpu_speed``: training samples/s and peak RSS of the demo config (dynamic padding, length-grouped
  batches, the config's precision: bf16 autocast on CPUs with native bf16), of the same loop in fp32
  (to separate the two gains), and of the naive baseline (``transformers.Trainer``, every text
  padded to 128 tokens, fp32), same model, same method, same rows, same number of optimizer
  steps. Each run is a fresh subprocess so that peak RSS is its own; runs alternate (ours, ours fp32,
  baseline, ours, ...) so that load from other processes hits all alike; the median counts.
- ``full_supervision``: the demo config trained on the gold labels of the non-dev, non-test rows
  (an upper bound for weak supervision), scored on the 1,000-row gold test split.
- ``gpu_qlora``: QLoRA on a randomly initialised Qwen2-0.5B-shaped causal LM (tokens/s, peak memory,
  MFU against 989 TFLOP/s dense bf16 of an H100); recorded as skipped without CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED = 42
LABELS = ["ham", "spam"]
H100_BF16_DENSE_FLOPS = 989e12
BASELINE_MAX_LENGTH = 128


DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "sms_spam.yaml"


def demo_train_config(**overrides: Any):
    """The ``train`` section of configs/sms_spam.yaml (every default filled in), with ``overrides``."""
    from driftloop.config import TrainConfig, load_config

    section = load_config(DEMO_CONFIG).train.model_dump()
    return TrainConfig.of(**{**section, "enabled": True, **overrides})


def sms_splits(seed: int = SEED) -> dict[str, Any]:
    """Stratified split of the SMS corpus: test 1,000, dev 500, train the rest (gold labels everywhere)."""
    from sklearn.model_selection import train_test_split

    from driftloop.tasks.demo_data import read_sms_corpus

    corpus = read_sms_corpus()
    rest, test = train_test_split(corpus, test_size=1000, stratify=corpus["label"], random_state=seed)
    train, dev = train_test_split(rest, test_size=500, stratify=rest["label"], random_state=seed)
    return {
        "train": train.reset_index(drop=True),
        "dev": dev.reset_index(drop=True),
        "test": test.reset_index(drop=True),
    }


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---- workers (each runs in its own process) ---------------------------------------------------
def worker_ours(n_samples: int, **overrides: Any) -> dict[str, Any]:
    from driftloop.tasks.train import train

    splits = sms_splits()
    cfg = demo_train_config(epochs=1, max_steps=None, early_stopping_patience=None, log_steps=10_000, **overrides)
    rows = splits["train"].iloc[:n_samples]
    result = train(rows, splits["dev"].iloc[:64], LABELS, cfg, seed=SEED)
    return {
        "samples": n_samples,
        "steps": result.steps,
        "samples_per_s": result.train_samples_per_s,
        "train_seconds": result.train_seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "config": {
            **{k: cfg.model_dump()[k] for k in ("method", "max_length", "batch_size", "group_by_length")},
            "learning_rate": cfg.resolved_learning_rate,
            "precision": result.summary()["precision"],
        },
    }


def worker_hf_trainer(n_samples: int) -> dict[str, Any]:
    import torch
    from transformers import Trainer, TrainingArguments

    from driftloop.hardware import choose_device
    from driftloop.tasks.train import build_model, resolve_method

    splits = sms_splits()
    cfg = demo_train_config()
    rows = splits["train"].iloc[:n_samples]
    torch.manual_seed(SEED)
    device = torch.device(choose_device(cfg.device, "train.device"))
    method = resolve_method(cfg, device)[0]  # the same model and adapter as ours
    model, tokenizer = build_model(cfg, LABELS, method, device)
    enc = tokenizer(rows["text"].tolist(), truncation=True, max_length=BASELINE_MAX_LENGTH, padding="max_length")
    label_ids = rows["label"].map({name: i for i, name in enumerate(LABELS)}).tolist()
    dataset = [
        {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": label_ids[i]}
        for i in range(len(rows))
    ]
    steps = -(-n_samples // cfg.batch_size)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=cfg.batch_size,
            max_steps=steps,
            learning_rate=cfg.resolved_learning_rate,
            weight_decay=cfg.weight_decay,
            warmup_steps=int(cfg.warmup_ratio * steps),
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
            seed=SEED,
            dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=dataset)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {
        "samples": steps * cfg.batch_size if n_samples % cfg.batch_size == 0 else n_samples,
        "steps": steps,
        "samples_per_s": n_samples / seconds,
        "train_seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "config": {
            "method": method,
            "max_length": BASELINE_MAX_LENGTH,
            "padding": "max_length",
            "batch_size": cfg.batch_size,
            "precision": "fp32",
        },
    }


def worker_supervised(max_train_rows: int | None) -> dict[str, Any]:
    import numpy as np

    from driftloop.config import EvaluateConfig
    from driftloop.tasks.evaluate import evaluate
    from driftloop.tasks.train import train

    splits = sms_splits()
    rows = splits["train"] if max_train_rows is None else splits["train"].iloc[:max_train_rows]
    cfg = demo_train_config()
    start = time.perf_counter()
    result = train(rows, splits["dev"], LABELS, cfg, seed=SEED)
    seconds = time.perf_counter() - start
    probs = result.classifier.predict_proba(splits["test"]["text"].tolist())
    evaluation = evaluate(splits["test"], LABELS, probs, EvaluateConfig(plots=False))
    return {
        "train_rows": len(rows),
        "wall_seconds": seconds,
        "training": result.summary(),
        "test_accuracy": evaluation.accuracy,
        "test_macro_f1": evaluation.macro_f1,
        "test_spam_f1": evaluation.per_class["spam"]["f1"],
        "test_ece": evaluation.ece,
        "errors": int(np.round((1 - evaluation.accuracy) * evaluation.n_test)),
    }


QWEN2_05B_SHAPE = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151_936,
    "max_position_embeddings": 32_768,
    "tie_word_embeddings": True,
}


def worker_gpu_qlora(n_samples: int) -> dict[str, Any]:
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from driftloop.tasks.train import train

    if not torch.cuda.is_available():
        return {"skipped": "no GPU"}
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    splits = sms_splits()
    texts = splits["train"]["text"].tolist()
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=8000, special_tokens=["<pad>", "<unk>", "<eos>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")
    with tempfile.TemporaryDirectory() as base:
        torch.manual_seed(SEED)
        config = Qwen2Config(**QWEN2_05B_SHAPE, pad_token_id=tokenizer.pad_token_id)
        Qwen2ForCausalLM(config).save_pretrained(base)  # random init, real architecture
        tokenizer.save_pretrained(base)
        cfg = demo_train_config(
            model=base,
            method="qlora",
            strict=True,
            epochs=1,
            batch_size=32,
            early_stopping_patience=None,
            log_steps=10_000,
            max_length=128,
        )
        rows = splits["train"].iloc[:n_samples]
        torch.cuda.reset_peak_memory_stats()
        result = train(rows, splits["dev"].iloc[:64], LABELS, cfg, seed=SEED)
    lengths = [len(x) for x in tokenizer(rows["text"].tolist(), truncation=True, max_length=128)["input_ids"]]
    tokens_per_s = sum(lengths) / result.train_seconds
    n_params = sum(v for k, v in _qwen2_param_counts(config).items() if k != "embedding")
    # Frozen 4-bit base: forward 2N + backward through the weights 2N FLOPs per token (no weight gradients
    # for the base); attention scores add 4 * layers * seq * hidden per token forward+backward (x3 over forward).
    mean_len = sum(lengths) / len(lengths)
    flops_per_token = 4 * n_params + 12 * config.num_hidden_layers * mean_len * config.hidden_size
    return {
        "model": "Qwen2-0.5B shape, random init",
        "non_embedding_params": n_params,
        "samples": n_samples,
        "tokens_per_s": tokens_per_s,
        "samples_per_s": result.train_samples_per_s,
        "peak_gpu_mem_mb": result.peak_gpu_mem_mb,
        "device": torch.cuda.get_device_name(0),
        "mfu_vs_989_tflops": flops_per_token * tokens_per_s / H100_BF16_DENSE_FLOPS,
        "flops_per_token": flops_per_token,
        "training": result.summary(),
    }


def _qwen2_param_counts(config: Any) -> dict[str, int]:
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = h // config.num_attention_heads * config.num_key_value_heads
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i  # q, o, k, v, gate/up/down
    return {"embedding": config.vocab_size * h, "layers": layers * per_layer}


def worker_ours_fp32(n_samples: int) -> dict[str, Any]:
    """Our loop without bf16: separates the gain of dynamic padding + length grouping from bf16's."""
    return worker_ours(n_samples, precision="fp32")


WORKERS = {
    "ours": worker_ours,
    "ours_fp32": worker_ours_fp32,
    "hf_trainer": worker_hf_trainer,
    "supervised": worker_supervised,
    "gpu_qlora": worker_gpu_qlora,
}


# ---- orchestration ----------------------------------------------------------------------------
def _run_worker(name: str, arg: int | None, threads: int, timeout: int = 3600) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_train", "--worker", name, "--arg", str(arg), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).resolve().parents[1])
    marker = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not marker:
        raise RuntimeError(f"worker {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(marker[-1][len("RESULT ") :])


def machine_info() -> dict[str, Any]:
    """What this bench adds to the envelope's machine."""
    import torch

    return {"torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smoke run: 256 samples, one repeat, 600 supervised rows.")
    parser.add_argument("--samples", type=int, default=1024, help="Training rows (= samples) per speed run.")
    parser.add_argument("--repeats", type=int, default=2, help="Speed runs per variant; the median counts.")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads per run (0: torch's default). One thread keeps the comparison "
        "stable when other processes share the cores: spinning OpenMP threads that get "
        "descheduled stall every step.",
    )
    parser.add_argument("--out", type=Path, help="Result file; default bench/results/train.json (.quick.json).")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--arg", default="None", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        if args.threads > 0:
            import torch

            torch.set_num_threads(args.threads)
        arg = None if args.arg == "None" else int(args.arg)
        print("RESULT " + json.dumps(WORKERS[args.worker](arg), default=str), flush=True)
        return {}

    from bench.record import write_result

    samples, repeats, supervised_rows = args.samples, args.repeats, None
    if args.quick:
        samples, repeats, supervised_rows = 256, 1, 600
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "ours_fp32": [], "hf_trainer": []}
    for _ in range(repeats):
        for name in runs:  # alternate, so background load hits both variants alike
            runs[name].append(_run_worker(name, samples, args.threads))
            print(
                f"{name}: {runs[name][-1]['samples_per_s']:.1f} samples/s, "
                f"peak RSS {runs[name][-1]['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    median = {name: statistics.median(r["samples_per_s"] for r in rs) for name, rs in runs.items()}
    rss = {name: statistics.median(r["peak_rss_mb"] for r in rs) for name, rs in runs.items()}
    cpu_speed = {
        "samples_per_run": samples,
        "repeats": repeats,
        "runs": runs,
        "ours_samples_per_s": round(median["ours"], 2),
        "baseline_samples_per_s": round(median["hf_trainer"], 2),
        "speedup": round(median["ours"] / median["hf_trainer"], 2),
        "ours_fp32_samples_per_s": round(median["ours_fp32"], 2),
        "speedup_fp32_only_padding_and_grouping": round(median["ours_fp32"] / median["hf_trainer"], 2),
        "ours_peak_rss_mb": round(rss["ours"]),
        "baseline_peak_rss_mb": round(rss["hf_trainer"]),
        "goal_speedup_2x": median["ours"] / median["hf_trainer"] >= 2.0,
    }
    print(f"speed-up {cpu_speed['speedup']:.2f}x", flush=True)
    supervised = _run_worker("supervised", supervised_rows, args.threads)
    print(
        f"full supervision: accuracy {supervised['test_accuracy']:.4f}, spam F1 {supervised['test_spam_f1']:.4f}",
        flush=True,
    )
    import torch

    gpu = (
        _run_worker("gpu_qlora", 2048 if not args.quick else 256, 0)
        if torch.cuda.is_available()
        else {"skipped": "no GPU"}
    )
    report = {
        "quick": args.quick,
        "demo_config": demo_train_config().model_dump(mode="json"),
        "baseline": f"transformers.Trainer, same model and method, padding='max_length' {BASELINE_MAX_LENGTH}, fp32",
        "cpu_speed": cpu_speed,
        "full_supervision": supervised,
        "gpu_qlora": gpu,
    }
    machine = {
        **machine_info(),
        "bench_threads": args.threads or "torch default",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    title = "Fine-tuning: our loop vs HF Trainer"
    out = write_result("train", report, title=title, quick=args.quick, path=args.out, machine=machine)
    print(json.dumps(report, indent=2, default=str))
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
