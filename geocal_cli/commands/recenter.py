"""`geocal recenter`: a new beam centre for an existing geometry."""

from __future__ import annotations

from pathlib import Path

import typer

from geocal_cli.commands._common import (FRAME_OPTION, OVERWRITE_OPTION, CONFIG_OPTION, ENERGY_OPTION, JSON_OPTION,
                                         SHOW_CONFIG_OPTION, VOLTAGE_OPTION, WAVELENGTH_OPTION,
                                         load, parse_names, run_pipeline, show_result)

EPILOG = """Examples:

  geocal recenter ceo2_new.tif --poni ceo2.poni --calibrant CeO2

  geocal recenter au_new.dm4 --poni au.poni -c Au --voltage 200 --ring 1,2 --plot recenter.png

  geocal recenter beam.tif --poni au.poni --method beam

  geocal recenter sad_pattern.dm4 --poni tem.poni --method friedel --plot pairs.png

Distance, tilts and wavelength stay those of --poni; the PONI is moved so that the direct beam
(2θ = 0) lands on the new centre. Outputs: IMAGE-stem.recentered.poni and
IMAGE-stem.recenter.json in the current folder.

Exit codes: 0 ok, 3 bad config, 4 bad input file, 5 no ring, pair or beam found."""


def configure(p: dict):
    """The config from this command's parameters, as typer passes them (shared with
    `geocal batch`, which runs the same options over many inputs)."""
    from geocal_cli.config.recenter import RecenterConfig

    rings = parse_names(p["ring"])
    try:
        rings = tuple(int(k) for k in rings) if rings else None
    except ValueError:
        from geocal_cli.errors import ConfigError

        raise ConfigError(f"--ring {p['ring']!r}: expected ring numbers like 1 or 1,2,3") from None
    return load(RecenterConfig, p["config"], dict(
        image=p["image"], frame=p["frame"], poni=p["poni"], method=p["method"], calibrant=p["calibrant"], ring=rings,
        ellipticity=p["ellipticity"], max_shift_px=p["max_shift"], saturation=p["saturation"],
        energy_kev=p["energy"], wavelength_a=p["wavelength"], voltage_kv=p["voltage"], mask=p["mask"],
        output=p["output"], report=p["report"], plot=p["plot"], overwrite=p["overwrite"]), p["show_config"])


def command(
    image: Path = typer.Argument(None, show_default=False, help="Image: anything fabio reads, or an electron-microscopy file (DM3, DM4, MRC, EMD, MIB, SER/EMI, BLO, TVIPS, HSPY)."),
    frame: str = FRAME_OPTION,
    poni: Path = typer.Option(None, "--poni", help="Reference geometry (PONI) to move.", rich_help_panel="Geometry"),
    method: str = typer.Option(None, "--method", "-m", help="auto | ring | friedel | beam [default: auto: rings when a calibrant is given, then Friedel pairs of spots, then the direct beam]."),
    calibrant: str = typer.Option(None, "--calibrant", "-c", help="pyFAI calibrant name, d-spacing file or CIF: the rings' 2θ.", rich_help_panel="Ring method"),
    ring: str = typer.Option(None, "--ring", help="Use only these calibrant rings, 1-based, comma-separated.", rich_help_panel="Ring method"),
    ellipticity: str = typer.Option(None, "--ellipticity", help="Elliptical ring distortion (TEM lenses): auto | fit | none [default: auto, kept when significant].", rich_help_panel="Ring method"),
    max_shift: float = typer.Option(None, "--max-shift", help="Largest beam move searched, pixels [default: 100]."),
    saturation: float = typer.Option(None, "--saturation", help="Counts at which pixels saturate [default: detect a flat top].", rich_help_panel="Beam method"),
    energy: float = ENERGY_OPTION,
    wavelength: float = WAVELENGTH_OPTION,
    voltage: float = VOLTAGE_OPTION,
    mask: Path = typer.Option(None, "--mask", help="Mask image, non-zero = masked (added to the detector's)."),
    output: Path = typer.Option(None, "--output", "-o", help="PONI to write (default: IMAGE-stem.recentered.poni).", rich_help_panel="Outputs"),
    report: Path = typer.Option(None, "--report", help="JSON report (default: IMAGE-stem.recenter.json).", rich_help_panel="Outputs"),
    plot: Path = typer.Option(None, "--plot", help="PNG: old and new centre, ring points, close-up.", rich_help_panel="Outputs"),
    json_out: bool = JSON_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    config: Path = CONFIG_OPTION,
    show_config: bool = SHOW_CONFIG_OPTION,
) -> None:
    """Find the new beam centre of an image and move an existing geometry onto it.

    ring: sub-pixel ring positions along many azimuths and a robust fit of the shift (and of
    the elliptical distortion of TEM projector lenses) with one 2θ per ring; partial rings
    (beamstop arm, detector edge) are fine. friedel: the centre of symmetry of the Friedel
    pairs (g and −g) of a single-crystal spot pattern, immune to lens ellipticity. beam: a
    Gaussian fit of the direct beam's unsaturated shoulder. The report gives old and new centre in pixels and metres, the
    shift, the residual and 1σ.
    """
    cfg = configure(locals())  # first: locals() are exactly the parameters
    from geocal_cli.pipeline import recenter

    show_result(run_pipeline(recenter.run, cfg), summary_table, json_out)


def summary_table(report: dict):
    """A short rich table of old and new centre, shift, uncertainty and residual."""
    from rich.table import Table

    r = report["results"]
    s = report["uncertainties_1sigma"]["center_px"]
    t = Table(title=f"{r['method']} method", title_justify="left")
    for col, just in (("quantity", "left"), ("x", "right"), ("y", "right"), ("unit", "left")):
        t.add_column(col, justify=just)
    t.add_row("old centre", f"{r['old_center']['x_px']:.3f}", f"{r['old_center']['y_px']:.3f}", "px")
    t.add_row("new centre", f"{r['new_center']['x_px']:.3f}", f"{r['new_center']['y_px']:.3f}", "px")
    t.add_row("1σ", f"{s['x']:.3f}", f"{s['y']:.3f}", "px")
    t.add_row("shift", f"{r['shift']['x_px']:+.3f}", f"{r['shift']['y_px']:+.3f}", "px")
    t.add_row("shift", f"{r['shift']['x_m'] * 1e6:+.2f}", f"{r['shift']['y_m'] * 1e6:+.2f}", "µm")
    res = report["residuals"]
    if "asymmetry_rms_px" in res:
        t.add_row("pair asymmetry rms", f"{res['asymmetry_rms_px']:.3f}", "", f"px ({res['pairs']} pairs)")
    if "rms_px" in res:
        t.add_row("ring residual rms", f"{res['rms_px']:.3f}", "", f"px ({res['points'] - res['rejected']} points)")
    ell = r.get("ellipse")
    if ell and ell["fitted"]:
        t.add_row("ellipse axis ratio, major axis", f"{ell['axis_ratio']:.4f}", f"{ell['major_axis_deg']:.1f}", "—, deg")
    return t
