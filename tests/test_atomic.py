"""Atomic writes are durable (issue 33): the file's bytes and then its folder's entry are flushed to disk."""

from __future__ import annotations

import os
import stat

from driftloop.atomic import atomic_dir, write_json


def test_every_atomic_rename_is_followed_by_an_fsync_of_its_folder(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    write_json(tmp_path / "registry.json", {"champion": "v1"})
    assert synced == ["file", "dir"]
    synced.clear()
    with atomic_dir(tmp_path / "model") as folder:
        (folder / "weights.bin").write_bytes(b"\0" * 8)
    assert synced[-1] == "dir" and synced.count("dir") == 2  # the new folder itself, then its parent
