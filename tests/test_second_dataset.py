"""The second dataset (BBC News, 5 topics, one rare) end to end on defaults: only labels and LFs differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.config import load_config
from driftloop.tasks.lf import load_lfs
from driftloop.tasks.news_data import LABELS, RARE_LABEL, read_bbc_corpus, split_news
from driftloop.tasks.weak_label import weak_label

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus():
    return read_bbc_corpus()


def test_corpus_and_split(corpus) -> None:
    assert set(corpus["label"]) == set(LABELS) and 2000 < len(corpus) <= 2225 and not corpus["text"].duplicated().any()
    assert corpus["text"].str.len().max() <= 1300
    parts = split_news(corpus, seed=42)
    shares = parts["pool_labels"]["label"].value_counts(normalize=True)
    assert shares[RARE_LABEL] < 0.025 and shares.min() == shares[RARE_LABEL]
    assert set(parts["gold_dev"]["label"]) == set(LABELS) and list(parts["pool"].columns) == ["text"]
    # No row in two splits.
    texts = [set(parts[n]["text"]) for n in ("gold_dev", "gold_test", "pool")]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])


def test_demo_data_writes_the_bbc_files(project: Path) -> None:
    from typer.testing import CliRunner

    from driftloop.cli.main import app

    args = ["demo-data", "--dataset", "bbc_news", "--config", str(project / "configs" / "bbc_news.yaml")]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    written = sorted(p.name for p in (project / "data" / "incoming").glob("bbc_*.csv"))
    assert written == ["bbc_gold_dev.csv", "bbc_gold_test.csv", "bbc_pool.csv"]  # never the pool's gold labels
    refused = CliRunner().invoke(app, [*args, "--release", "1"])
    assert refused.exit_code == 2 and "bbc_news has none" in refused.output


def test_weak_labels_pass_the_confidence_gate_on_defaults(corpus) -> None:
    cfg = load_config(REPO / "configs" / "bbc_news.yaml")
    parts = split_news(corpus, seed=cfg.project.seed)
    lfs = load_lfs(cfg.weak_label.lf_module, cfg.data.labels)
    result = weak_label(
        parts["pool"],
        parts["gold_dev"],
        lfs,
        cfg.weak_label,
        cfg.data.labels,
        seed=cfg.project.seed,
        gate_min_confidence=cfg.validation.min_label_confidence,
    )
    m = result.metrics
    # "LFs that cover about half the rows and barely overlap", as the issue describes them.
    assert 0.4 <= m["coverage"] <= 0.65 and m["pool_overlap_share"] < 0.15
    assert m["aggregator"] in ("weighted_vote", "majority_vote", "label_model")
    assert m["dev_ece"] is not None and m["dev_ece"] <= 0.05
    # Calibrated confidences: the gate's floor drops few rows, and the rest clears the gate's row minimum.
    assert m["dropped_low_confidence"] < 0.1 * (m["pool_rows"] - m["abstained_rows"])
    assert m["labelled_rows"] >= cfg.validation.min_rows
    assert (result.frame["label_confidence"] >= cfg.validation.min_label_confidence).all()
    assert m["label_distribution"][RARE_LABEL] > 0
    assert set(m["aggregators_dev"]) == {"label_model", "weighted_vote", "majority_vote"}
    assert len(result.uncovered) == m["abstained_rows"]


@pytest.mark.pretrained
def test_pipeline_end_to_end_passes_the_gate_on_defaults(prefect_harness, project: Path, corpus) -> None:
    from driftloop.flows.pipeline import pipeline

    parts = split_news(corpus, seed=42, sample=700)
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(project / "data" / "incoming" / f"bbc_{name}.csv", index=False)
    # Defaults except speed: a frozen-encoder head instead of LoRA keeps the test well under two minutes.
    overrides = ["train.method=feature", "validation.build_data_docs=false"]
    summary = pipeline(config_path=str(project / "configs" / "bbc_news.yaml"), overrides=overrides)
    assert summary.validation.success is True
    weak = summary.weak_labeling
    assert weak.dev_ece is not None and weak.aggregator in ("weighted_vote", "majority_vote", "label_model")
    assert summary.evaluation.n_test == len(parts["gold_test"]) or summary.evaluation.n_test > 0


@pytest.mark.pretrained
def test_a_copy_of_the_demo_config_runs_green_on_bbc_news(prefect_harness, project: Path, corpus) -> None:
    """The demo config is the template users copy: with only its name, labels and LF module changed, it must hold
    on another dataset (its augmentation and weak-label settings included)."""
    import yaml

    from driftloop.flows.pipeline import pipeline

    template = yaml.safe_load((project / "configs" / "sms_spam.yaml").read_text(encoding="utf-8"))
    template["project"]["name"] = "news_from_template"
    template["data"]["labels"] = list(LABELS)
    template["weak_label"]["lf_module"] = "lfs/bbc_news.py"
    copied = project / "configs" / "news_from_template.yaml"
    copied.write_text(yaml.safe_dump(template, sort_keys=False), encoding="utf-8")
    parts = split_news(corpus, seed=42, sample=700)
    for name in ("gold_dev", "gold_test", "pool"):
        parts[name].to_csv(project / "data" / "incoming" / f"bbc_{name}.csv", index=False)
    # Speed only: a frozen-encoder head instead of LoRA, and no Data Docs site.
    overrides = ["train.method=feature", "validation.build_data_docs=false"]
    summary = pipeline(config_path=str(copied), overrides=overrides)
    assert summary.status == "succeeded" and summary.validation.success is True
    assert summary.baselines.gold_only is not None and summary.baselines.verdict
