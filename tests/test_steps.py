"""Every Prefect task wrapper called through ``.fn()``: typed records in, typed records out, the cache in between.

A small slice of the real SMS corpus, the real LFs and GX suites, and a tiny random BERT for the model stages.
"""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.errors import InputError
from driftloop.flows import model_steps, steps
from driftloop.packaged import init_project
from driftloop.tasks.contracts import (
    Augmented,
    Balanced,
    Cleaned,
    Datasets,
    FineTuned,
    Promotion,
    SelfTrained,
    TrainGate,
    WeakLabels,
)
from driftloop.tasks.demo_data import read_sms_corpus, split_demo
from driftloop.tasks.self_train import scores
from tests.tiny_models import tiny_bert_dir

pytestmark = [pytest.mark.server, pytest.mark.pretrained]

RUN = "20260101T000000Z-test-0000"


def _overrides(tiny: Path) -> list[str]:
    return [
        "demo.gold_dev_size=150",
        "demo.gold_test_size=150",
        "demo.n_later_batches=1",
        "demo.later_batch_size=100",
        "validation.min_rows=100",
        "validation.build_data_docs=false",
        "weak_label.label_model.n_epochs=50",
        "augment.paraphrase.enabled=false",
        "augment.back_translation.enabled=false",
        f"train.model={tiny}",
        "train.method=full",
        "train.epochs=1",
        "train.min_steps=0",
        "train.precision=fp32",
        "train.seeds=2",
    ]


@pytest.fixture(scope="module")
def staged(tmp_path_factory, prefect_harness):
    """A project with the demo config, a 1,200-row slice of the corpus landed, and the settings for a quick run."""
    project = tmp_path_factory.mktemp("steps")
    init_project(project)
    tiny = tiny_bert_dir(tmp_path_factory.mktemp("tiny_bert"))
    cfg = load_config(project / "configs" / "sms_spam.yaml", _overrides(tiny))
    parts = split_demo(read_sms_corpus().sample(1200, random_state=1), cfg.demo, seed=cfg.project.seed)
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(project / "data" / "incoming" / f"sms_{name}.csv", index=False)
    Catalog.from_config(cfg).start_run(cfg, RUN)
    return cfg, parts


def test_load_fails_clearly_when_a_role_is_missing(tmp_path, prefect_harness):
    init_project(tmp_path)
    cfg = load_config(tmp_path / "configs" / "sms_spam.yaml")
    with pytest.raises(InputError, match="no unlabelled data has been ingested.*driftloop demo-data"):
        steps.load_datasets_task.fn(cfg)


