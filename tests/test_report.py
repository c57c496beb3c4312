"""HTML reports: run report, index, drift report, comparison, CLI, MLflow, and a real browser looking at them.

Most tests build run folders from synthetic summaries (cheap); one test (server, pretrained, browser) renders the
report of a real small pipeline run. Browser tests drive Debian's chromium through Playwright and
save their screenshots under the test's tmp dir.
"""

from __future__ import annotations

import csv
import json
import re
import threading
import urllib.request
from pathlib import Path

import pytest

from driftloop.catalog import Catalog
from driftloop.flows.report import finish_run, load_run, make_server, markdown_summary, write_drift_report, write_index
from driftloop.flows.report import write_run_report as _write_run_report
from driftloop.summary import RunSummary
from driftloop.tasks.report import RunStages, Thresholds
from driftloop.tasks.report.compare import compare, run_figures
from driftloop.tasks.report.verdict import verdict
from tests.summaries import summary_dict, summary_of

EVERY_SECTION = [
    "comparison",
    "ingest",
    "cleaning",
    "weak_labeling",
    "augmentation",
    "balance",
    "validation",
    "training",
    "evaluation",
    "promotion",
]
LF_COLUMNS = ["lf", "kind", "polarity", "pool_coverage", "pool_overlaps", "pool_conflicts", "dev_correct"]
LF_COLUMNS += ["dev_incorrect", "dev_accuracy", "learned_accuracy"]


