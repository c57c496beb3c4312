"""Atomic writes: a temp file in the target folder, fsync, then rename.

A reader never sees a half-written file, and a crash leaves either the old file or the
new one, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas costs ~0.35 s to import; a served run's start should not pay it for a lock
    import pandas as pd


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which races with other threads.
_UMASK = _umask()


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path next to ``target``; rename it over ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the result the usual umask-based mode.
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        fsync_dir(target.parent)  # the rename itself must survive a power cut, not only the bytes
    finally:
        tmp_path.unlink(missing_ok=True)


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (a rename into it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(target: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    with atomic_path(target) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def write_text(target: str | Path, text: str) -> Path:
    with atomic_open(target) as fh:
        fh.write(text)
    return Path(target)


def write_bytes(target: str | Path, data: bytes) -> Path:
    with atomic_open(target, "wb") as fh:
        fh.write(data)
    return Path(target)


def write_json(target: str | Path, data: Any) -> Path:
    return write_text(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(target: str | Path, frame: pd.DataFrame, row_group_size: int | None = None) -> Path:
    with atomic_path(target, suffix=".parquet") as tmp:
        frame.to_parquet(tmp, engine="pyarrow", index=False, row_group_size=row_group_size)
    return Path(target)


def fsync_tree(folder: str | Path) -> None:
    """Flush every file under ``folder`` (and the folder itself) to disk, so that a rename publishing it is durable."""
    folder = Path(folder)
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temp folder beside ``target``; on success, fsync it and rename it to ``target``.

    A reader sees the whole folder or nothing; a crash leaves only a hidden ``.<name>.*.tmp``
    folder, never half of ``target``. The temp folder is removed whatever happens.

    Args:
        replace: an existing ``target`` is deleted just before the rename; otherwise it is an error
            (checked before and again at the rename).

    Raises:
        FileExistsError: ``target`` exists and ``replace`` is false.
    """
    target = Path(target)
    if target.exists() and not replace:
        raise FileExistsError(f"{target} already exists; remove it first or publish under a new name")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        fsync_tree(tmp)
        if target.exists():
            if not replace:
                raise FileExistsError(f"{target} appeared while it was being built; remove it or use a new name")
            shutil.rmtree(target)
        os.rename(tmp, target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def file_lock(lock_path: str | Path, *, wait: bool = True) -> Iterator[None]:
    """An exclusive advisory lock, held for the block: serialises writers across processes.

    With ``wait=False`` a lock held elsewhere raises :class:`BlockingIOError` at once.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
