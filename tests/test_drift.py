"""Drift: calibrated tests, the family-wise null, scenarios on small sizes, verdicts and actions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from driftloop.config import DriftConfig, load_config
from driftloop.errors import ConfigError
from driftloop.tasks.drift import DriftSide, SignalOutcome, check_drift, majority_vote, persistent
from driftloop.tasks.drift import stats as drift_stats
from driftloop.tasks.drift.explain import log_odds_terms
from driftloop.tasks.drift.signals import build_signals

REPO = Path(__file__).resolve().parents[1]
LABELS = ["ham", "spam"]
CHEAP = {"class_prior": 0.0, "length": 0.0, "casing": 0.0, "lf_coverage": 0.0, "lf_conflict": 0.0}


def _side(rng, n, *, spam=0.13, cover=0.95, shift=0.0, dim=16, embed=False, conf=0.9, words=None) -> DriftSide:
    """Synthetic rows: two LFs that vote the true class on covered rows, lengths by class, optional embeddings."""
    y = (rng.random(n) < spam).astype(int)
    covered = rng.random(n) < cover
    votes = np.full((n, 2), -1)
    votes[covered, 0] = y[covered]
    second = covered & (rng.random(n) < 0.4)
    votes[second, 1] = np.where(rng.random(second.sum()) < 0.9, y[second], 1 - y[second])
    lengths = np.where(y == 1, rng.integers(80, 160, n), rng.integers(10, 120, n))
    vocab = words or ["lunch", "home", "later", "ok", "call", "free", "prize"]
    texts = np.array([" ".join(rng.choice(vocab, 3)).ljust(int(k), "x") for k in lengths], dtype=object)
    emb = rng.normal(size=(n, dim)) if embed else None
    if emb is not None:
        emb[:, 0] += shift
    top = np.clip(rng.normal(conf, 0.05, n), 0.5, 1.0)
    probs = np.c_[np.where(y == 0, top, 1 - top), np.where(y == 0, 1 - top, top)]
    return DriftSide(
        texts=texts,
        votes=votes,
        weak_labels=majority_vote(votes, 2),
        sample=np.arange(n),
        embeddings=emb,
        probs=probs,
        calibrated=probs,
    )


def _check(ref, cur, explain_changes=True, **cfg):
    return check_drift(
        ref, cur, DriftConfig(**cfg), labels=LABELS, lf_names=["lf_a", "lf_b"], seed=0, explain_changes=explain_changes
    )


# ---- statistics ---------------------------------------------------------------------------------


def test_g_test_and_total_variation():
    same = drift_stats.g_test(np.array([870, 130]), np.array([87, 13]))
    assert same.p_value > 0.99 and same.effect == pytest.approx(0.0)
    shifted = drift_stats.g_test(np.array([870, 130]), np.array([200, 100]))
    assert shifted.p_value < 1e-10 and shifted.effect == pytest.approx(0.2033, abs=1e-3)
    # A class seen on neither side carries no information; an empty side is no evidence.
    assert drift_stats.g_test(np.array([5, 5, 0]), np.array([5, 5, 0])).p_value > 0.99
    assert drift_stats.g_test(np.array([5, 5]), np.array([0, 0])).p_value == 1.0


def test_holm_and_bonferroni():
    p = [0.01, 0.04, 0.03, 0.5]
    assert drift_stats.adjust(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 1.0])
    assert drift_stats.adjust(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert drift_stats.adjust([], "holm") == []
    with pytest.raises(ValueError, match="holm"):
        drift_stats.adjust(p, "fdr")


def test_auc_ks_and_mean_tests():
    rng = np.random.default_rng(0)
    auc = drift_stats.auc_test(rng.normal(0, 1, 500), rng.normal(1, 1, 500))
    assert auc.effect > 0.7 and auc.p_value < 1e-10
    assert drift_stats.auc_test(np.array([]), np.array([1.0])).p_value == 1.0
    ks = drift_stats.ks_test(rng.normal(0, 1, 300), rng.normal(0, 1, 300))
    assert ks.p_value > 0.01
    drop = drift_stats.mean_shift_test(np.full(50, 0.9) + rng.normal(0, 0.01, 50), np.full(50, 0.8), "less")
    assert drop.p_value < 1e-6 and drop.effect == pytest.approx(-0.1, abs=0.01)


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    right = rng.random(2000) < 0.8  # 80% accurate but claims 99%
    pred = np.where(right, y, 1 - y)
    probs = np.where(pred[:, None] == np.arange(2), 0.99, 0.01)
    t = drift_stats.fit_temperature(probs, y)
    assert t > 1.5
    assert drift_stats.apply_temperature(probs, t).max(axis=1).mean() == pytest.approx(0.8, abs=0.02)


def test_majority_vote_abstains_on_ties_and_silence():
    votes = np.array([[1, 1, -1], [0, 1, -1], [-1, -1, -1], [0, 0, 1]])
    assert majority_vote(votes, 2).tolist() == [1, -1, -1, 0]
    assert majority_vote(np.zeros((0, 3), dtype=int), 2).tolist() == []


# ---- calibration of the null ---------------------------------------------------------------------


def test_family_false_alarm_rate_is_near_alpha_on_no_drift_draws():
    """200 same-distribution checks of the cheap signals on two scopes: the family-wise rate stays near 5%."""
    rng = np.random.default_rng(7)
    alarms = 0
    for _ in range(200):
        ref = _side(rng, 400)
        newest = _side(rng, 60)
        since = _side(rng, 200)
        check = _check(ref, {"newest": newest, "since_reference": since}, False, thresholds=CHEAP)
        alarms += check.drifted
    # Holm is conservative with correlated tests; 0.05 + 3 binomial standard errors (0.015) at most.
    assert alarms / 200 <= 0.095


def test_domain_classifier_null_is_calibrated():
    rng = np.random.default_rng(3)
    p_values = []
    for _ in range(100):
        check = _check(
            _side(rng, 200, embed=True),
            {"newest": _side(rng, 100, embed=True)},
            False,
            thresholds={"domain_classifier": 0.5},
        )
        p_values.append(check.signals[0]["p_value"])
    assert np.mean(np.asarray(p_values) <= 0.05) <= 0.1
    assert np.median(p_values) > 0.2


# ---- scenarios -------------------------------------------------------------------------------------


def test_prior_shift_x2_at_300_rows_is_drift_naming_the_class():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(10):
        check = _check(_side(rng, 1000), {"newest": _side(rng, 300, spam=0.26)})
        hits += check.drifted
    assert hits >= 9
    assert check.action == "retrain" and "class spam shifted" in check.verdict
    assert check.explanations["class_shares"]["current"]["spam"] > 0.2


def test_domain_shift_is_drift_with_new_examples():
    rng = np.random.default_rng(2)
    check = _check(_side(rng, 600, embed=True), {"newest": _side(rng, 200, embed=True, shift=1.5)})
    row = next(s for s in check.signals if s["name"] == "domain_classifier")
    assert row["alarm"] and row["effect"] > 0.7
    assert len(check.explanations["new_examples"]) == 10 and "new kind of text" in check.verdict


def test_lf_coverage_drop_opens_a_review_instead_of_retraining():
    rng = np.random.default_rng(4)
    cur = _side(rng, 300, cover=0.6)
    check = _check(_side(rng, 1000), {"newest": cur})
    assert check.action == "review" and "LF coverage dropped" in check.verdict
    assert set(check.uncovered["newest"]) == set(np.flatnonzero(~cur.covered))
    assert check.explanations["lf_coverage"][0]["delta"] < -0.2


def test_minimum_effect_keeps_huge_batches_quiet_on_trivia():
    rng = np.random.default_rng(5)
    check = _check(_side(rng, 30_000, spam=0.13), {"newest": _side(rng, 30_000, spam=0.145)}, False)
    prior = next(s for s in check.signals if s["name"] == "class_prior")
    assert prior["p_adjusted"] < 0.05 and not prior["alarm"]
    assert not check.drifted and check.verdict.startswith("harmless shift")


def test_a_drifted_newest_batch_is_not_diluted_by_normal_ones():
    rng = np.random.default_rng(6)
    ref = _side(rng, 1000)
    newest = _side(rng, 100, spam=0.45)
    since = DriftSide(
        texts=np.r_[_side(rng, 900).texts, newest.texts],
        votes=np.r_[_side(rng, 900).votes, newest.votes],
        weak_labels=np.r_[_side(rng, 900).weak_labels, newest.weak_labels],
        sample=np.arange(0),
    )
    check = _check(ref, {"newest": newest, "since_reference": since})
    fired = {(s["name"], s["scope"]) for s in check.signals if s["alarm"]}
    assert ("class_prior", "newest") in fired and check.explanations["scope"] == "newest"


def test_estimated_accuracy_drop_names_the_hurt_class():
    rng = np.random.default_rng(8)
    cur = _side(rng, 400, conf=0.7)
    check = _check(_side(rng, 1000, conf=0.95), {"newest": cur})
    acc = next(s for s in check.signals if s["name"] == "estimated_accuracy")
    assert acc["alarm"] and acc["effect"] > 0.2
    assert "estimated accuracy -" in check.verdict and "hurting class" in check.verdict
    assert check.explanations["estimated_accuracy"]["delta"] < -0.2


def test_model_signals_are_skipped_without_a_champion():
    rng = np.random.default_rng(9)
    plain = _side(rng, 300)
    plain = DriftSide(texts=plain.texts, votes=plain.votes, weak_labels=plain.weak_labels, sample=np.arange(0))
    check = _check(plain, {"newest": plain})
    names = {s["name"] for s in check.signals}
    assert names == {"class_prior", "length", "casing", "lf_coverage", "lf_conflict"}
    assert any("model_prediction" in s for s in check.skipped)


def test_persistence_k_of_n():
    assert persistent(True, [], 1, 1)
    assert not persistent(True, [False, False], 2, 3)
    assert persistent(True, [True, False], 2, 3)
    assert not persistent(True, [True, False, False], 2, 3)  # only the last n-1 count
    assert not persistent(False, [True, True], 1, 3)
    rng = np.random.default_rng(10)
    check = check_drift(
        _side(rng, 1000),
        {"newest": _side(rng, 300, spam=0.4)},
        DriftConfig(persistence_k=2, persistence_n=3),
        labels=LABELS,
        lf_names=["lf_a", "lf_b"],
        previous_alarms=[False, False],
    )
    assert check.raw_alarm and not check.drifted and check.action == "none" and check.verdict.startswith("not yet")


def test_report_rows_have_the_documented_keys():
    rng = np.random.default_rng(11)
    report = _check(_side(rng, 300), {"newest": _side(rng, 100)}).as_dict()
    assert {"action", "drifted", "verdict", "reason", "signals", "explanations"} <= set(report)
    keys = {"name", "scope", "statistic", "p_value", "p_adjusted", "effect", "min_effect", "alarm", "detail"}
    assert all(keys <= set(s) for s in report["signals"])
    assert {
        "new_examples",
        "terms_over",
        "terms_under",
        "class_shares",
        "lf_coverage",
        "estimated_accuracy",
        "model",
    } <= set(report["explanations"])


def test_log_odds_terms_find_the_new_words():
    ref = np.array(["see you at lunch", "home later ok", "call me later"] * 50, dtype=object)
    cur = np.array(["claim your crypto wallet bonus", "see you at lunch"] * 50, dtype=object)
    over, under = log_odds_terms(ref, cur, top=5)
    assert {"crypto", "wallet"} <= {t["term"] for t in over}
    assert "home" in {t["term"] for t in under}


# ---- configuration and extension -----------------------------------------------------------------


def test_unknown_signal_and_bad_persistence_fail_at_load():
    config = REPO / "configs" / "sms_spam.yaml"
    with pytest.raises(ConfigError, match="unknown signal"):
        load_config(config, ["drift.thresholds={'psi': 0.2}"])
    with pytest.raises(ConfigError, match="persistence_k"):
        load_config(config, ["drift.persistence_k=3", "drift.persistence_n=2"])


class ShareOfQuestions:
    """A custom signal: the share of texts with a question mark (named by dotted path in config)."""

    name = "questions"
    needs = frozenset()

    def test(self, reference, current, ctx):
        r = sum("?" in t for t in reference.texts)
        c = sum("?" in t for t in current.texts)
        res = drift_stats.two_proportions(r, reference.rows, c, current.rows)
        return SignalOutcome(res.statistic, res.p_value, abs(res.effect), "questions")


def test_a_new_signal_is_one_class():
    name = f"{__name__}:ShareOfQuestions"
    assert isinstance(build_signals([name])[0], ShareOfQuestions)
    with pytest.raises(ConfigError, match="cannot be imported"):
        build_signals(["no_such_module:Nope"])
    rng = np.random.default_rng(12)
    ref = _side(rng, 300)
    cur = _side(rng, 300, words=["why?", "what?", "ok"])
    check = check_drift(ref, {"newest": cur}, DriftConfig(thresholds={name: 0.1}), labels=LABELS, lf_names=["a", "b"])
    assert check.drifted and check.signals[0]["name"] == name
