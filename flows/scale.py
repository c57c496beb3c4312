"""Sharded data stages on Prefect: clean, deduplicate and LF-label the pool shard by shard, reusing every
shard an earlier run already processed.

    result = run_sharded_stages(cfg)             # runtime.task_runner: local | dask
    pool = read_sharded(catalog, "shards.clean", result)

What is cached, all under ``data/derived/shards/`` (futures carry only small counts):

1. ``clean-shard`` (mapped), one entry per shard, keyed on the shard's identity (snapshot id, which is
   the hash of the raw bytes, row group, row range), the ``clean`` section and the code: the rows that
   pass the per-row rules, with their fingerprints (text hash + MinHash LSH band keys) and a small
   report. A shard never depends on the gold sets or on other shards, so a new snapshot adds shards
   and every old shard is a cache hit.
2. ``vote-shard`` (mapped), one entry per shard, keyed on the clean shard and the LF module's source:
   the LF votes of its rows. Editing the LFs recomputes the votes, not the cleaning.
3. ``dedup-pool`` (once per pool): gold overlap, exact and near duplicates over the whole pool from
   the fingerprints; it writes one flag per row and the pool report, keyed on the list of shards and
   the gold texts. A pool that extends a cached one (new snapshots appended) settles only its new
   rows, against the fingerprints of every row before them.

The clean pool is then every shard's rows minus the flagged ones (``read_sharded``); the pipeline's
``clean`` task stores it as ``clean.frame`` (``flows/pool.py``: :func:`clean_pool`), and ``weak-label`` reads the cached
votes (:func:`pool_votes`) instead of applying the LFs again.

With ``runtime.task_runner: dask`` the mapped tasks run on ``prefect-dask``'s ``DaskTaskRunner``:
a ``LocalCluster`` sized from ``runtime.dask.*`` or the cluster at ``runtime.dask.address``.
Neural stages (``embed-shard``) carry a ``GPU`` resource annotation when workers advertise GPUs.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from driftloop.cache import code_fingerprint
from driftloop.catalog import Catalog, content_hash
from driftloop.config import DriftloopConfig
from driftloop.errors import DriftloopError, InputError
from driftloop.flows.runner import cluster_map, dask_workers, neural_annotations, task_runner
from driftloop.tasks.clean import EXAMPLES_PER_RULE, fold_case
from driftloop.tasks.near_dup import lsh_shape
from driftloop.tasks.shards import (
    POOL_RULES,
    PoolState,
    ShardSource,
    ShardSpec,
    canonical_shard,
    clean_shard,
    dedup_pool,
    first_dropped,
    plan_shards,
    pool_report,
    reference_hashes,
    run_here,
    shard_votes,
)

log = logging.getLogger(__name__)

#: The step code every shard key fingerprints (with every driftloop module it imports).
SHARDS_CODE = "driftloop.tasks.shards"
_HASHES = ["key_hash_0", "key_hash_1"]
_POOL_COLUMNS = ["row_id", "snapshot_id", "text"]


@dataclass(frozen=True)
class ShardJob:
    """One shard to clean: the slice of a raw snapshot it covers and the cache key of its outputs."""

    spec: ShardSpec
    key: str


@dataclass(frozen=True)
class VoteJob:
    """One shard's LF votes: the clean shard they read, their cache key, and the LF code's fingerprint."""

    clean_key: str
    key: str
    lf_code: str


@dataclass(frozen=True)
class PoolJob:
    """The pool-wide rules for one pool: its shards in pool order, the gold texts, and a cached prefix pool."""

    key: str
    shards: list[ShardJob]
    references: list[str]
    prior_key: str | None = None
    prior_shards: int = 0


@dataclass(frozen=True)
class ShardedStages:
    """What the sharded stages produced: the pool's key, its shards' keys, and the pool report.

    ``computed`` says what this call did (cache hits and misses per stage); it is not part of the result.
    """

    key: str
    shards: int
    report: dict[str, Any] = field(compare=False)
    clean_keys: tuple[str, ...] = ()
    vote_keys: tuple[str, ...] | None = None
    computed: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def rows_out(self) -> int:
        return int(self.report["rows_out"])


# ---- cache keys ------------------------------------------------------------------------------


def _clean_key(cfg: DriftloopConfig, spec: ShardSpec, code: str) -> str:
    # Not the shard's index: the same slice of the same snapshot is the same shard in every pool.
    # polars' version: the text hashes come from polars, and a new release may hash differently.
    identity = [spec.snapshot_id, spec.row_group, spec.start, spec.stop, spec.first_row]
    return content_hash(
        "shards.cleaned", identity, cfg.data.text_column, cfg.section_hash("clean"), pl.__version__, code
    )


def _pool_key(cfg: DriftloopConfig, clean_keys: Sequence[str], reference_hash: str, code: str) -> str:
    return content_hash(
        "shards.pool", list(clean_keys), reference_hash, cfg.section_hash("clean"), pl.__version__, code
    )


def _texts_hash(texts: Sequence[str]) -> str:
    """Hash of a set of texts: the gold overlap rule depends on which texts, not on their order."""
    digest = hashlib.sha256()
    for text in sorted({str(t) for t in texts}):
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


@cache
def _lf_file(lf_module: str, base_dir: str) -> Path:
    from driftloop.tasks.lf import lf_module_file

    return lf_module_file(lf_module, base_dir=Path(base_dir))  # where it is; its content is hashed on every call


def _vote_jobs(cfg: DriftloopConfig, clean_keys: Sequence[str], base_dir: str) -> list[VoteJob]:
    # The LF module's own source is part of the key: editing an LF recomputes the votes, not the cleaning.
    lf_code = code_fingerprint(SHARDS_CODE, [_lf_file(cfg.weak_label.lf_module, base_dir)])
    labels = list(cfg.data.labels)
    return [
        VoteJob(k, content_hash("shards.votes", k, cfg.weak_label.lf_module, labels, lf_code), lf_code)
        for k in clean_keys
    ]


def _done(catalog: Catalog, key: str, *names: str) -> bool:
    # Each file is written atomically, the report (or the votes) last: all present is a complete entry.
    return all(catalog.artifact_path(name, key).exists() for name in names)


def _read(catalog: Catalog, name: str, key: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    path = catalog.artifact_path(name, key)
    if not path.exists():
        raise DriftloopError(f"cached shard {path} is missing; run the sharded stages again (they rebuild it)")
    return pd.read_parquet(path, columns=list(columns) if columns is not None else None)


# ---- the tasks ------------------------------------------------------------------------------


@cache
def _lfs(lf_module: str, labels: tuple[str, ...], base_dir: str, lf_code: str) -> list:
    from driftloop.tasks.lf import load_lfs

    # Loaded once per worker process and LF source (lf_code); LF objects never travel through the scheduler.
    return load_lfs(lf_module, list(labels), base_dir=Path(base_dir))


def _snapshot_slice(catalog: Catalog, cfg: DriftloopConfig, spec: ShardSpec) -> pd.DataFrame:
    table = pq.ParquetFile(catalog.root / spec.path).read_row_group(spec.row_group, columns=[cfg.data.text_column])
    return canonical_shard(table.slice(spec.start, spec.rows), cfg.data.text_column, spec)


@task(name="clean-shard", cache_policy=NO_CACHE, retries=1)
def clean_shard_task(cfg: DriftloopConfig, job: ShardJob) -> dict[str, Any]:
    """Per-row rules on one shard; writes its kept rows with their fingerprints, then its report."""
    catalog = Catalog.from_config(cfg)
    result = clean_shard(_snapshot_slice(catalog, cfg, job.spec), cfg.clean)
    catalog.write_artifact("shards.cleaned", job.key, result.frame)
    report = {
        "rows_in": result.rows_in,
        "rows_kept": len(result.frame),
        "dropped": result.dropped,
        "examples": result.examples,
        "seconds": round(result.seconds, 3),
    }
    catalog.write_artifact("shards.report", job.key, report)  # last: it marks the entry complete
    return {**report, "index": job.spec.index, "polars_threads": pl.thread_pool_size()}


@task(name="vote-shard", cache_policy=NO_CACHE, retries=1)
def vote_shard_task(cfg: DriftloopConfig, job: VoteJob, base_dir: str) -> dict[str, Any]:
    """LF votes of one clean shard's rows (duplicates included: which rows survive is decided pool-wide)."""
    started = time.perf_counter()
    catalog = Catalog.from_config(cfg)
    rows = _read(catalog, "shards.cleaned", job.clean_key, ["row_id", "text"])
    lfs = _lfs(cfg.weak_label.lf_module, tuple(cfg.data.labels), base_dir, job.lf_code)
    catalog.write_artifact("shards.votes", job.key, shard_votes(rows, lfs))
    return {"rows": len(rows), "seconds": round(time.perf_counter() - started, 3)}


