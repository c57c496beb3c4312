"""Data and test-only stand-ins shared by the augmentation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import HashingVectorizer

from driftloop.tasks.demo_data import read_sms_corpus


def sms_frame() -> pd.DataFrame:
    """40 ham + 10 spam real SMS rows in the post-weak-labeling schema."""
    rows = read_sms_corpus()
    frame = pd.concat(
        [rows[rows["label"] == "ham"].head(40), rows[rows["label"] == "spam"].head(10)], ignore_index=True
    )
    frame["row_id"] = "snap1:" + frame.index.astype(str)
    frame["snapshot_id"] = "snap1"
    frame["label_confidence"] = 0.9
    frame["label_probs"] = [[0.9, 0.1] if label == "ham" else [0.1, 0.9] for label in frame["label"]]
    return frame


_HASH = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 3), n_features=2**14, alternate_sign=False)


def lexical_embed(texts):
    """Test-only stand-in for MiniLM: character-trigram vectors (cosine ~ lexical overlap)."""
    return _HASH.transform(list(texts)).toarray().astype(np.float32)


def spam_keyword_check(texts):
    """Test-only stand-in for the label model: 'prize'/'claim'/'won' -> spam, 'lunch'/'home' -> ham, else abstain."""
    text = pd.Series(list(texts)).str.lower()
    spam = text.str.contains(r"prize|claim|\bwon\b|winner")
    ham = text.str.contains(r"lunch|home|sorry")
    return np.where(spam, 1, np.where(ham, 0, -1))
