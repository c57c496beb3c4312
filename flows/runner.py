"""The Prefect task runner of the data stages (``runtime.task_runner``), with per-worker thread caps.

``local``: Prefect's thread pool with one worker, so shards run one after another; ``dask``: prefect-dask's
``DaskTaskRunner`` on a ``LocalCluster`` sized from ``runtime.dask.*`` or the cluster at ``runtime.dask.address``.
"""

from __future__ import annotations

import logging
from typing import Any

from driftloop.config import DriftloopConfig
from driftloop.errors import ConfigError

#: The module a local cluster's workers import as they start (it pulls in Prefect, polars and the stages).
PRELOAD = "driftloop.flows.scale"


def worker_environment(threads: int) -> dict[str, str]:
    """Environment that caps polars and BLAS/OpenMP threads of a worker process at ``threads``."""
    n = str(threads)
    # polars sizes its pool once, at import; OpenMP/BLAS read these at load: set before the worker starts.
    return {
        "POLARS_MAX_THREADS": n,
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TOKENIZERS_PARALLELISM": "false",
    }


def capped_local_cluster(**kwargs: Any):
    """A ``distributed.LocalCluster`` whose worker processes start with their thread caps in place."""
    import dask
    from distributed import LocalCluster

    threads = int(kwargs.get("threads_per_worker") or 1)
    spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **worker_environment(threads)}
    api_url = _api_url()
    if api_url:
        # Workers report task runs to this process's Prefect API; without it each worker process would
        # start its own temporary server (tens of seconds each on a small machine).
        spawn_env["PREFECT_API_URL"] = api_url
    # Each worker imports the stages' code as it starts, not inside its first shard's task: the cluster is
    # ready when the flow starts mapping, and a worker that cannot import driftloop fails at start-up.
    kwargs.setdefault("preload", [PRELOAD])
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
        return LocalCluster(**kwargs)


def _api_url() -> str | None:
    """The Prefect API this process talks to: a configured server, or its running temporary one."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if url:
        return str(url)
    from prefect.server.api.server import SubprocessASGIServer

    ephemeral = SubprocessASGIServer._instances.get(None)
    return ephemeral.api_url if ephemeral is not None and ephemeral.running else None


def task_runner(cfg: DriftloopConfig):
    """The Prefect task runner for ``runtime.task_runner``: a ``DaskTaskRunner`` or Prefect's default."""
    if cfg.runtime.task_runner == "local":
        from prefect.task_runners import ThreadPoolTaskRunner

        # One worker thread: shards run one after another, so memory stays at one shard's worth.
        return ThreadPoolTaskRunner(max_workers=1)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigError(
            "runtime.task_runner is 'dask' but prefect-dask is not installed; run `make install` "
            "(or pip install prefect-dask) or set runtime.task_runner=local"
        ) from None
    # The scheduler and workers log every connection at INFO; keep the run log for the stages.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    dask_cfg = cfg.runtime.dask
    if dask_cfg.address:
        return DaskTaskRunner(address=dask_cfg.address)
    cluster_kwargs: dict[str, Any] = {
        "n_workers": dask_cfg.n_workers,
        "threads_per_worker": dask_cfg.threads_per_worker,
        "processes": dask_cfg.processes,
        "memory_limit": dask_cfg.memory_limit,
        "dashboard_address": None,
    }
    if dask_cfg.gpus_per_worker:
        cluster_kwargs["resources"] = {"GPU": dask_cfg.gpus_per_worker}
    return DaskTaskRunner(cluster_class=capped_local_cluster, cluster_kwargs=cluster_kwargs)


def neural_annotations(cfg: DriftloopConfig) -> dict[str, Any]:
    """Dask annotations for a neural stage: needs one ``GPU`` when the workers advertise GPUs."""
    if cfg.runtime.task_runner == "dask" and cfg.runtime.dask.gpus_per_worker > 0:
        return {"resources": {"GPU": 1}}
    return {}


def dask_workers() -> int:
    """How many workers the Dask cluster has, when called inside a task running on one of them; 0 elsewhere."""
    try:
        from distributed import get_client, get_worker

        get_worker()
    except (ImportError, ValueError):
        return 0
    return max(1, len(get_client().scheduler_info().get("workers", {})))


def cluster_map(fn: Any, calls: list[tuple]) -> list:
    """From inside a task on a Dask worker: ``fn(*args)`` for every ``args`` in ``calls``, run across the cluster.

    ``worker_client`` hands this task's worker slot back while it waits, so a one-thread worker can run
    its share of the calls too. Results come back in the order of ``calls``.
    """
    from distributed import worker_client

    with worker_client() as client:
        return client.gather([client.submit(fn, *args, pure=False) for args in calls])
