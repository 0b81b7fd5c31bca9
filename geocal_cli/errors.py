"""Error hierarchy and exit codes (see DESIGN.md, "Errors and exit codes").

Only `geocal_cli.main` turns a `GeocalError` into an `error:` line and an exit code; every
other layer raises.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the `geocal` command."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONFIG = 3
    INPUT = 4
    CALIBRATION = 5
    QUALITY = 6
    BATCH_PARTIAL = 7
    LOCKED = 8
    INTERRUPTED = 130


class GeocalError(Exception):
    """Base of every error geocal reports to the user; `exit_code` selects the exit status."""

    exit_code = ExitCode.INTERNAL


class ConfigError(GeocalError):
    """Invalid configuration: the message names the key, the value and the rule."""

    exit_code = ExitCode.CONFIG


class InputFileError(GeocalError):
    """An input file is missing, unreadable, corrupt, or of the wrong shape or type."""

    exit_code = ExitCode.INPUT


class OutputFileError(GeocalError):
    """An output cannot be written: its folder is missing, read-only or full, or it is a folder."""

    exit_code = ExitCode.INPUT


class CalibrationError(GeocalError):
    """Calibration failed or is undetermined (no rings, no assignment, degenerate geometry)."""

    exit_code = ExitCode.CALIBRATION


class QualityError(GeocalError):
    """A quality threshold was exceeded."""

    exit_code = ExitCode.QUALITY


class BatchPartialError(GeocalError):
    """A batch finished with some items failed; the others completed and were written."""

    exit_code = ExitCode.BATCH_PARTIAL


class LockedError(GeocalError):
    """The output folder is locked by another batch run (and `--wait` ran out)."""

    exit_code = ExitCode.LOCKED
