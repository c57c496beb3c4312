"""Render report views to self-contained HTML with Jinja2 (inline CSS, inline SVG, one tiny inline script)."""

from __future__ import annotations

import base64
import math
from functools import cache
from typing import Any

import jinja2

from driftloop.tasks.report.compare import fmt_delta, fmt_value


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, jinja2.Undefined) or (isinstance(value, float) and math.isnan(value))


def _f3(value: Any, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: Any, digits: int = 1) -> str:
    return "–" if _missing(value) or not isinstance(value, int | float) else f"{value:.{digits}%}"


def _int(value: Any) -> str:
    if _missing(value):
        return "–"
    return f"{value:,.0f}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _signed(value: Any, digits: int = 3) -> str:
    if _missing(value) or not isinstance(value, int | float):
        return "–"
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    return f"{sign}{abs(value):.{digits}f}"


def _auto(value: Any) -> str:
    """Any scalar for a key/value table: floats to 4 significant digits, ints with separators."""
    if isinstance(value, bool) or _missing(value):
        return {True: "yes", False: "no"}.get(value, "–")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _when(value: Any) -> str:
    """2026-11-30T01:25:33+00:00 -> 2026-11-30 01:25 UTC."""
    text = str(value or "")
    if len(text) < 16 or "T" not in text:
        return text or "–"
    return text[:10] + " " + text[11:16] + (" UTC" if text.endswith(("+00:00", "Z")) else "")


def png_data_uri(data: bytes) -> str:
    """A PNG as a ``data:`` URI, so the report needs no file beside it."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("driftloop.tasks.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined,  # old summaries lack newer keys: render them as missing
    )
    env.filters.update(
        f3=_f3,
        pct=_pct,
        int=_int,
        signed=_signed,
        auto=_auto,
        fmt_value=fmt_value,
        fmt_delta=fmt_delta,
        label=lambda s: str(s).replace("_", " "),
        when=_when,
    )
    return env


def render(view: dict[str, Any]) -> str:
    """HTML of a view from ``build`` (``view['kind']``: run, index or drift)."""
    template = environment().get_template(f"{view['kind']}.html.j2")
    return template.render(view=view, v=view)
