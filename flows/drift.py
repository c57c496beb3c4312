"""The scheduled drift check: compare data landed since the champion's training data with that
data, write ``runs/drift/<stamp>.json``, and on drift emit ``driftloop.drift.detected`` (the
retrain deployment triggers on it) or, when the LFs stopped covering the data, write a review task.

The check never runs the pipeline itself. Wiring only: the statistics live in ``tasks/drift/``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from driftloop.atomic import write_json, write_text
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig, load_config
from driftloop.errors import NoChampionError
from driftloop.flows import steps
from driftloop.spreadsheet import to_safe_csv
from driftloop.tasks.landing import load_role

DRIFT_EVENT = "driftloop.drift.detected"


def _resource(cfg: DriftloopConfig) -> dict[str, str]:
    return {"prefect.resource.id": f"driftloop.drift.{cfg.project.name}", "prefect.resource.name": cfg.project.name}


def resolve_reference(catalog: Catalog) -> dict[str, Any] | None:
    """The champion's training snapshots; else the last successful run's pool; None when neither exists."""
    from driftloop.tasks.registry import Registry

    champion = Registry(catalog.models_dir).champion()
    if champion is not None and champion.data_snapshots.get("train"):
        return {"kind": "champion", "version": champion.version, "snapshots": list(champion.data_snapshots["train"])}
    last = catalog.latest_run()
    if last is not None:
        return {
            "kind": "last_run",
            "run_id": last.run_id,
            "snapshots": list(last.data.snapshots["unlabelled"]),
        }
    return None


def previous_alarms(drift_dir: Path) -> list[bool]:
    """Raw alarms of earlier checks, oldest first (for k-of-n persistence)."""
    out = []
    for path in sorted(drift_dir.glob("*.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(report, dict) and report.get("signals"):
            out.append(bool(report.get("raw_alarm")))
    return out


def _champion_predictor(cfg: DriftloopConfig, catalog: Catalog) -> tuple[Any, float | None, dict[str, Any]]:
    """(predict(texts) -> probs in data.labels order, temperature fitted on gold dev, model info); no champion: None."""
    from driftloop.tasks.drift.stats import fit_temperature
    from driftloop.tasks.predict import champion_folder, training_clean_config
    from driftloop.tasks.train import load_classifier

    try:
        champion, folder = champion_folder(catalog.models_dir)
    except NoChampionError:
        return None, None, {}
    classifier = load_classifier(folder, device=cfg.train.device)
    clean_cfg = training_clean_config(folder)
    order = [list(classifier.labels).index(name) for name in cfg.data.labels]

    def predict(texts: list[str]) -> np.ndarray:
        from driftloop.tasks.clean import normalize_texts

        if clean_cfg is not None:
            texts = normalize_texts(pd.Series(texts, dtype=object), clean_cfg).tolist()
        return classifier.predict_proba(texts, batch_size=64)[:, order]

    info: dict[str, Any] = {"version": champion.version, "calibration": "none"}
    dev, _ = load_role(catalog, cfg, "gold_dev")
    dev = dev[dev["label"].isin(cfg.data.labels)]
    temperature = None
    if len(dev) >= 20:
        y = dev["label"].map({n: i for i, n in enumerate(cfg.data.labels)}).to_numpy()
        temperature = fit_temperature(predict(dev["text"].astype(str).tolist()), y)
        info.update(calibration="temperature scaling on gold dev", temperature=round(temperature, 4), dev_rows=len(dev))
    return predict, temperature, info


@task(name="drift-signals", cache_policy=NO_CACHE, persist_result=False)
def drift_signals_task(
    cfg: DriftloopConfig,
    reference_ids: list[str],
    current_ids: list[str],
    newest_id: str,
    history: list[bool],
) -> dict[str, Any]:
    """Featurise reference, newest batch and everything since the reference; run the check."""
    from driftloop.tasks.clean import normalize_texts
    from driftloop.tasks.drift import check_drift, featurize
    from driftloop.tasks.embed import embed_texts
    from driftloop.tasks.weak_label import load_lfs

    catalog = Catalog.from_config(cfg)
    pool, _ = load_role(catalog, cfg, "unlabelled")
    pool = pool.assign(text=normalize_texts(pool["text"], cfg.clean).fillna(""))
    frames = {"reference": pool[pool["snapshot_id"].isin(reference_ids)].reset_index(drop=True)}
    wanted = list(cfg.drift.scopes)
    if len(wanted) == 2 and current_ids == [newest_id]:
        wanted = ["newest"]  # the same rows twice would only spend alpha
    skipped = []
    for scope in wanted:
        ids = [newest_id] if scope == "newest" else current_ids
        frame = pool[pool["snapshot_id"].isin(ids)].reset_index(drop=True)
        if len(frame) < cfg.drift.min_current_rows:
            skipped.append(f"{scope}: {len(frame)} rows < drift.min_current_rows={cfg.drift.min_current_rows}")
            continue
        frames[scope] = frame
    if len(frames) == 1:
        raise ValueError(f"no scope has enough rows to judge: {skipped}")

    lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels, base_dir=Path.cwd())
    predict, temperature, model_info = _champion_predictor(cfg, catalog)
    sides = featurize(
        {name: frame["text"] for name, frame in frames.items()},
        lfs,
        len(cfg.data.labels),
        sample_size=cfg.drift.max_rows,
        seed=cfg.project.seed,
        embed=lambda texts: embed_texts(texts, model=cfg.drift.embedding_model),
        predict=predict,
        temperature=temperature,
    )
    reference = sides.pop("reference")
    check = check_drift(
        reference,
        sides,
        cfg.drift,
        labels=list(cfg.data.labels),
        lf_names=[lf.name for lf in lfs],
        seed=cfg.project.seed,
        previous_alarms=history,
    )
    out = check.as_dict()
    out["skipped"] = skipped + out["skipped"]
    if model_info:
        out["explanations"]["model"] = {**model_info, **out["explanations"]["model"]}
    out["reference_rows"] = reference.rows
    review = []
    for scope, positions in check.uncovered.items():
        rows = frames[scope].iloc[positions]
        review += [
            {"scope": scope, "row_id": r.row_id, "snapshot_id": r.snapshot_id, "text": r.text}
            for r in rows.itertuples(index=False)
        ]
    out["review_rows"] = pd.DataFrame(review).drop_duplicates("row_id").to_dict("records") if review else []
    return out


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"**{report['action'].upper()}**: {report['verdict']}",
        "",
        "| signal | scope | effect | min | p adj | alarm |",
    ]
    lines.append("|---|---|---|---|---|---|")
    for s in report.get("signals", []):
        lines.append(
            f"| {s['name']} | {s['scope']} | {s['effect']:.3f} | {s['min_effect']:.3f} | {s['p_adjusted']:.2g} | "
            f"{'**yes**' if s['alarm'] else 'no'} |"
        )
    ex = report.get("explanations") or {}
    if ex.get("class_shares"):
        lines += ["", f"Class shares: {ex['class_shares']['reference']} -> {ex['class_shares']['current']}"]
    if ex.get("terms_over"):
        lines += ["", "Over-represented terms: " + ", ".join(t["term"] for t in ex["terms_over"][:10])]
    if ex.get("new_examples"):
        lines += ["", "Most novel texts:"] + [f"- {e['text'][:160]}" for e in ex["new_examples"][:5]]
    return "\n".join(lines)


@flow(name="driftloop-drift-check", log_prints=True)
def drift_check(config_path: str = "configs/sms_spam.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """Compare new data with the champion's training data; on drift emit the retrain event or open a review."""
    cfg = load_config(config_path, overrides or [])
    catalog = Catalog.from_config(cfg)
    drift_dir = catalog.runs_dir / "drift"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    steps.ingest_task(cfg, f"drift-{stamp}")
    reference = resolve_reference(catalog)
    report: dict[str, Any] = {"checked_at": stamp, "action": "none", "drifted": False, "signals": []}
    snaps = catalog.snapshots("unlabelled")
    if reference is None:
        report.update(
            action="retrain" if cfg.drift.retrain_on_drift else "alert",
            verdict="no champion and no successful run yet: nothing to compare with",
            reason="no reference",
        )
    else:
        ref_ids = set(reference["snapshots"])
        reference["rows"] = sum(s.rows for s in snaps if s.snapshot_id in ref_ids)
        current = [s for s in snaps if s.snapshot_id not in ref_ids]
        report["reference"] = reference
        report["current"] = {
            "snapshots": [s.snapshot_id for s in current],
            "rows": sum(s.rows for s in current),
            "newest_snapshot": current[-1].snapshot_id if current else None,
        }
        if report["current"]["rows"] < cfg.drift.min_current_rows:
            report.update(
                verdict=f"nothing to judge: {report['current']['rows']} new rows since the reference",
                reason=f"fewer than drift.min_current_rows={cfg.drift.min_current_rows} new rows",
            )
        else:
            result = drift_signals_task(
                cfg,
                sorted(ref_ids),
                report["current"]["snapshots"],
                current[-1].snapshot_id,
                previous_alarms(drift_dir),
            )
            review_rows = result.pop("review_rows")
            reference["rows"] = result.pop("reference_rows")
            report.update(result)
            if report["action"] == "review":
                path = drift_dir / f"{stamp}.review.csv"
                rows = pd.DataFrame(review_rows, columns=["scope", "row_id", "snapshot_id", "text"])
                write_text(path, to_safe_csv(rows))  # formula cells escaped: it is opened in a spreadsheet
                report["review_task"] = {"path": str(path), "rows": len(review_rows)}
    report["event"] = None
    if report["action"] == "retrain":
        emit_event(
            event=DRIFT_EVENT,
            resource=_resource(cfg),
            payload={"config_path": config_path, "checked_at": stamp, "verdict": report["verdict"]},
        )
        report["event"] = DRIFT_EVENT
    write_json(drift_dir / f"{stamp}.json", report)
    try:  # the page a person reads, and the index that lists it; the JSON above is the record
        from driftloop.flows.report import write_drift_report, write_index

        print(f"drift report: {write_drift_report(drift_dir / f'{stamp}.json')}")
        write_index(catalog)
    except Exception as err:
        print(f"could not write the drift report: {err}")
    try:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(key="drift-check", markdown=_markdown(report), description="Drift check verdict")
    except Exception as err:  # an artifact is a convenience; the JSON report is the record
        print(f"could not publish the drift artifact: {err}")
    print(f"drift check: {report['action']}: {report['verdict']}")
    return report
