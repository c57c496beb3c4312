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
import logging
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from driftloop import __version__
from driftloop.atomic import file_lock, write_bytes, write_json, write_parquet, write_text
from driftloop.cache import code_fingerprint
from driftloop.config import DataConfig, DriftloopConfig, IngestConfig, Role
from driftloop.errors import DriftloopError, InputError
from driftloop.failpoints import failpoint
from driftloop.summary import RunSummary, SummaryError

log = logging.getLogger("driftloop.catalog")

# numpy, pandas and pyarrow are imported where used: a served run counts as started only after its imports,
# and the retrain gate and the watcher's start never need them.
if TYPE_CHECKING:
    import pandas as pd

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


@dataclass(frozen=True)
class Artifact:
    """One kind of derived file: the step folder it lives in and the name after its cache key."""

    step: str
    suffix: str

    @property
    def format(self) -> str:
        return self.suffix.rsplit(".", 1)[-1]


# Every derived artifact, declared once: data/derived/<step>/<key><suffix>.
ARTIFACTS: dict[str, Artifact] = {
    "load.frame": Artifact("load", ".parquet"),
    "clean.frame": Artifact("clean", ".parquet"),
    "clean.report": Artifact("clean", ".json"),
    "weak_label.frame": Artifact("weak_label", ".parquet"),
    "weak_label.report": Artifact("weak_label", ".json"),
    "weak_label.labeler": Artifact("weak_label", ".labeler.npz"),
    "weak_label.test_probs": Artifact("weak_label", ".test_probs.parquet"),
    "weak_label.analysis": Artifact("weak_label", ".lf_analysis.csv"),
    "weak_label.uncovered": Artifact("weak_label", ".uncovered.parquet"),
    "weak_label.dev_probs": Artifact("weak_label", ".dev_probs.npz"),
    "augment.frame": Artifact("augment", ".parquet"),
    "augment.report": Artifact("augment", ".json"),
    "augment.samples": Artifact("augment", ".samples.csv"),
    "balance.frame": Artifact("balance", ".parquet"),
    "balance.report": Artifact("balance", ".json"),
    # Sharded data stages (flows/scale.py): one entry per shard of a snapshot (cleaned rows, fingerprints,
    # votes), keyed on the shard's identity, plus the pool-wide duplicate flags.
    "shards.cleaned": Artifact("shards", ".cleaned.parquet"),
    "shards.flags": Artifact("shards", ".flags.parquet"),
    "shards.clean": Artifact("shards", ".clean.parquet"),
    "shards.votes": Artifact("shards", ".votes.parquet"),
    "shards.report": Artifact("shards", ".json"),
}


def _declared(name: str) -> Artifact:
    try:
        return ARTIFACTS[name]
    except KeyError:
        raise ValueError(f"unknown artifact {name!r}; declare it in driftloop.catalog.ARTIFACTS") from None


@dataclass(frozen=True)
class CacheEntry:
    """The result of ``Catalog.cached``: the key that names the step's artifacts, and whether it was a hit."""

    step: str
    key: str
    hit: bool


