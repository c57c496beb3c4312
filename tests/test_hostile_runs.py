"""Hostile or broken run folders (issue 33, defect 12): a path for a run id, an empty or corrupt summary.json.

Every reader answers with a clear error or skips the broken run with a warning; none ends in a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftloop.catalog import Catalog
from driftloop.cli.main import app
from driftloop.config import load_config
from driftloop.errors import InputError
from tests.summaries import summary_dict


def _catalog(project: Path) -> tuple[Path, Catalog]:
    config = project / "configs" / "sms_spam.yaml"
    return config, Catalog.from_config(load_config(config))


@pytest.mark.parametrize("run_id", ["../runs/R1", "R1/..", "..", "a/b", ""])
def test_a_path_is_never_a_run_id(project, run_id):
    config, catalog = _catalog(project)
    with pytest.raises(InputError, match="is not a run id"):
        catalog.run_dir(run_id)
    out = CliRunner().invoke(app, ["review", "export", "--run", run_id, "--config", str(config)])
    assert out.exit_code == 2 and "is not a run id" in out.output, out.output


@pytest.mark.parametrize("content", ["", "{", "[1, 2]", "\xff\xfe"])
def test_an_empty_or_corrupt_summary_is_skipped_by_every_reader(project, content, caplog):
    config, catalog = _catalog(project)
    good = catalog.runs_dir / "20260101T000000Z-good"
    good.mkdir(parents=True)
    (good / "summary.json").write_text(json.dumps(summary_dict(good.name)))
    broken = catalog.runs_dir / "20260102T000000Z-broken"
    broken.mkdir()
    (broken / "summary.json").write_bytes(content.encode("latin-1"))
    assert [s.run_id for s in catalog.run_summaries()] == [good.name]
    assert catalog.latest_run().run_id == good.name and "skipping" in caplog.text
    assert catalog.run_summary(broken.name) is None
    # The retrain gate, review export and export read the summaries too.
    from driftloop.flows.retrain import current_plan

    assert current_plan(load_config(config), datetime.now(UTC)) is not None
    for args in (["review", "export", "--run", broken.name], ["export", "-o", str(project / "out"), broken.name]):
        out = CliRunner().invoke(app, [*args, "--config", str(config)])
        assert out.exit_code == 2 and "Traceback" not in out.output and broken.name in out.output, out.output
    shown = CliRunner().invoke(app, ["summary", str(broken), "--config", str(config)])
    assert shown.exit_code == 2 and (
        "not a readable run summary" in shown.output or "not a run summary" in shown.output
    )


def test_a_csv_with_one_two_mib_cell_is_read_whole(project, tmp_path):
    """Issue 33, defect 12: a cell longer than pyarrow's 1 MiB block was quarantined as 'straddling object'."""
    from driftloop.catalog import read_table

    config, _ = _catalog(project)
    cfg = load_config(config, ["ingest.max_file_mb=10"])
    big = "x" * (2 * 2**20)
    path = tmp_path / "pool.csv"
    path.write_text(f'text\n"short one"\n"{big}"\nlast\n', encoding="utf-8")
    frame = read_table(path, cfg.data)
    assert frame["text"].tolist() == ["short one", big, "last"]
