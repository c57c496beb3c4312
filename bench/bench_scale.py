"""Data stages at scale: cleaning, near-dup and LF votes on synthetic pools, one process vs sharded on Dask.

    python -m bench.bench_scale [--quick] [--rows 1000000 10000000]

Each configuration runs in its own process, while this one samples the resident memory of that
process and all its children (the Dask workers) every 0.2 s:
- ``single``: today's path, ``clean`` on the whole pool then ``apply_lfs`` (the baseline);
- ``sharded-local``: ``run_sharded_stages`` with ``runtime.task_runner=local`` (shards one at a time);
- ``dask-1`` / ``dask-2``: the same on a LocalCluster of 1 or 2 single-threaded worker processes.
Writes bench/results/bench_scale.json (wall time, peak RSS, 1 -> 2 worker speed-up of the wall time and of
the stages' own time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "bench_scale.json"
SNAPSHOT_ROWS = 1_000_000


def make_project(root: Path, rows: int, seed: int = 0) -> Path:
    """A project whose pool is ``rows`` synthetic SMS-like texts (10% exact, 5% near copies), ingested."""
    from driftloop.catalog import Catalog
    from driftloop.config import load_config
    from driftloop.packaged import init_project
    from driftloop.tasks.demo_data import read_sms_corpus

    init_project(root)
    config = root / "configs" / "sms_spam.yaml"
    cfg = load_config(config)
    catalog = Catalog.from_config(cfg)
    corpus = read_sms_corpus()
    rng = np.random.default_rng(seed)
    words = np.array(" ".join(corpus["text"]).split())
    gold = corpus.sample(800, random_state=seed)
    for name, part in (("gold_dev", gold.iloc[:400]), ("gold_test", gold.iloc[400:])):
        catalog.add_snapshot(part.reset_index(drop=True), source=Path(f"{name}.csv"), sha=name * 4, role=name)
    for start in range(0, rows, SNAPSHOT_ROWS):
        n = min(SNAPSHOT_ROWS, rows - start)
        base = corpus["text"].to_numpy()[rng.integers(0, len(corpus), n)]
        # A random word and a serial number make most rows unique; some stay exact or near copies.
        noise = words[rng.integers(0, len(words), n)]
        texts = pd.Series(base) + " " + pd.Series(noise) + " #" + pd.Series(np.arange(start, start + n)).astype(str)
        copies = rng.random(n)
        texts[copies < 0.10] = pd.Series(base)[copies < 0.10]
        near = (copies >= 0.10) & (copies < 0.15)
        texts[near] = pd.Series(base)[near] + " ok"
        frame = pd.DataFrame({"text": texts})
        # A distinct id per snapshot (its first 16 hex digits name the raw file).
        sha = hashlib.sha256(f"bench-pool-{seed}-{start}".encode()).hexdigest()
        catalog.add_snapshot(frame, source=Path(f"pool_{start}.csv"), sha=sha, role="unlabelled")
    return config


def _run_single(config: str) -> dict:
    from driftloop.catalog import Catalog
    from driftloop.config import load_config
    from driftloop.flows.ingestion import load_role
    from driftloop.tasks.clean import clean
    from driftloop.tasks.lf import apply_lfs, load_lfs

    cfg = load_config(config)
    catalog = Catalog.from_config(cfg)
    pool, _ = load_role(catalog, cfg, "unlabelled")
    reference = pd.concat([load_role(catalog, cfg, r)[0]["text"] for r in ("gold_dev", "gold_test")])
    result = clean(pool, cfg.clean, reference_texts=reference)
    votes = apply_lfs(result.frame, load_lfs(cfg.weak_label.lf_module, cfg.data.labels))
    return {"rows_out": len(result.frame), "dropped": result.dropped, "votes": int((votes >= 0).sum())}


def _run_sharded(config: str, overrides: list[str]) -> dict:
    from driftloop.config import load_config
    from driftloop.flows.scale import run_sharded_stages

    result = run_sharded_stages(load_config(config, overrides))
    return {"rows_out": result.rows_out, "dropped": result.report["dropped"], "seconds": result.report["seconds"]}


def _measure(args: list[str]) -> dict:
    """Run this module in ``--child`` mode; its wall time and the peak RSS of its process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_scale", "--child", *args], cwd=REPO, stdout=subprocess.PIPE
    )
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": round(time.perf_counter() - started, 2), "peak_rss_mb": round(peak / 2**20), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 100k-row pool (minutes on 2 cores)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--shard-rows", type=int, default=250_000)
    parser.add_argument("--skip-single-above", type=int, default=2_000_000, help="the baseline needs the pool in RAM")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, config, *overrides = args.child
        result = _run_single(config) if mode == "single" else _run_sharded(config, overrides)
        print(json.dumps(result, default=str))
        return
    sizes = [100_000] if args.quick else args.rows
    shard_rows = 25_000 if args.quick else args.shard_rows
    runs: dict[str, dict] = {}
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
            config = str(make_project(Path(tmp), rows))
            base = [f"runtime.shard_rows={shard_rows}"]
            dask = ["runtime.task_runner=dask", "runtime.dask.threads_per_worker=1", "runtime.dask.processes=true"]
            plans = {
                "sharded-local": base,
                "dask-1": base + dask + ["runtime.dask.n_workers=1"],
                "dask-2": base + dask + ["runtime.dask.n_workers=2"],
            }
            results: dict[str, dict] = {}
            if rows <= args.skip_single_above:
                results["single"] = _measure(["single", config])
            for name, overrides in plans.items():
                for step in ("shards",):  # every configuration starts from raw snapshots
                    subprocess.run(["rm", "-rf", str(Path(tmp) / "data" / "derived" / step)], check=True)
                results[name] = _measure(["sharded", config, *overrides])
                print(name, rows, results[name], flush=True)
            outs = {r["rows_out"] for r in results.values()}
            results["identical_rows_out"] = len(outs) == 1
            # Wall time counts the process, the temporary Prefect server and the cluster starting; the stages'
            # own time (the flow from first shard submitted to pool settled) is what a warm cluster would see.
            results["speedup_1_to_2_workers"] = round(results["dask-1"]["wall_s"] / results["dask-2"]["wall_s"], 2)
            results["stages_speedup_1_to_2_workers"] = round(
                results["dask-1"]["seconds"]["total"] / results["dask-2"]["seconds"]["total"], 2
            )
            runs[str(rows)] = results
    from driftloop.atomic import write_json

    report = {"cpus": os.cpu_count(), "shard_rows": shard_rows, "runs": runs}
    write_json(RESULTS, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
