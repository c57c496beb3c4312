"""The data stages as Prefect tasks: each loads its inputs from the catalog, calls one pure step in
``tasks/`` through ``Catalog.cached``, and returns a typed record (``tasks.contracts``).

``Catalog.cached`` keys every output on its inputs, its config and the source of the code that
computes it, so an unchanged stage is a cache hit and an edited step recomputes.
The model stages (fine-tune, evaluate, promote) live in ``flows.model_steps``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prefect import task

from driftloop.atomic import atomic_path, write_json
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig
from driftloop.errors import InputError
from driftloop.flows.publish import logger, publish_markdown, publish_table
from driftloop.tasks.contracts import (
    Augmented,
    Balanced,
    Cleaned,
    Datasets,
    RawValidation,
    Table,
    TrainGate,
    WeakLabels,
)
from driftloop.tasks.landing import IngestOutcome, ingest_paths, load_role
from driftloop.tasks.plots import balance_figure, save_figure

ROLES = ("unlabelled", "gold_dev", "gold_test")
OPTIONAL_ROLES = ("reviewed",)


def _table(catalog: Catalog, artifact: str, key: str) -> Table:
    frame_rows = catalog.artifact_rows(artifact, key)
    return Table(artifact, key, frame_rows)


@task(name="ingest", retries=2, retry_delay_seconds=2, persist_result=True)
def ingest_task(cfg: DriftloopConfig, run_id: str) -> list[IngestOutcome]:
    """Snapshot every new file in data/incoming/; quarantine unusable ones."""
    outcomes = ingest_paths(Catalog.from_config(cfg), cfg)
    log = logger()
    for o in outcomes:
        if o.reason:
            log.warning("%s %s: %s", o.status, o.source, o.reason)
        else:
            log.info("%s %s -> snapshot %s (%s rows, %s)", o.status, o.source, o.snapshot_id, o.rows, o.role)
        if o.warning:  # taken, with a caveat (e.g. a mixed-type column cast to text)
            log.warning("%s: %s", o.source, o.warning)
    publish_table(run_id, "ingest", [o.as_dict() for o in outcomes], "Incoming files and what became of them")
    return outcomes


@task(name="load-datasets", retries=2, retry_delay_seconds=2, persist_result=True)
def load_datasets_task(cfg: DriftloopConfig) -> Datasets:
    """Gather the snapshots of each role into canonical frames; fail clearly if a role is missing."""
    catalog = Catalog.from_config(cfg)
    tables: dict[str, Table] = {}
    snapshots: dict[str, list[str]] = {}
    for role in (*ROLES, *OPTIONAL_ROLES):
        snapshot_ids = [s.snapshot_id for s in catalog.snapshots(role)]
        if not snapshot_ids:
            if role in OPTIONAL_ROLES:
                continue
            raise InputError(
                f"no {role} data has been ingested; drop a file into {catalog.incoming_dir} "
                f"(gold files match {cfg.data.role_patterns}) or run `driftloop demo-data`"
            )
        entry = catalog.cached(
            "load",
            [role, snapshot_ids, cfg.section_hash("data")],
            lambda role=role: {"load.frame": load_role(catalog, cfg, role)[0]},
            code="driftloop.tasks.landing",
        )
        tables[role] = _table(catalog, "load.frame", entry.key)
        snapshots[role] = snapshot_ids
    return Datasets(**tables, snapshots=snapshots)


@task(name="validate-raw", persist_result=True)
def validate_raw_task(cfg: DriftloopConfig, run_id: str, datasets: Datasets) -> RawValidation:
    """Run the raw-batch suite on every snapshot of this run; a critical failure stops the run."""
    from driftloop.tasks.validate import failure_from_report, suite_parameters, validate

    catalog = Catalog.from_config(cfg)
    params = suite_parameters(cfg, "raw")
    results = []
    for role, table in datasets.tables().items():
        frame = catalog.read_artifact(table.artifact, table.key)
        for snapshot_id, batch in frame.groupby("snapshot_id", sort=False):
            report = validate(
                batch.reset_index(drop=True),
                cfg.validation.raw_suite,
                params,
                gx_root=catalog.root,
                run_name=f"{run_id}-raw-{snapshot_id}",
                build_data_docs=cfg.validation.build_data_docs,
            )
            results.append(
                {
                    "snapshot_id": snapshot_id,
                    "role": role,
                    "rows": len(batch),
                    "success": report.success,
                    "warnings": len(report.warnings),
                    "data_docs": str(report.data_docs) if report.data_docs else None,
                }
            )
            if not report.success:
                raise failure_from_report(report, subject=f"raw batch {snapshot_id} ({role})")
    publish_table(run_id, "validate-raw", results, "Great Expectations raw-batch suite, one row per snapshot")
    return RawValidation(success=True, batches=results)


@task(name="clean", persist_result=True)
def clean_task(cfg: DriftloopConfig, run_id: str, datasets: Datasets) -> Cleaned:
    """Clean the pool shard by shard (dedup and gold-overlap removal pool-wide) and normalise the gold sets.

    Each shard of a raw snapshot is cleaned and LF-voted once and cached (``flows/scale.py``): a retrain
    after a new batch processes that batch's shards and settles the duplicates of its rows only.
    """
    from driftloop.flows.pool import clean_pool
    from driftloop.tasks.clean import normalize_texts

    catalog = Catalog.from_config(cfg)
    section = cfg.section_hash("clean")
    code = "driftloop.tasks.clean"
    gold: dict[str, Table] = {}
    labelled = {r: t for r, t in datasets.tables().items() if r != "unlabelled"}
    for role, source in labelled.items():

        def normalise(source: Table = source) -> dict[str, pd.DataFrame]:
            frame = catalog.read_artifact(source.artifact, source.key)
            return {"clean.frame": frame.assign(text=normalize_texts(frame["text"], cfg.clean))}

        entry = catalog.cached("clean", [role, source.key, section], normalise, code=code)
        gold[role] = _table(catalog, "clean.frame", entry.key)

    reference = [
        text
        for r in ("gold_dev", "gold_test")
        for text in catalog.read_artifact("load.frame", getattr(datasets, r).key)["text"]
    ]
    entry = clean_pool(cfg, datasets.snapshots["unlabelled"], reference, base_dir=Path.cwd())
    computed = entry.stages.computed
    logger().info(
        "pool shards: %s of %s cleaned now, LF votes of %s computed now (the rest cached); duplicates: %s",
        computed["clean"]["misses"],
        entry.stages.shards,
        computed["votes"]["misses"],
        computed["pool"],  # hit, extended (only the new rows settled) or full
    )
    report = dict(entry.report)
    logger().info(
        "cleaned pool: %s -> %s rows; dropped %s%s",
        report["rows_in"],
        report["rows_out"],
        report["dropped"],
        " (cached)" if entry.hit else "",
    )
    publish_table(
        run_id,
        "clean",
        [{"rule": k, "dropped": v} for k, v in report["dropped"].items()],
        f"Cleaning drops by rule ({report['rows_in']} rows in, {report['rows_out']} out)",
    )
    pool = Table("clean.frame", entry.key, report["rows_out"])
    return Cleaned(
        pool=pool, gold_dev=gold["gold_dev"], gold_test=gold["gold_test"], report=report, reviewed=gold.get("reviewed")
    )


@task(name="weak-label", persist_result=True)
def weak_label_task(cfg: DriftloopConfig, run_id: str, cleaned: Cleaned) -> WeakLabels:
    """Apply the labeling functions, fit the label model, keep the rows it can label."""
    from driftloop.flows.pool import pool_votes
    from driftloop.tasks.lf import lf_module_file
    from driftloop.tasks.weak_label import load_lfs
    from driftloop.tasks.weak_outputs import weak_label_artifacts, weak_label_line, write_weak_figures

    catalog = Catalog.from_config(cfg)
    lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels, base_dir=Path.cwd())

    def compute() -> dict[str, object]:
        pool = catalog.read_artifact(cleaned.pool.artifact, cleaned.pool.key)
        reviewed = catalog.read_artifact(cleaned.reviewed.artifact, cleaned.reviewed.key) if cleaned.reviewed else None
        # The LF votes cached per shard by the clean stage: only new shards (or an edited LF module) applied the LFs.
        names = [getattr(lf, "name", f"lf_{j}") for j, lf in enumerate(lfs)]
        return weak_label_artifacts(
            pool,
            catalog.read_artifact(cleaned.gold_dev.artifact, cleaned.gold_dev.key),
            catalog.read_artifact(cleaned.gold_test.artifact, cleaned.gold_test.key),
            lfs,
            cfg.weak_label,
            cfg.data.labels,
            seed=cfg.project.seed,
            gate_min_confidence=cfg.validation.min_label_confidence,
            reviewed=reviewed,
            pool_votes=pool_votes(cfg, cleaned.report, pool["row_id"], names, base_dir=Path.cwd()),
        )

    inputs = [cleaned.pool.key, cleaned.gold_dev.key, cleaned.gold_test.key]
    inputs.append(cleaned.reviewed.key if cleaned.reviewed else None)
    entry = catalog.cached(
        "weak_label",
        [*inputs, cfg.section_hash("weak_label", "data", "validation"), cfg.project.seed],
        compute,
        code="driftloop.tasks.weak_outputs",  # with every driftloop module it imports: tasks.weak_label, ...
        files=[lf_module_file(cfg.weak_label.lf_module, base_dir=Path.cwd())],
    )
    metrics = catalog.read_artifact("weak_label.report", entry.key)
    analysis = catalog.read_artifact("weak_label.analysis", entry.key)
    run_dir = catalog.run_dir(run_id)
    dev_probs = catalog.read_artifact("weak_label.dev_probs", entry.key)
    written = write_weak_figures(analysis, dev_probs, run_dir, ece_bins=cfg.evaluate.ece_bins)
    logger().info(weak_label_line(metrics))
    publish_table(
        run_id,
        "lf-analysis",
        json.loads(analysis.to_json(orient="records")),
        "Labeling-function analysis: coverage, overlaps, conflicts, dev accuracy",
    )
    return WeakLabels(
        labelled=_table(catalog, "weak_label.frame", entry.key),
        metrics=metrics,
        lf_analysis=str(written["lf_analysis"]),
    )


@task(name="augment", persist_result=True)
def augment_task(cfg: DriftloopConfig, run_id: str, weak: WeakLabels, cleaned: Cleaned) -> Augmented:
    """Rewrite minority-class rows (back-translation, paraphrase, EDA) and keep the ones that pass the filter."""
    from driftloop.tasks.aggregate import aggregator_from_arrays
    from driftloop.tasks.augment import assert_no_synthetic, augment
    from driftloop.tasks.weak_label import label_checker, load_lfs

    catalog = Catalog.from_config(cfg)

    def compute() -> dict[str, object]:
        pool = catalog.read_artifact(weak.labelled.artifact, weak.labelled.key)
        dev = catalog.read_artifact(cleaned.gold_dev.artifact, cleaned.gold_dev.key)
        test = catalog.read_artifact(cleaned.gold_test.artifact, cleaned.gold_test.key)
        assert_no_synthetic(dev, "gold_dev")
        assert_no_synthetic(test, "gold_test")
        lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels, base_dir=Path.cwd())
        labeler = aggregator_from_arrays(catalog.read_artifact("weak_label.labeler", weak.key))
        result = augment(
            pool,
            cfg.augment,
            cfg.data.labels,
            seed=cfg.project.seed,
            label_check=label_checker(lfs, labeler),
            existing_texts=pd.concat([dev["text"], test["text"]]).tolist(),
        )
        return {"augment.frame": result.frame, "augment.report": result.report, "augment.samples": result.samples}

    inputs = [weak.key, cleaned.gold_dev.key, cleaned.gold_test.key]
    entry = catalog.cached(
        "augment",
        [*inputs, cfg.section_hash("augment", "data"), cfg.project.seed],
        compute,
        code="driftloop.tasks.augment",
    )
    report = catalog.read_artifact("augment.report", entry.key)
    samples = catalog.read_artifact("augment.samples", entry.key)
    samples_path = catalog.run_dir(run_id) / "augmentation_samples.csv"
    with atomic_path(samples_path) as tmp:
        tmp.write_bytes(catalog.artifact_path("augment.samples", entry.key).read_bytes())
    publish_markdown(
        run_id,
        "augment",
        _augment_markdown(report, samples),
        "Augmentation: counts per method, class and rejection reason; sample pairs",
    )
    synthetic = _table(catalog, "augment.frame", entry.key)
    return Augmented(synthetic=synthetic if synthetic.rows else None, report=report, samples=str(samples_path))


def _augment_markdown(report: dict, samples: pd.DataFrame, per_verdict: int = 8) -> str:
    lines = [
        f"**{report['accepted']} accepted of {report['generated']} generated**",
        "",
        "| method | generated | accepted |",
        "|---|---|---|",
    ]
    lines += [f"| {m} | {v['generated']} | {v['accepted']} |" for m, v in report["per_method"].items()]
    rejected = {k: v for k, v in report["rejected_by_reason"].items() if v}
    lines += [
        "",
        "Rejected by reason: " + (", ".join(f"{k} {v}" for k, v in rejected.items()) or "none"),
        "",
        "| verdict | method | source | candidate | similarity | reason |",
        "|---|---|---|---|---|---|",
    ]

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")[:160]

    for verdict in ("accepted", "rejected"):
        for row in samples[samples["verdict"] == verdict].head(per_verdict).itertuples():
            lines.append(
                f"| {verdict} | {row.method} | {cell(row.source)} | {cell(row.candidate)} | "
                f"{row.similarity} | {row.reason} |"
            )
    return "\n".join(lines)


@task(name="balance", persist_result=True)
def balance_task(
    cfg: DriftloopConfig, run_id: str, weak: WeakLabels, augmented: Augmented | None, cleaned: Cleaned
) -> Balanced:
    """Even out the classes of weak-labelled (plus any synthetic and human-reviewed) rows."""
    from driftloop.tasks.balance import as_clean_labels, balance, replay
    from driftloop.tasks.registry import Registry

    catalog = Catalog.from_config(cfg)
    synthetic = augmented.synthetic if augmented is not None else None
    reviewed = cleaned.reviewed
    champion = Registry(catalog.models_dir).champion()
    reference = sorted(champion.data_snapshots.get("train", [])) if champion else []  # what replay protects

    def compute() -> dict[str, object]:
        frame = catalog.read_artifact(weak.labelled.artifact, weak.key).assign(is_synthetic=False)
        if reviewed is not None:  # people's labels replace the weak label of the same text, at full confidence
            rows = catalog.read_artifact(reviewed.artifact, reviewed.key)
            frame = pd.concat([frame[~frame["text"].isin(rows["text"])], as_clean_labels(rows, cfg.data.labels)])
        frame, replayed = replay(frame, set(reference), cfg.balance.max_new_share, seed=cfg.project.seed)
        if synthetic is not None:
            extra = catalog.read_artifact(synthetic.artifact, synthetic.key)
            frame = pd.concat([frame, extra], ignore_index=True)
        result = balance(frame, cfg.balance, cfg.data.labels, seed=cfg.project.seed)
        return {"balance.frame": result.frame, "balance.report": {**result.report, "replay": replayed}}

    inputs = [weak.key, synthetic.key if synthetic else None, reviewed.key if reviewed else None, reference]
    inputs += [cfg.section_hash("balance", "data"), cfg.project.seed]
    entry = catalog.cached("balance", inputs, compute, code="driftloop.tasks.balance")
    report = catalog.read_artifact("balance.report", entry.key)
    before, after = report["before"], report["after"]
    save_figure(balance_figure(before, after, cfg.balance.strategy), catalog.run_dir(run_id) / "balance.png")
    logger().info("balance (%s): %s -> %s", cfg.balance.strategy, before, after)
    publish_table(
        run_id,
        "balance",
        [{"label": k, "before": before[k], "after": after[k]} for k in cfg.data.labels],
        f"Per-class counts before and after balancing ({cfg.balance.strategy})",
    )
    return Balanced(train=_table(catalog, "balance.frame", entry.key), report=report)


@task(name="validate-train", persist_result=True)
def validate_train_task(cfg: DriftloopConfig, run_id: str, balanced: Balanced) -> TrainGate:
    """Run the training-set suite; a failed critical expectation stops the run."""
    from driftloop.tasks.validate import failure_from_report, format_failures, suite_parameters, validate

    catalog = Catalog.from_config(cfg)
    # Oversampled repeats share a row_id; the suite's duplicate check counts distinct rows only.
    report = validate(
        catalog.read_artifact(balanced.train.artifact, balanced.train.key),
        cfg.validation.train_suite,
        suite_parameters(cfg, "train"),
        gx_root=catalog.root,
        run_name=f"{run_id}-train",
        build_data_docs=cfg.validation.build_data_docs,
    )
    gate = TrainGate(
        success=report.success,
        critical_failures=report.critical_failures,
        warnings=report.warnings,
        statistics=report.statistics,
        data_docs=str(report.data_docs) if report.data_docs else None,
    )
    write_json(catalog.run_dir(run_id) / "validation_train.json", {**gate.summary(), "results": report.results})
    lines = [f"**Training set gate: {'PASSED' if report.success else 'FAILED'}**", ""]
    if not report.success or report.warnings:
        lines += ["```", format_failures(report), "```"]
    if report.data_docs:
        lines.append(f"\nData Docs: `{report.data_docs}`")
    publish_markdown(run_id, "validate-train", "\n".join(lines), "Great Expectations training-set gate")
    if not report.success:
        raise failure_from_report(report, subject="training set")
    return gate
