"""The Prefect flows end to end on a slice of the real SMS corpus, under prefect_test_harness."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from driftloop.catalog import Catalog
from driftloop.config import load_config
from tasks.demo_data import read_sms_corpus, split_demo

pytestmark = pytest.mark.integration

# Small, fast settings; the rest comes from configs/sms_spam.yaml.
SMALL = [
    "demo.gold_dev_size=200", "demo.gold_test_size=200", "demo.n_later_batches=1", "demo.later_batch_size=150",
    "validation.min_rows=100", "validation.build_data_docs=true", "weak_label.label_model.n_epochs=100",
]


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def _write_demo(project: Path) -> dict:
    cfg = load_config(project / "config.yaml", SMALL)
    parts = split_demo(read_sms_corpus().sample(2000, random_state=0), cfg.demo, seed=cfg.project.seed)
    incoming = project / "data" / "incoming"
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(incoming / f"sms_{name}.csv", index=False)
    return parts


def _raw_digests(project: Path) -> dict[str, str]:
    raw = project / "data" / "raw"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(raw.glob("*.parquet"))}


def test_pipeline_runs_and_writes_summary(harness, project):
    from flows.pipeline import pipeline

    parts = _write_demo(project)
    summary = pipeline(config_path=str(project / "config.yaml"), overrides=SMALL)
    run_dir = Path(summary["run_dir"])
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["status"] == "succeeded" and on_disk["run_id"] == summary["run_id"]
    assert len(on_disk["config_hash"]) == 16
    assert (run_dir / "config.yaml").exists() and (run_dir / "lf_analysis.csv").exists()
    data = on_disk["data"]
    assert data["raw_rows"] == len(parts["pool"]) and 0 < data["clean_rows"] <= data["raw_rows"]
    assert set(data["dropped"]) >= {"empty", "exact_duplicate", "near_duplicate"}
    wl = on_disk["weak_labeling"]
    for key in ("n_lfs", "coverage", "label_model_dev_accuracy", "majority_vote_dev_accuracy", "abstained_rows"):
        assert key in wl
    assert wl["n_lfs"] >= 10
    assert set(on_disk["balance"]["before"]) == {"ham", "spam"}
    assert on_disk["validation"]["success"] is True
    assert Path(on_disk["validation"]["data_docs"]).exists()

    # A second run over the same snapshots: raw data untouched, ingest is a no-op.
    before = _raw_digests(project)
    again = pipeline(config_path=str(project / "config.yaml"), overrides=SMALL)
    assert {o["status"] for o in again["ingest"]} == {"already_ingested"}
    assert _raw_digests(project) == before


def test_failed_gate_fails_the_flow_and_keeps_raw_data(harness, project):
    from flows.pipeline import pipeline
    from tasks.validate import ValidationFailed

    _write_demo(project)
    Catalog.from_config(load_config(project / "config.yaml", SMALL))
    with pytest.raises(ValidationFailed, match="row_count"):
        pipeline(config_path=str(project / "config.yaml"), overrides=[*SMALL, "validation.min_rows=100000"])
    before = _raw_digests(project)
    assert before, "the failed run still ingested its snapshots"
    (summary_path,) = (project / "runs").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "failed" and "row_count" in summary["error"]
    assert summary["validation"]["success"] is False
    # Fixing the config and running again succeeds on the very same raw snapshots.
    ok = pipeline(config_path=str(project / "config.yaml"), overrides=SMALL)
    assert ok["status"] == "succeeded" and _raw_digests(project) == before
