"""Crash and fault tests with real processes: SIGKILL mid-write and mid-training, a Prefect server that
dies during a served retrain, a serve process that dies and leaves its runs behind. Each is bounded in time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.tasks.landing import ingest_paths
from tests.prefect_server import TERMINAL, PrefectServer, emit_events, kill_group, start_serve, wait_for
from tests.test_service import SMALL, demo_parts, digests, summaries
from tests.tiny_models import tiny_bert_dir

pytestmark = [pytest.mark.processes, pytest.mark.server]
REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "driftloop.cli.main", *args],
        env=env or os.environ.copy(),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_kill_between_snapshot_write_and_manifest_update(project):
    cfg_path = str(project / "configs" / "sms_spam.yaml")
    incoming = project / "data" / "incoming"
    pd.DataFrame({"text": [f"message number {i}" for i in range(50)]}).to_csv(incoming / "pool.csv", index=False)
    pd.DataFrame({"text": ["another batch", "of texts"]}).to_csv(incoming / "pool_2.csv", index=False)
    landed = digests(incoming)
    marker = project / "hung.txt"
    env = {**os.environ, "DRIFTLOOP_FAILPOINT": "after-snapshot-write", "DRIFTLOOP_FAILPOINT_MARKER": str(marker)}
    first = _cli("ingest", "--config", cfg_path, str(incoming / "pool.csv"), env=env)
    second = None
    try:
        wait_for(marker.exists, 120, "the first ingest to reach the failpoint", [first], every=0.2)
        orphan = list((project / "data" / "raw").glob("*.parquet"))
        assert len(orphan) == 1 and not (project / "data" / "raw" / "manifest.json").exists()
        # A second ingest of the whole folder starts and waits on the manifest lock; then the first dies.
        second = _cli("ingest", "--config", cfg_path)
        time.sleep(1)
        os.killpg(first.pid, signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
        out, _ = second.communicate(timeout=120)
        assert second.returncode == 0, out
    finally:
        kill_group(first, signal.SIGKILL)
        if second is not None:
            kill_group(second, signal.SIGKILL)
    third = subprocess.run(
        [sys.executable, "-m", "driftloop.cli.main", "ingest", "--config", cfg_path],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert third.returncode == 0 and third.stdout.count("already_ingested") == 2, third.stdout
    records = json.loads((project / "data" / "raw" / "manifest.json").read_text())
    assert len(records) == 2 and len({r["sha256"] for r in records}) == 2
    catalog = Catalog(project)
    for snap in catalog.snapshots():
        assert len(catalog.read_snapshot(snap)) == snap.rows
    assert {s.rows for s in catalog.snapshots()} == {50, 2}
    assert digests(incoming) == landed


def test_sigkill_during_fine_tuning_resumes_to_identical_metrics(tmp_path, one_torch_thread):
    from tests.fault_train import main as train_to_json

    model = str(tiny_bert_dir(tmp_path / "tiny_bert"))
    run = [sys.executable, "-m", "tests.fault_train", model]
    # The uninterrupted reference runs here; the killed and the resumed runs are processes of their own.
    train_to_json(model, str(tmp_path / "a"), str(tmp_path / "full.json"))
    killed = subprocess.Popen(
        [*run, str(tmp_path / "b"), str(tmp_path / "resumed.json"), "5"], cwd=REPO, start_new_session=True
    )
    try:
        wait_for((tmp_path / "resumed.json.hung").exists, 300, "training to reach step 5", [killed], every=0.2)
        os.killpg(killed.pid, signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    finally:
        kill_group(killed, signal.SIGKILL)
    [run_dir] = [p for p in (tmp_path / "b").iterdir() if p.is_dir()]
    assert sorted(p.name for p in run_dir.iterdir()) == ["step-0000004"]  # the last complete checkpoint
    again = subprocess.run([*run, str(tmp_path / "b"), str(tmp_path / "resumed.json")], cwd=REPO, timeout=300)
    assert again.returncode == 0
    a = json.loads((tmp_path / "full.json").read_text())
    b = json.loads((tmp_path / "resumed.json").read_text())
    assert b["resumed_from_step"] == 4 and a["steps"] == b["steps"]
    np.testing.assert_allclose(b["train_loss"], a["train_loss"], atol=1e-4)
    assert b["best_dev_macro_f1"] == pytest.approx(a["best_dev_macro_f1"], abs=1e-6)
    np.testing.assert_allclose(b["dev_probs"], a["dev_probs"], atol=1e-4)


def _registry_consistent(project: Path) -> dict:
    """The registry parses, every version's folder exists, and the champion is one of the versions."""
    registry = json.loads((project / "models" / "registry.json").read_text())
    versions = {v["version"]: v for v in registry["versions"]}
    for v in versions.values():
        assert (project / "models" / v["path"]).is_dir(), f"registry names a missing model folder: {v['path']}"
    assert registry["champion"] is None or registry["champion"] in versions
    assert len(versions) == len(registry["versions"])
    return registry


