"""Plots drawn by a helper process that starts with the command.

Importing matplotlib takes about 0.3 s, as long as drawing the figure itself. A command that
will write a plot starts a helper process first (`ahead`); the helper imports matplotlib on
the second core while the calibration runs on the first, then draws each figure it is sent.
The command waits for every figure before it goes on, so reports and their output hashes see
the finished PNG. Where the helper cannot start or dies, the figure is drawn in-process: the
helper saves time and never changes what is written.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import pickle
import signal

from geocal_cli.io import messages
from geocal_cli.io.outputs import atomic_path

#: Modules whose classes the figures' arguments carry (fits, control points, integrations,
#: q-checks), imported while the helper waits: unpickling would import them (0.1 s) after.
WARM = ("geocal_cli.core.rings.calibrate", "geocal_cli.core.rings.integration",
        "geocal_cli.core.q.powder")

_helper = None


class Helper:
    """A spawned process that imports matplotlib at once, then runs plot functions.

    Raises
    ------
    OSError, RuntimeError, AssertionError
        The process could not be started (`multiprocessing`'s errors for no resources, a
        parent still bootstrapping and a daemonic parent).
    """

    def __init__(self):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, messages.current_level),
                                 daemon=True, name="geocal-plots")
        self._proc.start()
        child.close()

    def draw(self, fn, args: tuple, kwargs: dict) -> bool:
        """Run the undecorated plot function `fn` in the helper and wait for it.

        Returns
        -------
        bool
            False when the helper is gone (the caller draws in-process).

        Raises
        ------
        Exception
            What the plot function raised in the helper.
        """
        try:
            self._conn.send((fn.__module__, fn.__name__, args, kwargs))
            ok, error = self._conn.recv()
        except (EOFError, OSError):
            return False
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) while the helper draws: stop it before the run
            # removes its staged files, or it writes into them as they go.
            self.close()
            raise
        if not ok:
            raise error
        return True

    def close(self) -> None:
        """Stop the helper. Every figure it was sent is written by now (`draw` waits), so it
        is terminated rather than left to tear its interpreter down (0.2 s)."""
        self._proc.terminate()
        self._proc.join()
        self._conn.close()


def _serve(conn, log_level) -> None:
    """The helper's loop: import matplotlib, then draw what arrives until None. The
    libraries' messages go where the command sends its own (`io.messages`)."""
    import importlib

    # Ctrl-C reaches the whole process group; the command handles it and closes us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The command ends us with SIGTERM (`close`). Spawning imported its entry point here,
    # whose start-up handler would print "interrupted" on the user's terminal as we go.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    messages.library_log(log_level)
    from geocal_cli.io import plots

    plots._import_pyplot()
    for module in WARM:
        importlib.import_module(module)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        module, name, args, kwargs = job
        try:
            getattr(importlib.import_module(module), name).__wrapped__(*args, **kwargs)
            conn.send((True, None))
        except Exception as exc:  # sent back to the command, which raises it
            conn.send((False, _portable(exc)))


def _portable(exc: Exception) -> Exception:
    """`exc` if it survives pickling both ways, else a RuntimeError that names it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def ahead(wanted: bool):
    """Within the block, plot functions run in a helper started now, if `wanted`.

    Parameters
    ----------
    wanted : bool
        Whether the command will write a plot (its `--plot` option).
    """
    global _helper
    if not wanted or _helper is not None:
        yield
        return
    try:
        _helper = Helper()
    except (OSError, RuntimeError, AssertionError):
        # No process (limits), a process still bootstrapping, or a daemonic one (a pool
        # worker): draw in-process.
        _helper = None
    try:
        yield
    finally:
        helper, _helper = _helper, None
        if helper is not None:
            helper.close()


def offloaded(fn):
    """Decorator of a plot function `fn(path, ...)`: run it in the helper when one is running
    (`ahead`), else here. The helper calls the undecorated function (`__wrapped__`) on the
    file this run stages for `path` (`io.outputs.atomic_path`), so the figure is committed,
    listed in the report and rolled back with the run's other outputs."""

    @functools.wraps(fn)
    def wrapper(path, *args, **kwargs):
        if _helper is None:
            return fn(path, *args, **kwargs)
        with atomic_path(path) as staged:
            if not _helper.draw(fn, (staged, *args), kwargs):
                fn(path, *args, **kwargs)
        return None

    return wrapper
