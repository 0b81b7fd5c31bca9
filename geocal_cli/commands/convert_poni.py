"""`geocal convert-poni`: one detector geometry, another program's convention."""

from __future__ import annotations

from pathlib import Path

import typer

from geocal_cli import console
from geocal_cli.commands._common import (FRAME_OPTION, OVERWRITE_OPTION, CONFIG_OPTION, ENERGY_OPTION, JSON_OPTION,
                                         SHOW_CONFIG_OPTION, VOLTAGE_OPTION, WAVELENGTH_OPTION,
                                         load, parse_floats, parse_names, show_result)

EPILOG = """Formats: poni (pyFAI), dioptas (PONI of the up-down flipped image), fit2d (YAML/JSON),
imaged11 (.par), cdiutils (det_calib_params YAML), dials (.expt), gsas2 (.imctrl).

Examples:

  geocal convert-poni CeO2_Pilatus1M.poni --from dioptas --to poni --shape 1043,981

  geocal convert-poni indexed.expt --to poni -o detector.poni

  geocal convert-poni calibrated.expt --to poni --fix-units

  geocal convert-poni controls.imctrl --to poni --flip ud --shape 2300,2300

  geocal convert-poni ceo2.poni --to imaged11 --image ceo2.tif --calibrant CeO2

The report (OUTPUT-name.convert.json) gives the values read and written, the PONI equivalent,
and a self-check: the written file read back must give the same 2θ and χ at every pixel.
With --image and --calibrant it also says which flips of that image the geometry fits.

Exit codes: 0 ok, 3 bad option or a convention that cannot describe the geometry, 4 bad input file."""


def configure(p: dict):
    """The config from this command's parameters, as typer passes them (shared with
    `geocal batch`, which runs the same options over many inputs)."""
    from geocal_cli.config.convert_poni import ConvertPoniConfig

    dims = parse_floats(p["shape"], "--shape")
    if dims is not None and not all(float(v).is_integer() for v in dims):
        from geocal_cli.errors import ConfigError

        raise ConfigError(f"--shape {p['shape']!r}: expected whole numbers of pixels ROWS,COLS")
    return load(ConvertPoniConfig, p["config"], dict(
        input=p["input"], to=p["to"], **{"from": p["source_format"]}, output=p["output"], image=p["image"], frame=p["frame"],
        calibrant=p["calibrant"], pixel_size_um=parse_floats(p["pixel_size"], "--pixel-size"), shape=tuple(int(v) for v in dims) if dims else None,
        flip=parse_names(p["flip"]), orientation=p["orientation"], panel=p["panel"], fix_units=p["fix_units"],
        energy_kev=p["energy"], wavelength_a=p["wavelength"], voltage_kv=p["voltage"], report=p["report"], overwrite=p["overwrite"]), p["show_config"])


def command(
    input: Path = typer.Argument(None, show_default=False, help="Geometry file: .poni, .expt, .par, .imctrl, Fit2D or cdiutils YAML/JSON."),
    to: str = typer.Option(None, "--to", "-t", help="Format to write: poni | dioptas | fit2d | imaged11 | cdiutils | dials | gsas2."),
    source_format: str = typer.Option(None, "--from", "-f", help="Format of INPUT [default: detected; a Dioptas PONI needs --from dioptas]."),
    output: Path = typer.Option(None, "--output", "-o", help="File to write [default: INPUT-stem + the format's suffix].", rich_help_panel="Outputs"),
    image: Path = typer.Option(None, "--image", help="The image the geometry belongs to: gives the shape; with --calibrant, rates its flips.", rich_help_panel="Image"),
    frame: str = FRAME_OPTION,
    calibrant: str = typer.Option(None, "--calibrant", "-c", help="Calibrant whose rings rate which flips of --image the geometry fits.", rich_help_panel="Image"),
    pixel_size: str = typer.Option(None, "--pixel-size", help="Pixel size in µm, 'SIZE' or 'ROWS,COLS', for a file that does not state it (a GSAS-II .imctrl without pixelSize) [default: from --image's header].", rich_help_panel="Image"),
    shape: str = typer.Option(None, "--shape", help="Image shape ROWS,COLS when neither the file nor --image gives it.", rich_help_panel="Image"),
    flip: str = typer.Option(None, "--flip", help="Convert for the image flipped: ud, lr, transpose, comma-separated, in order.", rich_help_panel="Array convention"),
    orientation: int = typer.Option(None, "--orientation", help="pyFAI detector orientation 1-4 of the result [default: the input's, or its mirror after a flip].", rich_help_panel="Array convention"),
    panel: int = typer.Option(None, "--panel", help="Panel of a multi-panel DIALS detector.", rich_help_panel="DIALS"),
    fix_units: bool = typer.Option(None, "--fix-units", help="Read a DIALS wavelength written in metres (a known slip) as metres.", rich_help_panel="DIALS"),
    energy: float = ENERGY_OPTION,
    wavelength: float = WAVELENGTH_OPTION,
    voltage: float = VOLTAGE_OPTION,
    report: Path = typer.Option(None, "--report", help="JSON report [default: OUTPUT-name.convert.json].", rich_help_panel="Outputs"),
    json_out: bool = JSON_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    config: Path = CONFIG_OPTION,
    show_config: bool = SHOW_CONFIG_OPTION,
) -> None:
    """Convert a detector geometry between pyFAI, Dioptas, Fit2D, ImageD11, cdiutils/xrayutilities,
    DIALS and GSAS-II conventions, with image flips and detector orientations.

    Every conversion goes through the exact map from pixel to laboratory position of each
    program, so the written geometry gives the same 2θ (and, where the target can say so, the
    same χ) at every pixel; the report proves it by reading the written file back.
    """
    cfg = configure(locals())  # first: locals() are exactly the parameters
    from geocal_cli.pipeline import convert_poni

    show_result(convert_poni.run(cfg, progress=console.progress), summary_table, json_out)


def summary_table(report: dict):
    """What was converted, the PONI equivalent, the self-check and the flip check."""
    from rich.table import Table

    r = report["results"]
    p = r["poni"]
    t = Table(title=f"{r['from']} → {r['to']}" + (f" (flips: {', '.join(r['flips'])})" if r["flips"] else ""),
              title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("dist", f"{p['dist']:.6f} m")
    t.add_row("poni1, poni2", f"{p['poni1']:.6f}, {p['poni2']:.6f} m")
    t.add_row("rot1, rot2, rot3", f"{p['rot1']:.6f}, {p['rot2']:.6f}, {p['rot3']:.6f} rad")
    t.add_row("orientation", str(p["orientation"]))
    t.add_row("beam centre x, y", f"{r['beam_center_px']['x']:.3f}, {r['beam_center_px']['y']:.3f} px")
    c = report["self_check"]
    t.add_row("self-check max |Δ2θ|", f"{c['max_abs_dtth_rad']:.1e} rad")
    t.add_row("self-check χ turn", f"{c['chi_offset_deg']:.6f}° (residual {c['max_abs_dchi_after_offset_rad']:.1e} rad)")
    for f in report["flip_check"] or []:
        t.add_row(f"image {f['name']}", f"{'FITS' if f['fits'] else 'no'}: {f['points']} points, "
                  f"median {f['median_offset_px']:.2f} px")
    return t
