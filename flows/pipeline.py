"""The main driftloop flow: ingest -> validate raw -> clean -> weak-label -> [augment] -> balance
-> validate -> [fine-tune -> evaluate -> promote]. It composes tasks; it computes nothing itself."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow

from driftloop.atomic import write_json
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig, load_config
from driftloop.flows import steps
from driftloop.runtime import enable_progress_logging


def new_run_id(cfg: DriftloopConfig) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{cfg.config_hash[:8]}-{secrets.token_hex(2)}"


@flow(name="driftloop-pipeline", log_prints=True)
def pipeline(config_path: str = "configs/sms_spam.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """Run the whole pipeline once on everything ingested so far; return the run summary.

    Args:
        config_path: YAML config under configs/.
        overrides: ``a.b=c`` strings applied on top of the file.
    """
    enable_progress_logging()
    cfg = load_config(config_path, overrides or [])
    catalog = Catalog.from_config(cfg)
    run_id = new_run_id(cfg)
    run_dir = catalog.start_run(cfg, run_id)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "config_hash": cfg.config_hash,
        "config_path": str(config_path),
        "run_dir": str(run_dir),
        "status": "running",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    started = time.perf_counter()
    try:
        _run_stages(cfg, run_id, summary)
        summary["status"] = "succeeded"
    except Exception as err:
        summary["status"] = "failed"
        summary["error"] = f"{type(err).__name__}: {err}"
        summary.setdefault("validation", {}).setdefault("success", False)
        raise
    finally:
        summary["duration_s"] = round(time.perf_counter() - started, 2)
        summary["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        write_json(Path(run_dir) / "summary.json", summary)
        print(f"run folder: {run_dir}")
    return summary


def _run_stages(cfg: DriftloopConfig, run_id: str, summary: dict[str, Any]) -> None:
    summary["ingest"] = steps.ingest_task(cfg, run_id)
    datasets = steps.load_datasets_task(cfg)
    summary["data"] = {
        "raw_rows": datasets["unlabelled"]["rows"],
        "gold_dev_rows": datasets["gold_dev"]["rows"],
        "gold_test_rows": datasets["gold_test"]["rows"],
        "snapshots": {role: info["snapshot_ids"] for role, info in datasets.items()},
    }
    summary["validation"] = {"raw": steps.validate_raw_task(cfg, run_id, datasets)}

    cleaned = steps.clean_task(cfg, run_id, datasets)
    summary["data"].update(clean_rows=cleaned["unlabelled"]["rows"], dropped=cleaned["unlabelled"]["report"]["dropped"])

    weak = steps.weak_label_task(cfg, run_id, cleaned)
    summary["weak_labeling"] = {**weak["metrics"], "lf_analysis": weak["lf_analysis"]}

    synthetic_key = None
    if cfg.augment.enabled:
        augmented = steps.augment_task(cfg, run_id, weak, cleaned)
        summary["augmentation"] = {**augmented["report"], "samples": augmented["samples"]}
        synthetic_key = augmented["key"]

    balanced = steps.balance_task(cfg, run_id, weak["key"], synthetic_key)
    summary["balance"] = {k: v for k, v in balanced.items() if k != "key"}

    gate = steps.validate_train_task(cfg, run_id, balanced["key"])
    summary["validation"].update(success=gate["success"], data_docs=gate["data_docs"], train=gate)
    if not cfg.train.enabled:
        return

    result = steps.fine_tune_task(
        cfg, run_id, balanced["key"], cleaned["gold_dev"]["key"], balanced.get("class_weights")
    )
    summary["training"] = result.summary()
    evaluation = steps.evaluate_task(cfg, run_id, result, cleaned["gold_test"]["key"], weak["test_probs_key"])
    summary["evaluation"] = {**evaluation.summary(), "plots": evaluation.plots}
    summary["promotion"] = steps.promote_task(cfg, run_id, result, evaluation, summary["data"]["snapshots"])
