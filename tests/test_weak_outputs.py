"""The weak-label step's artifacts and run-folder figures (tasks/weak_outputs.py), on toy LFs and rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftloop.config import WeakLabelConfig
from driftloop.tasks.lf import keyword_lf, regex_lf
from driftloop.tasks.weak_outputs import (
    confidence_histogram,
    weak_label_artifacts,
    weak_label_line,
    write_weak_figures,
)

LABELS = ["ham", "spam"]
SPAM = ["win a prize now, text WIN to 85233", "claim your prize, reply 80082", "you win! call 87121", "prize 12345"]
HAM = ["lol see you at home", "sorry, ok I will be home", "ok lol", "going home now, sorry", "ok fine"]


def _lfs() -> list:
    lfs = [
        keyword_lf("kw_win", ["win", "prize"], "spam"),
        regex_lf("re_short_code", r"\b\d{5}\b", "spam"),
        keyword_lf("kw_chat", ["lol", "home", "sorry"], "ham"),
        keyword_lf("kw_ok", ["ok"], "ham"),
    ]
    return [lf.resolve(LABELS) for lf in lfs]


def test_confidence_histogram_counts_every_row_in_equal_bins() -> None:
    hist = confidence_histogram(pd.Series([0.5, 0.52, 0.99, 1.0]), bins=4)
    assert hist == {"edges": [0.0, 0.25, 0.5, 0.75, 1.0], "counts": [0, 0, 2, 2]}


def test_artifacts_by_name_and_figures_in_the_run_folder(tmp_path) -> None:
    pool = pd.DataFrame(
        {"text": SPAM * 5 + HAM * 5 + ["the weather is grey today"], "row_id": [f"s:{i}" for i in range(46)]}
    )
    dev = pd.DataFrame({"text": SPAM + HAM, "label": ["spam"] * 4 + ["ham"] * 5})
    test = dev.assign(row_id=[f"t:{i}" for i in range(len(dev))])
    out = weak_label_artifacts(
        pool, dev, test, _lfs(), WeakLabelConfig(lf_module="unused.py"), LABELS, seed=42, gate_min_confidence=0.5
    )
    assert set(out) == {
        "weak_label.frame",
        "weak_label.report",
        "weak_label.labeler",
        "weak_label.test_probs",
        "weak_label.analysis",
        "weak_label.uncovered",
        "weak_label.dev_probs",
    }
    report, frame = out["weak_label.report"], out["weak_label.frame"]
    assert sum(report["confidence_histogram"]["counts"]) == len(frame)
    assert list(out["weak_label.test_probs"]["row_id"]) == list(test["row_id"])
    assert np.allclose([sum(p) for p in out["weak_label.test_probs"]["label_probs"]], 1.0)
    assert list(out["weak_label.uncovered"]["text"]) == ["the weather is grey today"]
    assert weak_label_line(report).startswith(f"weak labels: 4 LFs, coverage {report['coverage']:.3f}, ")

    written = write_weak_figures(out["weak_label.analysis"], out["weak_label.dev_probs"], tmp_path, ece_bins=5)
    assert written["lf_analysis"] == tmp_path / "lf_analysis.csv"
    assert pd.read_csv(written["lf_analysis"])["lf"].tolist() == ["kw_win", "re_short_code", "kw_chat", "kw_ok"]
    assert (tmp_path / "lf_analysis.png").exists() and (tmp_path / "weak_label_reliability.png").exists()