@task(name="dedup-pool", cache_policy=NO_CACHE, retries=1)
def dedup_task(cfg: DriftloopConfig, job: PoolJob) -> dict[str, Any]:
    """Gold overlap, exact and near duplicates over the whole pool from the shards' fingerprints.

    Writes one flag per pooled row and the pool report. When ``job.prior_key`` names a cached pool made
    of this pool's first shards, its flags stand and only the rows after it are settled.
    """
    started = time.perf_counter()
    catalog = Catalog.from_config(cfg)
    shard_reports = [catalog.read_artifact("shards.report", s.key) for s in job.shards]
    kept = [int(r["rows_kept"]) for r in shard_reports]
    offsets = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)
    paths = [catalog.artifact_path("shards.cleaned", s.key) for s in job.shards]
    prior, before = None, {}
    if job.prior_key:
        before = catalog.read_artifact("shards.report", job.prior_key)
        reasons = _read(catalog, "shards.flags", job.prior_key)["reason"].to_numpy(dtype=np.int8)
        if len(reasons) == offsets[job.prior_shards]:
            prior = PoolState(reasons, before["near_dup"])
    hashes = pl.concat(
        [pl.DataFrame(schema={h: pl.UInt64 for h in _HASHES})] + [pl.read_parquet(p, columns=_HASHES) for p in paths]
    )

    near = cfg.clean.near_dup
    bands = lsh_shape(near.threshold, near.num_perm)[0] if near.enabled else 0
    reference = reference_hashes(pd.Series(job.references, dtype="string"), cfg.clean)
    # On a Dask worker the band searches and the pair blocks run across the cluster (worker_client frees
    # this task's slot meanwhile); each call reads its own columns or texts, and only arrays travel.
    workers = dask_workers()
    state = dedup_pool(
        hashes,
        [partial(_band_column, paths, f"band_{b}") for b in range(bands)],
        partial(_key_texts, paths, offsets),
        reference,
        cfg.clean,
        prior,
        mapper=cluster_map if workers else run_here,
        parallelism=max(1, workers),
    )
    settled = 0 if prior is None else len(prior.reasons)
    examples = {}
    for rule in POOL_RULES:
        have = list(before.get("examples", {}).get(rule, [])) if prior is not None else []
        wanted = first_dropped(state.reasons, rule, settled, EXAMPLES_PER_RULE - len(have))
        examples[rule] = have + _arrival_texts(catalog, cfg, job.shards, offsets, wanted)
    report = pool_report(shard_reports, state, examples)
    report |= {
        "shards": len(job.shards),
        "reused_shards": job.prior_shards if prior is not None else 0,
        "rows_kept": kept,
        "clean_keys": [s.key for s in job.shards],
        "seconds": {"dedup_pool": round(time.perf_counter() - started, 3)},
        "task_runner": cfg.runtime.task_runner,
    }
    catalog.write_artifact("shards.flags", job.key, pd.DataFrame({"reason": state.reasons}))
    catalog.write_artifact("shards.report", job.key, report)  # last: it marks the entry complete
    return {"seconds": report["seconds"]["dedup_pool"], "settled_rows": settled, "rows": len(state.reasons)}


