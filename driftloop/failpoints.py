"""Named points where a fault test can freeze a real process, so that it can be killed exactly there.

Set ``DRIFTLOOP_FAILPOINT=<name>`` (and optionally ``DRIFTLOOP_FAILPOINT_MARKER=<file>``) in a child
process's environment: when the process reaches that point it writes the marker file and sleeps,
waiting for the test to SIGKILL it. Unset (always, outside tests), a failpoint is one dict lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV_NAME = "DRIFTLOOP_FAILPOINT"
ENV_MARKER = "DRIFTLOOP_FAILPOINT_MARKER"


def failpoint(name: str) -> None:
    """Hang here (after writing the marker file) when this failpoint is armed; otherwise return at once."""
    if os.environ.get(ENV_NAME) != name:
        return
    marker = os.environ.get(ENV_MARKER)
    if marker:
        Path(marker).write_text(f"{os.getpid()}\n")
    while True:  # wait for SIGKILL; a bounded test kills us long before this matters
        time.sleep(1)