def _active(server: PrefectServer) -> list[dict]:
    return [r for r in server.flow_runs() if r["state"]["type"] in ("RUNNING", "PENDING", "CANCELLING")]


def _retrain_running(server: PrefectServer):
    runs = [r for r in server.flow_runs(deployment="retrain") if r["state"]["type"] == "RUNNING"]
    pipelines = [r for r in server.flow_runs(flow="driftloop-pipeline") if r["state"]["type"] == "RUNNING"]
    return runs if runs and pipelines else None


def test_served_retrain_survives_a_server_restart_and_a_serve_crash(tmp_path, project):
    cfg_path = project / "configs" / "sms_spam.yaml"
    model = str(tiny_bert_dir(tmp_path / "tiny_bert"))
    overrides = [
        *[s for s in SMALL if not s.startswith("train.")],
        f"train.model={model}",
        "train.method=lora",
        "train.epochs=2",
        "train.min_steps=0",
        "train.precision=fp32",
        "train.batch_size=32",
        "train.max_length=32",
        "train.seeds=1",
        "self_train.enabled=false",
    ]
    cfg = load_config(cfg_path, overrides)
    catalog = Catalog.from_config(cfg)
    parts = demo_parts(cfg_path)
    for name in ("gold_dev", "gold_test"):
        parts[name].to_csv(catalog.incoming_dir / f"sms_{name}.csv", index=False)
    ingest_paths(catalog, cfg)
    server = PrefectServer(tmp_path).start()
    serve = start_serve(project, cfg_path, overrides, server.env)
    try:
        wait_for(lambda: len(server.deployments()) == 3, 120, "three deployments", [serve])
        parts["pool"].to_csv(catalog.incoming_dir / "pool.csv", index=False)
        # 1. The Prefect server is killed mid-retrain and comes back 5 s later on the same port and database.
        wait_for(lambda: _retrain_running(server), 180, "a running retrain", [serve], every=0.5)
        server.stop(signal.SIGKILL)
        time.sleep(5)
        server.start()
        wait_for(lambda: [r for r in server.flow_runs(deployment="retrain") if r["state"]["type"] in TERMINAL],
                 300, "the retrain to finish", [serve])  # fmt: skip
        states = [r["state"]["type"] for r in server.flow_runs(deployment="retrain")]
        assert "COMPLETED" in states, (project / "serve.log").read_text()[-4000:]
        assert [s["status"] for s in summaries(project)] == ["succeeded"]
        first = _registry_consistent(project)
        raw_before = digests(catalog.raw_dir, "*.parquet")

        # 2. The serve process dies (SIGKILL, with its flow-run children) during the next retrain: the
        # run is left RUNNING and holds the retrain deployment's only concurrency slot.
        parts["batch_01"].to_csv(catalog.incoming_dir / "batch_01.csv", index=False)
        wait_for(lambda: _retrain_running(server), 180, "the second retrain", [serve], every=0.5)
        kill_group(serve, signal.SIGKILL)
        orphans = _active(server)
        assert orphans, "the killed retrain should still look Running to the server"
        serve = start_serve(project, cfg_path, overrides, server.env)
        # Start-up reconciliation marks them Crashed (releasing the slot); a new trigger then trains.
        wait_for(lambda: not _active(server), 120, "reconciliation of the orphaned runs", [serve])
        crashed = {r["id"]: r["state"]["type"] for r in server.flow_runs() if r["id"] in {o["id"] for o in orphans}}
        assert set(crashed.values()) == {"CRASHED"}
        emit_events(server.env, [("driftloop.data.landed", f"driftloop.incoming.{cfg.project.name}")])
        wait_for(lambda: len([s for s in summaries(project) if s["status"] == "succeeded"]) == 2, 300,
                 "a retrain after reconciliation", [serve])  # fmt: skip
        wait_for(lambda: not _active(server), 60, "no run left running", [serve])
        assert "orphaned run(s) Crashed" in (project / "serve.log").read_text()
        second = _registry_consistent(project)
        assert len(second.get("versions", [])) == len(first.get("versions", [])) + 1
        assert {k: v for k, v in digests(catalog.raw_dir, "*.parquet").items() if k in raw_before} == raw_before
    finally:
        kill_group(serve)
        server.stop()


