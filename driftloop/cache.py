"""Cache keys that change when the code that produced the data changes.

A derived artifact is named by ``content_hash(step, inputs..., code_fingerprint(step modules))``. The
fingerprint hashes the source of the step's modules and of every ``driftloop`` module they import,
transitively, plus the driftloop version: an edit to ``tasks/clean.py`` (or to a helper it imports)
makes the next run miss the cache instead of silently reusing stale results. There is no
hand-bumped code version to forget.

Modules are found with ``importlib.util.find_spec`` and parsed with ``ast``; nothing is imported
here for its behaviour, so this core module stays below ``tasks/`` and ``flows/``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from driftloop import __version__

PACKAGE = "driftloop"


def code_fingerprint(modules: str | Iterable[str], files: Iterable[str | Path] = ()) -> str:
    """Hash of the source of ``modules`` (dotted names), the driftloop modules they import, and ``files``.

    ``files`` are extra sources that shape the output without being imported by name, such as a
    user's LF module given as a path.
    """
    names = [modules] if isinstance(modules, str) else list(modules)
    closure: set[str] = set()
    for name in names:
        closure |= _import_closure(name)
    digest = hashlib.sha256(__version__.encode())
    for name in sorted(closure):
        digest.update(name.encode() + b"\0" + _source(name) + b"\0")
    for path in sorted(str(Path(f).resolve()) for f in files):
        digest.update(path.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@cache
def _import_closure(name: str) -> frozenset[str]:
    """``name`` and every driftloop module reachable from it through imports."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or _origin(current) is None:
            continue
        seen.add(current)
        todo.extend(_driftloop_imports(current))
    return frozenset(seen)


@cache
def _origin(name: str) -> Path | None:
    parent = name.rpartition(".")[0]
    if parent:  # `pkg.module.Name` is an attribute, not a module: never import a module to find out
        parent_origin = _origin(parent)
        if parent_origin is None or parent_origin.name != "__init__.py":
            return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


@cache
def _source(name: str) -> bytes:
    origin = _origin(name)
    return origin.read_bytes() if origin else b""


def _driftloop_imports(name: str) -> list[str]:
    origin = _origin(name)
    tree = ast.parse(_source(name), filename=str(origin))
    is_package = origin is not None and origin.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append(base)
            # `from driftloop.tasks import clean` names a submodule, not an attribute.
            found += [f"{base}.{alias.name}" for alias in node.names]
    return [m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")]
