"""Ingest: the data contract, quarantine, idempotence and immutability of raw snapshots."""

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from driftloop.catalog import Catalog
from driftloop.config import load_config
from driftloop.tasks.landing import ingest_paths, load_role


@pytest.fixture
def env(project: Path):
    cfg = load_config(project / "configs" / "sms_spam.yaml")
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
    real_open = os.open

    def deny_locked(path, *args, **kwargs):  # as root, chmod 000 would not stop the read
        if Path(path).name == "locked.csv":
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny_locked)
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


# ---- the bad-input catalogue (issue 10): each file is isolated with a reason that says what to do ----


def _quarantined(env, name, content, *overrides):
    cfg, catalog, incoming = env
    if overrides:
        cfg = load_config(catalog.root / "configs" / "sms_spam.yaml", list(overrides))
    path = incoming / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    (o,) = ingest_paths(catalog, cfg, [path])
    return o


def test_a_byte_order_mark_is_not_part_of_the_first_column(env):
    o = _ingest_one(env, "excel_gold_dev.csv", "\ufeff" + GOOD_CSV)
    assert o.status == "ingested" and o.role == "gold_dev"
    cfg, catalog, _ = env
    assert catalog.snapshots()[0].columns == ["text", "label"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("dup.csv", "text,text,label\na,b,ham\n", "['text'] appear more than once"),
        ("mixed.jsonl", '{"text": "hello"}\n{"text": 5}\n{"text": "FREE prize"}\n', "'text' holds int, str"),
        ("blank_gold_dev.csv", "text,label\nhello,ham\n   ,spam\nFREE,spam\n", "blank or missing text (data rows 2)"),
        ("null_gold_test.jsonl", '{"text": "a", "label": "ham"}\n{"text": null, "label": "spam"}\n', "data rows 2"),
    ],
)
def test_catalogue_of_bad_tables_is_quarantined(env, name, content, message):
    o = _quarantined(env, name, content)
    assert o.status == "quarantined" and message in o.reason, o.reason
    assert env[1].snapshots() == []


def test_duplicate_parquet_columns_are_refused(env):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg, catalog, incoming = env
    pq.write_table(pa.table([["a"], ["b"]], names=["text", "text"]), incoming / "dup.parquet")
    (o,) = ingest_paths(catalog, cfg, [incoming / "dup.parquet"])
    assert o.status == "quarantined" and "appear more than once" in o.reason


def test_mixed_types_can_be_cast_with_a_warning(env):
    o = _quarantined(env, "mixed.jsonl", '{"text": "hello"}\n{"text": 5}\n', "ingest.mixed_types=cast")
    assert o.status == "ingested" and "cast mixed-type column" in o.warning
    cfg, catalog, _ = env
    assert catalog.read_snapshot(catalog.snapshots()[0])["text"].tolist() == ["hello", "5"]


def test_role_patterns_match_case_insensitively(env):
    assert _ingest_one(env, "SMS_GOLD_DEV.CSV", GOOD_CSV).role == "gold_dev"


def test_a_240_byte_file_name_is_handled(env):
    name = "é" * 58 + "x" * 118 + "_gold_dev.csv"  # 116 + 118 + 13 = 247 bytes
    assert len(name.encode()) > 240
    assert _ingest_one(env, name, GOOD_CSV).status == "ingested"
    bad = _quarantined(env, "b" * 236 + ".csv", "text\n")
    assert bad.status == "quarantined" and "no rows" in bad.reason
    assert all(len(p.name.encode()) < 200 for p in env[1].quarantine_dir.iterdir())


def test_files_over_the_size_cap_are_quarantined_without_a_copy(env):
    o = _quarantined(env, "big.csv", "text\n" + "x" * 3000 + "\n", "ingest.max_file_mb=0.001")
    assert o.status == "quarantined" and "ingest.max_file_mb" in o.reason
    (reason,) = env[1].quarantine_dir.glob("*.reason.json")
    assert [p for p in env[1].quarantine_dir.iterdir() if p != reason] == []


