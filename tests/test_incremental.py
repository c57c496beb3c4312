"""Incremental data stages: a new snapshot cleans and LF-votes only its own shards and settles only its rows,
and the result equals a run from scratch and the single-process ``clean`` on the whole pool."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.flows.pool import clean_pool, pool_votes
from driftloop.flows.scale import read_sharded, run_sharded_stages
from driftloop.tasks.clean import clean
from driftloop.tasks.demo_data import read_sms_corpus
from driftloop.tasks.landing import ingest_paths, load_role
from driftloop.tasks.lf import apply_lfs, load_lfs
from driftloop.tasks.near_dup import lsh_shape
from driftloop.tasks.shards import NEAR_CODE, PoolState, clean_shard, dedup_pool, fold_keys, reference_hashes

SMALL = ["runtime.shard_rows=300"]
_VOLATILE = ("seconds", "reused_shards", "task_runner")  # how a report was computed, not what it says


def _config(project: Path):
    return load_config(project / "configs" / "sms_spam.yaml", SMALL)


def _batches() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Gold, a first pool batch and a second one whose rows repeat, nearly repeat and leak rows of the first."""
    corpus = read_sms_corpus().sample(1300, random_state=3).reset_index(drop=True)
    gold, first = corpus.iloc[:300], corpus.iloc[300:1000]["text"].tolist()
    long_texts = [t for t in first if len(t) > 60]
    first += [long_texts[0] + " ok", long_texts[1] + " ok"]  # near-duplicates inside the first batch
    second = corpus.iloc[1000:]["text"].tolist()
    second += [t.upper() for t in first[:20]]  # exact copies of earlier rows (case folds away)
    second += [t + " ok" for t in long_texts[2:22]]  # near copies of earlier rows
    second += [long_texts[0] + " ok!", long_texts[3] + " ok!"]  # near copies of a near copy and of a near copy
    second += gold["text"].iloc[:10].tolist() + ["", "x"]  # gold leaks and rows a shard's own rules drop
    return gold, pd.DataFrame({"text": first}), pd.DataFrame({"text": second})


def _fingerprints(texts: list[str], cfg) -> pd.DataFrame:
    """One shard's kept rows with their fingerprints, as the clean-shard task writes them."""
    frame = pd.DataFrame({"row_id": [f"s:{i}" for i in range(len(texts))], "snapshot_id": "s", "text": texts})
    return clean_shard(frame.astype({"row_id": "string", "text": "string"}), cfg.clean).frame


def test_dedup_of_an_extended_pool_settles_only_the_new_rows_and_equals_the_full_pass(project: Path):
    """Pure: the prior pool's verdicts stand, and the appended rows get the same verdicts as one pass over all."""
    cfg = _config(project)
    gold, first, second = _batches()
    rows = _fingerprints(first["text"].tolist() + second["text"].tolist(), cfg)
    settled = int((rows["row_id"].str.split(":").str[1].astype(int) < len(first)).sum())
    bands, _ = lsh_shape(cfg.clean.near_dup.threshold, cfg.clean.near_dup.num_perm)
    loaders = [lambda b=b: rows[f"band_{b}"].to_numpy() for b in range(bands)]

    def key_texts(positions: np.ndarray) -> pl.Series:
        return fold_keys(rows["text"].iloc[positions].reset_index(drop=True))

    def dedup(frame: pd.DataFrame, prior: PoolState | None = None) -> PoolState:
        hashes = pl.from_pandas(frame[["key_hash_0", "key_hash_1"]])
        reference = reference_hashes(gold["text"], cfg.clean)
        return dedup_pool(hashes, loaders, key_texts, reference, cfg.clean, prior)

    whole = dedup(rows)
    # Cut into many small verification blocks (as on a cluster), the verdicts are the same.
    hashes = pl.from_pandas(rows[["key_hash_0", "key_hash_1"]])
    reference = reference_hashes(gold["text"], cfg.clean)
    many = dedup_pool(hashes, loaders, key_texts, reference, cfg.clean, parallelism=7)
    np.testing.assert_array_equal(many.reasons, whole.reasons)
    before = dedup(rows.iloc[:settled])
    extended = dedup(rows, prior=before)
    np.testing.assert_array_equal(extended.reasons, whole.reasons)
    assert extended.near_dup == whole.near_dup
    np.testing.assert_array_equal(extended.reasons[:settled], before.reasons)
    assert (whole.reasons[settled:] == NEAR_CODE).sum() >= 15, "the new rows must hold near-duplicates of old ones"
    # A prior pool longer than the pool it should begin is a caller's mistake, said as such.
    with pytest.raises(ValueError, match="prior pool"):
        dedup(rows.iloc[: settled - 1], prior=before)


