"""`geocal demo`: a first run on an embedded example, offline."""

from __future__ import annotations

from pathlib import Path

import typer

from geocal_cli import console

EPILOG = """Example:

  geocal demo

  geocal demo --folder /tmp/geocal-demo

Exit codes: 0 ok, 4 the folder cannot be written, 5 the blind calibration failed."""


def command(
    folder: Path = typer.Option(Path("geocal-demo"), "--folder", help="Where the demo writes its files."),
) -> None:
    """Simulate a LaB6 image on a Pilatus 1M, calibrate it blind, and print truth vs fit."""
    from rich.table import Table

    from geocal_cli.io.render import ahead
    from geocal_cli.pipeline import demo

    with ahead(True):  # the demo writes a plot
        res = demo.run(folder, progress=console.progress)
    t = Table(title="geocal demo: blind calibration of a simulated LaB6 image", title_justify="left")
    for col, just in (("quantity", "left"), ("truth", "right"), ("fit", "right"),
                      ("fit − truth", "right"), ("1σ", "right"), ("unit", "left")):
        t.add_column(col, justify=just)
    for name, truth, fit, sigma, unit in res.comparison:
        t.add_row(name, f"{truth:.4f}", f"{fit:.4f}", f"{fit - truth:+.4f}", f"{sigma:.4f}", unit)
    console.result(t)
    console.result(f"ring-position error of the fit vs truth: {res.ring_position_error_px:.4f} px rms")
    console.result(f"files in {res.folder}/: {res.image.name} (image), {res.truth.name} (truth), "
                   f"{res.poni.name}, {res.report.name}, {res.plot.name}")
