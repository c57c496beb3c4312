"""Keep README.md's configuration table generated from the config classes: ``python -m driftloop.docs``."""

from __future__ import annotations

import sys
from pathlib import Path

from driftloop.atomic import write_text
from driftloop.config import reference_markdown

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"
README = Path(__file__).resolve().parents[1] / "README.md"


def config_block(readme: str) -> str:
    """The text between the config-table markers."""
    if START not in readme or END not in readme:
        raise ValueError(f"README.md lacks the {START} / {END} markers")
    return readme.split(START, 1)[1].split(END, 1)[0].strip()


def render(readme: str) -> str:
    """``readme`` with the table between the markers regenerated."""
    before, rest = readme.split(START, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{reference_markdown()}\n{END}{after}"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    updated = render(text)
    if updated != text:
        write_text(README, updated)
        print(f"updated the configuration table in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
