"""Benchmark results are data: committed JSON in one envelope, and bench/RESULTS.md is generated from it alone."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from bench import record, results
from driftloop import atomic

REPO = Path(__file__).resolve().parents[1]
# A number as a reader sees it: not part of a word (gemma3, F1) or of another number's digits.
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?")


def committed() -> dict[str, dict]:
    return results.result_files(record.RESULTS_DIR)


def numbers_in(obj) -> set[float]:
    """Every number in a JSON document: its numeric values, and the numbers written inside its keys and strings."""
    if isinstance(obj, bool) or obj is None:
        return set()
    if isinstance(obj, int | float):
        return {float(obj)}
    if isinstance(obj, str):
        return {float(m) for m in NUMBER.findall(obj)}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    found: set[float] = set()
    for key, value in items:
        found |= numbers_in(key) if isinstance(key, str) else set()
        found |= numbers_in(value)
    return found


def test_results_md_is_what_the_result_files_give():
    assert (REPO / "bench" / "RESULTS.md").read_text(encoding="utf-8") == results.render(), (
        "bench/RESULTS.md is stale: run python -m bench.results"
    )


def test_every_figure_in_results_md_comes_from_a_committed_result_file():
    text = (REPO / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    body = text[text.index('<a id="') :]  # the header (what generated it, the index) is not figures
    known = set().union(*(numbers_in(doc) for doc in committed().values()))
    lines = [line for line in body.splitlines() if not line.startswith("> ")]  # command, commit, date, machine
    stray = sorted({m for line in lines for m in NUMBER.findall(line) if float(m) not in known})
    assert not stray, f"figures in bench/RESULTS.md that no bench/results/*.json holds: {stray}"


def test_every_committed_result_file_has_the_envelope():
    docs = committed()
    assert {"lfs", "tries", "timings"} <= docs.keys()
    for stem, doc in docs.items():
        missing = [key for key in record.ENVELOPE_KEYS if key not in doc]
        assert not missing, f"bench/results/{stem}.json lacks {missing}"
        assert doc["schema"] == record.SCHEMA and doc["title"] and isinstance(doc["machine"], dict)
        assert doc["date"][:2] == "20" and (
            doc["commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", doc["commit"])
        )
        if stem.startswith("readme_") or stem in ("tries", "timings"):  # figures copied from the README's log
            assert doc["provenance"].startswith("transcribed from README.md at "), stem


def test_tries_and_timings_rows():
    docs = committed()
    for row in docs["tries"]["results"]["tries"]:
        assert set(row) == {"what", "measured_effect", "verdict", "commit"}
    for row in docs["timings"]["results"]["timings"]:
        assert {"what", "minutes", "commit", "machine"} <= set(row)


def test_write_result_writes_the_envelope_atomically(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(REPO / "bench" / "bench_x.py"), "--sizes", "10", "a b"])
    path = record.write_result("x", {"speedup": 2.5}, title="X", results_dir=tmp_path, machine={"load": 1.5})
    assert path == tmp_path / "x.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert list(doc) == list(record.ENVELOPE_KEYS)
    assert doc["title"] == "X" and doc["results"] == {"speedup": 2.5}
    assert doc["command"].endswith(" --sizes 10 'a b'") and doc["command"].startswith("python ")
    assert doc["commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", doc["commit"])
    assert doc["date"].endswith("+00:00")
    assert {"platform", "processor", "cpu_count", "python", "torch", "gpu"} <= doc["machine"].keys()
    assert doc["machine"]["load"] == 1.5

    quick = record.write_result("x", {"speedup": 1}, title="X", quick=True, results_dir=tmp_path, command="cmd")
    assert quick.name == "x.quick.json" and json.loads(quick.read_text())["command"] == "cmd"
    assert record.read_results(path) == {"speedup": 2.5}  # a quick run leaves the full result alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.quick.json"]  # no temp files left behind

    def crash(*args, **kwargs):
        raise OSError("killed before the rename")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError):
        record.write_result("x", {"speedup": 3}, title="X", results_dir=tmp_path)
    assert record.read_results(path) == {"speedup": 2.5}  # the old file is whole, the temp file gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.quick.json"]


def test_git_commit_outside_a_checkout_is_none(tmp_path):
    assert record.git_commit(tmp_path) is None


def test_results_md_renders_quick_files_never_and_unknown_stems_generically(tmp_path):
    record.write_result("lfs", {"x": 1}, title="LF", quick=True, results_dir=tmp_path, command="c")
    record.write_result("mystery", {"a": {"b": 0.25}, "rows": [{"n": 7}]}, title="M", results_dir=tmp_path, command="c")
    text = results.render(tmp_path)
    assert '<a id="mystery"></a>' in text and "## M" in text and "#lfs" not in text
    assert "| a.b | 0.25 |" in text and "| 7 |" in text


def test_a_transcribed_result_answers_to_its_benchmark_anchor_until_a_fresh_one_lands(tmp_path):
    record.write_result("readme_drift", {"seconds": 27.4}, title="Old", results_dir=tmp_path, command="c")
    assert '<a id="readme_drift"></a><a id="drift"></a>' in results.render(tmp_path)
    record.write_result("drift", {"seconds": 20.1}, title="New", results_dir=tmp_path, command="c")
    text = results.render(tmp_path)
    assert '<a id="drift"></a>' in text and '<a id="readme_drift"></a>\n' in text  # both kept, #drift the fresh one


@pytest.mark.parametrize(
    ("stem", "payload", "expected"),
    [
        ("drift", {"results": [{"scenario": "no_drift", "rows": 100, "metric": "false_alarm_rate", "old": 0.0,
                                "new": 0.02}], "full_check": {"rows_per_side": 20000, "seconds": 3.1},
                   "goals_met": {"false_alarm_rate": True}}, "| no_drift | false_alarm_rate | 0.0 / 0.02 |"),
        ("ddp", {"summary": {**{k: {"train_samples_per_s": 46.5, "wall_s": 60.1, "peak_rss_mb_per_process": 900.0}
                                 for k in ("one_process", "two_processes", "two_processes_fsdp")},
                             "speedup_train_samples_per_s": 1.29, "speedup_train_samples_per_s_fsdp": 0.88}},
         "DDP 1.29x"),
        ("service", {"events": {"median_drop_to_start_s": 4.8, "max_drop_to_start_s": 9.0},
                     "poll": {"median_drop_to_start_s": 29.2, "max_drop_to_start_s": 31.2},
                     "events_postgres": {"skipped": "no PostgreSQL"}, "speedup_median": 6.1, "goal_s": 5.0,
                     "events_meets_goal": True}, "| poll | 29.2 | 31.2 |"),
        ("gpu_check", {"status": "no_gpu", "reason": "no CUDA"}, "| no_gpu | no CUDA |"),
        ("incremental", {"goal": "under 10%", "goal_met": True, "runs": {"100000": {
            "pool_rows": 100000, "initial": {"seconds": 9.0}, "incremental": {"seconds": 1.5},
            "full": {"seconds": 9.5}, "incremental_over_full": 0.1579, "identical": True}}}, "| 100000 | 9.0 | 1.5 |"),
        ("scale", {"runs": {"100000": {"sharded-local": {"wall_s": 30.2, "seconds": {"total": 20.1}, "peak_rss_mb": 900,
                                                          "peak_pss_mb": 800, "rows_out": 94000},
                                        "identical_rows_out": True, "dask_speedup_1_to_2_workers": 1.4}}},
         "| 100000 | sharded-local | 30.2 | 20.1 | 900 | 800 | 94000 |"),
        ("report", {"report_bytes": 131000, "write_report_s": 0.5, "goals_met": {"under_2_mb": True},
                    "report": {"load_s_median": 0.23, "load_s_max": 0.48, "outside_requests": 0, "console_errors": 0}},
         "| report | 0.23 | 0.48 | 0 | 0 |"),
        ("train", {"cpu_speed": {"ours_samples_per_s": 74.0, "baseline_samples_per_s": 9.1, "speedup": 8.13,
                                 "ours_fp32_samples_per_s": 37.6, "speedup_fp32_only_padding_and_grouping": 4.13,
                                 "ours_peak_rss_mb": 2540, "baseline_peak_rss_mb": 3260},
                   "full_supervision": {"test_accuracy": 0.988, "test_macro_f1": 0.97, "test_spam_f1": 0.952},
                   "gpu_qlora": {"skipped": "no GPU"}}, "| demo config, samples/s | 74.0 | 9.1 | 8.13 |"),
        ("augment", {"eda": {"candidates_per_s": 120.5}, "demo": {"wall_s": 70.2, "meets_goal": True}},
         "| demo augment step, wall s | 70.2 | – | – | yes |"),
        ("weak_supervision", {"datasets": {"sms_spam": {
            "aggregator": "label_model", "coverage": 0.96, "review": None,
            "test": {"chosen": {"macro_f1": 0.9605}, "label_model": {"macro_f1": 0.9605}},
            "training": {"summary": {"end_model": {"macro_f1": {"mean": 0.9663, "std": 0.0069}}}}}}},
         "| sms_spam | label_model | 0.96 | 0.9605 | 0.9605 | 0.9663 ± 0.0069 | – | – | – |"),
    ],
)  # fmt: skip
def test_a_benchmark_renderer_picks_its_headline_figures(stem, payload, expected):
    assert expected in "\n".join(results.RENDERERS[stem](payload))
