"""The config tree, loading from YAML with overrides, path resolution and the generated reference."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError

from driftloop.config.augment import (
    AugmentConfig,
)
from driftloop.config.base import _Section
from driftloop.config.data import (
    BalanceConfig,
    CleanConfig,
    DataConfig,
    DemoDataConfig,
    ProjectConfig,
    ValidationConfig,
    WeakLabelConfig,
)
from driftloop.config.model import (
    EvaluateConfig,
    GoldRowsConfig,
    PromotionConfig,
    ReviewConfig,
    SelfTrainConfig,
)
from driftloop.config.service import (
    DriftConfig,
    IngestConfig,
    ReportConfig,
    RuntimeConfig,
    ServiceConfig,
    TrackingConfig,
)
from driftloop.config.train import METHOD_CLASSES, LoraTrainConfig, TrainConfig, TrainMethodConfig, methods_of
from driftloop.errors import ConfigError


class DriftloopConfig(_Section):
    """Root of the config tree."""

    project: ProjectConfig = Field(default_factory=ProjectConfig)
    data: DataConfig
    demo: DemoDataConfig = Field(default_factory=DemoDataConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    weak_label: WeakLabelConfig
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    train: TrainMethodConfig = Field(default_factory=LoraTrainConfig)
    self_train: SelfTrainConfig = Field(default_factory=SelfTrainConfig)
    gold_rows: GoldRowsConfig = Field(default_factory=GoldRowsConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    def resolved(self) -> dict[str, Any]:
        """The config as plain JSON-able data, every default filled in, credentials in URLs masked: what is written
        to files and logs (config.yaml, show-config, MLflow params, the model folder)."""
        from driftloop.redact import redact

        return redact(self.model_dump(mode="json"))

    def section_hash(self, *sections: str) -> str:
        """Stable hash of some top-level sections (all when none given), for naming artifacts."""
        data = self.model_dump(mode="json")
        picked = {k: data[k] for k in (sections or sorted(data))}
        return _hash_json(picked)

    @property
    def config_hash(self) -> str:
        return self.section_hash()

    @property
    def root(self) -> Path:
        return self.project.root


def _hash_json(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form a.b=value")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {item!r} has an empty key")
    # YAML parsing gives numbers, booleans, null and lists their natural types.
    return path, yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b=c`` override set."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    tags = {m for cls in METHOD_CLASSES for m in methods_of(cls)}
    for e in err.errors():
        loc = list(e["loc"])
        if loc[:1] == ["train"] and len(loc) > 2 and loc[1] in tags:
            del loc[1]  # the union member pydantic tried (train.method's value), not a key the user wrote
        field = ".".join(str(p) for p in loc) or "<root>"
        got = e.get("input")
        got_txt = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {field}: {e['msg']}{got_txt}")
    lines.append("Fix the field in the YAML file or with --set FIELD=VALUE.")
    return "\n".join(lines)


def from_dict(data: dict[str, Any], source: str = "<dict>", base_dir: str | Path | None = None) -> DriftloopConfig:
    """Validate a config tree; with ``base_dir``, relative paths in it become absolute against that folder."""
    try:
        cfg = DriftloopConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None
    if base_dir is not None:
        try:
            resolve_paths(cfg, Path(base_dir))
        except ValidationError as err:
            raise ConfigError(_format_errors(err, source)) from None
    return cfg


# Model fields hold a name (hub id, packaged alias) unless the value is written as a path.
_MODEL_FIELDS = (
    "augment.back_translation.forward_model",
    "augment.back_translation.backward_model",
    "augment.paraphrase.model",
    "augment.filter.embedding_model",
    "train.model",
)


_LOCAL_PREFIXES = ("./", "../", "~", ".\\", "..\\")


def is_path_spec(lf_module: str) -> bool:
    """Whether ``weak_label.lf_module`` names a file (else a dotted module)."""
    return lf_module.endswith(".py") or "/" in lf_module or "\\" in lf_module


def resolve_paths(cfg: DriftloopConfig, base_dir: Path) -> DriftloopConfig:
    """Make every relative path of ``cfg`` absolute against ``base_dir``, in place (see the module docstring)."""
    base_dir = Path(base_dir).expanduser().resolve()

    def absolute(value: str | Path) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base_dir / path).resolve()

    def walk(section: BaseModel) -> None:
        for name, info in type(section).model_fields.items():
            value = getattr(section, name)
            if isinstance(value, BaseModel):
                walk(value)
            elif isinstance(value, Path) and (info.annotation is Path or Path in get_args(info.annotation)):
                setattr(section, name, absolute(value))

    walk(cfg)
    if is_path_spec(cfg.weak_label.lf_module):
        cfg.weak_label.lf_module = str(absolute(cfg.weak_label.lf_module))
    for dotted in _MODEL_FIELDS:
        *parents, name = dotted.split(".")
        section = cfg
        for part in parents:
            section = getattr(section, part)
        value = getattr(section, name)
        if value.startswith(_LOCAL_PREFIXES):
            setattr(section, name, str(absolute(value)))
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> DriftloopConfig:
    """Load a YAML config, apply ``a.b=c`` overrides, validate the whole tree and make its paths absolute.

    Relative paths, in the file or in ``overrides``, are relative to the config file's folder. A command parses its
    config once: the CLI validates it before Prefect starts, and the flow it runs gets the same object back (the
    cache is keyed on the file's path and text and the overrides, so an edited file is parsed again). Treat the
    result as read-only; derive a changed one with ``model_copy(update=...)``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist; pass --config configs/<name>.yaml, or run `driftloop init` "
            f"to copy the demo config (configs/sms_spam.yaml) into this folder"
        )
    return _parse(str(path.absolute()), path.read_text(encoding="utf-8"), tuple(overrides or []))


