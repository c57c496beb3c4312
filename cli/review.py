"""``driftloop review export``: a run's review queue as a CSV to fill in and a Label Studio import.

Wiring only: the run's summary names its derived artifacts (``RunSummary.artifacts``); the cleaned pool and the
saved, calibrated weak labeler come from the catalog, the LFs are re-applied for their votes (conflicts are not
stored), the champion (when there is one) adds the end model's view, and ``tasks.review.build_queue`` ranks the
rows. Rows already reviewed (any ``reviewed`` snapshot) are never queued again. ``driftloop review import`` takes
the filled-in CSV (or Label Studio's JSON export) back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.atomic import write_json, write_text
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig
from driftloop.errors import InputError
from driftloop.spreadsheet import to_safe_csv
from driftloop.summary import Artifacts, RunSummary

log = logging.getLogger(__name__)

CSV_NAME = "review_queue.csv"
TASKS_NAME = "label_studio_tasks.json"
LABEL_CONFIG_NAME = "label_studio_config.xml"


@dataclass
class ReviewExport:
    """What ``export_review`` wrote and from what."""

    run_id: str
    rows: int
    csv: Path
    label_studio_tasks: Path
    label_studio_config: Path
    end_model: str | None
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def find_run(catalog: Catalog, run_id: str | None) -> RunSummary:
    """The summary of ``run_id``, or of the latest successful run; errors say which runs there are."""
    if run_id is None:
        summary = catalog.latest_run()
        if summary is None:
            raise InputError(
                f"no successful run under {catalog.runs_dir}; run `driftloop run` first, then export its review queue"
            )
        return summary
    summary = catalog.run_summary(run_id)
    if summary is None:
        known = [s.run_id for s in catalog.run_summaries()][-5:]
        raise InputError(f"run {run_id!r} has no readable summary.json under {catalog.runs_dir}; recent runs: {known}")
    if summary.status != "succeeded":
        raise InputError(
            f"run {run_id} did not succeed (status {summary.status!r}); export from a successful run "
            "(omit --run for the latest one)"
        )
    return summary


def _reviewed_texts(catalog: Catalog) -> set[str]:
    texts: set[str] = set()
    for snapshot in catalog.snapshots("reviewed"):
        frame = catalog.read_snapshot(snapshot)
        if "text" in frame.columns:
            texts.update(frame["text"].astype(str))
    return texts


def _end_model_probs(cfg: DriftloopConfig, catalog: Catalog, texts: list[str], warnings: list[str]):
    """The champion's probabilities on the pool, or None (no champion, or it cannot be loaded: a warning)."""
    from driftloop.tasks.registry import Registry
    from driftloop.tasks.train import load_classifier

    registry = Registry(catalog.models_dir)
    champion = registry.champion()
    if champion is None:
        return None, None
    try:
        classifier = load_classifier(registry.resolve_path(champion), device=cfg.train.device)
    except Exception as err:  # a deleted or unreadable champion folder: the weak-label reasons still work
        warnings.append(f"champion {champion.version} could not be loaded ({err}); queued without end-model reasons")
        return None, None
    if list(classifier.labels) != list(cfg.data.labels):
        warnings.append(
            f"champion {champion.version} predicts {list(classifier.labels)}, not data.labels {cfg.data.labels}; "
            "queued without end-model reasons"
        )
        return None, None
    return classifier.predict_proba(texts, batch_size=cfg.train.eval_batch_size), champion.version


