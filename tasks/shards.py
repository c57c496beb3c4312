"""Sharded data stages: the pool cut into bounded row shards, cleaned and LF-labelled shard by shard.

Peak memory follows the shard size, not the pool size: every per-row step (normalising, length rules,
MinHash signatures, LF votes) runs on one shard at a time and depends on nothing but that shard, so
its output can be cached per shard and reused by every later run. The rules that look across rows
(gold overlap, exact and near duplicates: "keep the first occurrence in the whole pool") run
pool-wide on small fixed-width fingerprints of every row:

- gold overlap and exact duplicates: a 128-bit hash of each row's case-folded text;
- near duplicates: the LSH band keys of each row's MinHash signature, joined across shards one band
  at a time (a polars group-by on the band key); only the candidate pairs have their full
  signatures recomputed (from their text) and verified, in bounded blocks that a cluster can share out.

New snapshots are appended to the pool, and every rule keeps the *first* occurrence, so the verdict on
a row never depends on rows after it: :func:`dedup_pool` settles only the rows past an earlier pool's
end (``prior``), joining them against the fingerprints of the rows before.

The result equals :func:`driftloop.tasks.clean.clean` on the whole pool, row for row: the same rules
in the same order, the same signatures, the same bucket pairs and the same greedy first-survives pass.
``tests/test_scale.py`` and ``tests/test_incremental.py`` check it. Nothing here reads or writes files;
``flows/scale.py`` does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from driftloop.config import CleanConfig, NearDupConfig
from driftloop.tasks.clean import DROP_RULES, EXAMPLE_CHARS, EXAMPLES_PER_RULE, clean, fold_case, normalize_texts
from driftloop.tasks.lf import apply_lfs
from driftloop.tasks.near_dup import lsh_band_keys, lsh_shape, signature_blocks

#: Drop rules decided inside one shard; the rest of DROP_RULES need the whole pool.
LOCAL_RULES: tuple[str, ...] = ("empty", "too_short", "too_long")
POOL_RULES: tuple[str, ...] = ("overlaps_reference", "exact_duplicate", "near_duplicate")
OVERLAP_CODE = DROP_RULES.index("overlaps_reference") + 1
EXACT_CODE = DROP_RULES.index("exact_duplicate") + 1
NEAR_CODE = DROP_RULES.index("near_duplicate") + 1
_HASHES = ["key_hash_0", "key_hash_1"]
#: Candidate pairs verified at a time: their rows' signatures (at most 2 x num_perm x 4 bytes a pair) are all that
#: is held, whatever the pool size; pairs are compared ``_COMPARE_ROWS`` at a time.
PAIR_BLOCK = 1_000_000
_COMPARE_ROWS = 65_536
#: Two independently seeded 64-bit hashes: a false "exact duplicate" needs a 128-bit collision.
_KEY_SEEDS = (0x51A7_2545_F491_9E37, 0x7F4A_7C15_C2B2_AE35)
#: ``mapper(fn, calls)`` -> ``[fn(*args) for args in calls]``, run wherever it likes (here, or across a cluster).
Mapper = Callable[[Callable[..., Any], list[tuple]], list]


def run_here(fn: Callable[..., Any], calls: list[tuple]) -> list:
    """The default :data:`Mapper`: every call in this process, one after another."""
    return [fn(*args) for args in calls]


@dataclass(frozen=True)
class ShardSource:
    """One raw snapshot as the planner sees it: its id, where it is, and the rows of each row group."""

    snapshot_id: str
    path: str
    row_group_rows: tuple[int, ...]


@dataclass(frozen=True)
class ShardSpec:
    """A bounded slice of one row group of one snapshot: rows ``start:stop`` of row group ``row_group``.

    ``first_row`` is the slice's first row within the snapshot, so row ids match the unsharded path.
    """

    index: int
    snapshot_id: str
    path: str
    row_group: int
    start: int
    stop: int
    first_row: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class CleanedShard:
    """One shard after the local rules: kept rows with cleaned text and their dedup fingerprints."""

    frame: pd.DataFrame  # row_id, snapshot_id, text (cleaned), key_hash_0, key_hash_1, band_0..band_{b-1}
    rows_in: int
    dropped: dict[str, int]
    examples: dict[str, list[str]]  # the first few texts each local rule dropped, as they arrived
    seconds: float


@dataclass(frozen=True)
class PoolState:
    """The pool-wide verdict on every row that passed its shard's local rules, in pool order.

    ``reasons``: int8, 0 where the row is kept, else 1 + the index of its dropping rule in ``DROP_RULES``.
    ``near_dup``: the near-duplicate report (candidate and verified pair counts), as ``clean`` makes it.
    """

    reasons: np.ndarray
    near_dup: dict[str, Any]


def plan_shards(sources: Sequence[ShardSource], shard_rows: int) -> list[ShardSpec]:
    """Cut every row group into slices of at most ``shard_rows`` rows, in snapshot and row order."""
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")
    shards: list[ShardSpec] = []
    for source in sources:
        first_row = 0
        for group, group_rows in enumerate(source.row_group_rows):
            for start in range(0, group_rows, shard_rows):
                stop = min(start + shard_rows, group_rows)
                shards.append(
                    ShardSpec(len(shards), source.snapshot_id, source.path, group, start, stop, first_row + start)
                )
            first_row += group_rows
    return shards


def canonical_shard(table: pa.Table, text_column: str, spec: ShardSpec) -> pd.DataFrame:
    """The shard's rows in the canonical pool schema (row_id, snapshot_id, text), as ``to_canonical`` makes it."""
    if text_column not in table.column_names:
        raise KeyError(f"snapshot {spec.snapshot_id}: no text column {text_column!r}; columns: {table.column_names}")
    row_ids = pl.select(
        pl.format("{}:{}", pl.lit(spec.snapshot_id), pl.int_range(spec.first_row, spec.first_row + table.num_rows))
    ).to_series()
    return pd.DataFrame(
        {
            "row_id": row_ids.to_pandas().astype(str),  # the dtype to_canonical's list of str gets
            "snapshot_id": spec.snapshot_id,
            # Same conversion as tasks.ingest.to_canonical, so a non-string cell becomes the same text.
            "text": table.column(text_column).to_pandas().astype("string").fillna(""),
        }
    )


