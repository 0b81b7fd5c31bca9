"""`calib-ring` pipeline: image + calibrant → blind calibration → PONI, report, plot."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from geocal_cli.config.base import to_plain
from geocal_cli.config.calib_ring import CalibRingConfig
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.io.calibrants import calibrant_file, candidate_calibrants, load_calibrant
from geocal_cli.io.detectors import detector_mask, make_detector
from geocal_cli.io.distortion import correct_images, field_of, has_distortion, undistorted_twin
from geocal_cli.io.images import read_image, read_mask, valid_pixels
from geocal_cli.io.outputs import Outputs, committing, default_name
from geocal_cli.io.plots import RingFitView, plot_calibration
from geocal_cli.io.poni import read_poni, write_poni
from geocal_cli.io.reports import report_header, write_report
from geocal_cli.pipeline import electron
from geocal_cli.pipeline.results import integration_view, misfit_summary, ring_centres_summary

SCHEMA = "geocal.calib-ring"
#: `--calibrant auto`: identify the calibrant from the rings.
AUTO = "auto"


@dataclass(frozen=True)
class CalibRingResult:
    """What `run` produced.

    Attributes
    ----------
    report : dict
        The JSON report's content.
    poni : Path
    report_path : Path
    plot : Path or None
    calibration : geocal_cli.core.rings.calibrate.Calibration
    outputs : tuple of Path
        Other files written (the ellipse file of the electron model).
    """

    report: dict
    poni: Path
    report_path: Path
    plot: Path | None
    calibration: object
    outputs: tuple = ()


def default_outputs(image: Path) -> tuple[Path, Path]:
    """Default PONI and report paths, in the current folder (the image's own folder may be
    read-only): `run.0001.edf` → `run.0001.poni`, `run.0001.calib.json`."""
    return default_name(image, ".poni"), default_name(image, ".calib.json")


@dataclass(frozen=True)
class CalibInputs:
    """What a calib-ring config reads: the image as the fit sees it, and its calibrant.

    Attributes
    ----------
    data : ndarray, shape (H, W)
        The image, resampled onto ideal pixels when the detector has a distortion.
    valid : ndarray of bool, shape (H, W)
    detector : pyFAI.detectors.Detector
        The detector as given (with its distortion).
    fit_detector : pyFAI.detectors.Detector
        The detector the geometry is fitted on (`detector`, or its undistorted twin).
    rings : Calibrant or None
        None for --calibrant auto.
    guess : pyFAI.geometry.Geometry or None
    wavelength : float
        Metres.
    scattering : {'xray', 'electron'}
    sources : dict
        Where the radiation and the pixel size came from (command line, image metadata,
        guess), and the metadata's camera length, for the report.
    """

    data: np.ndarray
    valid: np.ndarray
    detector: object
    fit_detector: object
    rings: object
    guess: object
    wavelength: float
    scattering: str = "xray"
    sources: dict | None = None


def read_inputs(cfg: CalibRingConfig, say=lambda msg: None) -> CalibInputs:
    """Read the image, mask, guess, calibrant and detector of a calib-ring config.

    Raises
    ------
    InputFileError
        Unreadable image, mask or guess; a guess for another detector; no valid pixel.
    ConfigError
        Unknown calibrant or detector.
    """
    img = read_image(cfg.image, cfg.frame)
    data = img.data
    shape = data.shape
    wavelength, scattering, sources = radiation(cfg, img.metadata)
    if img.metadata.get("frame"):
        sources["frame"] = img.metadata["frame"]
    rings = None if cfg.calibrant == AUTO else load_calibrant(cfg.calibrant, scattering)
    guess = read_poni(cfg.guess) if cfg.guess else None
    pixel_um = cfg.pixel_size_um
    if not (cfg.detector or pixel_um) and img.metadata.get("pixel_size_um") and not guess:
        pixel_um = tuple(img.metadata["pixel_size_um"])
        sources["pixel_size"] = f"image metadata ({pixel_um[0]:g} × {pixel_um[1]:g} µm)"
    if cfg.detector or pixel_um:
        detector = make_detector(cfg.detector, pixel_um, shape)
        sources.setdefault("pixel_size", "command line")
    elif guess is None:
        raise ConfigError(f"{cfg.image}: no pixel size: give a detector name (--detector) or a "
                          "pixel size (--pixel-size); the image's metadata has none")
    else:
        sources["pixel_size"] = f"--guess {cfg.guess}"
        detector = guess.detector
        if detector.shape is not None and tuple(detector.shape) != tuple(shape):
            raise InputFileError(f"--guess {cfg.guess} is for a {tuple(detector.shape)} detector, "
                                 f"the image is {tuple(shape)}")
        if detector.max_shape is None:
            detector.max_shape = shape
    user_mask = read_mask(cfg.mask, shape) if cfg.mask else None
    valid = valid_pixels(data, detector_mask(detector, shape), user_mask)
    if not valid.any():
        raise InputFileError(f"{cfg.image}: no valid pixel (all masked, negative or NaN)")
    say(f"read {cfg.image} ({img.format}, {shape[0]}×{shape[1]}, {valid.mean():.0%} valid); "
        + (f"{rings.name}: {rings.d_spacing.size} rings" if rings else "calibrant: auto")
        + f"; λ = {wavelength * 1e10:.5f} Å"
        + (f" (Kα1; Kα2 {cfg.kalpha2_a:.5f} Å)" if cfg.kalpha2_a else ""))
    fit_detector = detector
    if has_distortion(detector):
        # Calibrate on the image resampled onto the ideal pixels: the geometry found there is
        # the one pyFAI applies with the distorted detector.
        say("correcting the image for the detector's distortion (pyFAI Distortion)")
        fit_detector = undistorted_twin(detector)
        data, coverage = correct_images(detector, np.where(valid, data, 0), valid.astype(np.float32))
        valid = coverage > 0.95
    return CalibInputs(data, valid, detector, fit_detector, rings, guess, wavelength,
                       scattering, sources)


def radiation(cfg: CalibRingConfig, metadata: dict) -> tuple[float, str, dict]:
    """Wavelength (m), scattering ('xray' or 'electron') and where they came from: the
    command line, else the image's metadata (an EM file's voltage).

    Raises
    ------
    ConfigError
        Neither gives a radiation.
    """
    from geocal_cli.core.geometry.units import wavelength_from_voltage

    sources = {}
    if metadata.get("camera_length_mm"):
        sources["camera_length_mm_metadata"] = float(metadata["camera_length_mm"])
    if any(v is not None for v in (cfg.energy_kev, cfg.wavelength_a, cfg.voltage_kv)):
        return cfg.wavelength_m(), cfg.scattering, {**sources, "radiation": "command line"}
    if metadata.get("voltage_kv"):
        kv = float(metadata["voltage_kv"])
        return wavelength_from_voltage(kv), "electron", {
            **sources, "radiation": f"image metadata ({kv:g} kV)"}
    raise ConfigError(f"{cfg.image}: no radiation given: set --energy (keV), --wavelength (Å) or "
                      "--voltage (kV); the image's metadata has none")


def run(cfg: CalibRingConfig, progress=None) -> CalibRingResult:
    """Calibrate the geometry of `cfg.image` and write the PONI, the report and the plot.

    Raises
    ------
    InputFileError
        Unreadable image, mask or guess; no valid pixel.
    ConfigError
        Unknown calibrant or detector.
    CalibrationError
        See `geocal_cli.core.rings.calibrate.calibrate`.
    """
    from geocal_cli.core.rings.calibrate import calibrate, identify_and_calibrate

    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    poni_path, report_path = (a or b for a, b in zip((cfg.output, cfg.report), default_outputs(cfg.image)))
    inputs = [cfg.image, cfg.mask, cfg.guess, calibrant_file(cfg.calibrant)]
    # The ellipse goes with the PONI it completes: beside it, of its name.
    ellipse_path = cfg.ellipse or poni_path.with_name(poni_path.stem + ".ellipse.json")
    # Outputs are checked before anything is read; the ellipse file too once the image's
    # metadata has said whether these are electrons.
    lens_asked = cfg.electron_model == "lens"
    outputs = Outputs.planned(inputs, cfg.overwrite, report_path, poni_path, cfg.plot,
                              ellipse_path if lens_asked and cfg.voltage_kv is not None else None)
    src = read_inputs(cfg, say)
    lens_model = src.scattering == "electron" and lens_asked
    if lens_model and cfg.voltage_kv is None:
        outputs.check(ellipse_path)
    data, valid, rings, guess, wavelength = src.data, src.valid, src.rings, src.guess, src.wavelength
    detector, fit_detector = src.detector, src.fit_detector
    t_read = time.perf_counter() - t0
    options = dict(guess=guess, fix=cfg.fix, max_rings=cfg.max_rings, min_rings=cfg.min_rings,
                   doublet=cfg.doublet())
    if rings is None:
        name, calib = identify_and_calibrate(data, valid, fit_detector, wavelength,
                                             candidate_calibrants(), progress=say, **options)
        rings = load_calibrant(name, src.scattering)
        rings = replace(rings, source=f"{rings.source}, identified from the rings (--calibrant auto)")
    else:
        calib = calibrate(data, valid, fit_detector, wavelength, rings.d_spacing, progress=say,
                          calibrant=rings.name, mf2=rings.mf2(),
                          candidates=candidate_calibrants(), **options)
    report = report_header(SCHEMA, to_plain(cfg), inputs)
    report.update(results(calib, rings))
    report["results"]["sources"] = src.sources
    if "rot3" in report["results"]["fixed"] and "fix" not in cfg.model_fields_set:
        report["notes"].append("rot3 fixed (the default): pyFAI turns the detector by rot3 about "
                               "the beam, which moves χ but no 2θ, so no powder ring measures it")
    geometry = calib.geometry
    lens = None
    if lens_model:
        lens = electron.fit_lens(calib, data, valid, fit_detector, wavelength, rings.d_spacing, say)
        poni = electron.poni_fit(lens, calib, rings.d_spacing, fit_detector)
        tilt = electron.tilt_fits_better(poni)
        if tilt:
            say(tilt)
            report["warnings"].append(tilt)
            lens = None
        else:
            geometry = poni.geometry
            electron.update_report(report, lens, rings.d_spacing, poni, geometry_summary(geometry))
    if fit_detector is not detector:
        from geocal_cli.core.geometry.frame import geometry_from_values

        report["distortion"] = distortion_effect(calib, detector, rings.d_spacing, cfg.detector)
        if lens is None:
            geometry = geometry_from_values(detector, calib.refinement.values)
    t1 = time.perf_counter()
    with committing(outputs):
        write_poni(poni_path, geometry)
        if lens is not None:
            electron.write_ellipse(ellipse_path, lens)
        if cfg.plot:
            from geocal_cli.core.geometry.frame import frame_of

            tth = ring_tth(rings.d_spacing, calib.geometry.wavelength)
            view = (electron.plot_view(lens, rings.d_spacing) if lens is not None else
                    RingFitView(frame_of(calib.geometry), calib.points, calib.refinement.inliers,
                                calib.beam_center, calib.rings))
            model = ", electron model (ellipses)" if lens is not None else ""
            check = functools.partial(integration_view, data, valid, view.frame, tth,
                                      [r.index + 1 for r in view.rings], report["rings_seen"])
            plot_calibration(cfg.plot, data, valid, view, tth, check, rings.name,
                             f"{cfg.image.name}: {rings.name}, {len(view.rings)} rings, "
                             f"rms {report['residuals']['rms_px']:.3f} px{model}")
        report["timings_s"] = {"read": t_read, **calib.timings, "write": time.perf_counter() - t1,
                               "total": time.perf_counter() - t0}
        write_report(report_path, report)
    return CalibRingResult(report=report, poni=poni_path, report_path=report_path,
                           plot=cfg.plot, calibration=calib,
                           outputs=(ellipse_path,) if lens is not None else ())


def distortion_effect(calib, detector, d_spacing: np.ndarray, source) -> dict:
    """Ring residuals with the detector's distortion and, for comparison, without it
    (`refit_without_distortion`).

    Returns
    -------
    dict
        rms_px_with, rms_px_without (all points, pixels), and the detector file.
    """
    raw = refit_without_distortion(calib, detector, d_spacing)

    def rms(r):
        return float(np.sqrt(np.mean(r**2)))
    return {"detector_file": str(source), "control_points": int(calib.points.d1.size),
            "rms_px_with": rms(calib.refinement.residual_px), "rms_px_without": rms(raw.residual_px),
            "note": "rms over all control points; without: the same points on the raw image, "
                    "geometry refined again on an undistorted detector"}


def refit_without_distortion(calib, detector, d_spacing: np.ndarray):
    """The calibration's control points taken back to raw pixels through the detector's
    distortion, and the same parameters refined there on an undistorted detector: what
    ignoring the distortion would have given.

    Returns
    -------
    geocal_cli.core.rings.refine.Refinement
    """
    from geocal_cli.core.rings.refine import refine_geometry

    pts, ref = calib.points, calib.refinement
    ry, rx = field_of(detector).raw_position(pts.d1 + 0.5, pts.d2 + 0.5)
    return refine_geometry(calib.geometry, ry - 0.5, rx - 0.5, d_spacing[pts.ring], ref.values,
                           ref.free)


def geometry_summary(geometry) -> dict:
    """PONI and Fit2D terms of a geometry, with the beam centre in pixels (i + 0.5 convention)."""
    from geocal_cli.core.geometry.frame import frame_of
    from geocal_cli.core.geometry.units import energy_from_wavelength

    f2d = geometry.getFit2D()
    bc1, bc2 = frame_of(geometry).beam_center()
    det = geometry.detector
    return {
        "poni": {"dist_m": geometry.dist, "poni1_m": geometry.poni1, "poni2_m": geometry.poni2,
                 "rot1_rad": geometry.rot1, "rot2_rad": geometry.rot2, "rot3_rad": geometry.rot3,
                 "wavelength_m": geometry.wavelength, "detector": det.name,
                 "orientation": int(det.orientation)},
        "fit2d": {"directDist_mm": f2d["directDist"], "centerX_px": f2d["centerX"],
                  "centerY_px": f2d["centerY"], "tilt_deg": f2d["tilt"],
                  "tiltPlanRotation_deg": f2d["tiltPlanRotation"], "pixelX_um": f2d["pixelX"],
                  "pixelY_um": f2d["pixelY"]},
        "beam_center_px": {"x": bc2 + 0.5, "y": bc1 + 0.5,
                           "convention": "x = column, y = row, pixel centres at i + 0.5"},
        "energy_kev": energy_from_wavelength(geometry.wavelength),
    }


def results(calib, rings) -> dict:
    """The report's results, uncertainties, residuals, warnings and blind-search sections."""
    from geocal_cli.core.geometry.frame import geometry_from_values
    from geocal_cli.core.rings.refine import propagate

    ref = calib.refinement
    units = {"dist": "m", "poni1": "m", "poni2": "m", "rot1": "rad", "rot2": "rad",
             "rot3": "rad", "wavelength": "m"}
    geometry = calib.geometry

    def fit2d(v):
        f = geometry_from_values(geometry.detector, v).getFit2D()
        return [f["directDist"], f["centerX"], f["centerY"], f["tilt"], f["tiltPlanRotation"]]

    _, cov = propagate(ref, fit2d)
    s = np.sqrt(np.abs(np.diag(cov)))
    inl = ref.inliers
    res_all = np.concatenate([r.residual_px for r in calib.rings])
    tth_rms = np.sqrt(np.mean(ref.residual_tth[inl] ** 2))
    strain = np.sqrt(np.sum([r.count * r.rms_microstrain**2 for r in calib.rings]) / res_all.size)
    return {
        "results": {"geometry": geometry_summary(geometry), "calibrant": rings.name,
                    "calibrant_source": rings.source, "fixed": [p for p in units if p not in ref.free],
                    "refined": list(ref.free)},
        "uncertainties_1sigma": {
            **{f"{p}_{units[p]}": ref.sigma[p] for p in ref.free},
            "beam_center_px": {"x": calib.beam_center_sigma[1], "y": calib.beam_center_sigma[0]},
            "fit2d": {"directDist_mm": s[0], "centerX_px": s[1], "centerY_px": s[2],
                      "tilt_deg": s[3], "tiltPlanRotation_deg": s[4]},
        },
        "correlation": {"parameters": list(ref.free), "matrix": ref.correlation},
        "residuals": {
            "control_points": int(inl.size), "rejected": int((~inl).sum()),
            "rms_px": float(np.sqrt(np.mean(res_all**2))),
            **misfit_summary(calib.misfit),
            "ring_offset_px": calib.widening.offset_px if calib.widening is not None else None,
            "profile_skew_px": calib.widening.skew_px if calib.widening is not None else None,
            "rms_tth_deg": float(np.degrees(tth_rms)),
            "rms_microstrain": float(strain),
            "condition_number": ref.condition,
            "rings": [{"ring": r.index + 1, "d_spacing_a": r.d_spacing * 1e10,
                       "tth_deg": np.degrees(r.tth), "count": r.count,
                       "rms_tth_deg": np.degrees(r.rms_tth), "rms_px": r.rms_px,
                       "rms_microstrain": r.rms_microstrain} for r in calib.rings],
        },
        "ring_centres": ring_centres_summary(calib.ring_centres),
        "blind_search": calib.blind or None,
        "rings_seen": rings_seen(calib.audit, calib.families, calib.geometry.wavelength),
        "warnings": calib.warnings,
        "notes": list(calib.notes),
    }


