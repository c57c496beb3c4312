"""The validation gate: run a Great Expectations 1.x suite (JSON under expectations/) on a frame.

The suites hold the expectations; the config holds the numbers. Each suite refers to its
thresholds as ``{"$PARAMETER": name}`` and :func:`suite_parameters` builds the values from the
config, so a user edits a threshold in YAML and an expectation in JSON, never both.

Severity uses GX's own ``severity`` field of each expectation: ``critical`` fails the gate,
``warning`` (or ``info``) is reported only. An expectation whose ``meta`` has
``"only_if_column_present": true`` is skipped when the frame lacks its column (a raw batch of
unlabelled text has no ``label``).

Two checks have no built-in expectation:

- duplicate ratio: ``expect_column_proportion_of_unique_values_to_be_between`` with
  ``min_value = 1 - max_duplicate_ratio`` (parameter ``min_unique_ratio``), on a helper column
  ``__distinct_row_text``: the text, blanked on repeats of a ``row_id``. Oversampling repeats rows
  on purpose under the same ``row_id``; GX ignores nulls, so those copies do not count as
  duplicates, while the row count and the class balance still see every row the model trains on;
- class imbalance: a helper column ``__class_imbalance_ratio`` (largest class count / the row's
  class count) is added to a copy of the frame, and ``expect_column_max_to_be_between`` bounds it:
  its maximum is exactly largest class / smallest class, and Data Docs show it as the observed value.

This module runs GX; :mod:`driftloop.tasks.validation_messages` turns the result into a
:class:`ValidationReport` and into messages (``failure_from_report``, ``format_failures``, both
importable from here too). Great Expectations is imported lazily: importing it takes 2-3 s.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

import pandas as pd

from driftloop.atomic import file_lock
from driftloop.config import DriftloopConfig
from driftloop.errors import InputError
from driftloop.tasks.validation_messages import (
    PARAMETER_SOURCES,
    SUITE_SUBJECTS,
    ValidationReport,
    build_report,
    failure_from_report,
    format_failures,
)

if TYPE_CHECKING:
    import great_expectations as gx

# Must be set before great_expectations is first imported; setdefault keeps a user's choice.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

DATA_SOURCE = "driftloop"
BATCH_DEFINITION = "whole_frame"
ONLY_IF_PRESENT = "only_if_column_present"
CLASS_IMBALANCE_COLUMN = "__class_imbalance_ratio"
DISTINCT_ROW_TEXT_COLUMN = "__distinct_row_text"

__all__ = [
    "CLASS_IMBALANCE_COLUMN",
    "DISTINCT_ROW_TEXT_COLUMN",
    "PARAMETER_SOURCES",
    "SUITE_SUBJECTS",
    "ValidationReport",
    "failure_from_report",
    "format_failures",
    "load_suite",
    "suite_parameters",
    "validate",
]

_GX_LOCK = threading.Lock()


def _class_imbalance_ratio(frame: pd.DataFrame, parameters: dict[str, Any]) -> pd.Series:
    labels = frame["label"]
    if "labels" in parameters:
        # Unknown labels fail their own check; counting them as a tiny class would double-report.
        labels = labels.where(labels.isin(parameters["labels"]))
    counts = labels.value_counts(dropna=True)
    # Null labels map to NaN, which column aggregates ignore.
    class_sizes = labels.map(counts).astype("float64")
    largest = float(counts.max()) if len(counts) else float("nan")
    return largest / class_sizes


def _distinct_row_text(frame: pd.DataFrame, parameters: dict[str, Any]) -> pd.Series:
    if "row_id" not in frame.columns:
        return frame["text"]
    repeat = frame["row_id"].notna() & frame["row_id"].duplicated()
    return frame["text"].where(~repeat)


# Helper column -> (the column it is computed from, how). Added only when a suite refers to it.
HELPER_COLUMNS: dict[str, tuple[str, Callable[[pd.DataFrame, dict[str, Any]], pd.Series]]] = {
    CLASS_IMBALANCE_COLUMN: ("label", _class_imbalance_ratio),
    DISTINCT_ROW_TEXT_COLUMN: ("text", _distinct_row_text),
}
HELPER_SOURCES = {name: source for name, (source, _) in HELPER_COLUMNS.items()}


def suite_parameters(cfg: DriftloopConfig, kind: Literal["raw", "train"]) -> dict[str, Any]:
    """The ``$PARAMETER`` values a suite of this kind refers to, taken from the config."""
    common = {
        "labels": list(cfg.data.labels),
        "min_chars": cfg.clean.min_chars,
        "max_chars": cfg.clean.max_chars,
        # GX has no duplicate-ratio expectation: the suites bound the share of unique texts.
        "min_unique_ratio": 1.0 - cfg.validation.max_duplicate_ratio,
    }
    if kind == "raw":
        return {**common, "min_raw_rows": cfg.validation.min_raw_rows}
    if kind == "train":
        return {
            **common,
            "min_rows": cfg.validation.min_rows,
            "max_imbalance_ratio": cfg.validation.max_imbalance_ratio,
            "min_label_confidence": cfg.validation.min_label_confidence,
        }
    raise ValueError(f"kind must be 'raw' or 'train', got {kind!r}")


def load_suite(suite_path: Path) -> gx.ExpectationSuite:
    """Load a GX expectation suite from its JSON file, rejecting any invalid expectation."""
    gx = _import_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite_path = Path(suite_path)
    if not suite_path.is_file():
        raise InputError(
            f"expectation suite {suite_path} does not exist; set validation.raw_suite / "
            f"validation.train_suite to a JSON suite (see expectations/ in the repository)"
        )
    try:
        data = json.loads(suite_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"expectation suite {suite_path} is not valid JSON: {err}. Fix the file and rerun.") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise InputError(f"expectation suite {suite_path} must be a JSON object with an 'expectations' list")
    # Built one by one because ExpectationSuite(**data) only logs an invalid expectation and drops it:
    # a typo in the file would silently remove a check from the gate.
    expectations = []
    for i, item in enumerate(data["expectations"]):
        try:
            expectations.append(ExpectationConfiguration(**item).to_domain_obj())
        except Exception as err:  # unknown type, missing or extra kwargs, bad severity: all user edits
            name = item.get("type") if isinstance(item, dict) else item
            message = " ".join(str(err).split())
            raise InputError(
                f"expectation suite {suite_path}: expectation #{i} ({name}) is invalid: {message}. "
                f"Fix the file and rerun."
            ) from None
    try:
        return gx.ExpectationSuite(**{**data, "expectations": expectations})
    except Exception as err:
        raise InputError(f"expectation suite {suite_path} is invalid: {err}. Fix the file and rerun.") from None


def validate(
    frame: pd.DataFrame,
    suite_path: Path,
    parameters: dict[str, Any],
    *,
    gx_root: Path | None = None,
    run_name: str = "manual",
    build_data_docs: bool = True,
) -> ValidationReport:
    """Run the suite in ``suite_path`` on ``frame`` and sort failures into critical and warnings.

    Args:
        frame: the table to check; not modified.
        suite_path: a GX suite JSON file.
        parameters: values for the suite's ``$PARAMETER`` references (see :func:`suite_parameters`).
        gx_root: folder of a file-backed GX project (created if missing) that keeps results and
            Data Docs; None validates in an ephemeral context and builds no docs.
        run_name: names the run in stored results and Data Docs.
        build_data_docs: update Data Docs under ``<gx_root>/gx/uncommitted/data_docs/local_site/``.

    Returns:
        A :class:`ValidationReport`; ``success`` is False when a critical expectation failed.
    """
    started = time.perf_counter()
    suite = load_suite(suite_path)
    missing = sorted(set(suite.suite_parameter_options) - set(parameters))
    if missing:
        raise ValueError(
            f"suite {suite.name!r} ({suite_path}) refers to parameters {missing} that were not given; "
            f"build them with suite_parameters(cfg, kind) or remove the references from the suite"
        )

    skipped = _drop_absent_optional(suite, frame)
    prepared = _with_helper_columns(frame, suite, parameters)
    # get_context() sets a process-wide "current project" that GX objects resolve through, so two
    # threads (e.g. Prefect's thread task runner) validating at once must not interleave.
    with _GX_LOCK:
        if gx_root is None:
            suite, result, docs = _run(_ephemeral_context(), suite, prepared, parameters, run_name, docs=False)
        else:
            gx_root = Path(gx_root)
            # Two processes writing one GX project at once would interleave its store files.
            with file_lock(gx_root / ".gx.lock"):
                context = _file_context(gx_root)
                suite, result, docs = _run(context, suite, prepared, parameters, run_name, docs=build_data_docs)

    seconds = time.perf_counter() - started
    return build_report(suite, frame, result, docs, skipped, seconds, HELPER_SOURCES)


# ---------------------------------------------------------------------------------------------
# GX plumbing


def _import_gx():
    with warnings.catch_warnings():
        # GX's import raises an sre_constants DeprecationWarning, fatal under `-W error`.
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations as gx
    return gx


def _quiet(context) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)


def _ephemeral_context():
    context = _import_gx().get_context(mode="ephemeral")
    _quiet(context)
    return context


def _file_context(gx_root: Path):
    gx_root.mkdir(parents=True, exist_ok=True)
    context = _import_gx().get_context(mode="file", project_root_dir=str(gx_root))
    _quiet(context)
    return context


def _batch_definition(context, asset_name: str):
    # get-or-add at each level: add_or_update_pandas would wipe the assets of a reopened project.
    try:
        source = context.data_sources.get(DATA_SOURCE)
    except KeyError:
        source = context.data_sources.add_pandas(DATA_SOURCE)
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def _run(context, suite, frame: pd.DataFrame, parameters: dict[str, Any], run_name: str, *, docs: bool):
    gx = _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    batch_definition = _batch_definition(context, suite.name)
    # The JSON file is the source of truth: overwrite the project's stored copy every run.
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
    )
    actions = [gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")] if docs else []
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(name=suite.name, validation_definitions=[definition], actions=actions)
    )
    outcome = checkpoint.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=parameters,
        run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
    )
    (result,) = outcome.run_results.values()
    return suite, result, _docs_index(context) if docs else None


def _docs_index(context) -> Path | None:
    for site in context.get_docs_sites_urls():
        url = site.get("site_url")
        if url and url.startswith("file://"):
            return Path(unquote(urlparse(url).path))
    return None


# ---------------------------------------------------------------------------------------------
# Frame preparation


def _column(expectation) -> str | None:
    return getattr(expectation, "column", None)


def _drop_absent_optional(suite, frame: pd.DataFrame) -> list[dict[str, Any]]:
    skipped, kept = [], []
    for expectation in suite.expectations:
        column = _column(expectation)
        if (expectation.meta or {}).get(ONLY_IF_PRESENT) and column not in frame.columns:
            skipped.append({"expectation": expectation.expectation_type, "column": column, "reason": "column absent"})
        else:
            kept.append(expectation)
    suite.expectations = kept
    return skipped


def _with_helper_columns(frame: pd.DataFrame, suite, parameters: dict[str, Any]) -> pd.DataFrame:
    wanted = {_column(e) for e in suite.expectations} & set(HELPER_COLUMNS)
    helpers = {
        name: compute(frame, parameters)
        for name, (source, compute) in HELPER_COLUMNS.items()
        if name in wanted and source in frame.columns
    }
    # assign returns a new frame (copy-on-write), so the caller's frame is never touched.
    return frame.assign(**helpers) if helpers else frame
