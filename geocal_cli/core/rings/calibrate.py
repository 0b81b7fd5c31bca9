"""Blind calibration of a detector geometry from one calibrant ring image.

1. `start`: a starting geometry from the image alone (ridges, ring centre, ring traces,
   assignment to the calibrant's reflections), by a common-centre strategy or, when that
   fails, by ring arcs of a strongly tilted detector.
2. `rounds`: control-point extraction on every calibrant ring that crosses the detector and
   refinement of pyFAI's geometry, rejecting rings and sectors of another phase.
3. Here: refusal of fits that explain only part of the calibrant (wrong energy or
   calibrant), of inconsistent residuals and of parameters the data cannot determine;
   uncertainties and per-ring residuals of the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from geocal_cli.core.rings.controlpoints import ControlPoints, prepare_image
from geocal_cli.core.geometry.frame import (PARAM_NAMES, frame_of, geometry_from_values, make_geometry,
                                      poni_for_beam_center)
from geocal_cli.core.rings.refine import ALL_PARAMS, Refinement, propagate, refine_geometry
from geocal_cli.core.rings.rounds import expected_rings, refine_rounds
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.rings.start import arc_traces, find_ring_ridges, ring_traces, start_from_traces
from geocal_cli.errors import CalibrationError

#: 1σ beyond which a quantity counts as undetermined by the data. The PONI itself is not
#: judged: with small 2θ it trades off against the tilts (σ of many pixels) while the beam
#: centre, which is what the rings fix, stays sharp.
UNDETERMINED_LIMITS = {"dist": 0.02, "beam_center_px": 5.0, "rot1": np.radians(1.0),
                       "rot2": np.radians(1.0), "rot3": np.radians(1.0), "wavelength": 0.01}
#: Of the first calibrant rings expected on valid pixels, more than this fraction must be seen.
MIN_RING_COVERAGE = 0.5
#: Robust σ (1.4826 · median |residual|, pixels) of the final control points above which the
#: rings are declared inconsistent. Robust, because a weak ring may scatter by 2 px
#: legitimately; systematic misfit also shows in the ring coverage and wavelength checks.
MAX_SIGMA_PX = 1.0


@dataclass(frozen=True)
class RingResidual:
    """Residuals of the control points of one calibrant ring (inliers only).

    Attributes
    ----------
    index : int
        Calibrant ring index (0 = largest d-spacing).
    d_spacing : float
        Metres.
    tth : float
        Radians, at the refined wavelength.
    count : int
    rms_tth : float
        Radians.
    rms_px : float
    rms_microstrain : float
        Rms of Δd/d in 10⁻⁶ (Δd/d = −Δθ / tan θ).
    chi : ndarray, shape (count,)
        Azimuths of the points, radians.
    residual_px : ndarray, shape (count,)
    """

    index: int
    d_spacing: float
    tth: float
    count: int
    rms_tth: float
    rms_px: float
    rms_microstrain: float
    chi: np.ndarray
    residual_px: np.ndarray


@dataclass(frozen=True)
class Calibration:
    """Result of `calibrate`.

    Attributes
    ----------
    geometry : pyFAI.geometry.Geometry
        Refined geometry with its wavelength.
    refinement : Refinement
    points : ControlPoints
        All final control points (`refinement.inliers` selects those kept).
    rings : list of RingResidual
    beam_center : (float, float)
        Pixel indices (d1, d2) of the direct beam, NaN when the beam misses the detector plane.
    beam_center_sigma : (float, float)
        1σ of the beam centre along d1 and d2, pixels.
    blind : dict
        What the blind search saw (centre vote, rings traced and assigned, start distance);
        empty when a guess was given.
    warnings : list of str
    timings : dict[str, float]
        Seconds per stage.
    """

    geometry: object
    refinement: Refinement
    points: ControlPoints
    rings: list
    beam_center: tuple
    beam_center_sigma: tuple
    blind: dict
    warnings: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def _values(geometry, wavelength) -> dict:
    v = {p: float(getattr(geometry, p)) for p in PARAM_NAMES}
    v["wavelength"] = float(wavelength)
    return v


def calibrate(image: np.ndarray, valid: np.ndarray, detector, wavelength: float,
              d_spacing: np.ndarray, guess=None, fix=("rot3", "wavelength"),
              max_rings: int | None = None, progress=None) -> Calibration:
    """Calibrate a detector geometry from a calibrant ring image.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Intensities as read (any dtype); invalid pixels may hold anything.
    valid : ndarray of bool, shape (H, W)
        False for masked, gap, negative and non-finite pixels.
    detector : pyFAI.detectors.Detector
        Pixel sizes and orientation.
    wavelength : float
        Metres.
    d_spacing : ndarray, shape (m,)
        Calibrant d-spacings in metres, in decreasing order.
    guess : pyFAI.geometry.Geometry, optional
        Starting geometry; skips the blind search.
    fix : sequence of str
        Parameters kept at their start value (names from `refine.ALL_PARAMS`).
    max_rings : int, optional
        Use at most the first `max_rings` calibrant rings.
    progress : callable(str), optional
        Receives one line per stage.

    Returns
    -------
    Calibration

    Raises
    ------
    CalibrationError
        No rings, no consistent assignment, no convergence, undetermined parameters, or
        residuals too large for the calibrant at this wavelength.
    """
    say = progress or (lambda msg: None)
    timings = {}
    t0 = time.perf_counter()
    image = np.asarray(image)
    valid = np.asarray(valid, bool) & np.isfinite(image)
    if not valid.any():
        raise CalibrationError("all pixels are masked or invalid")
    d_spacing = np.asarray(d_spacing, float)
    if max_rings:
        d_spacing = d_spacing[:max_rings]
    prepared = prepare_image(image, valid)
    free = tuple(p for p in ALL_PARAMS if p not in set(fix))
    warnings: list[str] = []
    solve = (prepared, valid, detector, d_spacing, free, say)
    if guess is None:
        ridges = find_ring_ridges(image, valid)
        try:
            traces, family, info = ring_traces(ridges, image.shape, say)
            start, blind = start_from_traces(traces, family, info, prepared, detector,
                                              wavelength, d_spacing, say)
            result, pts = _solve(start, *solve)
        except CalibrationError as first:
            # A strongly tilted detector defeats the common-centre strategy; its rings are
            # still arcs of one geometry.
            say(f"common-centre strategy failed ({first}); trying ring arcs of a tilted detector")
            try:
                traces, family, info = arc_traces(ridges, detector, wavelength, say)
                # Every arc is taken for a ring: the calibrant must explain most of them.
                start, blind = start_from_traces(traces, family, info, prepared, detector,
                                                  wavelength, d_spacing, say, min_explained=0.5)
                result, pts = _solve(start, *solve)
            except CalibrationError:
                raise first from None
    else:
        blind = {}
        result, pts = _solve(_values(guess, wavelength), *solve)
    timings["calibration"] = time.perf_counter() - t0
    values = result.values
    geometry = geometry_from_values(detector, values)
    beam, beam_sigma = _beam_center(geometry, result)
    undetermined = _undetermined(result, beam_sigma)
    if undetermined:
        raise CalibrationError(
            "undetermined geometry: the rings found cannot fix the " + ", ".join(undetermined)
            + f" ({np.unique(pts.ring).size} ring(s)). Give a --guess and --fix these parameters")
    if "rot3" not in free:
        warnings.append("rot3 fixed: powder rings alone hardly separate it from rot1/rot2")
    mirror = _mirror_ambiguity(prepared, detector, d_spacing, result, pts, free, beam)
    if mirror:
        warnings.append(mirror)
    for name, ratio in _determinacy(result, beam_sigma).items():
        if ratio > 0.2:
            warnings.append(f"{name} is weakly determined (1σ at {100 * ratio:.0f} % of the "
                            "limit for undetermined)")
    rings = _ring_residuals(pts, result, d_spacing, values["wavelength"])
    timings["total"] = time.perf_counter() - t0
    return Calibration(geometry=geometry, refinement=result, points=pts, rings=rings,
                       beam_center=beam, beam_center_sigma=beam_sigma, blind=blind,
                       warnings=warnings, timings=timings)


def _solve(start, prepared, valid, detector, d_spacing, free, say):
    """Refinement rounds from a start, then the checks that refuse inconsistent fits."""
    result, pts = refine_rounds(prepared, detector, d_spacing, start, free, say=say)
    _check_consistency(prepared, valid, detector, d_spacing, result, pts, free)
    sigma = _robust_sigma(result)
    if sigma > MAX_SIGMA_PX:
        v = result.values
        geometry = geometry_from_values(detector, v)
        raise CalibrationError(_inconsistency_message(geometry, pts, result, d_spacing, sigma))
    return result, pts


def _check_consistency(prepared, valid, detector, d_spacing, result, pts, free):
    """Refuse a fit that explains only part of what the calibrant predicts.

    Dropping rings protects against another phase's rings, but it can also let a wrong
    energy or a wrong calibrant fit a consistent subset. So: (1) if rings were dropped while
    the wavelength was fixed and some of them are among the first expected rings, a refit
    with the wavelength free must not explain clearly more of those; (2) at least half of the first calibrant rings expected on valid
    pixels must carry control points.
    """
    values = result.values
    frame = frame_of(geometry_from_values(detector, values))
    tth = ring_tth(d_spacing, values["wavelength"])
    width = float(np.median(pts.width[result.inliers]))
    expected = expected_rings(valid, frame, tth, width)[:8]
    seen = set(np.unique(pts.ring[result.inliers]).tolist())
    found = [int(k) for k in expected if k in seen]
    # Rings lost wholesale (dropped, or all their sectors rejected) are the symptom.
    lost = set(expected.tolist()) - seen
    if lost and "wavelength" not in free and expected.size >= 3:
        try:
            alt, alt_pts = refine_rounds(prepared, detector, d_spacing, values,
                                           free + ("wavelength",), n_rounds=2)
        except CalibrationError:
            alt = None
        if alt is not None:
            alt_seen = set(np.unique(alt_pts.ring[alt.inliers]).tolist())
            alt_found = [k for k in expected if k in alt_seen]
            lam0, lam1 = values["wavelength"], alt.values["wavelength"]
            if len(alt_found) >= len(found) + 2 and abs(lam1 / lam0 - 1) > 0.005:
                raise CalibrationError(
                    f"rings inconsistent with the calibrant at this wavelength: at "
                    f"{lam0 * 1e10:.5f} Å only {len(found)} of the first {expected.size} "
                    f"expected rings fit; with the wavelength free {len(alt_found)} fit"
                    + _energy_hint(lam0, lam1))
    if expected.size >= 3 and len(found) <= MIN_RING_COVERAGE * expected.size:
        raise CalibrationError(
            f"no consistent ring assignment: only {len(found)} of the first {expected.size} "
            "calibrant rings expected on the detector carry control points (rings "
            + ", ".join(str(k + 1) for k in found) + "): check the calibrant and the energy")


def _mirror_ambiguity(prepared, detector, d_spacing, result, pts, free, beam) -> str | None:
    """At small 2θ a tilt and its mirror image (−rot1, −rot2) draw almost the same ellipses;
    only the beam centre differs. When all rings lie below 5° and the mirrored tilt, refitted,
    fits as well (robust σ within 5 %), say so and by how much the beam centre moves: the
    covariance of one minimum does not see the other."""
    v = result.values
    tilt = float(np.hypot(v["rot1"], v["rot2"]))
    tth = ring_tth(d_spacing[np.unique(pts.ring)], v["wavelength"])
    if tilt < np.radians(2.0) or np.nanmax(tth) > np.radians(5.0) or not np.isfinite(beam[0]):
        return None
    g = make_geometry(detector, v["dist"], 0.0, 0.0, -v["rot1"], -v["rot2"], v["rot3"])
    p1, p2 = poni_for_beam_center(g, *beam)
    start = {**v, "poni1": p1, "poni2": p2, "rot1": -v["rot1"], "rot2": -v["rot2"]}
    try:
        alt, _ = refine_rounds(prepared, detector, d_spacing, start, free, n_rounds=2)
    except CalibrationError:
        return None
    a = alt.values
    flipped = a["rot1"] * v["rot1"] + a["rot2"] * v["rot2"] < 0
    if not flipped or _robust_sigma(alt) > 1.05 * _robust_sigma(result):
        return None
    b = frame_of(geometry_from_values(detector, a)).beam_center()
    return (f"tilt direction ambiguous: the mirrored tilt fits as well (σ {_robust_sigma(alt):.3f} "
            f"vs {_robust_sigma(result):.3f} px), with the beam centre "
            f"{np.hypot(b[0] - beam[0], b[1] - beam[1]):.2f} px away; at these small angles "
            "the beam centre is known to that level, not to its 1σ")


def _beam_center(geometry, result: Refinement):
    """Beam centre (pixel indices) and its 1σ per axis, from the refinement covariance."""
    def bc(v):
        return frame_of(geometry, [v[p] for p in PARAM_NAMES]).beam_center()

    value, cov = propagate(result, bc)
    return (float(value[0]), float(value[1])), tuple(float(x) for x in np.sqrt(np.abs(np.diag(cov))))


def _determinacy(result: Refinement, beam_sigma) -> dict:
    """1σ of each judged quantity as a fraction of its undetermined limit."""
    v, s = result.values, result.sigma
    out = {}
    if "dist" in s:
        out["dist"] = s["dist"] / abs(v["dist"]) / UNDETERMINED_LIMITS["dist"]
    if "poni1" in s or "poni2" in s:
        bs = max(beam_sigma) if np.all(np.isfinite(beam_sigma)) else np.inf
        out["beam centre"] = bs / UNDETERMINED_LIMITS["beam_center_px"]
    for p in ("rot1", "rot2", "rot3"):
        if p in s:
            out[p] = s[p] / UNDETERMINED_LIMITS[p]
    if "wavelength" in s:
        out["wavelength"] = s["wavelength"] / v["wavelength"] / UNDETERMINED_LIMITS["wavelength"]
    return {k: (r if np.isfinite(r) else np.inf) for k, r in out.items()}


def _undetermined(result: Refinement, beam_sigma) -> list[str]:
    return [k for k, r in _determinacy(result, beam_sigma).items() if r > 1]


def _robust_sigma(result: Refinement) -> float:
    return 1.4826 * float(np.median(np.abs(result.residual_px[result.inliers])))


def _inconsistency_message(geometry, pts, result, d_spacing, sigma) -> str:
    msg = (f"rings inconsistent with the calibrant at this wavelength: residuals of "
           f"{sigma:.2f} px (robust σ) after refinement")
    if "wavelength" in result.free or np.unique(pts.ring).size < 3:
        return msg
    try:
        free = result.free + ("wavelength",)
        alt = refine_geometry(geometry, pts.d1, pts.d2, d_spacing[pts.ring], result.values, free)
    except ValueError:
        return msg
    alt_sigma = _robust_sigma(alt)
    lam0, lam1 = result.values["wavelength"], alt.values["wavelength"]
    if alt_sigma < sigma / 2:
        msg += f"; with the wavelength free (σ {alt_sigma:.2f} px) they fit" + _energy_hint(lam0, lam1)
    return msg


def _energy_hint(lam0: float, lam1: float) -> str:
    """' at λ1 Å (E keV, ±x %): check the energy' for a refit wavelength λ1 against λ0 (m)."""
    from geocal_cli.core.geometry.units import energy_from_wavelength

    return (f" at {lam1 * 1e10:.5f} Å ({energy_from_wavelength(lam1):.3f} keV, "
            f"{100 * (lam1 / lam0 - 1):+.1f} %): check the energy")


def _ring_residuals(pts, result, d_spacing, wavelength) -> list[RingResidual]:
    out = []
    inl = result.inliers
    for k in np.unique(pts.ring):
        sel = inl & (pts.ring == k)
        if not sel.any():
            continue
        tth = float(ring_tth(d_spacing[k:k + 1], wavelength)[0])
        r_t = result.residual_tth[sel]
        strain = -(r_t / 2) / np.tan(tth / 2) * 1e6
        out.append(RingResidual(index=int(k), d_spacing=float(d_spacing[k]), tth=tth,
                                count=int(sel.sum()), rms_tth=float(np.sqrt(np.mean(r_t**2))),
                                rms_px=float(np.sqrt(np.mean(result.residual_px[sel] ** 2))),
                                rms_microstrain=float(np.sqrt(np.mean(strain**2))),
                                chi=pts.chi[sel], residual_px=result.residual_px[sel]))
    return out
