"""Cleaning: normalise texts, then drop empty, short, long, gold-overlapping and duplicate rows.

Everything runs on whole columns (polars / pyarrow string kernels, numpy arrays); the only Python
loops are over rules, LSH bands and densification rounds, never over rows.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHashLSH

from driftloop.config import CleanConfig, NearDupConfig

#: The rules that drop rows, in the order they apply; a row is counted under the first rule that hits it.
DROP_RULES: tuple[str, ...] = (
    "empty",
    "too_short",
    "too_long",
    "overlaps_reference",
    "exact_duplicate",
    "near_duplicate",
)

# Markup whose content a reader never sees goes together with that content.
_HIDDEN_MARKUP = r"(?is)<!--.*?-->|<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>|<!doctype\b[^>]*>"
# Only real HTML element names count as tags, so SMS shorthand such as "<#>", "i <3 u" or "<name>" survives.
# Inline formatting tags vanish ("F<b>REE</b>" -> "FREE"); tags that break text flow become a space.
_INLINE_TAG_NAMES = (
    "a abbr acronym b bdi bdo big cite code del dfn em font i ins kbd mark nobr q s samp small span strike "
    "strong sub sup tt u var wbr"
)
_BREAKING_TAG_NAMES = (
    "address area article aside audio blockquote body br button canvas caption center col colgroup dd details "
    "dialog dir div dl dt embed fieldset figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head "
    "header hr html iframe img input legend li link main menu meta nav noscript object ol optgroup option p "
    "param picture pre script section select source style summary table tbody td template textarea tfoot th "
    "thead title tr track ul video"
)


def _tag_pattern(names: str) -> str:
    return r"(?i)</?(?:" + "|".join(names.split()) + r")(?:\s[^<>]*)?/?>"


_INLINE_TAGS = _tag_pattern(_INLINE_TAG_NAMES)
_BREAKING_TAGS = _tag_pattern(_BREAKING_TAG_NAMES)
# Entities need their ";": a bare "&amp" is too often plain text ("AT&T", "R&B") to guess at.
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
# Control (Cc) and format (Cf: zero-width space/joiners, BOM, bidi marks, soft hyphen) characters.
# Tab, newline and other whitespace controls are layout, left to the whitespace rule.
_INVISIBLE = r"[[\p{Cc}\p{Cf}]--\s]"
# Only runs that need changing match (two or more spaces, or any non-space whitespace): matching every
# single space, as r"\s+" does, makes the replacement ~4x slower on typical text.
_IRREGULAR_SPACE = r"\s{2,}|[\s--[ ]]"


@dataclass
class CleanResult:
    """Rows kept by ``clean``, drop counts per rule and a JSON-able report."""

    frame: pd.DataFrame
    dropped: dict[str, int]
    report: dict[str, Any] = field(default_factory=dict)


def normalize_texts(texts: pd.Series, cfg: CleanConfig) -> pd.Series:
    """Apply the text transforms of ``cfg`` (no row filters); nulls stay null, index and name are kept."""
    label = str(texts.name) if texts.name is not None else "texts"
    cleaned = _normalize(_to_polars(texts, label), cfg)
    return pd.Series(cleaned.to_pandas().array, index=texts.index, name=texts.name)


def clean(
    frame: pd.DataFrame,
    cfg: CleanConfig,
    *,
    text_column: str = "text",
    reference_texts: pd.Series | None = None,
) -> CleanResult:
    """Normalise ``frame[text_column]`` and drop rows by the rules in ``DROP_RULES``.

    Args:
        frame: the rows to clean; never modified.
        cfg: the ``clean`` config section.
        text_column: the column holding the text.
        reference_texts: gold dev/test texts; pool rows whose normalised, case-folded text equals one
            of them are dropped as ``overlaps_reference`` so that gold rows cannot leak into training.

    Returns:
        Kept rows in input order, with their index and other columns as they were and the text
        replaced by the cleaned text; of duplicates, the first occurrence is kept.
    """
    if text_column not in frame.columns:
        raise KeyError(
            f"clean: text column {text_column!r} not found; available columns: {[str(c) for c in frame.columns]}"
        )
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with _timed(seconds, "normalize"):
        texts = _normalize(_to_polars(frame[text_column], text_column), cfg)
    # 0 = kept; otherwise 1 + the index of the dropping rule in DROP_RULES.
    reason = np.zeros(len(texts), dtype=np.int8)

    with _timed(seconds, "length_filters"):
        n_chars = texts.str.len_chars().fill_null(0).to_numpy()
        blank = n_chars == 0
        if not cfg.collapse_whitespace:
            blank |= texts.str.strip_chars().str.len_chars().fill_null(0).to_numpy() == 0
        _drop(reason, "empty", blank)
        _drop(reason, "too_short", n_chars < cfg.min_chars)
        _drop(reason, "too_long", n_chars > cfg.max_chars)

    with _timed(seconds, "exact_dedup"):
        alive = np.flatnonzero(reason == 0)
        keys = _fold_case(texts.gather(alive))
        if reference_texts is not None:
            reference_keys = _fold_case(_normalize(_to_polars(reference_texts, "reference_texts"), cfg))
            overlaps = keys.is_in(reference_keys.drop_nulls().implode()).fill_null(False).to_numpy()
            _drop(reason, "overlaps_reference", overlaps, alive)
            keys, alive = keys.filter(pl.Series(~overlaps)), alive[~overlaps]
        if cfg.dedup_exact:
            repeated = ~keys.is_first_distinct().to_numpy()
            _drop(reason, "exact_duplicate", repeated, alive)
            keys, alive = keys.filter(pl.Series(~repeated)), alive[~repeated]

    near_dup_report: dict[str, Any] = {"enabled": cfg.near_dup.enabled}
    if cfg.near_dup.enabled:
        with _timed(seconds, "near_dedup"):
            similar, near_dup_report = _near_duplicates(keys, cfg.near_dup)
            _drop(reason, "near_duplicate", similar, alive)

    with _timed(seconds, "assemble"):
        kept = np.flatnonzero(reason == 0)
        out = frame.iloc[kept]
        out[text_column] = texts.gather(kept).to_pandas().array
    seconds["total"] = time.perf_counter() - started

    counts = np.bincount(reason, minlength=len(DROP_RULES) + 1)
    dropped = {rule: int(counts[i + 1]) for i, rule in enumerate(DROP_RULES)}
    report = {
        "rows_in": len(frame),
        "rows_out": len(out),
        "dropped": dropped,
        "near_dup": near_dup_report,
        "seconds": {stage: round(s, 4) for stage, s in seconds.items()},
    }
    return CleanResult(frame=out, dropped=dropped, report=report)


# ---- text transforms --------------------------------------------------------------------------


def _to_polars(texts: pd.Series, column: str) -> pl.Series:
    """The pandas column as a polars String series, or a TypeError naming the column."""
    try:
        array = pa.array(texts, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise TypeError(f"column {column!r} must hold strings (or nulls); converting it failed: {err}") from None
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if pa.types.is_null(array.type):
        array = array.cast(pa.large_string())
    if not (
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type)
    ):
        raise TypeError(f"column {column!r} must hold strings (or nulls), got dtype {texts.dtype}")
    return pl.Series(column, array)


def _normalize(texts: pl.Series, cfg: CleanConfig) -> pl.Series:
    if cfg.strip_html:
        texts = (
            texts.str.replace_all(_HIDDEN_MARKUP, " ")
            .str.replace_all(_BREAKING_TAGS, " ")
            .str.replace_all(_INLINE_TAGS, "")
        )
        # Tags go before entities are decoded, so an escaped "&lt;b&gt;" stays visible text.
        texts = _decode_entities(texts)
    if cfg.unicode_form != "none":
        texts = _unicode_normalize(texts, cfg.unicode_form)
    if cfg.remove_control_chars:
        texts = texts.str.replace_all(_INVISIBLE, "")
    if cfg.collapse_whitespace:
        texts = texts.str.replace_all(_IRREGULAR_SPACE, " ").str.strip_chars()
    return texts


def _decode_entities(texts: pl.Series) -> pl.Series:
    found = texts.str.extract_all(_ENTITY).explode().drop_nulls().unique()
    # html.unescape runs once per distinct entity spelling (a handful), not once per row.
    mapping = {entity: html.unescape(entity) for entity in found.to_list()}
    mapping = {entity: text for entity, text in mapping.items() if text != entity}
    return texts.str.replace_many(mapping) if mapping else texts


def _unicode_normalize(texts: pl.Series, form: str) -> pl.Series:
    # pyarrow's normaliser (utf8proc) is ~3x faster than polars' str.normalize on the same rows.
    return _on_non_ascii(
        texts, lambda subset: pl.Series(pc.utf8_normalize(subset.to_arrow(compat_level=pl.CompatLevel.oldest()), form))
    )


def _on_non_ascii(texts: pl.Series, transform: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """Apply ``transform`` to the rows that hold a non-ASCII character; pure-ASCII rows pass unchanged."""
    # Unicode normalisation and full case folding leave ASCII as it is, and SMS-like text is mostly ASCII.
    rows = (texts.str.len_bytes() != texts.str.len_chars()).fill_null(False).arg_true()
    if rows.len() == 0:
        return texts
    out = texts.clone()
    out.scatter(rows, transform(texts.gather(rows)))
    return out


@cache
def _casefold_extras() -> dict[str, str]:
    """Lower-case characters that full case folding still changes (e.g. 'ß' -> 'ss', 'ς' -> 'σ')."""
    extras: dict[str, str] = {}
    for code in range(0x110000):
        for char in chr(code).lower():
            if char.casefold() != char:
                extras[char] = char.casefold()
    return extras


def _fold_case(texts: pl.Series) -> pl.Series:
    """Full Unicode case folding (as ``str.casefold``) of a whole column."""
    # polars only lower-cases; the ~180 characters where folding goes further are mapped after it.
    return _on_non_ascii(texts.str.to_lowercase(), lambda subset: subset.str.replace_many(_casefold_extras()))


def _drop(reason: np.ndarray, rule: str, hit: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Mark rows hit by ``rule`` that no earlier rule dropped; ``rows`` maps ``hit`` to row positions."""
    code = DROP_RULES.index(rule) + 1
    if rows is None:
        reason[(reason == 0) & hit] = code
    else:
        target = rows[hit]
        reason[target[reason[target] == 0]] = code


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[stage] = time.perf_counter() - start


