"""Shared test set-up: offline, quiet, and a tiny project folder per test."""

from __future__ import annotations

from driftloop.runtime import apply_defaults

apply_defaults()

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

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
    """A project folder with the demo config pointing its root at the folder itself."""
    data = yaml.safe_load((REPO / "configs" / "sms_spam.yaml").read_text())
    data["project"]["root"] = str(tmp_path)
    data["weak_label"]["lf_module"] = str(REPO / "configs" / "lfs" / "sms_spam.py")
    data["validation"]["raw_suite"] = str(REPO / "expectations" / "raw_batch.json")
    data["validation"]["train_suite"] = str(REPO / "expectations" / "training_set.json")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "data" / "incoming").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core box OpenMP spin-waits make them ~50x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
