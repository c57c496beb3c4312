"""Report benchmark: size, write time and load time in headless Chromium, against GX Data Docs in the same browser.

    python -m bench.bench_report [--project DIR] [--quick]

Uses the latest run under DIR/runs (default: the current project). The baseline is the GX Data Docs
page of the same run (the evidence a reader had before the report): its load time and the requests
it tries to make to other hosts. Goals: report < 2 MB, load < 1 s, 0 outside requests.
Writes bench/results/report.json (``report.quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench.record import write_result
from driftloop.catalog import Catalog
from driftloop.flows.report import write_index, write_run_report
from driftloop.summary import RunSummary
from tests.browser import Browser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."), help="project root holding runs/")
    parser.add_argument("--quick", action="store_true", help="3 loads instead of 10")
    args = parser.parse_args()
    catalog = Catalog(args.project)
    runs = sorted(p.parent.name for p in catalog.runs_dir.glob("*/summary.json"))
    if not runs:
        raise SystemExit(f"no run under {catalog.runs_dir}: run `driftloop run` (or make demo) first")
    run_id = runs[-1]
    repeats = 3 if args.quick else 10

    started = time.perf_counter()
    report = write_run_report(catalog, run_id)
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    index = write_index(catalog)
    index_s = time.perf_counter() - started
    validation = RunSummary.read(catalog.run_dir(run_id) / "summary.json").validation
    docs = validation.data_docs if validation else None

    result: dict = {
        "run_id": run_id,
        "report_bytes": report.stat().st_size,
        "index_bytes": index.stat().st_size,
        "write_report_s": round(write_s, 3),
        "write_index_s": round(index_s, 3),
    }
    with Browser() as browser:
        for name, page in (("report", report), ("index", index), ("gx_data_docs", Path(docs) if docs else None)):
            if page is None or not page.exists():
                continue
            visits = [browser.visit(page) for _ in range(repeats)]
            result[name] = {
                "load_s_median": round(statistics.median(v.load_s for v in visits), 3),
                "load_s_max": round(max(v.load_s for v in visits), 3),
                "outside_requests": len(visits[0].outside_requests),
                "outside_hosts": sorted({u.split("/")[2] for u in visits[0].outside_requests if "//" in u}),
                "console_errors": len(visits[0].console_errors),
            }
    result["goals_met"] = {
        "under_2_mb": result["report_bytes"] < 2_000_000,
        "under_1_s": result["report"]["load_s_max"] < 1.0,
        "no_outside_requests": result["report"]["outside_requests"] == 0,
    }
    title = "Run report: size and load time vs GX Data Docs"
    out = write_result("report", result, title=title, quick=args.quick)
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
