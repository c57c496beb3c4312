"""One envelope for every benchmark result: ``bench/results/<stem>.json``, written atomically.

    {"schema": 1, "title": ..., "command": "python -m bench.bench_x --flag", "commit": "<sha>[+dirty]" | null,
     "date": "<UTC ISO>", "machine": {"platform", "processor", "cpu_count", "python", "torch", "gpu", ...},
     "results": {...the benchmark's own payload...}}

A ``--quick`` run writes ``<stem>.quick.json`` (git-ignored), so a smoke run never replaces a committed result.
``python -m bench.results`` renders every committed file into bench/RESULTS.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from driftloop.atomic import write_json

SCHEMA = 1
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
ENVELOPE_KEYS = ("schema", "title", "command", "commit", "date", "machine", "results")


def result_path(stem: str, *, quick: bool = False, results_dir: Path = RESULTS_DIR) -> Path:
    return results_dir / f"{stem}{'.quick' if quick else ''}.json"


def command_line(argv: list[str] | None = None) -> str:
    """The command that is running, as a reader would type it: ``python -m bench.bench_x --flag value``."""
    argv = sys.argv if argv is None else argv
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None and spec.name else f"python {argv[0]}"
    return " ".join([program, *(shlex.quote(a) for a in argv[1:])])


def git_commit(repo: Path = REPO) -> str | None:
    """HEAD's sha, with ``+dirty`` when tracked files differ from it; None outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("+dirty" if dirty else "")


@cache
def machine_info() -> dict[str, Any]:
    """Where the benchmark ran: the same fields for every benchmark (a bench adds its own via ``machine=``)."""
    try:
        torch_version: str | None = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    gpu = None
    if torch_version is not None:
        from driftloop.hardware import cuda_available

        if cuda_available():
            import torch

            gpu = torch.cuda.get_device_name(0)
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch_version,
        "gpu": gpu,
    }


def envelope(results: Any, *, title: str, command: str | None = None, machine_extra: dict | None = None) -> dict:
    return {
        "schema": SCHEMA,
        "title": title,
        "command": command or command_line(),
        "commit": git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info(), **(machine_extra or {})},
        "results": results,
    }


def write_result(
    stem: str,
    results: Any,
    *,
    title: str,
    quick: bool = False,
    path: Path | None = None,
    command: str | None = None,
    machine: dict | None = None,
    results_dir: Path = RESULTS_DIR,
) -> Path:
    """Write ``results`` in the envelope to ``results_dir/<stem>[.quick].json`` (or ``path``): temp file + rename.

    Args:
        stem: the file's name and its anchor in bench/RESULTS.md (``lfs``, ``drift``, ...).
        results: the benchmark's own payload (JSON-serialisable; other values are written with ``str``).
        title: the section heading in bench/RESULTS.md.
        quick: a smoke run: ``<stem>.quick.json``, which git ignores.
        path: write here instead (a bench's ``--out``).
        command: the command to record; default: this process's ``sys.argv``.
        machine: extra machine facts for this bench (load average, thread counts, package versions).
    """
    target = path or result_path(stem, quick=quick, results_dir=results_dir)
    return write_json(target, envelope(results, title=title, command=command, machine_extra=machine))


def read_results(path: Path) -> dict[str, Any]:
    """The payload of a result file (``{}`` when it does not exist); a file from before the envelope is its payload."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["results"] if isinstance(data, dict) and "schema" in data else data
