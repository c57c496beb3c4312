"""Config paths resolve against the config file's folder; packaged suites and the demo project; neutral defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from driftloop.config import EdaConfig, ParaphraseConfig, from_dict, load_config
from driftloop.errors import ConfigError
from driftloop.packaged import init_project, packaged_suite

REPO = Path(__file__).resolve().parents[1]


def write_config(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def minimal(**sections) -> dict:
    return {"data": {"labels": ["a", "b"]}, "weak_label": {"lf_module": "lfs/x.py"}, **sections}


def test_relative_paths_resolve_against_the_config_folder_not_the_working_dir(tmp_path, monkeypatch):
    path = write_config(
        tmp_path / "proj" / "configs",
        minimal(
            project={"root": ".."},
            validation={"raw_suite": "suites/raw.json", "train_suite": "/abs/train.json"},
            augment={"cache_dir": "../cache", "paraphrase": {"model": "./models/para"}},
            train={"model": "org/hub-model"},
        ),
    )
    monkeypatch.chdir(tmp_path)  # elsewhere: nothing may depend on it
    cfg = load_config(path)
    configs = (tmp_path / "proj" / "configs").resolve()
    assert cfg.root == configs.parent
    assert cfg.weak_label.lf_module == str(configs / "lfs" / "x.py")
    assert cfg.validation.raw_suite == configs / "suites" / "raw.json"
    assert cfg.validation.train_suite == Path("/abs/train.json")
    assert cfg.augment.cache_dir == configs.parent / "cache"
    assert cfg.augment.paraphrase.model == str(configs / "models" / "para")
    assert cfg.train.model == "org/hub-model"  # a name, not a path
    assert cfg.augment.back_translation.forward_model == "Helsinki-NLP/opus-mt-en-es"


def test_overrides_follow_the_same_rule_and_dotted_lf_modules_stay_names(tmp_path, monkeypatch):
    path = write_config(tmp_path / "c", minimal())
    monkeypatch.chdir(tmp_path)
    cfg = load_config(path, ["project.root=elsewhere", "weak_label.lf_module=my_pkg.lfs"])
    assert cfg.root == (tmp_path / "c" / "elsewhere").resolve()
    assert cfg.weak_label.lf_module == "my_pkg.lfs"
    # Default root: the config's own folder.
    assert load_config(path).root == (tmp_path / "c").resolve()


def test_a_bad_path_value_names_the_field(tmp_path):
    path = write_config(tmp_path, minimal(project={"root": ["not", "a", "path"]}))
    with pytest.raises(ConfigError, match="project.root"):
        load_config(path)


def test_from_dict_resolves_only_with_a_base_dir(tmp_path):
    data = minimal(project={"root": "r"})
    assert from_dict(data).root == Path("r")
    assert from_dict(data, base_dir=tmp_path).root == (tmp_path / "r").resolve()


def test_suites_default_to_the_packaged_ones():
    cfg = from_dict(minimal())
    assert cfg.validation.raw_suite == packaged_suite("raw_batch")
    assert cfg.validation.train_suite == packaged_suite("training_set")
    assert json.loads(cfg.validation.raw_suite.read_text())["name"] == "raw_batch"
    # An explicit null in YAML is the packaged suite too.
    assert from_dict(minimal(validation={"raw_suite": None})).validation.raw_suite == packaged_suite("raw_batch")


def test_demo_config_means_the_same_from_any_working_dir(tmp_path, monkeypatch):
    here = load_config(REPO / "configs" / "sms_spam.yaml")
    monkeypatch.chdir(tmp_path)
    there = load_config(REPO / "configs" / "sms_spam.yaml")
    assert here.resolved() == there.resolved()
    assert there.root == REPO
    assert Path(there.weak_label.lf_module) == REPO / "configs" / "lfs" / "sms_spam.py"


def test_project_fixture_is_the_unedited_demo_config(project):
    config = project / "configs" / "sms_spam.yaml"
    assert config.read_bytes() == (REPO / "configs" / "sms_spam.yaml").read_bytes()
    cfg = load_config(config)
    assert cfg.root == project.resolve()
    assert Path(cfg.weak_label.lf_module).is_file()
    assert (project / "data" / "incoming").is_dir()
    second = load_config(project / "configs" / "bbc_news.yaml")  # init writes the second dataset's project too
    assert second.root == project.resolve() and Path(second.weak_label.lf_module).is_file()


def test_init_refuses_to_overwrite(tmp_path):
    init_project(tmp_path)
    lf_file = tmp_path / "configs" / "lfs" / "sms_spam.py"
    lf_file.write_text("LFS = []  # the user's edit\n")
    with pytest.raises(ConfigError, match="already exist"):
        init_project(tmp_path)
    assert lf_file.read_text() == "LFS = []  # the user's edit\n"


def test_summary_reads_runs_under_project_root(project, tmp_path, monkeypatch):
    from driftloop.cli.main import app
    from tests.summaries import summary_dict

    for run_id, status in (("20240101-000000-aaaa", "failed"), ("20240102-000000-bbbb", "succeeded")):
        run_dir = project / "runs" / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps(summary_dict(run_id, status=status)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(app, ["summary", "--config", str(project / "configs" / "sms_spam.yaml")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["run_id"] == "20240102-000000-bbbb"
    empty = CliRunner().invoke(
        app, ["summary", "--config", str(project / "configs" / "sms_spam.yaml"), "--set", "project.root=../nowhere"]
    )
    assert empty.exit_code == 2 and "no run with a summary.json" in empty.output


def test_augment_defaults_are_dataset_agnostic_and_the_demo_keeps_its_sms_ones():
    sms_words = {"u", "ur", "txt", "msg", "lol", "plz"}
    para, eda = ParaphraseConfig(), EdaConfig()
    assert "message" not in para.instruction.lower()
    shown = " ".join(f"{e.source} {e.rewrite}" for e in para.examples).lower()
    assert not any(word in shown.split() for word in ("txt", "lor", "ringtone", "150p/msg"))
    assert not sms_words & eda.all_stopwords and {"the", "and", "of"} <= eda.all_stopwords

    demo = load_config(REPO / "configs" / "sms_spam.yaml").augment
    assert "text message" in demo.paraphrase.instruction
    assert any("ringtone" in e.source.lower() for e in demo.paraphrase.examples)
    assert sms_words <= demo.eda.all_stopwords and {"the", "and", "of"} <= demo.eda.all_stopwords
