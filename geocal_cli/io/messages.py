"""Where the messages of the libraries geocal calls go: nowhere by default (geocal reports
what matters itself, and fabio and pyFAI log, with tracebacks, what geocal turns into its own
errors), or stderr with -v."""

from __future__ import annotations

#: Loggers of the libraries geocal calls; "py.warnings" carries Python warnings.
LIBRARY_LOGGERS = ("fabio", "pyFAI", "silx", "h5py", "rsciio", "hyperspy", "matplotlib", "py.warnings")
#: The level `library_log` last set (None: silenced), for the processes a command starts.
current_level = None


def library_log(level: int | None) -> None:
    """Route the libraries' log records and Python warnings: None silences them (the default:
    what matters geocal reports itself), a level shows them on stderr from that level on (-v).

    Parameters
    ----------
    level : int or None
        A `logging` level, or None.
    """
    import logging

    global current_level
    current_level = level
    logging.captureWarnings(True)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1 if level is None else level)
        logger.handlers[:] = [] if level is None else [handler]
        logger.propagate = False
