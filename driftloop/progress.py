"""One progress line for every long step: done of total, rate and time left, every few seconds.

A step that finishes within ``first_after_s`` prints nothing, so short steps stay quiet; a long one
logs a line such as ``paraphrase: 96/128 rows (75%), 3.1 rows/s, 10 s left`` at most every
``every_s`` seconds, and one closing line. Lines go through the ``driftloop`` logger, which the
pipeline lets through to Prefect's run logs and the terminal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("driftloop.progress")


def duration(seconds: float) -> str:
    """Seconds as a person reads them: 42 s, 3.5 min, 1.2 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Counts work done on one step and logs it now and then.

    Args:
        step: the step's name, first on every line.
        total: how much work there is, in ``unit``s.
        unit: what is counted (rows, steps, texts).
        every_s: seconds between two lines.
        first_after_s: no line before this many seconds have passed.
    """

    def __init__(
        self, step: str, total: int, unit: str = "rows", *, every_s: float = 5.0, first_after_s: float = 3.0
    ) -> None:
        self.step, self.total, self.unit = step, max(int(total), 0), unit
        self.every_s, self.first_after_s = every_s, first_after_s
        self.done = 0
        self.started = time.perf_counter()
        self._last = self.started
        self._spoke = False

    def line(self, now: float | None = None) -> str:
        """The progress line as it reads now."""
        elapsed = max((now or time.perf_counter()) - self.started, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        left = ""
        if rate > 0 and self.total > self.done:
            left = f", {duration((self.total - self.done) / rate)} left"
        return f"{self.step}: {self.done:,}/{self.total:,} {self.unit}{share}, {rate:,.1f} {self.unit}/s{left}"

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units; log a line when one is due."""
        self.done += n
        now = time.perf_counter()
        if now - self.started >= self.first_after_s and now - self._last >= self.every_s:
            self._last = now
            self._spoke = True
            log.info(self.line(now))

    def close(self) -> None:
        """A closing line, only for a step that logged progress on the way."""
        if self._spoke:
            elapsed = time.perf_counter() - self.started
            log.info("%s: %s %s done in %s", self.step, f"{self.done:,}", self.unit, duration(elapsed))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], step: str, total: int, unit: str = "rows", *, size=len) -> Iterator[T]:
    """Yield ``items``, counting ``size(item)`` units of progress for each (batches count their rows)."""
    with Progress(step, total, unit) as progress:
        for item in items:
            yield item
            progress.advance(size(item))
