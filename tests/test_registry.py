"""The file registry: promotion rules, atomic concurrent promotions, and predicting with the champion."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from driftloop.config import PromotionConfig
from driftloop.errors import NoChampionError, RegistryError
from driftloop.tasks.registry import Registry, decide, promotion_metrics


def _metrics(macro: float, ham: float | None = None, spam: float | None = None) -> dict:
    return {
        "macro_f1": macro,
        "per_class_f1": {"ham": macro if ham is None else ham, "spam": macro if spam is None else spam},
    }


def test_first_model_is_promoted_when_it_clears_the_floor(tmp_path):
    registry = Registry(tmp_path)
    decision = registry.register_and_promote("v1", tmp_path / "v1", _metrics(0.80), PromotionConfig(min_macro_f1=0.7))
    assert decision.promoted and decision.champion_before is None and decision.champion_after == "v1"
    assert "first model" in decision.reason
    assert registry.champion().version == "v1" and registry.get("v1").status == "champion"


def test_first_model_below_the_floor_stays_a_challenger(tmp_path):
    registry = Registry(tmp_path)
    decision = registry.register_and_promote("v1", tmp_path / "v1", _metrics(0.60), PromotionConfig(min_macro_f1=0.7))
    assert not decision.promoted and decision.champion_after is None and "floor" in decision.reason
    assert registry.champion() is None and registry.get("v1").status == "challenger"


@pytest.mark.parametrize(
    "challenger, promoted, why",
    [
        (_metrics(0.91), False, "margin"),  # better, but not by the margin
        (_metrics(0.92), True, "margin"),  # exactly champion + margin
        (_metrics(0.95), True, "margin"),
    ],
)
def test_margin_rule(challenger, promoted, why):
    ok, reason = decide(challenger, _metrics(0.90), PromotionConfig(margin=0.02, per_class_tolerance=1.0), "v1")
    assert ok is promoted and why in reason and "v1" in reason


@pytest.mark.parametrize("spam_f1, promoted", [(0.85, True), (0.849, False), (0.70, False)])
def test_per_class_regression_rule(spam_f1, promoted):
    champion = _metrics(0.90, ham=0.90, spam=0.90)
    challenger = _metrics(0.95, ham=1.0, spam=spam_f1)  # macro-F1 improves; spam may regress
    ok, reason = decide(challenger, champion, PromotionConfig(margin=0.0, per_class_tolerance=0.05))
    assert ok is promoted
    if not promoted:
        assert "'spam'" in reason and "per_class_tolerance" in reason


def test_promotion_archives_the_old_champion_and_keeps_history(tmp_path):
    registry = Registry(tmp_path)
    cfg = PromotionConfig(margin=0.01)
    registry.register_and_promote(
        "v1", tmp_path / "v1", _metrics(0.90), cfg, data_snapshots={"train": ["s1"]}, config_hash="abc"
    )
    lost = registry.register_and_promote("v2", tmp_path / "v2", _metrics(0.905), cfg)
    won = registry.register_and_promote("v3", tmp_path / "v3", _metrics(0.93), cfg)
    assert not lost.promoted and lost.champion_after == "v1"
    assert won.promoted and (won.champion_before, won.champion_after) == ("v1", "v3")
    assert [v.status for v in registry.versions()] == ["archived", "challenger", "champion"]
    assert registry.get("v1").data_snapshots == {"train": ["s1"]} and registry.get("v1").config_hash == "abc"
    assert registry.get("v1").path == "v1"  # stored relative to the models folder
    assert [d["challenger"] for d in registry.decisions()] == ["v1", "v2", "v3"]
    assert registry.promote("v3", cfg).reason == "v3 is already the champion"
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("v2", tmp_path / "v2", _metrics(0.5))
    with pytest.raises(RegistryError, match="not registered"):
        registry.promote("v9", cfg)
    other_test = registry.register_and_promote(
        "v4", tmp_path / "v4", _metrics(0.99), cfg, data_snapshots={"test": ["t2"]}
    )
    assert other_test.promoted and "note" not in other_test.reason  # v3 has no test snapshot recorded
    fifth = registry.register_and_promote("v5", tmp_path / "v5", _metrics(1.0), cfg, data_snapshots={"test": ["t3"]})
    assert fifth.promoted and "scored on test snapshots ['t2']" in fifth.reason
    rollback = registry.set_champion("v1", "v3 misbehaves in production")
    assert rollback.champion_after == "v1" and registry.get("v5").status == "archived"


def test_metrics_from_an_evaluation():
    evaluation = {
        "macro_f1": 0.9,
        "accuracy": 0.95,
        "ece": 0.02,
        "label_model_accuracy": 0.8,
        "per_class": {
            "ham": {"f1": 0.97, "precision": 1, "recall": 1, "support": 3},
            "spam": {"f1": 0.83, "precision": 1, "recall": 1, "support": 1},
        },
    }
    assert promotion_metrics(evaluation) == {
        "macro_f1": 0.9,
        "accuracy": 0.95,
        "ece": 0.02,
        "label_model_accuracy": 0.8,
        "per_class_f1": {"ham": 0.97, "spam": 0.83},
    }


def test_broken_registry_file_is_reported(tmp_path):
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(RegistryError, match="not valid JSON"):
        Registry(tmp_path).versions()


def _promote_many(models_dir: str, worker: int, n: int, start=None) -> None:
    registry = Registry(models_dir)
    if start is not None:
        start.wait(timeout=60)  # both workers begin together, so their transactions overlap
    for i in range(n):
        # Rising scores from both workers, so promotions really race each other.
        registry.register_and_promote(
            f"w{worker}-v{i:02d}",
            f"{models_dir}/w{worker}-v{i:02d}",
            _metrics(0.5 + 0.02 * i + 0.001 * worker),
            PromotionConfig(),
        )


def test_concurrent_promotions_lose_nothing(tmp_path):
    n = 40
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    workers = [ctx.Process(target=_promote_many, args=(str(tmp_path), w, n, start)) for w in (1, 2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    data = json.loads((tmp_path / "registry.json").read_text())  # valid JSON
    names = {v["version"] for v in data["versions"]}
    assert names == {f"w{w}-v{i:02d}" for w in (1, 2) for i in range(n)}
    assert len(data["decisions"]) == 2 * n
    champions = [v["version"] for v in data["versions"] if v["status"] == "champion"]
    assert champions == [data["champion"]]
    assert data["champion"] in {f"w1-v{n - 1:02d}", f"w2-v{n - 1:02d}"}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_predict_with_the_champion(tmp_path):
    from driftloop.config import TrainConfig
    from driftloop.tasks.predict import predict_with_champion
    from driftloop.tasks.train import save_model, train
    from tests.tiny_models import sms_like_frame, tiny_bert_dir

    models_dir = tmp_path / "models"
    with pytest.raises(NoChampionError, match="no champion"):
        predict_with_champion(["hi"], models_dir)
    base = tiny_bert_dir(tmp_path / "base")
    result = train(
        sms_like_frame(48, 0),
        sms_like_frame(16, 1),
        ["ham", "spam"],
        TrainConfig.of(model=str(base), method="feature", precision="fp32"),
        seed=0,
    )
    folder = save_model(result, models_dir / "v1")
    Registry(models_dir).register_and_promote("v1", folder, _metrics(result.best_dev_macro_f1))
    texts = ["WIN a FREE prize now call 5 to claim", "see you at lunch at 1 ok", "are we still meeting"]
    prediction = predict_with_champion(texts, models_dir, batch_size=2)
    assert prediction.model_version == "v1" and prediction.probabilities.shape == (3, 2)
    assert prediction.labels == result.classifier.predict(texts)
    records = prediction.records(texts)
    assert records[0]["text"] == texts[0] and set(records[0]["probs"]) == {"ham", "spam"}
    assert predict_with_champion([], models_dir).labels == []


def _compared(macro: float, champion: str | None, champion_macro: float | None = None) -> dict:
    """Metrics as the pipeline registers them: scored on the test sets against the champion of that moment."""
    out = {**_metrics(macro), "test_sets": {"t1": _metrics(macro)}, "compared_with": champion}
    if champion is not None:
        out["champion_now"] = {"version": champion, **_metrics(champion_macro)}
    return out


def test_a_comparison_with_a_champion_that_has_changed_never_promotes(tmp_path):
    """Issue 33, defect 4: X (0.80) champion; A (0.95) and B (0.85) both compared with X; A is promoted first."""
    registry, cfg = Registry(tmp_path), PromotionConfig(test="none")
    registry.register_and_promote("X", tmp_path / "X", _compared(0.80, None), cfg)
    assert registry.register_and_promote("A", tmp_path / "A", _compared(0.95, "X", 0.80), cfg).promoted
    late = registry.register_and_promote("B", tmp_path / "B", _compared(0.85, "X", 0.80), cfg)
    assert not late.promoted and registry.champion().version == "A"
    assert "compared with X, but the champion is now A" in late.reason
    # A run that started before any champion existed is stale too once one does.
    fresh = Registry(tmp_path / "fresh")
    fresh.register_and_promote("P", tmp_path / "P", _compared(0.80, None), cfg)
    stale = fresh.register_and_promote("Q", tmp_path / "Q", _compared(0.99, None), cfg)
    assert not stale.promoted and "compared with no champion, but the champion is now P" in stale.reason


def _register_compared(models_dir: str, version: str, macro: float, start) -> None:
    start.wait(timeout=60)  # both processes compared with X before either registers
    cfg = PromotionConfig(test="none")
    Registry(models_dir).register_and_promote(version, f"{models_dir}/{version}", _compared(macro, "X", 0.80), cfg)


def test_two_processes_compared_with_the_same_champion_promote_at_most_one(tmp_path):
    """Issue 33, defect 4, with real concurrent processes: A (0.95) and B (0.85) both compared with X (0.80) and
    register at the same moment. Whichever commits first may replace X; the other's comparison is stale then."""
    Registry(tmp_path).register_and_promote("X", tmp_path / "X", _compared(0.80, None), PromotionConfig(test="none"))
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    workers = [
        ctx.Process(target=_register_compared, args=(str(tmp_path), v, m, start)) for v, m in (("A", 0.95), ("B", 0.85))
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    decisions = {d["challenger"]: d for d in Registry(tmp_path).decisions() if d["challenger"] in ("A", "B")}
    promoted = [v for v, d in decisions.items() if d["promoted"]]
    assert len(promoted) == 1 and Registry(tmp_path).champion().version == promoted[0]
    (late,) = [d for v, d in decisions.items() if not d["promoted"]]
    assert f"compared with X, but the champion is now {promoted[0]}" in late["reason"]
