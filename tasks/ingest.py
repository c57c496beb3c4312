"""Ingest: check an incoming table against the data contract and map it to the canonical schema."""

from __future__ import annotations

from typing import Literal

import pandas as pd

from driftloop.config import DataConfig, Role
from driftloop.errors import InputError

# What pandas infers for an object column that holds more than one kind of value.
_MIXED = {"mixed", "mixed-integer", "mixed-integer-float"}


def settle_types(frame: pd.DataFrame, policy: Literal["reject", "cast"], name: str) -> tuple[pd.DataFrame, list[str]]:
    """Return ``frame`` with every mixed-type column made text, and a warning per cast column.

    A column mixing strings with numbers (``{"text": 5}`` next to ``{"text": "hi"}`` in JSON Lines)
    cannot be stored as one Parquet column. ``policy="reject"`` raises InputError naming the columns;
    ``"cast"`` turns each value into text (missing values stay missing). The input is not modified.
    """
    mixed = {}
    for column in frame.select_dtypes(include="object").columns:
        if pd.api.types.infer_dtype(frame[column], skipna=True) not in _MIXED:
            continue
        kinds = sorted({type(v).__name__ for v in frame[column].dropna().head(10_000)})
        if len(kinds) > 1:  # a column of JSON objects only is "mixed" to pandas but stores fine
            mixed[str(column)] = kinds
    if not mixed:
        return frame, []
    described = "; ".join(f"{c!r} holds {', '.join(t)}" for c, t in mixed.items())
    if policy == "reject":
        raise InputError(
            f"{name}: column(s) mix value types ({described}); make every value of a column the same type "
            f"(quote numbers meant as text), or set ingest.mixed_types=cast to store them as text"
        )
    out = frame.copy()
    for column in mixed:
        out[column] = out[column].astype("string").astype(object).where(out[column].notna(), None)
    return out, [f"{name}: cast mixed-type column(s) to text ({described}) because ingest.mixed_types=cast"]


def check_incoming(frame: pd.DataFrame, data_cfg: DataConfig, role: Role, name: str) -> None:
    """Raise InputError when an incoming table breaks the contract for its role.

    Args:
        frame: the table as read from the file (original column names).
        data_cfg: the data section of the config (column names, label set).
        role: gold_dev, gold_test or unlabelled.
        name: the file name, for the message.
    """
    columns = [str(c) for c in frame.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InputError(
            f"{name}: column name(s) {repeated} appear more than once; rename or drop the repeated columns"
        )
    if data_cfg.text_column not in columns:
        raise InputError(
            f"{name}: no text column {data_cfg.text_column!r} (columns: {columns}); "
            f"rename the column or set data.text_column"
        )
    if frame.empty:
        raise InputError(f"{name}: the table has a header but no rows")
    if role != "unlabelled":
        # Checked on the raw values: a blank gold text must fail here, before anything fills it in.
        text = frame[data_cfg.text_column].astype("string").str.strip()
        blank = (text.isna() | (text == "")).to_numpy().nonzero()[0]
        if len(blank):
            shown = ", ".join(str(i + 1) for i in blank[:10]) + (" ..." if len(blank) > 10 else "")
            raise InputError(
                f"{name}: {len(blank)} row(s) of this {role} file have a blank or missing text (data rows {shown}); "
                f"gold rows are never dropped silently, so fill the texts in or delete those rows"
            )
    if role == "unlabelled" and data_cfg.label_column not in columns:
        return
    if data_cfg.label_column not in columns:
        raise InputError(
            f"{name}: a {role} file needs a label column {data_cfg.label_column!r} (columns: {columns}); "
            f"add it or set data.label_column"
        )
    labels = frame[data_cfg.label_column].astype("string").str.strip()
    if role == "unlabelled":
        labels = labels[labels.notna() & (labels != "")]
    unknown = sorted(set(labels.dropna().unique()) - set(data_cfg.labels))
    if unknown or labels.isna().any():
        shown = unknown[:5] + (["<missing>"] if labels.isna().any() else [])
        raise InputError(
            f"{name}: label values {shown} are not in the configured label set {data_cfg.labels}; "
            f"fix the labels or add them to data.labels"
        )
    if role != "unlabelled" and labels.nunique() < 2:
        raise InputError(
            f"{name}: the {role} set has a single class ({labels.iloc[0]!r}); a gold set needs examples "
            f"of at least two of {data_cfg.labels} to measure anything"
        )


def to_canonical(frame: pd.DataFrame, data_cfg: DataConfig, snapshot_id: str, keep_labels: bool) -> pd.DataFrame:
    """Map a raw snapshot to the canonical columns: row_id, snapshot_id, text and (gold) label."""
    out = pd.DataFrame(
        {
            "row_id": [f"{snapshot_id}:{i}" for i in range(len(frame))],
            "snapshot_id": snapshot_id,
            "text": frame[data_cfg.text_column].astype("string").fillna(""),
        }
    )
    if keep_labels:
        out["label"] = frame[data_cfg.label_column].astype("string").str.strip()
    return out