def export_review(
    cfg: DriftloopConfig, run_id: str | None = None, out_dir: str | Path | None = None, *, use_model: bool = True
) -> ReviewExport:
    """Build the review queue of a run and write it as CSV + Label Studio tasks + labeling config, atomically.

    Args:
        cfg: the project config (its catalog root, labels, LF module and ``review`` section).
        run_id: the run to export from; default the latest successful run.
        out_dir: where to write; default ``runs/<run_id>/review/``.
        use_model: add the champion's predictions (disagreement reasons); False queues on weak labels alone.
    """
    from driftloop.tasks.aggregate import aggregator_from_arrays
    from driftloop.tasks.lf import load_lfs
    from driftloop.tasks.review import build_queue

    catalog = Catalog.from_config(cfg)
    summary = find_run(catalog, run_id)
    run_id = summary.run_id
    labels = list(cfg.data.labels)
    artifacts = _run_artifacts(summary, labels)
    pool = catalog.read_artifact("clean.frame", artifacts.clean)
    aggregator = aggregator_from_arrays(catalog.read_artifact("weak_label.labeler", artifacts.weak_label))
    weak_frame = catalog.read_artifact("weak_label.frame", artifacts.weak_label)
    warnings: list[str] = []

    reviewed = _reviewed_texts(catalog)
    if reviewed:
        pool = pool[~pool["text"].astype(str).isin(reviewed)].reset_index(drop=True)
    if pool.empty:
        raise InputError(f"every pool row of run {run_id} has been reviewed already; nothing left to queue")

    lfs = load_lfs(cfg.weak_label.lf_module, labels, base_dir=Path.cwd())
    votes, weak_probs, covered = _weak_view(pool, lfs, aggregator, labels, run_id)
    changed = _labels_changed(pool, weak_frame, weak_probs, covered, labels, run_id)
    if changed:
        warnings.append(changed)

    end_probs, end_model = (None, None)
    if use_model:
        end_probs, end_model = _end_model_probs(cfg, catalog, pool["text"].astype(str).tolist(), warnings)
    queue = build_queue(pool, votes, weak_probs, labels, cfg.review, end_probs=end_probs)

    target = Path(out_dir) if out_dir is not None else catalog.run_dir(run_id) / "review"
    csv_path, tasks_path, xml_path = _write_queue(queue, labels, target)
    for warning in warnings:
        log.warning("review export: %s", warning)
    reasons = _reason_counts(queue)
    return ReviewExport(run_id, len(queue), csv_path, tasks_path, xml_path, end_model, reasons, warnings)


def _run_artifacts(summary: RunSummary, labels: list[str]) -> Artifacts:
    """The run's derived artifact keys, after checking that it labelled with this config's labels."""
    if summary.weak_labeling is None or summary.artifacts is None:
        raise InputError(f"run {summary.run_id} has no weak labels to queue from; export from a successful run")
    run_labels = summary.weak_labeling.labels
    if run_labels != labels:
        raise InputError(
            f"run {summary.run_id} labelled {run_labels} but this config's data.labels is {labels}; pass the run's "
            "config with --config"
        )
    return summary.artifacts


def _weak_view(pool: pd.DataFrame, lfs: list, aggregator: Any, labels: list[str], run_id: str):
    """The LF votes on ``pool``, the run's weak labeler's probabilities (NaN where no LF voted) and the covered rows.

    An LF module that no longer fits the saved weak labeler is an :class:`InputError`.
    """
    from driftloop.tasks.lf import ABSTAIN, apply_lfs

    votes = apply_lfs(pool, lfs)
    covered = (votes != ABSTAIN).any(axis=1)
    weak_probs = np.full((len(pool), len(labels)), np.nan)
    try:
        if aggregator.lf_accuracy is not None and len(aggregator.lf_accuracy) != votes.shape[1]:
            raise ValueError(f"{len(aggregator.lf_accuracy)} LF weights for {votes.shape[1]} LFs")
        if covered.any():
            weak_probs[covered] = aggregator.predict_proba(votes[covered])
    except (ValueError, RuntimeError) as err:
        raise InputError(
            f"the LF module ({len(lfs)} LFs) no longer fits run {run_id}'s weak labeler ({err}); "
            "run `driftloop run` again before exporting"
        ) from None
    return votes, weak_probs, covered