def _key_texts(paths: Sequence[Path], offsets: np.ndarray, positions: np.ndarray) -> pl.Series:
    """Case-folded texts of these (sorted) pool positions, reading only the shards that hold them."""
    owner = np.searchsorted(offsets, positions, side="right") - 1
    parts = [pa.array([], type=pa.large_string())]
    for shard in np.unique(owner):
        # Arrow end to end: a verification block reads every shard, and Python strings would cost 2-3x.
        texts = pq.read_table(paths[shard], columns=["text"]).column("text").cast(pa.large_string())
        parts += texts.take(pa.array(positions[owner == shard] - offsets[shard])).chunks
    return fold_case(pl.Series("text", pa.chunked_array(parts, type=pa.large_string())))


def _band_column(paths: Sequence[Path], column: str) -> np.ndarray:
    """One LSH band's keys for every pooled row, shard after shard."""
    return np.concatenate(
        [np.zeros(0, dtype=np.uint64)] + [pd.read_parquet(p, columns=[column])[column].to_numpy() for p in paths]
    )


def _arrival_texts(
    catalog: Catalog, cfg: DriftloopConfig, shards: Sequence[ShardJob], offsets: np.ndarray, positions: np.ndarray
) -> list[str]:
    """The texts of these pooled rows as they arrived (the report's examples), read back from the raw snapshots."""
    owners = np.searchsorted(offsets, positions, side="right") - 1
    texts = []
    for shard in np.unique(owners):  # positions come sorted: one read per shard that holds some
        spec = shards[shard].spec
        row_ids = _read(catalog, "shards.cleaned", shards[shard].key, ["row_id"])["row_id"]
        raw = _snapshot_slice(catalog, cfg, spec)["text"]
        for position in positions[owners == shard]:
            row = int(str(row_ids.iloc[position - offsets[shard]]).rsplit(":", 1)[1])
            texts.append(str(raw.iloc[row - spec.first_row]))
    return texts


