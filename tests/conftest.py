"""Shared test set-up: offline, quiet, and a tiny project folder per test."""

from __future__ import annotations

from driftloop.runtime import apply_defaults

apply_defaults()

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from driftloop.packaged import init_project  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A demo project folder as `driftloop init` writes it: configs/sms_spam.yaml, its LF module, data/incoming/.

    The config is the packaged demo config, unedited: its relative paths resolve against its own folder.
    """
    init_project(tmp_path)
    return tmp_path


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core box OpenMP spin-waits make them ~50x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
