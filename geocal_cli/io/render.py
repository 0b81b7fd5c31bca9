"""Plots drawn by helper processes that start with the command.

Importing matplotlib takes about 0.3 s, as long as drawing the figure itself. A command that
will write a plot starts two helper processes first (`ahead`); they import matplotlib on the
second core while the calibration runs on the first, then draw what they are sent. A figure
with an integration check is drawn in two parts, one per helper, on both cores at once
(`submit`), while the command integrates the image for the lower part. The command waits for
every figure before it goes on, so reports and their output hashes see the finished PNG. Where
a helper cannot start or dies, its part is drawn in-process: the helpers save time and never
change what is written.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import pickle
import signal

from geocal_cli.io import messages
from geocal_cli.io.outputs import atomic_path

#: Modules each helper imports while it waits, in the order the helpers start: unpickling
#: a figure's arguments would import them after (0.1–0.5 s). The first helper draws whole
#: figures and the upper parts (fits, control points, q-checks); the second only the
#: integration checks, so it skips the rest (0.5 s of CPU that the command's own work would
#: share a core with).
WARM = (("geocal_cli.core.rings.calibrate", "geocal_cli.core.rings.integration",
         "geocal_cli.core.q.powder"),
        ("geocal_cli.core.rings.integration",))
#: Helper processes a plotting command starts: one per part of a figure drawn at once.
HELPERS = len(WARM)

_helpers: list = []


class Helper:
    """A spawned process that imports matplotlib at once, then runs plot functions.

    Parameters
    ----------
    warm : tuple of str
        Modules it imports while it waits (`WARM`).

    Raises
    ------
    OSError, RuntimeError, AssertionError
        The process could not be started (`multiprocessing`'s errors for no resources, a
        parent still bootstrapping and a daemonic parent).
    """

    def __init__(self, warm: tuple = WARM[0]):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, messages.current_level, warm),
                                 daemon=True, name="geocal-plots")
        self._proc.start()
        child.close()
        self.busy = False

    def send(self, fn, args: tuple, kwargs: dict) -> bool:
        """Start `fn(*args, **kwargs)` in the helper (`fn` undecorated or `offloaded`: the
        helper runs the undecorated function).

        Returns
        -------
        bool
            False when the helper is gone (the caller runs `fn` itself).
        """
        try:
            self._conn.send((fn.__module__, fn.__name__, args, kwargs))
        except (OSError, ValueError):
            return False
        self.busy = True
        return True

    def receive(self):
        """Wait for what the helper's job returned.

        Raises
        ------
        EOFError, OSError
            The helper died (the caller runs the job itself).
        Exception
            What the job raised in the helper.
        """
        try:
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            raise
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) while the helper draws: stop it before the run
            # removes its staged files, or it writes into them as they go.
            self.close()
            raise
        finally:
            self.busy = False
        if not ok:
            raise value
        return value

    def draw(self, fn, args: tuple, kwargs: dict) -> bool:
        """Run the plot function `fn` in the helper and wait for it.

        Returns
        -------
        bool
            False when the helper is gone (the caller draws in-process).

        Raises
        ------
        Exception
            What the plot function raised in the helper.
        """
        if not self.send(fn, args, kwargs):
            return False
        try:
            self.receive()
        except (EOFError, OSError):
            return False
        return True

    def close(self) -> None:
        """Stop the helper. Every figure it was sent is written by now (`draw` waits), so it
        is terminated rather than left to tear its interpreter down (0.2 s)."""
        self._proc.terminate()
        self._proc.join()
        self._conn.close()


def _serve(conn, log_level, warm: tuple) -> None:
    """The helper's loop: import matplotlib and the modules `warm`, then draw what arrives
    until None. The libraries' messages go where the command sends its own (`io.messages`)."""
    import importlib
    import os

    # Below the command's priority: where the helpers' imports compete with the command's
    # own work for a core, the command goes first. Drawing, they run while it waits.
    os.nice(10)
    # Ctrl-C reaches the whole process group; the command handles it and closes us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The command ends us with SIGTERM (`close`). Spawning imported its entry point here,
    # whose start-up handler would print "interrupted" on the user's terminal as we go.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    messages.library_log(log_level)
    from geocal_cli.io import plots

    plots._import_pyplot()
    for module in warm:
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
            fn = getattr(importlib.import_module(module), name)
            conn.send((True, getattr(fn, "__wrapped__", fn)(*args, **kwargs)))
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
    """Within the block, plot functions run in helpers started now (`HELPERS`), if `wanted`.

    Parameters
    ----------
    wanted : bool
        Whether the command will write a plot (its `--plot` option).
    """
    global _helpers
    if not wanted or _helpers:
        yield
        return
    started = []
    for warm in WARM[:HELPERS]:
        try:
            started.append(Helper(warm))
        except (OSError, RuntimeError, AssertionError):
            # No process (limits), a process still bootstrapping, or a daemonic one (a pool
            # worker): draw in-process.
            break
    _helpers = started
    try:
        yield
    finally:
        helpers, _helpers = _helpers, []
        for helper in helpers:
            helper.close()


def _idle():
    """A helper that is not drawing, or None."""
    return next((h for h in _helpers if not h.busy), None)


class Pending:
    """A job of `submit`: its value once the helper returns it (`result`)."""

    def __init__(self, fn, args: tuple, kwargs: dict):
        self._job = (fn, args, kwargs)
        self._helper = _idle()
        if self._helper is None or not self._helper.send(fn, args, kwargs):
            self._helper = None
            self._value = fn(*args, **kwargs)

    def result(self):
        """The job's value, computed here if the helper died.

        Raises
        ------
        Exception
            What the job raised.
        """
        if self._helper is not None:
            helper, self._helper = self._helper, None
            try:
                self._value = helper.receive()
            except (EOFError, OSError):
                fn, args, kwargs = self._job
                self._value = fn(*args, **kwargs)
        return self._value


def submit(fn, *args, **kwargs) -> Pending:
    """Start `fn(*args, **kwargs)` in an idle helper and return at once; without one, run it
    here first. `fn` must be a module-level function and its arguments picklable.

    Returns
    -------
    Pending
    """
    return Pending(fn, args, kwargs)


def gather(pending: list) -> list:
    """The values of `submit`'s jobs, in order. Every job is waited for before an error is
    raised, so that no helper is left with an answer nobody reads.

    Raises
    ------
    Exception
        The first error a job raised.
    """
    values, errors = [], []
    for job in pending:
        try:
            values.append(job.result())
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return values


def offloaded(fn):
    """Decorator of a plot function `fn(path, ...)`: run it in a helper when one is idle
    (`ahead`), else here. The helper calls the undecorated function (`__wrapped__`) on the
    file this run stages for `path` (`io.outputs.atomic_path`), so the figure is committed,
    listed in the report and rolled back with the run's other outputs."""

    @functools.wraps(fn)
    def wrapper(path, *args, **kwargs):
        helper = _idle()
        if helper is None:
            return fn(path, *args, **kwargs)
        with atomic_path(path) as staged:
            if not helper.draw(fn, (staged, *args), kwargs):
                fn(path, *args, **kwargs)
        return None

    return wrapper