@functools.lru_cache(maxsize=16)
def _parse(path: str, text: str, overrides: tuple[str, ...]) -> DriftloopConfig:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return from_dict(apply_overrides(data, list(overrides)), source=path, base_dir=Path(path).parent)


def reference_rows(model: type[BaseModel] = DriftloopConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted field, default, description) for every leaf field of the tree, in declaration order."""
    rows: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = info.annotation
        if model is DriftloopConfig and name == "train":
            rows += _train_rows(f"{path}.")
            continue
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            rows += reference_rows(annotation, f"{path}.")
            continue
        if info.is_required():
            default = "required"
        else:
            value = info.get_default(call_default_factory=True)
            value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            if isinstance(value, list) and value and isinstance(value[0], BaseModel):
                value = f"{len(value)} items"
            default = json.dumps(value, default=str)
        rows.append((path, default, info.description or ""))
    return rows


def _train_rows(prefix: str) -> list[tuple[str, str, str]]:
    """The shared train keys, then each method's own keys once, naming the methods that read them."""
    rows = [row for row in reference_rows(TrainConfig, prefix) if row[0] != f"{prefix}method"]
    rows.insert(2, (f"{prefix}method", '"lora"', TrainConfig.model_fields["method"].description or ""))
    seen: dict[str, list[str]] = {}
    own: dict[str, tuple[str, str]] = {}
    for cls in METHOD_CLASSES:
        for path, default, description in reference_rows(cls, prefix):
            key = path.removeprefix(prefix)
            if key in TrainConfig.model_fields:
                continue
            seen.setdefault(key, []).extend(methods_of(cls))
            own.setdefault(key, (default, description))
    for key, methods in seen.items():
        default, description = own[key]
        rows.append((f"{prefix}{key}", default, f"({', '.join(methods)} only) {description}"))
    return rows


def reference_markdown() -> str:
    """The README's configuration table: every field, its default and its meaning."""
    lines = ["| field | default | meaning |", "|---|---|---|"]
    for path, default, description in reference_rows():
        default = default if len(default) <= 60 else default[:57] + "..."
        cell = lambda s: s.replace("|", "\\|")  # noqa: E731
        lines.append(f"| `{path}` | `{cell(default)}` | {cell(description)} |")
    return "\n".join(lines)
