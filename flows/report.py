"""Write the HTML reports: ``runs/<run_id>/report.html``, ``runs/drift/<stamp>.html`` and ``runs/index.html``.

Reads a run folder (summary, LF analysis, validation results, training history, augmentation
samples, plots), the previous run and the champion's run, renders them with
``driftloop.tasks.report`` and writes every page atomically. ``finish_run`` is what the pipeline
calls at the end of every run, failed ones included; it never raises.
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from driftloop.atomic import write_text
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig
from driftloop.errors import InputError
from driftloop.summary import RunSummary, SummaryError
from driftloop.tasks.report import (
    RunData,
    RunStages,
    Thresholds,
    drift_page_view,
    index_view,
    png_data_uri,
    render,
    run_view,
)

log = logging.getLogger("driftloop.report")

REPORT_FILE = "report.html"
INDEX_FILE = "index.html"
DRIFT_DIR = "drift"
# PNGs embedded where the summary lacks the numbers to draw the chart as SVG.
_FALLBACK_IMAGES = ("reliability",)
_MAX_SAMPLE_ROWS = 5000


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, json.JSONDecodeError) as err:
        log.warning("report: cannot read %s (%s); its section is left out", path, err)
        return None


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _read_csv(path: Path, limit: int | None = None) -> list[dict[str, Any]] | None:
    if not path.is_file():
        return None
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if limit is not None and i >= limit:
                break
            rows.append({k: _number(v) if v not in ("", None) else None for k, v in row.items()})
    return rows


def _lf_rows(path: Path) -> list[dict[str, Any]] | None:
    rows = _read_csv(path)
    for row in rows or []:
        polarity = row.get("polarity")
        if isinstance(polarity, str) and polarity.startswith("["):
            try:
                row["polarity"] = ast.literal_eval(polarity)
            except (ValueError, SyntaxError):
                pass
    return rows


def _rel(target: str | Path | None, start: Path) -> str | None:
    if not target:
        return None
    try:
        return Path(os.path.relpath(Path(target), start)).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(target).as_uri()


def _stages(run_dir: Path, summary: RunSummary) -> RunStages:
    """Which optional stages the run's saved config switched on (without one: those its summary shows)."""
    config = None
    if (run_dir / "config.yaml").is_file():
        try:
            config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
        except yaml.YAMLError:
            config = None
    if not isinstance(config, dict):
        return RunStages(augment=summary.augmentation is not None, train=summary.training is not None)
    return RunStages(
        augment=bool((config.get("augment") or {}).get("enabled")),
        train=bool((config.get("train") or {}).get("enabled")),
    )


def load_run(run_dir: Path, *, with_details: bool = True) -> RunData:
    """Read what a run left in its folder. ``with_details=False`` reads just enough for the index and comparisons."""
    try:
        summary = RunSummary.read(run_dir / "summary.json")
    except SummaryError as err:
        raise InputError(f"{err} (run folder {run_dir})") from None
    links = {"self": f"../{run_dir.name}/{REPORT_FILE}", "report": f"{run_dir.name}/{REPORT_FILE}"}
    lf_rows = _lf_rows(run_dir / "lf_analysis.csv")
    stages = _stages(run_dir, summary)
    if not with_details:
        return RunData(summary=summary, stages=stages, lf_rows=lf_rows, links=links)
    links.update(index=f"../{INDEX_FILE}", summary="summary.json", config="config.yaml")
    if summary.validation is not None and summary.validation.data_docs:
        links["data_docs"] = _rel(summary.validation.data_docs, run_dir)
    samples_path = summary.augmentation.samples if summary.augmentation else None
    samples = _read_csv(Path(samples_path) if samples_path else run_dir / "augmentation_samples.csv", _MAX_SAMPLE_ROWS)
    images = {
        name: png_data_uri((run_dir / f"{name}.png").read_bytes())
        for name in _FALLBACK_IMAGES
        if (run_dir / f"{name}.png").is_file()
    }
    history = _read_json(run_dir / "training_history.json")
    return RunData(
        summary=summary,
        stages=stages,
        lf_rows=lf_rows,
        validation_train=_read_json(run_dir / "validation_train.json"),
        history=history if isinstance(history, list) else None,
        augmentation_samples=samples,
        images=images,
        links={k: v for k, v in links.items() if v},
        drift=None,
    )


