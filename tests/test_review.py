"""The review queue (export), reading reviewed labels back (CSV and Label Studio JSON), and `review import`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftloop.config import ReviewConfig
from driftloop.errors import InputError
from driftloop.tasks.review import build_queue, label_studio_config, label_studio_tasks, read_reviewed
from tests.summaries import WEAK, summary_dict

LABELS = ["a", "b", "c"]


def _inputs():
    pool = pd.DataFrame({"text": [f"t{i}" for i in range(6)], "row_id": [f"r{i}" for i in range(6)]})
    votes = np.array([[0, -1], [0, 1], [-1, -1], [1, -1], [0, -1], [0, 0]])
    nan = [np.nan] * 3
    weak = np.array(
        [[0.95, 0.03, 0.02], [0.5, 0.45, 0.05], nan, [0.1, 0.85, 0.05], [0.9, 0.05, 0.05], [0.99, 0.005, 0.005]]
    )
    end = np.array(
        [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1], [0.1, 0.85, 0.05], [0.98, 0.01, 0.01]]
    )
    return pool, votes, weak, end


def test_queue_ranks_doubtful_rows_first_and_is_deterministic() -> None:
    pool, votes, weak, end = _inputs()
    queue = build_queue(pool, votes, weak, LABELS, ReviewConfig(queue_size=4, rare_class_share=0.2), end_probs=end)
    assert len(queue) == 4 and (queue["label"] == "").all()
    top = queue.iloc[0]
    assert top["row_id"] == "r1" and {"disagreement", "lf_conflict"} <= set(top["reasons"].split(";"))
    assert "r5" not in set(queue["row_id"])  # confident, agreeing, common class: not worth a review
    assert "r2" in set(queue["row_id"]) and "rare_class" in queue.set_index("row_id").loc["r2", "reasons"]
    again = build_queue(pool, votes, weak, LABELS, ReviewConfig(queue_size=4, rare_class_share=0.2), end_probs=end)
    pd.testing.assert_frame_equal(queue, again)


def test_queue_without_end_model_and_shape_errors() -> None:
    pool, votes, weak, _ = _inputs()
    queue = build_queue(pool, votes, weak, LABELS, ReviewConfig(queue_size=6))
    assert queue["end_label"].isna().all() and len(queue) == 6
    with pytest.raises(ValueError, match="same rows"):
        build_queue(pool.iloc[:3], votes, weak, LABELS, ReviewConfig())


def test_label_studio_round_trip(tmp_path: Path) -> None:
    pool, votes, weak, end = _inputs()
    queue = build_queue(pool, votes, weak, LABELS, ReviewConfig(queue_size=3), end_probs=end)
    tasks = label_studio_tasks(queue)
    assert len(tasks) == 3 and all("text" in t["data"] for t in tasks)
    assert '<Choice value="c"/>' in label_studio_config(LABELS)
    # A reviewer accepts the first, fixes the second, skips the third (as Label Studio exports it).
    tasks[0]["annotations"] = [{"result": [{"value": {"choices": ["a"]}}]}]
    tasks[1]["annotations"] = [{"result": [{"value": {"choices": ["c"]}}]}]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    reviewed = read_reviewed(path, LABELS)
    assert reviewed["label"].tolist() == ["a", "c"] and list(reviewed.columns) == ["text", "label", "row_id"]


def test_read_reviewed_csv_and_errors(tmp_path: Path) -> None:
    csv = tmp_path / "queue.csv"
    pd.DataFrame({"text": ["x", "y", "z"], "label": ["a", "", " b "], "row_id": ["1", "2", "3"]}).to_csv(
        csv, index=False
    )
    assert read_reviewed(csv, LABELS)["label"].tolist() == ["a", "b"]
    pd.DataFrame({"text": ["x"], "label": ["zzz"]}).to_csv(csv, index=False)
    with pytest.raises(InputError, match="zzz"):
        read_reviewed(csv, LABELS)
    pd.DataFrame({"text": ["x"], "label": [""]}).to_csv(csv, index=False)
    with pytest.raises(InputError, match="no reviewed row"):
        read_reviewed(csv, LABELS)
    with pytest.raises(InputError, match="does not exist"):
        read_reviewed(tmp_path / "missing.csv", LABELS)


def test_review_import_makes_a_reviewed_snapshot(project: Path) -> None:
    from driftloop.catalog import Catalog
    from driftloop.cli.main import app
    from driftloop.config import load_config

    config = project / "configs" / "sms_spam.yaml"
    csv = project / "reviewed.csv"
    pd.DataFrame({"text": ["call 0800 now to win", "see you at home", "ok"], "label": ["spam", "ham", ""]}).to_csv(
        csv, index=False
    )
    result = CliRunner().invoke(app, ["review", "import", str(csv), "--config", str(config)])
    assert result.exit_code == 0, result.output
    snapshots = Catalog.from_config(load_config(config)).snapshots("reviewed")
    assert len(snapshots) == 1 and snapshots[0].rows == 2
    bad = CliRunner().invoke(app, ["review", "import", str(project / "nope.csv"), "--config", str(config)])
    assert bad.exit_code != 0 and "does not exist" in bad.output


def _populated_run(project: Path, *, champion: bool) -> tuple[object, pd.DataFrame]:
    """A catalog holding what a finished run leaves behind (summary + derived artifacts), written directly."""
    from driftloop.atomic import write_json
    from driftloop.catalog import Catalog
    from driftloop.config import TrainConfig, load_config
    from driftloop.tasks.aggregate import aggregator_arrays
    from driftloop.tasks.demo_data import read_sms_corpus
    from driftloop.tasks.lf import load_lfs
    from driftloop.tasks.weak_label import weak_label

    cfg = load_config(project / "configs" / "sms_spam.yaml", ["weak_label.label_model.n_epochs=50"])
    catalog = Catalog.from_config(cfg)
    rows = read_sms_corpus().sample(500, random_state=0).reset_index(drop=True)
    # The pool is an ingested snapshot, so its row ids are "<snapshot id>:<row>", as `review import` checks.
    pool_snapshot, _ = catalog.add_snapshot(rows.iloc[:350][["text"]], source=project / "pool.csv", sha="ab" * 32,
                                            role="unlabelled")  # fmt: skip
    gold = rows.assign(row_id=[f"{pool_snapshot.snapshot_id}:{i}" for i in range(len(rows))])
    pool, dev = gold.iloc[:350].reset_index(drop=True), gold.iloc[350:].reset_index(drop=True)
    result = weak_label(
        pool[["text", "row_id"]],
        dev,
        load_lfs(cfg.weak_label.lf_module, cfg.data.labels),
        cfg.weak_label,
        cfg.data.labels,
        seed=0,
    )
    catalog.write_artifact("clean.frame", "cleankey", pool[["text", "row_id"]])
    catalog.write_artifact("weak_label.frame", "weakkey", result.frame)
    catalog.write_artifact("weak_label.labeler", "weakkey", aggregator_arrays(result.aggregator))
    run_id = "20260101T000000Z-review-0001"
    run_dir = catalog.start_run(cfg, run_id)
    summary = summary_dict(
        run_id,
        run_dir=str(run_dir),
        weak_labeling={**WEAK, "labels": list(cfg.data.labels), "pool_rows": len(pool)},
        artifacts={"clean": "cleankey", "weak_label": "weakkey", "gold_dev": "d", "gold_test": "t"},
    )
    write_json(run_dir / "summary.json", summary)
    if champion:
        from driftloop.tasks.registry import Registry
        from driftloop.tasks.train import save_model, train
        from tests.tiny_models import sms_like_frame, tiny_bert_dir

        base = tiny_bert_dir(project / "tiny_base")
        fit = train(
            sms_like_frame(48, 0),
            sms_like_frame(16, 1),
            cfg.data.labels,
            TrainConfig.of(model=str(base), method="feature", precision="fp32"),
            seed=0,
        )
        folder = save_model(fit, catalog.models_dir / "v1")
        metrics = {"macro_f1": 0.9, "per_class_f1": {"ham": 0.9, "spam": 0.9}}
        Registry(catalog.models_dir).register_and_promote("v1", folder, metrics)
    return catalog, pool


def test_review_export_then_import_round_trips(project: Path, one_torch_thread) -> None:
    from driftloop.cli.main import app

    config = str(project / "configs" / "sms_spam.yaml")
    runner = CliRunner()
    empty = runner.invoke(app, ["review", "export", "--config", config])
    assert empty.exit_code == 2 and "no successful run" in empty.output
    catalog, pool = _populated_run(project, champion=True)
    result = runner.invoke(app, ["review", "export", "--config", config, "--set", "review.queue_size=40"])
    assert result.exit_code == 0, result.output
    assert "champion v1" in result.output
    folder = catalog.run_dir("20260101T000000Z-review-0001") / "review"
    queue = pd.read_csv(folder / "review_queue.csv", dtype=str, keep_default_na=False)
    assert len(queue) == 40 and set(queue["row_id"]) <= set(pool["row_id"])
    assert list(queue.columns)[-1] == "label" and (queue["label"] == "").all()
    assert queue["score"].astype(float).is_monotonic_decreasing
    assert queue["end_label"].isin(["ham", "spam"]).all()  # the champion's view is in the queue
    tasks = json.loads((folder / "label_studio_tasks.json").read_text())
    assert [t["data"]["row_id"] for t in tasks] == queue["row_id"].tolist()
    assert '<Choice value="spam"/>' in (folder / "label_studio_config.xml").read_text()

    # The reviewer (gold labels here) fills in 10 rows; `review import` makes them a `reviewed` snapshot.
    truth = pool.set_index("row_id")["label"]
    filled = queue.copy()
    filled.loc[:9, "label"] = truth.loc[filled.loc[:9, "row_id"]].to_numpy()
    path = project / "filled.csv"
    filled.to_csv(path, index=False)
    imported = runner.invoke(app, ["review", "import", str(path), "--config", config])
    assert imported.exit_code == 0, imported.output
    (snapshot,) = catalog.snapshots("reviewed")
    rows = catalog.read_snapshot(snapshot)
    assert snapshot.rows == 10 and sorted(rows["text"]) == sorted(filled.loc[:9, "text"])
    assert dict(zip(rows["text"], rows["label"], strict=True)) == dict(
        zip(filled.loc[:9, "text"], filled.loc[:9, "label"], strict=True)
    )

    # Reviewed rows are never queued again; --out and --no-model work; an unknown run is a clear error.
    out = project / "queue2"
    again = runner.invoke(app, ["review", "export", "--config", config, "--out", str(out), "--no-model"])
    assert again.exit_code == 0, again.output
    assert "no end model" in again.output
    second = pd.read_csv(out / "review_queue.csv", dtype=str, keep_default_na=False)
    assert not set(second["text"]) & set(rows["text"]) and (second["end_label"] == "").all()
    missing = runner.invoke(app, ["review", "export", "--config", config, "--run", "nope"])
    assert missing.exit_code == 2 and "recent runs" in missing.output