@task(name="embed-shard", cache_policy=NO_CACHE)
def embed_shard_task(cfg: DriftloopConfig, clean_key: str, model: str) -> dict[str, Any]:
    """Sentence embeddings of one clean shard's rows (a neural stage: it goes to a GPU worker when there is one)."""
    from driftloop.atomic import atomic_path
    from driftloop.tasks.embed import embed_texts

    catalog = Catalog.from_config(cfg)
    texts = _read(catalog, "shards.cleaned", clean_key, ["text"])["text"].tolist()
    vectors = embed_texts(texts, model)
    with atomic_path(embedding_path(catalog, clean_key, model), suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, vectors)
    return {"rows": len(texts)}


def embedding_path(catalog: Catalog, clean_key: str, model: str) -> Path:
    """Where the embeddings of one clean shard (every row it kept, in order) by ``model`` are cached."""
    return catalog.artifact_path("shards.cleaned", clean_key).with_name(f"{clean_key}.{content_hash(model)}.npy")


# ---- the flow ------------------------------------------------------------------------------


@flow(name="driftloop-sharded-data-stages", log_prints=True, validate_parameters=False)
def sharded_data_stages(
    cfg: DriftloopConfig,
    clean_jobs: list[ShardJob],
    pool: PoolJob | None,
    vote_jobs: list[VoteJob],
    base_dir: str,
    embed_keys: list[str] | None = None,
    embed_model: str | None = None,
) -> dict[str, Any]:
    """Map the shard tasks that have no cached result on the flow's task runner; settle the pool."""
    started = time.perf_counter()
    cleaning = {job.key: clean_shard_task.submit(cfg, job) for job in clean_jobs}
    voting = [
        vote_shard_task.submit(
            cfg, job, base_dir, wait_for=[cleaning[job.clean_key]] if job.clean_key in cleaning else []
        )
        for job in vote_jobs
    ]
    shard_reports = [f.result() for f in cleaning.values()]
    clean_s = time.perf_counter() - started
    dedup = dedup_task.submit(cfg, pool).result() if pool is not None else None
    for f in voting:
        f.result()
    if embed_model is not None and embed_keys:
        import dask

        with dask.annotate(**neural_annotations(cfg)):
            embedded = [embed_shard_task.submit(cfg, key, embed_model) for key in embed_keys]
        for f in embedded:
            f.result()
    return {
        "cleaned_shards": len(shard_reports),
        "voted_shards": len(voting),
        "dedup": dedup,
        "seconds": {
            "clean_shards": round(clean_s, 3),
            "dedup_pool": dedup["seconds"] if dedup else 0.0,
            "total": round(time.perf_counter() - started, 3),
        },
        "polars_threads_per_worker": sorted({r["polars_threads"] for r in shard_reports}),
    }


_FLOWS: dict[str, Any] = {}


