"""Open a local HTML page in headless Chromium (Debian's, driven by Playwright) and record what a reader gets.

Used by the report tests and by ``bench/bench_report.py``. No browser download: Playwright drives the
system ``chromium`` (``make system-deps`` installs it).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path


def chromium_path() -> str | None:
    """The Chromium binary to drive: $DRIFTLOOP_CHROMIUM, else chromium or chromium-browser on the PATH."""
    found = os.environ.get("DRIFTLOOP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


@dataclass
class PageVisit:
    """What one page load did: every request, console errors, uncaught exceptions, and what is on screen."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    verdict_in_first_viewport: bool = False
    verdict_text: str = ""
    section_ids: list[str] = field(default_factory=list)
    load_s: float = 0.0
    horizontal_overflow: bool = False
    sorted_ok: bool | None = None

    @property
    def outside_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "about:"))]


class Browser:
    """One headless Chromium for several page visits (start-up is the slow part)."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        executable = chromium_path()
        if executable is None:
            raise RuntimeError("no chromium binary: apt-get install chromium (make system-deps)")
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage", "--disable-gpu"],
        )

    def visit(
        self,
        path: Path,
        *,
        width: int = 1280,
        height: int = 800,
        dark: bool = False,
        screenshot: Path | None = None,
        full_page: bool = False,
        try_sort: bool = False,
    ) -> PageVisit:
        visit = PageVisit()
        context = self._browser.new_context(
            viewport={"width": width, "height": height}, color_scheme="dark" if dark else "light"
        )
        page = context.new_page()
        page.on("request", lambda r: visit.requests.append(r.url))
        page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
        start = time.perf_counter()
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        visit.load_s = time.perf_counter() - start
        box = page.locator("#verdict").bounding_box() if page.locator("#verdict").count() else None
        visit.verdict_in_first_viewport = bool(box and box["y"] >= 0 and box["y"] + box["height"] <= height)
        visit.verdict_text = page.locator("#verdict").inner_text() if box else ""
        visit.section_ids = page.eval_on_selector_all("section[id]", "els => els.map(e => e.id)")
        visit.horizontal_overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
        if try_sort:
            visit.sorted_ok = _check_sort(page)
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=full_page)
        context.close()
        return visit

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_sort(page) -> bool:
    """Click the first numeric column of the first sortable table with 3+ rows; check the order flips."""
    return page.evaluate(
        """() => {
      for (const table of document.querySelectorAll('table.sortable')) {
        const rows = table.tBodies[0].rows;
        if (rows.length < 3) continue;
        const heads = table.querySelectorAll('th');
        for (let c = 0; c < heads.length; c++) {
          const vals = () => Array.from(table.tBodies[0].rows).map(r => parseFloat((r.cells[c].getAttribute('data-v') || r.cells[c].textContent).replace(/[,%+]/g, '')));
          if (vals().some(isNaN)) continue;
          heads[c].click();
          const up = vals();
          heads[c].click();
          const down = vals();
          const asc = up.every((v, i) => i === 0 || up[i - 1] <= v);
          const desc = down.every((v, i) => i === 0 || down[i - 1] >= v);
          return asc && desc;
        }
      }
      return null;
    }"""
    )
