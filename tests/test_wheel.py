"""The built wheel installs one top-level package, ``driftloop``, and works outside the repository.

Offline and fast: the wheel is built from a copy of the sources with the venv's own setuptools (no build
isolation, so nothing is downloaded); a fresh venv gets only the wheel, and reaches the already installed
dependencies through a ``.pth`` line pointing at this venv's site-packages. That line adds the folder to
``sys.path`` without running the ``.pth`` files inside it, so the editable install of the checkout stays
inactive and every ``driftloop`` module, suite and config comes from the wheel.
"""

from __future__ import annotations

import csv
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCES = (
    "pyproject.toml",
    "README.md",
    "driftloop",
    "tasks",
    "flows",
    "cli",
    "deployments",
    "configs",
    "expectations",
)

pytestmark = pytest.mark.processes


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, its site-packages, an env for subprocesses) with the freshly built wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, src / name)
    dist = tmp / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)], tmp, env
    )
    (wheel,) = dist.glob("driftloop-*.whl")

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    purelib = Path(
        run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip()
    )
    (purelib / "_driftloop_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # pip comes from the dependencies' folder, but runs as the new venv's python: it installs there.
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-compile", str(wheel)], tmp, env)
    return venv, purelib, env


def test_wheel_adds_only_the_driftloop_package(installed):
    venv, purelib, _ = installed
    (dist_info,) = purelib.glob("driftloop-*.dist-info")
    with open(dist_info / "RECORD", newline="") as fh:
        paths = [row[0] for row in csv.reader(fh)]
    top_level = {p.split("/")[0] for p in paths if not p.startswith("..")}
    assert top_level == {"driftloop", dist_info.name}
    assert (dist_info / "top_level.txt").read_text().split() == ["driftloop"]
    for packaged in (
        "driftloop/expectations/raw_batch.json",
        "driftloop/expectations/training_set.json",
        "driftloop/configs/sms_spam.yaml",
        "driftloop/configs/lfs/sms_spam.py",
        "driftloop/tasks/clean.py",
        "driftloop/cli/main.py",
        "driftloop/deployments/serve.py",
        "driftloop/tasks/report/templates/run.html.j2",
        "driftloop/tasks/report/templates/style.css",
        "driftloop/tasks/report/templates/sort.js",
    ):
        assert packaged in paths, f"{packaged} missing from the wheel"
    assert (venv / "bin" / "driftloop").is_file()
    # Every module of the checkout ships: a subpackage missing from pyproject's `packages` list would not.
    installs_as = {
        "driftloop": "driftloop",
        "tasks": "driftloop/tasks",
        "flows": "driftloop/flows",
        "cli": "driftloop/cli",
    }
    installs_as |= {"deployments": "driftloop/deployments", "configs": "driftloop/configs"}
    expected = {
        f"{target}/{path.relative_to(REPO / folder).as_posix()}"
        for folder, target in installs_as.items()
        for path in (REPO / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    missing = sorted(expected - set(paths))
    assert not missing, "modules missing from the wheel (add their packages to pyproject.toml):\n" + "\n".join(missing)


def test_installed_cli_runs_outside_the_repository(installed, tmp_path):
    venv, purelib, env = installed
    driftloop = str(venv / "bin" / "driftloop")
    where = run([str(venv / "bin" / "python"), "-c", "import driftloop; print(driftloop.__file__)"], tmp_path, env)
    assert Path(where.stdout.strip()).is_relative_to(purelib)

    helped = run([driftloop, "--help"], tmp_path, env)
    assert "show-config" in helped.stdout and "init" in helped.stdout

    # No config here yet: the error says how to get one.
    missing = subprocess.run([driftloop, "show-config"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "driftloop init" in missing.stderr

    run([driftloop, "init"], tmp_path, env)
    shown = run([driftloop, "show-config"], tmp_path, env)
    resolved = yaml.safe_load(shown.stdout)
    assert Path(resolved["project"]["root"]) == tmp_path.resolve()
    assert Path(resolved["weak_label"]["lf_module"]) == tmp_path.resolve() / "configs" / "lfs" / "sms_spam.py"
    # The suites come from the installed package, not from the checkout.
    assert Path(resolved["validation"]["raw_suite"]) == purelib / "driftloop" / "expectations" / "raw_batch.json"
    assert "config_hash" in shown.stdout
