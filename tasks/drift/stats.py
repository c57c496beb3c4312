"""Two-sample tests and effect sizes for drift signals, each calibrated to the sample sizes.

Every test compares a reference sample with a current sample and returns a p-value under the
null "both are draws from the same distribution", so a big batch and a small one are judged on
the same scale. Effect sizes are reported next to the p-values: a huge batch makes trivia
significant, and the minimum effect per signal (``drift.thresholds``) keeps those quiet.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

_EPS = 1e-4


@dataclass(frozen=True)
class TestResult:
    """A statistic, its p-value and an effect size on the signal's own scale."""

    statistic: float
    p_value: float
    effect: float


def shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def total_variation(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Half the L1 distance between two share vectors: the largest share any set of classes gained."""
    return float(0.5 * np.abs(shares(reference_counts) - shares(current_counts)).sum())


def g_test(reference_counts: np.ndarray, current_counts: np.ndarray) -> TestResult:
    """G-test of homogeneity on a 2 x k table of class counts; effect = total variation distance.

    Classes seen on neither side are dropped (they carry no information and would zero a row).
    """
    table = np.vstack([reference_counts, current_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return TestResult(0.0, 1.0, 0.0)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(table > 0, table * np.log(table / expected), 0.0)
    g = float(2.0 * terms.sum())
    dof = table.shape[1] - 1
    return TestResult(g, float(stats.chi2.sf(g, dof)), total_variation(table[0], table[1]))


def two_proportions(ref_hits: int, ref_n: int, cur_hits: int, cur_n: int) -> TestResult:
    """Two-sided test that two rates are equal; effect = current rate - reference rate.

    The p-value is Fisher's exact test: rates near 0 or 1 on a 100-row batch (LF coverage is ~95%) leave a
    handful of rows in one cell, where the G-test's chi-square approximation alarmed 5% of the time on
    same-distribution batches. The statistic reported is still the G statistic.
    """
    ref_miss, cur_miss = ref_n - ref_hits, cur_n - cur_hits
    result = g_test(np.array([ref_hits, ref_miss]), np.array([cur_hits, cur_miss]))
    p_value = (
        1.0 if min(ref_n, cur_n) == 0 else float(stats.fisher_exact([[ref_hits, ref_miss], [cur_hits, cur_miss]])[1])
    )
    delta = (cur_hits / cur_n if cur_n else 0.0) - (ref_hits / ref_n if ref_n else 0.0)
    return TestResult(result.statistic, p_value, float(delta))


def ks_test(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test; effect = the KS distance D (largest CDF gap)."""
    if len(reference) == 0 or len(current) == 0:
        return TestResult(0.0, 1.0, 0.0)
    res = stats.ks_2samp(reference, current, method="asymp")
    return TestResult(float(res.statistic), float(res.pvalue), float(res.statistic))


def mean_shift_test(reference: np.ndarray, current: np.ndarray, alternative: str = "two-sided") -> TestResult:
    """Welch's t-test on two means; effect = current mean - reference mean."""
    if len(reference) < 2 or len(current) < 2:
        return TestResult(0.0, 1.0, 0.0)
    delta = float(np.mean(current) - np.mean(reference))
    if np.var(reference) == 0 and np.var(current) == 0:
        return TestResult(0.0, 1.0 if delta == 0 else 0.0, delta)
    with warnings.catch_warnings():  # near-identical samples: scipy warns, the p-value is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(current, reference, equal_var=False, alternative=alternative)
    return TestResult(float(res.statistic), float(res.pvalue), delta)


def auc_test(reference_scores: np.ndarray, current_scores: np.ndarray) -> TestResult:
    """One-sided Mann-Whitney U test that current rows score higher; effect = ROC AUC.

    With a domain classifier's scores on rows it was not fitted on, this is the classifier two-sample
    test: under no drift those scores are exchangeable between the sides, so the AUC's null is
    Mann-Whitney's.
    """
    if len(reference_scores) == 0 or len(current_scores) == 0:
        return TestResult(0.5, 1.0, 0.5)
    res = stats.mannwhitneyu(current_scores, reference_scores, alternative="greater", method="asymptotic")
    auc = float(res.statistic) / (len(reference_scores) * len(current_scores))
    return TestResult(auc, float(res.pvalue), auc)


def adjust(p_values: list[float], method: str = "holm") -> list[float]:
    """Family-wise adjusted p-values (Holm's step-down or Bonferroni), in input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    if method == "bonferroni":
        return np.minimum(1.0, p * m).tolist()
    if method != "holm":
        raise ValueError(f"unknown correction {method!r}; use 'holm' or 'bonferroni'")
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return out.tolist()


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two count (or share) vectors over the same bins."""
    ref = np.clip(shares(np.asarray(reference, dtype=float)), _EPS, None)
    cur = np.clip(shares(np.asarray(current, dtype=float)), _EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def fit_temperature(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature T minimising the log loss of softmax(log p / T) on labelled rows (T=1: unchanged)."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(probs, 1e-12, 1.0))

    def nll(t: float) -> float:
        scaled = logp / t
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(-(scaled[np.arange(len(y_true)), y_true] - log_norm).mean())

    res = minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded")
    return float(res.x)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return out / out.sum(axis=1, keepdims=True)
