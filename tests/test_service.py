"""The service path for real: a Prefect server, `driftloop serve`, dropped files, debounced retrains."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from driftloop.catalog import Catalog
from driftloop.config import ServiceConfig, load_config
from driftloop.tasks.demo_data import read_sms_corpus, split_demo
from driftloop.tasks.landing import ingest_paths
from driftloop.tasks.retrain_gate import SnapshotInfo, plan_retrain
from tests.prefect_server import TERMINAL, PrefectServer, emit_events, kill_group, start_serve, wait_for
from tests.summaries import summary_of

SMALL = [
    "demo.gold_dev_size=200",
    "demo.gold_test_size=200",
    "demo.n_later_batches=2",
    "demo.later_batch_size=150",
    "validation.min_rows=100",
    "validation.build_data_docs=false",
    "weak_label.label_model.n_epochs=100",
    # Landing by file events; the poll is the fallback, kept long so that it is not what the test sees.
    "service.watch_interval_s=3600",
    "service.debounce_s=4",
    "ingest.stable_s=1",
    # The service mechanics are under test here; the model stages have their own tests.
    "augment.enabled=false",
    "train.enabled=false",
]
RETRAIN = "retrain"


@pytest.fixture
def server(tmp_path):
    srv = PrefectServer(tmp_path).start()
    try:
        yield srv
    finally:
        srv.stop()


def demo_parts(cfg_path: Path) -> dict:
    cfg = load_config(cfg_path, SMALL)
    return split_demo(read_sms_corpus().sample(1600, random_state=0), cfg.demo, seed=42)


def digests(folder: Path, pattern: str = "*") -> dict[str, str]:
    """sha256 of each file in ``folder`` (``pattern="*.parquet"`` in data/raw/: the snapshots, not the manifest)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern)) if p.is_file()}


def summaries(project: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((project / "runs").glob("*/summary.json"))]


def settled(server: PrefectServer, deployment: str, at_least: int):
    """All runs of the deployment terminal and at least ``at_least`` of them; else None."""
    runs = server.flow_runs(deployment=deployment)
    return runs if len(runs) >= at_least and all(r["state"]["type"] in TERMINAL for r in runs) else None


def stuck(server: PrefectServer) -> list[str]:
    """Runs left Running, Pending, Late or waiting for a concurrency slot (future scheduled ticks are fine)."""
    return [
        f"{r['name']} ({r['state']['name']})"
        for r in server.flow_runs()
        if r["state"]["type"] in ("RUNNING", "PENDING", "CANCELLING")
        or r["state"]["name"] in ("Late", "AwaitingConcurrencySlot", "AwaitingRetry")
    ]


def write_poison_folder(incoming: Path, outside: Path, pool) -> None:
    """One good pool file and the whole bad-input catalogue of issue 10, landed together."""
    pool.to_csv(incoming / "pool_good.csv", index=False)
    (incoming / "mixed.jsonl").write_text('{"text": "hello"}\n{"text": 5}\n')
    (incoming / "dup.csv").write_text("text,text\na,b\n")
    (incoming / "blank_gold_dev.csv").write_text("text,label\nhello,ham\n ,spam\nWIN,spam\n")
    (incoming / "bad.csv").write_text("text,label\na,ham,extra\n")
    (incoming / ("n" * 236 + ".csv")).write_text("text\n")
    (incoming / "big.csv").write_text("text\n" + "y" * 2_000_000 + "\n")
    secret = outside / "secret.csv"
    secret.write_text("text\nTOP-SECRET\n")
    (incoming / "link.csv").symlink_to(secret)


