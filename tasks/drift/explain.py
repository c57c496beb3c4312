"""What changed, in words a person can act on: new example texts, over- and under-represented
terms, class shares, LF coverage, the champion's estimated accuracy, and a one-sentence verdict."""

from __future__ import annotations

from typing import Any

import numpy as np

from driftloop.tasks.drift import stats
from driftloop.tasks.drift.signals import DriftSide


def log_odds_terms(
    reference: np.ndarray, current: np.ndarray, *, top: int = 15, max_docs: int = 20000, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Terms most over- and under-represented in ``current``: log-odds ratio with an informative
    Dirichlet prior (Monroe, Colaresi & Quinn 2008), ranked by its z-score so rare words need
    more evidence. Returns (over, under), each ``[{"term", "log_odds", "z"}]``."""
    from sklearn.feature_extraction.text import CountVectorizer

    rng = np.random.default_rng(seed)

    def cap(texts: np.ndarray) -> list[str]:
        texts = np.asarray(texts, dtype=object)
        if len(texts) > max_docs:
            texts = texts[rng.choice(len(texts), max_docs, replace=False)]
        return [str(t) for t in texts]

    ref_docs, cur_docs = cap(reference), cap(current)
    if not ref_docs or not cur_docs:
        return [], []
    vectorizer = CountVectorizer(lowercase=True, token_pattern=r"(?u)\b[^\W\d_]{2,}\b", min_df=2)
    try:
        counts = vectorizer.fit_transform(ref_docs + cur_docs)
    except ValueError:  # no term occurs twice
        return [], []
    ref_counts = np.asarray(counts[: len(ref_docs)].sum(axis=0)).ravel().astype(float)
    cur_counts = np.asarray(counts[len(ref_docs) :].sum(axis=0)).ravel().astype(float)
    pooled = ref_counts + cur_counts
    prior = 0.5 * pooled  # the pooled corpus as prior, at half its weight
    a0 = prior.sum()
    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    log_odds_cur = np.log((cur_counts + prior) / (n_cur + a0 - cur_counts - prior))
    log_odds_ref = np.log((ref_counts + prior) / (n_ref + a0 - ref_counts - prior))
    delta = log_odds_cur - log_odds_ref
    z = delta / np.sqrt(1.0 / (cur_counts + prior) + 1.0 / (ref_counts + prior))
    terms = vectorizer.get_feature_names_out()

    def pick(order: np.ndarray) -> list[dict[str, Any]]:
        return [
            {"term": str(terms[i]), "log_odds": round(float(delta[i]), 3), "z": round(float(z[i]), 2)}
            for i in order[:top]
            if abs(z[i]) >= 1.96
        ]

    return pick(np.argsort(-z)), pick(np.argsort(z))


def class_shares(side: DriftSide, labels: list[str]) -> dict[str, float]:
    counts = np.bincount(side.weak_labels[side.weak_labels >= 0], minlength=len(labels))
    return {name: round(float(s), 4) for name, s in zip(labels, stats.shares(counts))}


def lf_coverage_changes(reference: DriftSide, current: DriftSide, lf_names: list[str]) -> list[dict[str, Any]]:
    """Per LF: the share of rows it votes on, before and after, the biggest moves first."""
    ref = (reference.votes != -1).mean(axis=0) if reference.rows else np.zeros(len(lf_names))
    cur = (current.votes != -1).mean(axis=0) if current.rows else np.zeros(len(lf_names))
    rows = [
        {"lf": name, "reference": round(float(r), 4), "current": round(float(c), 4), "delta": round(float(c - r), 4)}
        for name, r, c in zip(lf_names, ref, cur)
    ]
    return sorted(rows, key=lambda row: -abs(row["delta"]))


def estimated_accuracy(reference: DriftSide, current: DriftSide, labels: list[str]) -> dict[str, Any] | None:
    """CBPE-style estimate: the expected accuracy is the mean calibrated top-class probability; per
    predicted class it is the expected precision of that class."""
    if reference.calibrated is None or current.calibrated is None:
        return None
    ref_conf, cur_conf = reference.calibrated.max(axis=1), current.calibrated.max(axis=1)
    ref_pred, cur_pred = reference.calibrated.argmax(axis=1), current.calibrated.argmax(axis=1)
    per_class = {}
    for k, name in enumerate(labels):
        r = ref_conf[ref_pred == k]
        c = cur_conf[cur_pred == k]
        per_class[name] = {
            "reference": round(float(r.mean()), 4) if len(r) else None,
            "current": round(float(c.mean()), 4) if len(c) else None,
            "current_rows": int(len(c)),
        }
    ref_acc, cur_acc = float(ref_conf.mean()), float(cur_conf.mean())
    return {
        "reference": round(ref_acc, 4),
        "current": round(cur_acc, 4),
        "delta": round(cur_acc - ref_acc, 4),
        "per_predicted_class": per_class,
    }


def model_summary(reference: DriftSide, current: DriftSide, labels: list[str]) -> dict[str, Any]:
    if reference.probs is None or current.probs is None:
        return {}
    k = len(labels)

    def shares_of(side: DriftSide) -> dict[str, float]:
        counts = np.bincount(side.probs.argmax(axis=1), minlength=k)
        return {name: round(float(s), 4) for name, s in zip(labels, stats.shares(counts))}

    return {
        "predicted_shares": {"reference": shares_of(reference), "current": shares_of(current)},
        "mean_confidence": {
            "reference": round(float(reference.probs.max(axis=1).mean()), 4),
            "current": round(float(current.probs.max(axis=1).mean()), 4),
        },
        "sample_rows": {"reference": len(reference.sample), "current": len(current.sample)},
    }


def new_examples(current: DriftSide, scores: np.ndarray | None, top: int) -> list[dict[str, Any]]:
    """The current rows the domain classifier finds least like the reference."""
    if scores is None or not len(scores):
        return []
    order = np.argsort(-scores, kind="stable")[:top]
    return [{"text": str(current.texts[current.sample[i]]), "score": round(float(scores[i]), 4)} for i in order]


_SCOPE_WORDS = {"newest": "in the newest batch", "since_reference": "since the reference"}


def verdict(signals: list[dict[str, Any]], explanations: dict[str, Any], alpha: float, labels: list[str]) -> str:
    """One sentence: what drifted and what it means, or why nothing counts as drift."""
    alarms = [s for s in signals if s["alarm"]]
    if not alarms:
        small = [s for s in signals if s["p_adjusted"] <= alpha]
        if small:
            s = min(small, key=lambda r: r["p_adjusted"])
            return (
                f"harmless shift: {s['detail']} {_SCOPE_WORDS[s['scope']]} is significant but below the minimum "
                f"effect ({s['effect']:.3f} < {s['min_effect']:.3f}); no action"
            )
        return f"no drift: no signal passes its test at family-wise alpha {alpha:g} ({len(signals)} tests)"
    by_name: dict[str, dict[str, Any]] = {}
    for s in sorted(alarms, key=lambda r: r["p_adjusted"]):
        by_name.setdefault(s["name"], s)
    parts = []
    if "lf_coverage" in by_name and by_name["lf_coverage"].get("dropped"):
        s = by_name.pop("lf_coverage")
        parts.append(
            f"LF coverage dropped ({s['detail']} {_SCOPE_WORDS[s['scope']]}): the labeling functions no longer "
            "see the new data; review the uncovered texts and write LFs before retraining"
        )
    if "estimated_accuracy" in by_name:
        s = by_name.pop("estimated_accuracy")
        hurt = _hurt_class(explanations.get("estimated_accuracy"))
        drop = 100 * s["effect"]
        where = f"hurting class {hurt}: " if hurt else "hurting the champion: "
        parts.append(f"{where}estimated accuracy -{drop:.1f} points {_SCOPE_WORDS[s['scope']]}")
    for name in ("class_prior", "model_prediction"):
        if name in by_name:
            s = by_name.pop(name)
            cls = labels[s["class"]] if s.get("class") is not None else "?"
            parts.append(f"class {cls} shifted: {s['detail']} {_SCOPE_WORDS[s['scope']]}")
            by_name.pop("model_prediction", None)
            break
    if "domain_classifier" in by_name:
        s = by_name.pop("domain_classifier")
        parts.append(f"new kind of text: {s['detail']} {_SCOPE_WORDS[s['scope']]}")
    for s in by_name.values():
        parts.append(f"{s['name']}: {s['detail']} {_SCOPE_WORDS[s['scope']]}")
    head, rest = parts[0], parts[1:]
    return f"drift: {head}" + (f" (also: {'; '.join(rest)})" if rest else "")


def _hurt_class(estimate: dict[str, Any] | None) -> str | None:
    if not estimate:
        return None
    drops = {
        name: v["reference"] - v["current"]
        for name, v in estimate["per_predicted_class"].items()
        if v["reference"] is not None and v["current"] is not None
    }
    if not drops:
        return None
    name = max(drops, key=drops.get)
    return name if drops[name] > 0 else None
