"""Real processes for service and fault tests: a `prefect server start`, `driftloop serve`, and the REST calls
to watch them. Every wait is bounded; every process is started in its own session and killed by group."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None, timeout: float = 10) -> Any:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, procs=(), every: float = 1.0) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s or if a process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{what}: a process exited early with {p.returncode}")
        try:
            result = predicate()
            if result:
                return result
        except (OSError, urllib.error.URLError):
            pass  # the server is (re)starting
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


class PrefectServer:
    """A real Prefect server on a free port, with its own PREFECT_HOME (SQLite) under ``home``."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home / "prefect-home"),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        self.proc: subprocess.Popen | None = None
        self._logs: list = []

    def start(self, timeout: float = 120) -> PrefectServer:
        log = open(self.home / f"server-{len(self._logs)}.log", "w")
        self._logs.append(log)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: call(f"{self.api}/health") is True, timeout, "the Prefect server", [self.proc])
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            kill_group(self.proc, sig)
        for log in self._logs:
            log.close()
        self._logs.clear()

    # ---- what the server knows --------------------------------------------------------------
    def deployments(self) -> dict[str, str]:
        """deployment id -> name."""
        return {d["id"]: d["name"] for d in call(f"{self.api}/deployments/filter", {})}

    def flow_runs(self, deployment: str | None = None, flow: str | None = None) -> list[dict]:
        """Flow runs (of one deployment name, or one flow name), oldest first."""
        runs = call(f"{self.api}/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC", "limit": 200})
        if deployment is not None:
            ids = {i for i, n in self.deployments().items() if n == deployment}
            runs = [r for r in runs if r["deployment_id"] in ids]
        if flow is not None:
            flows = {f["id"]: f["name"] for f in call(f"{self.api}/flows/filter", {})}
            runs = [r for r in runs if flows.get(r["flow_id"]) == flow]
        return runs

    def events(self, event: str) -> list[dict]:
        body = {"filter": {"event": {"name": [event]}, "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 50}
        return call(f"{self.api}/events/filter", body)["events"]


def start_serve(project: Path, cfg_path: Path, overrides: list[str], env: dict, log_name: str = "serve.log"):
    """`driftloop serve` as a real process in ``project``; returns the Popen (its own session)."""
    cli = [sys.executable, "-m", "driftloop.flows.cli", "serve", "--config", str(cfg_path)]
    cli += [a for s in overrides for a in ("--set", s)]
    log = open(project / log_name, "a")
    return subprocess.Popen(cli, env=env, cwd=project, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def emit_events(env: dict, events: list[tuple[str, str]]) -> None:
    """Emit (event, resource id) pairs from a separate real process, as another client would."""
    code = (
        "import sys, json\n"
        "from prefect.events import emit_event\n"
        "for name, rid in json.loads(sys.argv[1]):\n"
        "    emit_event(event=name, resource={'prefect.resource.id': rid})\n"
        "from prefect.events.worker import EventsWorker\n"
        "EventsWorker.drain_all()\n"
    )
    subprocess.run([sys.executable, "-c", code, json.dumps(events)], env=env, check=True, timeout=120)
