"""Weak labeling: LF builders, the LF module loader, and the LabelModel step."""

from __future__ import annotations

import copy
import json
import random
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from snorkel.labeling import PandasLFApplier, labeling_function

from driftloop.config import DemoDataConfig, WeakLabelConfig
from driftloop.errors import LFModuleError
from driftloop.tasks.demo_data import read_sms_corpus, split_demo
from driftloop.tasks.lf import apply_lfs, column_lf, count_lf, keyword_lf, length_lf, load_lfs, regex_lf
from driftloop.tasks.weak_label import weak_label

ROOT = Path(__file__).resolve().parents[1]
DEMO_LFS = "configs/lfs/sms_spam.py"
BINARY = ["ham", "spam"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def sms() -> pd.DataFrame:
    return read_sms_corpus()


@pytest.fixture(scope="module")
def demo_split(sms: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gold dev and unlabelled pool exactly as the demo pipeline splits them; gold test is never used."""
    parts = split_demo(sms, DemoDataConfig(), seed=42)
    return parts["gold_dev"], parts["pool"]


@pytest.fixture(scope="module")
def demo_lfs() -> list:
    return load_lfs(DEMO_LFS, BINARY, base_dir=ROOT)


def _cfg(**kwargs) -> WeakLabelConfig:
    return WeakLabelConfig(lf_module="unused.py", **kwargs)


def _toy_lfs(labels: list[str] = BINARY) -> list:
    lfs = [
        keyword_lf("kw_win", ["win", "prize"], "spam"),
        regex_lf("re_short_code", r"\b\d{5}\b", "spam"),
        keyword_lf("kw_chat", ["lol", "home", "sorry"], "ham"),
        keyword_lf("kw_ok", ["ok"], "ham"),
    ]
    return [lf.resolve(labels) for lf in lfs]


def _toy_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    spam = [
        "win a prize now, text WIN to 85233",
        "claim your prize, reply 80082",
        "you win! call 87121",
        "prize draw 12345",
    ]
    ham = ["lol see you at home", "sorry, ok I will be home", "ok lol", "going home now, sorry", "ok fine"]
    neither = ["the weather is grey today", "meeting moved to thursday"]
    pool = pd.DataFrame({"text": spam * 5 + ham * 5 + neither, "row_id": [f"s:{i}" for i in range(47)]})
    dev = pd.DataFrame({"text": spam + ham, "label": ["spam"] * 4 + ["ham"] * 5})
    return pool, dev


# --- LF builders -------------------------------------------------------------------------------------------


def test_demo_lfs_match_their_snorkel_equivalents_on_real_sms(sms: pd.DataFrame, demo_lfs: list) -> None:
    rows = sms.sample(400, random_state=0)[["text"]].reset_index(drop=True)
    vectorised = apply_lfs(rows, demo_lfs)
    per_row = PandasLFApplier([lf.to_snorkel() for lf in demo_lfs]).apply(rows, progress_bar=False)
    assert vectorised.shape == (400, len(demo_lfs))
    np.testing.assert_array_equal(vectorised, per_row)
    assert ((vectorised != -1).sum(axis=0) > 0).sum() >= 10, "most demo LFs should fire on 400 real texts"


EDGE_TEXTS = [
    "",
    "WIN!!",
    "Ünïcödé WIN ок",
    "i'm home\n",
    "call 09061701851 now",
    "£100 cash prize",
    "x" * 300,
    "win-win",
    "twin",
    "ΟΔΟΣ İSTANBUL Win",
    "ǅemal wins",
]


@pytest.mark.parametrize(
    "lf",
    [
        keyword_lf("kw", ["win", "£", "t&c"], "spam"),
        keyword_lf("kw_cs", ["WIN"], "spam", case_sensitive=True),
        keyword_lf("kw_sub", ["win"], "spam", whole_word=False),
        keyword_lf("kw_unicode", ["ΟΔΟΣ", "İstanbul", "ǆemal"], "ham"),
        regex_lf("re_lower", r"\bwin\b|£\d+", "spam", lowercase=True),
        count_lf("cnt_lower", r"[a-z]", "ham", min_count=5, lowercase=True),
        regex_lf("re", r"^i'm\b", "ham", flags=re.IGNORECASE | re.MULTILINE),
        count_lf("cnt", r"[A-Z]", "spam", min_count=2, max_count=4),
        count_lf("no_digit", r"\d", "ham", min_count=0, max_count=0),
        length_lf("len", "ham", min_chars=1, max_chars=10),
        column_lf("col", lambda s: s.str.len() > 20, "spam"),
        column_lf("col_row", lambda s: s.str.contains("!", regex=False), "spam", row_fn=lambda t: "!" in t),
    ],
    ids=lambda lf: lf.name,
)
def test_each_builder_matches_its_snorkel_lf(lf) -> None:
    lf = lf.resolve(BINARY)
    rows = pd.DataFrame({"text": EDGE_TEXTS})
    np.testing.assert_array_equal(
        apply_lfs(rows, [lf]), PandasLFApplier([lf.to_snorkel()]).apply(rows, progress_bar=False)
    )


def test_keyword_lf_whole_words_and_case() -> None:
    rows = pd.DataFrame({"text": ["WIN now", "twin beds", "win-win", "Win"]})
    got = apply_lfs(
        rows,
        [
            keyword_lf("a", ["win"], "spam").resolve(BINARY),
            keyword_lf("b", ["WIN"], "spam", case_sensitive=True).resolve(BINARY),
        ],
    )
    assert got.tolist() == [[1, 1], [-1, -1], [1, -1], [1, -1]]


def test_column_lf_label_outputs() -> None:
    rows = pd.DataFrame({"text": ["a", "bb", "ccc"]})
    by_name = column_lf("names", lambda s: s.str.len().map({1: "ham", 2: None, 3: "spam"}))
    by_index = column_lf("ints", lambda s: (s.str.len() - 2).to_numpy())
    assert apply_lfs(rows, [by_name.resolve(BINARY), by_index.resolve(BINARY)]).tolist() == [[0, -1], [-1, 0], [1, 1]]
    with pytest.raises(ValueError, match="unknown label 'eggs'"):
        apply_lfs(rows, [column_lf("bad", lambda s: s.map(lambda _: "eggs")).resolve(BINARY)])
    with pytest.raises(ValueError, match="outside -1..1"):
        apply_lfs(rows, [column_lf("bad", lambda s: np.full(len(s), 5)).resolve(BINARY)])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: regex_lf("look", r"(?<=a)b", "spam"), "not supported by the vectorised engine"),
        (lambda: regex_lf("broken", r"(unclosed", "spam"), "invalid regex"),
        (lambda: regex_lf("ascii", r"a", "spam", flags=re.ASCII), "unsupported regex flags"),
        (lambda: keyword_lf("empty", [], "spam"), "non-empty list"),
        (lambda: count_lf("bounds", r"a", "spam", min_count=3, max_count=1), "min_count"),
        (lambda: keyword_lf("by_index", ["x"], 1), "label name"),
    ],
)
def test_builders_reject_bad_definitions(build, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_unresolved_lf_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not resolved"):
        apply_lfs(pd.DataFrame({"text": ["win"]}), [keyword_lf("kw", ["win"], "spam")])


def test_apply_lfs_needs_text_column() -> None:
    with pytest.raises(ValueError, match="'text' column"):
        apply_lfs(pd.DataFrame({"body": ["x"]}), _toy_lfs())


def test_apply_lfs_object_dtype_and_missing_text() -> None:
    rows = pd.DataFrame({"text": pd.Series(["win a prize", None, "lol"], dtype=object)})
    assert apply_lfs(rows, _toy_lfs()).tolist() == [[1, -1, -1, -1], [-1, -1, -1, -1], [-1, -1, 0, -1]]


def test_plain_labeling_function_mixes_with_vectorised_ones() -> None:
    @labeling_function()
    def exclamations(x) -> int:
        return 1 if x.text.count("!") >= 2 else -1

    lfs = [*_toy_lfs()[:2], exclamations, *_toy_lfs()[2:]]
    rows = pd.DataFrame({"text": ["win!!", "lol", "hey!! ok"]})
    assert apply_lfs(rows, lfs).tolist() == [[1, -1, 1, -1, -1], [-1, -1, -1, 0, -1], [-1, -1, 1, -1, 0]]
    pool, dev = _toy_frames()
    result = weak_label(pool, dev, lfs, _cfg(), BINARY, seed=0)
    assert result.metrics["n_lfs"] == 5
    assert result.analysis.index[2] == "exclamations"


# --- loader ------------------------------------------------------------------------------------------------


def _write(tmp_path: Path, body: str, name: str = "my_lfs.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_load_lfs_from_relative_path_and_dotted_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = """
        from driftloop.tasks.lf import keyword_lf
        LABELS = ["ham", "spam"]
        LFS = [keyword_lf("kw", ["win"], "spam")]
    """
    _write(tmp_path, body)
    lfs = load_lfs("my_lfs.py", BINARY, base_dir=tmp_path)
    assert [lf.name for lf in lfs] == ["kw"] and lfs[0].label_index == 1
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [lf.label_index for lf in load_lfs("my_lfs", BINARY)] == [1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("X = 1", "defines no LFS"),
        ("LFS = []", "non-empty list"),
        ("from driftloop.tasks.lf import keyword_lf\nLFS = [keyword_lf('kw', ['x'], 'eggs')]", "unknown label 'eggs'"),
        (
            "from driftloop.tasks.lf import keyword_lf\nLABELS = ['spam', 'ham']\nLFS = [keyword_lf('kw', ['x'], 'spam')]",
            "LABELS",
        ),
        ("LFS = [lambda x: 1]", "LFS\\[0\\] is a function"),
        (
            "from driftloop.tasks.lf import keyword_lf\nLFS = [keyword_lf('kw', ['x'], 'ham'), keyword_lf('kw', ['y'], 'ham')]",
            "unique",
        ),
        ("raise RuntimeError('boom')", "failed to import: RuntimeError: boom"),
    ],
)
def test_load_lfs_errors_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    _write(tmp_path, body)
    with pytest.raises(LFModuleError, match=message):
        load_lfs("my_lfs.py", BINARY, base_dir=tmp_path)


def test_load_lfs_missing_file_or_module(tmp_path: Path) -> None:
    with pytest.raises(LFModuleError, match="does not exist"):
        load_lfs("configs/lfs/nope.py", BINARY, base_dir=tmp_path)
    with pytest.raises(LFModuleError, match="not found"):
        load_lfs("no_such_package.lfs", BINARY)


def test_demo_module_declares_binary_labels() -> None:
    with pytest.raises(LFModuleError, match="LABELS"):
        load_lfs(DEMO_LFS, ["ham", "spam", "phishing"], base_dir=ROOT)


# --- weak_label --------------------------------------------------------------------------------------------


def test_weak_label_output_contract_and_abstained_rows() -> None:
    pool, dev = _toy_frames()
    before_pool, before_dev = copy.deepcopy(pool), copy.deepcopy(dev)
    result = weak_label(pool, dev, _toy_lfs(), _cfg(), BINARY, seed=0)

    pd.testing.assert_frame_equal(pool, before_pool)
    pd.testing.assert_frame_equal(dev, before_dev)
    frame, metrics = result.frame, result.metrics
    assert list(frame.columns) == ["text", "row_id", "label", "label_confidence", "label_probs"]
    assert metrics["abstained_rows"] == 2 and metrics["pool_rows"] == 47 and metrics["labelled_rows"] == 45
    assert not frame["text"].isin(["the weather is grey today", "meeting moved to thursday"]).any()
    probs = np.array(frame["label_probs"].tolist())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(frame["label_confidence"], probs.max(axis=1))
    assert set(frame["label"]) <= set(BINARY)
    assert (frame.loc[frame["text"].str.contains("prize"), "label"] == "spam").all()
    assert metrics["coverage"] == pytest.approx(45 / 47)
    assert metrics["label_distribution"] == {"ham": 25, "spam": 20}
    assert metrics["aggregators_dev"]["label_model"]["accuracy"] == 1.0
    assert metrics["aggregators_dev"]["majority_vote"]["accuracy"] == 1.0
    assert list(result.analysis.reset_index()["lf"]) == ["kw_win", "re_short_code", "kw_chat", "kw_ok"]
    assert result.analysis["polarity"].tolist() == [["spam"], ["spam"], ["ham"], ["ham"]]
    json.dumps(metrics, allow_nan=False)  # JSON-able


def test_predict_proba_marks_all_abstain_rows_nan() -> None:
    pool, dev = _toy_frames()
    result = weak_label(pool, dev, _toy_lfs(), _cfg(), BINARY, seed=0)
    probs = result.predict_proba(pd.Series(["win a prize", "nothing to see", "lol home"]))
    assert np.isnan(probs[1]).all()
    assert probs[0].argmax() == 1 and probs[2].argmax() == 0
    np.testing.assert_allclose(probs[[0, 2]].sum(axis=1), 1.0, atol=1e-6)


def test_min_confidence_drops_are_counted_apart_from_abstains() -> None:
    pool, dev = _toy_frames()
    pool = pd.concat(
        [pool, pd.DataFrame({"text": ["lol you win", "ok prize"], "row_id": ["c:0", "c:1"]})], ignore_index=True
    )
    result = weak_label(pool, dev, _toy_lfs(), _cfg(min_confidence=0.99), BINARY, seed=0)
    assert result.metrics["abstained_rows"] == 2
    assert result.metrics["dropped_low_confidence"] >= 2
    assert result.metrics["labelled_rows"] == 49 - 2 - result.metrics["dropped_low_confidence"]
    assert (result.frame["label_confidence"] >= 0.99).all()


def test_three_classes() -> None:
    labels = ["sports", "politics", "tech"]
    lfs = [
        keyword_lf("kw_sports", ["match", "goal"], "sports"),
        regex_lf("re_score", r"\b\d+-\d+\b", "sports"),
        keyword_lf("kw_politics", ["election", "vote"], "politics"),
        keyword_lf("kw_parliament", ["parliament", "minister"], "politics"),
        keyword_lf("kw_tech", ["software", "chip"], "tech"),
        keyword_lf("kw_launch", ["app", "release"], "tech"),
    ]
    lfs = [lf.resolve(labels) for lf in lfs]
    texts = {
        "sports": ["late goal wins the match 2-1", "the match ended 0-0", "a goal in extra time"],
        "politics": ["minister calls an election", "parliament will vote today", "the vote on the election law"],
        "tech": ["new chip speeds up software", "app release delayed", "software release notes for the chip"],
    }
    pool = pd.DataFrame({"text": [t for ts in texts.values() for t in ts] * 6 + ["completely unrelated"]})
    dev = pd.DataFrame(
        {"text": [t for ts in texts.values() for t in ts], "label": [c for c in labels for _ in range(3)]}
    )
    result = weak_label(pool, dev, lfs, _cfg(), labels, seed=1)
    assert result.metrics["abstained_rows"] == 1
    assert result.metrics["label_distribution"] == {"sports": 18, "politics": 18, "tech": 18}
    assert result.metrics["aggregators_dev"]["label_model"]["accuracy"] == 1.0
    assert all(len(p) == 3 for p in result.frame["label_probs"])
    assert result.label_model.cardinality == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda pool, dev: (pool, dev.assign(label="ham")), "single class"),
        (lambda pool, dev: (pool, dev.assign(label=["eggs"] + dev["label"].tolist()[1:])), "unknown \\['eggs'\\]"),
        (lambda pool, dev: (pool, dev.drop(columns="label")), "dev frame lacks column"),
        (lambda pool, dev: (pool.rename(columns={"text": "body"}), dev), "pool frame lacks column"),
        (lambda pool, dev: (pool.iloc[:0], dev), "pool is empty"),
        (lambda pool, dev: (pool[pool["text"].str.startswith("meeting")], dev), "no LF votes"),
    ],
)
def test_weak_label_rejects_bad_inputs(change, message: str) -> None:
    pool, dev = change(*_toy_frames())
    with pytest.raises(ValueError, match=message):
        weak_label(pool, dev, _toy_lfs(), _cfg(), BINARY, seed=0)


def test_weak_label_rejects_bad_lf_sets_and_priors() -> None:
    pool, dev = _toy_frames()
    with pytest.raises(ValueError, match="at least 3 LFs"):
        weak_label(pool, dev, _toy_lfs()[:2], _cfg(), BINARY, seed=0)
    with pytest.raises(ValueError, match="class_balance has 3 entries"):
        weak_label(pool, dev, _toy_lfs(), _cfg(label_model={"class_balance": [0.5, 0.3, 0.2]}), BINARY, seed=0)

    @labeling_function()
    def votes_class_two(x) -> int:
        return 2

    with pytest.raises(ValueError, match="votes_class_two"):
        weak_label(pool, dev, [*_toy_lfs(), votes_class_two], _cfg(), BINARY, seed=0)


def test_class_balance_prior_from_dev_or_config() -> None:
    pool, dev = _toy_frames()
    assert weak_label(pool, dev, _toy_lfs(), _cfg(), BINARY, seed=0).metrics["class_balance_source"] == "gold_dev"
    result = weak_label(pool, dev, _toy_lfs(), _cfg(label_model={"class_balance": [3, 1]}), BINARY, seed=0)
    assert result.metrics["class_balance"] == [0.75, 0.25] and result.metrics["class_balance_source"] == "config"


def test_same_seed_same_labels() -> None:
    pool, dev = _toy_frames()
    first = weak_label(pool, dev, _toy_lfs(), _cfg(), BINARY, seed=7).frame
    second = weak_label(pool, dev, _toy_lfs(), _cfg(), BINARY, seed=7).frame
    pd.testing.assert_frame_equal(first, second)


def test_demo_lfs_on_the_demo_split(demo_split: tuple[pd.DataFrame, pd.DataFrame], demo_lfs: list) -> None:
    dev, pool = demo_split
    metrics = weak_label(pool, dev, demo_lfs, _cfg(), BINARY, seed=42).metrics
    assert metrics["coverage"] >= 0.9 and metrics["dev_coverage"] >= 0.9
    dev = metrics["aggregators_dev"]
    assert dev["label_model"]["accuracy"] >= 0.95
    assert dev["label_model"]["accuracy"] >= dev["majority_vote"]["accuracy"]
