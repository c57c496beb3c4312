from pathlib import Path

import pytest

from driftloop.config import apply_overrides, load_config
from driftloop.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "sms_spam.yaml"


def test_demo_config_loads_with_defaults_filled():
    cfg = load_config(DEMO)
    assert cfg.data.labels == ["ham", "spam"]
    assert cfg.clean.near_dup.threshold == 0.8
    assert len(cfg.config_hash) == 16


def test_override_sets_nested_field_with_yaml_types():
    cfg = load_config(DEMO, ["clean.min_chars=5", "clean.near_dup.enabled=false", "data.labels=[a, b, c]"])
    assert cfg.clean.min_chars == 5
    assert cfg.clean.near_dup.enabled is False
    assert cfg.data.labels == ["a", "b", "c"]


def test_hash_changes_with_config_and_is_stable():
    assert load_config(DEMO).config_hash == load_config(DEMO).config_hash
    assert load_config(DEMO).config_hash != load_config(DEMO, ["project.seed=7"]).config_hash


@pytest.mark.parametrize(
    "override, field",
    [
        ("clean.min_chars=-1", "clean.min_chars"),
        ("balance.strategy=smote", "balance.strategy"),
        ("clean.nonsense=1", "clean.nonsense"),
        ("data.labels=[spam]", "data.labels"),
        ("data.labels=[a, a]", "data.labels"),
        ("validation.max_duplicate_ratio=2", "validation.max_duplicate_ratio"),
    ],
)
def test_invalid_value_fails_at_load_naming_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(DEMO, [override])


@pytest.mark.parametrize(
    "overrides, fields",
    [
        (["clean.min_chars=50", "clean.max_chars=10"], "min_chars.*max_chars"),
        (["drift.max_rows=20", "drift.min_current_rows=50"], "max_rows.*min_current_rows"),
    ],
)
def test_min_above_max_is_rejected_naming_both_fields(overrides, fields):
    with pytest.raises(ConfigError, match=fields):
        load_config(DEMO, overrides)


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="a.b=value"):
        apply_overrides({}, ["no_equals_sign"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
