"""EDA backend ``eda``: word-level edits with nlpaug (WordNet synonym, swap, delete, misspelling)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from driftloop.config import EdaConfig
from driftloop.resources import prepare_wordnet, require_module
from driftloop.tasks.augment.backends.base import Augmenter, Generation, Runtime, one_line, python_seeded, register

# Tokens with digits (phone numbers, codes, prices) or of one or two characters stay as they are.
_PROTECTED_RE = r"(?:\S*\d\S*|\S{1,2})$"


_EDGE_PUNCT = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


def _split_punct(token: str) -> tuple[str, str, str]:
    """'(later,' -> ('(', 'later', ',')."""
    lead, core, trail = _EDGE_PUNCT.match(token).groups()
    return lead, core, trail


def _skip_token(token: str, first: bool, stopwords: frozenset[str]) -> bool:
    core = _split_punct(token)[1]
    has_inner_capital = any(c.isupper() for c in (core[1:] if first else core))
    # Capitalised words mid-sentence are mostly names, brands or months: "May" is not a hawthorn.
    return not core.isalpha() or len(core) < 3 or core.lower() in stopwords or has_inner_capital


class _TopSenseWordNet:
    """WordNet synonyms from a word's most frequent senses, for nlpaug's SynonymAug.

    nlpaug would POS-tag with NLTK's perceptron tagger, which has no offline source; instead
    tokens to keep are tagged 'DT' (which SynonymAug skips) and the rest draw synonyms from the
    word's first senses only, which WordNet orders by frequency.
    """

    def __init__(self, stopwords: frozenset[str], senses: int = 2):
        from nltk.corpus import wordnet

        self.wordnet = wordnet
        self.stopwords = stopwords
        self.senses = senses

    def pos_tag(self, tokens: list[str]) -> list[tuple[str, str]]:
        return [(t, "DT" if _skip_token(t, i == 0, self.stopwords) else "") for i, t in enumerate(tokens)]

    def predict(self, word: str, pos: str | None = None) -> list[str]:
        # Tokens are whitespace-separated, so punctuation rides along and is put back around the synonym.
        lead, core, trail = _split_punct(word)
        synsets = self.wordnet.synsets(core.lower())[: self.senses]
        lemmas = dict.fromkeys(lemma.name() for synset in synsets for lemma in synset.lemmas())
        return [f"{lead}{lemma}{trail}" for lemma in lemmas if lemma.lower() != core.lower()]


@register
class EdaAugmenter(Augmenter):
    """Word-level edits with nlpaug: WordNet synonym, random swap, random delete, common misspelling."""

    name = "eda"
    method = "eda"

    def __init__(self, cfg: EdaConfig, runtime: Runtime):
        naw = require_module("nlpaug.augmenter.word", "pip install nlpaug nltk", "EDA augmentation")
        self.cfg = cfg
        self.actions = list(cfg.actions)
        # Whitespace tokens keep "£50", "it's" and "02/09/03" intact; nlpaug's default splits and re-spaces them.
        common = {"aug_p": cfg.aug_p, "aug_max": cfg.max_words, "tokenizer": str.split, "reverse_tokenizer": " ".join}
        self.augmenters: dict[str, Any] = {}
        # The dataset's words to keep (augment.eda.stopwords + extra_stopwords); the demo adds SMS shorthand.
        stopwords = cfg.all_stopwords
        if "synonym" in self.actions:
            prepare_wordnet(cache_dir=runtime.cache_dir)
            require_module("nltk", "pip install nltk", "WordNet synonyms")
            synonym = naw.SynonymAug(aug_src="wordnet", stopwords=sorted(stopwords), **common)
            synonym.model = _TopSenseWordNet(stopwords)
            self.augmenters["synonym"] = synonym
        if "swap" in self.actions:
            self.augmenters["swap"] = naw.RandomWordAug(action="swap", **common)
        if "delete" in self.actions:
            self.augmenters["delete"] = naw.RandomWordAug(action="delete", stopwords_regex=_PROTECTED_RE, **common)
        if "spelling" in self.actions:
            spelling = naw.SpellingAug(stopwords=sorted(stopwords), stopwords_regex=_PROTECTED_RE, **common)
            # nlpaug stores the misspellings of a word in set order, which changes with the hash seed.
            spelling.model.dict = {word: sorted(options) for word, options in spelling.model.dict.items()}
            self.augmenters["spelling"] = spelling
        self.model_id = "nlpaug+wordnet-3.0" if "synonym" in self.actions else "nlpaug"
        self.params = {"aug_p": cfg.aug_p, "max_words": cfg.max_words}

    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        # Candidate k of text i uses action (i + k) mod len(actions): every text gets distinct edits.
        by_action: dict[str, list[int]] = {a: [] for a in self.actions}
        for i in range(len(texts)):
            for k in range(n):
                by_action[self.actions[(i + k) % len(self.actions)]].append(i)
        out: list[Generation] = []
        with python_seeded(seed):
            for action, rows in by_action.items():
                for start in range(0, len(rows), self.cfg.batch_size):
                    chunk = rows[start : start + self.cfg.batch_size]
                    edited = self.augmenters[action].augment([one_line(texts[i]) for i in chunk])
                    out += [Generation(i, one_line(t), {"action": action}) for i, t in zip(chunk, edited)]
        return out
