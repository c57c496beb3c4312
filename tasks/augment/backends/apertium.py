"""Back-translation backend ``apertium``: Debian's rule-based MT, offline, one process call per direction."""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Sequence

from driftloop.config import BackTranslationConfig
from driftloop.errors import ResourceError
from driftloop.resources import require_executable
from driftloop.tasks.augment.backends.base import Augmenter, Generation, Runtime, one_line, register

APERTIUM_INSTALL = "apt-get install -y apertium apertium-eng-spa (one apertium-<pair> package per language pair)"
_MARK = "XQDLMARK{}XQ"
_MARK_RE = re.compile(r"^\s*XQDLMARK(\d+)XQ\s*$", re.MULTILINE)
_MARK_ANYWHERE = re.compile(r"XQDLMARK\d+XQ")


def reverse_pair(pair: str) -> str:
    """'eng-spa' -> 'spa-eng'."""
    source, _, pivot = pair.partition("-")
    return f"{pivot}-{source}"


def apertium_input(texts: Sequence[str]) -> str:
    """Texts as Apertium paragraphs, each between numbered marker paragraphs."""
    # Markers are unknown words, which Apertium passes through untouched; numbering them lets the
    # parser detect a lost or merged paragraph instead of silently shifting every later output.
    parts = [_MARK.format(0)]
    for i, text in enumerate(texts):
        parts += [one_line(_MARK_ANYWHERE.sub(" ", text)), _MARK.format(i + 1)]
    return "\n\n".join(parts) + "\n"


def parse_apertium_output(output: str, n: int) -> list[str | None]:
    """Translations in input order; None where the markers around a text did not come back intact."""
    result: list[str | None] = [None] * n
    marks = list(_MARK_RE.finditer(output))
    for here, after in itertools.pairwise(marks):
        index = int(here.group(1))
        if int(after.group(1)) == index + 1 and index < n:
            result[index] = one_line(output[here.end() : after.start()])
    return result


@register
class ApertiumBackTranslator(Augmenter):
    """Round trip source -> pivot -> source through Apertium, one process call per direction."""

    name = "apertium"
    method = "back_translation"

    def __init__(self, cfg: BackTranslationConfig, runtime: Runtime):
        self.executable = require_executable("apertium", APERTIUM_INSTALL, "apertium back-translation")
        installed = self.installed_modes(self.executable)
        self.pairs = list(cfg.apertium_pairs)
        missing = [mode for pair in self.pairs for mode in (pair, reverse_pair(pair)) if mode not in installed]
        if missing:
            packages = " ".join(sorted({f"apertium-{pair}" for pair in self.pairs}))
            raise ResourceError(
                f"apertium modes {missing} are not installed (installed: {sorted(installed) or 'none'}); "
                f"install the language-pair packages, e.g. apt-get install -y apertium {packages}"
            )
        self.model_id = "apertium:" + ",".join(self.pairs)
        self.params = {"pairs": self.pairs}

    @staticmethod
    def installed_modes(executable: str = "apertium") -> set[str]:
        """Modes ``apertium -l`` lists (e.g. eng-spa, spa-eng)."""
        listing = subprocess.run([executable, "-l"], capture_output=True, text=True, timeout=60, check=False)
        return {line.strip() for line in listing.stdout.splitlines() if line.strip()}

    def translate(self, texts: Sequence[str], mode: str) -> list[str | None]:
        """Translate all texts with one ``apertium -u <mode>`` call."""
        if not texts:
            return []
        done = subprocess.run(
            [self.executable, "-u", mode],
            input=apertium_input(texts),
            capture_output=True,
            text=True,
            timeout=120 + 0.05 * len(texts),
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"apertium -u {mode} failed with exit code {done.returncode}: {done.stderr.strip()[:500]}"
            )
        return parse_apertium_output(done.stdout, len(texts))

    def generate(self, texts: Sequence[str], n: int, seed: int) -> list[Generation]:
        out: list[Generation] = []
        for pair in self.pairs[:n]:
            pivot = self.translate(texts, pair)
            kept = [i for i, t in enumerate(pivot) if t]
            back = self.translate([pivot[i] for i in kept], reverse_pair(pair))
            out += [Generation(i, t, {"pair": pair}) for i, t in zip(kept, back) if t is not None]
        return out
