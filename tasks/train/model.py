"""Building the model for a training method: tokenizer, base model, PEFT adapter, 4-bit quantisation.

:data:`METHODS` is the method table: one :class:`TrainMethod` entry per ``train.method``. It says
how the method is built (its PEFT config, whether the base is quantised, whether it is a frozen
encoder with a head), saved, loaded, fitted, and what runs instead where it cannot run. Adding a
method is one entry here plus its name in ``TrainConfig.method`` and in the config class that holds
its own keys (driftloop/config/train.py; tests/test_train.py checks that they agree).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from driftloop.config import IA3TrainConfig, LoraTrainConfig, PromptTrainConfig, TrainConfig
from driftloop.errors import DeviceUnavailableError
from driftloop.resources import resolve_model
from driftloop.tasks.train.classifier import MeanPoolClassifier

log = logging.getLogger("driftloop.train")

# Classification-head attribute names across architectures (BERT-likes: classifier, decoder LMs: score).
HEAD_NAMES = ("classifier", "score")


# ---------------------------------------------------------------------------------------------
# PEFT configs, one builder per family; ``extra`` is the modules trained in full beside the adapter
# ---------------------------------------------------------------------------------------------
def _lora(cfg: LoraTrainConfig, extra: list[str] | None) -> Any:
    import peft

    return peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        # Every linear layer of the encoder (not the head): on the demo, query/value only (PEFT's
        # BERT default) scored macro-F1 0.959 against 0.969 for all-linear at 4x the adapter size.
        target_modules=cfg.target_modules if cfg.target_modules is not None else "all-linear",
        modules_to_save=extra,
    )


def _ia3(cfg: IA3TrainConfig, extra: list[str] | None) -> Any:
    import peft

    # Explicit target modules carry no feed-forward set: IA3 then scales their outputs.
    ff = [] if cfg.target_modules is not None else None
    return peft.IA3Config(
        task_type=peft.TaskType.SEQ_CLS,
        target_modules=cfg.target_modules,
        feedforward_modules=ff,
        modules_to_save=extra,
    )


def _prompt_tuning(cfg: PromptTrainConfig, extra: list[str] | None) -> Any:
    import peft

    return peft.PromptTuningConfig(
        task_type=peft.TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens, modules_to_save=extra
    )


def _prefix_tuning(cfg: PromptTrainConfig, extra: list[str] | None) -> Any:
    import peft

    return peft.PrefixTuningConfig(
        task_type=peft.TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens, modules_to_save=extra
    )


def _p_tuning(cfg: PromptTrainConfig, extra: list[str] | None) -> Any:
    import peft

    return peft.PromptEncoderConfig(
        task_type=peft.TaskType.SEQ_CLS,
        num_virtual_tokens=cfg.num_virtual_tokens,
        encoder_hidden_size=128,
        modules_to_save=extra,
    )


@dataclass(frozen=True)
class TrainMethod:
    """One row of the method table.

    Attributes:
        name: the ``train.method`` value.
        kind: ``adapter`` (a PEFT adapter over a sequence classifier; saved as the adapter),
            ``full`` (every weight trained; saved as the whole model), ``feature`` (frozen encoder,
            mean pooling and a linear head fitted by logistic regression, no gradient loop).
        peft_config: builds the PEFT config from the train section (adapter methods only).
        quantized: the base model is loaded in 4-bit NF4 (needs CUDA and bitsandbytes).
        needs_cuda_else: the method to run instead where no CUDA GPU is present (None: runs anywhere).
    """

    name: str
    kind: Literal["adapter", "full", "feature"]
    peft_config: Callable[[Any, list[str] | None], Any] | None = None  # takes the method's own config class
    quantized: bool = False
    needs_cuda_else: str | None = None

    @property
    def is_adapter(self) -> bool:
        return self.kind == "adapter"


METHODS: dict[str, TrainMethod] = {
    m.name: m
    for m in (
        TrainMethod("lora", "adapter", _lora),
        TrainMethod("qlora", "adapter", _lora, quantized=True, needs_cuda_else="lora"),
        TrainMethod("full", "full"),
        TrainMethod("feature", "feature"),
        TrainMethod("prompt_tuning", "adapter", _prompt_tuning),
        TrainMethod("prefix_tuning", "adapter", _prefix_tuning),
        TrainMethod("p_tuning", "adapter", _p_tuning),
        TrainMethod("ia3", "adapter", _ia3),
    )
}
ADAPTER_METHODS = tuple(name for name, m in METHODS.items() if m.is_adapter)


def method_spec(name: str) -> TrainMethod:
    """The table entry for ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"train.method {name!r} is not in the method table; choose one of {sorted(METHODS)}") from None


def resolve_method(cfg: TrainConfig, device: torch.device) -> tuple[str, str | None]:
    """The method that will actually run here, and why it differs from ``cfg.method`` (or None)."""
    spec = method_spec(cfg.method)
    if spec.needs_cuda_else is None or device.type == "cuda":
        return cfg.method, None
    fallback = spec.needs_cuda_else
    reason = f"train.method {cfg.method} needs a CUDA GPU (4-bit NF4 training only pays off there); none is available"
    if cfg.strict:
        raise DeviceUnavailableError(
            f"{reason}; train.strict is true, so the run stops. Set train.method={fallback} or run on a GPU."
        )
    log.warning("%s: falling back to train.method=%s (set train.strict=true to fail instead)", reason, fallback)
    return fallback, f"{reason}; fell back to {fallback}"


