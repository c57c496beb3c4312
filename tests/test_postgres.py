"""The Prefect server on PostgreSQL, for real: a throwaway Debian PostgreSQL (`initdb` in a temp folder, bound to
127.0.0.1 on a free port), `prefect server start` pointed at it with the README's connection setting, and one
watcher tick plus one retrain run against that server. Every wait is bounded; both servers are killed in teardown."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.prefect_server import PG_BIN, PostgresUnavailable, PrefectServer, ThrowawayPostgres
from tests.test_service import SMALL, demo_parts

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.server,
    pytest.mark.skipif(
        PG_BIN is None, reason="PostgreSQL server binaries (initdb) not found: `make system-deps` installs postgresql"
    ),
]


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
    try:
        pg = ThrowawayPostgres()
    except PostgresUnavailable as err:
        pytest.skip(str(err))
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
