import numpy as np
import pytest

from driftloop.config import DriftConfig
from driftloop.flows.retrain import _majority_vote
from driftloop.tasks.drift import binned_psi, detect_drift, psi


def _inputs(rng, shift: float, spam_share: float, n: int = 200):
    emb = rng.normal(shift, 1.0, size=(n, 16))
    labels = (rng.random(n) < spam_share).astype(int)
    lengths = rng.integers(20, 160, n)
    return emb, labels, lengths


def _detect(ref, cur, **cfg):
    return detect_drift(
        reference_embeddings=ref[0],
        current_embeddings=cur[0],
        reference_labels=ref[1],
        current_labels=cur[1],
        reference_lengths=ref[2],
        current_lengths=cur[2],
        n_classes=2,
        cfg=DriftConfig(**cfg),
        seed=0,
    )


def test_same_distribution_is_not_drift():
    rng = np.random.default_rng(0)
    report = _detect(_inputs(rng, 0.0, 0.15, 300), _inputs(rng, 0.0, 0.15))
    assert not report.drifted and report.exceeded == []


def test_embedding_shift_and_label_prior_shift_are_drift():
    rng = np.random.default_rng(1)
    ref = _inputs(rng, 0.0, 0.15, 300)
    report = _detect(ref, _inputs(rng, 0.6, 0.5))
    assert report.drifted and set(report.exceeded) >= {"domain_auc", "label_psi"}
    assert report.signals["domain_auc"] > 0.75
    assert report.as_dict()["current_label_share"][1] > 0.4


def test_too_few_rows_is_a_clear_error():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="min_current_rows"):
        _detect(_inputs(rng, 0, 0.1), _inputs(rng, 0, 0.1, n=10))


def test_psi_properties():
    assert psi([50, 50], [50, 50]) == pytest.approx(0.0)
    assert psi([90, 10], [50, 50]) > 0.2
    assert binned_psi(np.arange(100.0), np.arange(100.0)) == pytest.approx(0.0)


def test_majority_vote_abstains_on_ties_and_silence():
    votes = np.array([[1, 1, -1], [0, 1, -1], [-1, -1, -1], [0, 0, 1]])
    assert _majority_vote(votes, 2).tolist() == [1, -1, -1, 0]
