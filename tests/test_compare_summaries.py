"""bench/compare_summaries.py: two runs' figures side by side, run-to-run noise (ids, times, paths) left out."""

from __future__ import annotations

from bench.compare_summaries import compare
from tests.summaries import summary_dict


def test_two_runs_of_the_same_code_have_the_same_figures():
    first, second = summary_dict("run-1"), summary_dict("run-2", duration_s=12.0, error=None)
    result = compare(first, second)
    assert result["figures_compared"] > 100 and result["changed"] == [] and result["only_before"] == []


def test_a_moved_figure_and_a_dropped_key_are_reported():
    before, after = summary_dict("run-1"), summary_dict("run-1", f1=0.85)
    del after["seed_band"]
    result = compare(before, after)
    changed = {row["figure"] for row in result["changed"]}
    assert "evaluation.macro_f1" in changed and "training.best_dev_macro_f1" not in changed
    assert "seed_band.test_accuracy.mean" in result["only_before"] and result["only_after"] == []
