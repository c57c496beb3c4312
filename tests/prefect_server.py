"""Real processes for service and fault tests: a `prefect server start`, `driftloop serve`, a throwaway PostgreSQL,
and the REST calls to watch them. Every wait is bounded; every process is started in its own session and killed by
group."""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
            # The documented set-up: concurrency leases on disk survive a server restart (docs/service.md).
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
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
        for r in runs:
            # A run read while it is being created has no state yet (the API allows null): count it as
            # pending, since it is about to be scheduled, rather than crash the caller's predicate.
            r["state"] = r["state"] or {"type": "PENDING", "name": "(no state yet)"}
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
    cli = [sys.executable, "-m", "driftloop.cli.main", "serve", "--config", str(cfg_path)]
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


def _pg_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (the newest major version), or of an initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


PG_BIN = _pg_bin()


class PostgresUnavailable(RuntimeError):
    """This machine cannot run a throwaway PostgreSQL (tests skip; benchmarks record why)."""


class ThrowawayPostgres:
    """A PostgreSQL cluster in a fresh temp folder, listening on 127.0.0.1 only, with password auth.

    PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` user that Debian's package creates.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.user, self.db = "prefect", "prefect"
        self.password = secrets.token_hex(12)
        self.proc: subprocess.Popen | None = None
        self._as: dict = {}
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no `postgres` user to run PostgreSQL as (initdb refuses root)"
                ) from None
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.dir = Path(tempfile.mkdtemp(prefix="driftloop-pg-"))
        self.data = self.dir / "data"
        if self._as:
            os.chown(self.dir, self._as["user"], self._as["group"])
        self.env = {**os.environ, "PGPASSWORD": self.password, "LC_ALL": "C.UTF-8"}

    @property
    def url(self) -> str:
        """The server's connection setting, in the form the README documents."""
        return f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.db}"

    def _run(self, *cmd: str, timeout: float = 60) -> str:
        res = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, **self._as)
        assert res.returncode == 0, f"{' '.join(cmd[:2])} failed ({res.returncode}): {res.stderr.strip()[-2000:]}"
        return res.stdout

    def start(self, timeout: float = 60) -> ThrowawayPostgres:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                  "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync", timeout=120)  # fmt: skip
        pwfile.unlink()
        self.log = open(self.dir / "postgres.log", "w")
        if self._as:
            os.chown(self.dir / "postgres.log", self._as["user"], self._as["group"])
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, **self._as,
        )  # fmt: skip
        wait_for(self._ready, timeout, "PostgreSQL to accept connections", [self.proc], every=0.5)
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.db)
        return self

    def _ready(self) -> bool:
        cmd = [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]
        return subprocess.run(cmd, env=self.env, capture_output=True, timeout=10).returncode == 0

    def sql(self, query: str) -> str:
        """One query through psql over TCP; the unaligned, tuples-only output."""
        cmd = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", self.db]
        return self._run(*cmd, "-XAtc", query).strip()

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
