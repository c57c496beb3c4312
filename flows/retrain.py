"""Keeping the model fresh: a watcher that turns landed files into a retrain event, and a
scheduled drift check that retrains when new data has drifted from the training data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.events import emit_event

from driftloop.atomic import write_json
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig, load_config
from driftloop.flows import steps
from driftloop.flows.ingestion import load_role
from driftloop.flows.pipeline import pipeline

DATA_LANDED_EVENT = "driftloop.data.landed"
DRIFT_EVENT = "driftloop.drift.detected"


def _resource(cfg: DriftloopConfig, kind: str) -> dict[str, str]:
    return {"prefect.resource.id": f"driftloop.{kind}.{cfg.project.name}", "prefect.resource.name": cfg.project.name}


@flow(name="driftloop-watch-incoming", log_prints=True)
def watch_incoming(config_path: str = "configs/sms_spam.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """Ingest whatever landed in data/incoming/; emit one ``driftloop.data.landed`` event if any is new."""
    cfg = load_config(config_path, overrides or [])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    catalog = Catalog.from_config(cfg)
    known = {s.snapshot_id for s in catalog.snapshots()}
    outcomes = steps.ingest_task(cfg, f"watch-{stamp}")
    # New = what the manifest gained, not what the last attempt reported: a retried ingest sees its
    # first attempt's snapshots as already ingested.
    new = [s.snapshot_id for s in catalog.snapshots() if s.snapshot_id not in known]
    if new:
        emit_event(
            event=DATA_LANDED_EVENT,
            resource=_resource(cfg, "incoming"),
            payload={"config_path": config_path, "snapshots": new},
        )
        print(f"{len(new)} new snapshot(s): emitted {DATA_LANDED_EVENT}")
    return {
        "new_snapshots": new,
        "quarantined": [o for o in outcomes if o["status"] == "quarantined"],
        "failed": [o for o in outcomes if o["status"] == "failed"],
    }


@task(name="drift-signals")
def drift_signals_task(cfg: DriftloopConfig, reference_ids: list[str], current_ids: list[str]) -> dict[str, Any]:
    """Embed and weak-label a sample of reference and current rows; compare them."""
    from pathlib import Path

    from driftloop.tasks.clean import normalize_texts
    from driftloop.tasks.drift import detect_drift
    from driftloop.tasks.embed import embed_texts
    from driftloop.tasks.weak_label import apply_lfs, load_lfs

    catalog = Catalog.from_config(cfg)
    pool, _ = load_role(catalog, cfg, "unlabelled")
    rng = np.random.default_rng(cfg.project.seed)
    lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels, base_dir=Path.cwd())

    def side(ids: list[str]) -> dict[str, np.ndarray]:
        rows = pool[pool["snapshot_id"].isin(ids)]
        if len(rows) > cfg.drift.max_rows:
            rows = rows.iloc[np.sort(rng.choice(len(rows), cfg.drift.max_rows, replace=False))]
        texts = normalize_texts(rows["text"], cfg.clean).reset_index(drop=True)
        votes = apply_lfs(texts.to_frame("text"), lfs)
        return {
            "emb": embed_texts(texts.tolist()),
            "labels": _majority_vote(votes, len(cfg.data.labels)),
            "lengths": texts.str.len().to_numpy(),
        }

    ref, cur = side(reference_ids), side(current_ids)
    report = detect_drift(
        reference_embeddings=ref["emb"],
        current_embeddings=cur["emb"],
        reference_labels=ref["labels"],
        current_labels=cur["labels"],
        reference_lengths=ref["lengths"],
        current_lengths=cur["lengths"],
        n_classes=len(cfg.data.labels),
        cfg=cfg.drift,
        seed=cfg.project.seed,
    )
    return report.as_dict()


def _majority_vote(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-row majority LF vote; -1 where all abstain or the top classes tie."""
    counts = np.stack([(votes == k).sum(axis=1) for k in range(n_classes)], axis=1)
    top = counts.argmax(axis=1)
    ties = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
    return np.where((counts.max(axis=1) == 0) | ties, -1, top)


@flow(name="driftloop-drift-check", log_prints=True)
def drift_check(config_path: str = "configs/sms_spam.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """Compare data landed since the last successful run with that run's data; retrain on drift."""
    cfg = load_config(config_path, overrides or [])
    catalog = Catalog.from_config(cfg)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    steps.ingest_task(cfg, f"drift-{stamp}")
    last = catalog.latest_run()
    result: dict[str, Any] = {"checked_at": stamp, "last_run": last["run_id"] if last else None}
    if last is None:
        result.update(action="retrain", reason="no successful run yet")
    else:
        reference_ids = last["data"]["snapshots"]["unlabelled"]
        current_ids = [s.snapshot_id for s in catalog.snapshots("unlabelled") if s.snapshot_id not in reference_ids]
        current_rows = sum(s.rows for s in catalog.snapshots("unlabelled") if s.snapshot_id in current_ids)
        if current_rows < cfg.drift.min_current_rows:
            result.update(action="none", reason=f"{current_rows} new rows (< drift.min_current_rows)")
        else:
            report = drift_signals_task(cfg, reference_ids, current_ids)
            result["drift"] = report
            if report["drifted"]:
                emit_event(event=DRIFT_EVENT, resource=_resource(cfg, "drift"), payload=report)
                result.update(
                    action="retrain" if cfg.drift.retrain_on_drift else "alert",
                    reason=f"drift on {', '.join(report['exceeded'])}",
                )
            else:
                result.update(action="none", reason="no signal above its threshold")
    write_json(catalog.runs_dir / "drift" / f"{stamp}.json", result)
    print(f"drift check: {result['action']} ({result['reason']})")
    if result["action"] == "retrain":
        summary = pipeline(config_path=config_path, overrides=overrides)
        result["retrain_run"] = summary["run_id"]
    return result
