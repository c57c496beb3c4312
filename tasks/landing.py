"""Turn landed files into immutable raw snapshots, or quarantine them with a reason.

Every per-file failure stays with its file: whatever goes wrong (a parse error, a library bug, an
unexpected exception) the file is quarantined with a reason that says what to do, or reported
``failed`` when it could not be read (I/O), and the other files go on.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from driftloop.atomic import write_json
from driftloop.catalog import SUPPORTED_SUFFIXES, Catalog, infer_role, read_table
from driftloop.config import DriftloopConfig, Role
from driftloop.errors import InputError
from driftloop.tasks.ingest import check_incoming, settle_types, to_canonical

# failed: the file could not be read (permissions, vanished); it stays put and is retried next time.
# pending: still being written (size or mtime changed within ingest.stable_s); taken on a later look.
Status = Literal["ingested", "already_ingested", "quarantined", "failed", "pending"]
_SETTLED = ("ingested", "already_ingested", "quarantined")


@dataclass(frozen=True)
class IngestOutcome:
    source: str
    status: Status
    role: Role
    snapshot_id: str | None = None
    rows: int | None = None
    reason: str | None = None
    warning: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def ingest_file(
    catalog: Catalog,
    cfg: DriftloopConfig,
    path: Path,
    role: Role | None = None,
    *,
    settle_s: float = 0.0,
    wait: bool = True,
) -> IngestOutcome:
    """Snapshot one file: a no-op for content seen before; quarantine (with reason) if unusable.

    The file is opened once, without following a link out of its folder, and read through that one descriptor
    only if it is a regular file. It is taken only when its size and mtime are the same before and after the
    read and at least ``settle_s`` old; otherwise ``wait`` (a command) waits for it to settle, a few times at
    most, while the watcher (``wait=False``) leaves it ``pending`` for its next tick.
    """
    path = Path(path)
    if not path.is_symlink() and not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    role = role or infer_role(path, cfg.data)
    try:
        return _ingest_file(catalog, cfg, path, role, settle_s, wait)
    except Exception as err:  # noqa: BLE001 - the last line of isolation: one file never stops the others
        reason = (
            f"{path.name}: could not be ingested ({type(err).__name__}: {err}); check that it is a well-formed "
            f"table in one of {sorted(SUPPORTED_SUFFIXES)}, export it again, and report it if it looks right"
        )
        return _quarantine_or_fail(catalog, path, None, _name_sha(path), role, reason)


_NOT_REGULAR = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
}
_SETTLE_TRIES = 3


def _open_regular(path: Path) -> int | str:
    """A read-only descriptor on the regular file ``path`` names, or the reason it is refused (nothing read).

    A link is resolved once and must stay inside the file's own folder; the resolved path is opened with
    O_NOFOLLOW, so a swap to a link between the check and the open fails instead of reading elsewhere, and
    O_NONBLOCK, so a named pipe cannot block the open. The descriptor is then checked with fstat.
    """
    folder = Path(os.path.abspath(path)).parent
    target = Path(os.path.abspath(path))
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(folder.resolve()):
            # Never read it: its bytes (and so any error message quoting them) are not ours to show.
            return (
                f"{path.name}: is a symbolic link to a file outside {folder.name}/, and links out of the folder "
                f"being ingested are not followed; copy the file itself into {folder.name}/ instead"
            )
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"{path.name}: became a symbolic link while it was being opened; it is not read. Copy the file in"
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")
        return f"{path.name}: is {kind}, not a regular file, and is not read; copy the table into a plain file"
    return fd


def _read_capped(fd: int, cap: int) -> bytes:
    """Up to ``cap + 1`` bytes from the start of ``fd``: one more than allowed tells a file that grew past it."""
    chunks, left = [], cap + 1
    offset = 0
    while left > 0:
        chunk = os.pread(fd, min(left, 1 << 20), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _ingest_file(
    catalog: Catalog, cfg: DriftloopConfig, path: Path, role: Role, settle_s: float, wait: bool
) -> IngestOutcome:
    try:
        opened = _open_regular(path)
    except OSError as err:
        return _failed(path, role, err)
    if isinstance(opened, str):
        return _quarantine_or_fail(catalog, path, None, _name_sha(path), role, opened)
    try:
        read = _read_settled(opened, path, cfg.ingest.max_file_mb, settle_s, wait)
    except OSError as err:  # one unreadable file must not block the others (or hide their retrain event)
        return _failed(path, role, err)
    finally:
        os.close(opened)
    if read is None:
        return IngestOutcome(str(path), "pending", role, reason=_pending_reason(path, settle_s))
    if isinstance(read, str):
        return _quarantine_or_fail(catalog, path, None, _name_sha(path), role, read)
    raw = read
    sha = hashlib.sha256(raw).hexdigest()
    known = catalog.snapshot_by_sha(sha)
    if known is not None:
        return IngestOutcome(str(path), "already_ingested", known.role, known.snapshot_id, known.rows)
    try:
        frame = read_table(path, cfg.data, raw, cfg.ingest)
        check_incoming(frame, cfg.data, role, path.name)
        frame, warnings = settle_types(frame, cfg.ingest.mixed_types, path.name)
    except InputError as err:
        return _quarantine_or_fail(catalog, path, raw, sha, role, str(err))
    try:
        snap, _ = catalog.add_snapshot(frame, source=path, sha=sha, role=role)
    except OSError as err:  # disk full, permissions on data/raw/: ours to fix, the file is fine
        return _failed(path, role, err, what="store a snapshot of")
    return IngestOutcome(str(path), "ingested", role, snap.snapshot_id, snap.rows, warning="; ".join(warnings) or None)


def _read_settled(fd: int, path: Path, max_file_mb: float, settle_s: float, wait: bool) -> bytes | str | None:
    """The file's bytes once they have settled; a refusal reason (too big); None: still changing, left for later.

    Settled: the size and mtime are the same before and after the read, the read has exactly that size, and the
    mtime is at least ``settle_s`` old. One read: the hash, the rows and any quarantine copy come from these bytes.
    """
    cap = int(max_file_mb * 1024 * 1024)
    for _ in range(_SETTLE_TRIES):
        before = os.fstat(fd)
        if before.st_size > cap:
            return (
                f"{path.name}: is {before.st_size / 2**20:.1f} MiB, over ingest.max_file_mb={max_file_mb:g}; "
                f"split it into smaller files, or raise ingest.max_file_mb"
            )
        young = settle_s - (time.time() - before.st_mtime)
        if young > 0:
            if not wait:
                return None
            time.sleep(young)
            continue
        raw = _read_capped(fd, cap)
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns) and len(raw) == before.st_size:
            return raw
        if not wait:
            return None
        time.sleep(max(settle_s, 0.1))
    return None


def _quarantine_or_fail(
    catalog: Catalog, path: Path, raw: bytes | None, sha: str, role: Role, reason: str
) -> IngestOutcome:
    try:
        catalog.quarantine(path, raw, sha, reason)
    except OSError as err:
        return _failed(path, role, err, what=f"quarantine ({reason})")
    return IngestOutcome(str(path), "quarantined", role, reason=reason)


def _failed(path: Path, role: Role, err: OSError, what: str = "read") -> IngestOutcome:
    reason = (
        f"{path.name}: cannot {what} it ({err.strerror or err}); fix the permissions or free disk space, "
        f"or copy it again if it vanished; it stays in place and is retried next time"
    )
    return IngestOutcome(str(path), "failed", role, reason=reason)


def _pending_reason(path: Path, settle_s: float) -> str:
    return f"{path.name}: still changing; taken once its size and mtime are stable for {settle_s:g}s (ingest.stable_s)"


def _name_sha(path: Path) -> str:
    """A stable id for a file that is not read (too big, a link out): the hash of its path."""
    return hashlib.sha256(str(path).encode()).hexdigest()


def ingest_paths(
    catalog: Catalog,
    cfg: DriftloopConfig,
    paths: list[Path] | None = None,
    role: Role | None = None,
    *,
    settle_s: float | None = None,
    wait: bool = True,
    remember: bool = False,
) -> list[IngestOutcome]:
    """Ingest the given files and folders, or everything in data/incoming/ when none are given.

    Args:
        settle_s: take a file only once its size and mtime have not changed for this long; default
            ``ingest.stable_s``, on every path (commands, runs, the drift check, the watcher).
        wait: wait for a file that is still changing (commands); False leaves it ``pending`` (the watcher).
        remember: skip landed files already dealt with at the same size and mtime (the watcher's ledger),
            so a tick costs one ``stat`` per old file instead of a read and a hash.
    """
    files: list[Path] = []
    for p in paths or [catalog.incoming_dir]:
        p = Path(p)
        if p.is_dir() or p == catalog.incoming_dir:
            p.mkdir(parents=True, exist_ok=True)
            files.extend(_table_files(p))
        else:
            files.append(p)
    stable = cfg.ingest.stable_s if settle_s is None else settle_s
    # The ledger holds for one data contract: after a config change every file is looked at again.
    contract = cfg.section_hash("data", "ingest")
    ledger = _read_ledger(catalog, contract) if remember else {}
    outcomes, seen = [], {}
    for f in files:
        key = _ledger_key(f)
        if remember and key is not None and ledger.get(f.name, {}).get("key") == key:
            seen[f.name] = ledger[f.name]
            continue
        outcome = ingest_file(catalog, cfg, f, role, settle_s=stable, wait=wait)
        outcomes.append(outcome)
        if key is not None and outcome.status in _SETTLED:
            seen[f.name] = {"key": key, "status": outcome.status, "snapshot_id": outcome.snapshot_id}
    if remember:
        write_json(catalog.landing_ledger_path, {"contract": contract, "files": seen})
    return outcomes


def _ledger_key(path: Path) -> list[int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _read_ledger(catalog: Catalog, contract: str) -> dict:
    try:
        ledger = json.loads(catalog.landing_ledger_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no ledger (or a damaged one): every file is looked at again, which is always safe
    return ledger.get("files", {}) if isinstance(ledger, dict) and ledger.get("contract") == contract else {}


def _table_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        # Pipes, devices and links are listed too, so that they are reported and refused, never silently skipped.
        if (p.is_symlink() or not p.is_dir()) and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
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
