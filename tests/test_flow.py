"""The Prefect flows end to end on a slice of the real SMS corpus, under prefect_test_harness."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.errors import ValidationFailed
from driftloop.summary import RunSummary
from driftloop.tasks.demo_data import read_sms_corpus, split_demo

pytestmark = [pytest.mark.server, pytest.mark.pretrained]

# Small, fast settings; the rest comes from configs/sms_spam.yaml.
SMALL = [
    "demo.gold_dev_size=200",
    "demo.gold_test_size=200",
    "demo.n_later_batches=1",
    "demo.later_batch_size=150",
    "validation.min_rows=100",
    "validation.build_data_docs=true",
    "weak_label.label_model.n_epochs=100",
    # Real models, fast paths: EDA (+ Apertium where installed) augmentation, frozen-MiniLM fine-tuning.
    "augment.paraphrase.enabled=false",
    f"augment.back_translation.enabled={shutil.which('apertium') is not None}",
    "train.method=feature",
]
# Off in the demo config (one fit by default); on for the first run so the seed band and self-training are covered.
SWEEP = ["train.seeds=3", "self_train.enabled=true"]


def _write_demo(project: Path) -> dict:
    cfg = load_config(project / "configs" / "sms_spam.yaml", SMALL)
    parts = split_demo(read_sms_corpus().sample(2000, random_state=0), cfg.demo, seed=cfg.project.seed)
    incoming = project / "data" / "incoming"
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(incoming / f"sms_{name}.csv", index=False)
    return parts


def _raw_digests(project: Path) -> dict[str, str]:
    raw = project / "data" / "raw"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(raw.glob("*.parquet"))}


def test_pipeline_runs_and_writes_summary(prefect_harness, project):
    from driftloop.flows.pipeline import pipeline

    parts = _write_demo(project)
    summary = pipeline(config_path=str(project / "configs" / "sms_spam.yaml"), overrides=[*SMALL, *SWEEP])
    run_dir = Path(summary.run_dir)
    assert RunSummary.read(run_dir / "summary.json") == summary  # the record returned is the record written
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["status"] == "succeeded" and on_disk["schema_version"] == 2
    assert len(on_disk["config_hash"]) == 16
    assert (run_dir / "config.yaml").exists() and (run_dir / "lf_analysis.csv").exists()
    data = on_disk["data"]
    assert data["raw_rows"] == len(parts["pool"]) and 0 < data["clean_rows"] <= data["raw_rows"]
    assert set(data["dropped"]) >= {"empty", "exact_duplicate", "near_duplicate"}
    wl = on_disk["weak_labeling"]
    for key in ("n_lfs", "coverage", "aggregators_dev", "abstained_rows"):
        assert key in wl
    assert wl["n_lfs"] >= 10
    assert set(on_disk["balance"]["before"]) == {"ham", "spam"}
    assert on_disk["validation"]["success"] is True
    assert Path(on_disk["validation"]["data_docs"]).exists()

    aug = on_disk["augmentation"]
    assert aug["per_class"]["spam"]["accepted"] == aug["accepted"] > 0 and aug["per_class"]["ham"]["generated"] == 0
    assert aug["generated"] == aug["accepted"] + sum(aug["rejected_by_reason"].values())
    assert (run_dir / "augmentation_samples.csv").exists()
    assert on_disk["balance"]["after"]["spam"] > on_disk["balance"]["before"]["spam"]

    training, evaluation, promotion = on_disk["training"], on_disk["evaluation"], on_disk["promotion"]
    assert training["method"] == "feature" and 0 < training["trainable_params"] < training["total_params"]
    assert evaluation["n_test"] == len(parts["gold_test"]) and evaluation["n_synthetic_excluded"] == 0
    assert evaluation["accuracy"] > evaluation["majority_accuracy"]
    assert evaluation["label_model_accuracy"] is not None
    # 3 seeds and one self-training round (SWEEP): the band and the rounds are in the summary.
    band = on_disk["seed_band"]
    assert [r["seed"] for r in band["seeds"]] == [42, 43, 44] and sum(r["kept"] for r in band["seeds"]) == 1
    assert band["test_macro_f1"]["n"] == 3 and "points_over_label_model" in band
    assert training["seed"] == next(r["seed"] for r in band["seeds"] if r["kept"])
    assert on_disk["self_training"]["rounds"][0]["round"] == 0
    assert promotion["promoted"] is True and promotion["champion_after"] == summary.run_id
    # Half of gold dev trains (stratified), half selects; the gold-only baseline and the verdict are recorded.
    rows = training["rows"]
    assert rows["gold"] + rows["gold_held_out"] == len(parts["gold_dev"]) and rows["gold"] > 0
    baselines = on_disk["baselines"]
    assert baselines["gold_only"]["train_rows"] == rows["gold"] and 0 < baselines["gold_only"]["macro_f1"] <= 1
    assert baselines["end_model"]["macro_f1"] == round(evaluation["macro_f1"], 6)
    assert baselines["earned"] is (baselines["points_over_best_baseline"] > 0) and baselines["verdict"]
    model_dir = project / "models" / summary.run_id
    assert (model_dir / "README.md").exists() and (model_dir / "confusion_matrix.png").exists()

    # A second run over the same snapshots: raw data untouched, ingest is a no-op, a promotion decision is made.
    before = _raw_digests(project)
    again = pipeline(config_path=str(project / "configs" / "sms_spam.yaml"), overrides=SMALL)
    assert {o.status for o in again.ingest} == {"already_ingested"}
    assert _raw_digests(project) == before
    assert again.promotion.champion_before == summary.run_id
    registry = json.loads((project / "models" / "registry.json").read_text())
    assert [v["version"] for v in registry["versions"]] == [summary.run_id, again.run_id]
    _champion_predicts(project, registry["champion"])


def _champion_predicts(project: Path, champion: str) -> None:
    """The champion serves predictions from the command line, with the training-time cleaning."""
    from typer.testing import CliRunner

    from driftloop.cli.main import app

    out = CliRunner().invoke(
        app,
        [
            "predict",
            "--config",
            str(project / "configs" / "sms_spam.yaml"),
            "--json",
            "WINNER!! Claim your prize, call 09061701461",
            "see you at lunch",
        ],
    )
    assert out.exit_code == 0, out.output
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["label"] for r in records] == ["spam", "ham"]
    assert records[0]["model_version"] == champion
    # Serving applies the training-time cleaning: markup and odd spacing change nothing.
    marked = CliRunner().invoke(
        app,
        [
            "predict",
            "--config",
            str(project / "configs" / "sms_spam.yaml"),
            "--json",
            "<b>WINNER!!</b>  Claim your prize,\tcall 09061701461",
        ],
    )
    assert json.loads(marked.stdout)["probs"] == records[0]["probs"]
    # A broken registry is a clear error, not a traceback.
    (project / "models" / "registry.json").write_text("{not json")
    broken = CliRunner().invoke(app, ["predict", "--config", str(project / "configs" / "sms_spam.yaml"), "hello"])
    assert broken.exit_code == 1 and "not valid JSON" in broken.output


def test_failed_gate_fails_the_flow_and_keeps_raw_data(prefect_harness, project):
    from driftloop.flows.pipeline import pipeline

    _write_demo(project)
    Catalog.from_config(load_config(project / "configs" / "sms_spam.yaml", SMALL))
    with pytest.raises(ValidationFailed, match="row_count"):
        pipeline(
            config_path=str(project / "configs" / "sms_spam.yaml"), overrides=[*SMALL, "validation.min_rows=100000"]
        )
    before = _raw_digests(project)
    assert before, "the failed run still ingested its snapshots"
    (summary_path,) = (project / "runs").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "failed" and "row_count" in summary["error"]
    assert summary["validation"]["success"] is False
    # Fixing the config and running again succeeds on the very same raw snapshots.
    ok = pipeline(config_path=str(project / "configs" / "sms_spam.yaml"), overrides=SMALL)
    assert ok.status == "succeeded" and _raw_digests(project) == before


def test_watch_and_drift_check_never_touch_raw_data(prefect_harness, project):
    from driftloop.flows.drift import drift_check
    from driftloop.flows.pipeline import pipeline
    from driftloop.flows.retrain import watch_incoming

    quick = [*SMALL, "augment.enabled=false", "train.enabled=false", "drift.min_current_rows=50"]
    parts = _write_demo(project)
    pipeline(config_path=str(project / "configs" / "sms_spam.yaml"), overrides=quick)
    before = _raw_digests(project)

    # A later batch lands: the watcher snapshots it, the drift check compares and decides.
    parts["batch_01"].to_csv(project / "data" / "incoming" / "sms_batch_01.csv", index=False)
    landed = watch_incoming(config_path=str(project / "configs" / "sms_spam.yaml"), overrides=quick)
    assert len(landed["new_snapshots"]) == 1
    result = drift_check(config_path=str(project / "configs" / "sms_spam.yaml"), overrides=quick)
    # With one later batch, split_demo makes it the spam-heavy one (a third spam): a prior shift.
    assert result["action"] == "retrain" and result["drifted"] and "spam" in result["verdict"], result["verdict"]
    assert result["reference"]["kind"] == "last_run" and result["event"] == "driftloop.drift.detected"
    after = _raw_digests(project)
    assert {k: after[k] for k in before} == before and len(after) == len(before) + 1
