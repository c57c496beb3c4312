"""Class-aware augmentation: rewrite minority-class rows, filter the rewrites, tag their lineage.

For each class below ``augment.target_ratio`` x the largest class, source rows of that class are
rewritten by the enabled methods (back-translation, paraphrase, EDA; each a registered backend),
at most ``augment.max_per_source`` candidates per source. Candidates go through the quality
filter (``driftloop.tasks.augment.filter``); the accepted ones, up to each class's deficit, become synthetic
rows with ``is_synthetic=True`` and lineage columns. Only the training pool may be augmented:
evaluation splits are checked with :func:`assert_no_synthetic`.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import AugmentConfig
from driftloop.errors import InputError
from driftloop.hardware import choose_device
from driftloop.tasks.augment.backends import Method, Runtime, build_augmenter, check_backend
from driftloop.tasks.augment.filter import FILTER_REASONS, Embedder, LabelCheck, filter_candidates, minilm_embedder

log = logging.getLogger("driftloop.augment")

METHODS: tuple[Method, ...] = ("back_translation", "paraphrase", "eda")
REJECT_REASONS = (*FILTER_REASONS, "over_target")
SYNTHETIC_ID_PREFIX = "aug:"
LINEAGE_COLUMNS = ("is_synthetic", "augmented_from", "aug_method", "aug_backend", "aug_model", "aug_params")
INHERITED_COLUMNS = ("label", "label_confidence", "label_probs", "snapshot_id")
SAMPLE_COLUMNS = (
    "row_id",
    "augmented_from",
    "label",
    "method",
    "backend",
    "source",
    "candidate",
    "similarity",
    "verdict",
    "reason",
)
_EVAL_SPLITS = {"gold_dev", "gold_test", "dev", "test", "validation", "eval"}


@dataclass
class AugmentResult:
    """Accepted synthetic rows, a JSON-able report, and every source/candidate pair with its verdict."""

    frame: pd.DataFrame
    report: dict[str, Any]
    samples: pd.DataFrame


def assert_no_synthetic(frame: pd.DataFrame, split_name: str) -> None:
    """Raise InputError (a ValueError) when ``frame`` (an evaluation split) holds any synthetic row."""
    synthetic = np.zeros(len(frame), dtype=bool)
    if "is_synthetic" in frame.columns:
        synthetic |= frame["is_synthetic"].fillna(False).astype(bool).to_numpy()
    if "augmented_from" in frame.columns:
        synthetic |= frame["augmented_from"].notna().to_numpy()
    if "row_id" in frame.columns:
        synthetic |= frame["row_id"].astype(str).str.startswith(SYNTHETIC_ID_PREFIX).to_numpy()
    if synthetic.any():
        examples = frame.loc[synthetic, "row_id"].head(3).tolist() if "row_id" in frame.columns else []
        raise InputError(
            f"{int(synthetic.sum())} synthetic (augmented) rows in the {split_name} split, e.g. {examples}; "
            "augmented rows belong to the training set only"
        )


def combine(train: pd.DataFrame, synthetic: pd.DataFrame) -> pd.DataFrame:
    """The training pool with the synthetic rows appended; real rows get ``is_synthetic=False`` and empty lineage."""
    real = train.copy()
    real["is_synthetic"] = False
    for column in LINEAGE_COLUMNS[1:]:
        real[column] = None
    return pd.concat([real, synthetic], ignore_index=True)


def _check_train(train: pd.DataFrame, labels: Sequence[str]) -> None:
    missing = [c for c in ("row_id", "text", "label") if c not in train.columns]
    if missing:
        raise InputError(f"augment: the training frame lacks columns {missing}; it needs row_id, text and label")
    if train.empty:
        raise InputError("augment: the training frame is empty; nothing to augment")
    if pd.api.types.infer_dtype(train["text"], skipna=False) != "string":
        raise InputError("augment: column 'text' must hold strings only")
    unknown = sorted(set(train["label"].dropna()) - set(labels))
    if unknown or train["label"].isna().any():
        raise InputError(f"augment: labels {unknown or ['<missing>']} are not in data.labels {list(labels)}")
    if train["row_id"].duplicated().any():
        raise InputError("augment: row_id values must be unique in the training frame")
    for column in ("split", "role"):
        if column in train.columns:
            leaked = sorted(set(train[column].dropna().astype(str)) & _EVAL_SPLITS)
            if leaked:
                raise InputError(
                    f"augment: the frame holds {column}={leaked} rows; pass the training pool only, "
                    "synthetic rows must never be derived from or enter a dev/test split"
                )


def _seed_for(seed: int, method: Method) -> int:
    return int(np.random.SeedSequence([seed, METHODS.index(method)]).generate_state(1)[0])


def plan_augmentation(
    train: pd.DataFrame, cfg: AugmentConfig, labels: Sequence[str], seed: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Which source rows each method rewrites, and how many times.

    Returns:
        (plan, deficits): plan has one row per (source, method) with ``row_id``, ``label``,
        ``method``, ``n`` and ``priority`` (the source's shuffled rank within its class);
        deficits maps each class to the synthetic rows it may receive.
    """
    real = train
    if "is_synthetic" in train.columns:
        real = train[~train["is_synthetic"].fillna(False).astype(bool)]
    counts = real["label"].value_counts().reindex(list(labels), fill_value=0)
    target = math.ceil(cfg.target_ratio * int(counts.max()))
    # Up to the target share, but never more rewrites than the class has real rows to rewrite.
    deficits = {
        label: max(0, min(target - int(counts[label]), math.floor(cfg.max_synthetic_ratio * int(counts[label]))))
        for label in labels
    }
    rng = np.random.default_rng(seed)
    parts = []
    for label, deficit in deficits.items():
        sources = real.loc[real["label"] == label, "row_id"].to_numpy()
        if deficit == 0 or len(sources) == 0:
            continue
        sources = sources[rng.permutation(len(sources))]
        left_per_source = np.full(len(sources), cfg.max_per_source)
        budget = math.ceil(deficit * cfg.overgenerate)
        for method in METHODS:
            section = getattr(cfg, method)
            if not section.enabled or budget <= 0:
                continue
            take = len(sources) if section.max_sources is None else min(section.max_sources, len(sources))
            n = np.minimum(section.candidates_per_source, left_per_source[:take])
            # Cut where the class budget runs out, so the last source may get fewer candidates.
            n = np.clip(budget - (np.cumsum(n) - n), 0, n)
            left_per_source[:take] -= n
            budget -= int(n.sum())
            used = n > 0
            parts.append(
                pd.DataFrame(
                    {
                        "row_id": sources[:take][used],
                        "label": label,
                        "method": method,
                        "n": n[used],
                        "priority": np.arange(take)[used],
                    }
                )
            )
    columns = ["row_id", "label", "method", "n", "priority"]
    plan = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return plan.astype({"n": int, "priority": int}), deficits


