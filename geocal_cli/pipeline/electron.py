"""calib-ring's electron model: camera length, lens ellipticity and centre, in the report's
and the microscopist's terms (`core.electron.lens`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli import __version__
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.electron.lens import N_CHI
from geocal_cli.core.rings.calibrate import WEAKLY_DETERMINED, WIDENED_START
from geocal_cli.core.rings.concentric import NON_CONCENTRIC_START, concentric_warning
from geocal_cli.core.rings.misfit import WARNING_START, misfit_warning, split_residual
from geocal_cli.pipeline.results import misfit_summary, ring_centres_summary

#: Of the ellipse, what each program's parameters mean (written into the ellipse file).
CONVENTIONS = {
    "geocal": "x = column, y = row, pixel centres at i + 0.5; angles from +x towards +y",
    "py4DSTEM": "p_ellipse = (x0, y0, a, b, theta): x is the first array index (row), y the "
                "second (column); a, b the semi-major and semi-minor axes; theta the major "
                "axis's angle from +x towards +y, radians",
    "pyxem": "affine_matrix maps a pattern's (x, y) = (column, row) offsets from the centre onto "
             "circles whose radius is the ellipse's minor semi-axis (one principal axis kept, "
             "as pyxem's elliptical-distortion correction does); apply it about the centre",
}


def fit_lens(calib, data, valid, detector, wavelength: float, d_spacing, say):
    """The electron model fitted from a calib-ring result as the start.

    Parameters
    ----------
    calib : geocal_cli.core.rings.calibrate.Calibration
        The tilted-detector fit: its beam centre, directDist and ring width start the model.
    data, valid : ndarray, shape (H, W)
    detector : pyFAI.detectors.Detector
    wavelength : float
        Metres.
    d_spacing : ndarray, shape (m,)
        Metres, decreasing.
    say : callable(str)

    Returns
    -------
    geocal_cli.core.electron.lens.LensCalibration

    Raises
    ------
    CalibrationError
        See `calibrate_lens`.
    """
    from geocal_cli.core.electron.lens import calibrate_lens
    from geocal_cli.core.rings.controlpoints import prepare_image

    inl = calib.refinement.inliers
    width = float(np.median(calib.points.width[inl])) if inl.any() else 2.0
    say("electron model: camera length, lens ellipticity and centre, rings fitted as "
        "overlapping peaks")
    return calibrate_lens(prepare_image(data, valid), valid, detector, wavelength,
                          ring_tth(d_spacing, wavelength), calib.beam_center,
                          calib.geometry.getFit2D()["directDist"] * 1e-3, width,
                          points0=calib.points.subset(inl), say=say)


#: The tilted detector replaces the lens model when it fits the same points with a residual
#: rms below this fraction of the lens model's (both have five parameters).
TILT_BETTER = 0.7
#: What the lens model's misfit warning names as the cause.
LENS_MISFIT = ("a projector-lens distortion beyond the ellipse (higher orders) or rings that are "
               "not concentric; the 1σ of the centre and camera length include the rings' own "
               "scatter of centres and radii, and every 1σ the errors neighbouring points share "
               "(cluster-robust over detector cells)")


@dataclass(frozen=True)
class PoniFit:
    """The PONI written for the electron model.

    Attributes
    ----------
    geometry : pyFAI.geometry.Geometry
    rms_px, model_rms_px : float
        Weighted rms of the tilted geometry's residuals on the points it keeps, and of the
        lens model's on its inliers, pixels (`rms_px` inf when the model's points could not
        fix a tilt and the PONI is the untilted detector at the camera length).
    """

    geometry: object
    rms_px: float
    model_rms_px: float

    @property
    def tilted(self) -> bool:
        """Whether the PONI is the tilted geometry refined on the model's points."""
        return bool(np.isfinite(self.rms_px))


