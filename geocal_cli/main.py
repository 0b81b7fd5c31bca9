"""The `geocal` command: typer app, global flags, and the one place errors become exit codes."""

from __future__ import annotations

import os
import signal
import sys


def _stop_at_start(signum, frame) -> None:
    # Before `run` takes over nothing has been written: leave at once, without a traceback
    # from the middle of an import.
    os.write(2, b"interrupted\n")
    os._exit(130)


_argv0 = sys.argv[0] if sys.argv else ""
if os.path.basename(_argv0) == "geocal" or _argv0.endswith(os.path.join("geocal_cli", "__main__.py")):
    # Imported by the `geocal` console script or `python -m geocal_cli`, not by a program or
    # a test runner with its own handlers (`python -m pytest` runs a __main__.py too: its
    # Ctrl-C is its own).
    for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # A SIGINT the shell ignores (a background job) stays ignored.
        if signal.getsignal(_sig) is not signal.SIG_IGN:
            signal.signal(_sig, _stop_at_start)

# geocal's linear algebra is many tiny least-squares problems: threaded BLAS only adds
# overhead (and thrashes when runs share a machine). Set before numpy loads; an explicit
# user setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import logging

import typer

from geocal_cli import __version__, console
from geocal_cli.commands import (batch, calib_ring, convert_poni, demo, grid_distortion, q_check,
                                 recenter, schema, simulate)
from geocal_cli.errors import ExitCode, GeocalError
from geocal_cli.commands._help import GeocalCommand, GeocalGroup, tidy_help
from geocal_cli.io.messages import library_log

app = typer.Typer(
    name="geocal",
    help="Calibrate the geometry of area detectors for X-ray and electron diffraction, from the "
         "shell: blind, without clicks, with uncertainties.",
    no_args_is_help=True,
    cls=GeocalGroup,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        console.out.print(f"geocal {__version__}", markup=False)
        raise typer.Exit(0)


def _man(name: str | None) -> None:
    if name is None:
        return
    import shutil
    import subprocess
    import tempfile

    from geocal_cli._generate import man_pages

    pages = man_pages()
    page = pages.get(f"{name}.1") or pages.get(f"geocal-{name}.1")
    if page is None:
        raise typer.BadParameter(f"no manual page {name!r}: geocal or one of its subcommands "
                                 f"({', '.join(n[7:-2] for n in pages if n != 'geocal.1')})")
    if console.out.is_terminal and shutil.which("man"):
        with tempfile.NamedTemporaryFile("w", suffix=".1", encoding="utf-8") as tmp:
            tmp.write(page)
            tmp.flush()
            subprocess.run(["man", "-l", tmp.name], check=False)
    else:
        sys.stdout.write(page)
    raise typer.Exit(0)


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    man: str = typer.Option(None, "--man", callback=_man, is_eager=True, metavar="NAME",
                            help="Show the manual page of geocal or of a subcommand (calib-ring …) "
                                 "and exit; roff on stdout when it is not a terminal."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors (and --json output)."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Also show the messages of the libraries geocal uses (fabio, pyFAI, "
                                      "Python warnings), at debug level."),
    traceback: bool = typer.Option(False, "--traceback", help="Show the Python traceback of an error."),
) -> None:
    """geocal: detector geometry calibration from the shell."""
    console.state.quiet = quiet
    console.state.traceback = traceback
    if verbose:
        library_log(logging.DEBUG)


