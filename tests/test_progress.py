"""The progress line every long step prints: done of total, rate, time left; quiet for short steps."""

from __future__ import annotations

import logging

from driftloop.progress import Progress, duration, track


def test_a_long_step_logs_done_rate_and_time_left(caplog) -> None:
    caplog.set_level(logging.INFO, logger="driftloop.progress")
    with Progress("paraphrase", 128, "candidates", every_s=0.0, first_after_s=0.0) as progress:
        progress.advance(32)
    first, closing = [r.getMessage() for r in caplog.records]
    assert first.startswith("paraphrase: 32/128 candidates (25%), ") and " candidates/s, " in first
    assert first.endswith(" left")
    assert closing.startswith("paraphrase: 32 candidates done in ")


def test_a_short_step_prints_nothing(caplog) -> None:
    caplog.set_level(logging.INFO, logger="driftloop.progress")
    assert list(track([[1, 2], [3]], "predict", 3, "texts")) == [[1, 2], [3]]
    assert caplog.records == []


def test_durations_read_as_a_person_would() -> None:
    assert [duration(s) for s in (42, 210, 7200)] == ["42 s", "3.5 min", "2.0 h"]