def poni_fit(lens, calib, d_spacing, detector) -> PoniFit:
    """The pyFAI geometry nearest the electron model: the tilted detector refined on the
    lens model's own points (same points, same weights, five parameters as the model:
    distance, PONI, rot1, rot2).

    To first order in 2θ a detector tilted by τ draws rings as concentric ellipses of axis
    ratio 1/cos τ, so its rings come nearer the model's ellipses than the circles of an
    untilted detector; what a tilt adds beyond that (ring centres moving with 2θ) is what
    `tilt_fits_better` weighs. When the points cannot fix a tilt, the PONI is the untilted
    detector at the camera length with the PONI at the ring centre
    (`core.electron.lens.equivalent_geometry`).

    Parameters
    ----------
    lens : geocal_cli.core.electron.lens.LensCalibration
    calib : geocal_cli.core.rings.calibrate.Calibration
        The tilted-detector fit that started the model: the refinement starts from it.
    d_spacing : ndarray, shape (m,)
        Metres, decreasing.
    detector : pyFAI.detectors.Detector

    Returns
    -------
    PoniFit
    """
    from geocal_cli.core.electron.lens import equivalent_geometry
    from geocal_cli.core.geometry.frame import geometry_from_values
    from geocal_cli.core.rings.refine import refine_geometry

    inl = lens.fit.inliers
    pts = lens.points
    weights = 1.0 / lens.sigma_px[inl]

    def rms(res, keep):
        return float(np.sqrt(np.sum((res * weights)[keep] ** 2) / np.sum(weights[keep] ** 2)))

    own = rms(lens.fit.residual_px[inl], np.ones(inl.sum(), bool))
    try:
        tilted = refine_geometry(calib.geometry, pts.d1[inl], pts.d2[inl],
                                 d_spacing[pts.ring[inl]], calib.refinement.values,
                                 ("dist", "poni1", "poni2", "rot1", "rot2"), weights=weights)
    except ValueError:
        return PoniFit(equivalent_geometry(detector, lens.camera_length_m, lens.center,
                                           lens.wavelength_m), np.inf, own)
    return PoniFit(geometry_from_values(detector, tilted.values),
                   rms(tilted.residual_px, tilted.inliers), own)


def tilt_fits_better(poni: PoniFit) -> str | None:
    """Whether the rings show a detector tilt rather than a lens: the tilted geometry of
    `poni_fit` fits the lens model's points clearly better. A tilt makes the rings
    non-concentric conics whose eccentricity grows with 2θ; a projector lens gives
    concentric ellipses of one axis ratio.

    Returns
    -------
    str or None
        The reason to keep the tilted-detector calibration, or None.
    """
    if poni.rms_px < TILT_BETTER * poni.model_rms_px:
        return (f"the rings show a detector tilt, not a lens: on the same points a tilted "
                f"detector fits with {poni.rms_px:.3f} px rms against {poni.model_rms_px:.3f} px "
                "for the lens model (concentric ellipses); the tilted geometry is kept "
                "(--electron-model tilt to say so)")
    return None


def ring_rows(lens, d_spacing) -> list:
    """Each ring's inlier residuals under the electron model, as calib-ring's rings
    (`core.rings.calibrate.RingResidual`; 2θ and strain terms not computed: NaN)."""
    from geocal_cli.core.rings.calibrate import RingResidual

    fit, pts = lens.fit, lens.points
    inl = fit.inliers
    tth = ring_tth(d_spacing, lens.wavelength_m)
    rows = []
    for k in np.unique(pts.ring[inl]):
        sel = inl & (pts.ring == k)
        res = fit.residual_px[sel]
        rows.append(RingResidual(index=int(k), d_spacing=float(d_spacing[k]), tth=float(tth[k]),
                                 count=int(sel.sum()), rms_tth=np.nan,
                                 rms_px=float(np.sqrt(np.mean(res ** 2))), rms_microstrain=np.nan,
                                 chi=pts.chi[sel], residual_px=res))
    return rows


def plot_view(lens, d_spacing):
    """The electron model as calib-ring's plot draws it: the ellipses, the points, the
    centre and each ring's residuals."""
    from geocal_cli.io.plots import RingFitView

    return RingFitView(lens.frame, lens.points, lens.fit.inliers, tuple(lens.center),
                       ring_rows(lens, d_spacing))


