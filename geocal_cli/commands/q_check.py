"""`geocal q-check`: is this geometry consistent? Powder rings or DIALS stills."""

from __future__ import annotations

from pathlib import Path

import typer

from geocal_cli.commands._common import (FRAME_OPTION, OVERWRITE_OPTION, CONFIG_OPTION, ENERGY_OPTION, JSON_OPTION,
                                         SHOW_CONFIG_OPTION, VOLTAGE_OPTION, WAVELENGTH_OPTION,
                                         load, run_pipeline, show_result)

EPILOG = """Examples:

  geocal q-check ceo2.tif --poni ceo2.poni --calibrant CeO2 --plot ceo2.qcheck.png

  geocal q-check lab6.cbf --poni lab6.poni -c LaB6 --max-median-microstrain 200

  geocal q-check --expt indexed.expt --refl indexed.refl --plot stills.png

  geocal q-check --expt refined.expt --refl refined.refl --positions cal --json

Powder q is 4π sin θ / λ (pyFAI's); DIALS q is s1 − s0 with |s| = 1/λ (DIALS'). Output:
INPUT-stem.qcheck.json in the current folder (written also when the check fails).

Exit codes: 0 consistent, 3 bad config, 4 bad input file, 5 no control points near the
geometry, 6 check failed (a threshold exceeded, a systematic error or a flip/rotation slip)."""


def configure(p: dict):
    """The config from this command's parameters, as typer passes them (shared with
    `geocal batch`, which runs the same options over many inputs)."""
    from geocal_cli.config.q_check import QCheckConfig

    return load(QCheckConfig, p["config"], dict(
        image=p["image"], frame=p["frame"], poni=p["poni"], calibrant=p["calibrant"], mask=p["mask"], expt=p["expt"], refl=p["refl"],
        positions=p["positions"], fix_units=p["fix_units"], max_median_microstrain=p["max_median_microstrain"],
        max_mean_dq=p["max_mean_dq"], fail_on_systematic=p["fail_on_systematic"], energy_kev=p["energy"],
        wavelength_a=p["wavelength"], voltage_kv=p["voltage"], report=p["report"], plot=p["plot"], overwrite=p["overwrite"]), p["show_config"])


def command(
    image: Path = typer.Argument(None, help="Powder image of a calibrant (powder mode)."),
    frame: str = FRAME_OPTION,
    poni: Path = typer.Option(None, "--poni", help="Geometry checked, for the image as geocal reads it.", rich_help_panel="Powder mode"),
    calibrant: str = typer.Option(None, "--calibrant", "-c", help="pyFAI calibrant name, d-spacing file or CIF.", rich_help_panel="Powder mode"),
    mask: Path = typer.Option(None, "--mask", help="Mask image, non-zero = masked (added to the detector's).", rich_help_panel="Powder mode"),
    max_median_microstrain: float = typer.Option(None, "--max-median-microstrain", help="Fail when the median geometric |Δd/d| exceeds this, µε [default: 500].", rich_help_panel="Powder mode"),
    expt: Path = typer.Option(None, "--expt", help="Indexed DIALS experiment list (.expt).", rich_help_panel="DIALS stills mode"),
    refl: Path = typer.Option(None, "--refl", help="Its reflection table (.refl, DIALS msgpack).", rich_help_panel="DIALS stills mode"),
    positions: str = typer.Option(None, "--positions", help="obs | cal: reflection positions checked, observed or DIALS' predicted [default: obs].", rich_help_panel="DIALS stills mode"),
    max_mean_dq: float = typer.Option(None, "--max-mean-dq", help="Fail when the mean |Δq| exceeds this, Å⁻¹ [default: no limit].", rich_help_panel="DIALS stills mode"),
    fix_units: bool = typer.Option(None, "--fix-units", help="Read a DIALS wavelength written in metres as Å.", rich_help_panel="DIALS stills mode"),
    fail_on_systematic: bool = typer.Option(None, "--fail-on-systematic/--no-fail-on-systematic", help="Fail when the residuals show a systematic geometry error [default: fail]."),
    energy: float = ENERGY_OPTION,
    wavelength: float = WAVELENGTH_OPTION,
    voltage: float = VOLTAGE_OPTION,
    report: Path = typer.Option(None, "--report", help="JSON report (default: INPUT-stem.qcheck.json).", rich_help_panel="Outputs"),
    plot: Path = typer.Option(None, "--plot", help="PNG: Δq/q heatmap on the detector, Δq against χ and radius (powder) or resolution (stills).", rich_help_panel="Outputs"),
    json_out: bool = JSON_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    config: Path = CONFIG_OPTION,
    show_config: bool = SHOW_CONFIG_OPTION,
) -> None:
    """Check that a geometry puts q where the sample says it is, and name what is wrong.

    Powder: control points on every usable calibrant ring; per point q from the geometry
    against 2π/d; statistics overall and per ring in Å⁻¹ and µε. DIALS stills: every indexed
    reflection's q from the crystal model (with goniometer rotations), from its pixel and from
    the table; the excitation error apart from the geometric residual. Then a diagnosis: which
    detector or beam parameter (distance, beam centre, tilts, wavelength) would explain the
    residuals, with its size and significance; a mirrored detector or a turned crystal frame;
    or that they are random.
    """
    cfg = configure(locals())  # first: locals() are exactly the parameters
    from geocal_cli.errors import QualityError
    from geocal_cli.pipeline import q_check

    res = run_pipeline(q_check.run, cfg)
    show_result(res, summary_table, json_out)
    if res.failed:
        raise QualityError("q-check failed: " + "; ".join(res.failed))


def summary_table(report: dict):
    """A short rich table: |Δq| and strain (powder) or |Δq| per experiment (stills), and the
    diagnosis."""
    from rich.table import Table

    r = report["results"]
    o = r["overall"]
    t = Table(title=f"{report['mode']} q-check: {report['verdict']['status']}", title_justify="left")
    for col, just in (("quantity", "left"), ("value", "right"), ("unit", "left")):
        t.add_column(col, justify=just)
    if report["mode"] == "powder":
        t.add_row("control points, rings", f"{o['points']}, {len(r['rings'])}", "")
        t.add_row("mean / median / max |Δq|",
                  f"{o['mean_abs_dq']:.2e} / {o['median_abs_dq']:.2e} / {o['max_abs_dq']:.2e}", "Å⁻¹")
        t.add_row("median geometric |Δd/d|", f"{o['geometric_median_abs_microstrain']:.0f}", "µε")
        t.add_row("median |Δd/d| per point, scatter rms",
                  f"{o['median_abs_microstrain']:.0f}, {o['scatter_rms_microstrain']:.0f}", "µε")
    else:
        t.add_row("experiments, reflections", f"{o['experiments']}, {report['residuals']['reflections']}", "")
        t.add_row("mean / median / max |Δq|",
                  f"{o['mean_abs_dq']:.2e} / {o['median_abs_dq']:.2e} / {o['max_abs_dq']:.2e}", "Å⁻¹")
        t.add_row("mean |Δq| per experiment",
                  " ".join(f"{e['mean_abs_dq']:.1e}" for e in r["experiments"][:8])
                  + (" …" if len(r["experiments"]) > 8 else ""), "Å⁻¹")
        t.add_row("mean |excitation error|", f"{o['mean_abs_excitation']:.2e}", "Å⁻¹")
        t.add_row("position rmsd", f"{o['rmsd_position_px']:.2f}", "px")
    t.add_row("diagnosis", r["diagnosis"]["summary"], "")
    return t
