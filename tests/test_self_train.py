"""Self-training rounds (kept only when gold dev improves) and the paired significance tests for promotion."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from driftloop.config import PromotionConfig, SelfTrainConfig, TrainConfig
from driftloop.tasks.registry import decide
from driftloop.tasks.self_train import pseudo_label, self_train
from driftloop.tasks.significance import compare, mcnemar, paired_bootstrap

LABELS = ["sports", "tech"]


class _BagOfWords:
    """A real (tiny) text classifier with the TextClassifier interface: predict_proba(texts, batch_size)."""

    def __init__(self, frame: pd.DataFrame):
        self.vec = CountVectorizer().fit(frame["text"])
        self.model = LogisticRegression(C=10.0).fit(self.vec.transform(frame["text"]), frame["label"])

    def predict_proba(self, texts, batch_size=128):
        probs = self.model.predict_proba(self.vec.transform(texts))
        order = [list(self.model.classes_).index(c) for c in LABELS]
        return probs[:, order]


def _train(frame, dev, labels, cfg, *, seed, class_weights=None):
    return SimpleNamespace(classifier=_BagOfWords(frame), rows=len(frame))


def _data():
    sports = ["goal in the match", "the striker scored", "match ends in a draw", "coach praises the team"]
    tech = ["new software release", "the chip is faster", "software update for phones", "chip makers report"]
    train = pd.DataFrame({"text": sports[:2] + tech[:2], "label": ["sports"] * 2 + ["tech"] * 2})
    uncovered = pd.DataFrame({"text": ["the team scored a goal", "phones get a software chip", "draw for the team"]})
    dev = pd.DataFrame({"text": sports[2:] + tech[2:], "label": ["sports"] * 2 + ["tech"] * 2})
    return train, uncovered, dev


def test_rounds_report_and_keep_only_dev_gains() -> None:
    train, uncovered, dev = _data()
    cfg = SelfTrainConfig(enabled=True, rounds=2, min_confidence=0.5, max_per_class_ratio=1.0)
    out = self_train(train, uncovered, dev, LABELS, TrainConfig.of(), cfg, seed=0, train_fn=_train, test=dev)
    assert out.rounds[0]["round"] == 0 and out.rounds[0]["kept"] and out.rounds[0]["test"] is not None
    assert len(out.rounds) >= 2 and set(out.rounds[1]["added_per_class"]) == set(LABELS)
    assert sum(out.rounds[1]["added_per_class"].values()) > 0
    kept = [r["round"] for r in out.rounds if r["kept"]]
    assert out.kept_round == kept[-1]
    for earlier, later in zip(kept, kept[1:], strict=False):
        assert out.rounds[later]["dev"]["macro_f1"] > out.rounds[earlier]["dev"]["macro_f1"]
    disabled = self_train(train, uncovered, dev, LABELS, TrainConfig.of(), SelfTrainConfig(), seed=0, train_fn=_train)
    assert len(disabled.rounds) == 1 and disabled.train_frame is train


def test_pseudo_labels_are_capped_per_class() -> None:
    probs = np.array([[0.99, 0.01], [0.97, 0.03], [0.95, 0.05], [0.2, 0.8], [0.55, 0.45]])
    uncovered = pd.DataFrame({"text": list("abcde")})
    cfg = SelfTrainConfig(min_confidence=0.9, max_per_class_ratio=0.5)
    out = pseudo_label(probs, uncovered, LABELS, {"sports": 4, "tech": 10}, cfg)
    assert out["text"].tolist() == ["a", "b"]  # sports capped at 2 (most confident first); tech below 0.9
    assert out["is_pseudo_label"].all() and (out["label_confidence"] >= 0.9).all()


def test_identical_predictions_are_never_significant() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.8, y, (y + 1) % 3)
    for test in ("bootstrap", "mcnemar"):
        result = compare(y, pred, pred.copy(), test=test, level=0.05, n_samples=300)
        assert not result.significant and result.p_value == 1.0 and result.macro_f1_difference == 0.0


def test_a_clearly_better_challenger_is_significant() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    champion = np.where(rng.random(400) < 0.7, y, 1 - y)
    challenger = np.where(rng.random(400) < 0.95, y, 1 - y)
    assert mcnemar(y, champion, challenger, level=0.05).significant
    boot = paired_bootstrap(y, champion, challenger, level=0.05, n_samples=500)
    assert boot.significant and boot.ci_low > 0
    assert not mcnemar(y, challenger, champion, level=0.05).significant  # one-sided
    with pytest.raises(ValueError, match="same non-empty gold rows"):
        mcnemar(y, champion[:-1], challenger, level=0.05)


def test_decide_needs_evidence() -> None:
    champion = {"macro_f1": 0.9, "per_class_f1": {"a": 0.9}}
    cfg = PromotionConfig()
    tie = {"macro_f1": 0.9, "per_class_f1": {"a": 0.9}}
    promoted, reason = decide(tie, champion, cfg)
    assert not promoted and "identical retrain" in reason
    noise = {"macro_f1": 0.91, "per_class_f1": {"a": 0.91}, "significance": {"significant": False, "p_value": 0.3}}
    promoted, reason = decide(noise, champion, cfg)
    assert not promoted and "beyond noise" in reason
    better = {**noise, "significance": {"significant": True, "p_value": 0.01}}
    assert decide(better, champion, cfg)[0]