def sections(lens, d_spacing, poni) -> dict:
    """The report's sections for the electron model: `results.electron`, the uncertainties,
    the residuals per ring, and what the PONI approximates.

    Parameters
    ----------
    lens : geocal_cli.core.electron.lens.LensCalibration
    d_spacing : ndarray, shape (m,)
        Metres, decreasing.
    poni : PoniFit
        The PONI written for the model (`poni_fit`).

    Returns
    -------
    dict
        Keys `electron`, `uncertainties_1sigma`, `residuals`, `notes`, `warnings`.
    """
    fit = lens.fit
    inl = fit.inliers
    e = float(np.hypot(*fit.ellipticity))
    per_px = lens.reciprocal_per_px()
    sig_rel = lens.camera_length_sigma_m / lens.camera_length_m
    centre = {"x": float(lens.center[1] + 0.5), "y": float(lens.center[0] + 0.5)}
    csig = np.sqrt(np.diag(lens.center_cov))
    rings = [{"ring": r.index + 1, "d_spacing_a": r.d_spacing * 1e10, "tth_mrad": r.tth * 1e3,
              "count": r.count, "mean_px": float(r.residual_px.mean()), "rms_px": r.rms_px,
              "azimuth_coverage": float(np.unique(np.floor((r.chi + np.pi)
                                                           / (np.pi / 18))).size / 36)}
             for r in ring_rows(lens, d_spacing)]
    res = fit.residual_px[inl]
    misfit = split_residual(lens.points.ring[inl], lens.points.chi[inl], res, 2 * np.pi / N_CHI)
    sig_ratio = lens.axis_ratio_sigma()
    return {
        "electron": {
            "model": "untilted detector at the camera length, projector-lens ellipticity "
                     "(area-preserving stretch about the ring centre), ring centre",
            "camera_length_mm": lens.camera_length_m * 1e3,
            "reciprocal_per_px_a": {
                "minor_axis": per_px / (1 - e), "mean": per_px, "major_axis": per_px / (1 + e),
                "note": "1/d per pixel (Å⁻¹, small-angle 1/d = r / (λ L)) along the ellipses' "
                        "minor axis (what remains after pyxem's correction, which keeps one "
                        "principal axis), their mean radius, and their major axis"},
            "mrad_per_px": lens.mrad_per_px(),
            "axis_ratio": lens.axis_ratio, "major_axis_deg": lens.major_axis_deg,
            "center_px": {**centre, "convention": "x = column, y = row, pixel centres at i + 0.5"},
            "wavelength_a": lens.wavelength_m * 1e10, "rounds": lens.rounds},
        "uncertainties_1sigma": {
            "camera_length_mm": lens.camera_length_sigma_m * 1e3,
            "reciprocal_per_px_a": per_px * sig_rel / (1 - e),
            "axis_ratio": sig_ratio, "major_axis_deg": fit.ellipticity_sigma()[1],
            "beam_center_px": {"x": float(csig[1]), "y": float(csig[0])},
            "dist_m": lens.camera_length_sigma_m},
        "residuals": {
            "control_points": int(inl.size), "rejected": int((~inl).sum()),
            "rms_px": float(np.sqrt(np.mean(res**2))),
            **misfit_summary(misfit),
            "weighting": "each point by its 1σ from the multi-peak profile fit (floor 0.02 px)",
            "rings": rings},
        "notes": [poni_note(lens, poni)],
        "warnings": [w for w in [concentric_warning(lens.ring_centres),
                                 misfit_warning(misfit, LENS_MISFIT)] if w],
    }


def poni_note(lens, poni) -> str:
    """What the PONI holds of the electron model, and how near its rings come to the
    model's ellipses."""
    e = float(np.hypot(*lens.fit.ellipticity))
    circles = (f"untilted circles would miss the ellipses by up to ±{100 * e:.2f} % of their "
               f"radius ({e * _outer_radius(lens):.2f} px at the outermost ring fitted)")
    if not poni.tilted:
        return ("the PONI is the untilted detector at the camera length with the PONI at the "
                f"ring centre: pyFAI has no lens ellipticity, and {circles}; the ellipse file "
                "carries the full model")
    fit2d = poni.geometry.getFit2D()
    return (f"the PONI is the pyFAI geometry nearest the electron model: a detector tilted by "
            f"{fit2d['tilt']:.2f}° (tiltPlanRotation {fit2d['tiltPlanRotation']:.1f}°) stands in "
            "for the lens ellipticity pyFAI cannot hold, so its beam centre and directDist may "
            "differ slightly from the model's ring centre and camera length; on the model's "
            f"points its rings lie {poni.rms_px:.3f} px rms from them (the model: "
            f"{poni.model_rms_px:.3f} px; both weighted by the points' 1σ), where {circles}; the "
            "ellipse file carries the full model")


