"""Each shared helper exists once: a second copy of these idioms anywhere in the tree fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("driftloop", "tasks", "flows", "deployments", "bench")

# idiom -> the one file allowed to hold it (and what to call instead)
HELPERS = {
    "/proc/cpuinfo": "driftloop/hardware.py",  # native bf16 detection: hardware.native_bf16
    "is_bf16_supported": "driftloop/hardware.py",
    "tempfile.mkdtemp(": "driftloop/atomic.py",  # folder publish: atomic.atomic_dir
    "mask.sum(1)": "tasks/embed.py",  # mean pooling: embed.mean_pool
    '"sentence-transformers/all-MiniLM-L6-v2"': "driftloop/resources.py",  # aliases: resources.hub_name
    '"cuda" if torch.cuda.is_available()': None,  # device choice: hardware.choose_device
    "import matplotlib.pyplot": None,  # figures: tasks/plots.py (Figure objects, no pyplot state)
}


def _sources() -> dict[str, str]:
    files = [p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py")]
    return {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in files}


@pytest.mark.parametrize("idiom", sorted(HELPERS))
def test_a_shared_helper_is_written_once(idiom):
    holders = sorted(name for name, text in _sources().items() if idiom in text)
    allowed = [HELPERS[idiom]] if HELPERS[idiom] else []
    assert holders == allowed, f"{idiom!r} appears in {holders}; use the helper in {allowed or 'driftloop'}"
