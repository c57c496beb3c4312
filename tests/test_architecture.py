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


MAX_FUNCTION_LINES = 80
# Type names whose values are the run summary or one of its sections (driftloop/summary.py).
SUMMARY_TYPES = ("RunSummary", "DataFigures", "Validation", "WeakLabeling", "Artifacts", "Augmentation", "Balance")
SUMMARY_TYPES += ("Training", "SelfTraining", "Evaluation", "Baselines", "SeedBand", "Promotion")
SUMMARY_READERS = ("tasks/report", "flows", "cli")


def long_functions(path: Path, source: str | None = None) -> list[str]:
    """Functions (and methods) over MAX_FUNCTION_LINES lines, def line to last line, as 'file:line name (n)'."""
    source = path.read_text(encoding="utf-8") if source is None else source
    return [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def summary_gets(path: Path, source: str | None = None) -> list[str]:
    """``.get(`` calls on the run summary or anything read from it, in one module.

    A name holds the summary when a parameter is annotated with one of SUMMARY_TYPES, or when it is assigned an
    expression rooted at such a name (``weak = summary.weak_labeling``). The typed record states which fields may be
    missing (``None``), so a reader never guesses with ``.get(key, fallback)``.
    """
    source = path.read_text(encoding="utf-8") if source is None else source
    found = []
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]
        held = {
            a.arg
            for a in args
            if a.annotation is not None and any(t in ast.unparse(a.annotation) for t in SUMMARY_TYPES)
        }
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and _root(node.value) in held:
                held |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(func):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            if call and _root(node.func.value) in held:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node)[:80]}")
    return found


def test_no_function_over_80_lines():
    folders = (*LAYERS, "configs", "tests")
    long = [item for path in sources(*folders) for item in long_functions(path)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps):\n" + "\n".join(long)


def test_tasks_and_core_import_nothing_from_prefect():
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sources("driftloop", "tasks")
        for line, name in imported_names(path.read_text(encoding="utf-8"), module_name(path), False)
        if name == "prefect" or name.startswith("prefect.")
    ]
    assert not bad, "Prefect belongs in flows/ and deployments/:\n" + "\n".join(bad)


def test_the_run_summary_is_read_through_its_fields():
    bad = [item for path in sources(*SUMMARY_READERS) for item in summary_gets(path)]
    assert not bad, "read RunSummary fields as attributes (None means the stage did not run):\n" + "\n".join(bad)


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


def test_summary_get_checker():
    source = (
        "def f(summary: RunSummary, other: dict):\n"
        "    weak = summary.weak_labeling\n"
        "    a = summary.data.get('x')\n"
        "    b = weak.get('coverage', 0)\n"
        "    c = other.get('x')\n"
    )
    found = summary_gets(REPO / "tasks/report/x.py", source)
    assert [item.split(" ", 1)[1] for item in found] == ["summary.data.get('x')", "weak.get('coverage', 0)"]


def test_long_function_checker():
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    assert long_functions(REPO / "tasks/x.py", f"def f():\n{body}\n") == ["tasks/x.py:1 f (81 lines)"]
    assert long_functions(REPO / "tasks/x.py", "def f():\n    return 1\n") == []
