"""`recenter` pipeline: image + reference PONI → new beam centre → PONI, report, plot."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.config.base import to_plain
from geocal_cli.config.recenter import RecenterConfig
from geocal_cli.errors import CalibrationError, ConfigError, InputFileError
from geocal_cli.io.calibrants import calibrant_file
from geocal_cli.io.outputs import Outputs, committing, default_name
from geocal_cli.io.poni import write_poni
from geocal_cli.io.reports import report_header, write_report
from geocal_cli.pipeline._inputs import flip_verdict, load_image_and_geometry
from geocal_cli.pipeline.results import ring_centres_summary

SCHEMA = "geocal.recenter"


@dataclass(frozen=True)
class RecenterResult:
    """What `run` produced: the report, the files written, the new geometry."""

    report: dict
    poni: Path
    report_path: Path
    plot: Path | None
    geometry: object


def default_outputs(image: Path) -> tuple[Path, Path]:
    """<image stem>.recentered.poni and <image stem>.recenter.json in the current folder."""
    return default_name(image, ".recentered.poni"), default_name(image, ".recenter.json")


def _ring_tth(cfg: RecenterConfig, wavelength: float, scattering: str) -> tuple:
    """2θ (radians, increasing) of the calibrant rings to use, their 1-based numbers, and the
    calibrant (`io.calibrants.load_calibrant`)."""
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.io.calibrants import load_calibrant

    rings = load_calibrant(cfg.calibrant, scattering)
    tth = ring_tth(rings.d_spacing, wavelength)
    number = np.arange(1, tth.size + 1)
    if cfg.ring is not None:
        bad = [k for k in cfg.ring if k > tth.size]
        if bad:
            raise ConfigError(f"--ring {bad[0]}: {rings.name} has {tth.size} rings")
        number = np.asarray(cfg.ring)
        tth = tth[number - 1]
    order = np.argsort(tth)
    keep = order[np.isfinite(tth[order])]
    return tth[keep], number[keep], rings


def run(cfg: RecenterConfig, progress=None) -> RecenterResult:
    """Find the new beam centre of `cfg.image` and write the moved PONI, report and plot.

    Raises
    ------
    InputFileError
        Unreadable image, PONI or mask; PONI for another detector shape; all pixels masked.
    ConfigError
        Unknown calibrant, no wavelength.
    CalibrationError
        No ring found, no Friedel pairs, direct beam absent, or the fit failed.
    """
    from geocal_cli.core.rings.controlpoints import prepare_image
    from geocal_cli.core.geometry.frame import frame_of, make_geometry, poni_for_beam_center

    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    poni_path, report_path = (a or b for a, b in zip((cfg.output, cfg.report), default_outputs(cfg.image)))
    inputs = [cfg.image, cfg.poni, cfg.mask, calibrant_file(cfg.calibrant)]
    outputs = Outputs.planned(inputs, cfg.overwrite, report_path, poni_path, cfg.plot)
    loaded = load_image_and_geometry(cfg)
    img, reference, valid = loaded.image, loaded.geometry, loaded.valid
    data = img.data
    detector = reference.detector
    wavelength, wl_source = loaded.wavelength, loaded.wavelength_source
    frame = frame_of(reference)
    old = np.array(frame.beam_center())
    if not np.all(np.isfinite(old)):
        raise InputFileError(f"{cfg.poni}: its direct beam never meets the detector plane")
    say(f"read {cfg.image} ({img.format}, {data.shape[0]}×{data.shape[1]}, {valid.mean():.0%} valid); "
        f"old beam centre x = {old[1] + 0.5:.2f}, y = {old[0] + 0.5:.2f} px")
    scattering = "electron" if (cfg.voltage_kv is not None or img.metadata.get("voltage_kv")) else "xray"
    tth, numbers, calibrant = _ring_tth(cfg, wavelength, scattering) if cfg.calibrant else (None, None, None)
    if tth is not None:
        # A geometry made for a flipped array is not a moved beam: recentring it would fit
        # its rings to the wrong pixels with a plausible shift.
        _, flipped = flip_verdict(data, valid, frame, tth)
        if flipped:
            raise CalibrationError(f"{cfg.poni}: {flipped}; then recentre")
    t_read = time.perf_counter() - t0

    tried: list[str] = []
    outcome = None
    # Rings the user named are the ring method's to use: failing them is an error, not a
    # reason to find the centre some other way.
    explicit = cfg.method != "auto" or cfg.ring is not None
    for method in (["ring"] if cfg.ring is not None and cfg.method == "auto" else
                   ["ring", "friedel", "beam"] if cfg.method == "auto" else [cfg.method]):
        if method == "ring" and tth is None:
            tried.append("ring: no calibrant given")
            continue
        try:
            if method == "ring":
                outcome = _ring(prepare_image(data, valid), valid, frame, tth, numbers, scattering,
                                cfg, say)
            elif method == "friedel":
                outcome = _friedel(data, valid, frame, cfg, say)
            else:
                outcome = _beam(data, valid, old, cfg)
            break
        except CalibrationError as exc:
            if explicit:
                raise
            tried.append(f"{method}: {exc}")
            say(f"{method} method failed: {exc}")
    if outcome is None:
        raise CalibrationError("no method found the beam centre: " + "; ".join(tried))
    new = outcome["center"]
    p1, p2 = poni_for_beam_center(reference, new[0], new[1])
    geometry = make_geometry(detector, reference.dist, p1, p2, reference.rot1, reference.rot2,
                             reference.rot3, wavelength)
    t_fit = time.perf_counter() - t0 - t_read

    report = report_header(SCHEMA, to_plain(cfg), inputs)
    pix = np.array([detector.pixel1, detector.pixel2])
    shift = new - old
    report["results"] = {
        "method": outcome["method"],
        "method_reason": ("chosen by --method" if cfg.method != "auto" else
                          "--ring names the rings" if cfg.ring is not None else
                          "auto: " + ("; ".join(tried + [f"{outcome['method']} succeeded"]))),
        "old_center": _center(old, pix), "new_center": _center(new, pix),
        "shift": {"x_px": shift[1], "y_px": shift[0], "x_m": shift[1] * pix[1],
                  "y_m": shift[0] * pix[0], "length_px": float(np.hypot(*shift))},
        "new_poni": {"poni1_m": p1, "poni2_m": p2, "kept": ["dist", "rot1", "rot2", "rot3", "wavelength"],
                     "wavelength_m": wavelength, "wavelength_source": wl_source},
        **outcome["details"],
    }
    report["uncertainties_1sigma"] = {"center_px": {"x": outcome["sigma"][1], "y": outcome["sigma"][0]}}
    report["residuals"] = outcome["residuals"]
    report["warnings"] = outcome["warnings"]
    t1 = time.perf_counter()
    with committing(outputs):
        write_poni(poni_path, geometry)
        if cfg.plot:
            from geocal_cli.io.plots import plot_recenter

            check, name = None, ""
            if calibrant is not None:
                # Under the moved PONI (what the user will integrate with): every calibrant
                # ring, the ones the ring method used marked.
                from geocal_cli.core.geometry.frame import frame_of
                from geocal_cli.core.geometry.units import ring_tth
                from geocal_cli.pipeline.results import integration_view

                name = calibrant.name
                # Integrated while a plot helper draws the image panels.
                check = functools.partial(integration_view, data, valid, frame_of(geometry),
                                          ring_tth(calibrant.d_spacing, wavelength),
                                          [r["ring"] for r in outcome["details"].get("rings", [])])
            plot_recenter(cfg.plot, data, valid, old, new, outcome.get("points"),
                          f"{cfg.image.name}: {outcome['method']} method, shift "
                          f"({shift[1]:+.2f}, {shift[0]:+.2f}) px",
                          pairs=outcome.get("pairs"), check=check, calibrant=name)
        report["timings_s"] = {"read": t_read, "fit": t_fit, "write": time.perf_counter() - t1,
                               "total": time.perf_counter() - t0}
        write_report(report_path, report)
    return RecenterResult(report=report, poni=poni_path, report_path=report_path,
                          plot=cfg.plot, geometry=geometry)


def _center(c: np.ndarray, pix: np.ndarray) -> dict:
    """A beam centre (d1, d2 indices) as the report states it."""
    return {"x_px": c[1] + 0.5, "y_px": c[0] + 0.5, "x_m": (c[1] + 0.5) * pix[1],
            "y_m": (c[0] + 0.5) * pix[0],
            "convention": "x = column, y = row, pixel centres at i + 0.5; metres from the "
                          "corner of pixel (0, 0)"}


def _ring(prepared, valid, frame, tth, numbers, scattering, cfg, say) -> dict:
    from geocal_cli.core.geometry.frame import ellipse_of
    from geocal_cli.core.center.ringcenter import recenter_on_rings

    rec = recenter_on_rings(prepared, valid, frame, tth, cfg.max_shift_px, cfg.ellipticity,
                            # Rings the user picked are fitted alone, as peaks of their own.
                            overlapping=scattering == "electron" and cfg.ring is None,
                            # A microscope's camera length is known to 10-20 % until measured.
                            max_scale=0.2 if scattering == "electron" else 0.0, say=say)
    fit = rec.fit
    inl = fit.inliers
    res = fit.residual_px[inl]
    ratio, angle = ellipse_of(fit.ellipticity)
    ellipse = {"fitted": fit.fitted_ellipticity, "axis_ratio": ratio, "major_axis_deg": angle,
               "convention": "major axis from +x towards +y; beyond what the PONI's tilt explains"}
    warnings = []
    if fit.fitted_ellipticity:
        e = float(np.hypot(*fit.ellipticity))
        sig_e, sig_angle = fit.ellipticity_sigma()
        ellipse["axis_ratio_sigma"] = 2 * sig_e / (1 - e) ** 2
        ellipse["major_axis_deg_sigma"] = sig_angle
        warnings.append(f"rings are elliptical (axis ratio {ratio:.4f}, major axis {angle:.1f}°): "
                        "a PONI cannot hold this lens distortion; the centre is the ellipses' "
                        "common centre")
    rings = [{"ring": int(numbers[k]), "ring_tth_deg": float(np.degrees(fit.tth[k])),
              "expected_tth_deg": float(np.degrees(tth[k])),
              "points": int(np.count_nonzero(inl & (rec.points.ring == k))),
              "rms_px": float(np.sqrt(np.mean(fit.residual_px[inl & (rec.points.ring == k)] ** 2))),
              "azimuth_coverage": float(c)} for k, c in zip(rec.rings, rec.coverage)]
    scale = np.median([np.tan(fit.tth[k]) / np.tan(tth[k]) for k in rec.rings]) - 1
    if abs(scale) > 2e-3:
        warnings.append(f"rings sit {scale:+.2%} off the reference's radii: the distance or the "
                        "wavelength changed too (the centre is not affected, the PONI's are kept)")
    sigma = np.sqrt(np.diag(fit.shift_cov))
    centres = rec.ring_centres
    if centres is not None:
        # The common centre is a mean over rings whose own centres scatter (as calib-ring).
        sigma = np.hypot(sigma, centres.centre_sigma_px)
    return {
        "method": "ring",
        "center": np.array(frame.beam_center()) + fit.shift,
        "sigma": sigma,
        "details": {"rings": rings, "ellipse": ellipse,
                    "coarse_shift_px": {"x": rec.coarse_shift[1], "y": rec.coarse_shift[0],
                                        "ring_radii_scale": rec.coarse_scale,
                                        "correlation_contrast": rec.contrast},
                    "ring_centres": ring_centres_summary(centres, numbers)},
        "residuals": {"points": int(inl.size), "rejected": int((~inl).sum()),
                      "rms_px": float(np.sqrt(np.mean(res**2)))},
        "warnings": warnings,
        "points": (rec.points.d1[inl], rec.points.d2[inl]),
    }


def _friedel(data, valid, frame, cfg, say) -> dict:
    from geocal_cli.core.center.friedel import find_spots, recenter_on_friedel_pairs

    spots = find_spots(data, valid)
    fit = recenter_on_friedel_pairs(spots, frame, cfg.max_shift_px, say=say)
    pairs = fit.pairs
    asym = fit.asymmetry_px
    ends = np.stack([np.column_stack([spots.d1[pairs[:, k]], spots.d2[pairs[:, k]]])
                     for k in (0, 1)], 1)                                   # (m, 2, 2)
    return {
        "method": "friedel",
        "center": np.array(frame.beam_center()) + fit.shift,
        "sigma": np.sqrt(np.diag(fit.shift_cov)),
        "details": {"friedel": {
            "spots": len(spots), "pairs": int(pairs.shape[0]),
            "paired_fraction": float(2 * pairs.shape[0] / len(spots)),
            "coarse_weighted_votes": fit.votes,
            "convention": "asymmetry = |u_i + u_j| of a pair in the gnomonic plane, pixel units: "
                          "twice that pair's own centre error"}},
        "residuals": {"pairs": int(pairs.shape[0]), "asymmetry_rms_px": float(np.sqrt(np.mean(asym**2))),
                      "asymmetry_max_px": float(asym.max())},
        "warnings": [],
        "points": (ends[:, :, 0].ravel(), ends[:, :, 1].ravel()),
        "pairs": ends,
    }


def _beam(data, valid, old, cfg) -> dict:
    from geocal_cli.core.center.directbeam import find_direct_beam

    spot = find_direct_beam(data, valid, cfg.saturation)
    center = np.array([spot.d1, spot.d2])
    if np.hypot(*(center - old)) > cfg.max_shift_px:
        raise CalibrationError(f"direct beam found {np.hypot(*(center - old)):.0f} px from the "
                               f"old centre, beyond --max-shift {cfg.max_shift_px:g}")
    plateau = None
    if spot.plateau_center is not None:
        plateau = {"x_px": spot.plateau_center[1] + 0.5, "y_px": spot.plateau_center[0] + 0.5}
    return {
        "method": "beam",
        "center": center,
        "sigma": np.sqrt(np.diag(spot.cov)),
        "details": {"beam": {"sigma_px": list(spot.sigma_px), "peak_counts": spot.peak,
                             "background_counts": spot.background,
                             "saturated_pixels_left_out": spot.saturated,
                             "saturated_plateau_centroid": plateau, "snr": spot.snr}},
        "residuals": {"rms_relative": spot.rms},
        "warnings": [],
    }
