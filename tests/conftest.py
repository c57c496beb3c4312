"""Shared test set-up: offline, quiet, and a tiny project folder per test."""

from __future__ import annotations

from driftloop.runtime import apply_defaults

apply_defaults()

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from driftloop.packaged import init_project  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


# Markers name what a test needs beyond this process (pyproject.toml); `make test` deselects them all. A test
# that asks for one of these fixtures needs what the marker says, whether or not it is marked by hand.
FIXTURE_NEEDS = {"prefect_harness": pytest.mark.server, "browser": pytest.mark.browser}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the markers added here count
def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture, marker in FIXTURE_NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
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


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (SQLite) for every test of the session that runs a flow; started on first use."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's, driven by Playwright) for every page the session looks at."""
    pytest.importorskip("playwright", reason="pip install -e '.[dev]' installs playwright")
    from tests.browser import Browser, chromium_path

    if chromium_path() is None:
        pytest.skip("no chromium: make system-deps installs Debian's chromium")
    with Browser() as b:
        yield b


@pytest.fixture(autouse=True)
def _no_hidden_prefect_server(request):
    """A test not marked ``server`` must not start one: Prefect's API points at a closed port, so it fails at once.

    Without this, a flow run or an artifact outside a run would quietly start an ephemeral server (seconds each).
    """
    if request.node.get_closest_marker("server") or "prefect_harness" in request.fixturenames:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        yield


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
