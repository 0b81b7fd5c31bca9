"""`convert-poni` pipeline: read a geometry in one convention, flip, write in another, prove it.

The proof is a pixel-map self-check: the written file is read back and its (2θ, χ) map is
compared with the source geometry's at the pixels each flipped index came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.config.base import to_plain
from geocal_cli.config.convert_poni import ConvertPoniConfig
from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.io.formats import FORMATS, Options, detect, module, read_geometry
from geocal_cli.io.calibrants import calibrant_file
from geocal_cli.io.outputs import Outputs, active, committing, default_name
from geocal_cli.io.reports import report_header, write_report

SCHEMA = "geocal.convert-poni"
#: Largest 2θ or χ disagreement (radians) the self-check accepts: rounding only.
EXACT = 1e-9


@dataclass(frozen=True)
class ConvertResult:
    """What `run` produced."""

    report: dict
    poni: Path
    report_path: Path
    plot: Path | None
    geometry: object


def default_outputs(cfg: ConvertPoniConfig) -> tuple[Path, Path]:
    """The input's name with the target's suffix (`<name>.converted<suffix>` where that would
    be the input itself), in the current folder; the report is named after the output
    (`<output name>.convert.json`), so conversions of one input to several formats keep
    their reports apart."""
    out = cfg.output or default_name(cfg.input, FORMATS[cfg.to][1])
    if out.resolve() == Path(cfg.input).resolve() and cfg.output is None:
        out = default_name(cfg.input, ".converted" + FORMATS[cfg.to][1])
    return out, default_name(out, ".convert.json")


def _shape(cfg: ConvertPoniConfig, image_shape) -> tuple[int, int] | None:
    if cfg.shape is not None and image_shape is not None and tuple(cfg.shape) != tuple(image_shape):
        raise ConfigError(f"--shape {list(cfg.shape)} differs from the image's {list(image_shape)}")
    return tuple(cfg.shape) if cfg.shape is not None else image_shape


def _apply_flips(cfg: ConvertPoniConfig, geometry, shape):
    """The geometry for the flipped array, its shape, and the flipped → source index map."""
    from geocal_cli.core.geometry.flips import flip_frame, index_map, reoriented
    from geocal_cli.core.geometry.frame import frame_of

    if not cfg.flip and cfg.orientation is None:
        return geometry, shape, (lambda d1, d2: (d1, d2))
    if shape is None:
        raise ConfigError("flips and orientations need the image shape: give --shape ROWS,COLS or --image")
    frame, new_shape = frame_of(geometry), shape
    for how in cfg.flip:
        frame, new_shape = flip_frame(frame, new_shape, how)
    try:
        flipped = reoriented(geometry, frame, new_shape, cfg.flip.count("transpose") % 2 == 1,
                             cfg.orientation)
    except ValueError as exc:
        raise ConfigError(f"--orientation {cfg.orientation}: {exc}") from None
    back, _ = index_map(shape, list(cfg.flip))
    return flipped, new_shape, back


def _self_check(source, target, back, shape) -> dict:
    from geocal_cli.core.geometry.flips import map_difference

    grid = shape if shape is not None else (2048, 2048)
    tth, chi_offset, chi_spread = map_difference(source, target, back, grid)
    return {"grid": "33 x 33 over the image" if shape is not None else "33 x 33 over 2048 x 2048 pixels",
            "max_abs_dtth_rad": tth, "chi_offset_deg": float(np.degrees(chi_offset)),
            "max_abs_dchi_after_offset_rad": chi_spread,
            "exact": bool(tth <= EXACT and chi_spread <= EXACT)}


def _flip_check(cfg: ConvertPoniConfig, image, geometry, say) -> list[dict]:
    from geocal_cli.core.q.flipcheck import check_flips
    from geocal_cli.core.geometry.frame import frame_of
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.io.detectors import detector_mask
    from geocal_cli.io.images import valid_pixels

    if not geometry.wavelength:
        raise ConfigError("the flip check needs a wavelength: the geometry has none; give --energy or --wavelength")
    if tuple(image.data.shape) != tuple(geometry.detector.max_shape or image.data.shape):
        raise InputFileError(f"--image is {list(image.data.shape)} pixels; the converted geometry is for "
                             f"{list(geometry.detector.max_shape)}")
    frame = frame_of(geometry)
    tth = ring_tth(load_calibrant(cfg.calibrant, cfg.scattering).d_spacing, geometry.wavelength)
    tth = np.sort(tth[np.isfinite(tth) & (tth < frame.tth_range(image.data.shape)[1])])[:12]
    if tth.size == 0:
        raise ConfigError(f"no {cfg.calibrant} ring falls on the image with this geometry")
    say(f"rating the flips of {cfg.image} on {tth.size} {cfg.calibrant} rings")
    valid = valid_pixels(image.data, detector_mask(geometry.detector, image.data.shape))
    return [vars(f) for f in check_flips(image.data, valid, frame, tth)]


def run(cfg: ConvertPoniConfig, progress=None) -> ConvertResult:
    """Convert `cfg.input` to `cfg.to`, check the result on pixel maps, write the report.

    Raises
    ------
    InputFileError
        Unreadable or malformed input, a file of another format, implausible units.
    ConfigError
        Unknown format, missing shape or wavelength where a format needs one, an orientation
        that cannot describe the geometry, a convention that cannot describe it.
    """
    say = progress or (lambda msg: None)
    output, report_path = default_outputs(cfg)
    report_path = cfg.report or report_path
    inputs = [cfg.input, cfg.image, calibrant_file(cfg.calibrant)]
    outputs = Outputs.planned(inputs, cfg.overwrite, report_path, output)
    source_format = cfg.source_format or detect(cfg.input)
    image = None
    if cfg.image is not None:
        from geocal_cli.io.images import read_image

        image = read_image(cfg.image, cfg.frame)
    shape = _shape(cfg, image.data.shape if image is not None else None)
    pixel = cfg.pixel_size_um or (image.metadata.get("pixel_size_um") if image is not None else None)
    options = Options(shape=shape, panel=cfg.panel, fix_units=cfg.fix_units, pixel_size_um=pixel)
    loaded = read_geometry(cfg.input, source_format, options)
    if shape is not None and loaded.shape is not None and tuple(loaded.shape) != tuple(shape):
        raise InputFileError(f"{cfg.input}: its detector is {list(loaded.shape)} pixels, the image "
                             f"{list(shape)}")
    shape = loaded.shape or shape
    source = loaded.geometry
    if shape is not None and source.detector.max_shape is None:
        source.detector.max_shape = shape
    if any(v is not None for v in (cfg.energy_kev, cfg.wavelength_a, cfg.voltage_kv)):
        source.wavelength = cfg.wavelength_m()
    say(f"read {cfg.input} as {source_format}")
    geometry, out_shape, back = _apply_flips(cfg, source, shape)
    with committing(outputs):
        report = _convert(cfg, loaded, source_format, geometry, out_shape, back, options, image,
                          inputs, output, say)
        write_report(report_path, report)
    return ConvertResult(report=report, poni=output, report_path=report_path, plot=None, geometry=geometry)


def _convert(cfg, loaded, source_format, geometry, out_shape, back, options, image, inputs,
             output, say) -> dict:
    """Write the target file (staged), read it back, check it; the report."""
    from geocal_cli.core.geometry.frame import frame_of
    from geocal_cli.io.formats.poni import values_of

    source = loaded.geometry
    target = module(cfg.to)
    written = target.write(output, geometry, out_shape, options)
    reread = target.read(active().staged(output), Options(shape=out_shape))
    check = _self_check(source, reread.geometry, back, out_shape)
    say(f"wrote {output} ({cfg.to})")

    warnings = list(loaded.notes)
    if abs(check["chi_offset_deg"]) > 1e-9:
        warnings.append(f"{cfg.to} does not carry the azimuth reference: χ is turned by "
                        f"{check['chi_offset_deg']:.6f}° (2θ is unchanged)")
    if not check["exact"]:
        warnings.append("self-check: the written geometry differs from the source on the pixel "
                        "map beyond rounding; please report this as a bug")
    flips = _flip_check(cfg, image, geometry, say) if cfg.calibrant is not None else None
    if flips is not None:
        fitting = [f["name"] for f in flips if f["fits"]]
        if "as is" not in fitting:
            warnings.append("the converted geometry does not fit --image as it is" +
                            (f"; it fits it after: {', '.join(fitting)} (add --flip accordingly)"
                             if fitting else "; no flip of the image fits it either"))
    b1, b2 = frame_of(geometry).beam_center()
    report = report_header(SCHEMA, to_plain(cfg), inputs)
    report.update({
        "results": {"from": source_format, "to": cfg.to, "output": str(output),
                    "flips": list(cfg.flip), "shape": list(out_shape) if out_shape else None,
                    "source": loaded.values, "written": written, "poni": values_of(geometry),
                    "beam_center_px": {"x": b2, "y": b1}},
        "self_check": check,
        "flip_check": flips,
        "warnings": warnings,
    })
    return report
