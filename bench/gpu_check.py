"""GPU check: a QLoRA smoke test on a real small model, its training throughput and its MFU.

    python -m bench.gpu_check [--model gemma3-270m] [--seq-len 512] [--batch 16] [--steps 20]
                              [--compile] [--loss {full,chunked}] [--ce-chunk N] [--texts FILE] [--out FILE]

Loads the model 4-bit (NF4, double quantisation, bf16 compute) on GPU 0, adds LoRA adapters on every
linear layer, and trains causal-LM loss on real SMS texts: a few warm-up steps, then ``--steps`` timed
ones. Reports tokens/s, peak memory, whether the loss fell, and MFU against the dense bf16 peak
(989 TFLOP/s: H100/H200 SXM). Model FLOPs per token: 6 x trainable + 4 x frozen parameters (a frozen
weight needs no weight gradient) + attention's 12 x layers x seq_len x hidden. Writes
bench/results/gpu_check.json (or ``--out``). Without a CUDA GPU it says so, writes that to gpu_check.quick.json (so
a CPU machine's ``make bench`` never replaces a GPU result), and exits 0.
``--texts`` takes a UTF-8 file with one text per line instead of the SMS corpus package, so the
script needs only torch, transformers, peft and bitsandbytes on the GPU machine.

``--loss chunked`` computes the next-token loss from the decoder's last hidden states ``--ce-chunk`` tokens at a
time, recomputing each chunk's logits in backward (:func:`chunked_causal_lm_loss`). Gemma 3's 262k-token vocabulary
makes the full ``tokens x vocab`` logits (and their fp32 copy for the loss) the largest tensors of a step: at batch 64
x 512 they are most of the 75 GB peak. Chunking frees that memory for larger batches; the recomputed head matmul is
real work that the model FLOPs (and so MFU) do not count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from driftloop.runtime import apply_defaults

apply_defaults()

PEAK_BF16_TFLOPS = 989.0
IGNORE_INDEX = -100


def _chunk_ce_sum(hidden, weight, targets, softcap):
    import torch

    logits = (hidden @ weight.t()).float()
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return torch.nn.functional.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum")


def chunked_causal_lm_loss(hidden, weight, labels, chunk: int, softcap: float | None = None):
    """Mean next-token cross-entropy of ``hidden @ weight.T`` without holding the whole logits tensor.

    ``hidden`` is (batch, seq, dim), ``weight`` the (vocab, dim) output head and ``labels`` (batch, seq) token ids
    (``-100`` ignored). Position t predicts token t+1, as transformers' causal-LM loss does. Each chunk of ``chunk``
    tokens runs under activation checkpointing, so backward recomputes its logits instead of keeping them.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    flat = hidden[:, :-1].reshape(-1, hidden.shape[-1])
    targets = labels[:, 1:].reshape(-1)
    total = flat.new_zeros((), dtype=torch.float32)
    for start in range(0, flat.shape[0], chunk):
        part = slice(start, start + chunk)
        total = total + checkpoint(_chunk_ce_sum, flat[part], weight, targets[part], softcap, use_reentrant=False)
    return total / (targets != IGNORE_INDEX).sum().clamp(min=1)


def _write(result: dict, out: Path | None, versions: dict | None = None) -> None:
    from bench.record import write_result

    title = "GPU check: QLoRA throughput and MFU"
    quick = result["status"] == "no_gpu"
    path = write_result("gpu_check", result, title=title, quick=quick, path=out, machine=versions)
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


