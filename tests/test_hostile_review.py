"""Hostile or broken review files (issue 33, defects 3, 8 and 9): each is refused with a clear message and leaves
nothing behind, and nothing of it ever becomes pool data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftloop.catalog import Catalog
from driftloop.cli.main import app
from driftloop.config import load_config
from driftloop.tasks.landing import ingest_paths

BAD_FILES = {
    "not_tasks.json": (b"[1, 2]", "task 1 is not a Label Studio task"),
    "an_object.json": (b'{"data": {}}', "is a list of tasks"),
    "no_text.json": (
        json.dumps([{"data": {"text": 5}, "annotations": [{"result": [{"value": {"choices": ["spam"]}}]}]}]).encode(),
        "task 1 has no text",
    ),
    "latin1.csv": ("text,label\ncaf\xe9 now,spam\n".encode("latin-1"), "not UTF-8"),
    "unclosed.csv": (b'text,label\n"an unclosed quote,spam\nok,ham\n', "not a well-formed CSV"),
    "contradicts.csv": (b"text,label\nwin a prize,spam\nwin a prize,ham\nhello,ham\n", "two different labels"),
    "unknown_ids.csv": (b"text,label,row_id\nwin a prize,spam,deadbeef:3\nhello,ham,\n", "name no row"),
    "one_class.csv": (b"text,label\nwin a prize,spam\nclaim now,spam\n", "reviewed"),
}


@pytest.fixture
def env(project: Path):
    config = project / "configs" / "sms_spam.yaml"
    return config, Catalog.from_config(load_config(config))


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_review_file_is_refused_clearly_and_leaves_nothing_behind(env, tmp_path, name):
    config, catalog = env
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    out = CliRunner().invoke(app, ["review", "import", str(path), "--config", str(config)])
    assert out.exit_code == 2 and message in out.output, out.output
    assert "Traceback" not in out.output
    assert catalog.snapshots() == [] and not list(catalog.incoming_dir.glob("*"))
    assert ingest_paths(catalog, load_config(config)) == []  # nothing left for the next ingest to take as pool


def test_exact_repeats_are_kept_once(env, tmp_path):
    config, catalog = env
    path = tmp_path / "reviewed.csv"
    path.write_text("text,label\nwin a prize,spam\nwin a prize,spam\nhello there,ham\n")
    out = CliRunner().invoke(app, ["review", "import", str(path), "--config", str(config)])
    assert out.exit_code == 0, out.output
    (snap,) = catalog.snapshots("reviewed")
    assert snap.rows == 2 and not list(catalog.incoming_dir.glob("*"))
