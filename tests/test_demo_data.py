import pandas as pd
import pytest

from driftloop.config import DemoDataConfig
from driftloop.tasks.demo_data import read_sms_corpus, split_demo


@pytest.fixture(scope="module")
def corpus():
    return read_sms_corpus()


def test_corpus_is_the_uci_sms_collection(corpus):
    assert len(corpus) == 4862
    assert corpus["label"].value_counts().to_dict() == {"ham": 4220, "spam": 642}


def test_split_is_deterministic_disjoint_and_hides_pool_labels(corpus):
    cfg = DemoDataConfig()
    a, b = split_demo(corpus, cfg, seed=42), split_demo(corpus, cfg, seed=42)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert set(a) == {"gold_dev", "gold_test", "pool", "batch_01", "batch_02", "batch_03"}
    assert len(a["gold_dev"]) == 500 and len(a["gold_test"]) == 1000
    assert list(a["pool"].columns) == ["text"] and list(a["batch_01"].columns) == ["text"]
    assert sum(len(f) for f in a.values()) == len(corpus)
    assert a["gold_dev"]["label"].nunique() == 2


def test_split_too_big_is_a_clear_error(corpus):
    with pytest.raises(ValueError, match="gold_test_size"):
        split_demo(corpus.head(100), DemoDataConfig(), seed=1)
