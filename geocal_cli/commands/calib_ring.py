"""`geocal calib-ring`: blind calibration from one calibrant image."""

from __future__ import annotations

from pathlib import Path

import typer

from geocal_cli.commands._common import (FRAME_OPTION, OVERWRITE_OPTION, CONFIG_OPTION, ENERGY_OPTION, JSON_OPTION,
                                         KALPHA2_RATIO_OPTION, PIXEL_SIZE_OPTION, SHOW_CONFIG_OPTION,
                                         VOLTAGE_OPTION, WAVELENGTH_DOUBLET_OPTION, load, parse_floats,
                                         parse_names, parse_wavelength, run_pipeline, show_result)

EPILOG = """Examples:

  geocal calib-ring lab6.cbf --calibrant LaB6 --energy 17 --detector Pilatus1M

  geocal calib-ring ceo2.tif -c CeO2 --wavelength 0.4066 -d Pilatus1M --plot ceo2.png

  geocal calib-ring au.tif -c au.cif --voltage 200 --pixel-size 55

  geocal calib-ring series.emd -c Au --frame sum

  geocal calib-ring lab6_mo.tif -c LaB6 --wavelength 0.70930,0.71359 --pixel-size 100

  geocal calib-ring unknown.cbf -c auto --energy 30 -d Pilatus1M

  geocal calib-ring frame.tif -c LaB6 --energy 14 -d Pilatus300kw --guess old.poni --fix dist,rot1,rot2,rot3,wavelength

Outputs: IMAGE-stem.poni (pyFAI PONI 2.1) and IMAGE-stem.calib.json in the current folder;
with electrons (--voltage or the file's metadata) also IMAGE-stem.ellipse.json beside the PONI.

Exit codes: 0 ok, 3 bad config, 4 bad input file, 5 calibration failed or undetermined."""


def configure(p: dict):
    """The config from this command's parameters, as typer passes them (shared with
    `geocal batch`, which runs the same options over many inputs)."""
    from geocal_cli.config.calib_ring import CalibRingConfig

    return load(CalibRingConfig, p["config"], dict(
        image=p["image"], frame=p["frame"], calibrant=p["calibrant"], energy_kev=p["energy"], **parse_wavelength(p["wavelength"]), kalpha2_ratio=p["kalpha2_ratio"],
        voltage_kv=p["voltage"], detector=p["detector"], pixel_size_um=parse_floats(p["pixel_size"], "--pixel-size"),
        mask=p["mask"], guess=p["guess"], fix=parse_names(p["fix"]), max_rings=p["max_rings"], min_rings=p["min_rings"],
        output=p["output"], electron_model=p["electron_model"], ellipse=p["ellipse"],
        report=p["report"], plot=p["plot"], overwrite=p["overwrite"]), p["show_config"])


def command(
    image: Path = typer.Argument(None, show_default=False, help="Calibrant image: anything fabio reads (EDF, TIFF, CBF, MAR345, SPE, Eiger HDF5 …) or an electron-microscopy file (DM3, DM4, MRC, EMD, MIB, SER/EMI, BLO, TVIPS, HSPY)."),
    frame: str = FRAME_OPTION,
    calibrant: str = typer.Option(None, "--calibrant", "-c", help="pyFAI calibrant name (LaB6, CeO2, Si, AgBh, Au …), a d-spacing file (Å), a CIF, or 'auto' to identify it from the rings."),
    energy: float = ENERGY_OPTION,
    wavelength: str = WAVELENGTH_DOUBLET_OPTION,
    kalpha2_ratio: float = KALPHA2_RATIO_OPTION,
    voltage: float = VOLTAGE_OPTION,
    detector: str = typer.Option(None, "--detector", "-d", help="pyFAI detector name (pixel size, gaps mask, orientation).", rich_help_panel="Detector"),
    pixel_size: str = PIXEL_SIZE_OPTION,
    mask: Path = typer.Option(None, "--mask", help="Mask image, non-zero = masked (added to the detector's).", rich_help_panel="Detector"),
    guess: Path = typer.Option(None, "--guess", help="Starting geometry (PONI): skips the blind search. A start whose rings fit far better an order off (a comb like AgBh) is refined from that assignment, and the report says so; with --fix dist such a start is refused (exit 5).", rich_help_panel="Refinement"),
    fix: str = typer.Option(None, "--fix", help="Parameters kept fixed, comma-separated, from dist,poni1,poni2,rot1,rot2,rot3,wavelength; 'none' refines all. Default: rot3,wavelength.", rich_help_panel="Refinement"),
    max_rings: int = typer.Option(None, "--max-rings", help="Use at most the first N calibrant rings.", rich_help_panel="Refinement"),
    min_rings: int = typer.Option(None, "--min-rings", help="Calibrant rings the fit must rest on, each seen in the image (default 2; 1 accepts a single ring, e.g. with --guess and --fix dist).", rich_help_panel="Refinement"),
    electron_model: str = typer.Option(None, "--electron-model", help="Electrons: 'lens' (default) fits camera length, projector-lens ellipticity and centre on an untilted detector; 'tilt' fits a tilted detector as for X-rays.", rich_help_panel="Refinement"),
    output: Path = typer.Option(None, "--output", "-o", help="PONI file to write (default: IMAGE-stem.poni).", rich_help_panel="Outputs"),
    report: Path = typer.Option(None, "--report", help="JSON report (default: IMAGE-stem.calib.json).", rich_help_panel="Outputs"),
    ellipse: Path = typer.Option(None, "--ellipse", help="Electrons, lens model: ellipse file for pyxem/py4DSTEM (default: beside the PONI, PONI-stem.ellipse.json).", rich_help_panel="Outputs"),
    plot: Path = typer.Option(None, "--plot", help="PNG: image with fitted rings and control points, residual per ring vs azimuth.", rich_help_panel="Outputs"),
    json_out: bool = JSON_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    config: Path = CONFIG_OPTION,
    show_config: bool = SHOW_CONFIG_OPTION,
) -> None:
    """Calibrate distance, beam centre and tilts from one calibrant ring image, blind.

    No clicks and no starting guess: rings are found, assigned to the calibrant's reflections
    (rings of another phase are left out), and pyFAI's geometry is refined on control points
    of every usable ring. The report gives PONI and Fit2D terms with 1σ uncertainties and
    per-ring residuals in degrees, pixels and microstrain.

    With electrons the model is the microscope's: camera length, the projector lens's
    elliptical distortion and the ring centre (--electron-model tilt for a tilted detector);
    the report gives 1/d and mrad per pixel, and overlapping rings are fitted together.

    Every answer is checked against the rings the image shows: a fit that rests on fewer
    than --min-rings rings, on rings the image does not show, on a calibrant that explains
    the rings worse than another one, or on a wavelength the rings contradict exits 5 and
    says what fits instead.
    """
    cfg = configure(locals())  # first: locals() are exactly the parameters
    from geocal_cli.pipeline import calib_ring

    show_result(run_pipeline(calib_ring.run, cfg), summary_table, json_out)


