"""Quality filter for augmentation candidates: one reject reason per candidate, cheap checks first.

In order, a candidate is rejected when it is

1. ``empty``: shorter than ``filter.min_chars`` after trimming;
2. ``identical_to_source`` / ``near_identical_to_source``: the same normalised text as its source,
   or character 5-gram Jaccard >= ``filter.near_dup_threshold``;
3. ``duplicate_of_existing`` / ``near_duplicate_of_existing``: the same for any existing row;
4. ``new_number``: it holds a number of 3+ digits (phone number, short code, price) its source
   lacks, e.g. one a paraphraser copied from its prompt (``filter.reject_new_numbers``);
5. ``similarity_too_low`` / ``similarity_too_high``: sentence-embedding cosine to its source
   outside [``filter.min_similarity``, ``filter.max_similarity``];
6. ``label_contradiction``: the labeling functions / label model predict another label than the
   one it inherits (an abstain, -1, never contradicts);
7. ``duplicate_candidate``: a (near-)copy of an earlier surviving candidate.

Only survivors of the cheap checks are embedded and label-checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from driftloop.config import AugmentFilterConfig
from driftloop.errors import InputError

log = logging.getLogger("driftloop.augment")

Embedder = Callable[[Sequence[str]], np.ndarray]
"""Texts -> one embedding row per text (normalised here, so any scale is fine)."""
LabelCheck = Callable[[Sequence[str]], np.ndarray]
"""Texts -> predicted label index per text, or -1 where the labelers abstain."""

FILTER_REASONS = (
    "empty",
    "identical_to_source",
    "near_identical_to_source",
    "duplicate_of_existing",
    "near_duplicate_of_existing",
    "new_number",
    "similarity_too_low",
    "similarity_too_high",
    "label_contradiction",
    "duplicate_candidate",
)
SHINGLE_SIZE = 5
_HASHER = HashingVectorizer(
    analyzer="char",
    ngram_range=(SHINGLE_SIZE, SHINGLE_SIZE),
    n_features=2**22,
    binary=True,
    norm=None,
    alternate_sign=False,
    lowercase=False,
)


@dataclass
class FilterOutcome:
    """Per candidate (aligned with the input frame): cosine to source (NaN if not computed) and reason (None = kept)."""

    similarity: pd.Series
    reason: pd.Series
    timings: dict[str, float]


def comparison_key(texts: pd.Series) -> pd.Series:
    """Case-folded, punctuation-free, whitespace-collapsed text: the key two texts are compared on.

    Not a cleaning transform (that is ``driftloop.tasks.clean.normalize_texts``, applied to the
    stored text): this key is only ever compared, never stored.
    """
    return (
        texts.astype(str)
        .str.normalize("NFKC")
        .str.casefold()
        .str.replace(r"[^\w\s]", " ", regex=True)
        .str.split()
        .str.join(" ")
    )


def shingles(normalised: Sequence[str]) -> sparse.csr_matrix:
    """Binary matrix of hashed character 5-grams, one row per (normalised) text."""
    return _HASHER.transform([f" {t} " for t in normalised]).tocsr()


def paired_jaccard(a: sparse.csr_matrix, b: sparse.csr_matrix) -> np.ndarray:
    """Jaccard of row i of ``a`` with row i of ``b``; NaN where both rows are empty."""
    inter = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    union = a.getnnz(axis=1) + b.getnnz(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def max_jaccard(query: sparse.csr_matrix, corpus: sparse.csr_matrix, chunk: int = 4096) -> np.ndarray:
    """For each query row, the highest Jaccard to any corpus row (0 when nothing is shared)."""
    best = np.zeros(query.shape[0])
    if query.shape[0] == 0 or corpus.shape[0] == 0:
        return best
    corpus_t = corpus.T.tocsc()
    corpus_sizes = corpus.getnnz(axis=1)
    for start in range(0, query.shape[0], chunk):
        block = query[start : start + chunk]
        # Only pairs sharing a shingle appear in the sparse product: no dense candidates x corpus matrix.
        inter = (block @ corpus_t).tocoo()
        if inter.nnz == 0:
            continue
        sizes = block.getnnz(axis=1)
        jac = inter.data / (sizes[inter.row] + corpus_sizes[inter.col] - inter.data)
        np.maximum.at(best, start + inter.row, jac)
    return best


def minilm_embedder(model: str = "minilm", batch_size: int = 64, device: str = "auto") -> Embedder:
    """Mean-pooled sentence embeddings (default: the packaged all-MiniLM-L6-v2) on ``device`` (auto|cpu|cuda)."""
    from driftloop.tasks.embed import embed_texts

    def embed(texts: Sequence[str]) -> np.ndarray:
        return embed_texts(list(texts), model=model, batch_size=batch_size, device=device)

    return embed


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.clip(norms, 1e-12, None)


@dataclass(frozen=True)
class _Verdicts:
    """Per candidate, filled in check by check: the first reject reason (None = kept) and the cosine to its source."""

    reason: pd.Series
    similarity: pd.Series
    timings: dict[str, float]

    def reject(self, mask: np.ndarray, why: str) -> None:
        """Give ``why`` to the masked candidates that no earlier check rejected."""
        self.reason[np.asarray(mask) & self.reason.isna().to_numpy()] = why

    def alive(self) -> np.ndarray:
        return self.reason.isna().to_numpy()


def filter_candidates(
    candidates: pd.DataFrame,
    cfg: AugmentFilterConfig,
    labels: Sequence[str],
    *,
    existing_texts: Sequence[str] = (),
    embed: Embedder | None = None,
    label_check: LabelCheck | None = None,
) -> FilterOutcome:
    """Decide, for each candidate, whether it is kept and why not.

    Args:
        candidates: columns ``text`` (candidate), ``source_text`` and ``label`` (inherited, one of ``labels``),
            in priority order: of two near-identical candidates the earlier one is kept.
        existing_texts: every real row the candidates must not duplicate (the training pool and more).
        embed: sentence encoder; default MiniLM from ``cfg.embedding_model``.
        label_check: predicted label index per text, -1 for abstain; None skips the label check.
    """
    missing = [c for c in ("text", "source_text", "label") if c not in candidates.columns]
    if missing:
        raise InputError(f"filter_candidates: candidates lack columns {missing}; build them with augment()")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    index = candidates.index
    similarity = pd.Series(np.nan, index=index, dtype=float)
    verdicts = _Verdicts(pd.Series(None, index=index, dtype=object), similarity, timings)
    text = candidates["text"].fillna("").astype(str)
    norm, cand_sh = _reject_copies(verdicts, candidates, text, cfg, existing_texts)
    timings["dedup_s"] = time.perf_counter() - started
    _reject_by_similarity(verdicts, candidates, text, cfg, embed)
    _reject_contradictions(verdicts, candidates, text, cfg, labels, label_check)

    alive = np.flatnonzero(verdicts.alive())
    if len(alive) > 1:
        verdicts.reject(
            _later_near_copies(norm.iloc[alive], cand_sh[alive], cfg.near_dup_threshold, len(index), alive),
            "duplicate_candidate",
        )
    timings["filter_s"] = time.perf_counter() - started
    reason = verdicts.reason.astype(object).where(verdicts.reason.notna(), None)
    return FilterOutcome(similarity=similarity, reason=reason, timings=timings)


def _reject_copies(
    verdicts: _Verdicts,
    candidates: pd.DataFrame,
    text: pd.Series,
    cfg: AugmentFilterConfig,
    existing_texts: Sequence[str],
) -> tuple[pd.Series, sparse.csr_matrix]:
    """The cheap checks: empty, (near-)copies of the source or of an existing row, new numbers.

    Returns the candidates' comparison keys and shingles, for the duplicate-candidate check.
    """
    verdicts.reject(text.str.strip().str.len().to_numpy() < cfg.min_chars, "empty")

    norm = comparison_key(text)
    norm_source = comparison_key(candidates["source_text"])
    verdicts.reject((norm == norm_source).to_numpy(), "identical_to_source")
    cand_sh, source_sh = shingles(norm.tolist()), shingles(norm_source.tolist())
    near_source = np.nan_to_num(paired_jaccard(cand_sh, source_sh)) >= cfg.near_dup_threshold
    verdicts.reject(near_source, "near_identical_to_source")

    existing = comparison_key(pd.Series(list(existing_texts), dtype=object))
    verdicts.reject(norm.isin(set(existing)).to_numpy(), "duplicate_of_existing")
    alive = verdicts.alive()
    near_existing = np.zeros(len(candidates.index), dtype=bool)
    if alive.any() and len(existing):
        near_existing[alive] = max_jaccard(cand_sh[alive], shingles(existing.tolist())) >= cfg.near_dup_threshold
    verdicts.reject(near_existing, "near_duplicate_of_existing")
    if cfg.reject_new_numbers:
        verdicts.reject(_new_numbers(text, candidates["source_text"].astype(str)), "new_number")
    return norm, cand_sh


def _reject_by_similarity(
    verdicts: _Verdicts, candidates: pd.DataFrame, text: pd.Series, cfg: AugmentFilterConfig, embed: Embedder | None
) -> None:
    """Embed the survivors and their sources; reject cosines outside [min_similarity, max_similarity]."""
    alive = verdicts.alive()
    if not alive.any():
        return
    step = time.perf_counter()
    embed = embed or minilm_embedder(cfg.embedding_model, cfg.embed_batch_size)
    sources = candidates["source_text"].astype(str)[alive]
    unique_sources = pd.unique(sources)
    source_vecs = _unit_rows(embed(list(unique_sources)))
    cand_vecs = _unit_rows(embed(text[alive].tolist()))
    position = pd.Series(np.arange(len(unique_sources)), index=unique_sources)
    cosine = np.einsum("ij,ij->i", cand_vecs, source_vecs[position.loc[sources].to_numpy()])
    verdicts.similarity[alive] = cosine
    n = len(candidates.index)
    too_low, too_high = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    too_low[alive] = cosine < cfg.min_similarity
    too_high[alive] = cosine > cfg.max_similarity
    verdicts.reject(too_low, "similarity_too_low")
    verdicts.reject(too_high, "similarity_too_high")
    verdicts.timings["embed_s"] = time.perf_counter() - step


def _reject_contradictions(
    verdicts: _Verdicts,
    candidates: pd.DataFrame,
    text: pd.Series,
    cfg: AugmentFilterConfig,
    labels: Sequence[str],
    label_check: LabelCheck | None,
) -> None:
    """Reject survivors the label check assigns another label than the one they inherit (abstains pass)."""
    alive = verdicts.alive()
    if cfg.check_labels and label_check is None:
        log.warning(
            "augment.filter.check_labels is on but no label_check was given: label contradictions are not checked"
        )
    if not (cfg.check_labels and label_check is not None and alive.any()):
        return
    step = time.perf_counter()
    predicted = np.asarray(label_check(text[alive].tolist())).astype(int).ravel()
    if predicted.shape[0] != int(alive.sum()):
        raise ValueError(f"label_check returned {predicted.shape[0]} predictions for {int(alive.sum())} texts")
    inherited = candidates["label"][alive].map({label: i for i, label in enumerate(labels)}).to_numpy()
    contradicts = np.zeros(len(candidates.index), dtype=bool)
    contradicts[alive] = (predicted >= 0) & (predicted != inherited)
    verdicts.reject(contradicts, "label_contradiction")
    verdicts.timings["label_check_s"] = time.perf_counter() - step


def _new_numbers(text: pd.Series, source: pd.Series) -> np.ndarray:
    """Mask of texts holding a run of 3+ digits that does not occur in their source."""
    # Runs are looked up in all the source's digits run together, so a regrouped or reordered
    # number ("0800 123 456" -> "0800123456") is not new, while a different one is.
    runs = text.str.findall(r"\d{3,}")
    digits = source.str.replace(r"\D", "", regex=True)
    return np.array(
        [any(run not in known for run in found) for found, known in zip(runs, digits, strict=True)], dtype=bool
    )


def _later_near_copies(
    norm: pd.Series, sh: sparse.csr_matrix, threshold: float, n: int, positions: np.ndarray
) -> np.ndarray:
    """Mask (length n) of candidates that repeat an earlier one, exactly or near."""
    later = norm.duplicated(keep="first").to_numpy().copy()
    inter = sparse.triu(sh @ sh.T, k=1).tocoo()  # pairs (i < j) sharing a shingle
    if inter.nnz:
        sizes = sh.getnnz(axis=1)
        jac = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
        later[inter.col[jac >= threshold]] = True
    mask = np.zeros(n, dtype=bool)
    mask[positions[later]] = True
    return mask
