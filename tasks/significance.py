"""Is a challenger better than the champion beyond noise? Paired tests on one gold test set.

Both models predict the same gold rows, so the tests are paired: McNemar's exact test on the rows exactly one
model gets right, and a paired bootstrap of the macro-F1 difference (rows resampled together for both models).
An identical retrain predicts the same labels on every row: McNemar has no discordant row (p = 1) and every
bootstrap difference is 0, so it is never "significantly better".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import f1_score

TestKind = Literal["bootstrap", "mcnemar"]


@dataclass(frozen=True)
class SignificanceResult:
    """The outcome of one paired test: challenger minus champion, one-sided (is the challenger better?)."""

    test: TestKind
    level: float
    p_value: float
    significant: bool
    macro_f1_difference: float
    n_rows: int
    challenger_only_correct: int
    champion_only_correct: int
    ci_low: float | None = None
    ci_high: float | None = None

    def summary(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def describe(self) -> str:
        verdict = "better beyond noise" if self.significant else "not better beyond noise"
        ci = "" if self.ci_low is None else f", 95% CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"
        return (
            f"{self.test} test on {self.n_rows} gold test rows: macro-F1 {self.macro_f1_difference:+.4f}{ci}, "
            f"p = {self.p_value:.4f} vs level {self.level}: {verdict}"
        )


def _macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    return float(f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0))


def _check(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray) -> tuple[np.ndarray, ...]:
    y, a, b = (np.asarray(x, dtype=np.int64) for x in (y, champion, challenger))
    if not (len(y) == len(a) == len(b)) or len(y) == 0:
        raise ValueError(
            f"paired test needs both models' predictions on the same non-empty gold rows; got {len(y)} labels, "
            f"{len(a)} champion and {len(b)} challenger predictions"
        )
    return y, a, b


def mcnemar(y: np.ndarray, champion: np.ndarray, challenger: np.ndarray, *, level: float) -> SignificanceResult:
    """One-sided exact McNemar: among rows exactly one model gets right, does the challenger win more than half?"""
    y, a, b = _check(y, champion, challenger)
    k = int(max(y.max(), a.max(), b.max())) + 1
    b_only = int(((b == y) & (a != y)).sum())
    a_only = int(((a == y) & (b != y)).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else float(binomtest(b_only, n, 0.5, alternative="greater").pvalue)
    return SignificanceResult(
        test="mcnemar",
        level=level,
        p_value=p,
        significant=p < level,
        macro_f1_difference=_macro_f1(y, b, k) - _macro_f1(y, a, k),
        n_rows=len(y),
        challenger_only_correct=b_only,
        champion_only_correct=a_only,
    )


def paired_bootstrap(
    y: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    level: float,
    n_samples: int = 2000,
    seed: int = 0,
    k: int | None = None,
) -> SignificanceResult:
    """Paired bootstrap of macro-F1(challenger) - macro-F1(champion); p = share of resamples with no gain."""
    y, a, b = _check(y, champion, challenger)
    k = k or int(max(y.max(), a.max(), b.max())) + 1
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = np.empty(n_samples)
    for i in range(n_samples):
        idx = rng.integers(0, n, n)
        diffs[i] = _macro_f1(y[idx], b[idx], k) - _macro_f1(y[idx], a[idx], k)
    # "<= 0": an identical retrain (every difference exactly 0) gets p = 1, never a promotion.
    p = float((diffs <= 0).mean())
    return SignificanceResult(
        test="bootstrap",
        level=level,
        p_value=p,
        significant=p < level,
        macro_f1_difference=_macro_f1(y, b, k) - _macro_f1(y, a, k),
        n_rows=n,
        challenger_only_correct=int(((b == y) & (a != y)).sum()),
        champion_only_correct=int(((a == y) & (b != y)).sum()),
        ci_low=float(np.quantile(diffs, 0.025)),
        ci_high=float(np.quantile(diffs, 0.975)),
    )


def compare(
    y: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    test: TestKind,
    level: float,
    n_samples: int = 2000,
    seed: int = 0,
    k: int | None = None,
) -> SignificanceResult:
    """Run the configured paired test (``promotion.test``) at ``promotion.significance_level``."""
    if test == "mcnemar":
        return mcnemar(y, champion, challenger, level=level)
    return paired_bootstrap(y, champion, challenger, level=level, n_samples=n_samples, seed=seed, k=k)