def _texts(n: int, path: Path | None) -> list[str]:
    if path is not None:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:n]
    from driftloop.tasks.demo_data import read_sms_corpus

    return read_sms_corpus()["text"].head(n).tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma3-270m", help="packaged alias (gemma3-270m) or a local model folder")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=PEAK_BF16_TFLOPS)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (fuses the elementwise ops)")
    parser.add_argument(
        "--loss", choices=("full", "chunked"), default="full", help="full logits (transformers) or chunked (see above)"
    )
    parser.add_argument("--ce-chunk", type=int, default=4096, help="tokens per loss chunk with --loss chunked")
    parser.add_argument("--texts", type=Path, help="UTF-8 file, one text per line (default: the SMS corpus)")
    parser.add_argument("--out", type=Path, help="result JSON (default: bench/results/gpu_check.json)")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        reason = "torch.cuda.is_available() is False; run this on a CUDA machine"
        _write({"status": "no_gpu", "reason": reason}, args.out)
        print("no GPU: nothing to check here", file=sys.stderr)
        return 0

    import bitsandbytes
    import peft
    import transformers
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from driftloop.resources import resolve_model

    path = resolve_model(args.model)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path)
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        path, quantization_config=quant, device_map={"": 0}, dtype=torch.bfloat16, attn_implementation="sdpa"
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    load_s = time.perf_counter() - started
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # 4-bit weights are packed two per byte: count the base model's parameters from its config-built shapes.
    frozen = sum(p.numel() * (2 if p.dtype == torch.uint8 else 1) for p in model.parameters() if not p.requires_grad)

    # Real text, packed into full-length rows so every token counts.
    ids = tokenizer("\n".join(_texts(4000, args.texts)), return_tensors="pt").input_ids[0]
    rows = ids[: (len(ids) // args.seq_len) * args.seq_len].view(-1, args.seq_len)
    if len(rows) < args.batch:
        need = f"--batch {args.batch} needs more text (--texts) or a smaller --batch"
        raise SystemExit(f"the texts give only {len(rows)} rows of {args.seq_len} tokens; {need}")
    batch = rows[: args.batch].to("cuda")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    torch.backends.cuda.matmul.allow_tf32 = True

    inner = model.get_base_model()  # the causal LM under the adapters: its decoder and output head
    if args.loss == "chunked":
        decoder = torch.compile(inner.model) if args.compile else inner.model
        softcap = getattr(inner.config, "final_logit_softcapping", None)

        def loss_of(ids):
            hidden = decoder(input_ids=ids).last_hidden_state
            return chunked_causal_lm_loss(hidden, inner.lm_head.weight, ids, args.ce_chunk, softcap)
    else:
        forward = torch.compile(model) if args.compile else model

        def loss_of(ids):
            return forward(input_ids=ids, labels=ids).loss

    def step() -> float:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_of(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    losses = [step() for _ in range(3)]  # warm-up: kernels, allocator, autotuning, compilation
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    losses += [step() for _ in range(args.steps)]
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0

    cfg = model.config
    tokens = args.steps * args.batch * args.seq_len
    attention = 12 * cfg.num_hidden_layers * args.seq_len * cfg.hidden_size
    flops_per_token = 6 * trainable + 4 * frozen + attention
    achieved = flops_per_token * tokens / elapsed / 1e12
    result = {
        "status": "ok",
        "model": args.model,
        "method": "qlora (nf4, double quant, bf16 compute, LoRA r=16 on all linear layers)",
        "compiled": args.compile,
        "loss": args.loss if args.loss == "full" else f"chunked ({args.ce_chunk} tokens)",
        "seq_len": args.seq_len,
        "batch": args.batch,
        "timed_steps": args.steps,
        "load_s": round(load_s, 2),
        "trainable_params": trainable,
        "frozen_params": frozen,
        "tokens_per_s": round(tokens / elapsed, 1),
        "step_s": round(elapsed / args.steps, 4),
        "model_tflops_per_s": round(achieved, 2),
        "peak_tflops": args.peak_tflops,
        "mfu": round(achieved / args.peak_tflops, 4),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "loss_first": round(losses[0], 4),
        "loss_last": round(losses[-1], 4),
        "loss_fell": losses[-1] < losses[0],
    }
    versions = {"transformers": transformers.__version__, "peft": peft.__version__}
    _write(result, args.out, {**versions, "bitsandbytes": bitsandbytes.__version__})
    return 0 if result["loss_fell"] else 1


if __name__ == "__main__":
    sys.exit(main())
