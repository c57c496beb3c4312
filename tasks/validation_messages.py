"""Turning a Great Expectations result into a report and messages that say what to change.

GX reports each failed expectation as nested JSON with resolved parameter values. This module
sorts the failures by severity (``critical`` fails the gate, anything else is a warning), reports a
missing column once instead of once per expectation on it, and phrases each failure as
"observed X, expected Y (the config field that sets Y)", so a failed gate names the threshold to edit.

Pure functions over the suite and result objects GX hands back: no GX import, no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.errors import ValidationFailed

# Where each suite parameter comes from, so failure messages name the config field to change.
PARAMETER_SOURCES: dict[str, str] = {
    "labels": "data.labels",
    "min_chars": "clean.min_chars",
    "max_chars": "clean.max_chars",
    "min_rows": "validation.min_rows",
    "min_raw_rows": "validation.min_raw_rows",
    "min_unique_ratio": "1 - validation.max_duplicate_ratio",
    "max_imbalance_ratio": "validation.max_imbalance_ratio",
    "min_label_confidence": "validation.min_label_confidence",
}

SUITE_SUBJECTS = {"raw_batch": "raw batch", "training_set": "training set"}


@dataclass
class ValidationReport:
    """The outcome of one suite run: gate verdict, failures by severity, the raw GX result."""

    suite: str
    success: bool
    critical_failures: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    statistics: dict[str, Any]
    results: dict[str, Any]
    data_docs: Path | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        data = asdict(self)
        data["data_docs"] = str(self.data_docs) if self.data_docs else None
        return data


def failure_from_report(report: ValidationReport, subject: str | None = None) -> ValidationFailed:
    """The exception for a failed report, e.g. "training set failed 2 critical expectations: ..."."""
    subject = subject or SUITE_SUBJECTS.get(report.suite, f"suite {report.suite}")
    failures = report.critical_failures
    n = len(failures)
    lines = [
        f"{subject} failed {n} critical expectation{'s' if n != 1 else ''}: "
        + "; ".join(_describe(f) for f in failures)
    ]
    hints = [f"- {_label(f)}: {f['notes']}" for f in failures if f.get("notes")]
    if hints:
        lines += ["What to do:", *hints]
    lines.append(
        f"Thresholds live in the config (validation.*, clean.*, data.labels); the expectations "
        f"in the suite {report.suite!r} under expectations/."
    )
    if report.data_docs:
        lines.append(f"Data Docs: {report.data_docs}")
    return ValidationFailed("\n".join(lines), report)


def format_failures(report: ValidationReport) -> str:
    """A readable multi-line summary of a report's critical failures and warnings."""
    if not report.critical_failures and not report.warnings:
        return f"{report.suite}: all {report.statistics.get('evaluated_expectations', 0)} expectations passed"
    lines = []
    for title, failures in (("critical failures", report.critical_failures), ("warnings", report.warnings)):
        if failures:
            lines.append(f"{report.suite}: {title} ({len(failures)})")
            for failure in failures:
                lines.append(f"  - {_describe(failure)}")
                if failure.get("notes"):
                    lines.append(f"    what to do: {failure['notes']}")
    return "\n".join(lines)


def build_report(
    suite,
    frame: pd.DataFrame,
    result,
    docs: Path | None,
    skipped: list[dict[str, Any]],
    seconds: float,
    helper_sources: dict[str, str] | None = None,
) -> ValidationReport:
    """Sort one checkpoint result into a :class:`ValidationReport`.

    Args:
        suite: the GX suite as run (its expectation ids order the failures).
        frame: the frame as the caller passed it (without helper columns).
        result: the GX ``ExpectationSuiteValidationResult``.
        docs: the Data Docs index, if built.
        skipped: expectations left out before the run, with the reason.
        seconds: how long the run took.
        helper_sources: helper column -> the frame column it is computed from, so a failure on a
            helper column whose source is missing says which real column is absent.
    """
    helper_sources = helper_sources or {}
    results = result.to_json_dict()
    order = {e.id: i for i, e in enumerate(suite.expectations)}
    # Results carry resolved values; the stored suite still says which kwarg was which parameter.
    referenced = {
        e.id: {k: v["$PARAMETER"] for k, v in e.configuration.kwargs.items() if _is_parameter(v)}
        for e in suite.expectations
    }
    failed = sorted(
        (r for r in results["results"] if not r["success"]),
        key=lambda r: order.get(r["expectation_config"].get("id"), len(order)),
    )
    missing_reported = {
        r["expectation_config"]["kwargs"].get("column")
        for r in failed
        if r["expectation_config"]["type"] == "expect_column_to_exist"
    }
    critical, warned = [], []
    for r in failed:
        parameters = referenced.get(r["expectation_config"].get("id"), {})
        failure = _failure(r, frame.columns, parameters, helper_sources)
        # A missing column fails every expectation on it; its expect_column_to_exist says it once.
        if failure["expectation"] != "expect_column_to_exist" and failure.get("missing_column") in missing_reported:
            continue
        (critical if failure["severity"] == "critical" else warned).append(failure)
    statistics = {
        **results["statistics"],
        "rows": len(frame),
        "critical_failures": len(critical),
        "warnings": len(warned),
        "skipped_expectations": len(skipped),
        "seconds": round(seconds, 3),
    }
    return ValidationReport(
        suite=suite.name,
        success=not critical,
        critical_failures=critical,
        warnings=warned,
        statistics=statistics,
        results=results,
        data_docs=docs,
        skipped=skipped,
    )


