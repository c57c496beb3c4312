"""Drift signals: one small class each, behind one protocol.

A signal compares a reference side with a current side and returns a statistic, a p-value from a
test calibrated to the sample sizes, and an effect size. The check (``check.py``) corrects the
p-values for the whole family and alarms only where the effect also reaches the signal's minimum
(``drift.thresholds[name]``). A new signal is one class with a ``name``, the inputs it ``needs``
and a ``test`` method, registered in ``SIGNALS`` (or named by dotted path in ``drift.thresholds``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from threadpoolctl import threadpool_limits

from driftloop.errors import ConfigError
from driftloop.tasks.drift import stats


@dataclass(frozen=True)
class DriftSide:
    """One side of a comparison: every row's cleaned text and LF votes; embeddings and champion
    probabilities for a sample of them (``sample`` holds those rows' positions).

    ``weak_labels`` is the LF majority vote per row, -1 where every LF abstains or the top classes tie.
    """

    texts: np.ndarray
    votes: np.ndarray
    weak_labels: np.ndarray
    sample: np.ndarray
    embeddings: np.ndarray | None = None
    probs: np.ndarray | None = None
    calibrated: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.texts)
        if self.votes.shape[0] != n or len(self.weak_labels) != n:
            raise ValueError(
                f"DriftSide: {n} texts but {self.votes.shape[0]} vote rows, {len(self.weak_labels)} labels"
            )
        for name in ("embeddings", "probs", "calibrated"):
            value = getattr(self, name)
            if value is not None and len(value) != len(self.sample):
                raise ValueError(f"DriftSide: {name} has {len(value)} rows but the sample has {len(self.sample)}")

    @property
    def rows(self) -> int:
        return len(self.texts)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(t) for t in self.texts), dtype=np.int64, count=len(self.texts))

    @property
    def covered(self) -> np.ndarray:
        return (self.votes != -1).any(axis=1) if self.votes.shape[1] else np.zeros(self.rows, bool)

    def has(self, need: str) -> bool:
        return {"embeddings": self.embeddings, "model": self.probs, "calibrated": self.calibrated}[need] is not None


@dataclass(frozen=True)
class SignalContext:
    labels: list[str]
    lf_names: list[str]
    seed: int = 0
    domain_components: int = 32


@dataclass
class SignalOutcome:
    statistic: float
    p_value: float
    effect: float
    detail: str
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class DriftSignal(Protocol):
    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome: ...


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _biggest_share_change(ref_counts: np.ndarray, cur_counts: np.ndarray, labels: list[str]) -> tuple[int, str]:
    ref_s, cur_s = stats.shares(ref_counts), stats.shares(cur_counts)
    # The class whose share moved most relative to its size: with two classes both move by the same
    # amount, and "spam 13% -> 33%" says more than "ham 87% -> 67%".
    k = int(np.argmax(np.abs(np.log((cur_s + 1e-3) / (ref_s + 1e-3)))))
    return k, f"{labels[k]} {_pct(ref_s[k])} -> {_pct(cur_s[k])}"


class ClassPrior:
    """Weak-label class shares (LF majority vote): G-test; effect = total variation distance."""

    name = "class_prior"
    needs: ClassVar[frozenset[str]] = frozenset()

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        k = len(ctx.labels)
        ref = np.bincount(reference.weak_labels[reference.weak_labels >= 0], minlength=k)
        cur = np.bincount(current.weak_labels[current.weak_labels >= 0], minlength=k)
        res = stats.g_test(ref, cur)
        idx, change = _biggest_share_change(ref, cur, ctx.labels)
        return SignalOutcome(res.statistic, res.p_value, res.effect, f"weak-label share {change}", {"class": idx})


class DomainClassifier:
    """A classifier tells current from reference embeddings: held-out ROC AUC, Mann-Whitney null."""

    name = "domain_classifier"
    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        scores, held_out = domain_scores(reference.embeddings, current.embeddings, ctx)
        n_ref = len(reference.embeddings)
        side = np.r_[np.zeros(n_ref, dtype=bool), np.ones(len(current.embeddings), dtype=bool)]
        res = stats.auc_test(scores[held_out & ~side], scores[held_out & side])
        return SignalOutcome(
            res.statistic,
            res.p_value,
            res.effect,
            f"ROC AUC {res.effect:.3f} telling {len(current.embeddings)} new from {n_ref} reference rows",
            {"current_scores": scores[n_ref:]},
        )


def domain_scores(reference: np.ndarray, current: np.ndarray, ctx: SignalContext) -> tuple[np.ndarray, np.ndarray]:
    """P(current) for every row (reference rows first), and the mask of the rows the test may use.

    PCA, then an L2 logistic regression with balanced class weights, fitted on one half of each side and
    scored on the other: the AUC test runs on the held-out half only. Out-of-fold scores pooled across
    cross-fitted folds looked like a cheaper way to use every row, but they are not independent of each
    other, and on same-distribution batches their Mann-Whitney p-values came out too small (3% alarms
    after Holm over 18 tests, against the 0.3% a valid null gives). Every current row still gets a score
    (in-sample for the fitting half), for ranking the most "new" examples.

    Plain numpy (randomised PCA + a few Newton steps): on a few hundred rows scikit-learn's per-call checks cost
    more than the fit, and the benchmark runs thousands of checks. PCA is fitted without the side
    labels, so it cannot leak them; it keeps the fit small and less prone to fit noise in 384 dimensions.
    """
    x = np.vstack([reference, current]).astype(np.float64)
    y = np.r_[np.zeros(len(reference)), np.ones(len(current))]
    held_out = np.zeros(len(y), dtype=bool)
    if min(len(reference), len(current)) < 2:
        return np.full(len(x), 0.5), held_out
    rng = np.random.default_rng(ctx.seed)
    for side in (0, 1):  # half of each side, so both halves keep the sides' proportions
        idx = rng.permutation(np.flatnonzero(y == side))
        held_out[idx[: len(idx) // 2]] = True
    # One BLAS thread: these matrices are small, and on a busy machine threads made it 25x slower.
    with threadpool_limits(1):
        x = x - x.mean(axis=0)
        components = int(min(ctx.domain_components, x.shape[1], len(x) - 1))
        z = x @ _top_directions(x, components, rng).T
        z = np.c_[z / (z.std(axis=0) + 1e-12), np.ones(len(z))]
        w = _logistic_fit(z[~held_out], y[~held_out])
        return 1.0 / (1.0 + np.exp(-(z @ w))), held_out


def _top_directions(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The top-k principal directions (k, d) by a randomised range finder (Halko et al. 2011): two power
    iterations on k + 10 random probes; far cheaper than a full SVD when k is much below d."""
    probes = min(k + 10, min(x.shape))
    q, _ = np.linalg.qr(x @ rng.normal(size=(x.shape[1], probes)))
    for _ in range(2):
        q, _ = np.linalg.qr(x @ (x.T @ q))
    _, _, vt = np.linalg.svd(q.T @ x, full_matrices=False)
    return vt[:k]


def _logistic_fit(z: np.ndarray, y: np.ndarray, c: float = 1.0, steps: int = 12) -> np.ndarray:
    """L2-penalised (not the intercept), class-balanced logistic regression by Newton's method."""
    n_pos = max(y.sum(), 1.0)
    n_neg = max(len(y) - y.sum(), 1.0)
    weight = np.where(y == 1, len(y) / (2 * n_pos), len(y) / (2 * n_neg))
    penalty = np.ones(z.shape[1])
    penalty[-1] = 0.0
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = penalty * w + c * z.T @ (weight * (p - y))
        hess = np.diag(penalty + 1e-9) + c * (z.T * (weight * p * (1 - p))) @ z
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


class TextLength:
    """Text length in characters: two-sample KS test; effect = KS distance."""

    name = "length"
    needs: ClassVar[frozenset[str]] = frozenset()

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        ref_len, cur_len = reference.lengths, current.lengths
        res = stats.ks_test(ref_len, cur_len)
        detail = f"median length {np.median(ref_len):.0f} -> {np.median(cur_len):.0f} chars" if len(cur_len) else ""
        return SignalOutcome(res.statistic, res.p_value, res.effect, detail)


class Casing:
    """Share of upper-case letters per text: two-sample KS test; effect = KS distance. Sentence encoders
    lower-case their input, so a casing shift is invisible to the domain classifier."""

    name = "casing"
    needs: ClassVar[frozenset[str]] = frozenset()

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        ref, cur = _upper_share(reference.texts), _upper_share(current.texts)
        res = stats.ks_test(ref, cur)
        detail = f"mean upper-case share {ref.mean():.2f} -> {cur.mean():.2f}" if len(cur) and len(ref) else ""
        return SignalOutcome(res.statistic, res.p_value, res.effect, detail)


def _upper_share(texts: np.ndarray) -> np.ndarray:
    import polars as pl

    column = pl.Series(values=[str(t) for t in texts], dtype=pl.String)
    letters = column.str.count_matches(r"\p{L}").cast(pl.Float64)
    upper = column.str.count_matches(r"\p{Lu}").cast(pl.Float64)
    return (upper / letters.clip(lower_bound=1.0)).to_numpy()


class LFCoverage:
    """Share of rows any LF votes on (1 - abstain rate): two-proportion test; effect = |change|."""

    name = "lf_coverage"
    needs: ClassVar[frozenset[str]] = frozenset()

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        ref_hits, cur_hits = int(reference.covered.sum()), int(current.covered.sum())
        res = stats.two_proportions(ref_hits, reference.rows, cur_hits, current.rows)
        ref_rate, cur_rate = ref_hits / max(reference.rows, 1), cur_hits / max(current.rows, 1)
        return SignalOutcome(
            res.statistic,
            res.p_value,
            abs(res.effect),
            f"LF coverage {_pct(ref_rate)} -> {_pct(cur_rate)}",
            {"dropped": res.effect < 0, "reference": ref_rate, "current": cur_rate},
        )


class LFConflict:
    """Share of rows where LFs vote for different classes: two-proportion test; effect = |change|."""

    name = "lf_conflict"
    needs: ClassVar[frozenset[str]] = frozenset()

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        ref_hits, cur_hits = int(_conflicts(reference.votes).sum()), int(_conflicts(current.votes).sum())
        res = stats.two_proportions(ref_hits, reference.rows, cur_hits, current.rows)
        ref_rate, cur_rate = ref_hits / max(reference.rows, 1), cur_hits / max(current.rows, 1)
        return SignalOutcome(
            res.statistic, res.p_value, abs(res.effect), f"LF conflict rate {_pct(ref_rate)} -> {_pct(cur_rate)}"
        )


def _conflicts(votes: np.ndarray) -> np.ndarray:
    if votes.shape[1] == 0:
        return np.zeros(len(votes), bool)
    big = np.iinfo(np.int64).max
    lowest = np.where(votes == -1, big, votes).min(axis=1)
    highest = votes.max(axis=1)
    return (highest >= 0) & (lowest != highest)


class ModelPrediction:
    """The champion's predicted-class shares: G-test; effect = total variation distance."""

    name = "model_prediction"
    needs: ClassVar[frozenset[str]] = frozenset({"model"})

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        k = len(ctx.labels)
        ref = np.bincount(reference.probs.argmax(axis=1), minlength=k)
        cur = np.bincount(current.probs.argmax(axis=1), minlength=k)
        res = stats.g_test(ref, cur)
        idx, change = _biggest_share_change(ref, cur, ctx.labels)
        return SignalOutcome(res.statistic, res.p_value, res.effect, f"champion predicts {change}", {"class": idx})


class ModelConfidence:
    """The champion's mean top-class probability: Welch t-test; effect = |change|."""

    name = "model_confidence"
    needs: ClassVar[frozenset[str]] = frozenset({"model"})

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        ref, cur = reference.probs.max(axis=1), current.probs.max(axis=1)
        res = stats.mean_shift_test(ref, cur)
        return SignalOutcome(
            res.statistic, res.p_value, abs(res.effect), f"mean confidence {ref.mean():.3f} -> {cur.mean():.3f}"
        )


class EstimatedAccuracy:
    """CBPE-style accuracy estimate (mean calibrated top-class probability): one-sided Welch test for a
    drop; effect = the drop in accuracy (a gain is no alarm)."""

    name = "estimated_accuracy"
    needs: ClassVar[frozenset[str]] = frozenset({"calibrated"})

    def test(self, reference: DriftSide, current: DriftSide, ctx: SignalContext) -> SignalOutcome:
        ref, cur = reference.calibrated.max(axis=1), current.calibrated.max(axis=1)
        res = stats.mean_shift_test(ref, cur, alternative="less")
        return SignalOutcome(
            res.statistic,
            res.p_value,
            -res.effect,
            f"estimated accuracy {_pct(ref.mean())} -> {_pct(cur.mean())}",
            {"reference": float(ref.mean()), "current": float(cur.mean())},
        )


SIGNALS: dict[str, type] = {
    cls.name: cls
    for cls in (
        ClassPrior,
        DomainClassifier,
        TextLength,
        Casing,
        LFCoverage,
        LFConflict,
        ModelPrediction,
        ModelConfidence,
        EstimatedAccuracy,
    )
}


def build_signals(names: list[str]) -> list[DriftSignal]:
    """Instantiate the signals named in ``drift.thresholds``: built-in names or ``package.module:Class``."""
    out: list[DriftSignal] = []
    for name in names:
        if name in SIGNALS:
            out.append(SIGNALS[name]())
            continue
        if ":" not in name:
            raise ConfigError(
                f"drift.thresholds names unknown signal {name!r}; built-in signals are {sorted(SIGNALS)}, "
                "or name your own class as 'package.module:ClassName'"
            )
        module_name, _, cls_name = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"drift signal {name!r} cannot be imported ({err}); check the module path") from None
        signal = cls()
        if not isinstance(signal, DriftSignal):
            raise ConfigError(f"drift signal {name!r} lacks name/needs/test(reference, current, ctx)")
        out.append(signal)
    return out
