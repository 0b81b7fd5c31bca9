"""`simulate` pipeline: a calibrant ring image or a zone-axis spot pattern with a known
geometry, and its truth PONI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.config.simulate import SimulateConfig
from geocal_cli.io.calibrants import load_calibrant
from geocal_cli.io.detectors import detector_mask, make_detector
from geocal_cli.io.images import write_image
from geocal_cli.io.poni import write_poni


@dataclass(frozen=True)
class SimulateResult:
    """What `run` produced: the image and truth paths, the truth geometry, the image."""

    image: Path
    truth: Path
    geometry: object
    data: np.ndarray


def truth_geometry(cfg: SimulateConfig):
    """The geometry a simulation config describes (Fit2D distance, beam centre and tilt).

    The tilt is set through pyFAI's Fit2D conversion, then the PONI is moved so that the
    direct beam lands on `center_px` (pixel centres at i + 0.5, x = column, y = row).
    """
    from geocal_cli.core.geometry import make_geometry, poni_for_beam_center

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
    from geocal_cli.core.geometry import ellipticity_of, frame_of
    from geocal_cli.core.simulate import (PatternSpec, render_ring_image, render_spot_image,
                                          ring_strengths, zone_axis_reflections)
    from geocal_cli.core.units import ring_tth

    say = progress or (lambda msg: None)
    geometry = truth_geometry(cfg)
    shape = _shape(cfg)
    spec = PatternSpec(peak_counts=cfg.peak_counts, width_px=cfg.width_px,
                       background=cfg.background, beamstop_radius_px=cfg.beamstop_radius_px,
                       beamstop_arm_deg=cfg.beamstop_arm_deg, spotty=cfg.spotty,
                       hot_pixels=cfg.hot_pixels, poisson=cfg.noise, seed=cfg.seed,
                       ellipticity=tuple(ellipticity_of(cfg.axis_ratio, cfg.ellipse_angle_deg)),
                       direct_beam_counts=cfg.direct_beam_counts,
                       direct_beam_sigma_px=cfg.direct_beam_sigma_px, saturation=cfg.saturation)
    gaps = detector_mask(geometry.detector, shape) if cfg.gaps else None
    if cfg.spot_lattice is not None:
        d1, d2, gamma = cfg.spot_lattice
        tth, chi, strength = zone_axis_reflections(
            (d1 * 1e-10, d2 * 1e-10), gamma, cfg.spot_rotation_deg, geometry.wavelength,
            frame_of(geometry).tth_max(shape), cfg.seed)
        say(f"rendering a zone-axis spot pattern ({tth.size} reflections) on "
            f"{geometry.detector.name} {shape[0]}×{shape[1]}")
        data = render_spot_image(geometry, shape, tth, chi, strength, spec, gaps)
    else:
        rings = load_calibrant(cfg.calibrant, cfg.scattering)
        tth = ring_tth(rings.d_spacing, geometry.wavelength)
        ok = np.isfinite(tth)
        tth = tth[ok]
        inten = rings.intensity[ok] if rings.intensity is not None else None
        say(f"rendering {rings.name} on {geometry.detector.name} {shape[0]}×{shape[1]}")
        data = render_ring_image(geometry, shape, tth, ring_strengths(tth, inten, cfg.seed), spec, gaps)
    truth = cfg.truth or cfg.output.with_name(cfg.output.name.split(".")[0] + ".truth.poni")
    write_image(cfg.output, data)
    write_poni(truth, geometry)
    return SimulateResult(image=cfg.output, truth=truth, geometry=geometry, data=data)