def content_hash(*parts: Any) -> str:
    """Hash of JSON-able parts (input ids, config sections, code version) for artifact names."""
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_table(
    path: Path, data_cfg: DataConfig, raw: bytes | None = None, limits: IngestConfig | None = None
) -> pd.DataFrame:
    """Read one incoming file into a DataFrame of strings, or raise InputError saying why not.

    ``raw``: the file's bytes when already read (ingest hashes and parses the very same bytes).
    ``limits``: refuse, before building the table, a file over ``max_rows`` rows (or, for Parquet, whose
    uncompressed data is over ``max_file_mb``).
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    kind = SUPPORTED_SUFFIXES.get(suffix)
    if kind is None:
        raise InputError(
            f"{path.name}: unsupported file type {suffix or '(none)'}; use one of {sorted(SUPPORTED_SUFFIXES)}"
        )
    raw = path.read_bytes() if raw is None else raw
    if limits is not None and kind != "parquet":
        _refuse_over_limits(path.name, raw.count(b"\n"), 0, limits)  # lines bound the rows from above
    if not raw.strip():
        raise InputError(f"{path.name}: the file is empty; export the data again or remove the file")
    if kind == "parquet":
        try:
            parquet = pq.ParquetFile(io.BytesIO(raw))
            _refuse_duplicate_columns(parquet.schema_arrow.names, path.name)
            if limits is not None:
                meta = parquet.metadata
                unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
                _refuse_over_limits(path.name, meta.num_rows, unpacked, limits)
            return parquet.read().to_pandas()
        except (pa.ArrowException, OSError) as err:
            raise InputError(f"{path.name}: not a readable Parquet table ({err}); re-export it as Parquet") from None
    try:
        text = raw.decode(data_cfg.encoding)
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path.name}: bytes at offset {err.start} are not valid {data_cfg.encoding} ({err.reason}); "
            f"re-save the file as {data_cfg.encoding} or set data.encoding"
        ) from None
    # A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name.
    text = text.removeprefix("\ufeff")
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
        _refuse_duplicate_columns(names, path.name)
        # pyarrow's reader is strict (a row with too many fields is an error, not a silent shift)
        # and fast; every column is read as a string so nothing is reinterpreted.
        data = text.encode("utf-8")
        # One block for the whole file: pyarrow cannot parse a cell that straddles two blocks (1 MiB by default),
        # and the file is in memory already.
        block = min(max(len(data) + 1, 1 << 20), 2**31 - 1)
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(
                column_names=names, skip_rows=1 if data_cfg.has_header else 0, block_size=block
            ),
            parse_options=pa_csv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, csv.Error, StopIteration) as err:
        raise InputError(f"{path.name}: malformed {kind.upper()} ({err}); fix the quoting or the delimiter") from None
    frame = table.to_pandas()
    return frame


def _refuse_over_limits(name: str, rows: int, unpacked_bytes: int, limits: IngestConfig) -> None:
    if rows > limits.max_rows:
        raise InputError(
            f"{name}: holds {rows:,} rows (or lines), over ingest.max_rows={limits.max_rows:,}; split it into smaller "
            "files, or raise ingest.max_rows if this machine has the memory"
        )
    if unpacked_bytes > limits.max_file_mb * 2**20:
        raise InputError(
            f"{name}: unpacks to {unpacked_bytes / 2**20:,.0f} MiB, over ingest.max_file_mb={limits.max_file_mb:g}; "
            "split it into smaller files, or raise ingest.max_file_mb"
        )


def _short_name(name: str, limit: int = 120) -> str:
    """``name`` cut to ``limit`` UTF-8 bytes (suffix kept, a hash of the full name added): a 240-byte
    landed name plus the quarantine prefix and the temp/reason suffixes would pass the 255-byte limit."""
    if len(name.encode()) <= limit:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix.encode()) <= 16 else ""
    tag = "~" + hashlib.sha256(name.encode()).hexdigest()[:8]
    head = name.encode()[: limit - len(tag) - len(suffix.encode())].decode("utf-8", "ignore")
    return head + tag + suffix


def _refuse_duplicate_columns(names: list[str], file_name: str) -> None:
    seen: set[str] = set()
    repeated = sorted({n for n in names if n in seen or seen.add(n)})
    if repeated:
        raise InputError(
            f"{file_name}: column name(s) {repeated} appear more than once, so it is ambiguous which one to read; "
            f"rename or drop the repeated columns and export the file again"
        )


def infer_role(path: Path, data_cfg: DataConfig) -> Role:
    """The role a file's name gives it; patterns match case-insensitively (GOLD_DEV.csv is gold dev)."""
    name = path.name.lower()
    for role, patterns in data_cfg.role_patterns.items():
        if any(fnmatch.fnmatchcase(name, pat.lower()) for pat in patterns):
            return role
    return "unlabelled"


