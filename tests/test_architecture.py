"""The layering of the package, read from the source with ``ast``: imports only point down; files stay small.

Layers, bottom to top: ``driftloop/`` core (config, catalog, atomic, errors, ...) < ``tasks/`` (step logic,
nothing from Prefect) < ``flows/`` (Prefect flows and their wiring) and ``deployments/`` (serving them) < ``cli/``
(the ``driftloop`` command, which starts flows and deployments). The folders install as ``driftloop.tasks`` etc.,
so a bare ``import tasks`` works in a checkout by accident and breaks in a wheel.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Folder -> (package it installs as, layer rank). A module may import only from its own rank or below.
LAYERS: dict[str, tuple[str, int]] = {
    "driftloop": ("driftloop", 0),
    "tasks": ("driftloop.tasks", 1),
    "flows": ("driftloop.flows", 2),
    "deployments": ("driftloop.deployments", 2),
    "cli": ("driftloop.cli", 3),
}
BARE_TOP_LEVEL = ("tasks", "flows", "deployments", "cli", "configs", "expectations")
SIZE_CHECKED = ("driftloop", "tasks", "flows", "deployments", "cli", "bench")
MAX_LINES = 600


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    """Dotted name a source file installs as: tasks/clean.py -> driftloop.tasks.clean."""
    relative = path.relative_to(REPO).with_suffix("")
    folder, *rest = relative.parts
    package = LAYERS[folder][0] if folder in LAYERS else folder
    parts = [p for p in rest if p != "__init__"]
    return ".".join([package, *parts])


def imported_names(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in ``source``, lazy and relative ones included.

    ``from a import b`` yields both ``a`` and ``a.b`` (b may be a submodule); ``import_module("x")``
    with a literal counts as an import of ``x``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "import_module" and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def rank_of(name: str) -> int | None:
    for package, rank in sorted(LAYERS.values(), key=lambda v: -len(v[0])):
        if name == package or name.startswith(package + "."):
            return rank
    return None


def upward_imports(path: Path, source: str | None = None) -> list[str]:
    """Imports in ``path`` of a layer above its own, as 'file:line imports name' strings."""
    source = path.read_text(encoding="utf-8") if source is None else source
    module = module_name(path)
    own = rank_of(module)
    bad: dict[tuple[int, str], str] = {}
    for line, name in imported_names(source, module, path.name == "__init__.py"):
        target = rank_of(name)
        # `from driftloop.tasks.clean import clean` is one upward import, not two.
        reported = any(at == line and name.startswith(seen + ".") for at, seen in bad)
        if target is not None and own is not None and target > own and not reported:
            bad[(line, name)] = f"{path.relative_to(REPO)}:{line} imports {name}"
    return list(bad.values())


def bare_imports(path: Path, source: str | None = None) -> list[str]:
    source = path.read_text(encoding="utf-8") if source is None else source
    return [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for line, name in imported_names(source, module_name(path), path.name == "__init__.py")
        if name.split(".")[0] in BARE_TOP_LEVEL
    ]


def test_imports_only_point_down():
    bad = [item for path in sources(*LAYERS) for item in upward_imports(path)]
    assert not bad, "imports that point up a layer (core < tasks < flows, deployments):\n" + "\n".join(bad)


def test_no_bare_top_level_package_imports():
    bad = [item for path in sources(*LAYERS, "configs", "bench", "tests") for item in bare_imports(path)]
    assert not bad, "import these as driftloop.tasks / driftloop.flows / ...:\n" + "\n".join(bad)


def test_no_source_file_over_600_lines():
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in sources(*SIZE_CHECKED)}
    big = [f"{p.relative_to(REPO)}: {n} lines" for p, n in sorted(sizes.items()) if n > MAX_LINES]
    assert not big, f"files over {MAX_LINES} lines (split them by idea):\n" + "\n".join(big)


# ---- the checker itself must catch what it is meant to catch ----------------------------------------------


@pytest.mark.parametrize(
    ("file", "source", "expected"),
    [
        ("driftloop/x.py", "from driftloop.tasks.clean import clean", ["driftloop.tasks.clean"]),
        ("driftloop/x.py", "def f():\n    import driftloop.cli.main", ["driftloop.cli.main"]),
        ("driftloop/x.py", "from driftloop import tasks", ["driftloop.tasks"]),
        ("driftloop/x.py", "from driftloop.deployments.serve import serve_all", ["driftloop.deployments.serve"]),
        ("tasks/x.py", "from driftloop.flows import steps", ["driftloop.flows"]),
        ("tasks/x.py", "from ..flows import steps", ["driftloop.flows"]),
        ("tasks/x.py", "importlib.import_module('driftloop.deployments.serve')", ["driftloop.deployments.serve"]),
        ("flows/x.py", "from driftloop.deployments.serve import serve_all", []),
        ("flows/x.py", "from driftloop.tasks.clean import clean\nfrom driftloop.config import load_config", []),
        ("tasks/x.py", "from . import clean\nfrom driftloop.errors import InputError", []),
        ("driftloop/x.py", "from driftloop.atomic import write_json", []),
    ],
)
def test_upward_import_checker(file, source, expected):
    found = upward_imports(REPO / file, source)
    assert [item.rsplit(" imports ", 1)[1] for item in found] == expected


def test_bare_import_checker():
    found = bare_imports(REPO / "flows/x.py", "import tasks.clean\nfrom flows.steps import x\nimport driftloop.tasks")
    assert [item.rsplit(" imports ", 1)[1] for item in found] == ["tasks.clean", "flows.steps", "flows.steps.x"]
