"""Optional MLflow tracking (``tracking.mlflow.enabled``): one MLflow run per driftloop run.

Logs the resolved config as params, the summary's numbers as metrics, the report, plots and run
files as artifacts, and the model folder. MLflow is an optional extra (``pip install
'driftloop[mlflow]'``; the lightweight ``mlflow-skinny`` client is enough). The default store is a
local SQLite file under ``<project.root>/mlruns/`` (MLflow 3 keeps the old ``./mlruns`` file store
in maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from driftloop.config import DriftloopConfig
from driftloop.errors import ResourceError
from driftloop.summary import RunSummary

# Files of a run folder worth keeping next to the metrics.
_RUN_FILES = ("report.html", "summary.json", "config.yaml", "lf_analysis.csv", "validation_train.json")
_MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
_BATCH = 100  # MLflow accepts at most 100 params per batch


def _import_mlflow():
    try:
        import mlflow
    except ImportError:
        raise ResourceError(
            "tracking.mlflow.enabled is true but MLflow is not installed: pip install 'driftloop[mlflow]' "
            "(or set tracking.mlflow.enabled=false)"
        ) from None
    return mlflow


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, name) if isinstance(value, dict) else {name: value})
    return out


def run_params(resolved_config: dict[str, Any]) -> dict[str, str]:
    """Every config field as an MLflow param (JSON text for lists, cut to MLflow's length limit)."""
    params = {}
    for key, value in flatten(resolved_config).items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        params[key] = text[:_MAX_PARAM_CHARS]
    return params


def run_metrics(summary: RunSummary) -> dict[str, float]:
    """The summary's finite numbers (data sizes, weak-label quality, training, test metrics) as MLflow metrics."""
    wanted = ("data", "weak_labeling", "balance", "training", "evaluation", "augmentation")
    metrics = {}
    sections = summary.model_dump(include=set(wanted), exclude_none=True)
    for key, value in flatten(sections).items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        metrics[key.replace("/", "_")] = float(value)  # '/' is legal but reads as a folder in the UI
    if summary.duration_s is not None:
        metrics["duration_s"] = float(summary.duration_s)
    return metrics


def tracking_uri(cfg: DriftloopConfig) -> str:
    """The configured URI, else a SQLite store at ``<project.root>/mlruns/mlflow.db``."""
    if cfg.tracking.mlflow.tracking_uri:
        return cfg.tracking.mlflow.tracking_uri
    folder = Path(cfg.root).resolve() / "mlruns"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def log_run(cfg: DriftloopConfig, summary: RunSummary, run_dir: Path) -> str:
    """Log one finished (or failed) driftloop run to MLflow; return the MLflow run id."""
    mlflow = _import_mlflow()
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(cfg)
    client = MlflowClient(tracking_uri=uri)
    name = cfg.tracking.mlflow.experiment or cfg.project.name
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        # Keep artifacts beside a local store instead of in ./mlartifacts of whatever the working directory is.
        location = (Path(cfg.root).resolve() / "mlruns" / "artifacts").as_uri() if uri.startswith("sqlite:") else None
        experiment_id = client.create_experiment(name, artifact_location=location)
    from mlflow.entities import Metric, Param, RunTag

    tags = {
        "driftloop.run_id": summary.run_id,
        "driftloop.status": summary.status,
        "driftloop.config_hash": summary.config_hash,
        "driftloop.trigger": summary.trigger or "manual",
        "mlflow.runName": summary.run_id,
    }
    run = client.create_run(experiment_id, tags=tags)
    run_id = run.info.run_id
    try:
        params = [Param(k, v) for k, v in run_params(cfg.resolved()).items()]
        for i in range(0, len(params), _BATCH):
            client.log_batch(run_id, params=params[i : i + _BATCH])
        stamp = int(mlflow.utils.time.get_current_time_millis())
        metrics = [Metric(k, v, stamp, 0) for k, v in run_metrics(summary).items()]
        for i in range(0, len(metrics), _BATCH):
            client.log_batch(run_id, metrics=metrics[i : i + _BATCH])
        client.log_batch(run_id, tags=[RunTag("driftloop.error", (summary.error or "")[:5000])])
        for file_name in _RUN_FILES:
            if (run_dir / file_name).is_file():
                client.log_artifact(run_id, str(run_dir / file_name))
        for plot in sorted(run_dir.glob("*.png")):
            client.log_artifact(run_id, str(plot), artifact_path="plots")
        model_dir = summary.promotion.model_dir if summary.promotion else None
        if cfg.tracking.mlflow.log_model and model_dir and Path(model_dir).is_dir():
            client.log_artifacts(run_id, model_dir, artifact_path="model")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED" if summary.status == "succeeded" else "FAILED")
    return run_id
