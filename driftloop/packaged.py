"""Files that ship inside the driftloop package: the GX suites and the demo project's config.

In a checkout they are the repository's ``expectations/`` and ``configs/`` folders; in an installed
wheel they are the package data of ``driftloop.expectations`` and ``driftloop.configs``. Both are
reached through :mod:`importlib.resources`, so the same code finds them either way.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from driftloop.atomic import write_bytes
from driftloop.errors import ConfigError, ResourceError

SUITES_PACKAGE = "driftloop.expectations"
CONFIGS_PACKAGE = "driftloop.configs"
DEMO_CONFIG = "configs/sms_spam.yaml"
# The project as `driftloop init` writes it (the demo and the second dataset, each a config and its LF module):
# path in the project -> file in driftloop.configs.
DEMO_FILES: dict[str, str] = {
    DEMO_CONFIG: "sms_spam.yaml",
    "configs/lfs/sms_spam.py": "lfs/sms_spam.py",
    "configs/bbc_news.yaml": "bbc_news.yaml",
    "configs/lfs/bbc_news.py": "lfs/bbc_news.py",
}


def _packaged_file(package: str, name: str) -> Path:
    resource = files(package).joinpath(*name.split("/"))
    # A zipped install has no real path; every supported install (wheel, editable, checkout) has one.
    if not isinstance(resource, Path):
        raise ResourceError(
            f"{package}/{name} is not a file on disk ({type(resource).__name__}); install driftloop from its "
            f"wheel or source with pip (not as a zip archive)"
        )
    if not resource.is_file():
        raise ResourceError(
            f"{package}/{name} is missing from the installed driftloop; reinstall it with "
            f"pip install --force-reinstall driftloop"
        )
    return resource


def packaged_suite(name: str) -> Path:
    """Path of a GX suite packaged with driftloop: ``packaged_suite("raw_batch")`` -> .../raw_batch.json."""
    return _packaged_file(SUITES_PACKAGE, f"{name}.json")


def init_project(folder: str | Path) -> list[Path]:
    """Copy the packaged configs and their LF modules into ``folder``/configs/; returns the files written.

    Refuses to overwrite: an existing file is the user's, so nothing is written when any target exists.
    """
    folder = Path(folder)
    targets = {folder / target: _packaged_file(CONFIGS_PACKAGE, source) for target, source in DEMO_FILES.items()}
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise ConfigError(f"{', '.join(existing)} already exist; move them away or run `driftloop init` elsewhere")
    for target, source in targets.items():
        write_bytes(target, source.read_bytes())
    (folder / "data" / "incoming").mkdir(parents=True, exist_ok=True)
    return list(targets)