#: Subcommand → (its module, extra settings); `batch` takes its run subcommand's options.
SUBCOMMANDS = {
    "calib-ring": (calib_ring, {}), "recenter": (recenter, {}), "convert-poni": (convert_poni, {}),
    "q-check": (q_check, {}), "grid-distortion": (grid_distortion, {}),
    "batch": (batch, {"options_metavar": "SUBCOMMAND INPUT... [OPTIONS]",
                      "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}}),
    "simulate": (simulate, {}), "demo": (demo, {}), "schema": (schema, {}),
}
for _name, (_module, _settings) in SUBCOMMANDS.items():
    app.command(_name, cls=GeocalCommand, epilog=_module.EPILOG, **_settings)(_module.command)


tidy_help(app)


#: A stop signal arrived during this run (an import it cut short may surface later as
#: another exception, an ImportError "initialization failed" say: still an interrupt).
_signalled = False


def _stop(signum, frame) -> None:
    global _signalled
    _signalled = True
    raise KeyboardInterrupt


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and map every outcome to an exit code.

    SIGTERM and SIGHUP stop a run as Ctrl-C does: no output is committed, "interrupted" on
    stderr, exit 130. Once the outcome is decided, signals are ignored: the exit code then
    says what happened.
    """
    global _signalled
    _signalled = False
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        for sig, handler in previous.items():
            # A SIGINT the shell ignores (a background job) stays ignored.
            if not (sig == signal.SIGINT and handler is signal.SIG_IGN):
                signal.signal(sig, _stop)
        # fabio and pyFAI log (with tracebacks) what geocal reports as its own errors, and
        # their notes ("Data at tag id … smaller than expected") are not the user's business
        # unless asked (-v).
        library_log(None)
        code = _outcome(argv)
    except KeyboardInterrupt:
        # A signal between the handlers' installation and the command's own error handling.
        _settle()
        code = _interrupted()
    finally:
        # Called in-process (tests, scripts), leave the caller's handlers as they were; the
        # command's own start-up handler is not restored (the outcome is decided).
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if handler is _stop_at_start else
                          handler if handler is not None else signal.SIG_DFL)
    if argv is None:
        _freeze_for_exit()
    sys.exit(code)


def _freeze_for_exit() -> None:
    """Leave every object to the operating system at exit: the interpreter's closing garbage
    collections walk all of scipy's, pyFAI's and matplotlib's objects (0.3 s per process, a
    sixth of a small calibration's wall time) and free nothing the end of the process does
    not. Cleanup that matters (files, locks, workers) is explicit and already done."""
    import gc

    gc.freeze()


def _settle() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


#: The program's own flags, which a user may also put after the subcommand.
GLOBAL_FLAGS = ("--quiet", "-q", "--verbose", "-v", "--traceback")


def hoist_global_flags(group, args: list[str]) -> list[str]:
    """`geocal simulate x.edf … -q` read as `geocal -q simulate x.edf …`: the program's flags
    given after the subcommand move before it (click takes a group's options only there).
    A token that is the value of the option before it (for batch, of its subcommand's
    options too), or that follows `--`, stays where it is.

    Parameters
    ----------
    group : click.Group
        The `geocal` command.
    args : list of str
        The command line after the program name.

    Returns
    -------
    list of str
    """
    sub = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
    if sub is None or args[sub] not in group.commands:
        return args
    commands = [group.commands[args[sub]]]
    if args[sub] == "batch" and sub + 1 < len(args) and args[sub + 1] in batch.INPUT_PARAM:
        commands.append(batch.sub_command(args[sub + 1]))
    valued = {opt for cmd in commands for p in cmd.params
              if getattr(p, "param_type_name", "") == "option" and not p.is_flag and not p.count
              for opt in p.opts}
    head, moved, rest = args[:sub], [], []
    tail = args[sub:]
    for i, token in enumerate(tail):
        if token == "--":
            rest.extend(tail[i:])
            break
        if token in GLOBAL_FLAGS and not (rest and rest[-1] in valued):
            moved.append(token)
        else:
            rest.append(token)
    return head + moved + rest


def _outcome(argv) -> int:
    """Run the command; print how it ended; the exit code."""
    try:
        command = typer.main.get_command(app)
        given = sys.argv[1:] if argv is None else list(argv)
        args = hoist_global_flags(command, given)
        from geocal_cli.io import reports

        reports.command_line = ["geocal", *given]
        rv = command.main(args=args, prog_name="geocal", standalone_mode=False)
    except GeocalError as exc:
        _settle()
        if _signalled:
            return _interrupted()
        if console.state.traceback:
            console.err.print_exception()
        console.err.print(f"error: {exc}", markup=False, highlight=False)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _settle()
        return _interrupted()
    except Exception as exc:
        _settle()
        # typer carries its own click: recognise its exceptions by behaviour, not by class.
        if type(exc).__name__ == "Abort" or _signalled:
            return _interrupted()
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return ExitCode.USAGE
        if console.state.traceback:
            console.err.print_exception()
        console.err.print(f"error: internal error: {exc.__class__.__name__}: {exc}. This is a bug: "
                          "please report it with the command line (run again with --traceback "
                          "for details).", markup=False)
        return ExitCode.INTERNAL
    _settle()
    if rv == ExitCode.INTERRUPTED:
        # typer turns Ctrl-C into a silent Exit(130).
        return _interrupted()
    return rv if isinstance(rv, int) else ExitCode.OK


def _interrupted() -> int:
    # No import here: the interrupt may have cut an import short (yaml, say), and importing
    # again on top of the half-initialised module fails with an AttributeError (exit 1). A
    # run whose output module never loaded has committed nothing.
    outputs = sys.modules.get("geocal_cli.io.outputs")
    committed = getattr(outputs, "commits", None)
    console.err.print("interrupted" + (" after its outputs were written (they are complete)"
                                       if committed is not None and committed() else ""),
                      markup=False)
    return ExitCode.INTERRUPTED
