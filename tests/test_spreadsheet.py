"""Spreadsheet-safe CSVs (issue 33, defect 6): formula cells are escaped on export and restored on import."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from driftloop.spreadsheet import escape_cell, from_safe_csv, to_safe_csv, unescape_cell
from driftloop.tasks.review import read_reviewed

HOSTILE = [
    '=HYPERLINK("http://evil.example","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\tleading tab",
    "\rleading return",
    "'=already quoted",
    "''=twice quoted",
    "it's fine",
    "'plain quote",
    "",
    "win £100 now",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_text_round_trips_and_no_cell_starts_a_formula(text):
    escaped = escape_cell(text)
    assert unescape_cell(escaped) == text
    assert not str(escaped).startswith(("=", "+", "-", "@", "\t", "\r"))


def test_a_reviewed_csv_round_trips_exactly(tmp_path):
    texts = [t for t in HOSTILE if t]  # a labelled row needs a text
    queue = pd.DataFrame({"text": texts, "label": ["spam"] * len(texts), "n": range(len(texts))})
    written = to_safe_csv(queue)
    cells = pd.read_csv(io.StringIO(written), dtype=str, keep_default_na=False)["text"]
    assert not cells.str.match(r"^[=+\-@\t\r]").any()  # what a spreadsheet would see
    assert from_safe_csv(pd.read_csv(io.StringIO(written), dtype=str, keep_default_na=False))["text"].tolist() == texts
    path = tmp_path / "review_queue.csv"
    path.write_text(written, encoding="utf-8")
    assert read_reviewed(path, ["ham", "spam"])["text"].tolist() == texts
