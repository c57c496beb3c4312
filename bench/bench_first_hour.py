"""Benchmark: a new user's first hour, timed from a fresh clone: `make demo` (install included), then `make test`.

Run: ``python -m bench.bench_first_hour [--baseline] [--skip-test]``. Clones this repository's HEAD into a
temporary folder (nothing of this checkout's .venv, data or caches comes along; pip's and driftloop's caches under
the home folder do, as on any machine that installed before), runs the commands there and records each one's
wall time. ``--baseline`` also times the pipeline on the previous demo defaults (three seeds, a self-training
round and the Gemma paraphraser) in the same clone, after the demo: the cost those defaults add. Writes
``bench/results/first_hour.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.record import write_result

REPO = Path(__file__).resolve().parents[1]
STEM, TITLE = "first_hour", "A new user's first hour: make demo and make test from a fresh clone"
GOALS_MIN = {"make demo": 6.0, "make test (after install)": 5.0}
PREVIOUS_DEMO = ["train.seeds=3", "self_train.enabled=true", "augment.paraphrase.enabled=true"]


def timed(command: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run ``command`` in ``cwd`` (output to ``log``); its wall time in minutes and exit code."""
    started = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
    minutes = round((time.perf_counter() - started) / 60, 2)
    tail = log.read_text(errors="replace").splitlines()[-3:]
    print(f"{' '.join(command)}: {minutes} min, exit {code}", flush=True)
    return {"command": " ".join(command), "minutes": minutes, "exit_code": code, "log_tail": tail}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true", help="Also time a run on the previous demo defaults.")
    parser.add_argument("--skip-test", action="store_true", help="Time make demo only.")
    args = parser.parse_args()
    results: dict[str, Any] = {"goals_minutes": GOALS_MIN, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="driftloop-first-hour-") as tmp:
        clone = Path(tmp) / "driftloop"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True)
        results["measured_commit"] = head.stdout.strip()  # what ran, even if this checkout moves on meanwhile
        results["runs"]["make demo"] = timed(["make", "demo"], clone, Path(tmp) / "demo.log")
        if args.baseline:
            run = [".venv/bin/driftloop", "run", "-c", "configs/sms_spam.yaml"]
            run += [a for s in PREVIOUS_DEMO for a in ("--set", s)]
            results["runs"]["previous demo defaults (pipeline only)"] = timed(run, clone, Path(tmp) / "previous.log")
        if not args.skip_test:
            # The demo installed everything: this is make test after install, as the goal reads.
            results["runs"]["make test (after install)"] = timed(["make", "test"], clone, Path(tmp) / "test.log")
    results["goals_met"] = {
        what: run["exit_code"] == 0 and run["minutes"] < GOALS_MIN[what]
        for what, run in results["runs"].items()
        if what in GOALS_MIN
    }
    path = write_result(STEM, results, title=TITLE)
    print(f"wrote {path}")
    return 0 if all(run["exit_code"] == 0 for run in results["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