@pytest.mark.server
def test_poison_folder_then_a_burst_trains_once_per_batch(server, project, tmp_path_factory):
    cfg_path = project / "configs" / "sms_spam.yaml"
    overrides = [*SMALL, "ingest.max_file_mb=1"]
    cfg = load_config(cfg_path, overrides)
    catalog = Catalog.from_config(cfg)
    parts = demo_parts(cfg_path)
    incoming = catalog.incoming_dir
    # The gold sets were there before the service started.
    for name in ("gold_dev", "gold_test"):
        parts[name].to_csv(incoming / f"sms_{name}.csv", index=False)
    ingest_paths(catalog, cfg)
    proc = start_serve(project, cfg_path, overrides, server.env)
    try:
        wait_for(lambda: len(server.deployments()) == 3, 120, "three deployments", [proc])
        # 1. A poison folder: one snapshot, one event, the rest quarantined, a COMPLETED watcher run.
        write_poison_folder(incoming, tmp_path_factory.mktemp("outside"), parts["pool"])
        landed = wait_for(lambda: server.events("driftloop.data.landed"), 90, "a landed event", [proc])
        watch_runs = wait_for(
            lambda: [r for r in server.flow_runs(flow="driftloop-watch-incoming") if r["state"]["type"] in TERMINAL],
            60,
            "the watcher run",
            [proc],
        )
        assert [r["state"]["type"] for r in watch_runs] == ["COMPLETED"] * len(watch_runs)
        assert len(landed) == 1 and len(landed[0]["payload"]["snapshots"]) == 1
        assert len(catalog.snapshots("unlabelled")) == 1
        reasons = {
            json.loads(p.read_text())["source"].rsplit("/", 1)[-1]: json.loads(p.read_text())["reason"]
            for p in catalog.quarantine_dir.glob("*.reason.json")
        }
        assert set(reasons) == {"mixed.jsonl", "dup.csv", "blank_gold_dev.csv", "bad.csv", "n" * 236 + ".csv",
                                "big.csv", "link.csv"}  # fmt: skip
        assert "TOP-SECRET" not in json.dumps(reasons) and "outside incoming/" in reasons["link.csv"]
        raw_before = digests(catalog.raw_dir, "*.parquet")
        incoming_before = digests(incoming)

        # The debounced retrain trains on everything pending: the first model.
        wait_for(lambda: settled(server, RETRAIN, 1), 180, "the first retrain", [proc])
        assert [s["status"] for s in summaries(project)] == ["succeeded"]

        # 2. A batch is ingested, then 5 landed events and 1 drift event arrive in a burst:
        # exactly one more training, and no run FAILED.
        parts["batch_01"].to_csv(project / "batch_01.csv", index=False)
        ingest_paths(catalog, cfg, [project / "batch_01.csv"])
        landed_id, drift_id = f"driftloop.incoming.{cfg.project.name}", f"driftloop.drift.{cfg.project.name}"
        emit_events(server.env, [("driftloop.data.landed", landed_id)] * 5 + [("driftloop.drift.detected", drift_id)])
        runs = wait_for(lambda: settled(server, RETRAIN, 2), 180, "the burst's retrain", [proc])
        wait_for(lambda: [s["status"] for s in summaries(project)] == ["succeeded"] * 2, 30, "the second training",
                 [proc])  # fmt: skip
        every = server.flow_runs()
        assert [r["name"] for r in every if r["state"]["type"] in ("FAILED", "CRASHED")] == []
        assert [s["status"] for s in summaries(project)] == ["succeeded", "succeeded"]
        assert len(runs) <= 3  # one per debounce window, never one per event
        # Nothing is left Late, Pending or Running.
        assert stuck(server) == []
        # Raw data is byte-identical: snapshots and the landed files alike.
        assert {k: v for k, v in digests(catalog.raw_dir, "*.parquet").items() if k in raw_before} == raw_before
        assert digests(incoming) == incoming_before
    finally:
        kill_group(proc)


# ---- the retrain gate and the watcher's lock, without a server ---------------------------------------------

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
SNAPS = [
    SnapshotInfo("p1", "unlabelled", 500),
    SnapshotInfo("d1", "gold_dev", 100),
    SnapshotInfo("t1", "gold_test", 90),
]
LAST = summary_of(
    "r1",
    finished_at="2026-01-02T11:00:00+00:00",
    data={
        "raw_rows": 500,
        "gold_dev_rows": 100,
        "gold_test_rows": 90,
        "snapshots": {"unlabelled": ["p1"], "gold_dev": ["d1"], "gold_test": ["t1"]},
    },
)


@pytest.mark.parametrize(
    "snaps, last, service, action, words",
    [
        (SNAPS[:2], None, {}, "nothing", "no gold_test data yet"),
        (SNAPS, None, {}, "train", "first training"),
        (SNAPS, LAST, {}, "nothing", "no data landed since run r1"),
        ([*SNAPS, SnapshotInfo("p2", "unlabelled", 30)], LAST, {"min_new_rows": 50}, "nothing", "fewer than"),
        ([*SNAPS, SnapshotInfo("p2", "unlabelled", 30)], LAST, {"min_new_rows": 30}, "train", "30 new row(s)"),
        ([*SNAPS, SnapshotInfo("t2", "gold_test", 20)], LAST, {"min_new_rows": 50}, "train", "1 new labelled snapshot"),
        ([*SNAPS, SnapshotInfo("p2", "unlabelled", 80)], LAST, {"cooldown_s": 7200}, "defer", "cooldown"),
        ([*SNAPS, SnapshotInfo("p2", "unlabelled", 80)], LAST, {"cooldown_s": 1800}, "train", "80 new row(s)"),
    ],
)
def test_the_retrain_gate(snaps, last, service, action, words):
    plan = plan_retrain(snaps, last, NOW, ServiceConfig(**service))
    assert plan.action == action and words in plan.reason, plan.reason
    if action == "defer":
        assert plan.not_before == datetime(2026, 1, 2, 13, 0, tzinfo=UTC) and plan.pending == ["p2"]


def test_a_watcher_tick_never_overlaps_another(project):
    from driftloop.atomic import file_lock
    from driftloop.flows.retrain import watch_incoming

    cfg_path = project / "configs" / "sms_spam.yaml"
    catalog = Catalog.from_config(load_config(cfg_path))
    (catalog.incoming_dir / "pool.csv").write_text("text\nhello there\n")
    with file_lock(catalog.landing_lock_path):
        result = watch_incoming.fn(config_path=str(cfg_path))
    assert result["skipped"] is True and catalog.snapshots() == []


def test_a_second_serve_for_the_same_project_is_refused(project, monkeypatch):
    from driftloop.atomic import file_lock
    from driftloop.deployments.serve import serve_all

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never reached: the lock is checked first
    with file_lock(project / "data" / ".serve.lock"), pytest.raises(RuntimeError, match="already serving"):
        serve_all(str(project / "configs" / "sms_spam.yaml"))
