"""Tests for the GX validation gate (tasks/validate.py) and the suites under expectations/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from driftloop.config import from_dict
from driftloop.errors import InputError, ValidationFailed
from driftloop.tasks.validate import (
    CLASS_IMBALANCE_COLUMN,
    DISTINCT_ROW_TEXT_COLUMN,
    failure_from_report,
    format_failures,
    load_suite,
    suite_parameters,
    validate,
)

REPO = Path(__file__).resolve().parents[1]
LABELS = ["ham", "spam", "promo"]
PER_CLASS = 12


@pytest.fixture(scope="module")
def cfg():
    return from_dict(
        {
            "data": {"labels": LABELS},
            "weak_label": {"lf_module": "tests.lfs"},
            "clean": {"min_chars": 2, "max_chars": 200},
            "validation": {"min_rows": 30},
        }
    )


@pytest.fixture(scope="module")
def train_suite(cfg):
    return REPO / cfg.validation.train_suite


@pytest.fixture(scope="module")
def raw_suite(cfg):
    return REPO / cfg.validation.raw_suite


@pytest.fixture(scope="module")
def train_params(cfg):
    return suite_parameters(cfg, "train")


@pytest.fixture(scope="module")
def raw_params(cfg):
    return suite_parameters(cfg, "raw")


def training_frame() -> pd.DataFrame:
    """36 unique texts, 12 per class; a few gold/synthetic rows carry confidence 1.0."""
    labels = [label for label in LABELS for _ in range(PER_CLASS)]
    return pd.DataFrame(
        {
            "row_id": [f"snap:{i}" for i in range(len(labels))],
            "text": [f"{label} message number {i}, nothing else" for i, label in enumerate(labels)],
            "label": labels,
            "label_confidence": [1.0 if i % 10 == 0 else 0.6 + (i % 4) / 10 for i in range(len(labels))],
            "is_synthetic": [i % 10 == 0 for i in range(len(labels))],
        }
    )


def _three_classes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(label=[LABELS[i % 3] for i in range(len(frame))])


def run(frame, suite, params):
    return validate(frame, suite, params, gx_root=None, run_name="test", build_data_docs=False)


def the_failure(report, expectation, column=None):
    found = [f for f in report.critical_failures if f["expectation"] == expectation and f["column"] == column]
    assert found, f"no critical failure {expectation} ({column}); got:\n{format_failures(report)}"
    return found[0]


# ---------------------------------------------------------------------------------------------
# Suites and parameters


@pytest.mark.parametrize("kind", ["raw", "train"])
def test_suites_load_from_json_and_refer_only_to_config_parameters(cfg, kind):
    path = REPO / (cfg.validation.raw_suite if kind == "raw" else cfg.validation.train_suite)
    raw_json = json.loads(path.read_text())
    suite = load_suite(path)
    assert suite.name == raw_json["name"]
    assert len(suite.expectations) == len(raw_json["expectations"])
    # Every expectation states its severity and what to do when it fails.
    assert all(e["severity"] in {"critical", "warning"} and e["notes"] for e in raw_json["expectations"])
    assert set(suite.suite_parameter_options) <= set(suite_parameters(cfg, kind))


def test_suite_parameters_come_from_config(cfg):
    params = suite_parameters(cfg, "train")
    assert params["labels"] == LABELS
    assert params["min_rows"] == 30
    assert params["min_unique_ratio"] == pytest.approx(1 - cfg.validation.max_duplicate_ratio)
    assert params["max_imbalance_ratio"] == cfg.validation.max_imbalance_ratio
    assert params["min_label_confidence"] == cfg.validation.min_label_confidence
    assert (params["min_chars"], params["max_chars"]) == (2, 200)
    assert suite_parameters(cfg, "raw")["min_raw_rows"] == cfg.validation.min_raw_rows
    with pytest.raises(ValueError, match="kind"):
        suite_parameters(cfg, "gold")


def test_edited_suite_file_changes_the_gate(tmp_path, train_suite, train_params):
    data = json.loads(train_suite.read_text())
    for expectation in data["expectations"]:
        if expectation["type"] == "expect_table_row_count_to_be_between":
            expectation["severity"] = "warning"
    edited = tmp_path / "training_set.json"
    edited.write_text(json.dumps(data))
    report = run(training_frame().head(12).pipe(_three_classes), edited, train_params)
    assert report.success
    assert [w["expectation"] for w in report.warnings] == ["expect_table_row_count_to_be_between"]


def test_missing_or_broken_suite_file_is_an_input_error(tmp_path, train_params):
    with pytest.raises(InputError, match="does not exist"):
        validate(training_frame(), tmp_path / "nope.json", train_params)
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "expectations": [{"type": "expect_no_such_thing", "kwargs": {}}]}')
    with pytest.raises(InputError, match=r"#0 \(expect_no_such_thing\) is invalid"):
        validate(training_frame(), broken, train_params)
    broken.write_text('{"name": "x", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"colum": "x"}}]}')
    with pytest.raises(InputError, match="colum"):
        validate(training_frame(), broken, train_params)
    broken.write_text('{"name": "x", ')
    with pytest.raises(InputError, match="not valid JSON"):
        validate(training_frame(), broken, train_params)


def test_missing_parameter_is_named(train_suite, train_params):
    params = {k: v for k, v in train_params.items() if k != "min_rows"}
    with pytest.raises(ValueError, match=r"\['min_rows'\]"):
        validate(training_frame(), train_suite, params)


def test_importing_the_module_does_not_import_gx():
    code = "import sys, driftloop.tasks.validate; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# Training set gate


def test_good_training_set_passes_and_input_is_untouched(train_suite, train_params):
    frame = training_frame()
    before = frame.copy()
    report = run(frame, train_suite, train_params)
    assert report.success, format_failures(report)
    assert report.critical_failures == [] and report.warnings == []
    assert report.statistics["rows"] == len(frame)
    assert report.statistics["evaluated_expectations"] == 16
    pd.testing.assert_frame_equal(frame, before)
    assert CLASS_IMBALANCE_COLUMN not in frame.columns
    json.dumps(report.to_dict())  # the whole report, GX results included, is JSON-able


def test_two_class_set_passes(cfg, train_suite):
    data = cfg.model_dump(mode="json")
    two = from_dict({**data, "data": {"labels": ["ham", "spam"]}, "validation": {**data["validation"], "min_rows": 20}})
    frame = training_frame().query("label != 'promo'")
    report = run(frame, train_suite, suite_parameters(two, "train"))
    assert report.success, format_failures(report)


def _set(column, index, value):
    def mutate(frame):
        frame = frame.copy()
        frame.loc[index, column] = value
        return frame

    return mutate


def _duplicate_texts(frame):
    frame = frame.copy()
    frame.loc[:5, "text"] = frame.loc[6:11, "text"].to_numpy()  # 6 of 36 rows repeat another
    return frame


def _imbalanced(frame):
    # 23 ham, 12 spam, 1 promo: ratio 23.
    return frame.assign(label=frame["label"].where(frame["label"] != "promo", "ham").where(frame.index != 35, "promo"))


def _confidence_as_text(frame):
    return frame.assign(label_confidence=frame["label_confidence"].astype(str))


# case: (how to spoil the good frame, failing expectation, its column, text the message must show)
BAD_TRAINING_SETS = {
    "too_few_rows": (
        lambda f: f.head(12).pipe(_three_classes),
        "expect_table_row_count_to_be_between",
        None,
        "observed 12",
    ),
    "unknown_label": (_set("label", 3, "eggs"), "expect_column_values_to_be_in_set", "label", "'eggs'"),
    "null_text": (_set("text", 4, None), "expect_column_values_to_not_be_null", "text", "1 of 36"),
    "too_long_text": (_set("text", 5, "x" * 201), "expect_column_value_lengths_to_be_between", "text", "1 of 36"),
    "duplicates": (
        _duplicate_texts,
        "expect_column_proportion_of_unique_values_to_be_between",
        DISTINCT_ROW_TEXT_COLUMN,
        "observed 0.8333",
    ),
    "imbalance": (_imbalanced, "expect_column_max_to_be_between", CLASS_IMBALANCE_COLUMN, "observed 23"),
    "low_confidence": (
        _set("label_confidence", 7, 0.2),
        "expect_column_values_to_be_between",
        "label_confidence",
        "0.2",
    ),
    "class_absent": (
        lambda f: f.query("label != 'promo'"),
        "expect_column_distinct_values_to_contain_set",
        "label",
        "['promo']",
    ),
    "confidence_not_float": (
        _confidence_as_text,
        "expect_column_values_to_be_of_type",
        "label_confidence",
        "observed str",
    ),
}


@pytest.mark.parametrize("case", BAD_TRAINING_SETS, ids=list(BAD_TRAINING_SETS))
def test_bad_training_set_fails_naming_expectation_and_observed_value(case, train_suite, train_params):
    mutate, expectation, column, observed = BAD_TRAINING_SETS[case]
    report = run(mutate(training_frame()), train_suite, train_params)
    assert not report.success
    failure = the_failure(report, expectation, column)
    message = str(failure_from_report(report))
    assert message.startswith("training set failed")
    assert expectation in message and observed in message
    assert failure["notes"] in message  # says what to do


def test_oversampled_copies_are_not_duplicates_but_count_for_balance(train_suite, train_params):
    imbalanced = _imbalanced(training_frame())  # 23 ham, 12 spam, 1 promo
    assert not run(imbalanced, train_suite, train_params).success
    # Oversampling repeats the promo row under its own row_id: 23 / 12 is within the bound.
    oversampled = pd.concat([imbalanced, *[imbalanced.tail(1)] * 11], ignore_index=True)
    report = run(oversampled, train_suite, train_params)
    assert report.success, format_failures(report)
    assert DISTINCT_ROW_TEXT_COLUMN not in oversampled.columns


def test_missing_column_is_reported_once(train_suite, train_params):
    report = run(training_frame().drop(columns=["label_confidence"]), train_suite, train_params)
    assert not report.success
    assert [(f["expectation"], f["column"]) for f in report.critical_failures] == [
        ("expect_column_to_exist", "label_confidence")
    ]
    assert "column 'label_confidence' missing" in str(failure_from_report(report))


def test_missing_label_column_also_covers_the_imbalance_helper(train_suite, train_params):
    report = run(training_frame().drop(columns=["label"]), train_suite, train_params)
    assert [f["column"] for f in report.critical_failures] == ["label"]


def test_empty_frame_fails_on_row_count(train_suite, train_params):
    report = run(training_frame().iloc[0:0], train_suite, train_params)
    assert not report.success
    assert the_failure(report, "expect_table_row_count_to_be_between")["observed"] == "0"
    assert "observed 0, expected >= 30 (validation.min_rows)" in str(failure_from_report(report))


def test_format_failures(train_suite, train_params):
    ok = run(training_frame(), train_suite, train_params)
    assert "all 16 expectations passed" in format_failures(ok)
    bad = run(_set("label", 0, "eggs")(training_frame()), train_suite, train_params)
    text = format_failures(bad)
    assert "critical failures (1)" in text and "what to do:" in text
    assert "expect_column_values_to_be_in_set (label): observed 1 of 36 rows failing, e.g. 'eggs'" in text
    assert "expected values in ['ham', 'promo', 'spam'] (data.labels)" in text
    # flows/steps.py raises with a message of its own around format_failures.
    error = ValidationFailed(f"training set: {text}")
    assert error.report is None and "'eggs'" in str(error)
    assert failure_from_report(bad).report is bad


# ---------------------------------------------------------------------------------------------
# Raw batch gate


def raw_frame() -> pd.DataFrame:
    return pd.DataFrame({"text": [f"incoming text {i}" for i in range(10)]})


def test_raw_batch_of_text_only_passes_and_skips_optional_columns(raw_suite, raw_params):
    report = run(raw_frame(), raw_suite, raw_params)
    assert report.success, format_failures(report)
    assert {s["column"] for s in report.skipped} == {"label", "row_id", "snapshot_id"}


def test_raw_duplicates_and_a_few_nulls_are_warnings(raw_suite, raw_params):
    frame = pd.DataFrame({"text": ["same text"] * 19 + [None]})
    report = run(frame, raw_suite, raw_params)
    assert report.success, format_failures(report)
    warned = {(w["expectation"], w["column"]) for w in report.warnings}
    assert ("expect_column_proportion_of_unique_values_to_be_between", "text") in warned
    assert ("expect_column_values_to_not_be_null", "text") in warned


@pytest.mark.parametrize(
    "frame, expectation, column",
    [
        (pd.DataFrame({"body": ["a text"]}), "expect_column_to_exist", "text"),
        (pd.DataFrame({"text": pd.Series([], dtype="str")}), "expect_table_row_count_to_be_between", None),
        (pd.DataFrame({"text": ["ok text", None, None]}), "expect_column_values_to_not_be_null", "text"),
        (pd.DataFrame({"text": ["a", "b"], "label": ["ham", "eggs"]}), "expect_column_values_to_be_in_set", "label"),
        (pd.DataFrame({"text": ["a", "b"], "row_id": ["s:0", "s:0"]}), "expect_column_values_to_be_unique", "row_id"),
        (pd.DataFrame({"text": pd.Series([1, 2], dtype=object)}), "expect_column_values_to_be_of_type", "text"),
    ],
    ids=["no_text_column", "empty", "mostly_null", "unknown_gold_label", "repeated_row_id", "numeric_text"],
)
def test_bad_raw_batch_fails(frame, expectation, column, raw_suite, raw_params):
    report = run(frame, raw_suite, raw_params)
    assert not report.success
    the_failure(report, expectation, column)
    assert str(failure_from_report(report)).startswith("raw batch failed")


# ---------------------------------------------------------------------------------------------
# File-backed GX project and Data Docs


def test_data_docs_are_built_and_a_second_run_reuses_the_project(
    tmp_path, train_suite, train_params, raw_suite, raw_params
):
    root = tmp_path / "gx_project"

    def in_project(frame, suite, params, run_name):
        return validate(frame, suite, params, gx_root=root, run_name=run_name, build_data_docs=True)

    first = in_project(training_frame(), train_suite, train_params, "run-1")
    assert first.success
    index = root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert first.data_docs == index and index.is_file()

    # Each call opens the project afresh from disk: this is the reopen path.
    second = in_project(_set("label", 0, "eggs")(training_frame()), train_suite, train_params, "run-2")
    assert not second.success and second.data_docs == index
    assert in_project(raw_frame(), raw_suite, raw_params, "run-2").success

    pages = root / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations"
    assert (pages / "training_set" / "run-1").is_dir() and (pages / "training_set" / "run-2").is_dir()
    assert (pages / "raw_batch" / "run-2").is_dir()
    assert "training_set" in index.read_text()

    # An ephemeral run after file-backed ones in the same process is unaffected by them.
    assert run(training_frame(), train_suite, train_params).data_docs is None


def test_no_data_docs_when_disabled(tmp_path, train_suite, train_params):
    root = tmp_path / "gx_project"
    report = validate(
        training_frame(), train_suite, train_params, gx_root=root, run_name="quiet", build_data_docs=False
    )
    assert report.success and report.data_docs is None
    assert not (root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()


def test_concurrent_validations_in_threads(train_suite, train_params):
    from concurrent.futures import ThreadPoolExecutor

    frames = [training_frame(), _set("label", 0, "eggs")(training_frame())] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(lambda f: run(f, train_suite, train_params), frames))
    assert [r.success for r in reports] == [True, False, True, False]
