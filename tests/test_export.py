"""`driftloop export`: a run's splits in the Hugging Face datasets format, read back with load_from_disk."""

from __future__ import annotations

import pandas as pd
import pytest
from datasets import load_from_disk
from typer.testing import CliRunner

from driftloop.atomic import write_json
from driftloop.catalog import Catalog
from driftloop.cli.main import app
from driftloop.config import load_config
from tests.summaries import summary_dict


def _run_with_artifacts(project) -> tuple:
    cfg = load_config(project / "configs" / "sms_spam.yaml")
    catalog = Catalog.from_config(cfg)
    train = pd.DataFrame(
        {
            "row_id": ["p:0", "p:1", "p:1", "aug:0"],
            "snapshot_id": ["p", "p", "p", None],
            "text": ["win cash now", "lunch at 1?", "lunch at 1?", "win money now"],
            "label": ["spam", "ham", "ham", "spam"],
            "label_confidence": [0.97, 0.91, 0.91, 0.97],
            "is_synthetic": [False, False, False, True],
        }
    )
    gold = pd.DataFrame({"row_id": ["d:0", "d:1"], "snapshot_id": "d", "text": ["free prize", "see you"]})
    gold = gold.assign(label=["spam", "ham"])
    for name, key, frame in (("balance.frame", "b1", train), ("clean.frame", "g1", gold)):
        catalog.write_artifact(name, key, frame)
    run = "20260101T000000Z-abc-0001"
    artifacts = {"clean": "g1", "weak_label": "w1", "balance": "b1", "gold_dev": "g1", "gold_test": "g1"}
    write_json(catalog.run_dir(run) / "summary.json", summary_dict(run, artifacts=artifacts))
    return cfg, run


def test_export_writes_a_dataset_dict_with_class_labels(project, tmp_path):
    cfg, run = _run_with_artifacts(project)
    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["export", "--config", str(project / "configs" / "sms_spam.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = load_from_disk(str(out))
    assert set(data) == {"train", "validation", "test"} and data["train"].num_rows == 4
    assert data["train"].features["label"].names == list(cfg.data.labels)
    assert data["train"].features["label"].int2str(data["train"]["label"][0]) == "spam"
    assert data["validation"]["label_confidence"] == [1.0, 1.0] and sum(data["train"]["is_synthetic"]) == 1


def test_export_refuses_to_overwrite_and_names_a_missing_run(project, tmp_path):
    _run_with_artifacts(project)
    out = tmp_path / "export"
    out.mkdir()
    args = ["export", "--config", str(project / "configs" / "sms_spam.yaml"), "-o", str(out)]
    assert "already exists" in CliRunner().invoke(app, args).output
    missing = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "new"), "no-such-run"])
    assert missing.exit_code == 2 and "run 'no-such-run'" in missing.output and "driftloop run" in missing.output


def test_a_run_that_failed_before_balancing_cannot_be_exported(project, tmp_path):
    cfg = load_config(project / "configs" / "sms_spam.yaml")
    catalog = Catalog.from_config(cfg)
    failed = summary_dict("r1", status="failed")
    for stage in ("artifacts", "balance", "training", "evaluation", "baselines", "seed_band", "promotion"):
        del failed[stage]
    write_json(catalog.run_dir("r1") / "summary.json", failed)
    from driftloop.cli.export import export_dataset
    from driftloop.errors import InputError

    with pytest.raises(InputError, match="no validated training set"):
        export_dataset(cfg, tmp_path / "x")
