"""`driftloop rollback` and the append-only promotion log."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from driftloop.catalog import Catalog
from driftloop.config import PromotionConfig, load_config
from driftloop.errors import RegistryError
from driftloop.tasks.registry import AUTO_ACTOR, Registry


def _metrics(macro: float) -> dict:
    return {"macro_f1": macro, "per_class_f1": {"ham": macro, "spam": macro}}


def _two_champions(models):
    registry = Registry(models)
    for version, macro in (("v1", 0.80), ("v2", 0.90)):
        (models / version).mkdir(parents=True)
        registry.register_and_promote(version, models / version, _metrics(macro), PromotionConfig())
    return registry


def test_promotions_are_logged_append_only_with_actor_and_reason(tmp_path):
    registry = _two_champions(tmp_path)
    first_bytes = registry.log_path.read_bytes()
    log = registry.promotion_log()
    assert [(e["champion"], e["previous"], e["kind"]) for e in log] == [
        ("v1", None, "promote"),
        ("v2", "v1", "promote"),
    ]
    assert all(e["actor"] == AUTO_ACTOR and e["reason"] for e in log)
    registry.rollback(actor="alice@host", reason="spam recall fell")
    # Append-only: earlier lines are byte-identical; one new line.
    assert registry.log_path.read_bytes().startswith(first_bytes)
    last = registry.promotion_log()[-1]
    assert last == {**last, "kind": "rollback", "champion": "v1", "previous": "v2", "actor": "alice@host"}
    assert "spam recall fell" in last["reason"]


def test_rollback_defaults_to_the_previous_champion_and_archives_the_current(tmp_path):
    registry = _two_champions(tmp_path)
    decision = registry.rollback()
    assert decision.champion_before == "v2" and decision.champion_after == "v1"
    assert registry.champion().version == "v1" and registry.get("v2").status == "archived"
    # The registry's own audit trail has it too.
    assert registry.decisions()[-1]["reason"].startswith("rollback from v2")


def test_rollback_refuses_what_it_cannot_do(tmp_path):
    registry = Registry(tmp_path)
    with pytest.raises(RegistryError, match="no champion yet"):
        registry.rollback()
    registry = _two_champions(tmp_path)
    with pytest.raises(RegistryError, match="already the champion"):
        registry.rollback("v2")
    with pytest.raises(RegistryError, match="not registered"):
        registry.rollback("v9")
    (tmp_path / "v1").rmdir()
    with pytest.raises(RegistryError, match="model folder"):
        registry.rollback("v1")
    assert registry.champion().version == "v2"  # nothing changed
    assert len(registry.promotion_log()) == 2


def test_a_torn_last_log_line_is_skipped_and_never_swallows_the_next_entry(tmp_path, caplog):
    registry = _two_champions(tmp_path)
    with open(registry.log_path, "a", encoding="utf-8") as fh:
        fh.write('{"at": "2026-01-01", "kind": "promo')  # a crash mid-write
    assert len(registry.promotion_log()) == 2
    assert "line 3 is torn" in caplog.text
    registry.rollback("v1", reason="after the crash")  # appended after the torn line, on a line of its own
    log = registry.promotion_log()
    assert len(log) == 3 and log[-1]["kind"] == "rollback" and log[-1]["champion"] == "v1"
    assert "ends in a torn line" in caplog.text


def test_rollback_command(project):
    from driftloop.cli.main import app

    config = next(p for p in (project / "configs" / "sms_spam.yaml", project / "config.yaml") if p.exists())
    registry = _two_champions(Catalog.from_config(load_config(config)).models_dir)
    result = CliRunner().invoke(app, ["rollback", "--reason", "bad batch", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "v2 -> v1" in result.output and registry.champion().version == "v1"
    entry = json.loads(registry.log_path.read_text().splitlines()[-1])
    assert "driftloop rollback" in entry["actor"] and "bad batch" in entry["reason"]
    again = CliRunner().invoke(app, ["rollback", "v1", "-c", str(config)])
    assert again.exit_code == 1 and "already the champion" in again.output


def test_a_failed_promotion_log_append_leaves_the_registry_unchanged(tmp_path, monkeypatch):
    """Issue 33, defect 11: registry.json was replaced before the log append, so a full disk left a champion that the
    run called failed. Now the log is written ahead: the append fails first and nothing changes."""
    registry = _two_champions(tmp_path)
    before = registry.path.read_bytes()

    def disk_full(self, entries):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Registry, "_append_log", disk_full)
    with pytest.raises(OSError, match="No space"):
        registry.rollback("v1", reason="disk full")
    assert registry.path.read_bytes() == before and registry.champion().version == "v2"


def test_a_log_entry_whose_registry_write_failed_is_never_counted(tmp_path, monkeypatch):
    import driftloop.tasks.registry as registry_module

    registry = _two_champions(tmp_path)

    def crash(path, data):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(registry_module, "write_json", crash)
    with pytest.raises(OSError):
        registry.rollback("v1", reason="crash after the log append")
    monkeypatch.undo()
    assert registry.champion().version == "v2" and len(registry.promotion_log()) == 2  # the intent is not counted
    registry.rollback("v1", reason="again")
    assert [e["champion"] for e in registry.promotion_log()][-1] == "v1" and len(registry.promotion_log()) == 3
