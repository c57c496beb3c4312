"""The pipeline's view of the sharded data stages (flows/scale.py): the one ``clean`` artifact that
downstream steps read, and the cached per-shard LF votes that ``weak-label`` uses instead of applying
the LFs again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig
from driftloop.flows.scale import (
    SHARDS_CODE,
    ShardedStages,
    load_sharded,
    read_sharded,
    run_sharded_stages,
    sharded_votes,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanPool:
    """The cleaned pool as the pipeline's ``clean.frame``/``clean.report`` (cache key ``key``) and its shards."""

    key: str
    hit: bool
    report: Mapping[str, Any]
    stages: ShardedStages


def clean_pool(
    cfg: DriftloopConfig, snapshot_ids: Sequence[str], references: Sequence[str], *, base_dir: Path | None = None
) -> CleanPool:
    """The sharded stages for these snapshots and gold texts, stored as the one ``clean`` artifact downstream reads.

    The shards' LF votes are computed in the same pass (one map over the shards) and cached for ``weak-label``.
    """
    catalog = Catalog.from_config(cfg)
    stages = run_sharded_stages(cfg, base_dir=base_dir, snapshot_ids=snapshot_ids, references=references)

    def compute() -> dict[str, object]:
        report = {k: stages.report[k] for k in ("rows_in", "rows_out", "dropped", "examples", "near_dup")}
        report["seconds"] = stages.computed.get("seconds", {})
        report["shards"] = {"key": stages.key, "count": stages.shards, "reused": stages.computed["reused_shards"]}
        return {"clean.frame": read_sharded(catalog, "shards.clean", stages), "clean.report": report}

    entry = catalog.cached("clean", ["unlabelled", stages.key], compute, code=SHARDS_CODE)
    return CleanPool(entry.key, entry.hit, catalog.read_artifact("clean.report", entry.key), stages)


def pool_votes(
    cfg: DriftloopConfig,
    clean_report: Mapping[str, Any],
    row_ids: pd.Series,
    lf_names: Sequence[str],
    *,
    base_dir: Path | None = None,
) -> np.ndarray | None:
    """The cached per-shard LF votes of a cleaned pool in its row order, or None when they do not line up.

    Args:
        clean_report: the pool's ``clean.report`` (its ``shards`` entry names the sharded pool).
        row_ids: the pool's ``row_id`` column, in order.
        lf_names: the names of the loaded LFs, in order.
    """
    shards = clean_report.get("shards")
    if not shards:
        return None
    catalog = Catalog.from_config(cfg)
    stages = sharded_votes(cfg, load_sharded(catalog, shards["key"]), base_dir=base_dir)
    votes = read_sharded(catalog, "shards.votes", stages)
    aligned = (
        list(votes.columns[1:]) == list(lf_names)
        and len(votes) == len(row_ids)
        and votes["row_id"].astype(str).reset_index(drop=True).equals(row_ids.astype(str).reset_index(drop=True))
    )
    if not aligned:
        log.warning("cached LF votes do not match the cleaned pool's rows or the LFs; applying the LFs again")
        return None
    return votes.drop(columns="row_id").to_numpy(dtype=np.int64)
