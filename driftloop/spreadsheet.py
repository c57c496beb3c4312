"""CSV files meant for people are opened in spreadsheets: a cell that starts with ``= + - @``, a tab or a carriage
return runs there as a formula (``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``). Such cells get a leading ``'``, the
OWASP rule, and the import takes it off again, so every text round-trips exactly.
"""

from __future__ import annotations

import csv

import pandas as pd

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _needs_quote(text: str) -> bool:
    # A text that already starts with quotes before a formula character gets one more, so that unescaping
    # takes off exactly the one this module added.
    return text.startswith(_FORMULA_STARTS) or (text.startswith("'") and _needs_quote(text[1:]))


def escape_cell(value: object) -> object:
    """``value`` safe for a spreadsheet cell; anything that is not a string is returned as it is."""
    return "'" + value if isinstance(value, str) and _needs_quote(value) else value


def unescape_cell(value: object) -> object:
    """Undo :func:`escape_cell`: ``unescape_cell(escape_cell(t)) == t`` for every string ``t``."""
    if isinstance(value, str) and value.startswith("'") and _needs_quote(value[1:]):
        return value[1:]
    return value


def to_safe_csv(frame: pd.DataFrame) -> str:
    """The table as CSV text with every string cell escaped."""
    text_columns = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    # Every field quoted: a bare carriage return inside a cell would otherwise end the row for a reader.
    return frame.assign(**{c: frame[c].map(escape_cell) for c in text_columns}).to_csv(
        index=False, quoting=csv.QUOTE_ALL
    )


def from_safe_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """A table read from a CSV written by :func:`to_safe_csv` (or edited in a spreadsheet), escapes undone."""
    text_columns = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    return frame.assign(**{c: frame[c].map(unescape_cell) for c in text_columns})
