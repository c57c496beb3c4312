"""Drift detection you can trust: calibrated two-sample tests per signal, family-wise control,
model- and LF-aware signals, and explanations of what changed.

- ``stats``: the tests and effect sizes (G-test, KS, Welch, Mann-Whitney AUC, Holm/Bonferroni).
- ``signals``: the ``DriftSignal`` protocol and one class per signal (``SIGNALS``).
- ``features``: rows -> ``DriftSide`` (LF votes, weak labels, sampled embeddings and champion probabilities).
- ``explain``: new examples, log-odds terms, class shares, LF coverage, estimated accuracy, the verdict.
- ``check``: ``check_drift`` runs it all and decides the action.
"""

from driftloop.tasks.drift.check import DriftCheck, check_drift, persistent
from driftloop.tasks.drift.features import featurize, majority_vote
from driftloop.tasks.drift.signals import SIGNALS, DriftSide, DriftSignal, SignalContext, SignalOutcome

__all__ = [
    "SIGNALS",
    "DriftCheck",
    "DriftSide",
    "DriftSignal",
    "SignalContext",
    "SignalOutcome",
    "check_drift",
    "featurize",
    "majority_vote",
    "persistent",
]
