"""Docs that match the code: the README's configuration table is the generated one."""

from __future__ import annotations

from driftloop.config import reference_markdown, reference_rows
from driftloop.docs import README, config_block
from driftloop.runtime import DEFAULT_ENV


def test_readme_config_table_is_current():
    assert config_block(README.read_text(encoding="utf-8")) == reference_markdown(), (
        "README.md's configuration table is stale: run `make docs`"
    )


def test_every_config_field_is_described():
    missing = [path for path, _, description in reference_rows() if not description.strip()]
    assert not missing, f"config fields without a description: {missing}"


def test_readme_lists_every_environment_default():
    readme = README.read_text(encoding="utf-8")
    missing = [name for name in DEFAULT_ENV if f"`{name}`" not in readme]
    assert not missing, f"README.md's Environment table lacks {missing}"