def clean_shard(frame: pd.DataFrame, cfg: CleanConfig) -> CleanedShard:
    """Apply the per-row rules to one shard and fingerprint its kept rows for the pool-wide rules.

    The output depends on this shard alone (not on the gold sets or on other shards), so it is cached
    per shard and every later run that still holds the snapshot reuses it.

    Args:
        frame: canonical pool rows (``row_id``, ``snapshot_id``, ``text``) of one shard.
        cfg: the ``clean`` config section; its gold-overlap and duplicate rules run later, pool-wide.
    """
    started = time.perf_counter()
    local_cfg = cfg.model_copy(
        update={"dedup_exact": False, "near_dup": cfg.near_dup.model_copy(update={"enabled": False})}
    )
    result = clean(frame, local_cfg)
    kept = result.frame.reset_index(drop=True)
    keys = fold_keys(kept["text"])
    fingerprints = key_hashes(keys).to_pandas()
    if cfg.near_dup.enabled:
        bands = band_keys(keys, cfg.near_dup)
        fingerprints = pd.concat(
            [fingerprints, pd.DataFrame({f"band_{b}": bands[:, b] for b in range(bands.shape[1])})], axis=1
        )
    out = pd.concat([kept[["row_id", "snapshot_id", "text"]], fingerprints], axis=1)
    dropped = {rule: result.dropped[rule] for rule in LOCAL_RULES}
    examples = {rule: list(texts) for rule, texts in result.report["examples"].items() if rule in LOCAL_RULES}
    return CleanedShard(out, len(frame), dropped, examples, seconds=time.perf_counter() - started)


def fold_keys(texts: pd.Series) -> pl.Series:
    """Case-folded dedup keys of cleaned texts, as ``clean`` compares them."""
    return fold_case(pl.Series("text", pa.array(texts, from_pandas=True, type=pa.large_string())))


def key_hashes(keys: pl.Series) -> pl.DataFrame:
    """Two independently seeded 64-bit hashes of each key (``key_hash_0``, ``key_hash_1``)."""
    return pl.DataFrame({name: keys.hash(seed) for name, seed in zip(_HASHES, _KEY_SEEDS, strict=True)})


