"""Terminal output: results on stdout, progress and errors on stderr (rich; NO_COLOR honoured)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console


@dataclass
class State:
    """Global flags set by the `geocal` callback."""

    quiet: bool = False
    traceback: bool = False


state = State()
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def progress(message: str) -> None:
    """One progress line on stderr, unless --quiet."""
    if not state.quiet:
        err.print(message, style="dim", markup=False)


def result(renderable) -> None:
    """A result on stdout (a table, a line), unless --quiet."""
    if not state.quiet:
        out.print(renderable)