def _run_folders(catalog: Catalog) -> list[Path]:
    if not catalog.runs_dir.is_dir():
        return []
    return sorted(p.parent for p in catalog.runs_dir.glob("*/summary.json") if p.parent.name != DRIFT_DIR)


def _finished(run: RunData) -> str:
    return run.summary.finished_at or run.summary.started_at


def _registry_records(catalog: Catalog, run: RunData) -> tuple[dict | None, dict | None]:
    """This run's registry record and the record of the champion it was compared with."""
    from dataclasses import asdict

    from driftloop.errors import RegistryError
    from driftloop.tasks.registry import Registry

    if not (catalog.models_dir / "registry.json").is_file():
        return None, None
    try:
        registry = Registry(catalog.models_dir)
        versions = {v.version: asdict(v) for v in registry.versions()}
        champion = registry.champion()
    except (RegistryError, OSError, ValueError) as err:
        log.warning("report: cannot read the model registry (%s); the champion comparison is left out", err)
        return None, None
    promotion = run.summary.promotion
    if promotion is not None:
        before = promotion.champion_before
        return versions.get(run.run_id), versions.get(before) if before else None
    return None, asdict(champion) if champion is not None else None


def _drift_for(catalog: Catalog, run: RunData) -> dict[str, Any] | None:
    """The drift check that started a drift-triggered run: the last one before the run began."""
    if run.trigger != "drift":
        return None
    found = [d for _, d in _drift_jsons(catalog) if str(d.get("checked_at") or "") <= run.summary.started_at]
    return found[-1] if found else None


def _drift_jsons(catalog: Catalog) -> list[tuple[Path, dict[str, Any]]]:
    folder = catalog.runs_dir / DRIFT_DIR
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _read_json(path)
        if isinstance(data, dict):
            out.append((path, data))
    return out


def write_run_report(catalog: Catalog, run_id: str, cfg: DriftloopConfig | None = None) -> Path:
    """Render ``runs/<run_id>/report.html`` (with the comparison to the previous and the champion's run)."""
    run_dir = catalog.run_dir(run_id)
    run = load_run(run_dir)
    others = {p.name: load_run(p, with_details=False) for p in _run_folders(catalog) if p.name != run_dir.name}
    earlier = sorted(
        (r for r in others.values() if r.summary.status == "succeeded" and _finished(r) < _finished(run)),
        key=_finished,
    )
    challenger_record, champion_record = _registry_records(catalog, run)
    champion_run_id = ((champion_record or {}).get("extra") or {}).get("run_id")
    report_cfg = cfg.report if cfg is not None else None
    view = run_view(
        RunData(**{**run.__dict__, "drift": _drift_for(catalog, run)}),
        previous=earlier[-1] if earlier else None,
        champion_run=others.get(champion_run_id) if champion_run_id else None,
        challenger_record=challenger_record,
        champion_record=champion_record,
        thresholds=Thresholds(report_cfg.metric_change, report_cfg.size_change) if report_cfg else Thresholds(),
        examples_per_group=report_cfg.examples_per_group if report_cfg else 5,
    )
    return write_text(run_dir / REPORT_FILE, render(view))


def write_drift_report(json_path: str | Path) -> Path:
    """Render ``runs/drift/<stamp>.html`` beside a drift check's ``<stamp>.json``."""
    json_path = Path(json_path)
    drift = _read_json(json_path)
    if not isinstance(drift, dict):
        raise InputError(f"{json_path} is not a readable drift check JSON object; rerun `driftloop drift-check`")
    view = drift_page_view(drift, json_path.stem, links={"index": f"../{INDEX_FILE}", "json": json_path.name})
    return write_text(json_path.with_suffix(".html"), render(view))