def _labels_changed(
    pool: pd.DataFrame,
    weak_frame: pd.DataFrame,
    weak_probs: np.ndarray,
    covered: np.ndarray,
    labels: list[str],
    run_id: str,
) -> str | None:
    """A warning when the run's own weak labels do not come out again (the LF module changed since the run)."""
    if not ("row_id" in pool.columns and "row_id" in weak_frame.columns and len(weak_frame)):
        return None
    stored = weak_frame.set_index("row_id")["label"]
    now = pd.Series(np.asarray(labels, dtype=object)[np.nan_to_num(weak_probs).argmax(axis=1)], index=pool["row_id"])
    shared = stored.index.intersection(now.index[covered])
    changed = int((stored.loc[shared] != now.loc[shared]).sum())
    if not changed:
        return None
    return (
        f"{changed} of {len(shared)} weak labels differ from run {run_id}'s: the LF module changed since "
        "that run; run `driftloop run` again for a queue that matches the training data"
    )


def _write_queue(queue: pd.DataFrame, labels: list[str], target: Path) -> tuple[Path, Path, Path]:
    """The queue as CSV (formula cells escaped), Label Studio tasks and labeling config, each written atomically."""
    from driftloop.tasks.review import label_studio_config, label_studio_tasks

    target.mkdir(parents=True, exist_ok=True)
    csv_path, tasks_path, xml_path = target / CSV_NAME, target / TASKS_NAME, target / LABEL_CONFIG_NAME
    write_text(csv_path, to_safe_csv(queue))  # formula cells escaped: reviewers open it in a spreadsheet
    write_json(tasks_path, label_studio_tasks(queue))
    write_text(xml_path, label_studio_config(labels) + "\n")
    return csv_path, tasks_path, xml_path


def _reason_counts(queue: pd.DataFrame) -> dict[str, int]:
    """How many queued rows each reason (``;``-separated in ``reasons``) put in the queue."""
    reasons: dict[str, int] = {}
    for entry in queue["reasons"]:
        for reason in filter(None, str(entry).split(";")):
            reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def import_reviewed(cfg: DriftloopConfig, path: Path) -> tuple[Any, bool]:
    """Validate a reviewed file and store it as a snapshot with role ``reviewed``; return it and whether it is new.

    Never through data/incoming/: a refused file leaves nothing behind (no copy that a later ingest could take as
    pool data). Refused, with an :class:`InputError` that names the problem: a malformed file, an unknown label, a
    text labelled two ways, a ``row_id`` that names no pool row, or a table that breaks the ``reviewed`` contract.
    """
    import hashlib

    from driftloop.tasks.ingest import check_incoming, settle_types
    from driftloop.tasks.review import read_reviewed

    catalog = Catalog.from_config(cfg)
    reviewed = read_reviewed(path, cfg.data.labels)
    pool_rows = {s.snapshot_id: s.rows for s in catalog.snapshots("unlabelled")}
    ids = reviewed.loc[reviewed["row_id"] != "", "row_id"]
    unknown = [i for i in ids if not _names_a_pool_row(i, pool_rows)]
    if unknown:
        raise InputError(
            f"{path}: {len(unknown)} row_id(s) name no row of an ingested pool snapshot (e.g. {unknown[:3]}); "
            "import the queue that `driftloop review export` wrote for this project, or clear the row_id column"
        )
    body = reviewed.rename(columns={"text": cfg.data.text_column, "label": cfg.data.label_column})
    check_incoming(body, cfg.data, "reviewed", path.name)
    body, _ = settle_types(body, cfg.ingest.mixed_types, path.name)
    sha = hashlib.sha256(body.to_csv(index=False).encode("utf-8")).hexdigest()
    return catalog.add_snapshot(body, source=path, sha=sha, role="reviewed")


def _names_a_pool_row(row_id: str, pool_rows: dict[str, int]) -> bool:
    snapshot_id, _, index = row_id.rpartition(":")
    return snapshot_id in pool_rows and index.isdigit() and int(index) < pool_rows[snapshot_id]