def _served_tiny_lora(model: str, *extra: str) -> list[str]:
    """The service's test settings with a tiny LoRA fine-tune that runs until ``extra`` says it stops."""
    return [
        *[s for s in SMALL if not s.startswith("train.")],
        f"train.model={model}",
        "train.method=lora",
        "train.precision=fp32",
        "train.batch_size=16",
        "train.max_length=32",
        "train.early_stopping_patience=1000",
        "gold_rows.baseline=false",
        *extra,  # later settings win
    ]


def _land_the_demo(server: PrefectServer, serve: subprocess.Popen, catalog: Catalog, cfg_path: Path) -> None:
    """Once serve has registered its deployments, drop the demo's gold dev, gold test and pool files."""
    wait_for(lambda: len(server.deployments()) == 3, 120, "three deployments", [serve])
    parts = demo_parts(cfg_path)
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(catalog.incoming_dir / f"sms_{name}.csv", index=False)


def _flow_run_pid(flow_run_id: str) -> int | None:
    """The process executing a flow run: Prefect names the run in the environment of the process it starts."""
    needle = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes():
                return int(environ.parent.name)
        except OSError:
            continue
    return None


def test_a_retrain_killed_mid_training_is_run_again_by_the_service_and_resumes(tmp_path, project):
    """Issue 33: a retrain that ends CRASHED with its data still pending is started again without any new event,
    and its training resumes from its checkpoint. The fault is real: the flow-run process is SIGKILLed."""
    cfg_path = project / "configs" / "sms_spam.yaml"
    model = str(tiny_bert_dir(tmp_path / "tiny_bert"))
    overrides = _served_tiny_lora(
        model,
        "service.watch_interval_s=5",  # the watcher's poll is what notices the lost retrain
        "train.min_steps=300",  # long enough to be killed mid-way
        "train.eval_steps=10",  # a checkpoint every 10 steps
    )
    catalog = Catalog.from_config(load_config(cfg_path, overrides))
    server = PrefectServer(tmp_path).start()
    serve = start_serve(project, cfg_path, overrides, server.env)
    try:
        _land_the_demo(server, serve, catalog, cfg_path)
        checkpoints = catalog.derived_dir / "train_checkpoints"
        wait_for(lambda: list(checkpoints.glob("*/step-*")), 240, "a training checkpoint", [serve], every=0.5)
        (running,) = _retrain_running(server)
        pid = _flow_run_pid(running["id"])
        assert pid is not None, "no process runs the retrain"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: [r for r in server.flow_runs(deployment="retrain") if r["state"]["type"] == "CRASHED"],
                 120, "the killed retrain to be marked CRASHED", [serve])  # fmt: skip
        # No new file lands from here on. The killed run wrote no final summary: the service reconciles it.
        wait_for(lambda: [s for s in summaries(project) if s["status"] == "succeeded"], 420,
                 "the service to run the lost retrain again", [serve])  # fmt: skip
        wait_for(lambda: [s["status"] for s in summaries(project)] == ["crashed", "succeeded"], 60,
                 "the killed run's summary to say it crashed", [serve])  # fmt: skip
        killed, summary = summaries(project)
        assert "Prefect ended the run CRASHED" in killed["error"]
        assert "Crashed" in (project / "runs" / killed["run_id"] / "report.html").read_text()
        assert summary["training"]["resumed_from_step"] and summary["training"]["resumed_from_step"] >= 10
        assert _registry_consistent(project)["champion"] == summary["run_id"]
        log = (project / "serve.log").read_text()
        assert "still pending: retry 1" in log or "pending: retry 1" in log, log[-4000:]
    finally:
        kill_group(serve)
        server.stop()


