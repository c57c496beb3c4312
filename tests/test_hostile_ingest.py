"""A hostile-input battery for ingest (issue 33, defects 1, 2 and 5), with real files and real processes.

A swapper process flips a landed name between a plain file and a link out of the folder; a named pipe, a device
and a link to a file outside any folder ingest is pointed at are refused without being read; a writer process
copies a file slowly while ingest runs. Each is bounded in time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.tasks.landing import ingest_paths

GOOD = "text,label\nhello there,\nsee you at home,\n"
SECRET = "text\nTOP-SECRET-OUTSIDE\n"


@pytest.fixture
def env(project: Path):
    cfg = load_config(project / "configs" / "sms_spam.yaml", ["ingest.stable_s=0.2"])
    return cfg, Catalog.from_config(cfg), project / "data" / "incoming"


def _everything_written(catalog: Catalog) -> str:
    """Every byte ingest left behind: snapshots' texts, quarantine copies and reasons."""
    out = [catalog.read_snapshot(s)["text"].str.cat(sep="\n") for s in catalog.snapshots()]
    if catalog.quarantine_dir.exists():
        out += [p.read_text(errors="replace") for p in catalog.quarantine_dir.iterdir()]
    return "\n".join(out)


SWAPPER = """
import os, sys, time
name, plain, outside, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
end = time.monotonic() + seconds
tmp_link, tmp_file = name + ".l", name + ".f"
while time.monotonic() < end:
    for src, make in ((tmp_link, lambda p: os.symlink(outside, p)), (tmp_file, lambda p: os.link(plain, p))):
        try:
            os.unlink(src)
        except FileNotFoundError:
            pass
        make(src)
        os.replace(src, name)
"""


def test_a_name_swapped_between_a_file_and_a_link_out_never_reads_the_outside_file(env, tmp_path):
    cfg, catalog, incoming = env
    outside = tmp_path / "outside.csv"
    outside.write_text(SECRET)
    plain = tmp_path / "plain.csv"
    plain.write_text(GOOD)
    name = incoming / "a.csv"
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(name), str(plain), str(outside), "8"])
    try:
        while not name.is_symlink() and not name.exists():
            time.sleep(0.01)
        deadline = time.monotonic() + 6
        tries = 0
        while time.monotonic() < deadline and swapper.poll() is None:
            ingest_paths(catalog, cfg, [name], settle_s=0)
            tries += 1
    finally:
        swapper.kill()
        swapper.wait(timeout=10)
    assert tries > 20
    assert "TOP-SECRET-OUTSIDE" not in _everything_written(catalog)


def test_a_named_pipe_a_device_and_links_to_them_are_refused_without_blocking(env):
    cfg, catalog, incoming = env
    os.mkfifo(incoming / ".pipe")
    (incoming / "pool.csv").symlink_to(incoming / ".pipe")  # a link inside the folder, to a FIFO
    os.mkfifo(incoming / "fifo.csv")
    (incoming / "zero.csv").symlink_to("/dev/zero")  # outside the folder and a device
    started = time.monotonic()
    outcomes = {Path(o.source).name: o for o in ingest_paths(catalog, cfg)}
    assert time.monotonic() - started < 20  # nothing blocked on the pipe or read /dev/zero
    assert outcomes["pool.csv"].status == "quarantined" and "named pipe" in outcomes["pool.csv"].reason
    assert outcomes["fifo.csv"].status == "quarantined" and "named pipe" in outcomes["fifo.csv"].reason
    assert outcomes["zero.csv"].status == "quarantined" and "outside incoming/" in outcomes["zero.csv"].reason
    assert catalog.snapshots() == []


def test_a_link_out_of_any_folder_ingest_is_pointed_at_is_refused(env, tmp_path):
    """Not only data/incoming/: `driftloop ingest DIR` on another folder follows no link out of it either."""
    cfg, catalog, _ = env
    elsewhere = tmp_path / "drop"
    elsewhere.mkdir()
    outside = tmp_path / "hostname.csv"
    outside.write_text(SECRET)
    (elsewhere / "link.csv").symlink_to(outside)
    (elsewhere / "inside.csv").write_text(GOOD)
    (elsewhere / "inner.csv").symlink_to(elsewhere / "inside.csv")
    outcomes = {Path(o.source).name: o for o in ingest_paths(catalog, cfg, [elsewhere])}
    assert outcomes["link.csv"].status == "quarantined" and "outside drop/" in outcomes["link.csv"].reason
    assert {outcomes["inside.csv"].status, outcomes["inner.csv"].status} == {"ingested", "already_ingested"}
    assert "TOP-SECRET-OUTSIDE" not in _everything_written(catalog)


WRITER = """
import sys, time
path, rows, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with open(path, "w") as fh:
    fh.write("text\\n")
    for i in range(rows):
        fh.write(f"row number {i} of a file that is still being copied\\n")
        fh.flush()
        time.sleep(pause)
"""


def test_a_file_still_being_copied_is_never_snapshotted_half(env):
    cfg, catalog, incoming = env
    path = incoming / "pool.csv"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "40", "0.05"])
    try:
        while not path.exists():
            time.sleep(0.01)
        while writer.poll() is None:  # commands and the watcher alike, while the copy goes on
            for outcome in ingest_paths(catalog, cfg, [path], wait=False):
                assert outcome.status == "pending", outcome
        writer.wait(timeout=30)
    finally:
        writer.kill()
    (done,) = ingest_paths(catalog, cfg, [path])  # a command waits for the file to settle
    assert done.status == "ingested" and done.rows == 40
    assert [s.rows for s in catalog.snapshots()] == [40]


def test_a_small_file_holding_millions_of_rows_is_refused_before_it_is_built(env):
    """Issue 33, defect 7: a 65 KB Parquet file of 5M rows was ingested at 1.2 GB of memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg, catalog, incoming = env
    bomb = incoming / "pool.parquet"
    pq.write_table(pa.table({"text": pa.array(["same text"] * 5_000_000)}), bomb, compression="zstd")
    assert bomb.stat().st_size < 1_000_000
    (o,) = ingest_paths(catalog, cfg, [bomb])
    assert o.status == "quarantined" and "ingest.max_rows=2,000,000" in o.reason and catalog.snapshots() == []
    lines = incoming / "lines.csv"
    lines.write_text("text\n" + "a\n" * 50)
    small = load_config(cfg.project.root / "configs" / "sms_spam.yaml", ["ingest.max_rows=20"])
    (o,) = ingest_paths(catalog, small, [lines])
    assert o.status == "quarantined" and "51 rows (or lines)" in o.reason
