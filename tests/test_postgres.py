"""The Prefect server on PostgreSQL, for real: a throwaway Debian PostgreSQL (`initdb` in a temp folder, bound to
127.0.0.1 on a free port), `prefect server start` pointed at it with the README's connection setting, and one
watcher tick plus one retrain run against that server. Every wait is bounded; both servers are killed in teardown."""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.prefect_server import PrefectServer, free_port, kill_group, wait_for
from tests.test_service import SMALL, demo_parts


def _pg_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (the newest major version), or of an initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


PG_BIN = _pg_bin()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        PG_BIN is None, reason="PostgreSQL server binaries (initdb) not found: `make system-deps` installs postgresql"
    ),
]


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
                pytest.skip(
                    "running as root and there is no `postgres` user to run PostgreSQL as (initdb refuses root)"
                )
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


# A watcher tick (ingests the landed files) then the retrain gate, which trains the first model: the same two
# flows a served deployment runs, in a separate process that reaches the server only through PREFECT_API_URL.
FLOWS = """
import json, sys
from driftloop.flows.retrain import retrain, watch_incoming
cfg, overrides = sys.argv[1], json.loads(sys.argv[2])
tick = watch_incoming(config_path=cfg, overrides=overrides)
out = retrain(config_path=cfg, overrides=overrides)
print("RESULT " + json.dumps({"new": tick["new_snapshots"], "action": out["action"], "status": out.get("status")}))
"""


@pytest.fixture
def postgres():
    pg = ThrowawayPostgres()
    try:
        yield pg.start()
    finally:
        pg.stop()


def test_prefect_server_on_postgres_runs_a_retrain(postgres, project, tmp_path):
    from prefect.client.orchestration import SyncPrefectClient

    cfg_path = project / "configs" / "sms_spam.yaml"
    parts = demo_parts(cfg_path)
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(project / "data" / "incoming" / f"sms_{name}.csv", index=False)

    server = PrefectServer(tmp_path)
    server.env["PREFECT_API_DATABASE_CONNECTION_URL"] = postgres.url
    # Nothing may fall back to SQLite: the server's home gets no database file.
    try:
        t0 = time.monotonic()
        server.start(timeout=180)
        started_s = time.monotonic() - t0
        assert not list((tmp_path / "prefect-home").glob("*.db")), "the server created a SQLite database"
        env = {**server.env}
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL")  # the flows are clients: they know only the API URL
        res = subprocess.run(
            [sys.executable, "-c", FLOWS, str(cfg_path), json.dumps(SMALL)],
            env=env, cwd=project, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert res.returncode == 0, f"flows failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        result = json.loads(res.stdout.rsplit("RESULT ", 1)[1].splitlines()[0])
        assert len(result["new"]) == 3 and result["action"] == "train" and result["status"] == "succeeded"

        with SyncPrefectClient(server.api) as client:
            runs = {client.read_flow(r.flow_id).name: r for r in client.read_flow_runs()}
        for name in ("driftloop-watch-incoming", "driftloop-retrain", "driftloop-pipeline"):
            assert name in runs, f"no {name} run on the server: {sorted(runs)}"
            assert runs[name].state is not None and runs[name].state.type.value == "COMPLETED", runs[name].state
        # What the client read is what PostgreSQL holds.
        assert int(postgres.sql("SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'")) >= 3
        assert int(postgres.sql("SELECT count(*) FROM task_run")) > 0
        assert postgres.sql("SELECT to_regclass('public.alembic_version') IS NOT NULL") == "t"
        print(f"prefect server on postgres up in {started_s:.1f}s")
    finally:
        server.stop()