def test_data_stages_hand_each_other_typed_records(staged):
    cfg, parts = staged
    catalog = Catalog.from_config(cfg)
    outcomes = steps.ingest_task.fn(cfg, RUN)
    assert sorted(o.status for o in outcomes) == ["ingested"] * 3

    datasets = steps.load_datasets_task.fn(cfg)
    assert isinstance(datasets, Datasets) and datasets.gold_test.rows == len(parts["gold_test"])
    assert set(datasets.snapshots) == {"unlabelled", "gold_dev", "gold_test"}
    with pytest.raises(FrozenInstanceError):
        datasets.gold_dev = datasets.gold_test  # type: ignore[misc]

    assert steps.validate_raw_task.fn(cfg, RUN, datasets).success

    cleaned = steps.clean_task.fn(cfg, RUN, datasets)
    assert isinstance(cleaned, Cleaned) and 0 < cleaned.pool.rows <= datasets.unlabelled.rows
    assert cleaned.pool.rows == len(catalog.read_artifact(cleaned.pool.artifact, cleaned.pool.key))
    assert steps.clean_task.fn(cfg, RUN, datasets) == cleaned  # the same inputs and code: a cache hit

    weak = steps.weak_label_task.fn(cfg, RUN, cleaned)
    assert isinstance(weak, WeakLabels) and weak.metrics["n_lfs"] >= 10
    assert Path(weak.lf_analysis).exists() and (catalog.run_dir(RUN) / "lf_analysis.png").exists()

    augmented = steps.augment_task.fn(cfg, RUN, weak, cleaned)
    assert isinstance(augmented, Augmented) and Path(augmented.samples).exists()
    assert augmented.report["generated"] >= augmented.report["accepted"]

    balanced = steps.balance_task.fn(cfg, RUN, weak, augmented, cleaned)
    assert isinstance(balanced, Balanced) and set(balanced.report["after"]) == {"ham", "spam"}
    gate = steps.validate_train_task.fn(cfg, RUN, balanced)
    assert isinstance(gate, TrainGate) and gate.success
    stored = json.loads((catalog.run_dir(RUN) / "validation_train.json").read_text())
    assert stored["success"] and stored["results"]

    tuned = model_steps.fine_tune_task.fn(cfg, RUN, balanced, cleaned)
    assert isinstance(tuned, FineTuned) and [f.seed for f in tuned.fits] == [cfg.project.seed, cfg.project.seed + 1]
    assert tuned.result.best_dev_macro_f1 == max(f.best_dev_macro_f1 for f in tuned.fits)
    assert (catalog.run_dir(RUN) / "training_history.json").exists()
    self_cfg = cfg.model_copy(update={"self_train": cfg.self_train.model_copy(update={"enabled": True, "rounds": 1})})
    self_trained = model_steps.self_train_task.fn(self_cfg, RUN, tuned.result, balanced, cleaned, weak)
    assert isinstance(self_trained, SelfTrained) and self_trained.rounds[0]["round"] == 0
    assert json.loads((catalog.run_dir(RUN) / "self_training.json").read_text()) == self_trained.rounds
    result = tuned.result
    evaluation = model_steps.evaluate_task.fn(cfg, RUN, result, cleaned, weak)
    assert evaluation.n_test == cleaned.gold_test.rows and evaluation.label_model is not None
    band = model_steps.seed_band_task.fn(cfg, RUN, tuned, cleaned, evaluation)
    assert [r["kept"] for r in band["seeds"]] == [f is tuned.result for f in tuned.fits]
    kept = next(r for r in band["seeds"] if r["kept"])
    assert kept["test_macro_f1"] == pytest.approx(evaluation.macro_f1, abs=1e-6)
    held_out = model_steps._gold_split(cfg, catalog, cleaned).held_out  # the gold dev rows that select, not train
    assert kept["dev_macro_f1"] == pytest.approx(scores(result.classifier, held_out, cfg.data.labels, 64)["macro_f1"])
    assert band["test_macro_f1"]["n"] == 2 and band["points_over_label_model"]["n"] == 2
    comparison = model_steps.compare_task.fn(cfg, RUN, result, cleaned)
    assert set(comparison) == {"test_sets", "compared_with"} and comparison["compared_with"] is None  # no champion
    (test_set,) = comparison["test_sets"].values()
    assert test_set["n"] == cleaned.gold_test.rows
    promotion = model_steps.promote_task.fn(cfg, RUN, result, evaluation, datasets, comparison)
    assert isinstance(promotion, Promotion) and promotion.promoted  # the first model becomes champion
    assert Path(promotion.model_dir, "README.md").exists()


def test_a_diverged_training_fails_the_flow_and_registers_nothing(staged):
    """The real flow, not a stand-in: after the stages above, a NaN loss stops the run before save and register."""
    from driftloop.errors import TrainingDivergedError
    from driftloop.flows.pipeline import pipeline

    cfg, _ = staged
    project = Path(cfg.project.root)
    registry_before = (project / "models" / "registry.json").read_bytes()
    models_before = sorted(p.name for p in (project / "models").iterdir())
    with pytest.raises(TrainingDivergedError, match="learning_rate"):
        pipeline(
            config_path=str(project / "configs" / "sms_spam.yaml"),
            overrides=[*_overrides(Path(cfg.train.model)), "train.learning_rate=1e30", "train.epochs=2"],
        )
    assert (project / "models" / "registry.json").read_bytes() == registry_before
    assert sorted(p.name for p in (project / "models").iterdir()) == models_before
    failed = [s for s in Catalog.from_config(cfg).run_summaries() if s.status == "failed"]
    assert len(failed) == 1 and "TrainingDivergedError" in failed[0].error
