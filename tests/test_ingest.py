"""Ingest: the data contract, quarantine, idempotence and immutability of raw snapshots."""

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.flows.ingestion import ingest_paths, load_role


@pytest.fixture
def env(project: Path):
    cfg = load_config(project / "config.yaml")
    return cfg, Catalog.from_config(cfg), project / "data" / "incoming"


def _ingest_one(env, name: str, content: bytes | str, role=None):
    cfg, catalog, incoming = env
    path = incoming / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    (outcome,) = ingest_paths(catalog, cfg, [path], role)
    return outcome


GOOD_CSV = "text,label\nCall 09061701461 to claim your prize,spam\nsee you at home later,ham\nok lol,ham\n"


@pytest.mark.parametrize(
    "name, writer",
    [
        ("a.csv", lambda df, p: df.to_csv(p, index=False)),
        ("a.tsv", lambda df, p: df.to_csv(p, sep="\t", index=False)),
        ("a.jsonl", lambda df, p: df.to_json(p, orient="records", lines=True)),
        ("a.parquet", lambda df, p: df.to_parquet(p, index=False)),
    ],
)
def test_each_format_becomes_a_snapshot(env, name, writer):
    cfg, catalog, incoming = env
    df = pd.DataFrame({"text": ["hello there", "FREE entry, txt WIN to 80086"], "label": ["ham", "spam"]})
    writer(df, incoming / name)
    (o,) = ingest_paths(catalog, cfg, [incoming / name])
    assert o.status == "ingested" and o.rows == 2 and o.role == "unlabelled"
    snap = catalog.snapshots()[0]
    assert catalog.read_snapshot(snap)["text"].tolist() == df["text"].tolist()
    assert snap.sha256 and snap.ingested_at and snap.source.endswith(name)


def test_same_content_twice_is_a_noop_and_snapshot_is_read_only(env):
    cfg, catalog, incoming = env
    first = _ingest_one(env, "gold_dev_1.csv", GOOD_CSV)
    second = _ingest_one(env, "copy_gold_dev.csv", GOOD_CSV)
    assert first.status == "ingested" and first.role == "gold_dev"
    assert second.status == "already_ingested" and second.snapshot_id == first.snapshot_id
    assert len(catalog.snapshots()) == 1
    path = catalog.root / catalog.snapshots()[0].path
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


@pytest.mark.parametrize(
    "name, content, role, message",
    [
        ("bad.csv", 'text,label\n"unclosed quote,ham\nok,ham\n', None, "malformed CSV"),
        ("bad2.csv", "text,label\na,ham,extra\nb,ham\n", None, "malformed CSV"),
        ("latin1.csv", "text,label\ncaf\xe9,ham\n".encode("latin-1"), None, "not valid utf-8"),
        ("nocol.csv", "message,label\nhello,ham\n", None, "no text column 'text'"),
        ("empty.csv", "", None, "empty"),
        ("header_only.csv", "text,label\n", None, "no rows"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", None, "not valid utf-8"),
        ("nul.csv", "text\x00label\n", None, "NUL"),
        ("table.parquet", "this is not parquet", None, "not a readable Parquet"),
        ("notes.json", "{}", None, "unsupported file type"),
        ("bad.jsonl", '{"text": "a"}\nnot json\n', None, "not valid JSON Lines"),
        ("x_gold_dev.csv", "text,label\na,ham\nb,ham\n", None, "single class"),
        ("x_gold_test.csv", "text\nhello\n", None, "needs a label column"),
        ("unknown_label.csv", "text,label\na,ham\nb,eggs\n", "gold_dev", "not in the configured label set"),
        ("pool_bad_label.csv", "text,label\na,ham\nb,eggs\n", None, "not in the configured label set"),
    ],
)
def test_bad_input_is_quarantined_with_a_clear_reason(env, name, content, role, message):
    cfg, catalog, incoming = env
    o = _ingest_one(env, name, content, role)
    assert o.status == "quarantined"
    assert message.lower() in o.reason.lower()
    assert name in o.reason
    assert catalog.snapshots() == []
    (reason_file,) = catalog.quarantine_dir.glob("*.reason.json")
    assert json.loads(reason_file.read_text())["reason"] == o.reason
    # Nothing is lost: the original stays in place and a copy sits in quarantine.
    assert (incoming / name).exists()
    [copy] = [p for p in catalog.quarantine_dir.iterdir() if not p.name.endswith(".reason.json")]
    assert copy.read_bytes() == (incoming / name).read_bytes()


def test_an_unreadable_file_fails_alone_and_stays_in_place(env, monkeypatch):
    cfg, catalog, incoming = env
    (incoming / "locked.csv").write_text(GOOD_CSV)
    (incoming / "pool.csv").write_text("text,label\nhello there,\nFREE prize,spam\n")
    read_bytes = Path.read_bytes

    def deny_locked(path):
        if path.name == "locked.csv":
            raise PermissionError(13, "Permission denied")
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", deny_locked)
    locked, pool = ingest_paths(catalog, cfg)
    assert locked.status == "failed" and "Permission denied" in locked.reason and "permissions" in locked.reason
    assert pool.status == "ingested" and len(catalog.snapshots()) == 1
    assert (incoming / "locked.csv").exists() and not catalog.quarantine_dir.exists()


def test_unlabelled_file_may_carry_blank_labels(env):
    o = _ingest_one(env, "pool.csv", "text,label\nhello,\nFREE prize,spam\n")
    assert o.status == "ingested"


def test_missing_path_raises(env):
    cfg, catalog, _ = env
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest_paths(catalog, cfg, [Path("/nonexistent/file.csv")])


def test_load_role_gives_canonical_rows(env):
    cfg, catalog, _ = env
    _ingest_one(env, "sms_gold_dev.csv", GOOD_CSV)
    frame, ids = load_role(catalog, cfg, "gold_dev")
    assert list(frame.columns) == ["row_id", "snapshot_id", "text", "label"]
    assert frame["row_id"].is_unique and len(ids) == 1
    empty, none = load_role(catalog, cfg, "gold_test")
    assert empty.empty and none == []
