"""Docs that match the code: docs/configuration.md is the generated page."""

from __future__ import annotations

from driftloop.config import reference_rows
from driftloop.docs import ENV_WHY, PAGE, render
from driftloop.runtime import DEFAULT_ENV


def test_configuration_page_is_current():
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run `python -m driftloop.docs` (or `make docs`)"
    )


def test_every_config_field_is_described():
    missing = [path for path, _, description in reference_rows() if not description.strip()]
    assert not missing, f"config fields without a description: {missing}"


def test_every_environment_default_is_explained_on_the_configuration_page():
    assert set(ENV_WHY) == set(DEFAULT_ENV), "driftloop/docs.py's ENV_WHY and driftloop.runtime.DEFAULT_ENV differ"
    page = PAGE.read_text(encoding="utf-8")
    missing = [name for name in DEFAULT_ENV if f"`{name}`" not in page]
    assert not missing, f"docs/configuration.md's Environment table lacks {missing}"