def write_index(catalog: Catalog) -> Path:
    """Rewrite ``runs/index.html``: every run newest first, the metric trend, every drift check.

    Drift checks whose HTML is missing (or older than their JSON) get it rendered first.
    """
    runs = []
    for folder in _run_folders(catalog):
        try:
            runs.append(load_run(folder, with_details=False))
        except InputError as err:
            log.warning("report: %s", err)
    drifts = []
    for path, data in _drift_jsons(catalog):
        html = path.with_suffix(".html")
        if not html.exists() or html.stat().st_mtime < path.stat().st_mtime:
            try:
                write_drift_report(path)
            except Exception as err:  # one bad drift file must not hide the others
                log.warning("report: cannot render %s: %s", path, err)
        drifts.append((path.stem, data, f"{DRIFT_DIR}/{html.name}" if html.exists() else None))
    return write_text(catalog.runs_dir / INDEX_FILE, render(index_view(runs, drifts)))


def run_trigger() -> str:
    """manual, data, drift or schedule: what started the current flow run (manual outside Prefect deployments)."""
    try:
        from prefect.runtime import deployment, flow_run
    except ImportError:
        return "manual"
    try:
        if flow_run.get_parent_flow_run_id():
            return "data"  # the pipeline runs as a subflow only from the retrain gate, on pending data
        name = str(deployment.get_name() or "")
    except Exception:  # outside a flow run, or the API is unreachable
        return "manual"
    if not name:
        return "manual"
    if "drift" in name:
        return "drift"
    if "new-data" in name or "landed" in name:
        return "data"
    return "schedule"


def markdown_summary(summary: RunSummary, report: Path, stages: RunStages) -> str:
    """The Prefect markdown artifact: the verdict, the key figures and where the report is."""
    from driftloop.tasks.report.verdict import key_figures, verdict

    v = verdict(summary, stages)
    lines = [f"## {v.headline}", "", v.reason, "", "| figure | value |", "|---|---|"]
    for f in key_figures(summary):
        note = f" ({f['note']})" if f["note"] else ""
        lines.append(f"| {f['label']} | {f['value']}{note} |")
    lines += ["", f"Report: `{report}`"]
    return "\n".join(lines)


def publish_artifacts(summary: RunSummary, report: Path, stages: RunStages) -> None:
    """A markdown artifact with the verdict and a link artifact to the report, on the current flow run."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact

    key = f"report-{summary.run_id}".lower().replace("_", "-").replace(":", "-")
    create_markdown_artifact(markdown=markdown_summary(summary, report, stages), key=key, description="Run verdict")
    create_link_artifact(
        link=report.resolve().as_uri(), link_text="HTML report", key=f"{key}-link", description="Self-contained report"
    )


def finish_run(cfg: DriftloopConfig, summary: RunSummary) -> Path | None:
    """Everything that follows a run: its report, the index, Prefect artifacts, MLflow. Logs instead of raising."""
    if not cfg.report.enabled and not cfg.tracking.mlflow.enabled:
        return None
    catalog = Catalog.from_config(cfg)
    report = None
    if cfg.report.enabled:
        try:
            report = write_run_report(catalog, summary.run_id, cfg)
            write_index(catalog)
            log.info("report: %s", report)
        except Exception as err:  # a report must never fail the run it describes
            log.warning("could not write the run report: %s: %s", type(err).__name__, err)
            report = None
        if report is not None:
            try:
                publish_artifacts(summary, report, RunStages(augment=cfg.augment.enabled, train=cfg.train.enabled))
            except Exception as err:
                log.warning("could not publish the report artifacts: %s", err)
    if cfg.tracking.mlflow.enabled:
        try:
            from driftloop.tasks.tracking import log_run

            log_run(cfg, summary, catalog.run_dir(summary.run_id))
        except Exception as err:
            log.warning("could not log the run to MLflow: %s: %s", type(err).__name__, err)
    return report


def make_server(runs_dir: Path, port: int = 8765):
    """An HTTP server for ``runs/`` bound to 127.0.0.1 only (reports link each other by relative paths)."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            log.debug("serve: " + format, *args)

    handler = functools.partial(QuietHandler, directory=str(runs_dir))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as err:
        raise InputError(f"cannot serve on 127.0.0.1:{port} ({err}); pick another port with --port") from None
