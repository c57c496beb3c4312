"""Batches of row indices grouped by length: the one copy every model-running step uses.

Rows of similar length in one batch keep padding, and so wasted compute, small: inference sorts
all rows by length (the caller undoes the order through the returned indices); training sorts
inside shuffled mega-batches, so that batches stay random while padding stays low.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def length_sorted_batches(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row indices sorted by length (stable, shortest first), cut into batches of ``batch_size``."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shuffled_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, *, group_by_length: bool, mega_factor: int = 50
) -> list[np.ndarray]:
    """Random batches of row indices for one pass; with ``group_by_length``, rows in a batch have similar lengths.

    Like Hugging Face's LengthGroupedSampler: shuffle, sort (longest first) inside mega-batches of
    ``mega_factor`` batches, cut, then shuffle the batches. Draws from ``rng`` in a fixed order, so a
    generator seeded the same way gives the same batches.
    """
    perm = rng.permutation(len(lengths))
    if not group_by_length:
        return [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    mega = batch_size * mega_factor
    batches = []
    for start in range(0, len(perm), mega):
        chunk = perm[start : start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