def _read_summary(path: Path) -> RunSummary | None:
    if not path.exists():
        return None
    try:
        return RunSummary.read(path)
    except SummaryError as err:
        log.warning("skipping %s", err)
        return None


class Catalog:
    """Paths, formats and versions of everything driftloop reads and writes."""

    def __init__(self, root: str | Path, shard_rows: int = 250_000):
        self.root = Path(root).resolve()
        # Raw snapshots are written in row groups of at most this many rows (runtime.shard_rows), so a
        # shard of the sharded stages reads one bounded row group, never a whole large file.
        self.shard_rows = shard_rows
        self.incoming_dir = self.root / "data" / "incoming"
        self.raw_dir = self.root / "data" / "raw"
        self.quarantine_dir = self.root / "data" / "quarantine"
        self.derived_dir = self.root / "data" / "derived"
        self.runs_dir = self.root / "runs"
        self.models_dir = self.root / "models"
        self.manifest_path = self.raw_dir / "manifest.json"
        self._lock_path = self.raw_dir / ".manifest.lock"
        # The watcher's memory of landed files already dealt with (name -> size, mtime, status) and its lock.
        self.landing_ledger_path = self.root / "data" / "landing.json"
        self.landing_lock_path = self.root / "data" / ".landing.lock"
        # The service's retries of a retrain that ended CRASHED or FAILED with its data still pending.
        self.retrain_retries_path = self.root / "data" / "retrain_retries.json"

    @classmethod
    def from_config(cls, cfg: DriftloopConfig) -> Catalog:
        return cls(cfg.root, shard_rows=cfg.runtime.shard_rows)

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
        import pandas as pd

        return pd.read_parquet(self.root / snap.path)

    def add_snapshot(self, frame: pd.DataFrame, *, source: Path, sha: str, role: Role) -> tuple[Snapshot, bool]:
        """Store ``frame`` as an immutable snapshot; return it and whether it is new."""
        with file_lock(self._lock_path):
            existing = self.snapshot_by_sha(sha)
            if existing is not None:
                return existing, False
            snapshot_id = sha[:16]
            target = self.raw_dir / f"{snapshot_id}.parquet"
            # A snapshot file without a manifest record (a process killed right here) is simply
            # written again: the manifest is the only source of truth, and it changes atomically.
            write_parquet(target, frame.reset_index(drop=True), row_group_size=self.shard_rows)
            os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            failpoint("after-snapshot-write")
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
            records = [asdict(s) for s in self.snapshots() if s.sha256 != sha] + [asdict(snap)]
            write_json(self.manifest_path, records)
            return snap, True

    def quarantine(self, source: Path, raw: bytes | None, sha: str, reason: str) -> Path:
        """Keep a copy of a rejected file's bytes with a reason file; the original stays where it was.

        ``raw=None`` writes the reason only: for a file that was never read (too big, a symlink out of
        data/incoming/), whose bytes are not ours to copy.
        """
        target = self.quarantine_dir / f"{sha[:12]}__{_short_name(source.name)}"
        if raw is not None and not target.exists():
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
    def artifact_path(self, name: str, key: str) -> Path:
        """Where the derived artifact ``name`` (declared in ``ARTIFACTS``) with cache key ``key`` lives."""
        artifact = _declared(name)
        return self.derived_dir / artifact.step / f"{key}{artifact.suffix}"

    def write_artifact(self, name: str, key: str, value: Any) -> Path:
        """Write one artifact atomically in its declared format."""
        path = self.artifact_path(name, key)
        fmt = _declared(name).format
        if fmt == "parquet":
            return write_parquet(path, value)
        if fmt == "json":
            return write_json(path, value)
        if fmt == "csv":
            return write_text(path, value.to_csv(index=False))
        import numpy as np

        buffer = io.BytesIO()  # npz: named arrays, e.g. a label model's weights (no pickle)
        np.savez(buffer, **value)
        return write_bytes(path, buffer.getvalue())

    def read_artifact(self, name: str, key: str) -> Any:
        """Read one artifact back; a missing one is an error that says how to recover."""
        path = self.artifact_path(name, key)
        if not path.exists():
            raise DriftloopError(
                f"derived artifact {name!r} ({path}) is missing; it is rebuilt on the next run "
                f"(or delete {self.derived_dir / _declared(name).step} to rebuild that step from raw data)"
            )
        import numpy as np
        import pandas as pd

        fmt = _declared(name).format
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "json":
            return json.loads(path.read_text(encoding="utf-8"))
        if fmt == "csv":
            return pd.read_csv(path, keep_default_na=False)
        with np.load(path, allow_pickle=False) as arrays:
            return {k: arrays[k] for k in arrays.files}

    def artifact_rows(self, name: str, key: str) -> int:
        """Row count of a table artifact, from its file metadata (the table itself is not read)."""
        path = self.artifact_path(name, key)
        if _declared(name).format == "parquet":
            import pyarrow.parquet as pq

            return pq.read_metadata(path).num_rows
        return len(self.read_artifact(name, key))

    def cached(
        self,
        step: str,
        inputs: Sequence[Any],
        compute: Callable[[], Mapping[str, Any]],
        *,
        code: str | Sequence[str],
        files: Sequence[str | Path] = (),
    ) -> CacheEntry:
        """The one cache: run ``compute`` unless ``step``'s artifacts for these inputs and this code exist.

        The key hashes ``inputs`` (artifact keys, snapshot ids, config sections, seeds) and the source of
        the ``code`` modules with every driftloop module they import (plus ``files``, e.g. an LF module),
        so editing the code that produces an artifact invalidates it. ``compute`` returns the step's
        artifacts by declared name; a ``.done`` marker written after all of them makes a half-written
        entry (a crash mid-write) a miss rather than a corrupt hit.
        """
        key = content_hash(step, *inputs, code_fingerprint(code, files))
        done = self.derived_dir / step / f"{key}.done"
        if done.exists():
            return CacheEntry(step, key, hit=True)
        outputs = compute()
        for name, value in outputs.items():
            if _declared(name).step != step:
                raise ValueError(f"step {step!r} returned artifact {name!r}, which belongs to another step")
            self.write_artifact(name, key, value)
        write_text(done, ",".join(sorted(outputs)) + "\n")
        return CacheEntry(step, key, hit=False)

    # ---- runs ----------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """``runs/<run_id>/``; a run id is one plain folder name, never a path (``../x``, ``a/b``)."""
        if not run_id or run_id in (".", "..") or Path(run_id).name != run_id or "\\" in run_id:
            raise InputError(f"{run_id!r} is not a run id: give the name of a folder under {self.runs_dir}")
        return self.runs_dir / run_id

    def run_summary(self, run_id: str) -> RunSummary | None:
        """One run's summary.json; None (with a warning) when it is missing, unreadable or of another schema."""
        return _read_summary(self.run_dir(run_id) / "summary.json")

    def run_summaries(self) -> list[RunSummary]:
        """Every readable run summary, oldest first (run ids start with a UTC timestamp); a corrupt, empty or
        other-schema summary.json is skipped with a warning, never a traceback."""
        if not self.runs_dir.exists():
            return []
        found = (_read_summary(p) for p in sorted(self.runs_dir.glob("*/summary.json")))
        return [s for s in found if s is not None]

    def latest_run(self, status: str = "succeeded") -> RunSummary | None:
        return next((s for s in reversed(self.run_summaries()) if s.status == status), None)

    def start_run(self, cfg: DriftloopConfig, run_id: str) -> Path:
        run_dir = self.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=False)
        write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.resolved(), sort_keys=False))
        write_text(run_dir / "config_hash.txt", cfg.config_hash + "\n")
        return run_dir