def summary_table(report: dict):
    """A short rich table of the calibrated geometry and its residuals."""
    from rich.table import Table

    g = report["results"]["geometry"]
    s = report["uncertainties_1sigma"]
    r = report["residuals"]
    t = Table(title=f"{report['results']['calibrant']}: {len(r['rings'])} rings, "
                    f"{r['control_points'] - r['rejected']} control points", title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("1σ", justify="right")
    t.add_column("unit")

    def row(name, value, sigma, unit, fmt):
        if sigma == "fixed" or (sigma is not None and abs(sigma) <= 1e-12 * max(abs(value), 1.0)):
            shown = "fixed"  # a 1σ that vanishes comes only from fixed parameters
        elif sigma is None:
            shown = ""
        else:
            shown = format(sigma, fmt)
            if float(shown) == 0:
                shown = f"{sigma:.1e}"  # below the value's last digit, but not zero
        t.add_row(name, format(value, fmt), shown, unit)

    if "electron" in report["results"]:
        return _electron_rows(report, row) or t
    f2, f2s = g["fit2d"], s["fit2d"]
    row("distance (directDist)", f2["directDist_mm"], f2s["directDist_mm"], "mm", ".4f")
    row("beam centre x", g["beam_center_px"]["x"], s["beam_center_px"]["x"], "px", ".3f")
    row("beam centre y", g["beam_center_px"]["y"], s["beam_center_px"]["y"], "px", ".3f")
    row("tilt", f2["tilt_deg"], f2s["tilt_deg"], "deg", ".4f")
    row("tiltPlanRotation", f2["tiltPlanRotation_deg"], f2s["tiltPlanRotation_deg"], "deg", ".2f")
    row("wavelength", g["poni"]["wavelength_m"] * 1e10, "fixed" if "wavelength" in report["results"]["fixed"]
        else s["wavelength_m"] * 1e10, "Å", ".6f")
    row("residual rms", r["rms_px"], None, "px", ".3f")
    _misfit_rows(r, row)
    row("residual rms", r["rms_tth_deg"], None, "deg 2θ", ".5f")
    row("residual rms Δd/d", r["rms_microstrain"], None, "µε", ".0f")
    if report.get("ring_centres"):
        row("ring centres spread", report["ring_centres"]["spread_px"], None, "px", ".3f")
    return t


def _misfit_rows(r: dict, row) -> None:
    """The residual's split (the points' own scatter, what the model leaves) and the rings'
    own offsets the 1σ allow for."""
    if r.get("points_scatter_px") is not None:
        row("  points' own scatter", r["points_scatter_px"], None, "px", ".3f")
        row("  model misfit", r["model_misfit_px"], None, "px", ".3f")
    if r.get("ring_offset_px"):
        row("  rings' own offsets", r["ring_offset_px"], None, "px", ".3f")


def _electron_rows(report: dict, row) -> None:
    """The electron model's rows: camera length, reciprocal scale, lens ellipse, centre."""
    e = report["results"]["electron"]
    s = report["uncertainties_1sigma"]
    r = report["residuals"]
    row("camera length", e["camera_length_mm"], s["camera_length_mm"], "mm", ".3f")
    row("1/d per pixel (minor axis)", e["reciprocal_per_px_a"]["minor_axis"],
        s["reciprocal_per_px_a"], "Å⁻¹", ".6f")
    row("2θ per pixel", e["mrad_per_px"], None, "mrad", ".5f")
    row("ellipse axis ratio", e["axis_ratio"], s["axis_ratio"], "", ".4f")
    row("ellipse major axis", e["major_axis_deg"], s["major_axis_deg"], "deg", ".2f")
    row("centre x", e["center_px"]["x"], s["beam_center_px"]["x"], "px", ".3f")
    row("centre y", e["center_px"]["y"], s["beam_center_px"]["y"], "px", ".3f")
    row("wavelength", e["wavelength_a"], None, "Å", ".6f")
    row("residual rms", r["rms_px"], None, "px", ".3f")
    _misfit_rows(r, row)
