"""`simulate` pipeline: a calibrant ring image, a zone-axis spot pattern or a hole-grid image
with a known geometry and distortion, and their truth (PONI, pyFAI detector file)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from geocal_cli.config.base import to_plain
from geocal_cli.config.simulate import SimulateConfig
from geocal_cli.errors import InputFileError
from geocal_cli.io.calibrants import calibrant_file, load_calibrant
from geocal_cli.io.detectors import detector_mask, make_detector
from geocal_cli.io.images import write_image
from geocal_cli.io.outputs import Outputs, committing, default_name
from geocal_cli.io.poni import write_poni
from geocal_cli.io.reports import report_header, write_report

SCHEMA = "geocal.simulate"


@dataclass(frozen=True)
class SimulateResult:
    """What `run` produced: the image and truth paths, the truth geometry (None for a grid),
    the truth distortion file (None without a synthetic distortion), the image."""

    image: Path
    truth: Path | None
    report: Path | None
    geometry: object
    data: np.ndarray
    truth_distortion: Path | None = None


def truth_geometry(cfg: SimulateConfig):
    """The geometry a simulation config describes (Fit2D distance, beam centre and tilt).

    The tilt is set through pyFAI's Fit2D conversion, then the PONI is moved so that the
    direct beam lands on `center_px` (pixel centres at i + 0.5, x = column, y = row).
    """
    from geocal_cli.core.geometry.frame import make_geometry, poni_for_beam_center

    from pyFAI.geometry import Geometry

    shape = _shape(cfg)
    det = make_detector(None if cfg.pixel_size_um else cfg.detector, cfg.pixel_size_um, shape)
    g = Geometry(detector=det, wavelength=cfg.wavelength_m())
    g.setFit2D(cfg.distance_mm, 0.0, 0.0, cfg.tilt_deg, cfg.tilt_plan_rotation_deg,
               det.pixel2 * 1e6, det.pixel1 * 1e6)
    x, y = cfg.center_px if cfg.center_px is not None else (shape[1] / 2, shape[0] / 2)
    p1, p2 = poni_for_beam_center(g, y - 0.5, x - 0.5)
    return make_geometry(det, g.dist, p1, p2, g.rot1, g.rot2, g.rot3, g.wavelength)


def _shape(cfg: SimulateConfig) -> tuple[int, int]:
    if cfg.shape is not None:
        return tuple(cfg.shape)
    import pyFAI.detectors

    return tuple(pyFAI.detectors.detector_factory(cfg.detector).shape)


def run(cfg: SimulateConfig, progress=None) -> SimulateResult:
    """Render the image and write it with its truth PONI.

    Raises
    ------
    ConfigError
        Unknown calibrant or detector.
    InputFileError
        Unwritable output format.
    """
    say = progress or (lambda msg: None)
    rings_wanted = cfg.grid_pitch_mm is None
    truth = (cfg.truth or _beside(cfg.output, ".truth.poni")) if rings_wanted else None
    truth_h5 = _beside(cfg.output, ".truth.h5") if cfg.synthetic_field else None
    report_path = cfg.report or _beside(cfg.output, ".simulate.json")
    inputs = [cfg.distortion, calibrant_file(cfg.calibrant) if rings_wanted else None]
    outputs = Outputs.planned(inputs, cfg.overwrite, report_path, cfg.output, truth, truth_h5)
    shape = _shape(cfg)
    with committing(outputs):
        field, truth_field = _distortion(cfg, shape, truth_h5)
        if rings_wanted:
            res = _rings(cfg, shape, field, truth_field, truth, say)
        else:
            res = _grid(cfg, shape, field, truth_field, say)
        report = report_header(SCHEMA, to_plain(cfg), inputs)
        from geocal_cli.pipeline.calib_ring import geometry_summary

        report["results"] = {"shape": list(shape),
                             "truth": geometry_summary(res.geometry) if res.geometry else None}
        report["warnings"] = []
        write_report(report_path, report)
    return replace(res, report=report_path)


def _rings(cfg: SimulateConfig, shape, field, truth_field, truth: Path, say) -> SimulateResult:
    """Render calibrant rings or a spot pattern; write the image and its truth PONI."""
    from geocal_cli.core.geometry.frame import ellipticity_of, frame_of
    from geocal_cli.core.simulate.patterns import (PatternSpec, render_ring_image, render_spot_image,
                                          ring_strengths, zone_axis_reflections)
    from geocal_cli.core.geometry.units import ring_tth

    geometry = truth_geometry(cfg)
    spec = PatternSpec(peak_counts=cfg.peak_counts, width_px=cfg.width_px,
                       background=cfg.background, beamstop_radius_px=cfg.beamstop_radius_px,
                       beamstop_arm_deg=cfg.beamstop_arm_deg, spotty=cfg.spotty,
                       hot_pixels=cfg.hot_pixels, poisson=cfg.noise, seed=cfg.seed,
                       ellipticity=tuple(ellipticity_of(cfg.axis_ratio, cfg.ellipse_angle_deg)),
                       direct_beam_counts=cfg.direct_beam_counts,
                       direct_beam_sigma_px=cfg.direct_beam_sigma_px, saturation=cfg.saturation,
                       ring_shift_px=cfg.ring_shift_px)
    gaps = detector_mask(geometry.detector, shape) if cfg.gaps else None
    if cfg.spot_lattice is not None:
        d1, d2, gamma = cfg.spot_lattice
        tth, chi, strength = zone_axis_reflections(
            (d1 * 1e-10, d2 * 1e-10), gamma, cfg.spot_rotation_deg, geometry.wavelength,
            frame_of(geometry).tth_range(shape)[1], cfg.seed)
        say(f"rendering a zone-axis spot pattern ({tth.size} reflections) on "
            f"{geometry.detector.name} {shape[0]}×{shape[1]}")
        data = render_spot_image(geometry, shape, tth, chi, strength, spec, gaps)
    else:
        rings = load_calibrant(cfg.calibrant, cfg.scattering)
        tth = ring_tth(rings.d_spacing, geometry.wavelength)
        ok = np.isfinite(tth)
        tth = tth[ok]
        inten = rings.intensity[ok] if rings.intensity is not None else None
        strengths = ring_strengths(tth, inten, cfg.seed)
        reflection = np.arange(tth.size)
        doublet = cfg.doublet()
        if doublet is not None:
            # Each reflection again at λ(Kα2), weaker by the lines' intensity ratio.
            tth2 = doublet.tth2(tth)
            seen2 = np.isfinite(tth2)
            both = np.concatenate([tth, tth2[seen2]])
            strengths = np.concatenate([strengths, doublet.intensity_ratio * strengths[seen2]])
            reflection = np.concatenate([reflection, reflection[seen2]])
            order = np.argsort(both, kind="stable")
            tth, strengths, reflection = both[order], strengths[order], reflection[order]
        say(f"rendering {rings.name} on {geometry.detector.name} {shape[0]}×{shape[1]}"
            + (" (Kα1 and Kα2)" if doublet is not None else ""))
        data = render_ring_image(geometry, shape, tth, strengths, spec,
                                 gaps, field.centres() if field is not None else None, reflection)
    write_image(cfg.output, data)
    write_poni(truth, geometry)
    return SimulateResult(image=cfg.output, truth=truth, report=None, geometry=geometry, data=data,
                          truth_distortion=truth_field)


def _beside(output: Path, suffix: str) -> Path:
    """A file beside the image, named after it (last suffix dropped)."""
    return output.parent / default_name(output, suffix)


def _pixel_size_m(cfg: SimulateConfig, shape) -> tuple[float, float]:
    det = make_detector(None if cfg.pixel_size_um else cfg.detector, cfg.pixel_size_um, shape)
    return det.pixel1, det.pixel2


def _distortion(cfg: SimulateConfig, shape, path: Path | None):
    """The distortion to render through and, for a synthetic one, the truth detector file
    written beside the image (None, None for an ideal detector).

    Raises
    ------
    InputFileError
        The distortion file is unreadable or for another image shape.
    """
    from geocal_cli.core.simulate.grid import DistortionSpec, synthetic_field
    from geocal_cli.io.distortion import make_distorted_detector, read_distortion, write_detector

    if cfg.distortion is not None:
        field = read_distortion(cfg.distortion)[0]
        if field.shape != tuple(shape):
            raise InputFileError(f"{cfg.distortion} is for a {field.shape} detector, the image is {tuple(shape)}")
        return field, None
    if not cfg.synthetic_field:
        return None, None
    field = synthetic_field(shape, DistortionSpec(
        radial_px=cfg.radial_px, random_px=cfg.random_field_px,
        correlation_px=cfg.field_correlation_px, skew_deg=cfg.skew_deg, seed=cfg.seed))
    write_detector(path, make_distorted_detector(field, _pixel_size_m(cfg, shape)))
    return field, path


def _grid(cfg: SimulateConfig, shape, field, truth_field, say) -> SimulateResult:
    from geocal_cli.core.simulate.grid import GridSpec, render_grid_image

    p1, p2 = _pixel_size_m(cfg, shape)
    pitch = (cfg.grid_pitch_mm * 1e-3 / p1, cfg.grid_pitch_mm * 1e-3 / p2)
    grid = GridSpec(pitch_px=pitch, angle_deg=cfg.grid_angle_deg,
                    diameter_px=cfg.hole_diameter_px or min(pitch) / 5,
                    counts=cfg.peak_counts, background=cfg.background, dark=cfg.dark_spots,
                    illumination=cfg.illumination, missing=cfg.missing_fraction,
                    spurious=cfg.spurious_spots, poisson=cfg.noise, seed=cfg.seed)
    say(f"rendering a {cfg.grid_pitch_mm:g} mm hole grid ({pitch[1]:.1f} px pitch) on "
        f"{shape[0]}×{shape[1]}")
    data = render_grid_image(tuple(shape), grid, field)
    write_image(cfg.output, data)
    return SimulateResult(image=cfg.output, truth=None, report=None, geometry=None, data=data,
                          truth_distortion=truth_field)
