"""The documented work-pool set-up, run as written against a real Prefect server, up to a process worker that
completes a retrain. The commands are read from prefect.yaml's header, which the docs quote."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.tasks.landing import ingest_paths
from tests.prefect_server import PrefectServer, kill_group, wait_for
from tests.test_service import SMALL, demo_parts, summaries

pytestmark = pytest.mark.server
REPO = Path(__file__).resolve().parents[1]


def documented_commands() -> list[list[str]]:
    """The one-machine block of prefect.yaml's header: every `prefect ...` line before the Kubernetes part."""
    header = (REPO / "prefect.yaml").read_text(encoding="utf-8").split("# Kubernetes", 1)[0]
    return [shlex.split(line) for line in re.findall(r"^#\s+(prefect .+)$", header, flags=re.M)]


def test_the_commands_are_the_ones_the_docs_give():
    commands = [" ".join(c) for c in documented_commands()]
    assert commands == [
        "prefect work-pool create driftloop-process --type process",
        "prefect --no-prompt deploy -n watch-incoming -n retrain -n drift-check",
        "prefect worker start --pool driftloop-process",
    ]
    docs = "\n".join(p.read_text(encoding="utf-8") for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    for command in commands:
        assert command in docs, f"the docs should give the work-pool command as prefect.yaml does: {command}"


def test_a_process_worker_runs_the_deployed_retrain(tmp_path, project):
    cfg_path = project / "configs" / "sms_spam.yaml"
    # A checkout's layout: prefect.yaml and the flow entrypoints beside configs/ and data/.
    shutil.copy(REPO / "prefect.yaml", project / "prefect.yaml")
    shutil.copytree(REPO / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    cfg = load_config(cfg_path, SMALL)
    catalog = Catalog.from_config(cfg)
    parts = demo_parts(cfg_path)
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(catalog.incoming_dir / f"sms_{name}.csv", index=False)
    # Taken in before the worker starts, so the watcher finds nothing new and starts no run of its own.
    ingest_paths(catalog, cfg)

    server = PrefectServer(tmp_path).start()
    env = {**server.env, "DRIFTLOOP_HOME": str(project)}
    *setup, worker_cmd = documented_commands()
    for command in setup:
        done = subprocess.run(
            [sys.executable, "-m", *command], env=env, cwd=project, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "will not be deployed" not in done.stdout + done.stderr
    assert sorted(server.deployments().values()) == ["drift-check", "retrain", "watch-incoming"]

    # The deployment's own trigger waits for an event; here the run is asked for directly, on small settings.
    params = json.dumps({"config_path": "configs/sms_spam.yaml", "overrides": SMALL})
    run = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", "driftloop-retrain/retrain", "--params", params],
        env=env, cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "-m", *worker_cmd], env=env, cwd=project, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        finished = wait_for(
            lambda: [r for r in server.flow_runs(deployment="retrain") if r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED")],
            420, "the retrain on the process worker", [worker],
        )  # fmt: skip
        assert [r["state"]["type"] for r in finished] == ["COMPLETED"], (tmp_path / "worker.log").read_text()[-4000:]
        assert [s["status"] for s in summaries(project)] == ["succeeded"]
    finally:
        kill_group(worker)
        log.close()
        server.stop()
