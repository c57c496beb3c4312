"""Tests of the cleaning step: text transforms, row filters, dedup, report and data contracts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import driftloop.tasks.clean as clean_module
import driftloop.tasks.near_dup as near_dup_module
from driftloop.config import CleanConfig, NearDupConfig
from driftloop.tasks.clean import DROP_RULES, clean, normalize_texts

WINNER = "WINNER!! As a valued network customer you have been selected to receive a £900 prize reward! Call 09061701461"
WINNER_TYPO = WINNER.replace("valued", "valuad")
HAM = [
    "Nah I don't think he goes to usf, he lives around here though",
    "Even my brother is not like to speak with me. They treat me like aids patent.",
    "I'm gonna be home soon and i don't want to talk about this stuff anymore tonight, k?",
    "Oh k...i'm watching here:)",
    "Fine if that's the way u feel. That's the way its gota b",
]


def frame_of(texts: list, **columns) -> pd.DataFrame:
    return pd.DataFrame({"row_id": [f"snap:{i}" for i in range(len(texts))], "text": texts, **columns})


def kept_texts(texts: list, cfg: CleanConfig | None = None, **kwargs) -> list[str]:
    return clean(frame_of(texts), cfg or CleanConfig(), **kwargs).frame["text"].tolist()


def one(text: str, **fields) -> str:
    return normalize_texts(pd.Series([text]), CleanConfig(**fields)).iloc[0]


# ---- text transforms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＦＲＥＥ entry ２ win", "FREE entry 2 win"),  # full-width letters and digits
        ("ﬁnal oﬀer", "final offer"),  # ligatures
        ("Café", "Café"),  # decomposed accent is composed
        ("½ price ™", "1⁄2 price TM"),
    ],
)
def test_nfkc_folds_compatibility_characters(raw, expected):
    assert one(raw) == expected


def test_unicode_form_is_configurable():
    assert one("ＦＲＥＥ ﬁnal Café", unicode_form="NFC") == "ＦＲＥＥ ﬁnal Café"
    assert one("Café", unicode_form="none") == "Café"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<b>WIN</b> a prize", "WIN a prize"),
        ("F<i>RE</i>E", "FREE"),  # inline tags leave no gap
        ("line one<br/>line two<p class='x'>three</p>", "line one line two three"),
        ('<a href="http://x.co">Click here</a> now', "Click here now"),
        ("hi<!-- tracking --> there<script>var a = 1 < 2;</script>!", "hi there !"),
        ("Tom &amp; Jerry &#39;now&#39; &#x263A; &pound;5 &nbsp;ok", "Tom & Jerry 'now' ☺ £5 ok"),
        ("&lt;b&gt;not a tag&lt;/b&gt;", "<b>not a tag</b>"),  # escaped markup stays text
        ("i <3 u, call me at <#> or <name>", "i <3 u, call me at <#> or <name>"),  # SMS shorthand survives
        ("AT&T and R&B &amp", "AT&T and R&B &amp"),  # no ';': not an entity
    ],
)
def test_html_tags_are_stripped_and_entities_decoded(raw, expected):
    assert one(raw) == expected


def test_html_stripping_can_be_turned_off():
    assert one("<b>WIN</b> &amp; more", strip_html=False) == "<b>WIN</b> &amp; more"


def test_control_and_zero_width_characters_are_removed():
    assert one("call\x07 me\u200b now\ufeff\u200d ok\x00") == "call me now ok"
    assert one("a\u200bb", remove_control_chars=False) == "a\u200bb"


def test_whitespace_is_collapsed_and_trimmed():
    assert one("  hi \t there\n\n you\u00a0 all  ") == "hi there you all"
    assert one(" a  b ", collapse_whitespace=False) == " a  b "


def test_normalize_texts_keeps_index_name_and_nulls():
    texts = pd.Series(["<b>Hi</b>  there", None, "ＯＫ"], index=["x", "y", "z"], name="text")
    out = normalize_texts(texts, CleanConfig())
    assert out.index.tolist() == ["x", "y", "z"]
    assert out.name == "text"
    assert out["x"] == "Hi there" and pd.isna(out["y"]) and out["z"] == "OK"
    assert texts["x"] == "<b>Hi</b>  there"


# ---- row filters -----------------------------------------------------------------------------------


def test_empty_texts_are_dropped_including_nulls_and_markup_only():
    result = clean(frame_of([HAM[0], None, "", "   ", "<br>", "\u200b", np.nan]), CleanConfig())
    assert result.dropped["empty"] == 6
    assert result.frame["text"].tolist() == [HAM[0]]


def test_length_filters_use_the_cleaned_length():
    cfg = CleanConfig(min_chars=3, max_chars=30)
    result = clean(frame_of(["ok", "<b>ok</b>", "k?!", "x" * 30, "y" * 31, "<p>" + "z" * 30 + "</p>"]), cfg)
    assert result.dropped["too_short"] == 2
    assert result.dropped["too_long"] == 1
    assert result.frame["text"].tolist() == ["k?!", "x" * 30, "z" * 30]


def test_exact_duplicates_are_case_folded_and_the_first_survives():
    texts = [
        "Call me LATER ok",
        HAM[0],
        "call me later ok",
        "  CALL ME   LATER OK ",
        "<i>Call</i> me later ok",
        "Meet at the Straße",
        "meet at the STRASSE",
    ]
    result = clean(frame_of(texts), CleanConfig(near_dup=NearDupConfig(enabled=False)))
    assert result.frame["text"].tolist() == ["Call me LATER ok", HAM[0], "Meet at the Straße"]
    assert result.frame["row_id"].tolist() == ["snap:0", "snap:1", "snap:5"]
    assert result.dropped["exact_duplicate"] == 4


def test_exact_dedup_can_be_turned_off():
    cfg = CleanConfig(dedup_exact=False, near_dup=NearDupConfig(enabled=False))
    assert len(kept_texts([HAM[0], HAM[0].upper()], cfg)) == 2


def test_near_duplicates_are_dropped_after_the_first():
    others = ["Sorry, I'll call later", "Ü mean u r not coming 2nite?"]
    result = clean(frame_of([WINNER, *HAM, WINNER_TYPO, *others]), CleanConfig())
    assert result.frame["text"].tolist() == [WINNER, *HAM, *others]
    assert result.dropped["near_duplicate"] == 1
    assert result.report["near_dup"]["similar_pairs"] == 1


def test_short_near_duplicates_follow_the_threshold():
    spam = "Win a FREE prize now call 0800"
    # A change in the last character alters 1 of 26 five-char shingles (Jaccard 25/27 = 0.93).
    assert kept_texts([spam, "Win a FREE prize now call 0801", HAM[3]]) == [spam, HAM[3]]
    # A change in the middle alters 5 of them (Jaccard 21/31 = 0.68): kept at 0.8, dropped at 0.5.
    middle = "Win a FRIE prize now call 0800"
    assert kept_texts([spam, middle]) == [spam, middle]
    assert kept_texts([spam, middle], CleanConfig(near_dup=NearDupConfig(threshold=0.5))) == [spam]


def test_near_dedup_can_be_turned_off():
    assert kept_texts([WINNER, WINNER_TYPO], CleanConfig(near_dup=NearDupConfig(enabled=False))) == [
        WINNER,
        WINNER_TYPO,
    ]


def test_near_dedup_handles_texts_shorter_than_a_shingle_and_non_ascii():
    texts = ["ok!", "ok?", "hi u", "Ünïcødé 😀 ✓ ok", "£5 now", WINNER, WINNER_TYPO]
    assert kept_texts(texts) == texts[:-1]


def test_near_duplicates_across_signature_blocks(monkeypatch):
    texts = [*HAM, WINNER, "Sorry, I'll call later", WINNER_TYPO, HAM[0] + " x"]
    expected = kept_texts(texts)
    monkeypatch.setattr(near_dup_module, "BLOCK_BYTES", 30)  # a row or two a block
    assert kept_texts(texts) == expected == [*HAM, WINNER, "Sorry, I'll call later"]


def test_signature_blocks_cover_every_row_once_within_the_byte_budget():
    lengths = np.array([5, 40, 3, 3, 3, 100, 0, 7])
    offsets = np.concatenate([[10], 10 + np.cumsum(lengths)])
    blocks = near_dup_module.row_blocks(offsets, budget=12)
    assert [r for start, stop in blocks for r in range(start, stop)] == list(range(len(lengths)))
    # Each block fits the budget, except a single row longer than it.
    assert all(offsets[stop] - offsets[start] <= 12 or stop - start == 1 for start, stop in blocks)
    assert near_dup_module.row_blocks(np.array([0])) == []


def test_a_row_similar_only_to_a_dropped_row_survives():
    # 0 ~ 1 and 1 ~ 2 but not 0 ~ 2: row 1 goes, so row 2 has no kept twin and stays.
    flagged = near_dup_module.first_survives(3, np.array([0, 1]), np.array([1, 2]))
    assert flagged.tolist() == [False, True, False]


@pytest.mark.parametrize("texts", [["aé€😀", "", "£5 ✓", "plain"], ["plain", "ascii"], ["x", "ü"]])
def test_codepoints_decode_utf8_like_python(texts):
    utf8, byte_offsets = near_dup_module.utf8_buffer(clean_module._to_polars(pd.Series(texts), "text"))
    codepoints, offsets = near_dup_module._codepoints(utf8, byte_offsets[1:])
    assert codepoints.tolist() == [ord(c) for c in "".join(texts[1:])]
    assert offsets.tolist() == np.cumsum([0, *map(len, texts[1:])]).tolist()


def test_reference_overlap_drops_pool_copies_of_gold_texts():
    gold = pd.Series(["WINNER!! Claim your <b>prize</b> now", "see you at 8"])
    texts = [HAM[0], "winner!! claim your prize now", "WINNER!!   Claim your prize now", "see you at 8 pm"]
    result = clean(frame_of(texts), CleanConfig(), reference_texts=gold)
    assert result.frame["text"].tolist() == [HAM[0], "see you at 8 pm"]
    assert result.dropped["overlaps_reference"] == 2
    assert result.dropped["exact_duplicate"] == 0


def test_each_row_counts_under_the_first_rule_that_drops_it():
    cfg = CleanConfig(min_chars=5)
    result = clean(frame_of([HAM[1], "ok", "ok", HAM[1].upper()]), cfg, reference_texts=pd.Series([HAM[1]]))
    assert result.dropped == {
        "empty": 0,
        "too_short": 2,
        "too_long": 0,
        "overlaps_reference": 2,
        "exact_duplicate": 0,
        "near_duplicate": 0,
    }
    assert result.frame.empty


# ---- report and contracts --------------------------------------------------------------------------


def test_report_counts_add_up_and_are_json_able():
    texts = [WINNER, None, "k", HAM[0], HAM[0].lower(), WINNER_TYPO, *HAM[1:]]
    result = clean(frame_of(texts), CleanConfig())
    report = json.loads(json.dumps(result.report))
    assert list(result.dropped) == list(DROP_RULES)
    assert report["dropped"] == result.dropped
    assert report["rows_in"] == len(texts)
    assert report["rows_out"] == len(result.frame) == len(texts) - sum(result.dropped.values())
    assert result.dropped == {
        "empty": 1,
        "too_short": 1,
        "too_long": 0,
        "overlaps_reference": 0,
        "exact_duplicate": 1,
        "near_duplicate": 1,
    }
    assert set(report["seconds"]) >= {"normalize", "near_dedup", "total"}


def test_kept_rows_keep_their_index_columns_and_order():
    frame = pd.DataFrame(
        {
            "label": ["spam", "ham", "ham", "ham"],
            "body": [WINNER, HAM[0], "<b>dup</b> me", "DUP me"],
            "score": [0.9, 0.1, 0.2, 0.3],
        },
        index=pd.Index([40, 10, 30, 20], name="pos"),
    )
    result = clean(frame, CleanConfig(), text_column="body")
    assert result.frame.index.tolist() == [40, 10, 30]
    assert result.frame.index.name == "pos"
    assert list(result.frame.columns) == ["label", "body", "score"]
    assert result.frame["body"].tolist() == [WINNER, HAM[0], "dup me"]
    assert result.frame["score"].tolist() == [0.9, 0.1, 0.2]


def test_input_frame_and_reference_are_not_mutated():
    frame = frame_of(["<b>Hi</b>  there", "HI THERE", None, WINNER, WINNER_TYPO])
    reference = pd.Series([" Hi there "])
    before, reference_before = frame.copy(deep=True), reference.copy(deep=True)
    result = clean(frame, CleanConfig(), reference_texts=reference)
    result.frame["text"] = "changed"
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_series_equal(reference, reference_before)


def test_missing_text_column_names_it_and_the_available_columns():
    with pytest.raises(KeyError, match=r"'message'.*\['row_id', 'text'\]"):
        clean(frame_of(["hi"]), CleanConfig(), text_column="message")


def test_non_string_text_column_is_rejected_with_its_name():
    with pytest.raises(TypeError, match="'text'"):
        clean(pd.DataFrame({"text": [1, 2, 3]}), CleanConfig())
    with pytest.raises(TypeError, match="'text'"):
        clean(pd.DataFrame({"text": ["ok", 2]}), CleanConfig())


def test_empty_frame_gives_an_empty_result_with_zero_counts():
    frame = pd.DataFrame({"row_id": pd.Series([], dtype="str"), "text": pd.Series([], dtype="str")})
    result = clean(frame, CleanConfig(), reference_texts=pd.Series([], dtype="str"))
    assert result.frame.empty and list(result.frame.columns) == ["row_id", "text"]
    assert result.dropped == dict.fromkeys(DROP_RULES, 0)
    assert result.report["rows_in"] == result.report["rows_out"] == 0


def test_results_are_deterministic():
    texts = [WINNER, *HAM, WINNER_TYPO, HAM[2].upper(), "ok", *[f"msg {i} see you at {i % 7} pm" for i in range(50)]]
    first, second = clean(frame_of(texts), CleanConfig()), clean(frame_of(texts), CleanConfig())
    pd.testing.assert_frame_equal(first.frame, second.frame)
    assert first.dropped == second.dropped
    assert first.report["near_dup"] == second.report["near_dup"]
