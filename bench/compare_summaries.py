"""Are two runs' figures the same? Every number, flag and label of two summary.json files, side by side.

    python -m bench.compare_summaries BEFORE/summary.json AFTER/summary.json [--stem summary_unchanged]

For a change that must not move a figure (a refactor): run the demo before and after it and compare the two
summaries. Ids, paths, times, speeds and cache keys differ between any two runs and are left out; so are keys only
one side has, which are listed instead (a field a schema change added or removed); a null is a missing key. Reads
the JSON as it is, so it compares summaries of different schema versions. Writes bench/results/<stem>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.record import write_result

# Keys whose values differ between any two runs of the same code: identity, paths, clocks, speeds, cache keys.
VOLATILE = ("run_id", "run_dir", "config_path", "config_hash", "prefect_flow_runs", "started_at", "finished_at")
VOLATILE += ("duration_s", "seconds", "_s", "samples_per_s", "peak_rss_mb", "peak_gpu_mem_mb", "timings", "fingerprint")
VOLATILE += ("artifacts", "challenger", "champion_after", "model_dir", "data_docs", "lf_analysis", "samples", "plots")
VOLATILE += ("source",)


def figures(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted path (list items as ``[i]``), volatile keys left out."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if any(key == v or key.endswith(v) for v in VOLATILE):
                continue
            out |= figures(value, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(obj, list):
        return {k: v for i, item in enumerate(obj) for k, v in figures(item, f"{prefix}[{i}]").items()}
    return {} if obj is None else {prefix: obj}  # a null and a missing key say the same: not recorded


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    a, b = figures(before), figures(after)
    shared = sorted(set(a) & set(b))
    return {
        "figures_compared": len(shared),
        "changed": [{"figure": k, "before": a[k], "after": b[k]} for k in shared if a[k] != b[k]],
        "only_before": sorted(set(a) - set(b)),
        "only_after": sorted(set(b) - set(a)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--stem", default="summary_unchanged", help="bench/results/<stem>.json")
    parser.add_argument("--before-commit", help="the commit the BEFORE run ran (recorded with the result)")
    parser.add_argument("--after-commit", help="the commit the AFTER run ran")
    args = parser.parse_args()
    result: dict[str, Any] = {"before_commit": args.before_commit, "after_commit": args.after_commit}
    result |= compare(*(json.loads(p.read_text(encoding="utf-8")) for p in (args.before, args.after)))
    result["identical"] = not result["changed"]
    out = write_result(args.stem, result, title="Demo summary before and after a refactor: figures that changed")
    print(json.dumps({k: result[k] for k in ("figures_compared", "identical", "changed")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
