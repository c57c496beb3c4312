"""Benchmark: file drop -> retrain flow run started, with file-event watching vs the interval poll.

Run: ``python -m bench.bench_service [--drops 5] [--quick] [--no-postgres]``. Starts a real Prefect server and a
real ``driftloop serve`` (first with ``service.file_events=true``, then with it off and the poll every
``--poll-s`` seconds), lands one small batch at a time into data/incoming/ the way the README says
(write under a dot-name, then rename), and reads from the server when the retrain flow run started.
The server keeps its state in SQLite (Prefect's default); with PostgreSQL's binaries installed, event
watching is measured once more with the server on a throwaway PostgreSQL, as a production server runs.
The retrain's gate is set so that it ends with "nothing to do" at once (``service.min_new_rows`` is
huge): only the path from a landed file to a started retrain is measured, not a training.

Each latency is split into: drop -> ``driftloop.data.landed`` event (detection + stability wait +
ingest), event -> retrain run scheduled (debounce window), run created after its scheduled time (the
automation's own latency: on SQLite, Prefect's run-deployment action loses a write race with the trigger's
own bucket update and its client retries after a fixed 2 s back-off), scheduled -> Pending (runner poll),
Pending -> started (the flow-run process starting and importing the flow). Writes
``bench/results/service.json`` (``service.quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

from bench.record import write_result
from driftloop.atomic import write_json
from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.packaged import init_project
from driftloop.tasks.demo_data import read_sms_corpus, split_demo
from driftloop.tasks.landing import ingest_paths
from tests.prefect_server import (
    PG_BIN,
    PostgresUnavailable,
    PrefectServer,
    ThrowawayPostgres,
    call,
    kill_group,
    start_serve,
    wait_for,
)

GOAL_S = 5.0
ROLES = ("unlabelled", "gold_dev", "gold_test")
BASE = [
    "demo.gold_dev_size=200",
    "demo.gold_test_size=200",
    "demo.n_later_batches=1",
    "demo.later_batch_size=100",
    "validation.build_data_docs=false",
    "train.enabled=false",
    "augment.enabled=false",
    "service.min_new_rows=100000000",  # every retrain ends with "nothing to do": we time its start only
]


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def _sample(dropped: float, run: dict, pending: float | None, landed_at: list[float]) -> dict:
    """One drop's latency and its parts; the landed event is the first one at or after the drop."""
    landed = next((t for t in landed_at if t >= dropped), None)
    start, scheduled = _ts(run["start_time"]), _ts(run["expected_start_time"])
    return {
        "drop_to_start_s": round(start - dropped, 2),
        "drop_to_event_s": round(landed - dropped, 2) if landed else None,
        "event_to_scheduled_s": round(scheduled - landed, 2) if landed else None,
        "created_after_scheduled_s": round(_ts(run["created"]) - scheduled, 2),
        "scheduled_to_pending_s": round(pending - scheduled, 2) if pending else None,
        "pending_to_start_s": round(start - pending, 2) if pending else None,
    }