def _stages_flow(cfg: DriftloopConfig):
    """The flow on ``runtime.task_runner``, built once per runtime section (``with_options`` rebuilds its schema)."""
    key = cfg.section_hash("runtime")
    if key not in _FLOWS:
        _FLOWS[key] = sharded_data_stages.with_options(task_runner=task_runner(cfg))
    return _FLOWS[key]  # each run duplicates the runner, so one flow object serves every run


def shard_sources(catalog: Catalog, snapshot_ids: Sequence[str] | None = None) -> list[ShardSource]:
    """Unlabelled snapshots (every one, or ``snapshot_ids`` in that order) with their row-group sizes (footers only)."""
    snaps = catalog.snapshots("unlabelled")
    if snapshot_ids is not None:
        by_id = {s.snapshot_id: s for s in snaps}
        missing = [i for i in snapshot_ids if i not in by_id]
        if missing:
            raise InputError(
                f"unlabelled snapshot(s) {missing} are not in {catalog.manifest_path}; run `driftloop ingest` again"
            )
        snaps = [by_id[i] for i in snapshot_ids]
    sources = []
    for snap in snaps:
        meta = pq.read_metadata(catalog.root / snap.path)
        rows = tuple(meta.row_group(g).num_rows for g in range(meta.num_row_groups))
        sources.append(ShardSource(snap.snapshot_id, snap.path, rows))
    return sources


def reference_texts(catalog: Catalog, cfg: DriftloopConfig) -> tuple[list[str], list[str]]:
    """Gold dev and test texts (their rows must not leak into the pool) and the snapshot ids they came from."""
    from driftloop.tasks.landing import load_role

    texts: list[str] = []
    ids: list[str] = []
    for role in ("gold_dev", "gold_test"):
        frame, snapshot_ids = load_role(catalog, cfg, role)
        texts += frame["text"].tolist()
        ids += snapshot_ids
    return texts, ids


def run_sharded_stages(
    cfg: DriftloopConfig,
    *,
    base_dir: Path | None = None,
    embed_model: str | None = None,
    votes: bool = True,
    snapshot_ids: Sequence[str] | None = None,
    references: Sequence[str] | None = None,
) -> ShardedStages:
    """Clean, deduplicate and LF-label the pool shard by shard, computing only what no earlier run cached.

    Runs on ``runtime.task_runner`` (a subflow when called inside a flow or task); when every shard,
    its votes and the pool are cached, no flow runs at all.

    Args:
        cfg: the resolved config.
        base_dir: folder a relative ``weak_label.lf_module`` path resolves against (default: cwd).
        embed_model: also embed every clean shard with this encoder (a GPU-annotated stage).
        votes: also compute each shard's LF votes.
        snapshot_ids: the pool's unlabelled snapshots, in pool order (default: all, in manifest order).
        references: the gold texts no pool row may repeat (default: every gold dev and test snapshot).
    """
    catalog = Catalog.from_config(cfg)
    sources = shard_sources(catalog, snapshot_ids)
    if not sources:
        raise InputError(
            f"no unlabelled snapshots to process; drop the pool into {catalog.incoming_dir} and run `driftloop ingest`"
        )
    references = list(references) if references is not None else reference_texts(catalog, cfg)[0]
    base = str((base_dir or Path.cwd()).resolve())
    code = code_fingerprint(SHARDS_CODE)
    jobs = [ShardJob(spec, _clean_key(cfg, spec, code)) for spec in plan_shards(sources, cfg.runtime.shard_rows)]
    clean_keys = tuple(job.key for job in jobs)
    reference_hash = _texts_hash(references)
    key = _pool_key(cfg, clean_keys, reference_hash, code)
    clean_todo = [job for job in jobs if not _done(catalog, job.key, "shards.cleaned", "shards.report")]
    pool = None
    if not _done(catalog, key, "shards.flags", "shards.report"):
        prior_key, prior_shards = _prior_pool(catalog, cfg, clean_keys, reference_hash, code)
        pool = PoolJob(key, jobs, references, prior_key, prior_shards)
    vote_jobs = _vote_jobs(cfg, clean_keys, base) if votes else []
    vote_todo = [job for job in vote_jobs if not _done(catalog, job.key, "shards.votes")]
    embed_todo = []
    if embed_model is not None:
        embed_todo = [k for k in clean_keys if not embedding_path(catalog, k, embed_model).exists()]
    computed: dict[str, Any] = {
        "clean": {"hits": len(jobs) - len(clean_todo), "misses": len(clean_todo)},
        "votes": {"hits": len(vote_jobs) - len(vote_todo), "misses": len(vote_todo)},
        "pool": "hit" if pool is None else ("extended" if pool.prior_key else "full"),
        "reused_shards": pool.prior_shards if pool is not None else len(jobs),
    }
    if clean_todo or pool is not None or vote_todo or embed_todo:
        done = _stages_flow(cfg)(cfg, clean_todo, pool, vote_todo, base, embed_todo, embed_model)
        computed |= {"seconds": done["seconds"], "polars_threads_per_worker": done["polars_threads_per_worker"]}
    report = catalog.read_artifact("shards.report", key)
    if "seconds" in computed:  # this call's timings, beside the stored report's
        report = {
            **report,
            "seconds": computed["seconds"],
            "polars_threads_per_worker": computed["polars_threads_per_worker"],
        }
    vote_keys = tuple(job.key for job in vote_jobs) if votes else None
    return ShardedStages(key, len(jobs), report, clean_keys, vote_keys, computed)