def reference_hashes(texts: pd.Series, cfg: CleanConfig) -> pl.DataFrame:
    """Fingerprints of the gold texts, normalised and case-folded as pool rows are (nulls left out)."""
    normalised = normalize_texts(pd.Series(texts, dtype="string").reset_index(drop=True), cfg).dropna()
    return key_hashes(fold_keys(normalised))


def signatures(keys: pl.Series, cfg: NearDupConfig) -> np.ndarray:
    """MinHash signatures (rows x num_perm, uint32) of case-folded texts, exactly as ``near_duplicates`` makes them."""
    out = np.empty((len(keys), cfg.num_perm), dtype=np.uint32)
    for start, stop, block in signature_blocks(keys, cfg):
        out[start:stop] = block
    return out


def band_keys(keys: pl.Series, cfg: NearDupConfig) -> np.ndarray:
    """LSH band keys (rows x bands, uint64) of case-folded texts."""
    bands, rows = lsh_shape(cfg.threshold, cfg.num_perm)
    out = np.empty((len(keys), bands), dtype=np.uint64)
    for start, stop, block in signature_blocks(keys, cfg):
        out[start:stop] = lsh_band_keys(block, bands, rows)
    return out


def dedup_pool(
    hashes: pl.DataFrame,
    band_columns: Sequence[Callable[[], np.ndarray]],
    key_texts: Callable[[np.ndarray], pl.Series],
    reference: pl.DataFrame,
    cfg: CleanConfig,
    prior: PoolState | None = None,
    mapper: Mapper = run_here,
    parallelism: int = 1,
) -> PoolState:
    """The pool-wide rules (gold overlap, then exact and near duplicates) over every pooled row, in pool order.

    Args:
        hashes: ``key_hash_0``, ``key_hash_1`` of every pooled row (the rows that passed their shard's rules).
        band_columns: loaders of each band's keys for every pooled row (see :func:`band_keys`).
        key_texts: returns the case-folded texts of the given pool positions, in that order.
        reference: :func:`reference_hashes` of the gold texts.
        cfg: the ``clean`` config section.
        prior: the state of an earlier pool that this one extends (its rows first, unchanged, with the same
            gold sets): its verdicts stand, and only the rows after it are settled, against every row before.
        mapper: runs the independent pieces of the near-duplicate search (one call per LSH band, then one
            per block of candidate pairs); the Dask runner passes one that spreads them over the cluster, so
            ``band_columns`` and ``key_texts`` must then pickle (module-level functions or partials).
        parallelism: how many calls ``mapper`` runs at once (pairs are verified in at least two blocks per slot).
    """
    n = hashes.height
    settled = 0 if prior is None else len(prior.reasons)
    if settled > n:
        raise ValueError(f"the prior pool holds {settled} rows, more than the {n} of the pool it should begin")
    reasons = np.zeros(n, dtype=np.int8)
    if prior is not None:
        reasons[:settled] = prior.reasons
    fresh = hashes.slice(settled).with_row_index("position", offset=settled)
    if reference.height:
        reasons[fresh.join(reference.unique(), on=_HASHES, how="semi")["position"].to_numpy()] = OVERLAP_CODE
    if cfg.dedup_exact:
        candidates = fresh.filter(pl.Series(reasons[settled:] == 0))
        # Only earlier rows with a fresh row's fingerprint matter: "seen before" is all the rule asks.
        seen = (
            hashes.slice(0, settled)
            .with_row_index("position")
            .join(candidates.select(_HASHES).unique(), on=_HASHES, how="semi")
        )
        ordered = pl.concat([seen, candidates]).sort("position")
        repeated = ordered.filter(~pl.struct(_HASHES).is_first_distinct())["position"].to_numpy()
        reasons[repeated[repeated >= settled]] = EXACT_CODE
    near_dup: dict[str, Any] = {"enabled": cfg.near_dup.enabled}
    if cfg.near_dup.enabled:
        flagged, near_dup = _near_duplicates(
            reasons, settled, band_columns, key_texts, cfg.near_dup, prior, mapper, parallelism
        )
        reasons[flagged] = NEAR_CODE
    return PoolState(reasons, near_dup)


