"""Export a run's data in the Hugging Face ``datasets`` format: what it trained on, its gold dev and test sets.

    driftloop export [RUN_ID] --out exports/spam-v3

The result is a ``DatasetDict`` saved with ``save_to_disk`` (Arrow files plus ``dataset_dict.json``),
so ``datasets.load_from_disk(path)`` reads it back anywhere, with ``label`` as a ``ClassLabel`` in
``data.labels`` order. ``train`` is the validated training set exactly as the model saw it (balanced,
synthetic rows tagged ``is_synthetic``); ``validation`` and ``test`` are the cleaned gold sets.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from driftloop.atomic import atomic_dir
from driftloop.catalog import Catalog
from driftloop.config import DriftloopConfig
from driftloop.errors import InputError
from driftloop.summary import RunSummary

# split -> (the artifact it is read from, its key's name in RunSummary.artifacts)
SPLITS = {
    "train": ("balance.frame", "balance"),
    "validation": ("clean.frame", "gold_dev"),
    "test": ("clean.frame", "gold_test"),
}
COLUMNS = ["row_id", "snapshot_id", "text", "label", "label_confidence", "is_synthetic"]


def find_run(catalog: Catalog, run_id: str | None) -> RunSummary:
    """The summary of ``run_id``, or of the latest run that got as far as a validated training set."""
    runs = [s for s in catalog.run_summaries() if s.artifacts is not None and s.artifacts.balance is not None]
    if run_id is not None:
        runs = [s for s in runs if s.run_id == run_id]
    if not runs:
        which = f"run {run_id!r}" if run_id else "any run"
        raise InputError(
            f"{which} under {catalog.runs_dir} has no validated training set to export; "
            "run `driftloop run` first (a run that failed before balancing has none)"
        )
    return runs[-1]


def export_dataset(cfg: DriftloopConfig, out: str | Path, run_id: str | None = None) -> Path:
    """Write the run's splits to ``out`` as a Hugging Face DatasetDict, atomically; return ``out``."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    catalog = Catalog.from_config(cfg)
    summary = find_run(catalog, run_id)
    labels = list(cfg.data.labels)
    features = Features(
        {
            "row_id": Value("string"),
            "snapshot_id": Value("string"),
            "text": Value("string"),
            "label": ClassLabel(names=labels),
            "label_confidence": Value("float32"),
            "is_synthetic": Value("bool"),
        }
    )
    splits = {}
    for split, (artifact, key_name) in SPLITS.items():
        frame = catalog.read_artifact(artifact, getattr(summary.artifacts, key_name))
        splits[split] = Dataset.from_pandas(_canonical(frame, labels), features=features, preserve_index=False)
    with atomic_dir(out) as tmp:
        DatasetDict(splits).save_to_disk(str(tmp))
    return Path(out)


def _canonical(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The export columns: gold rows get confidence 1; rows without lineage are real rows."""
    out = frame.reindex(columns=COLUMNS)
    out["label_confidence"] = out["label_confidence"].fillna(1.0).astype("float32")
    out["is_synthetic"] = out["is_synthetic"].fillna(False).astype(bool)
    out["snapshot_id"] = out["snapshot_id"].fillna("").astype(str)
    out["label"] = out["label"].map({name: i for i, name in enumerate(labels)})
    return out