def _prior_pool(
    catalog: Catalog, cfg: DriftloopConfig, clean_keys: Sequence[str], reference_hash: str, code: str
) -> tuple[str | None, int]:
    """The longest cached pool made of this pool's first shards (same gold texts and config), if any."""
    for size in range(len(clean_keys) - 1, 0, -1):
        key = _pool_key(cfg, clean_keys[:size], reference_hash, code)
        if _done(catalog, key, "shards.flags", "shards.report"):
            return key, size
    return None, 0


def load_sharded(catalog: Catalog, key: str) -> ShardedStages:
    """The sharded stages of a pool computed before, from its stored report (no LF votes attached)."""
    report = catalog.read_artifact("shards.report", key)
    return ShardedStages(key, int(report["shards"]), report, tuple(report["clean_keys"]))


def sharded_votes(cfg: DriftloopConfig, stages: ShardedStages, *, base_dir: Path | None = None) -> ShardedStages:
    """``stages`` with the LF votes of the current LF module attached, computing the shards that lack them."""
    catalog = Catalog.from_config(cfg)
    base = str((base_dir or Path.cwd()).resolve())
    jobs = _vote_jobs(cfg, stages.clean_keys, base)
    todo = [job for job in jobs if not _done(catalog, job.key, "shards.votes")]
    if todo:
        _stages_flow(cfg)(cfg, [], None, todo, base)
    computed = {**stages.computed, "votes": {"hits": len(jobs) - len(todo), "misses": len(todo)}}
    return replace(stages, vote_keys=tuple(job.key for job in jobs), computed=computed)


def iter_sharded(
    catalog: Catalog, name: str, result: ShardedStages, columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Shard by shard, the rows of the clean pool (``shards.clean``) or their LF votes (``shards.votes``)."""
    if name not in ("shards.clean", "shards.votes"):
        raise ValueError(f"read_sharded reads 'shards.clean' or 'shards.votes', not {name!r}")
    if name == "shards.votes" and result.vote_keys is None:
        raise ValueError("these sharded stages carry no LF votes; run them with votes=True or use sharded_votes()")
    flags = _read(catalog, "shards.flags", result.key)["reason"].to_numpy()
    offsets = np.concatenate([[0], np.cumsum(result.report["rows_kept"])]).astype(np.int64)
    for i, clean_key in enumerate(result.clean_keys):
        if name == "shards.clean":
            frame = _read(catalog, "shards.cleaned", clean_key, columns or _POOL_COLUMNS)
        else:
            frame = _read(catalog, "shards.votes", result.vote_keys[i], columns)
        yield frame[flags[offsets[i] : offsets[i + 1]] == 0].reset_index(drop=True)


def read_sharded(
    catalog: Catalog, name: str, result: ShardedStages, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Every shard of ``shards.clean`` or ``shards.votes`` as one frame (only for pools that fit in memory)."""
    return pd.concat(list(iter_sharded(catalog, name, result, columns)), ignore_index=True)
