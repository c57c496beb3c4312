"""Turn landed files into immutable raw snapshots, or quarantine them with a reason."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from driftloop.catalog import SUPPORTED_SUFFIXES, Catalog, infer_role, read_table
from driftloop.config import DriftloopConfig, Role
from driftloop.errors import InputError
from driftloop.tasks.ingest import check_incoming, to_canonical

# failed: the file could not be read (permissions, vanished); it stays put and is retried next time.
Status = Literal["ingested", "already_ingested", "quarantined", "failed"]


@dataclass(frozen=True)
class IngestOutcome:
    source: str
    status: Status
    role: Role
    snapshot_id: str | None = None
    rows: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def ingest_file(catalog: Catalog, cfg: DriftloopConfig, path: Path, role: Role | None = None) -> IngestOutcome:
    """Snapshot one file: a no-op for content seen before; quarantine (with reason) if unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    role = role or infer_role(path, cfg.data)
    # One read: the hash, the parsed rows and any quarantine copy all come from the same bytes,
    # even if the file changes under us.
    try:
        raw = path.read_bytes()
    except OSError as err:  # one unreadable file must not block the others (or hide their retrain event)
        reason = f"cannot read it ({err.strerror or err}); fix its permissions, or copy it again if it vanished"
        return IngestOutcome(str(path), "failed", role, reason=reason)
    sha = hashlib.sha256(raw).hexdigest()
    known = catalog.snapshot_by_sha(sha)
    if known is not None:
        return IngestOutcome(str(path), "already_ingested", known.role, known.snapshot_id, known.rows)
    try:
        frame = read_table(path, cfg.data, raw)
        check_incoming(frame, cfg.data, role, path.name)
    except InputError as err:
        catalog.quarantine(path, raw, sha, str(err))
        return IngestOutcome(str(path), "quarantined", role, reason=str(err))
    snap, _ = catalog.add_snapshot(frame, source=path, sha=sha, role=role)
    return IngestOutcome(str(path), "ingested", role, snap.snapshot_id, snap.rows)


def ingest_paths(
    catalog: Catalog, cfg: DriftloopConfig, paths: list[Path] | None = None, role: Role | None = None
) -> list[IngestOutcome]:
    """Ingest the given files and folders, or everything in data/incoming/ when none are given."""
    files: list[Path] = []
    for p in paths or [catalog.incoming_dir]:
        p = Path(p)
        if p.is_dir() or p == catalog.incoming_dir:
            p.mkdir(parents=True, exist_ok=True)
            files.extend(_table_files(p))
        else:
            files.append(p)
    return [ingest_file(catalog, cfg, f, role) for f in files]


def _table_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
    )


def load_role(catalog: Catalog, cfg: DriftloopConfig, role: Role) -> tuple[pd.DataFrame, list[str]]:
    """All snapshots of one role as one canonical frame, with the snapshot ids it came from."""
    snaps = catalog.snapshots(role)
    frames = [
        to_canonical(catalog.read_snapshot(s), cfg.data, s.snapshot_id, keep_labels=role != "unlabelled") for s in snaps
    ]
    if not frames:
        columns = ["row_id", "snapshot_id", "text"] + ([] if role == "unlabelled" else ["label"])
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns}), []
    return pd.concat(frames, ignore_index=True), [s.snapshot_id for s in snaps]
