"""`make docs` for real: MkDocs builds docs/ into a static site offline, and Chromium opens its pages from file://."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return out


def test_every_page_is_built_and_nothing_is_fetched_from_outside(site: Path):
    pages = {p.stem for p in (REPO / "docs").glob("*.md")}
    assert pages <= {p.stem for p in site.glob("*.html")}
    for page in site.glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "fonts.googleapis" not in html and "unpkg.com" not in html, page.name


@pytest.mark.parametrize("page", ["index", "results", "configuration", "service"])
def test_pages_render_in_a_real_browser(browser, site: Path, page: str, tmp_path: Path):
    visit = browser.visit(site / f"{page}.html", screenshot=tmp_path / f"{page}.png")
    assert visit.outside_requests == [] and visit.page_errors == [], (visit.outside_requests, visit.page_errors)
    assert (tmp_path / f"{page}.png").stat().st_size > 10_000
