"""`geocal grid-distortion`: detector distortion from a hole-grid image."""

from __future__ import annotations

from pathlib import Path

import typer

from geocal_cli.commands._common import (FRAME_OPTION, OVERWRITE_OPTION, CONFIG_OPTION, JSON_OPTION, SHOW_CONFIG_OPTION, load,
                                         parse_floats, run_pipeline, show_result)

EPILOG = """Examples:

  geocal grid-distortion grid.edf --pitch 5 --pixel-size 50 -o detector.h5 --plot grid.png

  geocal grid-distortion grid.tif --pitch 2 --dark-spots --spline detector.spline --corrected grid_corr.edf

  geocal grid-distortion fit2d.spline -o detector.h5

  geocal calib-ring lab6.edf --detector detector.h5 --energy 17

The field follows pyFAI: the pixel corner at (row y, column x) lies at (y + dy, x + dx) on an
ideal detector; the detector file loads with pyFAI.detector_factory("detector.h5"). Pixels
outside the hull of the indexed holes are masked, not extrapolated. A .spline or pyFAI .h5
given instead of an image is converted (no grid measured).

Outputs: IMAGE-stem.detector.h5 and IMAGE-stem.grid.json in the current folder.

Exit codes: 0 ok, 3 bad config or pitch inconsistent with the pixel size, 4 bad input file,
5 no grid found or too few holes indexed."""


def configure(p: dict):
    """The config from this command's parameters, as typer passes them (shared with
    `geocal batch`, which runs the same options over many inputs)."""
    from geocal_cli.config.grid_distortion import GridDistortionConfig

    return load(GridDistortionConfig, p["config"], dict(
        image=p["image"], frame=p["frame"], pitch_mm=p["pitch"], pixel_size_um=parse_floats(p["pixel_size"], "--pixel-size"),
        spot_diameter_px=p["spot_diameter"], dark_spots=p["dark_spots"], mask=p["mask"], output=p["output"],
        spline=p["spline"], corrected=p["corrected"], report=p["report"], plot=p["plot"], overwrite=p["overwrite"]), p["show_config"])


def command(
    image: Path = typer.Argument(None, show_default=False, help="Hole-grid image (anything fabio reads), or a Fit2D .spline / pyFAI detector .h5 to convert."),
    frame: str = FRAME_OPTION,
    pitch: float = typer.Option(None, "--pitch", help="Hole spacing of the grid, mm.", rich_help_panel="Grid"),
    pixel_size: str = typer.Option(None, "--pixel-size", help="Nominal pixel size in µm, 'SIZE' or 'ROWS,COLS', checked against the image (±10 %) (default: pitch / measured hole spacing).", rich_help_panel="Grid"),
    spot_diameter: float = typer.Option(None, "--spot-diameter", help="Hole diameter in the image, pixels (default: from the image's autocorrelation).", rich_help_panel="Grid"),
    dark_spots: bool = typer.Option(None, "--dark-spots", help="Dark dots on a bright field instead of bright holes.", rich_help_panel="Grid"),
    mask: Path = typer.Option(None, "--mask", help="Mask image, non-zero = masked."),
    output: Path = typer.Option(None, "--output", "-o", help="pyFAI detector file (NeXus HDF5) to write (default: IMAGE-stem.detector.h5).", rich_help_panel="Outputs"),
    spline: Path = typer.Option(None, "--spline", help="Also write the field as a Fit2D spline.", rich_help_panel="Outputs"),
    corrected: Path = typer.Option(None, "--corrected", help="Also write the grid image corrected with the field (pyFAI Distortion).", rich_help_panel="Outputs"),
    report: Path = typer.Option(None, "--report", help="JSON report (default: IMAGE-stem.grid.json).", rich_help_panel="Outputs"),
    plot: Path = typer.Option(None, "--plot", help="PNG: dx and dy maps, misplacement of the corrected holes.", rich_help_panel="Outputs"),
    json_out: bool = JSON_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    config: Path = CONFIG_OPTION,
    show_config: bool = SHOW_CONFIG_OPTION,
) -> None:
    """Measure a detector's spatial distortion from an image of a regular hole grid.

    Spots are found with a matched filter whose size comes from the image, indexed by a
    lattice grown from the least-distorted region (strong distortion, missing holes and
    stray spots do not break it), fitted by an ideal grid (origin, rotation, pixel size along
    each axis) and a thin-plate smoothing spline with the smoothing chosen by generalised
    cross-validation. The report gives the pixel sizes, the skew, the field's rms and max,
    and the holes re-measured on the corrected image against the ideal grid.
    """
    cfg = configure(locals())  # first: locals() are exactly the parameters
    from geocal_cli.pipeline import grid_distortion

    show_result(run_pipeline(grid_distortion.run, cfg), summary_table, json_out)


def summary_table(report: dict):
    """A short rich table: holes, pixel sizes, skew, field, and the corrected image's check."""
    from rich.table import Table

    r = report["results"]
    t = Table(title=f"distortion from a {r['source']}", title_justify="left")
    for col, just in (("quantity", "left"), ("value", "right"), ("unit", "left")):
        t.add_column(col, justify=just)
    t.add_row("pixel size (y, x)", f"{r['pixel_size_um']['y']:.4f}, {r['pixel_size_um']['x']:.4f}", "µm")
    if "spots" in r:
        s, g = r["spots"], r["grid"]
        rej = s["rejected"]
        t.add_row("holes indexed", f"{s['indexed']} of {s['candidates']}",
                  f"rejected: {rej['cut_by_edge_or_mask']} cut, {rej['off_the_grid']} off the grid, "
                  f"{rej['outliers']} outliers")
        if "pixel_size_deviation_percent" in g:
            dev = g["pixel_size_deviation_percent"]
            t.add_row("vs nominal", f"{dev['y']:+.3f}, {dev['x']:+.3f}", "%")
        t.add_row("grid rotation, skew", f"{g['rotation_deg']:.4f}, {g['skew_deg']:+.4f}", "deg")
    f = r["field"]
    t.add_row("field rms, max", f"{f['rms_px']:.3f}, {f['max_px']:.3f}", "px")
    if "before_correction" in r:
        b, a = r["before_correction"], r["after_correction"]
        t.add_row("holes vs ideal grid, raw", f"{b['rms_px']:.3f}, {b['max_px']:.3f}", "px rms, max")
        t.add_row("holes vs ideal grid, corrected", f"{a['rms_px']:.3f}, {a['max_px']:.3f}",
                  f"px rms, max ({a['max_pitch']:.4f} pitch, {a['holes']} holes)")
    return t
