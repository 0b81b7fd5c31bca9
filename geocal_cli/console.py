"""Terminal output: results on stdout, progress and errors on stderr (rich; NO_COLOR honoured)."""

from __future__ import annotations

from contextlib import contextmanager
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


@contextmanager
def item_progress(total: int, what: str):
    """Progress over `total` items: a rich bar (done, failed, ETA) on a terminal, one plain
    line per item otherwise (cron mail, CI logs), nothing under --quiet.

    Yields
    ------
    say : callable(str)
        A line about one item (printed above the bar, or plainly).
    tick : callable(dict)
        One item done; the record's `status` counts failures.
    """
    if state.quiet:
        yield (lambda msg: None), (lambda record: None)
        return
    if not err.is_terminal:
        yield progress, (lambda record: None)
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    failed = 0
    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn(),
                  console=err, transient=False) as bar:
        task = bar.add_task(what, total=total, failed=0)

        def tick(record):
            nonlocal failed
            failed += record.get("status") == "failed"
            bar.update(task, advance=1, failed=failed)

        yield (lambda msg: bar.console.print(msg, style="dim", markup=False)), tick