def _empty_report(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "generated": 0,
        "accepted": 0,
        "rejected_by_reason": dict.fromkeys(REJECT_REASONS, 0),
        "per_method": {m: {"generated": 0, "accepted": 0} for m in METHODS},
        "per_class": {label: {"generated": 0, "accepted": 0} for label in labels},
        "timings": {"total_s": 0.0},
    }


def _output_columns(train: pd.DataFrame) -> list[str]:
    return ["row_id", "text", *[c for c in INHERITED_COLUMNS if c in train.columns], *LINEAGE_COLUMNS]


def _nothing(train: pd.DataFrame, report: dict[str, Any]) -> AugmentResult:
    """A result with no synthetic rows (augmentation off, or no class below its target)."""
    empty = pd.DataFrame(columns=_output_columns(train))
    return AugmentResult(empty, report, pd.DataFrame(columns=list(SAMPLE_COLUMNS)))


def _generate(
    plan: pd.DataFrame, sources: pd.DataFrame, cfg: AugmentConfig, runtime: Runtime, seed: int, timings: dict[str, Any]
) -> pd.DataFrame:
    """Run every planned method's backend; one frame of raw candidates with lineage."""
    frames = []
    for method in METHODS:
        jobs = plan[plan["method"] == method]
        if jobs.empty:
            continue
        section = getattr(cfg, method)
        started = time.perf_counter()
        backend = build_augmenter(method, section, runtime)
        loaded = time.perf_counter()
        log.info("augment: %s/%s on %d sources", method, section.backend, len(jobs))
        produced = []
        # Backends take one n per call; sources cut short by a budget get their own (smaller) call.
        for n, group in jobs.groupby("n", sort=True):
            texts = sources.loc[group["row_id"], "text"].tolist()
            for gen in backend.generate(texts, int(n), _seed_for(seed, method) + int(n)):
                produced.append(
                    (
                        group["row_id"].iat[gen.source],
                        gen.text,
                        json.dumps({**backend.params, **gen.params, "seed": seed}, sort_keys=True, default=str),
                    )
                )
        done = time.perf_counter()
        frame = pd.DataFrame(produced, columns=["augmented_from", "text", "aug_params"])
        frame["aug_method"], frame["aug_backend"], frame["aug_model"] = method, section.backend, backend.model_id
        frames.append(frame)
        timings[f"{method}/{section.backend}"] = {
            "load_s": round(loaded - started, 3),
            "generate_s": round(done - loaded, 3),
            "sources": len(jobs),
            "candidates": len(frame),
            "candidates_per_s": round(len(frame) / max(done - loaded, 1e-9), 2),
        }
        del backend
        gc.collect()  # release one model before the next loads
    columns = ["augmented_from", "text", "aug_params", "aug_method", "aug_backend", "aug_model"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def augment(
    train: pd.DataFrame,
    cfg: AugmentConfig,
    labels: list[str],
    *,
    seed: int,
    embed: Embedder | None = None,
    label_check: LabelCheck | None = None,
    existing_texts: Sequence[str] | None = None,
) -> AugmentResult:
    """Generate, filter and tag synthetic rows for the minority classes of the training pool.

    Args:
        train: the training pool only (never a dev/test split): ``row_id``, ``text``, ``label``, and
            ``label_confidence``/``label_probs``/``snapshot_id`` when present (inherited by rewrites).
        labels: ``data.labels``, in class-index order (``label_check`` predicts indices into it).
        embed: sentence encoder for the similarity band; default MiniLM (tests inject a small one).
        label_check: texts -> predicted label index or -1 (abstain), from the weak-labeling step.
        existing_texts: further texts rewrites must not duplicate (e.g. dev/test texts); the
            training pool's own texts are always included.
    """
    started = time.perf_counter()
    if not cfg.enabled:
        return _nothing(train, _empty_report(labels))
    _check_train(train, labels)
    _check_backends(cfg)

    plan, deficits = plan_augmentation(train, cfg, labels, seed)
    report = _empty_report(labels)
    timings = report["timings"]
    sources = train.set_index("row_id", drop=False)
    runtime = Runtime(device=choose_device(cfg.device, "augment.device"), cache_dir=cfg.cache_dir)
    timings["device"] = runtime.device
    candidates = _generate(plan, sources, cfg, runtime, seed, timings)
    if candidates.empty:
        timings["total_s"] = round(time.perf_counter() - started, 3)
        return _nothing(train, report)
    candidates = _in_priority_order(candidates, sources, plan)

    existing = list(train["text"]) + list(existing_texts or [])
    # The similarity encoder runs where the backends ran (augment.device).
    embed = embed or minilm_embedder(cfg.filter.embedding_model, cfg.filter.embed_batch_size, runtime.device)
    outcome = filter_candidates(
        candidates, cfg.filter, labels, existing_texts=existing, embed=embed, label_check=label_check
    )
    timings.update({k: round(v, 3) for k, v in outcome.timings.items()})
    reason = _with_over_target(outcome.reason, candidates, deficits)
    accepted = reason.isna()
    frame = _synthetic_rows(candidates, accepted, train, sources)
    _count_verdicts(report, candidates, reason, accepted)
    timings["total_s"] = round(time.perf_counter() - started, 3)
    report["timings"] = timings
    samples = _samples(candidates, outcome.similarity, accepted, reason)
    log.info(
        "augment: %d generated, %d accepted, rejected %s",
        report["generated"],
        report["accepted"],
        {k: v for k, v in report["rejected_by_reason"].items() if v},
    )
    return AugmentResult(frame=frame, report=report, samples=samples)


def _check_backends(cfg: AugmentConfig) -> None:
    """Fail on a misspelt backend or option of an enabled method before any model loads."""
    for method in METHODS:
        section = getattr(cfg, method)
        if section.enabled:
            check_backend(method, section)


def _in_priority_order(candidates: pd.DataFrame, sources: pd.DataFrame, plan: pd.DataFrame) -> pd.DataFrame:
    """The candidates with their source's text and label, a synthetic ``row_id``, sorted by priority.

    Every source's first candidate comes before any second one, methods in config order, so class quotas and
    duplicate tie-breaks spread over sources and methods.
    """
    source_rows = sources.loc[candidates["augmented_from"]]
    candidates["source_text"] = source_rows["text"].to_numpy()
    candidates["label"] = source_rows["label"].to_numpy()
    candidates["k"] = candidates.groupby(["aug_method", "augmented_from"]).cumcount()
    candidates["row_id"] = (
        SYNTHETIC_ID_PREFIX
        + candidates["aug_method"]
        + ":"
        + candidates["augmented_from"].astype(str)
        + ":"
        + candidates["k"].astype(str)
    )
    priority = plan.set_index(["method", "row_id"])["priority"]
    candidates["priority"] = priority.loc[list(zip(candidates["aug_method"], candidates["augmented_from"]))].to_numpy()
    candidates["method_rank"] = candidates["aug_method"].map({m: i for i, m in enumerate(METHODS)})
    return candidates.sort_values(["k", "priority", "method_rank"], kind="stable").reset_index(drop=True)


def _with_over_target(reason: pd.Series, candidates: pd.DataFrame, deficits: dict[str, int]) -> pd.Series:
    """The filter's reasons, plus ``over_target`` for good candidates beyond their class's deficit.

    At most each class's deficit is kept, in priority order; the rest of the good candidates are surplus.
    """
    reason = reason.copy()
    passed = reason.isna()
    kept_rank = passed.astype(int).groupby(candidates["label"]).cumsum() - 1
    over = passed & (kept_rank >= candidates["label"].map(deficits))
    reason[over] = "over_target"
    return reason


def _synthetic_rows(
    candidates: pd.DataFrame, accepted: pd.Series, train: pd.DataFrame, sources: pd.DataFrame
) -> pd.DataFrame:
    """The accepted candidates as synthetic rows, inheriting their source's label columns, with lineage."""
    frame = candidates.loc[accepted].copy()
    frame["is_synthetic"] = True
    for column in INHERITED_COLUMNS:
        if column in train.columns and column != "label":
            frame[column] = sources.loc[frame["augmented_from"], column].to_numpy()
    return frame[_output_columns(train)].reset_index(drop=True)


def _count_verdicts(report: dict[str, Any], candidates: pd.DataFrame, reason: pd.Series, accepted: pd.Series) -> None:
    """Fill the report's generated/accepted counts, rejections by reason, and the per-method and per-class counts."""
    report["generated"] = len(candidates)
    report["accepted"] = int(accepted.sum())
    report["rejected_by_reason"].update({str(k): int(v) for k, v in reason.value_counts().items()})
    for key, column in (("per_method", "aug_method"), ("per_class", "label")):
        grouped = pd.DataFrame({"key": candidates[column], "accepted": accepted}).groupby("key")["accepted"]
        for name, generated, n_ok in zip(grouped.size().index, grouped.size(), grouped.sum()):
            report[key][name] = {"generated": int(generated), "accepted": int(n_ok)}


def _samples(candidates: pd.DataFrame, similarity: pd.Series, accepted: pd.Series, reason: pd.Series) -> pd.DataFrame:
    """Every source/candidate pair with its similarity and verdict, for the augmentation report."""
    return pd.DataFrame(
        {
            "row_id": candidates["row_id"],
            "augmented_from": candidates["augmented_from"],
            "label": candidates["label"],
            "method": candidates["aug_method"],
            "backend": candidates["aug_backend"],
            "source": candidates["source_text"],
            "candidate": candidates["text"],
            "similarity": similarity.round(4),
            "verdict": np.where(accepted, "accepted", "rejected"),
            "reason": reason.fillna(""),
        },
        columns=list(SAMPLE_COLUMNS),
    )