# ---- near-duplicates: one-permutation MinHash + LSH banding ----------------------------------------
#
# Why not datasketch's MinHash / MinHashLSH directly: MinHash.update applies num_perm permutations to
# every shingle (1M SMS have ~75M shingles, so ~5G hash evaluations at num_perm=64) and MinHashLSH
# inserts and queries one key at a time in Python; bench/bench_clean.py times exactly that and it is
# two orders of magnitude over the 15 s budget for 1M rows. One-permutation hashing with optimal
# densification (Li, Owen & Zhang 2012; Shrivastava 2017) estimates the same Jaccard similarity from
# one hash per shingle, without bias and with about the same spread. The banding is MinHashLSH's,
# vectorised: datasketch picks the band/row split, and every candidate pair is verified on the full
# signature. The bench reports how often both approaches make the same keep/drop decision.

_U64 = np.uint64
_FNV_PRIME = _U64(0x100000001B3)
_SHINGLE_SEED = _U64(0xCBF29CE484222325)
_PROBE_SEED = _U64(0x9E3779B97F4A7C15)
# Past the last Unicode code point: pads the one shingle of a text shorter than the shingle size.
_PAST_UNICODE = _U64(0x110000)
# Candidates are verified afterwards, so a missed pair costs more than a spurious one.
_LSH_WEIGHTS = (0.1, 0.9)
# Rows per signature block; see _near_duplicates.
_BLOCK_ROWS = 16_384
_VERIFY_PAIRS = 1 << 16


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place: every input bit flips each output bit half the time."""
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def _reduce(h: np.ndarray, n: int) -> np.ndarray:
    """Map the high 32 bits of ``h`` uniformly onto ``0..n-1`` (Lemire's multiply-shift)."""
    return ((h >> _U64(32)) * _U64(n)) >> _U64(32)


@cache
def _lsh_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for this threshold and size."""
    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=_LSH_WEIGHTS)
    except ValueError:
        # datasketch refuses a single band (threshold 1.0); one band of every permutation is its limit.
        return 1, num_perm
    return lsh.b, lsh.r


def _near_duplicates(keys: pl.Series, cfg: NearDupConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Flag texts whose estimated Jaccard similarity to an earlier kept text reaches the threshold."""
    n = len(keys)
    bands, rows = _lsh_shape(cfg.threshold, cfg.num_perm)
    info: dict[str, Any] = {
        "enabled": True,
        "method": "one-permutation MinHash + LSH",
        "bands": bands,
        "rows_per_band": rows,
    }
    if n < 2:
        return np.zeros(n, dtype=bool), {**info, "candidate_pairs": 0, "similar_pairs": 0}
    utf8, offsets = _utf8_buffer(keys)
    # Blocks keep the per-shingle temporaries (~10 MB) small enough to stay in cache and be reused.
    signatures = np.empty((n, cfg.num_perm), dtype=np.uint32)
    band_keys = np.empty((n, bands), dtype=_U64)
    for start in range(0, n, _BLOCK_ROWS):
        block = slice(start, min(start + _BLOCK_ROWS, n))
        signatures[block] = _signatures(utf8, offsets[block.start : block.stop + 1], cfg.num_perm, cfg.shingle_size)
        band_keys[block] = _band_keys(signatures[block], bands, rows)
    earlier, later = _candidate_pairs(band_keys)
    # Integer form of "matching bins / num_perm >= threshold", free of float rounding.
    needed = math.ceil(cfg.threshold * cfg.num_perm - 1e-9)
    similar = np.zeros(len(earlier), dtype=bool)
    for start in range(0, len(earlier), _VERIFY_PAIRS):
        part = slice(start, start + _VERIFY_PAIRS)
        matches = np.count_nonzero(signatures[earlier[part]] == signatures[later[part]], axis=1)
        similar[part] = matches >= needed
    flagged = _first_survives(n, earlier[similar], later[similar])
    return flagged, {**info, "candidate_pairs": int(len(earlier)), "similar_pairs": int(similar.sum())}


def _utf8_buffer(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The column's UTF-8 bytes end to end (no copy) and each text's byte offset (n + 1 entries)."""
    array = texts.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    if not pa.types.is_large_string(array.type):
        array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = array.buffers()[2]
    return np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8), offsets


def _codepoints(utf8: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode the texts at ``offsets`` of a UTF-8 buffer: their code points end to end, and char offsets."""
    data = utf8[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    if not np.any(data >= 0x80):
        return data, offsets
    # Every byte starts a character except continuation bytes (10xxxxxx); only the few multi-byte lead
    # bytes (11xxxxxx) need their continuation bytes folded in.
    codepoints = data.astype(np.uint32)
    lead = np.flatnonzero(data >= 0xC0)
    first = codepoints[lead]
    width = 2 + (first >= 0xE0).astype(np.int8) + (first >= 0xF0)
    value = first & np.array([0, 0, 0x1F, 0x0F, 0x07], dtype=np.uint32)[width]
    for i in range(1, 4):
        more = np.flatnonzero(width > i)
        value[more] = (value[more] << 6) | (codepoints[lead[more] + i] & 0x3F)
    codepoints[lead] = value
    continuation = (data & 0xC0) == 0x80
    return codepoints[~continuation], offsets - np.searchsorted(np.flatnonzero(continuation), offsets)


def _signatures(utf8: np.ndarray, byte_offsets: np.ndarray, num_perm: int, shingle_size: int) -> np.ndarray:
    """Densified one-permutation MinHash signatures (rows x num_perm, uint32) of character shingles."""
    codepoints, offsets = _codepoints(utf8, byte_offsets)
    k = shingle_size
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    stream = np.empty(len(codepoints) + k, dtype=_U64)
    stream[:-k] = codepoints
    stream[-k:] = _PAST_UNICODE
    # Rolling FNV-style hash of the k characters starting at every position of the block.
    size = len(stream) - k
    rolling = np.full(size, _SHINGLE_SEED, dtype=_U64)
    for j in range(k):
        rolling ^= stream[j : j + size]
        rolling *= _FNV_PRIME
    # A text shorter than k has one shingle, the whole text; the chars after it must not leak in.
    shingles_per_text = np.maximum(lengths - k + 1, 1)
    first_shingle = np.cumsum(shingles_per_text) - shingles_per_text
    position = np.arange(first_shingle[-1] + shingles_per_text[-1])
    position -= np.repeat(first_shingle - offsets[:-1], shingles_per_text)
    hashes = rolling[position]
    short = np.flatnonzero(lengths < k)
    if short.size:
        window = offsets[short, None] + np.arange(k)
        chars = np.where(np.arange(k) < lengths[short, None], stream[window], _PAST_UNICODE)
        short_hash = np.full(short.size, _SHINGLE_SEED, dtype=_U64)
        for j in range(k):
            short_hash ^= chars[:, j]
            short_hash *= _FNV_PRIME
        hashes[first_shingle[short]] = short_hash
    _fmix64(hashes)
    # One permutation: the high bits pick a bin, the low 32 bits are the value whose minimum the bin keeps.
    cell = _reduce(hashes, num_perm).view(np.int64)
    cell += np.repeat(np.arange(0, n * num_perm, num_perm), shingles_per_text)
    signature = np.full(n * num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
    np.minimum.at(signature, cell, hashes.astype(np.uint32))
    filled = np.zeros(n * num_perm, dtype=bool)
    filled[cell] = True
    return _densify(signature, filled, num_perm).reshape(n, num_perm)


@cache
def _probe_offsets(num_perm: int, attempt: int) -> np.ndarray:
    """How far each bin looks on its ``attempt``-th densification probe; the same for every text."""
    bins = np.arange(num_perm, dtype=_U64)
    probe = _reduce(_fmix64((bins << _U64(32)) ^ _U64(attempt) ^ _PROBE_SEED), num_perm).astype(np.int32)
    return probe - np.arange(num_perm, dtype=np.int32)


def _densify(signature: np.ndarray, filled: np.ndarray, num_perm: int) -> np.ndarray:
    """Fill empty bins by optimal densification: bin j copies the first filled bin on its own probe path."""
    # The probe path of bin j depends only on (j, attempt), never on the text, so equal shingle sets still
    # get equal signatures and matching bins still estimate Jaccard similarity without bias.
    dense = signature.copy()
    empty = np.flatnonzero(~filled).astype(np.int32)  # a block holds far fewer than 2**31 bins
    bin_ = (empty % num_perm).astype(np.int16)
    attempt = 0
    while empty.size:
        attempt += 1
        donor = empty + _probe_offsets(num_perm, attempt)[bin_]
        hit = filled[donor]
        dense[empty[hit]] = signature[donor[hit]]
        miss = ~hit
        empty, bin_ = empty[miss], bin_[miss]
    return dense


def _band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (row, band): a hash of the band's ``rows`` signature values."""
    keys = np.empty((len(signatures), bands), dtype=_U64)
    for band in range(bands):
        key = np.full(len(signatures), band, dtype=_U64)
        for column in range(band * rows, (band + 1) * rows):
            key ^= signatures[:, column]
            key *= _FNV_PRIME
        keys[:, band] = _fmix64(key)
    return keys


def _candidate_pairs(band_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, later) rows that share a bucket in some band; each later row pairs with its bucket's first."""
    n, bands = band_keys.shape
    # Most rows share no bucket: one hash pass per band (polars, bands in parallel) finds the few that
    # do, and only those are sorted to find each bucket's first row.
    shared = pl.DataFrame({str(band): band_keys[:, band] for band in range(bands)}).select(pl.all().is_duplicated())
    pair_codes = [np.zeros(0, dtype=np.int64)]
    for band in range(bands):
        members = np.flatnonzero(shared[str(band)].to_numpy())
        if members.size == 0:
            continue
        _, first_of_bucket, bucket = np.unique(band_keys[members, band], return_index=True, return_inverse=True)
        first = members[first_of_bucket][bucket]
        later = first != members
        pair_codes.append(first[later] * n + members[later])
    codes = np.sort(np.concatenate(pair_codes))
    codes = codes[np.diff(codes, prepend=-1) != 0]  # the same pair can share buckets in several bands
    return codes // n, codes % n


def _first_survives(n: int, earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    """Flag each row similar to an earlier row that is itself kept (the greedy first-occurrence rule)."""
    # Iterating "flag later if its earlier partner is unflagged" settles one chain link per round, and the
    # pairs point forward only, so it reaches the unique fixed point within (longest chain + 1) rounds.
    flagged = np.zeros(n, dtype=bool)
    while True:
        updated = np.zeros(n, dtype=bool)
        updated[later[~flagged[earlier]]] = True
        if np.array_equal(updated, flagged):
            return flagged
        flagged = updated
