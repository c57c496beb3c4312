"""Near-duplicate detection: one-permutation MinHash signatures of character shingles + LSH banding.

:func:`near_duplicates` flags every text whose estimated Jaccard similarity (over character
``shingle_size``-grams) to an earlier, itself kept text reaches ``threshold``; ``tasks/clean.py``
calls it on the case-folded texts that survive the exact-duplicate rule.

Why not datasketch's MinHash / MinHashLSH directly: MinHash.update applies num_perm permutations to
every shingle (1M SMS have ~75M shingles, so ~5G hash evaluations at num_perm=64) and MinHashLSH
inserts and queries one key at a time in Python; bench/bench_clean.py times exactly that and it is
two orders of magnitude over the 15 s budget for 1M rows. One-permutation hashing with optimal
densification (Li, Owen & Zhang 2012; Shrivastava 2017) estimates the same Jaccard similarity from
one hash per shingle, without bias and with about the same spread. The banding is MinHashLSH's,
vectorised: datasketch picks the band/row split, and every candidate pair is verified on the full
signature. The bench reports how often both approaches make the same keep/drop decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from datasketch import MinHashLSH

from driftloop.config import NearDupConfig

_U64 = np.uint64
_FNV_PRIME = _U64(0x100000001B3)
_SHINGLE_SEED = _U64(0xCBF29CE484222325)
_PROBE_SEED = _U64(0x9E3779B97F4A7C15)
# Past the last Unicode code point: pads the one shingle of a text shorter than the shingle size.
_PAST_UNICODE = _U64(0x110000)
#: LSH weights (false positives, false negatives) for datasketch's band/row split. Candidates are
#: verified afterwards, so a missed pair costs more than a spurious one.
LSH_WEIGHTS = (0.1, 0.9)
#: Bytes of text per signature block (about as many shingles): the per-shingle temporaries, 8 bytes each
#: and a few alive at once, then stay near a core's L2 cache. On SMS text (~90 bytes a row) this ran ~20%
#: faster than fixed 16k-row blocks, and a block of long texts no longer grows with their length.
BLOCK_BYTES = 1 << 18
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
def lsh_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for this threshold and size."""
    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
    except ValueError:
        # datasketch refuses a single band (threshold 1.0); one band of every permutation is its limit.
        return 1, num_perm
    return lsh.b, lsh.r


def near_duplicates(keys: pl.Series, cfg: NearDupConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Flag texts whose estimated Jaccard similarity to an earlier kept text reaches the threshold."""
    n = len(keys)
    bands, rows = lsh_shape(cfg.threshold, cfg.num_perm)
    info: dict[str, Any] = {
        "enabled": True,
        "method": "one-permutation MinHash + LSH",
        "bands": bands,
        "rows_per_band": rows,
    }
    if n < 2:
        return np.zeros(n, dtype=bool), {**info, "candidate_pairs": 0, "similar_pairs": 0}
    signatures = np.empty((n, cfg.num_perm), dtype=np.uint32)
    band_keys = np.empty((n, bands), dtype=_U64)
    for start, stop, block in signature_blocks(keys, cfg):
        signatures[start:stop] = block
        band_keys[start:stop] = lsh_band_keys(block, bands, rows)
    earlier, later = _candidate_pairs(band_keys)
    # Integer form of "matching bins / num_perm >= threshold", free of float rounding.
    needed = math.ceil(cfg.threshold * cfg.num_perm - 1e-9)
    similar = np.zeros(len(earlier), dtype=bool)
    for start in range(0, len(earlier), _VERIFY_PAIRS):
        part = slice(start, start + _VERIFY_PAIRS)
        matches = np.count_nonzero(signatures[earlier[part]] == signatures[later[part]], axis=1)
        similar[part] = matches >= needed
    flagged = first_survives(n, earlier[similar], later[similar])
    return flagged, {**info, "candidate_pairs": int(len(earlier)), "similar_pairs": int(similar.sum())}


def utf8_buffer(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The column's UTF-8 bytes end to end (no copy) and each text's byte offset (n + 1 entries)."""
    array = texts.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    if not pa.types.is_large_string(array.type):
        array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = array.buffers()[2]
    return np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8), offsets


def row_blocks(offsets: np.ndarray, budget: int | None = None) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of at most ``budget`` bytes of text each (default ``BLOCK_BYTES``), in order.

    ``offsets`` are the texts' byte offsets (n + 1 entries); a block holds at least one row, however long.
    """
    budget = budget or BLOCK_BYTES
    n = len(offsets) - 1
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        stop = int(np.searchsorted(offsets, offsets[start] + budget, side="right")) - 1
        bounds.append(min(n, max(stop, start + 1)))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def signature_blocks(keys: pl.Series, cfg: NearDupConfig) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, signatures) of the keys' rows, one :func:`row_blocks` block at a time."""
    if len(keys) == 0:
        return
    utf8, offsets = utf8_buffer(keys)
    for start, stop in row_blocks(offsets):
        yield start, stop, utf8_signatures(utf8, offsets[start : stop + 1], cfg.num_perm, cfg.shingle_size)


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


def utf8_signatures(utf8: np.ndarray, byte_offsets: np.ndarray, num_perm: int, shingle_size: int) -> np.ndarray:
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


def lsh_band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
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


def first_survives(n: int, earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
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