def _outer_radius(lens) -> float:
    """Distance of the farthest kept point from the ring centre, pixels."""
    inl = lens.fit.inliers
    return float(np.max(np.hypot(lens.points.d1[inl] - lens.center[0],
                                 lens.points.d2[inl] - lens.center[1])))


def update_report(report: dict, lens, d_spacing, poni, geometry_summary: dict) -> None:
    """Replace a calib-ring report's tilted-detector results by the electron model's.

    The tilted fit, which started the model, stays under `results.tilted_start`; its
    warnings that the tilt's mirror image fits as well, that its rings are not concentric, of
    what it leaves and of its weakly determined parameters, and its note on widened 1σ, no
    longer apply: the model's own replace them.
    """
    sec = sections(lens, d_spacing, poni)
    res = report["results"]
    res["tilted_start"] = res["geometry"]
    res["geometry"] = geometry_summary
    res["electron"] = sec["electron"]
    res["refined"] = ["center", "ellipticity", "camera_length"]
    res["fixed"] = ["tilts (the model's detector is untilted; the PONI's tilt stands in for "
                    "the lens)", "wavelength"]
    report["uncertainties_1sigma"] = sec["uncertainties_1sigma"]
    report["correlation"] = correlation(lens)
    report["residuals"] = sec["residuals"]
    report["ring_centres"] = ring_centres_summary(lens.ring_centres)
    report["warnings"] = [w for w in report["warnings"]
                          if not w.startswith(("tilt direction", WARNING_START,
                                               NON_CONCENTRIC_START))
                          and WEAKLY_DETERMINED not in w] + sec["warnings"]
    report["notes"] = [n for n in report["notes"]
                       if not n.startswith(("rot3 fixed", WIDENED_START))] + sec["notes"]


def correlation(lens) -> dict:
    """Correlation matrix of the electron model's parameters."""
    cov = lens.fit.cov
    s = np.sqrt(np.diag(cov))
    return {"parameters": ["center_y", "center_x", "ellipticity_c", "ellipticity_s",
                           "camera_length"],
            "matrix": (cov / np.outer(s, s)).tolist()}


def ellipse_document(lens) -> dict:
    """The lens model as pyxem and py4DSTEM users apply it (conventions in `CONVENTIONS`)."""
    fit = lens.fit
    e = float(np.hypot(*fit.ellipticity))
    angle = np.radians(lens.major_axis_deg)
    cx, cy = float(lens.center[1] + 0.5), float(lens.center[0] + 0.5)
    # Stretch in (x, y) = (column, row): I + [[e_c, e_s], [e_s, −e_c]] (`stretch_matrix`).
    ec, es = fit.ellipticity
    m_xy = np.array([[1 + ec, es], [es, 1 - ec]])
    correct = (1 - e) * np.linalg.inv(m_xy)
    per_px = lens.reciprocal_per_px()
    ring = int(np.min(lens.points.ring[fit.inliers]))
    rho = lens.ring_radius_px(ring)
    return {
        "schema": "geocal.ellipse",
        # Marks the file as geocal's: a rerun replaces it without --overwrite.
        "geocal_version": __version__,
        "center": {"x": cx, "y": cy},
        "axis_ratio": lens.axis_ratio,
        "major_axis_deg": lens.major_axis_deg,
        "camera_length_mm": lens.camera_length_m * 1e3,
        "reciprocal_per_px_minor_axis_a": per_px / (1 - e),
        "py4DSTEM": {"p_ellipse": [cy - 0.5, cx - 0.5, rho * (1 + e), rho * (1 - e),
                                   float((np.pi / 2 - angle) % np.pi)],
                     "ring": ring + 1,
                     "note": "the ellipse of the innermost ring fitted (a, b in pixels; scale "
                             "them by a ring's 1/d over this ring's for another ring); x0, y0 "
                             "are array indices"},
        "pyxem": {"affine_matrix": [[*correct[0], cx - correct[0] @ [cx, cy]],
                                    [*correct[1], cy - correct[1] @ [cx, cy]],
                                    [0.0, 0.0, 1.0]]},
        "conventions": CONVENTIONS,
    }


def write_ellipse(path: Path, lens) -> None:
    """Write `ellipse_document` as JSON."""
    path.write_text(json.dumps(ellipse_document(lens), indent=2) + "\n")
