"""Every error driftloop raises on purpose, in one hierarchy.

Catch ``DriftloopError`` to handle any of them; ``InputError`` and its subclasses are caused by
something the user supplied (a file, a config value, a module, a missing package). Each message
says what is wrong and what to do about it.
"""

from __future__ import annotations

from typing import Any


class DriftloopError(Exception):
    """Base of driftloop's own errors; the message names the problem and the fix."""


# -- caused by user input ---------------------------------------------------------------------


class InputError(DriftloopError, ValueError):
    """A user-supplied file, table or value cannot be used; the message says why and what to do."""


class ConfigError(InputError):
    """A config file or override is invalid; the message names the field and the fix."""


class ResourceError(InputError):
    """A model, corpus or tool a step needs is missing; the message names what to install."""


class LFModuleError(InputError):
    """An LF module cannot be used; the message says why and what to fix."""


class TrainInputError(InputError):
    """The training or dev table breaks the data contract; the message names the column and the fix."""


class EvaluationInputError(InputError):
    """The test table or the probabilities break the contract; the message says which and how."""


# -- outcomes of a run ------------------------------------------------------------------------


class ValidationFailed(DriftloopError):
    """A frame failed critical expectations; the message names each one and what to do.

    ``report`` is the validation report (``driftloop.tasks.validate.ValidationReport``) when there is one.
    """

    def __init__(self, message: str, report: Any = None):
        super().__init__(message)
        self.report = report


class TrainingBusyError(DriftloopError, RuntimeError):
    """Another process is training on the same data, config and seed (same checkpoint folder)."""


class TrainingDivergedError(DriftloopError, RuntimeError):
    """The loss became NaN or infinite; nothing was saved or registered."""


class TrainingLaunchError(DriftloopError, RuntimeError):
    """A multi-process training run (``accelerate launch``) failed; the message holds the ranks' last output."""


class DeviceUnavailableError(DriftloopError, RuntimeError):
    """The configured device is not present on this machine."""


class RegistryError(DriftloopError, ValueError):
    """A registry operation cannot be done (unknown or duplicate version, broken file); the message says why."""


class NoChampionError(DriftloopError, RuntimeError):
    """The registry has no champion yet; the message says how to get one."""
