"""Data stages at scale: cleaning, near-dup and LF votes on synthetic pools, one process vs sharded on Dask.

    python -m bench.bench_scale [--quick] [--rows 1000000 10000000] [--plans ...] [--out FILE]

Each configuration runs in its own process, while this one samples the memory of that process and all its
children (the Dask workers) every 0.2 s: the sum of their RSS, and the sum of their PSS, which counts a shared
library page once for the tree rather than once per process:
- ``single``: today's path, ``clean`` on the whole pool then ``apply_lfs`` (the baseline);
- ``sharded-local``: ``run_sharded_stages`` with ``runtime.task_runner=local`` (shards one at a time);
- ``dask-1`` / ``dask-2``: the same on a LocalCluster of 1 or 2 single-threaded worker processes that the
  run starts itself (cold: the temporary Prefect server and the workers start inside the run);
- ``warm-1`` / ``warm-2``: the same on an already running cluster of 1 or 2 such workers
  (``runtime.dask.address``) with a real Prefect server, as a production deployment runs; the second of
  two runs is reported, and the peak RSS includes the cluster.
Writes bench/results/scale.json (``scale.quick.json`` with ``--quick``): wall time, peak RSS, 1 -> 2 worker
speed-ups of the wall time and of the stages' own time, for the cold and the warm cluster.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
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
    from driftloop.tasks.clean import clean
    from driftloop.tasks.landing import load_role
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


def _tree_memory(procs: list[psutil.Process]) -> tuple[int, int]:
    """RSS and PSS of these processes and all their children, in bytes.

    RSS counts a page that several processes share (the same libraries: Python, numpy, polars, arrow) once per
    process, so a sum over a process tree overstates it; PSS splits each shared page among the processes that map
    it, so the PSS sum is the memory the tree holds.
    """
    rss = pss = 0
    for proc in procs:
        try:
            tree = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for member in tree:
            try:
                info = member.memory_full_info()
            except psutil.Error:
                continue
            rss, pss = rss + info.rss, pss + info.pss
    return rss, pss


def _measure(args: list[str], env: dict | None = None, also: subprocess.Popen | None = None) -> dict:
    """Run this module in ``--child`` mode; its wall time and the peak RSS of its process tree (and ``also``'s)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_scale", "--child", *args], cwd=REPO, stdout=subprocess.PIPE, env=env
    )
    watched = [psutil.Process(proc.pid)] + ([psutil.Process(also.pid)] if also is not None else [])
    peak = peak_pss = 0
    while proc.poll() is None:
        rss, pss = _tree_memory(watched)
        peak, peak_pss = max(peak, rss), max(peak_pss, pss)
        time.sleep(0.2)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    wall = round(time.perf_counter() - started, 2)
    return {"wall_s": wall, "peak_rss_mb": round(peak / 2**20), "peak_pss_mb": round(peak_pss / 2**20), **result}


def _clear_shards(workdir: Path) -> None:
    """Every run starts from the raw snapshots: drop the shards an earlier run cached."""
    shutil.rmtree(workdir / "data" / "derived" / "shards", ignore_errors=True)


def _serve_cluster(workers: int) -> None:
    """``--cluster N``: a LocalCluster of N one-thread worker processes; prints its address, then waits."""
    from driftloop.flows.runner import capped_local_cluster

    cluster = capped_local_cluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    print(cluster.scheduler_address, flush=True)
    while True:
        time.sleep(3600)


def _warm(workdir: Path, config: str, base: list[str], workers: int) -> dict:
    """The stages on an already running cluster (``runtime.dask.address``) with a Prefect server, as in production.

    The first run warms the cluster (each worker's first Prefect task run); the second, from raw snapshots
    again, is the one reported. The peak RSS counts the run's process and the whole cluster.
    """
    from tests.prefect_server import PrefectServer, kill_group

    home = workdir / f"server-warm-{workers}"
    home.mkdir()
    server = PrefectServer(home).start()
    cluster = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_scale", "--cluster", str(workers)],
        cwd=REPO,
        env=server.env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        address = cluster.stdout.readline().strip() if cluster.stdout else ""
        if not address.startswith("tcp://"):
            raise RuntimeError(f"the benchmark's cluster did not start (it printed {address!r})")
        overrides = [*base, "runtime.task_runner=dask", f"runtime.dask.address={address}"]
        runs = []
        for _ in range(2):
            _clear_shards(workdir)
            runs.append(_measure(["sharded", config, *overrides], env=server.env, also=cluster))
        return {**runs[1], "first_run": {k: runs[0][k] for k in ("wall_s", "peak_rss_mb", "peak_pss_mb", "seconds")}}
    finally:
        kill_group(cluster)
        server.stop()


#: Configurations: ``--plans`` picks some.
PLANS = ("sharded-local", "dask-1", "dask-2", "warm-1", "warm-2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one 100k-row pool (minutes on 2 cores)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--shard-rows", type=int, default=250_000)
    parser.add_argument("--skip-single-above", type=int, default=2_000_000, help="the baseline needs the pool in RAM")
    parser.add_argument("--plans", nargs="+", choices=PLANS, default=list(PLANS), help="configurations to run")
    parser.add_argument("--out", type=Path, help="Result file; default bench/results/scale.json (.quick.json).")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--cluster", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cluster:
        _serve_cluster(args.cluster)
        return
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
            results: dict[str, dict] = {}
            if rows <= args.skip_single_above:
                results["single"] = _measure(["single", config])
            for name in args.plans:
                kind, _, count = name.rpartition("-")
                if kind == "warm":
                    results[name] = _warm(Path(tmp), config, base, int(count))
                else:
                    _clear_shards(Path(tmp))  # a cold cluster starts with the run
                    workers = [*dask, f"runtime.dask.n_workers={count}"] if kind == "dask" else []
                    results[name] = _measure(["sharded", config, *base, *workers])
                print(name, rows, results[name], flush=True)
            outs = {r["rows_out"] for r in results.values()}
            results["identical_rows_out"] = len(outs) == 1
            # Wall time counts the process, the temporary Prefect server and the cluster starting; the stages'
            # own time (the flow from first shard submitted to pool settled) is what a warm cluster would see.
            for kind in ("dask", "warm"):
                one, two = results.get(f"{kind}-1"), results.get(f"{kind}-2")
                if one and two:
                    results[f"{kind}_speedup_1_to_2_workers"] = round(one["wall_s"] / two["wall_s"], 2)
                    results[f"{kind}_stages_speedup_1_to_2_workers"] = round(
                        one["seconds"]["total"] / two["seconds"]["total"], 2
                    )
            runs[str(rows)] = results
    from bench.record import write_result

    report = {"shard_rows": shard_rows, "runs": runs}
    title = "Data stages at scale: one process vs sharded on Dask"
    out = write_result("scale", report, title=title, quick=args.quick, path=args.out)
    print(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
