"""What a subcommand's run wrote, read off its result (shared by the command line and batch)."""

from __future__ import annotations

from pathlib import Path


def written(result) -> list[Path]:
    """The files a run wrote: its main file (`poni`) or its `outputs`, the report and the plot,
    in that order, leaving out those it did not write (None)."""
    return [Path(p) for p in (getattr(result, "poni", None), *getattr(result, "outputs", ()),
                              result.report_path, getattr(result, "plot", None)) if p]
