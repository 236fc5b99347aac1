"""Domain exceptions.

Every error a user can cause by what they feed the tool derives from :class:`Sca2lstmError`. The
command-line layer turns these into one line on stderr and an exit code, so the message must name the
bad thing (file, column, value, flag) and what was expected.
"""

from __future__ import annotations


class Sca2lstmError(Exception):
    """Base class of all errors raised for bad input. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(Sca2lstmError):
    """A bad flag value or option combination (exit code 2, like argparse)."""

    exit_code = 2


class ConfigError(UsageError):
    """An unknown key or an out-of-range value in a configuration."""


class DataError(Sca2lstmError):
    """Missing files, wrong columns, unknown basins, empty periods and other bad data (exit code 1)."""


class CheckpointError(Sca2lstmError):
    """A checkpoint that is missing, corrupt, unsafe or does not fit the model (exit code 1)."""


class TrainingError(Sca2lstmError):
    """Training cannot go on, e.g. too many consecutive non-finite losses (exit code 1)."""


class WeatherSourceError(DataError):
    """A weather service that cannot be reached, refuses the request or answers something unusable (exit 1)."""


class StationFileError(DataError):
    """A station's own file that a forecast needs (its archive of past weather forecasts) cannot be read: the
    station's state, not the request's fault (exit 1; the service answers 503 until the file is fixed)."""