def _steps_for(seconds: float, model: str, overrides: list[str], project: Path) -> int:
    """How many optimizer steps of this training last about ``seconds`` on this machine now (a 60-step probe)."""
    from driftloop.tasks.train import train
    from tests.tiny_models import sms_like_frame

    cfg = load_config(project / "configs" / "sms_spam.yaml", [*overrides, "train.max_steps=60", "train.min_steps=60"])
    fit = train(sms_like_frame(320, 0), sms_like_frame(32, 1), cfg.data.labels, cfg.train, seed=0)
    return max(int(seconds * fit.steps / fit.train_seconds), 100)


def test_a_server_restart_mid_retrain_outlives_the_lease_and_the_model_is_registered(tmp_path, project):
    """Issue 33: served as documented (leases on disk), the Prefect server is SIGKILLed while a retrain trains and
    comes back 20 s later; the run then goes on past a whole lease duration (300 s, renewed every 225 s), so a
    renewal lands on the restarted server. The retrain completes and its model is registered, with no new event."""
    cfg_path = project / "configs" / "sms_spam.yaml"
    model = str(tiny_bert_dir(tmp_path / "tiny_bert"))
    overrides = _served_tiny_lora(model, "train.eval_steps=500")
    steps = _steps_for(440, model, overrides, project)  # ~7-10 min in the served flow: the restart, then past a lease
    overrides += [f"train.min_steps={steps}", f"train.max_steps={steps}"]
    catalog = Catalog.from_config(load_config(cfg_path, overrides))
    server = PrefectServer(tmp_path).start()
    serve = start_serve(project, cfg_path, overrides, server.env)
    try:
        _land_the_demo(server, serve, catalog, cfg_path)
        wait_for(lambda: _retrain_running(server), 240, "a running retrain", [serve], every=0.5)
        time.sleep(10)
        server.stop(signal.SIGKILL)
        time.sleep(20)
        server.start()
        restarted = time.monotonic()
        wait_for(lambda: [r for r in server.flow_runs(deployment="retrain") if r["state"]["type"] in TERMINAL],
                 900, "the retrain to finish", [serve], every=5)  # fmt: skip
        states = [r["state"]["type"] for r in server.flow_runs(deployment="retrain")]
        log = (project / "serve.log").read_text()
        assert states == ["COMPLETED"] and "lease renewal failed" not in log, log[-4000:]
        assert time.monotonic() - restarted > 300, "the run ended before a lease renewal on the restarted server"
        (summary,) = summaries(project)
        assert summary["status"] == "succeeded" and summary["training"]["steps"] == steps
        assert _registry_consistent(project)["champion"] == summary["run_id"]
    finally:
        kill_group(serve)
        server.stop()
