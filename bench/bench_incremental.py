"""Incremental data stages: one new 300-row batch on top of an N-row pool, against recomputing everything.

    python -m bench.bench_incremental [--quick] [--rows 100000 1000000] [--batch 300]

For each pool size N (synthetic SMS-like texts with exact and near copies, as ``bench_scale`` makes them):
1. the data stages run once on the N-row pool, filling the per-shard caches (``initial_s``);
2. a new batch of ``--batch`` rows lands as its own snapshot (some of its rows copy or nearly copy old ones);
3. ``incremental``: the data stages on N + batch with the caches of step 1;
4. ``full``: the same, with the sharded and clean caches deleted first (today's "every retrain
   reprocesses everything", on the same sharded code path).

"The data stages" are what the pipeline's ``clean`` task and the vote gathering of ``weak-label`` do:
``clean_pool`` (clean shards, LF votes per shard, gold overlap and duplicates pool-wide, the ``clean.frame``
artifact) then ``pool_votes`` (the label matrix the label model refits on). Both runs must give the same pool.
Writes bench/results/incremental.json (``--quick``: incremental.quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.bench_scale import make_project


def _batch(rows: int, start: int, seed: int) -> pd.DataFrame:
    """A new batch like the pool: mostly new texts, a tenth exact and a twentieth near copies of corpus texts."""
    from driftloop.tasks.demo_data import read_sms_corpus

    corpus = read_sms_corpus()
    rng = np.random.default_rng(seed)
    words = np.array(" ".join(corpus["text"]).split())
    base = pd.Series(corpus["text"].to_numpy()[rng.integers(0, len(corpus), rows)])
    noise = pd.Series(words[rng.integers(0, len(words), rows)])
    texts = base + " " + noise + " #" + pd.Series(np.arange(start, start + rows)).astype(str)
    copies = rng.random(rows)
    texts[copies < 0.10] = base[copies < 0.10]
    near = (copies >= 0.10) & (copies < 0.15)
    texts[near] = base[near] + " ok"
    return pd.DataFrame({"text": texts})


def _data_stages(cfg, snapshot_ids: list[str], references: list[str]) -> dict:
    """The pipeline's data stages on these snapshots, timed; the cleaned pool's digest to compare runs."""
    from driftloop.catalog import Catalog
    from driftloop.flows.pool import clean_pool, pool_votes
    from driftloop.tasks.lf import load_lfs

    catalog = Catalog.from_config(cfg)
    lf_names = [lf.name for lf in load_lfs(cfg.weak_label.lf_module, cfg.data.labels)]
    started = time.perf_counter()
    pooled = clean_pool(cfg, snapshot_ids, references)
    clean_s = time.perf_counter() - started
    frame = catalog.read_artifact("clean.frame", pooled.key)
    read_s = time.perf_counter() - started - clean_s
    votes = pool_votes(cfg, pooled.report, frame["row_id"], lf_names)
    total = time.perf_counter() - started
    if votes is None:
        raise RuntimeError("the cached LF votes did not line up with the cleaned pool")
    return {
        "seconds": round(total, 2),
        "clean_pool_s": round(clean_s, 2),
        "votes_s": round(total - clean_s - read_s, 2),
        "computed": pooled.stages.computed,
        "rows_in": pooled.report["rows_in"],
        "rows_out": pooled.report["rows_out"],
        "dropped": pooled.report["dropped"],
        "pool_digest": str(pd.util.hash_pandas_object(frame, index=False).sum()),
        "votes_digest": str(int(np.sum(votes * np.arange(1, votes.shape[1] + 1), dtype=np.int64))),
    }


def run(rows: int, batch: int, shard_rows: int) -> dict:
    from driftloop.catalog import Catalog
    from driftloop.config import load_config
    from driftloop.flows.scale import reference_texts

    with tempfile.TemporaryDirectory(prefix="bench_incremental_") as tmp:
        started = time.perf_counter()
        config = make_project(Path(tmp), rows)
        cfg = load_config(config, [f"runtime.shard_rows={shard_rows}"])
        catalog = Catalog.from_config(cfg)
        references = reference_texts(catalog, cfg)[0]
        old = [s.snapshot_id for s in catalog.snapshots("unlabelled")]
        setup_s = time.perf_counter() - started
        initial = _data_stages(cfg, old, references)
        print(f"{rows}: initial {initial['seconds']} s", flush=True)

        snap, _ = catalog.add_snapshot(
            _batch(batch, rows, seed=rows + 1),
            source=Path("new_batch.csv"),
            sha=f"{'f' * 16}{rows:048d}",
            role="unlabelled",
        )
        incremental = _data_stages(cfg, [*old, snap.snapshot_id], references)
        print(f"{rows}: incremental {incremental['seconds']} s", flush=True)
        for step in ("shards", "clean"):
            shutil.rmtree(catalog.derived_dir / step, ignore_errors=True)
        full = _data_stages(cfg, [*old, snap.snapshot_id], references)
        print(f"{rows}: full {full['seconds']} s", flush=True)
    same = all(incremental[k] == full[k] for k in ("pool_digest", "votes_digest", "rows_out", "dropped"))
    return {
        "pool_rows": rows,
        "batch_rows": batch,
        "setup_s": round(setup_s, 1),
        "initial": initial,
        "incremental": incremental,
        "full": full,
        "identical": same,
        "incremental_over_full": round(incremental["seconds"] / full["seconds"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 100k-row pool only")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--shard-rows", type=int, default=250_000)
    args = parser.parse_args()
    from prefect.testing.utilities import prefect_test_harness

    from bench.record import write_result
    from driftloop.runtime import apply_defaults

    apply_defaults()
    sizes = [100_000] if args.quick else args.rows
    runs = {}
    with prefect_test_harness(server_startup_timeout=180):  # a throwaway Prefect API, as the tests use
        for rows in sizes:
            runs[str(rows)] = run(rows, args.batch, args.shard_rows)
            print(json.dumps(runs[str(rows)], indent=1), flush=True)
    goal = runs.get("1000000", {}).get("incremental_over_full")
    load = {"load_avg_1m": round(os.getloadavg()[0], 1)}  # a shared machine: other work was running
    report = {
        "shard_rows": args.shard_rows,
        "goal": "incremental after one 300-row batch on 1M rows < 10% of the full data-stage time",
        "goal_met": None if goal is None else goal < 0.10,
        "runs": runs,
    }
    title = "Incremental data stages: one new batch vs recomputing everything"
    out = write_result("incremental", report, title=title, quick=args.quick, machine=load)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