def measure(mode: str, drops: int, poll_s: int, workdir: Path, database: str = "sqlite") -> dict:
    project = workdir / f"{mode}-{database}"
    project.mkdir()
    init_project(project)
    cfg_path = project / "configs" / "sms_spam.yaml"
    overrides = [
        *BASE,
        f"service.file_events={'true' if mode == 'events' else 'false'}",
        f"service.watch_interval_s={3600 if mode == 'events' else poll_s}",
    ]
    cfg = load_config(cfg_path, overrides)
    catalog = Catalog.from_config(cfg)
    corpus = read_sms_corpus().sample(1200, random_state=1).reset_index(drop=True)
    parts = split_demo(corpus, cfg.demo, seed=0)
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(catalog.incoming_dir / f"sms_{name}.csv", index=False)
    ingest_paths(catalog, cfg)
    # A successful run on record, so that each drop goes through the ordinary "new data" gate.
    catalog.runs_dir.joinpath("seed").mkdir(parents=True)
    write_json(
        catalog.runs_dir / "seed" / "summary.json",
        {
            "run_id": "seed",
            "status": "succeeded",
            "finished_at": "2000-01-01T00:00:00+00:00",
            "data": {"snapshots": {r: [s.snapshot_id for s in catalog.snapshots(r)] for r in ROLES}},
        },
    )
    server = PrefectServer(workdir / f"server-{mode}-{database}")
    server.home.mkdir()
    postgres = ThrowawayPostgres() if database == "postgres" else None
    serve = None
    drops_runs: list[tuple[float, dict, float | None]] = []
    try:
        if postgres is not None:
            server.env["PREFECT_API_DATABASE_CONNECTION_URL"] = postgres.start().url
        server.start(timeout=180)
        client_env = {k: v for k, v in server.env.items() if k != "PREFECT_API_DATABASE_CONNECTION_URL"}
        serve = start_serve(project, cfg_path, overrides, client_env)
        wait_for(lambda: len(server.deployments()) == 3, 180, "three deployments", [serve])
        time.sleep(3)  # let the first poll tick (if any) pass
        for i in range(drops):
            batch = pd.DataFrame({"text": [f"batch {i} message {j} from {mode}" for j in range(20)]})
            tmp = catalog.incoming_dir / f".batch_{i}.csv"
            batch.to_csv(tmp, index=False)
            before = {r["id"] for r in server.flow_runs(deployment="retrain")}
            dropped = time.time()
            tmp.rename(catalog.incoming_dir / f"batch_{i}.csv")

            def started(before=before):
                new = [r for r in server.flow_runs(deployment="retrain") if r["id"] not in before]
                return [r for r in new if r["start_time"]]

            (run,) = wait_for(started, 180, f"{mode}: retrain after drop {i}", [serve], every=0.2)[:1]
            states = call(f"{server.api}/flow_run_states/?flow_run_id={run['id']}")
            pending = min((_ts(st["timestamp"]) for st in states if st["type"] == "PENDING"), default=None)
            drops_runs.append((dropped, run, pending))
            print(mode, database, i, f"drop -> start {_ts(run['start_time']) - dropped:.2f} s", flush=True)
            wait_for(
                lambda: all(r["state"]["type"] not in ("RUNNING", "PENDING") for r in server.flow_runs()),
                180,
                "runs to finish",
                [serve],
            )
        # The server persists events in batches: read them once all drops are done and matched by time.
        time.sleep(6)
        landed_at = sorted(_ts(e["occurred"]) for e in server.events("driftloop.data.landed"))
    finally:
        if serve is not None:
            kill_group(serve)
        server.stop()
        if postgres is not None:
            postgres.stop()
    samples = [_sample(dropped, run, pending, landed_at) for dropped, run, pending in drops_runs]
    lat = [s["drop_to_start_s"] for s in samples]
    return {
        "mode": mode,
        "database": database,
        "config": overrides,
        "debounce_s": cfg.service.debounce_s,
        "stable_s": cfg.ingest.stable_s,
        "runner_poll_s": cfg.service.runner_poll_s,
        "poll_interval_s": None if mode == "events" else poll_s,
        "median_drop_to_start_s": round(statistics.median(lat), 2),
        "max_drop_to_start_s": round(max(lat), 2),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drops", type=int, default=5, help="Files dropped per mode.")
    parser.add_argument("--poll-s", type=int, default=30, help="Poll interval of the fallback mode.")
    parser.add_argument("--quick", action="store_true", help="2 drops per mode; writes service.quick.json.")
    parser.add_argument("--no-postgres", action="store_true", help="Skip the event-watching run on PostgreSQL.")
    args = parser.parse_args()
    drops = 2 if args.quick else args.drops
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with tempfile.TemporaryDirectory(prefix="bench_service_") as tmp:
        events = measure("events", drops, args.poll_s, Path(tmp))
        poll = measure("poll", drops, args.poll_s, Path(tmp))
        if args.no_postgres or PG_BIN is None:
            on_postgres = {"skipped": "--no-postgres" if args.no_postgres else "PostgreSQL binaries not installed"}
        else:
            try:
                on_postgres = measure("events", drops, args.poll_s, Path(tmp), database="postgres")
            except PostgresUnavailable as err:  # the SQLite figures above are kept
                on_postgres = {"skipped": str(err)}
    result = {
        "what": "file drop -> retrain flow run started (server start_time), event-driven vs interval poll",
        "goal_s": GOAL_S,
        "events": events,
        "poll": poll,
        "events_postgres": on_postgres,
        "speedup_median": round(poll["median_drop_to_start_s"] / events["median_drop_to_start_s"], 2),
        "events_meets_goal": events["median_drop_to_start_s"] < GOAL_S,
        "events_postgres_meets_goal": on_postgres.get("median_drop_to_start_s", float("inf")) < GOAL_S,
    }
    title = "Service: file drop to retrain started, file events vs poll"
    out = write_result("service", result, title=title, quick=args.quick, machine={"load_avg_1m": os.getloadavg()[0]})
    print(result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