def build_qlora_quantization() -> Any:
    """4-bit NF4 with double quantisation and bf16 compute; classification heads stay unquantised."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
        # A 4-bit head cannot take gradients; both common head names are listed (absent ones are ignored).
        llm_int8_skip_modules=list(HEAD_NAMES),
    )


def build_peft_config(cfg: TrainConfig, method: str, model: nn.Module | None = None) -> Any:
    """The PEFT config for ``method`` (None for full and feature).

    ``model`` lets the default ``modules_to_save`` find a pooler.
    """
    spec = method_spec(method)
    if spec.peft_config is None:
        return None
    if cfg.modules_to_save is not None:
        extra_modules = list(cfg.modules_to_save) or None
    else:
        # BERT-style heads read the pooler (dense + tanh over [CLS]); sentence encoders such as
        # all-MiniLM-L6-v2 were trained with mean pooling, so their pooler must adapt too.
        has_pooler = model is not None and any(n.split(".")[-1] == "pooler" for n, _ in model.named_modules())
        extra_modules = ["pooler"] if has_pooler else None
    return spec.peft_config(cfg, extra_modules)


def load_tokenizer(path: str) -> Any:
    """The tokenizer at ``path``, with a pad token (EOS where the model has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        # Decoder-only LMs ship without a pad token; EOS is the usual stand-in for classification.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def classifier_kwargs(labels: Sequence[str], pad_token_id: int | None) -> dict[str, Any]:
    """``from_pretrained`` arguments that give a sequence classifier our label set and pad token."""
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
        "pad_token_id": pad_token_id,
    }


@contextlib.contextmanager
def quiet_load_report() -> Iterator[None]:
    """Drop transformers' LOAD REPORT table (the expected fresh head, shown for every fit and load)."""
    # A filter, not a level: raising this logger's level makes transformers run (and log) its
    # tensor-parallel plan check instead.
    logger = logging.getLogger("transformers.modeling_utils")
    drop_report = lambda record: "LOAD REPORT" not in record.getMessage()  # noqa: E731
    logger.addFilter(drop_report)
    try:
        yield
    finally:
        logger.removeFilter(drop_report)


def quantized_load_kwargs(device: torch.device) -> dict[str, Any]:
    """``from_pretrained`` arguments that load the base in 4-bit NF4 on ``device`` (a CUDA GPU)."""
    return {
        "quantization_config": build_qlora_quantization(),
        "dtype": torch.bfloat16,
        "device_map": {"": device.index or 0},
    }


def _log_new_weights(missing: Sequence[str]) -> None:
    # The head is new by design; any other weight missing from the checkpoint means the base does not
    # match its architecture (a wrong folder, a truncated download) and starts from random numbers.
    head = sorted(k for k in missing if k.split(".")[0] in HEAD_NAMES)
    other = sorted(k for k in missing if k.split(".")[0] not in HEAD_NAMES)
    if head:
        log.info("new classification head (trained from scratch): %s", ", ".join(head))
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        log.warning(
            "%d base weights are not in the checkpoint and start random: %s (check that train.model is the model "
            "you meant and that its folder is complete)",
            len(other),
            shown,
        )


def build_model(
    cfg: TrainConfig, labels: Sequence[str], method: str, device: torch.device, base_path: str | None = None
) -> tuple[nn.Module, Any]:
    """Load tokenizer + sequence classifier for ``method`` (adapter attached, head fresh)."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    spec = method_spec(method)
    base_path = base_path or resolve_model(cfg.model)
    tokenizer = load_tokenizer(base_path)
    kwargs: dict[str, Any] = {}
    if cfg.attn_implementation != "auto":
        kwargs["attn_implementation"] = cfg.attn_implementation
    if spec.kind == "feature":
        encoder = AutoModel.from_pretrained(base_path, **kwargs)
        encoder.requires_grad_(False)
        head = nn.Linear(encoder.config.hidden_size, len(labels))
        return MeanPoolClassifier(encoder, head).to(device), tokenizer
    kwargs.update(classifier_kwargs(labels, tokenizer.pad_token_id))
    if spec.quantized:
        kwargs.update(quantized_load_kwargs(device))
    with quiet_load_report():
        model, info = AutoModelForSequenceClassification.from_pretrained(base_path, output_loading_info=True, **kwargs)
    _log_new_weights(info["missing_keys"])
    if spec.quantized:
        import peft

        model = peft.prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    else:
        if cfg.gradient_checkpointing:
            # transformers >= 5.23 calls it activation checkpointing (the old name warns).
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable({"use_reentrant": False})
        model.to(device)
    peft_config = build_peft_config(cfg, method, model)
    if peft_config is not None:
        import peft

        model = peft.get_peft_model(model, peft_config)
    return model, tokenizer


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; 4-bit weights count as their unpacked size."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return tuple(int(x) for x in model.get_nb_trainable_parameters())  # type: ignore[return-value]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(trainable), int(sum(p.numel() for p in model.parameters()))
