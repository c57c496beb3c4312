"""Cleaning: normalise texts, then drop empty, short, long, gold-overlapping and duplicate rows.

Everything runs on whole columns (polars / pyarrow string kernels, numpy arrays); the only Python
loops are over rules, never over rows. The MinHash/LSH near-duplicate engine is in ``tasks/near_dup.py``.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from driftloop.config import CleanConfig
from driftloop.tasks.near_dup import near_duplicates

#: The rules that drop rows, in the order they apply; a row is counted under the first rule that hits it.
DROP_RULES: tuple[str, ...] = (
    "empty",
    "too_short",
    "too_long",
    "overlaps_reference",
    "exact_duplicate",
    "near_duplicate",
)

# Markup whose content a reader never sees goes together with that content.
_HIDDEN_MARKUP = r"(?is)<!--.*?-->|<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>|<!doctype\b[^>]*>"
# Only real HTML element names count as tags, so SMS shorthand such as "<#>", "i <3 u" or "<name>" survives.
# Inline formatting tags vanish ("F<b>REE</b>" -> "FREE"); tags that break text flow become a space.
_INLINE_TAG_NAMES = (
    "a abbr acronym b bdi bdo big cite code del dfn em font i ins kbd mark nobr q s samp small span strike "
    "strong sub sup tt u var wbr"
)
_BREAKING_TAG_NAMES = (
    "address area article aside audio blockquote body br button canvas caption center col colgroup dd details "
    "dialog dir div dl dt embed fieldset figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head "
    "header hr html iframe img input legend li link main menu meta nav noscript object ol optgroup option p "
    "param picture pre script section select source style summary table tbody td template textarea tfoot th "
    "thead title tr track ul video"
)


def _tag_pattern(names: str) -> str:
    return r"(?i)</?(?:" + "|".join(names.split()) + r")(?:\s[^<>]*)?/?>"


_INLINE_TAGS = _tag_pattern(_INLINE_TAG_NAMES)
_BREAKING_TAGS = _tag_pattern(_BREAKING_TAG_NAMES)
# Entities need their ";": a bare "&amp" is too often plain text ("AT&T", "R&B") to guess at.
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
# Control (Cc) and format (Cf: zero-width space/joiners, BOM, bidi marks, soft hyphen) characters.
# Tab, newline and other whitespace controls are layout, left to the whitespace rule.
_INVISIBLE = r"[[\p{Cc}\p{Cf}]--\s]"
# Only runs that need changing match (two or more spaces, or any non-space whitespace): matching every
# single space, as r"\s+" does, makes the replacement ~4x slower on typical text.
_IRREGULAR_SPACE = r"\s{2,}|[\s--[ ]]"


# The report keeps the first few dropped texts of each rule, cut short: enough to judge a rule at a glance.
EXAMPLES_PER_RULE = 3
EXAMPLE_CHARS = 200


@dataclass
class CleanResult:
    """Rows kept by ``clean``, drop counts per rule and a JSON-able report."""

    frame: pd.DataFrame
    dropped: dict[str, int]
    report: dict[str, Any] = field(default_factory=dict)


def normalize_texts(texts: pd.Series, cfg: CleanConfig) -> pd.Series:
    """Apply the text transforms of ``cfg`` (no row filters); nulls stay null, index and name are kept."""
    label = str(texts.name) if texts.name is not None else "texts"
    cleaned = _normalize(_to_polars(texts, label), cfg)
    return pd.Series(cleaned.to_pandas().array, index=texts.index, name=texts.name)


def clean(
    frame: pd.DataFrame,
    cfg: CleanConfig,
    *,
    text_column: str = "text",
    reference_texts: pd.Series | None = None,
) -> CleanResult:
    """Normalise ``frame[text_column]`` and drop rows by the rules in ``DROP_RULES``.

    Args:
        frame: the rows to clean; never modified.
        cfg: the ``clean`` config section.
        text_column: the column holding the text.
        reference_texts: gold dev/test texts; pool rows whose normalised, case-folded text equals one
            of them are dropped as ``overlaps_reference`` so that gold rows cannot leak into training.

    Returns:
        Kept rows in input order, with their index and other columns as they were and the text
        replaced by the cleaned text; of duplicates, the first occurrence is kept.
    """
    if text_column not in frame.columns:
        raise KeyError(
            f"clean: text column {text_column!r} not found; available columns: {[str(c) for c in frame.columns]}"
        )
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with _timed(seconds, "normalize"):
        texts = _normalize(_to_polars(frame[text_column], text_column), cfg)
    # 0 = kept; otherwise 1 + the index of the dropping rule in DROP_RULES.
    reason = np.zeros(len(texts), dtype=np.int8)

    with _timed(seconds, "length_filters"):
        _drop_by_length(reason, texts, cfg)
    with _timed(seconds, "exact_dedup"):
        keys, alive = _drop_exact_copies(reason, texts, cfg, reference_texts)

    near_dup_report: dict[str, Any] = {"enabled": cfg.near_dup.enabled}
    if cfg.near_dup.enabled:
        with _timed(seconds, "near_dedup"):
            similar, near_dup_report = near_duplicates(keys, cfg.near_dup)
            _drop(reason, "near_duplicate", similar, alive)

    with _timed(seconds, "assemble"):
        kept = np.flatnonzero(reason == 0)
        out = frame.iloc[kept]
        out[text_column] = texts.gather(kept).to_pandas().array
    seconds["total"] = time.perf_counter() - started
    dropped, report = _report(frame[text_column], len(out), reason, near_dup_report, seconds)
    return CleanResult(frame=out, dropped=dropped, report=report)


def _drop_by_length(reason: np.ndarray, texts: pl.Series, cfg: CleanConfig) -> None:
    """Mark empty (or blank), too short and too long texts."""
    n_chars = texts.str.len_chars().fill_null(0).to_numpy()
    blank = n_chars == 0
    if not cfg.collapse_whitespace:
        blank |= texts.str.strip_chars().str.len_chars().fill_null(0).to_numpy() == 0
    _drop(reason, "empty", blank)
    _drop(reason, "too_short", n_chars < cfg.min_chars)
    _drop(reason, "too_long", n_chars > cfg.max_chars)


def _drop_exact_copies(
    reason: np.ndarray, texts: pl.Series, cfg: CleanConfig, reference_texts: pd.Series | None
) -> tuple[pl.Series, np.ndarray]:
    """Mark surviving texts equal (case-folded) to a reference text or to an earlier row.

    Returns the case-folded keys of the rows still kept and their positions, for the near-duplicate pass.
    """
    alive = np.flatnonzero(reason == 0)
    keys = fold_case(texts.gather(alive))
    if reference_texts is not None:
        reference_keys = fold_case(_normalize(_to_polars(reference_texts, "reference_texts"), cfg))
        overlaps = keys.is_in(reference_keys.drop_nulls().implode()).fill_null(False).to_numpy()
        _drop(reason, "overlaps_reference", overlaps, alive)
        keys, alive = keys.filter(pl.Series(~overlaps)), alive[~overlaps]
    if cfg.dedup_exact:
        repeated = ~keys.is_first_distinct().to_numpy()
        _drop(reason, "exact_duplicate", repeated, alive)
        keys, alive = keys.filter(pl.Series(~repeated)), alive[~repeated]
    return keys, alive


def _report(
    originals: pd.Series,
    rows_out: int,
    reason: np.ndarray,
    near_dup_report: dict[str, Any],
    seconds: dict[str, float],
) -> tuple[dict[str, int], dict[str, Any]]:
    """Drop counts per rule, and the report: row counts, a few dropped texts per rule, near-dup stats, timings."""
    counts = np.bincount(reason, minlength=len(DROP_RULES) + 1)
    dropped = {rule: int(counts[i + 1]) for i, rule in enumerate(DROP_RULES)}
    examples = {
        rule: [str(t)[:EXAMPLE_CHARS] for t in originals.iloc[np.flatnonzero(reason == i + 1)[:EXAMPLES_PER_RULE]]]
        for i, rule in enumerate(DROP_RULES)
        if counts[i + 1]
    }
    report = {
        "rows_in": len(originals),
        "rows_out": rows_out,
        "dropped": dropped,
        "examples": examples,  # a few dropped texts per rule, as they arrived: what a person checks first
        "near_dup": near_dup_report,
        "seconds": {stage: round(s, 4) for stage, s in seconds.items()},
    }
    return dropped, report


# ---- text transforms --------------------------------------------------------------------------


def _to_polars(texts: pd.Series, column: str) -> pl.Series:
    """The pandas column as a polars String series, or a TypeError naming the column."""
    try:
        array = pa.array(texts, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise TypeError(f"column {column!r} must hold strings (or nulls); converting it failed: {err}") from None
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if pa.types.is_null(array.type):
        array = array.cast(pa.large_string())
    if not (
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type)
    ):
        raise TypeError(f"column {column!r} must hold strings (or nulls), got dtype {texts.dtype}")
    return pl.Series(column, array)


def _normalize(texts: pl.Series, cfg: CleanConfig) -> pl.Series:
    if cfg.strip_html:
        texts = (
            texts.str.replace_all(_HIDDEN_MARKUP, " ")
            .str.replace_all(_BREAKING_TAGS, " ")
            .str.replace_all(_INLINE_TAGS, "")
        )
        # Tags go before entities are decoded, so an escaped "&lt;b&gt;" stays visible text.
        texts = _decode_entities(texts)
    if cfg.unicode_form != "none":
        texts = _unicode_normalize(texts, cfg.unicode_form)
    if cfg.remove_control_chars:
        texts = texts.str.replace_all(_INVISIBLE, "")
    if cfg.collapse_whitespace:
        texts = texts.str.replace_all(_IRREGULAR_SPACE, " ").str.strip_chars()
    return texts


def _decode_entities(texts: pl.Series) -> pl.Series:
    found = texts.str.extract_all(_ENTITY).explode().drop_nulls().unique()
    # html.unescape runs once per distinct entity spelling (a handful), not once per row.
    mapping = {entity: html.unescape(entity) for entity in found.to_list()}
    mapping = {entity: text for entity, text in mapping.items() if text != entity}
    return texts.str.replace_many(mapping) if mapping else texts


def _unicode_normalize(texts: pl.Series, form: str) -> pl.Series:
    # pyarrow's normaliser (utf8proc) is ~3x faster than polars' str.normalize on the same rows.
    return _on_non_ascii(
        texts, lambda subset: pl.Series(pc.utf8_normalize(subset.to_arrow(compat_level=pl.CompatLevel.oldest()), form))
    )


def _on_non_ascii(texts: pl.Series, transform: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """Apply ``transform`` to the rows that hold a non-ASCII character; pure-ASCII rows pass unchanged."""
    # Unicode normalisation and full case folding leave ASCII as it is, and SMS-like text is mostly ASCII.
    rows = (texts.str.len_bytes() != texts.str.len_chars()).fill_null(False).arg_true()
    if rows.len() == 0:
        return texts
    out = texts.clone()
    out.scatter(rows, transform(texts.gather(rows)))
    return out


@cache
def _casefold_extras() -> dict[str, str]:
    """Lower-case characters that full case folding still changes (e.g. 'ß' -> 'ss', 'ς' -> 'σ')."""
    extras: dict[str, str] = {}
    for code in range(0x110000):
        for char in chr(code).lower():
            if char.casefold() != char:
                extras[char] = char.casefold()
    return extras


def fold_case(texts: pl.Series) -> pl.Series:
    """Full Unicode case folding (as ``str.casefold``) of a whole column."""
    # polars only lower-cases; the ~180 characters where folding goes further are mapped after it.
    return _on_non_ascii(texts.str.to_lowercase(), lambda subset: subset.str.replace_many(_casefold_extras()))


def _drop(reason: np.ndarray, rule: str, hit: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Mark rows hit by ``rule`` that no earlier rule dropped; ``rows`` maps ``hit`` to row positions."""
    code = DROP_RULES.index(rule) + 1
    if rows is None:
        reason[(reason == 0) & hit] = code
    else:
        target = rows[hit]
        reason[target[reason[target] == 0]] = code


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[stage] = time.perf_counter() - start
