"""User-facing errors: each says what is wrong and how to fix it.

The CLI prints `GanpipeError`s as one line (plus the hint) and exits non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GanpipeError(Exception):
    """An error caused by input or environment, reported without a traceback."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self):  # survive pickling across Ray processes with the hint intact
        return (self.__class__, (self.message, self.hint))

    def __str__(self) -> str:
        return f"{self.message}" + (f" (fix: {self.hint})" if self.hint else "")


class ConfigError(GanpipeError):
    """A config file or override is invalid."""


class UnknownNameError(ConfigError):
    """A registry lookup failed; the message lists the valid names."""


class DataError(GanpipeError):
    """Input data is missing, empty, corrupt or inconsistent."""


class TrainingError(GanpipeError):
    """Training stopped for a named reason (divergence, collapse, ...)."""

    exit_code = 3


class TrackingError(GanpipeError):
    """The MLflow tracking store or registry cannot be used."""


class CheckpointError(GanpipeError):
    """A checkpoint is missing, incomplete or fails verification."""


class ServiceError(GanpipeError):
    """A service ganpipe connects to (a Ray cluster, a Prefect server) is unreachable or
    refuses this client."""
