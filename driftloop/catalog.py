"""The catalog: the one place that knows where data lives and in what format.

Layout under ``project.root``::

    data/incoming/            landing folder: users drop CSV/TSV/JSONL/Parquet here
    data/raw/<id>.parquet     immutable snapshots, addressed by the sha256 of the source bytes
    data/raw/manifest.json    one record per snapshot: source, sha256, rows, role, ingested_at
    data/quarantine/          rejected files, each with a ``.reason.json`` beside it
    data/derived/<step>/      derived tables, named by the hash of their inputs + config + code
    runs/<run_id>/            resolved config, summary.json and the reports of one run
    models/                   fine-tuned models and the registry

Steps never see paths: flows ask the catalog for tables and hand tables to steps.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import os
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import yaml

from driftloop import __version__
from driftloop.atomic import file_lock, write_bytes, write_json, write_parquet, write_text
from driftloop.config import DataConfig, DriftloopConfig, Role
from driftloop.errors import InputError

SUPPORTED_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    sha256: str
    source: str
    role: Role
    rows: int
    columns: list[str]
    ingested_at: str
    path: str


def content_hash(*parts: Any) -> str:
    """Hash of JSON-able parts (input ids, config sections, code version) for artifact names."""
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_table(path: Path, data_cfg: DataConfig, raw: bytes | None = None) -> pd.DataFrame:
    """Read one incoming file into a DataFrame of strings, or raise InputError saying why not.

    ``raw``: the file's bytes when already read (ingest hashes and parses the very same bytes).
    """
    suffix = path.suffix.lower()
    kind = SUPPORTED_SUFFIXES.get(suffix)
    if kind is None:
        raise InputError(
            f"{path.name}: unsupported file type {suffix or '(none)'}; use one of {sorted(SUPPORTED_SUFFIXES)}"
        )
    raw = path.read_bytes() if raw is None else raw
    if not raw.strip():
        raise InputError(f"{path.name}: the file is empty; export the data again or remove the file")
    if kind == "parquet":
        try:
            return pq.read_table(io.BytesIO(raw)).to_pandas()
        except (pa.ArrowException, OSError) as err:
            raise InputError(f"{path.name}: not a readable Parquet table ({err}); re-export it as Parquet") from None
    try:
        text = raw.decode(data_cfg.encoding)
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path.name}: bytes at offset {err.start} are not valid {data_cfg.encoding} ({err.reason}); "
            f"re-save the file as {data_cfg.encoding} or set data.encoding"
        ) from None
    if "\x00" in text:
        raise InputError(f"{path.name}: holds NUL bytes, so it is not a text table; is it a binary file?")
    if kind == "jsonl":
        try:
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
        except ValueError as err:
            raise InputError(f"{path.name}: not valid JSON Lines ({err}); each line must be one JSON object") from None
        return frame
    sep = data_cfg.csv_delimiter or ("," if kind == "csv" else "\t")
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=sep))
        names = header if data_cfg.has_header else [str(i) for i in range(len(header))]
        # pyarrow's reader is strict (a row with too many fields is an error, not a silent shift)
        # and fast; every column is read as a string so nothing is reinterpreted.
        table = pa_csv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1 if data_cfg.has_header else 0),
            parse_options=pa_csv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, csv.Error, StopIteration) as err:
        raise InputError(f"{path.name}: malformed {kind.upper()} ({err}); fix the quoting or the delimiter") from None
    frame = table.to_pandas()
    return frame


def infer_role(path: Path, data_cfg: DataConfig) -> Role:
    for role, patterns in data_cfg.role_patterns.items():
        if any(fnmatch.fnmatch(path.name, pat) for pat in patterns):
            return role
    return "unlabelled"


class Catalog:
    """Paths, formats and versions of everything driftloop reads and writes."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.incoming_dir = self.root / "data" / "incoming"
        self.raw_dir = self.root / "data" / "raw"
        self.quarantine_dir = self.root / "data" / "quarantine"
        self.derived_dir = self.root / "data" / "derived"
        self.runs_dir = self.root / "runs"
        self.models_dir = self.root / "models"
        self.manifest_path = self.raw_dir / "manifest.json"
        self._lock_path = self.raw_dir / ".manifest.lock"

    @classmethod
    def from_config(cls, cfg: DriftloopConfig) -> Catalog:
        return cls(cfg.root)

    # ---- raw snapshots -------------------------------------------------------------------
    def snapshots(self, role: Role | None = None) -> list[Snapshot]:
        if not self.manifest_path.exists():
            return []
        records = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        snaps = [Snapshot(**r) for r in records]
        return [s for s in snaps if role is None or s.role == role]

    def snapshot_by_sha(self, sha: str) -> Snapshot | None:
        return next((s for s in self.snapshots() if s.sha256 == sha), None)

    def read_snapshot(self, snap: Snapshot) -> pd.DataFrame:
        return pd.read_parquet(self.root / snap.path)

    def add_snapshot(self, frame: pd.DataFrame, *, source: Path, sha: str, role: Role) -> tuple[Snapshot, bool]:
        """Store ``frame`` as an immutable snapshot; return it and whether it is new."""
        with file_lock(self._lock_path):
            existing = self.snapshot_by_sha(sha)
            if existing is not None:
                return existing, False
            snapshot_id = sha[:16]
            target = self.raw_dir / f"{snapshot_id}.parquet"
            write_parquet(target, frame.reset_index(drop=True))
            os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            snap = Snapshot(
                snapshot_id=snapshot_id,
                sha256=sha,
                source=str(source),
                role=role,
                rows=len(frame),
                columns=[str(c) for c in frame.columns],
                ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
                path=str(target.relative_to(self.root)),
            )
            records = [asdict(s) for s in self.snapshots()] + [asdict(snap)]
            write_json(self.manifest_path, records)
            return snap, True

    def quarantine(self, source: Path, raw: bytes, sha: str, reason: str) -> Path:
        """Keep a copy of a rejected file's bytes with a reason file; the original stays where it was."""
        target = self.quarantine_dir / f"{sha[:12]}__{source.name}"
        if not target.exists():
            write_bytes(target, raw)
        write_json(
            target.with_name(target.name + ".reason.json"),
            {
                "source": str(source),
                "sha256": sha,
                "reason": reason,
                "quarantined_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return target

    # ---- derived artifacts ---------------------------------------------------------------
    def derived_path(self, step: str, key: str, suffix: str = ".parquet") -> Path:
        return self.derived_dir / step / f"{key}{suffix}"

    def write_derived(self, step: str, key: str, frame: pd.DataFrame) -> Path:
        return write_parquet(self.derived_path(step, key), frame)

    def read_derived(self, step: str, key: str) -> pd.DataFrame | None:
        path = self.derived_path(step, key)
        return pd.read_parquet(path) if path.exists() else None

    # ---- runs ----------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def run_summaries(self) -> list[dict[str, Any]]:
        """Every run's summary.json, oldest first (run ids start with a UTC timestamp)."""
        if not self.runs_dir.exists():
            return []
        found = sorted(self.runs_dir.glob("*/summary.json"))
        return [json.loads(p.read_text(encoding="utf-8")) for p in found]

    def latest_run(self, status: str = "succeeded") -> dict[str, Any] | None:
        return next((s for s in reversed(self.run_summaries()) if s.get("status") == status), None)

    def start_run(self, cfg: DriftloopConfig, run_id: str) -> Path:
        run_dir = self.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=False)
        write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.resolved(), sort_keys=False))
        write_text(run_dir / "config_hash.txt", cfg.config_hash + "\n")
        return run_dir
