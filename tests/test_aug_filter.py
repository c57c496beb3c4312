"""The augmentation filter: each bad candidate rejected for its reason, with test-only embedder and label check."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from driftloop.config import AugmentFilterConfig, BackTranslationConfig
from driftloop.tasks.augment import FILTER_REASONS, filter_candidates
from driftloop.tasks.augment.backends import ApertiumBackTranslator, Runtime, build_augmenter
from tests.augment_data import lexical_embed, sms_frame, spam_keyword_check

LABELS = ["ham", "spam"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
needs_apertium = pytest.mark.skipif(
    not (shutil.which("apertium") and {"eng-spa", "spa-eng"} <= ApertiumBackTranslator.installed_modes()),
    reason="apertium + apertium-eng-spa not installed (apt-get install -y apertium apertium-eng-spa)",
)


@pytest.fixture(scope="session")
def sms() -> pd.DataFrame:
    return sms_frame()


# ---------------------------------------------------------------------------------------------
# Filter
# ---------------------------------------------------------------------------------------------

SOURCE_SPAM = "Congratulations! You have won a free cruise. Call now to claim your prize."
SOURCE_HAM = "Sorry, I can't make it to lunch today. I'll be home late."


def _filter_cases() -> pd.DataFrame:
    rows = [
        # (candidate, source, label, expected)
        ("Congratulations! You won a free cruise. Call now to claim the prize.", SOURCE_SPAM, "spam", None),
        (
            "Congrats, you have won a free holiday cruise, ring us now so you can claim the prize!",
            SOURCE_SPAM,
            "spam",
            None,
        ),
        ("   ", SOURCE_SPAM, "spam", "empty"),
        (SOURCE_SPAM.upper(), SOURCE_SPAM, "spam", "identical_to_source"),
        (
            "Congratulations! You have won a free cruise. Call now to claim your prizes!",
            SOURCE_SPAM,
            "spam",
            "near_identical_to_source",
        ),
        ("Are we still meeting for lunch tomorrow?", SOURCE_SPAM, "spam", "duplicate_of_existing"),
        ("The quarterly tax report is attached to this email.", SOURCE_SPAM, "spam", "similarity_too_low"),
        ("I'll be home late. Sorry, I can't make it to lunch today.", SOURCE_HAM, "ham", "similarity_too_high"),
        ("Sorry, I cannot make it to lunch today, you won a prize.", SOURCE_HAM, "ham", "label_contradiction"),
        (
            "Congrats, you have won a free holiday cruise, ring us now so you can claim the prize!!",
            SOURCE_SPAM,
            "spam",
            "duplicate_candidate",
        ),
    ]
    frame = pd.DataFrame(rows, columns=["text", "source_text", "label", "expected"])
    return frame


def test_filter_rejects_each_bad_candidate_for_its_reason():
    cases = _filter_cases()
    cfg = AugmentFilterConfig(min_similarity=0.45, max_similarity=0.97)  # band re-tuned for the lexical stand-in
    existing = [SOURCE_SPAM, SOURCE_HAM, "Are we still meeting for lunch tomorrow?"]
    outcome = filter_candidates(
        cases, cfg, LABELS, existing_texts=existing, embed=lexical_embed, label_check=spam_keyword_check
    )
    assert outcome.reason.fillna("kept").tolist() == cases["expected"].fillna("kept").tolist()
    assert set(outcome.reason.dropna()) <= set(FILTER_REASONS)
    assert outcome.similarity.iloc[:2].between(0.45, 0.97).all() and np.isnan(outcome.similarity.iloc[2])


def test_filter_rejects_numbers_the_source_lacks():
    source = "You won a cruise! Call 0800 123 456 now, only 150p."
    frame = pd.DataFrame(
        {
            "text": [
                "Ring 0800123456 today for the cruise you won, 150p",  # same number, regrouped
                "Ring 0800 999 111 today for the cruise you won",
            ],
            "source_text": [source, source],
            "label": ["spam", "spam"],
        }
    )
    band = AugmentFilterConfig(min_similarity=-1.0, max_similarity=1.0)
    assert filter_candidates(frame, band, LABELS, embed=lexical_embed).reason.tolist() == [None, "new_number"]
    off = band.model_copy(update={"reject_new_numbers": False})
    assert filter_candidates(frame, off, LABELS, embed=lexical_embed).reason.tolist() == [None, None]


def test_filter_needs_its_columns_and_checks_label_check_output():
    with pytest.raises(ValueError, match="source_text"):
        filter_candidates(
            pd.DataFrame({"text": ["a"], "label": ["ham"]}), AugmentFilterConfig(), LABELS, embed=lexical_embed
        )
    frame = pd.DataFrame({"text": ["You won a big prize, call us"], "source_text": [SOURCE_SPAM], "label": ["spam"]})
    with pytest.raises(ValueError, match="2 predictions for 1 texts"):
        filter_candidates(
            frame,
            AugmentFilterConfig(min_similarity=0.0),
            LABELS,
            embed=lexical_embed,
            label_check=lambda texts: np.array([1, 1]),
        )


@pytest.mark.pretrained
@needs_apertium
def test_filter_with_real_minilm_and_real_back_translations(sms):
    augmenter = build_augmenter("back_translation", BackTranslationConfig(), Runtime())
    sources = sms.loc[sms["label"] == "spam", "text"].head(6).tolist()
    translated = {g.source: g.text for g in augmenter.generate(sources, 1, seed=0)}
    bt = pd.DataFrame(
        {
            "text": [translated[i] for i in sorted(translated)],
            "source_text": [sources[i] for i in sorted(translated)],
            "label": "spam",
        }
    )
    extra = pd.DataFrame(
        {
            "text": [
                "",
                sources[1],
                "The quarterly tax report is attached to this email.",
                "See you at lunch, I'm almost home.",
            ],
            "source_text": sources[:4],
            "label": "spam",
        }
    )
    outcome = filter_candidates(
        pd.concat([bt, extra], ignore_index=True),
        AugmentFilterConfig(),
        LABELS,
        existing_texts=sms["text"].tolist(),
        label_check=spam_keyword_check,
    )
    reasons = outcome.reason.tolist()
    assert reasons[-4:-1] == ["empty", "identical_to_source", "similarity_too_low"]
    assert reasons[-1] in ("similarity_too_low", "label_contradiction")
    assert sum(r is None for r in reasons[: len(bt)]) >= len(bt) // 2  # most real round trips pass
    assert outcome.similarity.iloc[: len(bt)].dropna().between(0.5, 1.0).all()  # NaN: rejected before embedding
