"""Sharded data stages: the same rows, drops and LF votes as the single-process path, locally and on Dask."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.flows.scale import neural_annotations, read_sharded, run_sharded_stages, task_runner
from driftloop.tasks.clean import clean
from driftloop.tasks.demo_data import read_sms_corpus
from driftloop.tasks.landing import ingest_paths, load_role
from driftloop.tasks.lf import apply_lfs, load_lfs
from driftloop.tasks.shards import ShardSource, ShardSpec, canonical_shard, plan_shards

SMALL = ["runtime.shard_rows=300"]


def _config(project: Path, overrides: list[str] | None = None):
    return load_config(project / "configs" / "sms_spam.yaml", overrides)


def test_plan_cuts_row_groups_into_bounded_slices():
    sources = [ShardSource("a", "a.parquet", (700, 200)), ShardSource("b", "b.parquet", (300,))]
    shards = plan_shards(sources, 300)
    assert [(s.snapshot_id, s.row_group, s.start, s.stop, s.first_row) for s in shards] == [
        ("a", 0, 0, 300, 0),
        ("a", 0, 300, 600, 300),
        ("a", 0, 600, 700, 600),
        ("a", 1, 0, 200, 700),
        ("b", 0, 0, 300, 0),
    ]
    assert [s.index for s in shards] == list(range(5))
    with pytest.raises(ValueError, match="shard_rows"):
        plan_shards(sources, 0)


def test_canonical_shard_matches_the_unsharded_schema_and_names_a_missing_column():
    spec = ShardSpec(0, "snap", "x.parquet", 0, 10, 13, first_row=10)
    frame = canonical_shard(pa.table({"body": ["a", None, "c"]}), "body", spec)
    assert frame["row_id"].tolist() == ["snap:10", "snap:11", "snap:12"]
    assert frame["text"].tolist() == ["a", "", "c"]
    with pytest.raises(KeyError, match="text"):
        canonical_shard(pa.table({"body": ["a"]}), "text", spec)


def test_task_runner_follows_the_config(project: Path):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    cfg = _config(project)
    assert isinstance(task_runner(cfg), ThreadPoolTaskRunner)
    assert neural_annotations(cfg) == {}
    remote = _config(
        project,
        ["runtime.task_runner=dask", "runtime.dask.address=tcp://10.0.0.5:8786", "runtime.dask.gpus_per_worker=1"],
    )
    runner = task_runner(remote)
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://10.0.0.5:8786"
    assert neural_annotations(remote) == {"resources": {"GPU": 1}}


def _pool_with_duplicates() -> pd.DataFrame:
    """~1.5k SMS texts plus exact and near copies planted far from their originals (other shards)."""
    corpus = read_sms_corpus().sample(1500, random_state=1).reset_index(drop=True)
    texts = corpus["text"].tolist()
    rng = np.random.default_rng(0)
    picked = rng.choice(len(texts), 60, replace=False)
    exact = [texts[i].upper() for i in picked[:30]]  # case differs: still an exact duplicate after folding
    near = [texts[i] + " ok" for i in picked[30:] if len(texts[i]) > 60]
    extra = ["", "  ", "x", "<b>" + texts[0] + "</b>"]
    return pd.DataFrame({"text": texts + exact + near + extra})


def test_sharded_stages_equal_the_single_process_path_locally_and_on_dask(prefect_harness, project: Path):
    corpus = read_sms_corpus().sample(400, random_state=2)
    incoming = project / "data" / "incoming"
    corpus.iloc[:200].to_csv(incoming / "sms_gold_dev.csv", index=False)
    corpus.iloc[200:].to_csv(incoming / "sms_gold_test.csv", index=False)
    pool = pd.concat([_pool_with_duplicates(), corpus.iloc[:20][["text"]]], ignore_index=True)  # gold leaks in
    half = len(pool) // 2
    pool.iloc[:half].to_csv(incoming / "pool_a.csv", index=False)
    pool.iloc[half:].to_csv(incoming / "pool_b.csv", index=False)
    cfg = _config(project, SMALL)
    catalog = Catalog.from_config(cfg)
    ingest_paths(catalog, cfg)

    frame, _ = load_role(catalog, cfg, "unlabelled")
    dev, _ = load_role(catalog, cfg, "gold_dev")
    test, _ = load_role(catalog, cfg, "gold_test")
    expected = clean(frame, cfg.clean, reference_texts=pd.concat([dev["text"], test["text"]], ignore_index=True))
    expected_rows = expected.frame.reset_index(drop=True)[["row_id", "snapshot_id", "text"]]
    expected_votes = apply_lfs(expected_rows, load_lfs(cfg.weak_label.lf_module, cfg.data.labels))
    assert min(expected.dropped.values()) >= 0 and expected.dropped["near_duplicate"] > 0
    assert expected.dropped["exact_duplicate"] >= 30 and expected.dropped["overlaps_reference"] >= 20

    runners = {
        "local": [],
        "dask": ["runtime.task_runner=dask", "runtime.dask.n_workers=2", "runtime.dask.processes=false"],
    }
    for name, overrides in runners.items():
        shutil.rmtree(catalog.derived_dir / "shards", ignore_errors=True)
        cfg = _config(project, SMALL + overrides)
        result = run_sharded_stages(cfg)
        assert result.shards >= 6, "the pool must span several shards for the test to mean anything"
        assert result.report["task_runner"] == name
        assert result.report["dropped"] == expected.dropped, name
        assert result.report["near_dup"] == expected.report["near_dup"], name
        rows = read_sharded(catalog, "shards.clean", result)
        pd.testing.assert_frame_equal(rows, expected_rows, check_dtype=False)
        votes = read_sharded(catalog, "shards.votes", result)
        assert votes["row_id"].tolist() == expected_rows["row_id"].tolist()
        np.testing.assert_array_equal(votes.drop(columns="row_id").to_numpy(), expected_votes)

    # Unchanged inputs: the second call is a cache hit and reads the stored report.
    again = run_sharded_stages(cfg)
    assert again == result
