"""What every augmentation backend is: a class that loads once and rewrites batches of texts.

A backend subclasses :class:`Augmenter` and is made selectable by name with ``@register``; the
config picks it by that name (``augment.<method>.backend``). A backend outside driftloop needs no
registration: name it by dotted path, ``package.module:ClassName`` (or ``package.module.ClassName``),
as LF modules are named. Its settings come from ``augment.<method>.options``, validated against the
backend's pydantic ``Options`` model, so a typo fails at start-up with the field named.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ValidationError

from driftloop.errors import ConfigError, ResourceError

Method = Literal["back_translation", "paraphrase", "eda"]


@dataclass(frozen=True)
class Generation:
    """One candidate: the index of its source text in the batch, the text, per-candidate settings."""

    source: int
    text: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Runtime:
    """Where backends run and cache: a resolved device ("cpu"/"cuda") and the cache folder."""

    device: str = "cpu"
    cache_dir: Path | None = None


class Augmenter(abc.ABC):
    """A backend: loads its model once, then rewrites batches of texts.

    Subclasses set ``name`` and ``method``, and take ``(cfg, runtime)`` in ``__init__``: ``cfg`` is
    the method's config section. A backend with settings of its own declares ``Options``, a pydantic
    model; :meth:`parse_options` returns the section's ``options`` validated against it.
    """

    name: ClassVar[str]
    method: ClassVar[Method]
    Options: ClassVar[type[BaseModel] | None] = None  # typed settings read from ``options``
    takes_options: ClassVar[bool] = False  # reads ``options`` as a free-form dict (no Options model)
    model_id: str  # goes into the aug_model lineage column
    params: dict[str, Any]  # static settings, merged into aug_params

    @classmethod
    def parse_options(cls, cfg: Any) -> Any:
        """``cfg.options`` as this backend reads them: an ``Options`` instance, a dict, or None.

        Raises:
            ConfigError: the options do not fit ``Options``, or the backend takes none.
        """
        options = dict(getattr(cfg, "options", None) or {})
        where = f"augment.{cls.method}.options"
        if cls.Options is not None:
            unknown = sorted(set(options) - set(cls.Options.model_fields))
            if unknown:
                raise ConfigError(
                    f"{where}: backend {cls.name!r} has no option(s) {unknown}; "
                    f"allowed options: {sorted(cls.Options.model_fields)}"
                )
            try:
                return cls.Options.model_validate(options)
            except ValidationError as err:
                problems = "; ".join(f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
                raise ConfigError(
                    f"backend {cls.name!r}: {problems}; allowed options: {sorted(cls.Options.model_fields)}"
                ) from None
        if cls.takes_options:
            return options
        if options:
            raise ConfigError(f"{where}: backend {cls.name!r} takes no options, got {sorted(options)}; remove them")
        return None

    @abc.abstractmethod
    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        """Up to ``n`` candidates per text; a text may get fewer when its rewrite fails."""


_REGISTRY: dict[str, type[Augmenter]] = {}


def register(cls: type[Augmenter]) -> type[Augmenter]:
    """Class decorator: make a backend selectable by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"augmentation backend {cls.name!r} is already registered by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def registered_backends(method: Method | None = None) -> dict[str, Method]:
    """Registered backend names and the method each implements."""
    return {name: cls.method for name, cls in sorted(_REGISTRY.items()) if method in (None, cls.method)}


def _import_backend(method: Method, spec: str) -> type[Augmenter]:
    """The class a dotted path names: ``package.module:Class`` or ``package.module.Class``."""
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    where = f"augment.{method}.backend"
    if not module_name or not attr:
        raise ConfigError(f"{where}: {spec!r} is not a dotted path; write package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise ConfigError(
                f"{where}: module {module_name!r} not found; install it or put it on PYTHONPATH"
            ) from None
        raise ConfigError(f"{where}: module {module_name!r} failed to import: {err}") from err
    except Exception as err:
        raise ConfigError(f"{where}: module {module_name!r} failed to import: {type(err).__name__}: {err}") from err
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Augmenter)):
        raise ConfigError(
            f"{where}: {spec!r} is not an Augmenter subclass; point it at a class that subclasses "
            "driftloop.tasks.augment.backends.Augmenter"
        )
    return cls


def backend_class(method: Method, name: str) -> type[Augmenter]:
    """The backend ``name`` (registered name or dotted path), checked to implement ``method``."""
    cls = _REGISTRY.get(name)
    if cls is None and ("." in name or ":" in name):
        cls = _import_backend(method, name)
    if cls is None or cls.method != method:
        choices = sorted(registered_backends(method))
        raise ConfigError(
            f"augment.{method}.backend: unknown backend {name!r} for {method}; choose one of {choices} "
            "or give a dotted path package.module:ClassName"
        )
    return cls


def check_backend(method: Method, cfg: Any) -> type[Augmenter]:
    """The backend class the method's config section names, with its options checked (nothing loads)."""
    cls = backend_class(method, cfg.backend)
    cls.parse_options(cfg)
    return cls


def build_augmenter(method: Method, cfg: Any, runtime: Runtime) -> Augmenter:
    """Instantiate (and so load) the backend the method's config section names."""
    return check_backend(method, cfg)(cfg, runtime)


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return " ".join(str(text).split())


@contextlib.contextmanager
def python_seeded(seed: int) -> Iterator[None]:
    """Seed ``random`` and NumPy's global RNG for a block, restoring their state after (nlpaug uses both)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextlib.contextmanager
def torch_seeded(seed: int, device: str) -> Iterator[None]:
    """Seed torch sampling for a block without disturbing the caller's RNG streams."""
    import torch

    devices = [torch.cuda.current_device()] if device == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def load_error(kind: str, name_or_path: str, err: Exception) -> ResourceError:
    """The error for a model that cannot be loaded offline, saying what to give instead."""
    return ResourceError(
        f"cannot load the {kind} {name_or_path!r} offline ({type(err).__name__}: {err}); "
        "give a local folder (config.json + weights + tokenizer files) or a model already in the Hugging Face cache"
    )