def _is_parameter(value: Any) -> bool:
    return isinstance(value, dict) and "$PARAMETER" in value


def _failure(
    r: dict[str, Any], columns: pd.Index, parameters: dict[str, str], helper_sources: dict[str, str]
) -> dict[str, Any]:
    config = r["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
    column = kwargs.get("column")
    source = helper_sources.get(column, column)
    failure: dict[str, Any] = {
        "expectation": config["type"],
        "column": column,
        "severity": str(config.get("severity") or "critical"),
        "observed": _observed(r),
        "expected": _expected(config["type"], kwargs),
        "parameters": parameters,
        "kwargs": kwargs,
        "notes": config.get("notes"),
        "details": r.get("result", {}),
    }
    if source is not None and source not in columns:
        failure["missing_column"] = source
        failure["observed"] = f"column {source!r} missing"
    return failure


def _exception_message(r: dict[str, Any]) -> str | None:
    info = r.get("exception_info") or {}
    # GX puts one record per failed metric, or a single flat record.
    records = [info] if "raised_exception" in info else list(info.values())
    for record in records:
        if isinstance(record, dict) and record.get("raised_exception"):
            return str(record.get("exception_message") or "error").splitlines()[0][:200]
    return None


def _short(value: Any, quote: bool = True) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = repr(value) if quote or not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _observed(r: dict[str, Any]) -> str:
    error = _exception_message(r)
    if error:
        return f"error: {error}"
    result = r.get("result") or {}
    if result.get("partial_missing_list"):
        # Set-containment expectations report what is missing instead of an observed value.
        missing = result["partial_missing_list"]
        return f"{result.get('missing_count', len(missing))} missing: {missing}"
    if "observed_value" in result:
        value = result["observed_value"]
        return "nothing (no non-null values)" if value is None else _short(value, quote=False)
    if "unexpected_count" in result:
        count, total = result["unexpected_count"], result.get("element_count", 0)
        text = f"{count} of {total} rows failing"
        examples = [v for v in result.get("partial_unexpected_list") or [] if v is not None][:3]
        return text + (f", e.g. {', '.join(_short(v) for v in examples)}" if examples else "")
    return "no result"


# How to say what an expectation without bounds or a value set wants.
_EXPECTED_PHRASES = {
    "expect_column_to_exist": "the column present",
    "expect_column_values_to_not_be_null": "no nulls",
    "expect_column_values_to_be_unique": "unique values",
}


def _expected(expectation: str, kwargs: dict[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if expectation in _EXPECTED_PHRASES:
        text = _EXPECTED_PHRASES[expectation]
    elif expectation == "expect_column_distinct_values_to_contain_set":
        text = f"every one of {sorted(kwargs['value_set'], key=str)} present"
    elif low is not None and high is not None:
        text = f"between {_short(low)} and {_short(high)}"
    elif low is not None:
        text = f">= {_short(low)}"
    elif high is not None:
        text = f"<= {_short(high)}"
    elif "value_set" in kwargs:
        text = f"values in {sorted(kwargs['value_set'], key=str)}"
    elif "type_" in kwargs:
        text = f"type {kwargs['type_']}"
    else:
        text = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items() if k != "column")
    mostly = kwargs.get("mostly")
    if mostly is not None and mostly < 1:
        text += f" for at least {mostly:.0%} of rows"
    return text


def _label(failure: dict[str, Any]) -> str:
    column = failure.get("column")
    return f"{failure['expectation']} ({column})" if column else failure["expectation"]


def _describe(failure: dict[str, Any]) -> str:
    sources = [PARAMETER_SOURCES.get(p, p) for p in (failure.get("parameters") or {}).values()]
    where = f" ({', '.join(dict.fromkeys(sources))})" if sources else ""
    return f"{_label(failure)}: observed {failure['observed']}, expected {failure['expected']}{where}"