def test_symlinks_out_of_the_landing_folder_are_refused_without_reading_them(env, tmp_path_factory):
    cfg, catalog, incoming = env
    secret = tmp_path_factory.mktemp("outside") / "secret.csv"
    secret.write_text("text\nTOP-SECRET-LINE\n")
    (incoming / "link.csv").symlink_to(secret)
    (incoming / "inside.csv").write_text(GOOD_CSV)
    (incoming / "inner_link.csv").symlink_to(incoming / "inside.csv")
    outcomes = {Path(o.source).name: o for o in ingest_paths(catalog, cfg)}
    assert outcomes["link.csv"].status == "quarantined" and "outside incoming/" in outcomes["link.csv"].reason
    # A link inside the folder is followed: same bytes, one snapshot.
    assert {outcomes["inside.csv"].status, outcomes["inner_link.csv"].status} == {"ingested", "already_ingested"}
    for p in catalog.quarantine_dir.iterdir():
        assert "TOP-SECRET" not in p.read_text()
    assert secret.read_text() == "text\nTOP-SECRET-LINE\n"


def test_any_unexpected_error_quarantines_that_file_only(env, monkeypatch):
    import driftloop.tasks.landing as ingestion

    cfg, catalog, incoming = env
    (incoming / "a_poison.csv").write_text(GOOD_CSV)
    (incoming / "b_pool.csv").write_text("text\nhello there\n")
    real = ingestion.read_table

    def explode(path, data_cfg, raw=None, limits=None):
        if path.name == "a_poison.csv":
            raise KeyError("a library bug")
        return real(path, data_cfg, raw, limits)

    monkeypatch.setattr(ingestion, "read_table", explode)
    poison, pool = ingest_paths(catalog, cfg)
    assert poison.status == "quarantined" and "KeyError" in poison.reason and "export it again" in poison.reason
    assert pool.status == "ingested"


def test_the_watcher_waits_for_a_file_to_settle_and_remembers_settled_files(env):
    cfg, catalog, incoming = env
    path = incoming / "pool.csv"
    path.write_text("text\nhello there\n")
    (o,) = ingest_paths(catalog, cfg, settle_s=60, wait=False, remember=True)
    assert o.status == "pending" and "ingest.stable_s" in o.reason and catalog.snapshots() == []
    old = path.stat().st_mtime - 120
    os.utime(path, (old, old))
    (o,) = ingest_paths(catalog, cfg, settle_s=60, wait=False, remember=True)
    assert o.status == "ingested"
    assert ingest_paths(catalog, cfg, settle_s=60, wait=False, remember=True) == []  # counted once, not re-read
    path.write_text("text\nhello there\nand more\n")
    os.utime(path, (old + 1, old + 1))
    (o,) = ingest_paths(catalog, cfg, settle_s=60, wait=False, remember=True)
    assert o.status == "ingested" and len(catalog.snapshots()) == 2
    # A quarantined file is not looked at again, until the data contract changes.
    (incoming / "mixed.jsonl").write_text('{"text": "hello"}\n{"text": 5}\n')
    os.utime(incoming / "mixed.jsonl", (old, old))
    assert [o.status for o in ingest_paths(catalog, cfg, settle_s=60, wait=False, remember=True)] == ["quarantined"]
    assert ingest_paths(catalog, cfg, settle_s=60, wait=False, remember=True) == []
    cast = load_config(catalog.root / "configs" / "sms_spam.yaml", ["ingest.mixed_types=cast"])
    retried = {
        Path(o.source).name: o.status for o in ingest_paths(catalog, cast, settle_s=60, wait=False, remember=True)
    }
    assert retried == {"mixed.jsonl": "ingested", "pool.csv": "already_ingested"}


def test_the_watcher_waits_only_for_the_rest_of_the_stability_interval(env):
    from driftloop.flows.retrain import _until_stable

    _, _, incoming = env
    fresh, old = incoming / "fresh.csv", incoming / "old.csv"
    for path in (fresh, old):
        path.write_text("text\nhello there\n")
    long_ago = old.stat().st_mtime - 120
    os.utime(old, (long_ago, long_ago))
    assert _until_stable([str(old)], 10.0) < 0.1  # written long ago, moved in just now: taken at once
    assert 9.0 < _until_stable([str(fresh)], 10.0) <= 10.05
    assert _until_stable([str(fresh), str(old)], 10.0) < 0.1  # the first to settle sets the next look
    assert _until_stable([], 10.0) == 0.0