def _near_duplicates(
    reasons: np.ndarray,
    settled: int,
    band_columns: Sequence[Callable[[], np.ndarray]],
    key_texts: Callable[[np.ndarray], pl.Series],
    cfg: NearDupConfig,
    prior: PoolState | None,
    mapper: Mapper,
    parallelism: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Flag fresh rows (at or after ``settled``) that are near-duplicates of an earlier kept row, pool-wide."""
    bands, rows = lsh_shape(cfg.threshold, cfg.num_perm)
    before = prior.near_dup if prior is not None else {}
    info: dict[str, Any] = {
        "enabled": True,
        "method": "one-permutation MinHash + LSH",
        "bands": bands,
        "rows_per_band": rows,
        "candidate_pairs": int(before.get("candidate_pairs", 0)),
        "similar_pairs": int(before.get("similar_pairs", 0)),
    }
    # Rows an earlier verdict flagged as near-duplicates still anchor their buckets, as in clean's one pass.
    alive = (reasons == 0) | (reasons == NEAR_CODE)
    already = reasons == NEAR_CODE
    if int(alive.sum()) < 2:
        return np.zeros(len(reasons), dtype=bool), info
    codes = mapper(band_pairs, [(load_band, alive, settled) for load_band in band_columns])
    codes = np.concatenate([np.zeros(0, dtype=np.int64), *codes])  # a pair sharing several bands comes repeatedly
    # Cut by the later row's position, so a pair's repeats land in one block, which deduplicates and verifies
    # them itself: no pool-wide sort runs on one worker. Alone, the biggest blocks that fit; on a cluster,
    # two blocks per slot at least.
    blocks = max(1 if parallelism == 1 else 2 * parallelism, -(-len(codes) // PAIR_BLOCK))
    part = ((codes % len(alive)) * blocks // len(alive)).astype(np.uint16 if blocks < 2**16 else np.int64)
    order = np.argsort(part, kind="stable")  # a radix sort on small integers
    bounds = np.searchsorted(part[order], np.arange(blocks + 1))
    calls = [(codes[order[a:b]], len(alive), key_texts, cfg) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    del codes, part, order
    verified = mapper(verify_block, calls)
    similar = np.concatenate([np.zeros(0, dtype=np.int64), *(v[1] for v in verified)])
    flagged = first_survives_after(already, similar // len(alive), similar % len(alive))
    info["candidate_pairs"] += sum(v[0] for v in verified)
    info["similar_pairs"] += int(len(similar))
    return flagged & ~already, info


def verify_block(
    codes: np.ndarray, n: int, key_texts: Callable[[np.ndarray], pl.Series], cfg: NearDupConfig
) -> tuple[int, np.ndarray]:
    """The distinct candidate pairs among ``codes`` (``earlier * n + later``, repeats allowed) and the similar ones.

    Pairs are verified ``PAIR_BLOCK`` at a time, so memory stays bounded however many codes come in.
    Returns the number of distinct pairs and the codes of those that are near-duplicates.
    """
    codes = np.unique(codes)
    similar = [np.zeros(0, dtype=np.int64)]
    for i in range(0, len(codes), PAIR_BLOCK):
        block = codes[i : i + PAIR_BLOCK]
        similar.append(block[verify_pairs(block // n, block % n, key_texts, cfg)])
    return len(codes), np.concatenate(similar)


def verify_pairs(
    earlier: np.ndarray, later: np.ndarray, key_texts: Callable[[np.ndarray], pl.Series], cfg: NearDupConfig
) -> np.ndarray:
    """Which candidate pairs are near-duplicates: their MinHash signatures agree in >= threshold x num_perm slots.

    Signatures are recomputed from the texts (``key_texts``) for the rows of these pairs only; callers pass
    at most ``PAIR_BLOCK`` pairs, so memory stays bounded on a pool of any size.
    """
    needed = math.ceil(cfg.threshold * cfg.num_perm - 1e-9)
    involved, inverse = np.unique(np.concatenate([earlier, later]), return_inverse=True)
    sigs = signatures(key_texts(involved), cfg)
    left, right = inverse[: len(earlier)], inverse[len(earlier) :]
    similar = np.zeros(len(earlier), dtype=bool)
    for i in range(0, len(earlier), _COMPARE_ROWS):
        agree = np.count_nonzero(sigs[left[i : i + _COMPARE_ROWS]] == sigs[right[i : i + _COMPARE_ROWS]], axis=1)
        similar[i : i + len(agree)] = agree >= needed
    return similar


def band_pairs(load_band: Callable[[], np.ndarray], alive: np.ndarray, first_new: int = 0) -> np.ndarray:
    """Pair codes (``earlier * n + later``) of alive rows that share an LSH bucket in one band, later >= ``first_new``.

    Each later row pairs with its bucket's first row, as in the single-process engine. ``load_band`` loads
    that band's keys for every row, so only one band is in memory. With ``first_new``, only buckets that
    hold a row at or after it are grouped: the pairs of earlier rows were settled before.
    """
    positions = np.flatnonzero(alive)
    bucket = pl.DataFrame({"position": positions, "key": load_band()[positions]})
    if first_new:
        fresh_keys = bucket.filter(pl.col("position") >= first_new)["key"]
        bucket = bucket.filter(pl.col("key").is_in(fresh_keys.implode()))
    shared = bucket.filter(pl.col("key").is_duplicated())
    pairs = shared.with_columns(first=pl.col("position").min().over("key")).filter(
        (pl.col("position") != pl.col("first")) & (pl.col("position") >= first_new)
    )
    return (pairs["first"].to_numpy() * len(alive) + pairs["position"].to_numpy()).astype(np.int64)


def first_survives_after(settled: np.ndarray, earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    """Flag each row similar to an earlier row that is itself kept, given the fixed flags of settled rows.

    ``settled`` holds the verdicts of rows an earlier pool decided (False for the rest); ``later`` are
    rows after them. With nothing settled this is ``near_dup.first_survives``: the pairs point forward,
    so the iteration settles one chain link per round and reaches the unique fixed point.
    """
    flagged = settled.copy()
    while True:
        updated = settled.copy()
        updated[later[~flagged[earlier]]] = True
        if np.array_equal(updated, flagged):
            return flagged
        flagged = updated


def first_dropped(reasons: np.ndarray, rule: str, start: int = 0, limit: int = EXAMPLES_PER_RULE) -> np.ndarray:
    """Pool positions of the first ``limit`` rows at or after ``start`` that ``rule`` dropped."""
    return start + np.flatnonzero(reasons[start:] == DROP_RULES.index(rule) + 1)[:limit]


def shard_votes(frame: pd.DataFrame, lfs: Sequence[Any]) -> pd.DataFrame:
    """LF votes of one cleaned shard: ``row_id`` plus one int column per LF (class index, -1 abstains)."""
    votes = apply_lfs(frame[["text"]], lfs)
    names = [getattr(lf, "name", f"lf_{j}") for j, lf in enumerate(lfs)]
    return pd.concat(
        [frame[["row_id"]].reset_index(drop=True), pd.DataFrame(votes.astype(np.int16), columns=names)], axis=1
    )


def pool_report(
    shards: Sequence[dict[str, Any]], state: PoolState, pool_examples: dict[str, list[str]]
) -> dict[str, Any]:
    """One report in :func:`driftloop.tasks.clean.clean`'s shape from the shards' reports and the pool verdicts.

    Args:
        shards: each shard's ``rows_in``, local ``dropped`` counts and ``examples``, in pool order.
        state: the pool-wide verdicts.
        pool_examples: the first few texts (as they arrived) that each pool-wide rule dropped.
    """
    counts = np.bincount(state.reasons, minlength=len(DROP_RULES) + 1)
    found = {rule: sum(int(s["dropped"][rule]) for s in shards) for rule in LOCAL_RULES}
    found |= {rule: int(counts[DROP_RULES.index(rule) + 1]) for rule in POOL_RULES}
    dropped = {rule: found[rule] for rule in DROP_RULES}
    examples: dict[str, list[str]] = {}
    for rule in DROP_RULES:
        if not dropped[rule]:
            continue
        texts = (
            pool_examples.get(rule, [])
            if rule in POOL_RULES
            else [t for s in shards for t in s["examples"].get(rule, [])]
        )
        examples[rule] = [str(t)[:EXAMPLE_CHARS] for t in texts[:EXAMPLES_PER_RULE]]
    rows_in = sum(int(s["rows_in"]) for s in shards)
    return {
        "rows_in": rows_in,
        "rows_out": rows_in - sum(dropped.values()),
        "dropped": dropped,
        "examples": examples,
        "near_dup": state.near_dup,
    }
