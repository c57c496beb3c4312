"""Ingest: check an incoming table against the data contract and map it to the canonical schema."""

from __future__ import annotations

import pandas as pd

from driftloop.config import DataConfig, Role
from driftloop.errors import InputError


def check_incoming(frame: pd.DataFrame, data_cfg: DataConfig, role: Role, name: str) -> None:
    """Raise InputError when an incoming table breaks the contract for its role.

    Args:
        frame: the table as read from the file (original column names).
        data_cfg: the data section of the config (column names, label set).
        role: gold_dev, gold_test or unlabelled.
        name: the file name, for the message.
    """
    columns = [str(c) for c in frame.columns]
    if data_cfg.text_column not in columns:
        raise InputError(
            f"{name}: no text column {data_cfg.text_column!r} (columns: {columns}); "
            f"rename the column or set data.text_column"
        )
    if frame.empty:
        raise InputError(f"{name}: the table has a header but no rows")
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
