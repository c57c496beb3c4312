"""bench/gpu_check.py's chunked causal-LM loss equals transformers' loss, in value and gradients (CPU, fp32)."""

from __future__ import annotations

import pytest
import torch

from bench.gpu_check import chunked_causal_lm_loss


@pytest.mark.parametrize("softcap", [None, 30.0])
def test_chunked_loss_matches_full_logits(softcap):
    torch.manual_seed(0)
    hidden = torch.randn(3, 11, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    labels = torch.randint(0, 50, (3, 11))
    labels[1, 4] = -100  # an ignored position

    logits = hidden @ weight.t()
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    full = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50), labels[:, 1:].reshape(-1))
    full_grads = torch.autograd.grad(full, (hidden, weight))

    chunked = chunked_causal_lm_loss(hidden, weight, labels, chunk=7, softcap=softcap)  # 30 tokens: 5 chunks
    chunked_grads = torch.autograd.grad(chunked, (hidden, weight))

    torch.testing.assert_close(chunked, full)
    for got, want in zip(chunked_grads, full_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_chunked_loss_matches_a_causal_lm(tmp_path):
    from transformers import AutoModelForCausalLM

    from tests.tiny_models import tiny_causal_lm_dir

    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir(tmp_path / "lm")).eval()
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    want = model(input_ids=ids, labels=ids).loss
    hidden = model.model(input_ids=ids).last_hidden_state
    got = chunked_causal_lm_loss(hidden, model.lm_head.weight, ids, chunk=5)
    torch.testing.assert_close(got, want)
