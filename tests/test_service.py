"""The service path for real: a Prefect server, `driftloop serve`, a dropped file, a retrain."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from driftloop.tasks.demo_data import read_sms_corpus, split_demo

pytestmark = pytest.mark.integration

SMALL = [
    "demo.gold_dev_size=200",
    "demo.gold_test_size=200",
    "demo.n_later_batches=1",
    "demo.later_batch_size=150",
    "validation.min_rows=100",
    "validation.build_data_docs=false",
    "drift.watch_interval_s=5",
    # The service mechanics are under test here; the model stages have their own flow test.
    "augment.enabled=false",
    "train.enabled=false",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None):
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def _wait(predicate, timeout: float, what: str, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{what}: a process exited early with {p.returncode}")
        try:
            result = predicate()
            if result:
                return result
        except OSError:
            pass
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(lambda: _get(f"{env['PREFECT_API_URL']}/health") is True, 120, "the Prefect server", [proc])
        yield env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_dropped_file_triggers_a_retrain(server, project):
    cfg_path = project / "config.yaml"
    parts = split_demo(
        read_sms_corpus().sample(2000, random_state=0),
        __import__("driftloop.config", fromlist=["load_config"]).load_config(cfg_path, SMALL).demo,
        seed=42,
    )
    incoming = project / "data" / "incoming"
    cli = [sys.executable, "-m", "driftloop.flows.cli", "serve", "--config", str(cfg_path)] + [
        a for s in SMALL for a in ("--set", s)
    ]
    log = open(project / "serve.log", "w")
    proc = subprocess.Popen(cli, env=server, cwd=project, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        api = server["PREFECT_API_URL"]
        _wait(lambda: len(_get(f"{api}/deployments/filter", {})) == 3, 120, "three deployments", [proc])
        # New data lands: the watcher ingests it, emits driftloop.data.landed, the trigger runs the pipeline.
        for name in ("gold_dev", "gold_test", "pool"):
            parts[name].to_csv(incoming / f"sms_{name}.csv", index=False)

        def finished_retrain():
            runs = _get(
                f"{api}/flow_runs/filter",
                {"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}},
            )
            deployments = {d["id"]: d["name"] for d in _get(f"{api}/deployments/filter", {})}
            return [r for r in runs if deployments.get(r["deployment_id"]) == "retrain-on-new-data"]

        (run,) = _wait(finished_retrain, 240, "a retrain-on-new-data flow run", [proc])[:1]
        assert run["state"]["type"] == "COMPLETED", (project / "serve.log").read_text()[-3000:]
        summaries = [json.loads(p.read_text()) for p in (project / "runs").glob("*/summary.json")]
        assert any(s["status"] == "succeeded" for s in summaries)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