def _write_run(runs: Path, summary: dict, *, lf_accuracy: float = 0.95) -> Path:
    folder = runs / summary["run_id"]
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "config.yaml").write_text("augment:\n  enabled: true\ntrain:\n  enabled: true\n")
    with (folder / "lf_analysis.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(LF_COLUMNS)
        writer.writerow(["spam_url", "RegexLF", "['spam']", 0.05, 0.04, 0.01, 9, 1, lf_accuracy, 0.9])
        writer.writerow(["ham_short", "LengthLF", "['ham']", 0.6, 0.3, 0.01, 95, 5, 0.95, 0.97])
    gx = {
        "results": [
            {
                "success": True,
                "expectation_config": {
                    "type": "expect_column_to_exist",
                    "kwargs": {"column": "text"},
                    "severity": "critical",
                },
                "result": {},
            },
            {
                "success": False,
                "expectation_config": {
                    "type": "expect_column_mean_to_be_between",
                    "severity": "warning",
                    "kwargs": {"column": "label_confidence", "min_value": 0.9},
                },
                "result": {"observed_value": 0.87},
            },
        ]
    }
    (folder / "validation_train.json").write_text(json.dumps({"success": True, "statistics": {}, "results": gx}))
    history = [{"step": s, "epoch": s / 20, "train_loss": 1 / s, "dev_macro_f1": 0.8 + s / 400} for s in (10, 20, 30)]
    (folder / "training_history.json").write_text(json.dumps(history))
    with (folder / "augmentation_samples.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "source", "candidate", "similarity", "verdict", "reason"])
        writer.writerow(["eda", "WIN a prize now", "WIN a award now", 0.91, "accepted", ""])
        writer.writerow(["eda", "call 0800 now", "call 0800 now", "", "rejected", "identical_to_source"])
    return folder


NEW_DRIFT = {
    "checked_at": "2026-01-05T03:00:00+00:00",
    "action": "retrain",
    "drifted": True,
    "verdict": "drift",
    "reason": "label shift: spam share 0.13 -> 0.33 (PSI 0.31 >= 0.2)",
    "reference": {"rows": 1000, "run_id": "run-1"},
    "current": {"rows": 300},
    "signals": [
        {
            "name": "label_psi",
            "scope": "labels",
            "statistic": "psi",
            "p_value": 0.0001,
            "p_adjusted": 0.0003,
            "effect": 0.31,
            "min_effect": 0.2,
            "alarm": True,
            "detail": "spam share up",
        },
        {
            "name": "length_psi",
            "scope": "text",
            "statistic": "psi",
            "p_value": 0.4,
            "p_adjusted": 0.8,
            "effect": 0.01,
            "min_effect": 0.2,
            "alarm": False,
            "detail": None,
        },
    ],
    "explanations": {
        "new_examples": [{"text": "FREE entry to win <b>cash</b>", "score": 0.98}],
        "terms_over": [{"term": "free", "log_odds": 1.2}],
        "terms_under": [{"term": "lunch", "log_odds": -0.8}],
        "class_shares": {"reference": {"ham": 0.87, "spam": 0.13}, "current": {"ham": 0.67, "spam": 0.33}},
        "lf_coverage": [{"lf": "spam_url", "reference": 0.05, "current": 0.12, "delta": 0.07}],
        "estimated_accuracy": {"reference": 0.95, "current": 0.9, "delta": -0.05},
    },
}
# A check that stopped before testing anything: too few new rows.
EARLY_DRIFT = {
    "checked_at": "20260104T030000Z",
    "action": "none",
    "drifted": False,
    "signals": [],
    "reason": "only 40 new pool rows since the reference, fewer than drift.min_current_rows=100",
}


# What weak labeling adds to the summary since it compares labelers and calibrates the chosen one.
WEAK_LABELERS = {
    "aggregator": "weighted_vote",
    "aggregator_reason": "best dev macro-F1 on rows with votes: weighted_vote 0.9450, majority_vote 0.9012 "
    "(label model left out: too little LF overlap)",
    "aggregators_dev": {
        "label_model": {"accuracy": 0.81, "f1_macro": 0.759, "ece_raw": 0.41},
        "weighted_vote": {"accuracy": 0.95, "f1_macro": 0.945, "ece_raw": 0.031},
        "majority_vote": {"accuracy": 0.91, "f1_macro": 0.9012, "ece_raw": 0.12},
    },
    "best_single_lf_dev": {"lf": "kw_football", "f1_macro": 0.31, "accuracy": 0.22},
    "calibration": {
        "temperature": 0.7712,
        "dev_ece_raw": 0.031,
        "dev_ece_calibrated_in_sample": 0.012,
        "dev_ece": 0.017,
        "calibration_rows": 160,
    },
    "reliability_dev": [
        {"confidence": 0.62, "accuracy": 0.6, "rows": 20},
        {"confidence": 0.97, "accuracy": 0.98, "rows": 140},
    ],
    "reliability_dev_raw": [
        {"confidence": 0.7, "accuracy": 0.6, "rows": 25},
        {"confidence": 0.99, "accuracy": 0.98, "rows": 135},
    ],
    "warnings": ["only 10.0% of covered pool rows have 2+ LF votes (weak_label.min_overlap=0.2)"],
}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Three runs (two succeeded, the last failed at the training-set gate) and two drift checks."""
    root = tmp_path / "project"
    runs = root / "runs"
    _write_run(runs, summary_dict("run-1", f1=0.90, raw_rows=1000))
    second = summary_dict("run-2", f1=0.80, raw_rows=1500)
    second["weak_labeling"] |= WEAK_LABELERS  # run-2 chose the weighted vote and calibrated it
    _write_run(runs, second, lf_accuracy=0.7)
    failed = summary_dict(
        "run-3",
        status="failed",
        error="ValidationFailed: training set: 1 critical expectation failed. row count 40 below 100: land more data.",
    )
    for key in ("training", "evaluation", "promotion", "balance", "augmentation"):
        failed.pop(key)
    failed["validation"] = {"raw": failed["validation"]["raw"], "success": False}
    _write_run(runs, failed)
    (runs / "drift").mkdir()
    (runs / "drift" / "20260105T030000Z.json").write_text(json.dumps(NEW_DRIFT))
    (runs / "drift" / "20260104T030000Z.json").write_text(json.dumps(EARLY_DRIFT))
    return runs


def write_run_report(runs: Path, run_id: str) -> Path:
    return _write_run_report(Catalog(runs.parent), run_id)


def _section_ids(html: str) -> list[str]:
    return re.findall(r'<section class="card" id="([a-z_-]+)"', html)


# ---- verdict and comparison ------------------------------------------------------------------


def test_verdict_names_the_failed_stage_and_reason():
    summary = summary_dict("run-3", status="failed", error="ValidationFailed: row count 40 below 100. Land more data.")
    for key in ("training", "evaluation", "promotion"):
        summary.pop(key)
    summary["validation"] = {"raw": summary["validation"]["raw"]}
    stages = RunStages(augment=True, train=True)
    v = verdict(RunSummary.parse(summary), stages)
    assert (v.tone, v.headline) == ("bad", "Failed at training-set validation")
    assert v.reason == "ValidationFailed: row count 40 below 100."
    assert verdict(summary_of("run-1"), stages).headline == "Promoted to champion"
    promotion = {**summary_dict("run-1")["promotion"], "promoted": False, "reason": "macro-F1 0.80 < champion 0.90"}
    kept = verdict(summary_of("run-1", promotion=promotion), stages)
    assert (kept.tone, kept.headline) == ("warn", "Passed, kept as challenger")


def test_comparison_flags_changes_past_the_threshold():
    current = run_figures(summary_of("run-2", f1=0.80, raw_rows=1500))
    previous = run_figures(summary_of("run-1", f1=0.90, raw_rows=1000))
    rows = {r["name"]: r for r in compare(current, previous, Thresholds(metric_change=0.02, size_change=0.2))}
    assert rows["test macro-F1"]["flag"] and rows["test macro-F1"]["delta"] == pytest.approx(-0.10)
    assert rows["pool rows (raw)"]["flag"]  # +50% >= 20%
    assert not rows["test accuracy"]["flag"] and not rows["gold dev rows"]["flag"]
    only_here = compare({"LF new coverage": (0.1, "rate")}, {}, Thresholds())
    assert only_here[0]["flag"] and only_here[0]["delta"] is None


# ---- run report, index, drift reports ----------------------------------------------------------


def test_run_report_has_every_section_and_compares_with_previous_and_champion(runs):
    # run-1 is the champion; run-2 is compared with the previous run (run-1, also the champion's run).
    path = write_run_report(runs, "run-2")
    html = path.read_text()
    assert path == runs / "run-2" / "report.html"
    assert _section_ids(html) == EVERY_SECTION
    assert "Promoted to champion" in html
    assert "malformed CSV (row 3 has 4 fields)" in html  # quarantine reason
    assert "see you at 5" in html  # cleaning drop example
    assert "expect_" not in html and "column mean to be between" in html and "0.87" in html  # GX table
    assert "resumed from a checkpoint at step 10" in html
    assert "Seeds" in html and "0.8123" in html and "ham 37, spam 2" in html  # seed band, self-training rounds
    assert html.count("<svg") >= 6  # LF, confidence, weak-label reliability, balance, training curves, confusion
    # Weak labels: every labeler on gold dev, the chosen one marked, the calibration and the low-overlap warning.
    weak = html[html.index('id="weak_labeling"') : html.index('id="augmentation"')]
    assert "Labelers compared" in weak and "weighted vote" in weak and "kw_football" in weak
    assert re.search(r"weighted vote\s*<span class=\"pill ok\">chosen</span>", weak)
    assert "temperature <b>0.771</b>" in weak and "<b>0.031</b> before, <b>0.017</b> after" in weak
    assert "only 10.0% of covered pool rows have 2+ LF votes" in weak and "Weak-label reliability" in weak
    assert "weighted vote dev acc 0.950" in html  # the key figure names the chosen labeler
    # The end model beside both honest baselines: the verdict sentence, a key figure and the evaluation table.
    assert "The pipeline did not earn its keep on this run: the label model" in html  # run-2: 0.80 < 0.88
    assert "vs best baseline" in html and "-8.00 pts" in html and "gold-only 0.860" in html
    assert "fine-tuned on the gold training rows alone" in html
    first = write_run_report(runs, "run-1").read_text()
    assert "label model dev acc 0.930" in first
    assert "1 critical" not in html
    # The previous run differs past the thresholds: macro-F1 and pool size are highlighted.
    flagged = re.findall(r'<tr class="flag"><td>([^<]+)</td>', html)
    assert "test macro-F1" in flagged and "pool rows (raw)" in flagged and "LF spam_url dev accuracy" in flagged


def test_failed_run_report_says_where_and_why_and_leaves_out_stages_that_did_not_run(runs):
    html = write_run_report(runs, "run-3").read_text()
    assert "Failed at balancing" in html or "Failed at augmentation" in html
    assert "row count 40 below 100" in html
    sections = _section_ids(html)
    assert {"ingest", "cleaning", "weak_labeling"} <= set(sections)
    assert not {"training", "evaluation", "promotion", "balance"} & set(sections)


def test_report_is_self_contained(runs):
    html = write_run_report(runs, "run-1").read_text()
    # Nothing to fetch: no external src/href/url()/@import; images are data: URIs; a CSP forbids the rest.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "url(http" not in html and "@import" not in html
    assert all(src.startswith("data:") for src in re.findall(r'<img[^>]+src="([^"]+)"', html))
    assert "default-src 'none'" in html
    assert len(html.encode()) < 2_000_000


def test_report_escapes_text_from_the_data(runs):
    write_drift_report(runs / "drift" / "20260105T030000Z.json")
    html = (runs / "drift" / "20260105T030000Z.html").read_text()
    assert "FREE entry to win &lt;b&gt;cash&lt;/b&gt;" in html and "<b>cash</b>" not in html


def test_index_lists_runs_newest_first_and_renders_missing_drift_reports(runs):
    index = write_index(Catalog(runs.parent))
    html = index.read_text()
    assert index == runs / "index.html"
    links = re.findall(r'href="(run-\d)/report.html"', html)
    assert links[0] == "run-3" and links.index("run-3") < links.index("run-2") < links.index("run-1")
    assert "Failed at" in html.split('id="verdict"')[1].split("</header>")[0]  # latest run first, in the verdict
    assert (runs / "drift" / "20260105T030000Z.html").exists() and (runs / "drift" / "20260104T030000Z.html").exists()
    assert 'href="drift/20260105T030000Z.html"' in html and "label_psi" in html
    assert '<svg role="img" aria-label="test macro-F1 over runs"' in html


def test_drift_report_renders_a_full_and_an_early_stopped_check(runs):
    new = write_drift_report(runs / "drift" / "20260105T030000Z.json").read_text()
    assert "Drift — retrain" in new and "spam share 0.13 -&gt; 0.33" in new
    assert "Terms more frequent now" in new and "Estimated accuracy" in new
    early = write_drift_report(runs / "drift" / "20260104T030000Z.json").read_text()
    assert "No drift" in early and "fewer than drift.min_current_rows=100" in early


def test_broken_inputs_give_clear_errors(runs, tmp_path):
    from driftloop.errors import InputError

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no summary.json at"):
        load_run(tmp_path / "empty")
    bad = runs / "drift" / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a readable drift check JSON object"):
        write_drift_report(bad)
    # A summary of an older schema is refused with what to do, not half rendered.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "summary.json").write_text(json.dumps({"run_id": "old", "status": "succeeded"}))
    with pytest.raises(InputError, match="schema 1, this driftloop reads schema 2: run the pipeline again"):
        load_run(tmp_path / "old")


def test_finish_run_never_raises_and_publishes_markdown(runs, caplog):
    from driftloop.config import load_config

    cfg = load_config(Path(__file__).parents[1] / "configs" / "sms_spam.yaml", [f"project.root={runs.parent}"])
    (runs / "run-2" / "summary.json").write_text("{not json")
    assert finish_run(cfg, summary_of("run-2", status="failed")) is None
    assert "could not write the run report" in caplog.text
    text = markdown_summary(summary_of("run-1"), runs / "run-1" / "report.html", RunStages())
    assert text.startswith("## Promoted to champion") and "| test macro-F1 | 0.900" in text


def test_cli_report_prints_the_path_and_serve_binds_localhost(runs):
    from typer.testing import CliRunner

    from driftloop.cli.main import app

    config = Path(__file__).parents[1] / "configs" / "sms_spam.yaml"
    root = ["--set", f"project.root={runs.parent}"]
    out = CliRunner().invoke(app, ["report", "--config", str(config), *root])
    assert out.exit_code == 0, out.output
    assert out.stdout.strip() == str(runs / "run-3" / "report.html")
    out = CliRunner().invoke(app, ["report", "run-9", "--config", str(config), *root])
    assert out.exit_code == 2 and "no summary.json at" in out.output

    server = make_server(runs, port=0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/run-3/report.html", timeout=10) as r:
            assert r.status == 200 and b'id="verdict"' in r.read()
    finally:
        server.shutdown()
        server.server_close()


def test_mlflow_logs_params_metrics_and_artifacts(runs):
    pytest.importorskip("mlflow", reason="MLflow is an optional extra: pip install 'driftloop[mlflow]'")
    from mlflow.tracking import MlflowClient

    from driftloop.config import load_config
    from driftloop.tasks.tracking import log_run, tracking_uri

    cfg = load_config(
        Path(__file__).parents[1] / "configs" / "sms_spam.yaml",
        [f"project.root={runs.parent}", "tracking.mlflow.enabled=true", "tracking.mlflow.experiment=test"],
    )
    write_run_report(runs, "run-1")
    summary = RunSummary.read(runs / "run-1" / "summary.json")
    mlflow_run_id = log_run(cfg, summary, runs / "run-1")
    client = MlflowClient(tracking_uri(cfg))
    run = client.get_run(mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["driftloop.run_id"] == "run-1"
    assert run.data.metrics["evaluation.macro_f1"] == pytest.approx(0.9)
    assert run.data.params["train.method"] == cfg.train.method
    names = {a.path for a in client.list_artifacts(mlflow_run_id)}
    assert {"report.html", "summary.json", "config.yaml"} <= names
    assert (runs.parent / "mlruns" / "mlflow.db").exists()


# ---- in a real browser ---------------------------------------------------------------------------


def _look(browser, page: Path, shots: Path, name: str, expected_sections: list[str]) -> None:
    for width, height, dark in ((1280, 800, False), (390, 844, True)):
        visit = browser.visit(
            page,
            width=width,
            height=height,
            dark=dark,
            screenshot=shots / f"{name}-{width}{'-dark' if dark else ''}.png",
        )
        assert visit.outside_requests == [], visit.outside_requests
        assert visit.console_errors == [] and visit.page_errors == []
        assert visit.verdict_in_first_viewport, f"{name}: the verdict is not in the first {width}x{height} viewport"
        assert visit.section_ids == expected_sections
        assert not visit.horizontal_overflow, f"{name} scrolls sideways at {width}px"
    full = browser.visit(page, screenshot=shots / f"{name}-full.png", full_page=True, try_sort=True)
    assert full.sorted_ok is not False


def test_reports_in_a_real_browser(browser, runs, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    for run_id in ("run-2", "run-3"):
        write_run_report(runs, run_id)
    index = write_index(Catalog(runs.parent))
    _look(browser, runs / "run-2" / "report.html", shots, "run-2", EVERY_SECTION)
    _look(
        browser,
        runs / "run-3" / "report.html",
        shots,
        "run-3",
        ["comparison", "ingest", "cleaning", "weak_labeling", "validation"],
    )
    _look(browser, index, shots, "index", ["trend", "runs", "drift-checks"])
    _look(browser, runs / "drift" / "20260105T030000Z.html", shots, "drift", ["drift"])
    assert len(list(shots.glob("*.png"))) == 12


@pytest.mark.pretrained
def test_real_pipeline_run_writes_a_report_that_renders(prefect_harness, browser, project, tmp_path):
    """A real small run: the pipeline's finally block writes the report and the index; Chromium looks at both."""
    from driftloop.flows.pipeline import pipeline
    from tests.test_flow import SMALL, _write_demo

    _write_demo(project)
    overrides = [*SMALL, "augment.back_translation.enabled=false", "validation.build_data_docs=false"]
    summary = pipeline(config_path=str(project / "configs" / "sms_spam.yaml"), overrides=overrides)
    report = Path(summary.run_dir) / "report.html"
    assert report.exists() and (project / "runs" / "index.html").exists()
    assert len(report.read_bytes()) < 2_000_000
    shots = tmp_path / "screenshots"
    shots.mkdir()
    expected = [s for s in EVERY_SECTION if s != "comparison"]
    _look(browser, report, shots, "real-run", expected)
    _look(browser, project / "runs" / "index.html", shots, "real-index", ["runs", "drift-checks"])