def rings_seen(a, families: dict, wavelength: float) -> dict:
    """The report's section on an audit (`core.rings.audit.Audit`): the rings of the image's
    azimuthal profile and which calibrant ring explains each, the candidate calibrants
    ranked on them (one per family), and what the rings say of the wavelength (m)."""
    from geocal_cli.core.rings.audit import LAMBDA_GAIN

    s = a.seen
    lam = wavelength
    w = a.wavelength
    return {
        "method": "peaks of the azimuthal profile under the fitted geometry, found without "
                  "the ring assignment; u = flat-equivalent radius (px)",
        "rings": [{"u_px": float(s.u_px[i]), "tth_deg": float(np.degrees(s.tth[i])),
                   "d_spacing_a": float(lam / (2 * np.sin(s.tth[i] / 2)) * 1e10),
                   "snr": float(s.snr[i]), "coverage": float(s.coverage[i]),
                   "fwhm_px": float(s.width_px[i]), "counted": bool(a.counted[i]),
                   "calibrant_ring": int(a.explained[i]) + 1 if a.explained[i] >= 0 else None}
                  for i in range(s.u_px.size)],
        "fit_rings_seen": f"{int(a.supported.sum())} of {a.supported.size}",
        "foreign_rings": int(a.foreign.size),
        "calibrant_ranking": [{"calibrant": c.name, "rings_explained": c.explained,
                               "rings_counted": c.counted, "score": c.score,
                               "intensity_misfit": c.misfit if np.isfinite(c.misfit) else None}
                              for c in a.top(families, 5)],
        "wavelength_check": None if w is None else {
            "given_a": w.given * 1e10, "fitted_a": w.fitted * 1e10, "sigma_a": w.sigma * 1e10,
            "sigma_fit_a": w.sigma_fit * 1e10,
            "determined": w.determined, "consistent": w.consistent,
            "chi2_drop": w.chi2_drop if np.isfinite(w.chi2_drop) else None,
            "note": "the final control points refitted with λ free; sigma_a adds a 0.1 % radial "
                    "scale systematic of the detector to the fit's own sigma_fit_a; a λ 5 "
                    "sigma_a off refuses the fit only where freeing λ lowers the points' sum "
                    f"of squares by {LAMBDA_GAIN:g} times their variance (chi2_drop)" + (
                "" if w.determined else "; the rings span too little 2θ to fix λ: only D·λ "
                "is determined")},
    }
