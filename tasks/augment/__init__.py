"""Class-aware augmentation of the training pool: plan, generate (backends), filter, tag lineage.

- ``step``: :func:`augment` (the step), :func:`plan_augmentation`, :func:`combine`, :func:`assert_no_synthetic`;
- ``filter``: the quality filter every candidate passes (:data:`FILTER_REASONS`);
- ``backends``: one module per backend and the registry that picks one by name or dotted path.
"""

from driftloop.tasks.augment.filter import (
    FILTER_REASONS,
    Embedder,
    FilterOutcome,
    LabelCheck,
    comparison_key,
    filter_candidates,
    minilm_embedder,
)
from driftloop.tasks.augment.step import (
    INHERITED_COLUMNS,
    LINEAGE_COLUMNS,
    METHODS,
    REJECT_REASONS,
    SAMPLE_COLUMNS,
    SYNTHETIC_ID_PREFIX,
    AugmentResult,
    assert_no_synthetic,
    augment,
    combine,
    plan_augmentation,
)

__all__ = [
    "FILTER_REASONS",
    "INHERITED_COLUMNS",
    "LINEAGE_COLUMNS",
    "METHODS",
    "REJECT_REASONS",
    "SAMPLE_COLUMNS",
    "SYNTHETIC_ID_PREFIX",
    "AugmentResult",
    "Embedder",
    "FilterOutcome",
    "LabelCheck",
    "assert_no_synthetic",
    "augment",
    "combine",
    "comparison_key",
    "filter_candidates",
    "minilm_embedder",
    "plan_augmentation",
]
