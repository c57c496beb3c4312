"""Docs that match the code: the README's configuration table is the generated one."""

from __future__ import annotations

from driftloop.config import reference_markdown, reference_rows
from driftloop.docs import README, config_block


def test_readme_config_table_is_current():
    assert config_block(README.read_text(encoding="utf-8")) == reference_markdown(), (
        "README.md's configuration table is stale: run `make docs`"
    )


def test_every_config_field_is_described():
    missing = [path for path, _, description in reference_rows() if not description.strip()]
    assert not missing, f"config fields without a description: {missing}"
