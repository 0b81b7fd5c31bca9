"""`grid-distortion` pipeline: a detector's displacement field from a hole-grid image, written
as a pyFAI detector file (and optionally a Fit2D spline and the corrected image), validated on
the corrected image; or a distortion file (Fit2D spline, pyFAI detector) converted."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.config.base import to_plain
from geocal_cli.config.grid_distortion import GridDistortionConfig
from geocal_cli.core.geometry.displacement import Field
from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.io.distortion import (correct_images, is_distortion_file, make_distorted_detector,
                                      read_distortion, write_detector, write_spline)
from geocal_cli.files import checked_file
from geocal_cli.io.outputs import Outputs, committing, default_name
from geocal_cli.io.reports import report_header, write_report

SCHEMA = "geocal.grid-distortion"
#: Shortest image side that can hold a few holes and the illumination's 16-pixel blocks.
MIN_SIDE_PX = 32
CONVENTION = ("pyFAI: the pixel corner at (row y, column x) lies at (y + dy, x + dx) on an ideal "
              "detector of the stated pixel sizes; dx along columns, dy along rows, pixels")


@dataclass(frozen=True)
class GridDistortionResult:
    """What `run` produced: the report and every file written."""

    report: dict
    report_path: Path
    plot: Path | None
    outputs: list


def default_paths(image: Path) -> tuple[Path, Path]:
    """<image name>.detector.h5 and <image name>.grid.json in the current folder (last suffix
    dropped)."""
    return default_name(image, ".detector.h5"), default_name(image, ".grid.json")


def run(cfg: GridDistortionConfig, progress=None) -> GridDistortionResult:
    """Measure (or convert) a distortion and write the detector file, report and extras.

    Raises
    ------
    InputFileError
        Unreadable image, mask or distortion file; no valid pixel.
    ConfigError
        Hole spacing in the image inconsistent with --pitch and --pixel-size.
    CalibrationError
        No grid found, too few holes indexed.
    """
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    detector_default, report_default = default_paths(cfg.image)
    detector_path = cfg.output or detector_default
    report_path = cfg.report or report_default
    outputs = Outputs.planned([cfg.image, cfg.mask], cfg.overwrite, report_path, detector_path,
                              cfg.spline, cfg.corrected, cfg.plot)
    for path, what in ((cfg.image, "image"), (cfg.mask, "mask")):
        if path is not None:
            checked_file(path, what)
    report = report_header(SCHEMA, to_plain(cfg), [cfg.image, cfg.mask])
    report["convention"] = CONVENTION
    report["warnings"] = []
    if is_distortion_file(cfg.image):
        field, pixel, mask = read_distortion(cfg.image)
        say(f"read the distortion of {cfg.image} ({field.shape[0]}×{field.shape[1]})")
        inside = ~mask if mask is not None else np.ones(field.shape, bool)
        report["results"] = {"source": "file", "pixel_size_um": _um(pixel),
                             "field": field_stats(field, inside)}
        measured = None
    else:
        measured = _measure(cfg, report, say)
        field, pixel, inside = measured.grid.field, measured.pixel, measured.grid.inside
        mask = ~inside
    t_measure = time.perf_counter()
    detector = make_distorted_detector(field, pixel, mask)
    written = [detector_path]
    with committing(outputs):
        write_detector(detector_path, detector)
        t_save = time.perf_counter()
        if cfg.spline:
            write_spline(cfg.spline, field, pixel)
            written.append(cfg.spline)
        if measured is not None:
            corrected, remeasured = _validate(cfg, detector, measured, report, say)
            if cfg.corrected:
                from geocal_cli.io.images import write_image

                write_image(cfg.corrected, corrected)
                written.append(cfg.corrected)
        else:
            remeasured = None
        if cfg.plot:
            from geocal_cli.io.plots import plot_grid_distortion

            plot_grid_distortion(cfg.plot, field, inside, measured.grid if measured is not None else None,
                                 remeasured,
                                 f"{cfg.image.name}: {_title(report)}")
        report["timings_s"] = {"read_and_measure": t_measure - t0, "detector_file": t_save - t_measure,
                               "validate_and_extras": time.perf_counter() - t_save,
                               "total": time.perf_counter() - t0}
        write_report(report_path, report)
    return GridDistortionResult(report=report, report_path=report_path,
                                plot=cfg.plot,
                                outputs=written)


@dataclass(frozen=True)
class _Measured:
    """A grid image and what was measured on it; `pixel` is (pixel1, pixel2) in metres."""

    grid: object
    pixel: tuple
    data: np.ndarray
    valid: np.ndarray


def _measure(cfg: GridDistortionConfig, report: dict, say) -> _Measured:
    from geocal_cli.core.grid.measure import measure_grid, misplacement_stats
    from geocal_cli.io.images import read_image, read_mask, valid_pixels

    if cfg.pitch_mm is None:
        raise ConfigError("give the grid's hole spacing (--pitch, mm)")
    img = read_image(cfg.image, cfg.frame)
    data = img.data
    user_mask = read_mask(cfg.mask, data.shape) if cfg.mask else None
    valid = valid_pixels(data, None, user_mask)
    if not valid.any():
        raise InputFileError(f"{cfg.image}: no valid pixel (all masked, negative or NaN)")
    if min(data.shape) < MIN_SIDE_PX:
        raise InputFileError(f"{cfg.image}: {data.shape[0]}×{data.shape[1]} pixels cannot hold a "
                             f"hole grid (each side needs ≥ {MIN_SIDE_PX} pixels, a few holes)")
    say(f"read {cfg.image} ({img.format}, {data.shape[0]}×{data.shape[1]})")
    expected = None
    if cfg.pixel_size_um is not None:
        expected = cfg.pitch_mm * 1e3 / float(np.mean(cfg.pixel_size_um))
    m = measure_grid(data.astype(np.float32), valid, dark=cfg.dark_spots,
                     expected_pitch_px=expected, diameter_px=cfg.spot_diameter_px, say=say)
    # Pixel sizes of the ideal detector: the pitch over the hole spacing along each axis.
    pixel = (cfg.pitch_mm * 1e-3 / m.grid.pitch_px[0], cfg.pitch_mm * 1e-3 / m.grid.pitch_px[1])
    if not all(1e-7 <= p <= 1e-2 for p in pixel):
        raise ConfigError(f"--pitch {cfg.pitch_mm:g} mm over a hole spacing of "
                          f"{min(m.grid.pitch_px):.1f} px gives {max(pixel) * 1e6:.4g} µm pixels: a "
                          "pixel is 0.1 µm … 10 mm; is the pitch in mm?")
    d = m.displacement
    grid = {"pitch_mm": cfg.pitch_mm, "spacing_px": {"y": m.grid.pitch_px[0], "x": m.grid.pitch_px[1]},
            "pixel_size_um": _um(pixel), "rotation_deg": float(np.degrees(m.grid.angle)),
            "skew_deg": m.skew_deg, "origin_px": {"x": m.grid.origin[1], "y": m.grid.origin[0]}}
    if cfg.pixel_size_um is not None:
        grid["nominal_pixel_size_um"] = {"y": cfg.pixel_size_um[0], "x": cfg.pixel_size_um[1]}
        grid["pixel_size_deviation_percent"] = {
            "y": (pixel[0] * 1e6 / cfg.pixel_size_um[0] - 1) * 100,
            "x": (pixel[1] * 1e6 / cfg.pixel_size_um[1] - 1) * 100}
    report["results"] = {
        "source": "grid image",
        "spots": {"diameter_px": m.diameter_px, "candidates": m.n_candidates,
                  "indexed": int(m.ij.shape[0]),
                  "rejected": {"cut_by_edge_or_mask": m.n_cut, "off_the_grid": m.n_off_grid,
                               "outliers": m.n_outliers},
                  "outlier_threshold_px": m.outlier_threshold_px,
                  "growth_rounds": m.indexing.rounds},
        "grid": grid,
        "pixel_size_um": _um(pixel),
        "field": {**field_stats(m.field, m.inside),
                  "fit_residual_rms_px": float(np.sqrt(np.mean(np.sum(m.spline.residual**2, 1)))),
                  "smoothing": m.spline.smoothing,
                  "masked_outside_hull_fraction": float(1 - m.inside.mean())},
        "before_correction": misplacement_stats(d, float(np.min(m.grid.pitch_px))),
    }
    say(f"{m.ij.shape[0]} holes, field rms {report['results']['field']['rms_px']:.3f} px, "
        f"max {report['results']['field']['max_px']:.3f} px")
    return _Measured(grid=m, pixel=pixel, data=data, valid=valid)


def _validate(cfg, detector, measured: _Measured, report: dict, say):
    """Correct the grid image with the new detector and re-measure the holes: the corrected
    image and the `Remeasured` holes."""
    from geocal_cli.core.grid.measure import misplacement_stats, remeasure

    m = measured.grid
    data = np.where(measured.valid, measured.data, 0).astype(np.float32)
    # Corrected pixels fed only by valid raw pixels: correct the validity itself.
    corrected, coverage = correct_images(detector, data, measured.valid.astype(np.float32))
    rem = remeasure(corrected, coverage > 0.95, m, cfg.dark_spots)
    report["results"]["after_correction"] = misplacement_stats(rem.error, float(np.min(m.grid.pitch_px)))
    a = report["results"]["after_correction"]
    if a["max_pitch"] > 0.01:
        report["warnings"].append(
            f"after correction a hole is still {a['max_px']:.2f} px ({a['max_pitch']:.3f} pitch) "
            "from the ideal grid: see the plot for where the field does not fit")
    say(f"corrected image: {a['holes']} holes within rms {a['rms_px']:.3f} px, "
        f"max {a['max_px']:.3f} px of the ideal grid")
    return corrected, rem


def field_stats(field: Field, inside: np.ndarray) -> dict:
    """Rms and max |d| and the largest |dx|, |dy| over pixels inside `inside`, pixels."""
    cy, cx = field.centres()
    n = np.hypot(cy, cx)[inside]
    return {"rms_px": float(np.sqrt(np.mean(n**2))), "max_px": float(n.max()),
            "max_abs_dx_px": float(np.abs(cx[inside]).max()),
            "max_abs_dy_px": float(np.abs(cy[inside]).max())}


def _um(pixel: tuple[float, float]) -> dict:
    return {"y": pixel[0] * 1e6, "x": pixel[1] * 1e6}


def _title(report: dict) -> str:
    r = report["results"]
    if r["source"] == "file":
        return f"distortion file, field rms {r['field']['rms_px']:.2f} px (no grid measured)"
    return (f"{r['spots']['indexed']} holes, field rms {r['field']['rms_px']:.2f} px, "
            f"corrected rms {r['after_correction']['rms_px']:.3f} px")
