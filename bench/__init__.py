"""Benchmarks: ``python -m bench.bench_x [--quick]``; each writes JSON to bench/results/.

Importing the package applies driftloop's environment defaults (offline, no analytics, passive
OpenMP waits) before any bench module loads torch, as every driftloop entry point does.
"""

from driftloop.runtime import apply_defaults

apply_defaults()