def _single_process(catalog: Catalog, cfg):
    """Today's reference: ``clean`` on the whole pool, then ``apply_lfs`` on the rows it kept."""
    pool, _ = load_role(catalog, cfg, "unlabelled")
    gold = pd.concat([load_role(catalog, cfg, r)[0]["text"] for r in ("gold_dev", "gold_test")], ignore_index=True)
    result = clean(pool, cfg.clean, reference_texts=gold)
    return result, gold


def _stable(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in _VOLATILE}


def test_a_new_snapshot_recomputes_only_its_shards_and_equals_a_run_from_scratch(prefect_harness, project: Path):
    gold, first, second = _batches()
    incoming = project / "data" / "incoming"
    gold.iloc[:150].to_csv(incoming / "sms_gold_dev.csv", index=False)
    gold.iloc[150:].to_csv(incoming / "sms_gold_test.csv", index=False)
    first.to_csv(incoming / "batch_1.csv", index=False)
    cfg = _config(project)
    catalog = Catalog.from_config(cfg)
    ingest_paths(catalog, cfg)

    before = run_sharded_stages(cfg)
    assert before.shards == 3 and before.computed["clean"] == {"hits": 0, "misses": 3}
    assert before.computed["pool"] == "full"

    second.to_csv(incoming / "batch_2.csv", index=False)
    ingest_paths(catalog, cfg)
    after = run_sharded_stages(cfg)
    # Only the new snapshot's shard is cleaned and LF-voted; its rows are settled against the cached pool.
    assert after.shards == 5  # 354 new rows: two shards of at most 300
    assert after.computed["clean"] == {"hits": 3, "misses": 2}
    assert after.computed["votes"] == {"hits": 3, "misses": 2}
    assert after.computed["pool"] == "extended" and after.computed["reused_shards"] == 3

    expected, reference = _single_process(catalog, cfg)
    assert expected.dropped["near_duplicate"] >= 15 and expected.dropped["exact_duplicate"] >= 20
    assert expected.dropped["overlaps_reference"] >= 10
    report = {k: after.report[k] for k in ("rows_in", "rows_out", "dropped", "examples", "near_dup")}
    assert report == {k: expected.report[k] for k in report}

    # The pipeline's clean artifact is the very frame the single-process clean stored, dtypes included.
    pooled = clean_pool(cfg, [s.snapshot_id for s in catalog.snapshots("unlabelled")], reference.tolist())
    frame = catalog.read_artifact("clean.frame", pooled.key)
    catalog.write_artifact("clean.frame", "single-process", expected.frame)
    pd.testing.assert_frame_equal(frame, catalog.read_artifact("clean.frame", "single-process"))
    lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels)
    votes = pool_votes(cfg, pooled.report, frame["row_id"], [lf.name for lf in lfs])
    np.testing.assert_array_equal(votes, apply_lfs(frame, lfs))

    # From scratch: the same pool key, report, rows and votes.
    shutil.rmtree(catalog.derived_dir / "shards")
    scratch = run_sharded_stages(cfg)
    assert scratch == after and scratch.computed["pool"] == "full"
    assert _stable(scratch.report) == _stable(after.report)
    for name in ("shards.clean", "shards.votes"):
        pd.testing.assert_frame_equal(read_sharded(catalog, name, scratch), read_sharded(catalog, name, after))

    # Editing the LF module recomputes every shard's votes and nothing else.
    lf_file = Path(cfg.weak_label.lf_module)
    lf_file.write_text(lf_file.read_text() + "\nLFS = LFS[:-1]  # one LF fewer\n")
    edited = run_sharded_stages(cfg)
    assert edited.computed["clean"] == {"hits": 5, "misses": 0} and edited.computed["pool"] == "hit"
    assert edited.computed["votes"] == {"hits": 0, "misses": 5}
    assert edited.key == after.key and edited.vote_keys != after.vote_keys
    assert read_sharded(catalog, "shards.votes", edited).shape[1] == len(lfs)  # row_id + one column fewer


def test_weak_label_refuses_precomputed_votes_of_another_shape(project: Path):
    from driftloop.tasks.weak_label import weak_label

    cfg = _config(project)
    lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels)
    pool = pd.DataFrame({"text": ["call now to claim your prize", "see you at lunch"]})
    dev = pd.DataFrame({"text": ["free entry, txt WIN", "ok lor"], "label": ["spam", "ham"]})
    wrong = np.full((len(pool), len(lfs) - 1), -1)
    with pytest.raises(ValueError, match="pool_votes has shape"):
        weak_label(pool, dev, lfs, cfg.weak_label, cfg.data.labels, seed=0, pool_votes=wrong)
