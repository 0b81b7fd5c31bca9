"""Blind calibration of a detector geometry from one calibrant ring image.

1. `start`: a starting geometry from the image alone (ridges, ring centre, ring traces,
   assignment to the calibrant's reflections), by a common-centre strategy or, each when
   the ones before have failed: by ring arcs of a strongly tilted detector, by the sharpest
   2θ histogram of a visibly tilted one (`tilted`; the tilt read from the best traced ring
   or, where the traces are circles around a far centre, the best ridge arc), and by the
   azimuthal profile's rings matched to the calibrant (`profilestart`: dense ring lists
   whose traces merge).
2. `rounds`: control-point extraction on every calibrant ring that crosses the detector and
   refinement of pyFAI's geometry, rejecting rings and sectors of another phase; a fit
   whose points fit far better with their reflections an order off is refined again from
   that assignment (`ordershift`).
3. Here: refusal of fits that explain only part of the calibrant (wrong energy or
   calibrant), of inconsistent residuals, of solutions the image does not show (`audit`:
   the rings of its azimuthal profile, the calibrants that explain them, the wavelength the
   rings fix) and of parameters the data cannot determine; uncertainties and per-ring
   residuals of the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from geocal_cli.core.rings.audit import (Audit, audit, calibrant_families, chi2_drop,
                                        energy_advice, fit_faults, judge_wavelength,
                                        leading_given, ranking_text, refusal, scan_wavelength,
                                        top_calibrants)
from geocal_cli.core.rings.clustered import (CELLS_PER_SIDE, Widening, cell_index,
                                             widen_for_clusters)
from geocal_cli.core.rings.concentric import RingCentres, concentric_warning, ring_shifts
from geocal_cli.core.rings.controlpoints import ControlPoints, prepare_image
from geocal_cli.core.rings.doublet import Doublet, lab_line
from geocal_cli.core.geometry.frame import (PARAM_NAMES, frame_of,
                                           geometry_from_values, make_geometry,
                                           poni_for_beam_center, with_distance_scaled)
from geocal_cli.core.rings.ordershift import MAX_SHIFTS, SHIFT_BETTER, order_shifted, orders
from geocal_cli.core.rings.profilestart import start_from_profile
from geocal_cli.core.rings.refine import (ALL_PARAMS, Refinement, covariance_matrix, propagate,
                                          refine_geometry, with_covariance)
from geocal_cli.core.rings.misfit import (JUMP_PX, Misfit, misfit_warning, ring_mean_jump,
                                          ring_offset_px, ring_offset_trend, split_residual)
from geocal_cli.core.rings.rounds import azimuths, expected_rings, refine_rounds
from geocal_cli.core.geometry.metrics import ring_position_error
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.rings.seen import seen_rings
from geocal_cli.core.rings.skew import profile_skew_px
from geocal_cli.core.rings.start import (arc_traces, find_ring_ridges, ring_traces,
                                        start_from_traces)
from geocal_cli.core.rings.tilted import (arc_references, is_tilted, sharpest_geometries,
                                         traces_in_frame)
from geocal_cli.core.rings.unfitted import Unfitted, identify_calibrant
from geocal_cli.errors import CalibrationError

#: 1σ beyond which a quantity counts as undetermined by the data. The PONI itself is not
#: judged: with small 2θ it trades off against the tilts (σ of many pixels) while the beam
#: centre, which is what the rings fix, stays sharp.
UNDETERMINED_LIMITS = {"dist": 0.02, "beam_center_px": 5.0, "rot1": np.radians(1.0),
                       "rot2": np.radians(1.0), "rot3": np.radians(1.0), "wavelength": 0.01}
#: Parameters fixed unless the user says otherwise.
DEFAULT_FIX = ("rot3", "wavelength")
#: Of the first calibrant rings expected on valid pixels, more than this fraction must be seen.
MIN_RING_COVERAGE = 0.5
#: Robust σ (1.4826 · median |residual|, pixels) of the final control points above which the
#: rings are declared inconsistent. Robust, because a weak ring may scatter by 2 px
#: legitimately; systematic misfit also shows in the ring coverage and wavelength checks.
MAX_SIGMA_PX = 1.0
#: Assignment hypotheses refined, best first, before a strategy gives up on its traces
#: (`_solve_first`): each costs the refinement rounds of a full fit.
START_TRIES = 3
#: Robust σ (pixels) a fit from a further hypothesis must reach (the best one's is judged
#: by `MAX_SIGMA_PX`): a hypothesis tried because the best failed has no benefit of the
#: doubt, and a wrong assignment's fit on many rings reaches about 1 px.
NEXT_MAX_SIGMA_PX = 0.5
#: Robust σ (pixels) any fit must reach once the audit has refused one on the same image:
#: the search then goes on through hypotheses and strategies that are more often wrong, and
#: a wrong NaCl fit on a tilted detector (24 mm against 27.7 mm) passed the audit at 0.4 px.
AFTER_REFUSAL_SIGMA_PX = 0.3
#: Tilted geometries (`tilted.sharpest_geometries`) tried after both strategies failed, and
#: assignment hypotheses fitted for each: each hypothesis costs a round of control points
#: over the whole image, seconds on a 9M detector.
TILTED_CANDIDATES = 2
TILTED_HYPOTHESES = 2
#: Tilted ring ellipses whose axis ratios start the tilted search (`tilted.arc_references`).
TILTED_REFERENCES = 3
#: Robust σ (pixels) of a tilted candidate's start above which it is not refined further:
#: the starts that led to a calibration scattered by 0.02–0.21 px, and the full rounds cost
#: seconds on a large detector.
TILTED_START_SIGMA_PX = 0.5
#: The blind summary's strategy for the tilted geometries of the search over the whole range.
GLOBAL_STRATEGY = "rings of the sharpest geometry over the whole range"
#: Largest ring 2θ (degrees) at which a tilt's mirror image can be a second minimum.
MIRROR_MAX_TTH_DEG = 20.0
#: Tilt (degrees) below which the mirrored minimum is sought only where the fit's own points
#: find it clearly better (`_mirrored`).
MIRROR_MIN_TILT_DEG = 2.0
#: The mirrored minimum replaces the first one when its robust σ is below this fraction: a
#: clear margin, since where the tilt stands in for another distortion (a projector lens's
#: ellipticity) either minimum may fit a few per cent better by chance (Au, 200 kV: 0.93),
#: so three times that. (At 0.75, Si electrons tilted 2.8° kept a minimum 0.08 px from the
#: truth whose mirror fitted at 0.76.)
MIRROR_BETTER = 0.8
#: Rounds the final fit may add past its five while rounds still drop rings.
EXTRA_ROUNDS = 3
#: An answer whose rings move less than this (pixels, rms over the detector) when refined
#: again from itself is settled (`_settled`); the benchmark counts 0.05 px as a success.
SETTLED_PX = 0.02
#: A refit from the answer that moves its rings by more than this (pixels, rms) is refined
#: once more from where it went (`_settled`), up to `SETTLE_PASSES` refits in all: twice
#: the benchmark's success. Over 600 robustness cases 8 answers moved, by 0.02–0.12 px.
SETTLE_AGAIN_PX = 0.1
SETTLE_PASSES = 2
#: A settling refit whose robust σ is at most this fraction of the fit it started from, on
#: at least as many rings, converged where that fit had not (`_settled`): the 1σ count the
#: moves after it, not the move to it.
SETTLE_CONVERGED = 0.5
#: How the warning on a parameter whose 1σ nears its undetermined limit goes on after its
#: name (a model that replaces the tilted fit, the electron lens model, drops it).
WEAKLY_DETERMINED = "is weakly determined"
#: ... where its 1σ exceeds this share of its limit for undetermined.
WEAKLY_DETERMINED_SHARE = 0.2
#: A 1σ widened this many times for errors shared by neighbouring points or by whole rings
#: is worth a note of its own (where no misfit warning says it): independent points' 1σ
#: grow by up to 1.6 times, the positive part of a noisy difference (`clustered`, over about
#: 30 cells).
WIDENED_NOTE = 2.0
#: The skew of the rings' profiles is named among what the 1σ allow for where it widened one
#: by this factor or more; below, it changes no 1σ by a tenth (on the CeO2 Pilatus 1M image
#: a shift of 0.002 px at most widened them by 0.2 %).
SKEW_NAMED = 1.1
#: How that note begins.
WIDENED_START = "the 1σ are widened"
#: Above this spread (pixels) the fit is refused: no detector bends its rings apart by a
#: pixel; a solution whose rings disagree that much is fitting the wrong rings.
MAX_RING_SPREAD_PX = 1.0
#: Whole rings sitting off the fit by more than this many times their points' scatter (rms,
#: `misfit.ring_offset_px`), by more than `RING_OFFSET_FLOOR_PX`, along a trend in 2θ, refuse
#: a fit with any quantity weakly determined (`WEAKLY_DETERMINED_SHARE`). A ring's radius
#: follows from its d-spacing, λ and the geometry alone; what moves single rings (a
#: profile's skew, a neighbour's tail) reached 3.5 times the points' scatter over 460
#: answers of the robustness benchmark. AgBh 2.7 m from a strip detector tilted 10°, fitted
#: one order off its reflections, left its rings 0.146 px off, 7 times their scatter, its
#: tilt at 58 % of its limit, and was otherwise accepted 47 px from the truth. A detector's
#: radial distortion also puts the rings on a trend, but under a geometry the rings fix
#: (LaB6 through a 3 px pincushion, all round its beam: warned of, not refused).
RING_OFFSET_RATIO = 5.0
RING_OFFSET_FLOOR_PX = 0.05
#: ... and whose means follow a smooth trend in 2θ (`misfit.ring_offset_trend`) by this share:
#: rings moved one by one (blends, tails) are an imprecise answer, not a wrong one.
RING_OFFSET_TREND = 2.0 / 3.0
#: A fit whose detector holds fewer calibrant rings than this is tried with the other
#: reflections whose d-spacing ratio lies within `RIVAL_RATIO` of its own: partial arcs fix each ring's radius only through
#: their curvature, and two arcs on a strip detector were fitted as LaB6 13/14 at 245 mm (0.08
#: px rms), truly 5/6 at 500 mm. A rival fitting within `RIVAL_RMS` times the rms (and 0.05
#: px) makes the assignment a guess.
FEW_RINGS = 3
RIVAL_RATIO = 0.05
RIVAL_RMS = 2.0
#: A rival is refitted only when its start (the fit with the distance scaled to put its first
#: reflection on the first ring) predicts at most this many rings more than the fit: the
#: refit on the same rings moves only rings at the edge of the detector's coverage in or
#: out (at most one, over 59 rivals of a LaB6 pair), and a rival with more rings is no rival.
#: Most rivals put tens of rings inside the first one, and refitting each cost seconds.
RIVAL_START_MARGIN = 4


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
        with a guess, empty. Under "order_shift", the shift that replaced the start's ring
        assignment (`_order_checked`), if any.
    audit : Audit
        The rings the image shows, which of them the calibrant explains, how the candidate
        calibrants rank and what the rings say of the wavelength.
    families : dict
        Candidate calibrant name → family name (calibrants with the same rings).
    warnings : list of str
    notes : list of str
        Information that is not a problem (e.g. a parameter fixed by default).
    timings : dict[str, float]
        Seconds per stage.
    ring_centres : RingCentres or None
        Each ring's own shift from the fitted geometry and their spread (`concentric`);
        `beam_center_sigma` includes what the spread adds.
    misfit : Misfit or None
        The residual split into the control points' own scatter and what the geometry
        leaves (`misfit.split_residual`): a misfit well above the scatter on a good image is
        a detector distortion or a non-planar detector that the PONI cannot describe.
    widening : Widening or None
        What the 1σ allow for beyond independent points (`clustered.widen_for_clusters`):
        errors shared within detector cells and whole rings' own offsets.
    """

    geometry: object
    refinement: Refinement
    points: ControlPoints
    rings: list
    beam_center: tuple
    beam_center_sigma: tuple
    blind: dict
    audit: Audit
    families: dict
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    ring_centres: RingCentres | None = None
    misfit: Misfit | None = None
    widening: Widening | None = None


def _values(geometry, wavelength) -> dict:
    v = {p: float(getattr(geometry, p)) for p in PARAM_NAMES}
    v["wavelength"] = float(wavelength)
    return v


def calibrate(image: np.ndarray, valid: np.ndarray, detector, wavelength: float,
              d_spacing: np.ndarray, guess=None, fix=DEFAULT_FIX,
              max_rings: int | None = None, progress=None, calibrant: str = "calibrant",
              mf2: np.ndarray | None = None, candidates: dict | None = None,
              min_rings: int = 2, doublet: Doublet | None = None) -> Calibration:
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
        Starting geometry; skips the blind search. Its ring assignment is refined an
        order off where that fits far better (`_order_checked`); with the distance fixed,
        the fit is refused.
    fix : sequence of str
        Parameters kept at their start value (names from `refine.ALL_PARAMS`).
    max_rings : int, optional
        Use at most the first `max_rings` calibrant rings.
    progress : callable(str), optional
        Receives one line per stage.
    calibrant : str
        Name of the calibrant, for messages and the ranking.
    mf2 : ndarray, shape (m,), optional
        Multiplicity × |F|² of the calibrant's rings (NaN where unknown), for the ranking.
    candidates : dict[str, tuple], optional
        Calibrants the given one is ranked against: name → (d-spacings in metres,
        decreasing; multiplicity × |F|² or None). The given one is added under `calibrant`.
    min_rings : int
        Calibrant rings the fit must rest on, each seen in the image's profile (1 when a
        guess is given with the distance fixed: the user vouches for the assignment).
    doublet : Doublet, optional
        The source's Kα2 line; `wavelength` is then Kα1's and the control points are
        referred to the Kα1 rings (`doublet`).

    Returns
    -------
    Calibration

    Raises
    ------
    CalibrationError
        No rings, no consistent assignment, no convergence, undetermined parameters,
        residuals too large for the calibrant at this wavelength, or a solution the image
        does not show (too few rings, rings not in the profile, another calibrant or another
        wavelength explaining the rings better; see `audit`).
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
    if mf2 is not None:
        mf2 = np.asarray(mf2, float)[:d_spacing.size]
    prepared = prepare_image(image, valid, doublet)
    free = tuple(p for p in ALL_PARAMS if p not in set(fix))
    warnings: list[str] = []
    candidates = {calibrant: (d_spacing, mf2), **{k: v for k, v in (candidates or {}).items()
                                                  if k != calibrant}}
    families = calibrant_families(candidates)
    ridges = None if guess is not None else find_ring_ridges(image, valid)

    unfitted = Unfitted(image, valid, detector, guess, ridges, candidates, wavelength, calibrant)
    if guess is not None:
        unfitted.start()
    judge = _Judge(lambda result, pts: unfitted.joined(_audit(
        image, valid, geometry_from_values(detector, result.values), result, pts, d_spacing,
        calibrant, candidates, doublet)), lambda a: refusal(a, families, min_rings),
        (prepared, detector, d_spacing, free),
        lambda a: None if fit_faults(a, min_rings) else unfitted.replacement(calibrant, families))
    try:
        result, pts, blind = _fit(image, ridges, guess, wavelength, unfitted,
                                          (prepared, valid, detector, d_spacing, free, say),
                                          judge)
    except CalibrationError as exc:
        raise _with_ranking(exc, unfitted, families, d_spacing, wavelength, calibrant) from None
    # A refused fit that stands (nothing better turned up) is refused below as it is.
    accepted = not any(result is r[0] for r in judge.refused)
    settled_from = None
    if id(result) in judge.judged:
        result, pts, mirrored, checked, said = judge.judged[id(result)]
        for msg in said:
            say(msg)
    else:
        result, pts, mirrored = _mirror_if_better(prepared, detector, d_spacing, result, pts,
                                                  free, say)
        checked = None
    if accepted:
        # Its refusal is the audit's, which names the calibrants and the wavelength the
        # rings fit already.
        settled = _settled(result, pts, blind,
                           (prepared, valid, detector, d_spacing, free, say), judge)
        if settled is not None:
            result, pts, mirrored, checked, said = judge.judged[id(settled.refit)]
            for msg in said:
                say(msg)
            # A mirrored tilt is another minimum, not a measure of how well this one holds.
            settled_from = settled if result is settled.refit else None
    timings["calibration"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    if checked is None:
        checked = judge.audit(result, pts)
    neutral = unfitted.rings()
    timings["audit"] = time.perf_counter() - t1
    # With a guess and the distance fixed, the user vouches for which ring is which.
    min_rings = 1 if guess is not None and "dist" not in free else min_rings
    values = result.values
    geometry = geometry_from_values(detector, values)
    why = refusal(checked, families, min_rings)
    if why:
        # A refused fit may come from a wrong wavelength: say which one fits, on the rings
        # measured without the fit. (An accepted fit's wavelength is checked on its own
        # control points, `_audit`, where chance matches of a dense ring list at another
        # wavelength and distance count for nothing.)
        measured = neutral if neutral is not None else (checked.seen, checked.counted)
        checked = replace(checked, scan=scan_wavelength(*measured, d_spacing, wavelength))
        raise CalibrationError(refusal(checked, families, min_rings))
    inl = result.inliers
    misfit = split_residual(pts.ring[inl], pts.chi[inl], result.residual_px[inl],
                            2 * np.pi / azimuths(image.shape))
    offset = ring_offset_px(pts.ring[inl], result.residual_px[inl], misfit.scatter_px)
    result, widening = widen_for_clusters(
        result, geometry, pts.d1, pts.d2, d_spacing[pts.ring],
        cell_index(pts.d1, pts.d2, image.shape), pts.ring, offset,
        profile_skew_px(frame_of(geometry), pts.d1, pts.d2, pts.width))
    if settled_from is not None:
        result = _with_move(result, *settled_from.widening)
    beam, beam_sigma = _beam_center(geometry, result)
    determinacy = _determinacy(result, beam_sigma)
    undetermined = [k for k, r in determinacy.items() if r > 1]
    if offset > max(RING_OFFSET_RATIO * misfit.scatter_px, RING_OFFSET_FLOOR_PX) \
            and max(determinacy.values(), default=0.0) > WEAKLY_DETERMINED_SHARE:
        trend = ring_offset_trend(pts.ring[inl], ring_tth(d_spacing[pts.ring[inl]],
                                                          values["wavelength"]),
                                  result.residual_px[inl])
        if trend >= RING_OFFSET_TREND:
            raise CalibrationError(
                f"the rings sit off the solution as wholes by {offset:.3f} px rms, "
                f"{offset / misfit.scatter_px:.0f} times their points' scatter, along a trend "
                f"in 2θ ({trend:.0%} of their spread), and the geometry is weakly determined: "
                "their radii do not follow the calibrant's d-spacings under it, and another "
                "ring assignment (a series an order off) may fit as well")
    centres = _ring_centres(geometry, result, pts, d_spacing)
    if centres is not None and centres.spread_px > MAX_RING_SPREAD_PX:
        raise CalibrationError(
            f"the rings are not concentric about the solution: their own centres scatter by "
            f"{centres.spread_px:.2f} px (rms per axis over {centres.ring.size} rings), far "
            "beyond what a non-planar detector gives; the geometry does not describe the image "
            "(a wrong ring assignment, or rings of another phase)")
    if centres is not None and centres.spread_px > 0:
        beam_sigma = tuple(float(np.hypot(s, centres.centre_sigma_px)) for s in beam_sigma)
        warning = concentric_warning(centres)
        if warning:
            warnings.append(warning)
    if undetermined:
        # rot3 turns the detector about the beam after rot1 and rot2 (pyFAI's order): it
        # moves χ, never 2θ, so no ring can fix it, however many.
        why = (" (rot3 moves χ but no 2θ: powder rings never fix it)"
               if "rot3" in undetermined else "")
        raise CalibrationError(
            "undetermined geometry: the rings found cannot fix the " + ", ".join(undetermined)
            + f" ({np.unique(pts.ring).size} ring(s)){why}. Give a --guess and --fix these "
            "parameters")
    rival = _rival_assignment(geometry, valid, result, pts, d_spacing, free) \
        if "dist" in free else None
    if rival is not None:
        own = ",".join(str(k + 1) for k in np.unique(pts.ring[result.inliers]))
        raise CalibrationError(
            f"ambiguous ring assignment: the fit rests on rings {own} of {calibrant} at "
            f"{values['dist'] * 1e3:.1f} mm, and rings {rival[0]} fit as well at "
            f"{rival[1] * 1e3:.1f} mm ({rival[2]:.3f} px against {rival[3]:.3f} px): with fewer "
            f"than {FEW_RINGS} rings the reflections cannot be told apart. Give a --guess and "
            "--fix dist, or calibrate several frames of this detector together "
            "(geocal batch calib-ring … --joint)")
    shift = blind.get("order_shift")
    if shift and shift.get("kept"):
        raise CalibrationError(
            f"with the distance free, the rings fit the reflections {orders(shift['shift'])} "
            f"far better ({shift['rms_px']:.3f} px rms at {shift['dist_m'] * 1e3:.1f} mm, "
            f"against {shift['fit_rms_px']:.3f} px at the fixed {values['dist'] * 1e3:.1f} mm): "
            "the fixed distance puts them on the wrong reflections. Check it, or free it "
            "(leave dist out of --fix)")
    notes = []
    if settled_from is not None:
        notes.append(settled_from.note())
    if shift:
        notes.append(f"the {'guess' if guess is not None else 'search'}'s ring assignment was "
                     f"off: its points fit the reflections {orders(shift['shift'])} at "
                     f"{shift['rms_px']:.3f} px rms against {shift['fit_rms_px']:.3f} px, and "
                     "the answer is refined from that assignment")
    line = lab_line(wavelength) if doublet is None else None
    if line:
        warnings.append(line)
    if doublet is not None:
        notes.append(f"Kα1/Kα2 doublet (λ2/λ1 = {doublet.wavelength_ratio:.5f}, intensity ratio "
                     f"{doublet.intensity_ratio:g}): ring maxima were referred to Kα1 and the "
                     f"PONI carries λ(Kα1) = {values['wavelength'] * 1e10:.5f} Å")
    w = checked.wavelength
    if w is not None and not w.determined:
        notes.append(f"only D·λ is determined: with λ free the rings fix it to "
                     f"{100 * w.sigma / w.given:.2g} % (1σ, a 0.1 % radial systematic of the "
                     "detector included), so the distance is as good as the wavelength given")
    foreign = checked.foreign
    if foreign.size:
        warnings.append(f"{foreign.size} ring(s) of the image are not {calibrant}'s (2θ = "
                        + ", ".join(f"{np.degrees(x):.3f}°" for x in checked.seen.tth[foreign])
                        + "): another phase or a contamination, left out of the fit")
    mirror = _mirror_warning(detector, result, mirrored[0] if mirrored is not None else None)
    if mirror:
        warnings.append(mirror)
    for name, ratio in _determinacy(result, beam_sigma).items():
        if ratio > WEAKLY_DETERMINED_SHARE:
            warnings.append(f"{name} {WEAKLY_DETERMINED} (1σ at {100 * ratio:.0f} % of the "
                            "limit for undetermined)")
    rings = _ring_residuals(pts, result, d_spacing, values["wavelength"])
    warning = misfit_warning(misfit, "a detector distortion or a non-planar detector that a "
                             "PONI cannot describe (grid-distortion measures a distortion); "
                             + _correlation_clause(widening, image.shape))
    if warning:
        warnings.append(warning)
    else:
        note = _widened_note(widening, image.shape)
        if note:
            notes.append(note)
    timings["total"] = time.perf_counter() - t0
    return Calibration(geometry=geometry, refinement=result, points=pts, rings=rings,
                       beam_center=beam, beam_center_sigma=beam_sigma, blind=blind,
                       audit=checked, families=families, warnings=warnings, notes=notes,
                       timings=timings, ring_centres=centres, misfit=misfit,
                       widening=widening)


class _Judge:
    """The audit's verdict on each fit the blind search finds, so that a fit the audit
    refuses sends the search on to the next hypothesis and strategy.

    Called with (Refinement, ControlPoints, blind summary): the refusal, or None; once it
    has refused a fit, any later one must reach `AFTER_REFUSAL_SIGMA_PX`. A refusal ends
    the search (`final`, a sentence for the log) when `replaced`, called with the fit's
    Audit, names the calibrant that replaces the given one: the caller's rule is a fit the
    image confirms (`audit.fit_faults` finds nothing against it) whose rings, measured
    without any fit too, another calibrant explains better. Then the calibrant is wrong, not
    the geometry, and every strategy finds the same fit again (Si given for a CeO2 image
    on a Pilatus 2M: five more times, half a minute, the same refusal). A fit the image
    does not confirm leaves the search going: the neutral frame blurs a strongly tilted
    detector's rings until another calibrant explains more of them (corundum tilted 29°:
    LaB6), and the right fit comes from a later strategy. Keeps the
    refused fits in search order (`refused`: the first is the answer refused in the end
    when nothing better turns up) and, by the id of each fit judged, (Refinement,
    ControlPoints, the other tilt's fit, Audit, what the mirrored-tilt check said) after
    that check, which the search's answer reuses (`judged`). `audit` is called with
    (Refinement, ControlPoints): the fit's own audit (`_audit`) joined by the rings measured
    without it (`unfitted.Unfitted`).
    """

    def __init__(self, audit, refuse, mirror_args, replaced=lambda checked: None):
        self.audit, self.refuse, self.mirror_args = audit, refuse, mirror_args
        self.replaced = replaced
        self.final: str | None = None
        self.refused: list[tuple] = []
        self.judged: dict = {}
        self.restarts: dict = {}

    def __call__(self, result, pts, blind):
        if self.refused and _robust_sigma(result) > AFTER_REFUSAL_SIGMA_PX:
            return (f"residuals of {_robust_sigma(result):.2f} px (robust σ), after a fit the "
                    "audit refused")
        prepared, detector, d_spacing, free = self.mirror_args
        said: list[str] = []
        taken, taken_pts, other = _mirror_if_better(prepared, detector, d_spacing, result, pts,
                                                    free, said.append)
        checked = self.audit(taken, taken_pts)
        self.judged[id(result)] = (taken, taken_pts, other, checked, said)
        why = self.refuse(checked)
        if why:
            self.refused.append((result, pts, blind))
            better = self.replaced(checked)
            if better is not None:
                self.final = (f"measured without any fit, the rings fit {better.describe()} "
                              "better than the calibrant given: no other ring assignment can "
                              "change that, so the search ends")
            ratio = checked.better_distance_ratio
            if ratio is not None:
                self.restarts[id(result)] = with_distance_scaled(detector, taken.values, ratio)
        return why

    def restart(self, result) -> dict | None:
        """The start at the distance the audit found better for a refused fit, else None."""
        return self.restarts.pop(id(result), None)


def _mirror_if_better(prepared, detector, d_spacing, result, pts, free, say):
    """(Refinement, ControlPoints, the other tilt's (Refinement, ControlPoints) or None):
    the fit from the mirrored tilt taken when it fits clearly better (`MIRROR_BETTER`)."""
    mirrored = _mirrored(prepared, detector, d_spacing, result, pts, free)
    if mirrored is not None and _robust_sigma(mirrored[0]) < MIRROR_BETTER * _robust_sigma(result):
        say(f"the mirrored tilt fits better (σ {_robust_sigma(mirrored[0]):.3f} vs "
            f"{_robust_sigma(result):.3f} px): taking it")
        return (*mirrored, (result, pts))
    return result, pts, mirrored


def _audit(image, valid, geometry, result: Refinement, pts: ControlPoints, d_spacing, calibrant,
           candidates, doublet: Doublet | None = None) -> Audit:
    """The fit against the rings of the image (`audit.audit`), with the λ-free refit."""
    values = result.values
    inl = result.inliers
    width = float(np.median(pts.width[inl]))
    seen = seen_rings(image, valid, frame_of(geometry), width)
    fit_rings, fit_points = np.unique(pts.ring[inl], return_counts=True)
    check = None
    if "wavelength" not in result.free and fit_rings.size >= 2:
        try:
            alt = refine_geometry(geometry, pts.d1[inl], pts.d2[inl], d_spacing[pts.ring[inl]],
                                  values, result.free + ("wavelength",))
            kept = alt.inliers
            check = judge_wavelength(values["wavelength"], alt.values["wavelength"],
                                     alt.sigma["wavelength"],
                                     ring_tth(d_spacing[fit_rings], values["wavelength"]),
                                     chi2_drop(result.residual_px[inl][kept],
                                               alt.residual_px[kept], len(alt.free)))
        except ValueError:
            check = None
    tth = ring_tth(d_spacing, values["wavelength"])
    return audit(seen, tth, fit_rings, fit_points, calibrant, candidates, values["wavelength"],
                 check, None if doublet is None else doublet.tth2(tth))


def identify_and_calibrate(image: np.ndarray, valid: np.ndarray, detector, wavelength: float,
                           candidates: dict, progress=None, **options) -> tuple[str, Calibration]:
    """Calibrate with whichever candidate calibrant the image shows (`--calibrant auto`).

    The candidates are ranked on the rings measured without a calibration
    (`identify_calibrant`); the best of each family, up to three, are calibrated in turn, and
    the first the audit accepts is the answer (the audit refuses a calibrant that another
    explains better, so a wrong first guess does not stand). A tie of ring positions that no
    intensity decides goes to the candidate that comes first in `candidates`, with a warning
    naming the others.

    Parameters
    ----------
    image, valid, detector, wavelength
        As `calibrate`.
    candidates : dict[str, tuple]
        Name → (d-spacings in m, decreasing; multiplicity × |F|² or None), preferred first.
    progress : callable(str), optional
    **options
        Passed to `calibrate` (guess, fix, max_rings, min_rings).

    Returns
    -------
    name : str
        The calibrant identified.
    Calibration

    Raises
    ------
    CalibrationError
        No candidate explains the rings, or none of the best calibrates the image.
    """
    say = progress or (lambda msg: None)
    families = calibrant_families(candidates)
    ranked = identify_calibrant(image, valid, detector, wavelength, candidates,
                                guess=options.get("guess"))
    top = top_calibrants(ranked, families, 3)
    if not top:
        raise CalibrationError("no calibrant explains the rings of the image: give --calibrant "
                               "(a pyFAI name, a d-spacing file or a CIF)")
    say("the rings rank " + ", ".join(s.describe() for s in top))
    failures = []
    for choice in top:
        d_spacing, mf2 = candidates[choice.name]
        try:
            calib = calibrate(image, valid, detector, wavelength, d_spacing, progress=progress,
                              calibrant=choice.name, mf2=mf2, candidates=candidates, **options)
        except CalibrationError as exc:
            failures.append(f"{choice.name}: {exc}")
            continue
        tied = [s.name for s in top if s is not choice and s.score >= choice.score
                and not (np.isfinite(s.misfit) and np.isfinite(choice.misfit))]
        if tied:
            calib = replace(calib, warnings=calib.warnings + [
                f"{', '.join(tied)} explain the rings as well as {choice.name} (the same ring "
                f"ratios, no intensities to decide): {choice.name} was taken as the more common "
                "standard; give --calibrant to choose"])
        return choice.name, calib
    raise CalibrationError("none of the calibrants that best explain the rings calibrates the "
                           "image: " + " | ".join(failures))


def _fit(image, ridges, guess, wavelength, unfitted, solve, judge=None):
    """Blind search (or the guess) and refinement rounds: (Refinement, ControlPoints, blind
    search summary). `solve` is (prepared, valid, detector, d_spacing, free, say);
    `unfitted` (`unfitted.Unfitted`) gives the profile strategy its rings, measured about
    the rings' centre and traces the first strategy finds."""
    prepared, valid, detector, d_spacing, free, say = solve
    if guess is not None:
        result, pts, shifted = _order_checked(*_solve(_values(guess, wavelength), *solve), solve)
        return result, pts, _with_shift({}, shifted)
    try:
        return _search(image, ridges, wavelength, unfitted, solve, judge)
    except _SearchEnded as ended:
        say(str(ended))
        return judge.refused[0]


class _ArcsTraced(CalibrationError):
    """The ring-arc strategy traced `rings` rings and no assignment of them held
    (`_arc_search`): what it says of the image outweighs a common centre's view of one ring
    or none."""

    def __init__(self, message: str, rings: int):
        super().__init__(message)
        self.rings = rings


class _SearchEnded(Exception):
    """The audit refused a fit for a reason no other start can lift (`_Judge.final`): the
    blind search ends with that fit, to be refused with the audit's full account. Not a
    CalibrationError, so that no strategy takes it for its own failure and moves on."""


def _search(image, ridges, wavelength, unfitted, solve, judge=None):
    """The blind search's strategies in turn (`_fit`)."""
    prepared, valid, detector, d_spacing, free, say = solve
    traces, info = [], {}
    try:
        traces, family, info = ring_traces(ridges, image.shape, say)
        unfitted.locate(info["centre_vote_px"], traces)
        unfitted.start()
        result, pts, blind = _solve_first(
            start_from_traces(traces, family, info, prepared, detector, wavelength, d_spacing,
                              say), solve, judge)
    except CalibrationError as first:
        # A strongly tilted detector defeats the common-centre strategy; its rings are
        # still arcs of one geometry.
        say(f"common-centre strategy failed ({first}); trying ring arcs of a tilted detector")
        try:
            result, pts, blind = _arc_search(ridges, wavelength, solve, judge)
        except CalibrationError as second:
            say(f"ring-arc strategy failed ({second})")
            # Dense rings of a strongly tilted detector: merged around one centre and joined
            # into one arc where they touch, but sharp in the right geometry's 2θ.
            # The traces' best ring and (rings grouped around a far centre as circles) the
            # best ridge arcs' ellipses show the tilt.
            best = max(traces, key=lambda t: t.score).ellipse if traces else None
            refs = [e for e in [best, *arc_references(ridges)]
                    if e is not None and is_tilted(e)][:TILTED_REFERENCES]
            found = _tilted_search(ridges, refs, info, wavelength, solve, judge) if refs else None
            if found is None:
                found = _profile_search(unfitted, wavelength, solve, judge)
            if found is None and best is not None and not is_tilted(best):
                # Round-looking rings can still drift apart: arcs around a far beam,
                # tilted by 12°, look round, the common centre lands among their drifting
                # centres and the radii around it fit no distance. An untilted start at
                # the traces' centre lets the tilted search find the tilt (last: on the
                # MAR345 CeO2 + steel image it cost 7 s before the profile's rings held).
                found = _tilted_search(ridges, [replace(best, a=best.radius, b=best.radius,
                                                        angle=0.0)],
                                       info, wavelength, solve, judge)
            if found is None and refs:
                # The references' tilts read as those of rings at 2θ = 0 overstate it where
                # the rings are wide: AgBh 5 m from an Eiger 9M tilted by 31°, the beam off
                # the detector, started 6–12° too steep and stalled 3.9 px off the truth. Read
                # at each distance start's 2θ, they start other searches (last: as first
                # starts they took the place of others that found the truth of corundum
                # tilted 20° across a beamstop arm).
                found = _tilted_search(ridges, refs, info, wavelength, solve, judge, cone=True)
            if found is None:
                # Where no reference ellipse led the search to the sharpest rings, every
                # beam centre, distance and tilt is searched for them (verneite at 5 keV,
                # 72 mm from a Pilatus 2M tilted 33°, the beam 346 px off it: the
                # references' starts ended at a sharpness 40 % short of the truth's).
                say("searching every beam centre, distance and tilt for the sharpest rings")
                found = _tilted_search(ridges, [], info, wavelength, solve, judge,
                                       shape=image.shape)
            if found is None:
                # Last, the arcs of the ridge crests (`arc_traces`' `crests`): where broad
                # rings' ridge bands touch, the ridges' arcs chain rings (last: on a Cr2O3
                # image tilted 30° their readings took a wrong distance the audit refused,
                # where the tilted search found the truth).
                try:
                    found = _arc_search(ridges, wavelength, solve, judge, crests=True)
                except CalibrationError as exc:
                    say(f"ring arcs of the ridge crests failed ({exc})")
            if found is None and judge is not None and judge.refused:
                # Nothing the audit accepts: the first fit found stands, to be refused
                # with the audit's full account.
                found = judge.refused[0]
            if found is None:
                # Where no common centre showed two rings but the arcs showed several, the
                # arcs' failure is the one to tell (CeO2 at 37 keV, the beam by a panel's
                # edge: "only one ring (an arc) was found" of 52 rings the arcs traced).
                arcs = isinstance(second, _ArcsTraced) and second.rings >= 3 and not traces
                raise (second if arcs else first) from None
            result, pts, blind = found
    return result, pts, blind


def _arc_search(ridges, wavelength, solve, judge=None, crests=False):
    """The ring-arc strategy: each reading of the arcs as one family of cones (`arc_traces`,
    of the ridge crests' arcs with `crests`) assigned and refined in turn. Returns
    (Refinement, ControlPoints, blind summary) of the first that holds; raises the last
    reading's CalibrationError."""
    prepared, valid, detector, d_spacing, free, say = solve
    for n, (traces, family, info) in enumerate(arc_traces(ridges, detector, wavelength, say,
                                                          valid.shape, crests), 1):
        try:
            # Every arc is taken for a ring: the calibrant must explain most of them.
            return _solve_first(start_from_traces(traces, family, info, prepared, detector,
                                                  wavelength, d_spacing, say,
                                                  min_explained=0.5), solve, judge)
        except CalibrationError as exc:
            failed = _ArcsTraced(str(exc), len(traces))
            say(f"reading {n} of the ring arcs failed ({exc})")
    raise failed


def _tilted_search(ridges, refs, info, wavelength, solve, judge=None, cone=False, shape=None):
    """After the common-centre and arc strategies failed: the ring traces of the sharpest
    tilted geometries (`tilted.sharpest_geometries`, started from the reference ellipses
    `refs`, with `cone` as it takes it, or, given the image's `shape`, searched over the
    whole range of geometries), sharpest first, each assigned and refined as the
    common-centre traces are. Returns (Refinement, ControlPoints, blind summary) of the
    first that fits, or None."""
    prepared, valid, detector, d_spacing, free, say = solve
    candidates = sharpest_geometries(ridges, detector, refs, wavelength,
                                     n_best=TILTED_CANDIDATES, cone=cone, shape=shape)
    say(f"trying {len(candidates)} tilted geometries where the ridges' 2θ are sharpest ("
        + ("searched over the whole range" if shape is not None else
           f"from {len(refs)} reference ring(s), axis ratios "
           + ", ".join(f"{e.a / e.b:.3f}" for e in refs)) + ")")
    for values in candidates:
        traces, family = traces_in_frame(ridges, detector, values)
        if len(traces) < 2:
            continue
        starts = start_from_traces(
            traces, family, {**info, "strategy": "rings of a tilted geometry's 2θ"
                             if shape is None else GLOBAL_STRATEGY},
            prepared, detector, wavelength, d_spacing, say, n_hypotheses=TILTED_HYPOTHESES)
        try:
            return _solve_first((s for s in starts
                                 if s[1]["start_sigma_px"] <= TILTED_START_SIGMA_PX), solve,
                                judge)
        except CalibrationError:
            continue
    return None


def _profile_search(unfitted, wavelength, solve, judge=None):
    """After every traced-ring strategy failed: the starts the azimuthal profile's rings give
    under the neutral frame (`profilestart`), best matched first, refined. Returns
    (Refinement, ControlPoints, blind summary) of the first that holds, or None."""
    prepared, valid, detector, d_spacing, free, say = solve
    measured = unfitted.measure()
    if measured is None:
        return None
    frame, seen, counted = measured
    try:
        starts = start_from_profile(seen, counted, frame, detector, wavelength, d_spacing)
    except CalibrationError as exc:
        say(f"profile strategy failed ({exc})")
        return None
    for start, blind in starts:
        say(f"trying the azimuthal profile's rings: {len(blind['rings_assigned'])} of "
            f"{blind['rings_traced']} match the calibrant at {start['dist'] * 1e3:.1f} mm")
        try:
            return _solve_first([(start, blind)], solve, judge, tries=1)
        except CalibrationError as exc:
            say(f"profile strategy failed ({exc})")
    return None


def _solve_first(starts, solve, judge=None, tries: int = START_TRIES):
    """Refine the starts in turn (`start_from_traces`: the assignment hypotheses, best
    first) until one holds, at most `tries` of them. Returns (Refinement, ControlPoints,
    blind summary).

    A start holds when its refinement does (`_solve`; after the first, within
    `NEXT_MAX_SIGMA_PX`) and, given `judge` (`_Judge`), the audit accepts the fit: a fit the
    audit refuses sends the search on, to the next hypothesis and then the next strategy.
    When none holds, raises the first start's CalibrationError (or the starts' own, or one
    saying there was none); `_SearchEnded` when the judge ends the search.
    """
    say = solve[-1]
    first = None
    for n, (start, blind) in enumerate(starts, 1):
        try:
            result, pts, shifted = _order_checked(*_solve(start, *solve), solve)
            blind = _with_shift(blind, shifted)
            if n > 1 and _robust_sigma(result) > NEXT_MAX_SIGMA_PX:
                raise CalibrationError(f"residuals of {_robust_sigma(result):.2f} px (robust "
                                       "σ) on a further assignment hypothesis")
            why = judge(result, pts, blind) if judge is not None else None
            if why:
                held = None if judge.final else _restarted(judge.restart(result), blind, solve,
                                                           judge)
                if held is not None:
                    return held
                if judge.final:
                    raise _SearchEnded(judge.final)
                raise CalibrationError(f"the audit refuses the fit: {why}")
            return result, pts, blind
        except CalibrationError as exc:
            first = first or exc
            if n == tries:
                break
            say(f"that assignment failed ({exc}); trying the next")
    raise first or CalibrationError("no convergence: no ring assignment leads to a geometry fit")


def _with_ranking(exc: CalibrationError, unfitted, families, d_spacing, wavelength,
                  calibrant) -> CalibrationError:
    """The search's refusal with the calibrants that best explain the rings measured without
    a fit and, when those rings contradict it, the wavelength that fits them.

    When the calibrant given explains those rings best of all (`leading_given`) and they
    fix another wavelength (`WavelengthScan.contradicts`), the message leads with that
    wavelength: the energy is what the user must fix, and the search's failure at the given
    one is its symptom (LaB6 with the energy 20 % high failed on "ring 2 sits −37.56 px off
    the trend of rings 1 and 3", and named 17.03 keV only at the end). A calibrant that
    another explains better keeps its own failure first: a wrong calibrant can match some
    rings at another wavelength too.
    """
    neutral = unfitted.rings()
    if neutral is None:
        return CalibrationError(str(exc))
    ranked = unfitted.ranked()
    hint = ranking_text(ranked, families)
    scan = scan_wavelength(*neutral, d_spacing, wavelength)
    if scan is None or not scan.contradicts:
        return CalibrationError(str(exc) + hint)
    if leading_given(ranked, calibrant, families) is not None:
        return CalibrationError(f"{scan.describe(calibrant)}; at the given wavelength no ring "
                                f"assignment holds ({exc}){hint}")
    return CalibrationError(str(exc) + hint + " — " + scan.describe(calibrant))


@dataclass(frozen=True)
class Settling:
    """How the answer settled when refined again from itself (`_settled`).

    Attributes
    ----------
    refit : Refinement
        The last refit the audit judged, which replaces the answer.
    moves : list of float
        Pixels (rms over the detector) each refit moved the rings, in turn.
    widening : (dict, dict)
        pyFAI values between which the move counted in the 1σ is measured (`_with_move`):
        the answer's and the refit's, or, after a refit that converged, that refit's and
        the last refinement's.
    converged : (float, float, int, int) or None
        Robust σ (pixels) and rings of the fit before and after the refit that converged
        where it had not (`SETTLE_CONVERGED`), when one did.
    """

    refit: Refinement
    moves: list
    widening: tuple
    converged: tuple | None = None

    def note(self) -> str:
        """The report's note on the settling: the moves, and which of them the 1σ include."""
        moved = ("refined again from its own answer, the rings moved "
                 + " px, then ".join(f"{m:.3f}" for m in self.moves) + " px (rms over the "
                 "detector): ")
        if self.converged is None:
            return moved + "the 1σ include the whole move"
        s0, s1, n0, n1 = self.converged
        return (moved + f"the first refit converged where the answer had not (robust σ "
                f"{s0:.3f} → {s1:.3f} px, {n0} → {n1} rings), so the 1σ include the moves "
                "after it")


def _settled(result, pts, blind, solve, judge) -> Settling | None:
    """The answer (`result`, `pts`) refined once more from itself, with every ring sampled
    again: when its rings moved by more than `SETTLED_PX` (pixels, rms over the detector),
    the refined fit (judged: `judge.judged` holds its audit) and how it moved; else None
    (the answer stands).

    The rounds drop rings that sit off a geometry still far from the truth, and a dropped
    ring stays out: a fit from a rough start can settle on the rings it kept, tilted 0.3°
    off with 0.02° of 1σ (weak broad LaB6 rings at 20 mm: 22 of 37 rings, 0.66 px from the
    truth), where the same rounds from its answer take the rest back. An answer is kept
    only when the rounds from it, audited as every fit of the search is, accept it. Where
    they move it by more than `SETTLE_AGAIN_PX`, where they go is no fixed point either
    until the rounds from there leave it: they are run once more, and that refit is judged
    too. (Cristobalite tilted 19°, rings at 2θ 3–9°: a fit moved 0.69 px by the rounds was
    accepted 5° off in tilt, 6.2 px from the truth; from there the rounds moved it 5.6 px
    and the audit refused it.)

    The whole move from the answer counts in its 1σ (`Settling.widening`), not the last
    refinement's alone: widened by 0.03 px instead of 0.21 px, an AgBh fit 2.7 m off a
    panel tilted 10° lost the 1σ of its tilt that had it refused as undetermined, and was
    accepted 47 px from the truth on the wrong reflections; its refits shed rings as their
    rms fell (12 rings at 0.16 px, then 10 at 0.11 px). One exception: a refit whose robust
    σ is at most `SETTLE_CONVERGED` of its start's on at least as many rings converged
    where its start had not, and when a further refinement measured it, only the moves
    from it count. The move to it measures the error of a fit it replaced, not its own
    (LaB6 on a flat panel, beam off the detector: the answer at 0.30 px on 57 rings, the
    refit 2.1 px away at 0.04 px on 63, and 0.03 px the next; widened by 2.1 px its tilt
    was refused as undetermined 0.004 px from the truth).

    Raises
    ------
    CalibrationError
        The rounds from the answer move it and the audit refuses where they go.
    """
    prepared, valid, detector, d_spacing, free, say = solve
    say("refining again from the answer, every ring sampled afresh")
    # Each refinement in turn: values, robust σ, rings carrying inliers.
    steps = [(result.values, _robust_sigma(result), _ring_count(result, pts))]
    settled, moves = None, []
    while len(moves) < SETTLE_PASSES and (not moves or moves[-1] > SETTLE_AGAIN_PX):
        current = result if settled is None else settled
        try:
            again, again_pts = _rounds(current.values, *solve)
            moved = _moved(detector, d_spacing, current.values, again.values,
                           prepared.data.shape)
            if not moved > SETTLED_PX:
                if settled is not None:
                    moves.append(moved)
                    steps.append((again.values, _robust_sigma(again),
                                  _ring_count(again, again_pts)))
                break
            # Checked only when the answer would change (the checks refit with λ free where
            # rings were lost: 0.6 s on a 2300² image).
            _checked(again, again_pts, *solve)
        except CalibrationError as exc:
            # Rounds that fail from the answer find nothing better than it, and the answer
            # passed every check itself (a projector lens's ellipticity, which the tilt only
            # stands in for, can leave a fresh round two rings short of the first eight).
            say(f"refining again failed ({exc}): the answer stands")
            break
        moves.append(moved)
        steps.append((again.values, _robust_sigma(again), _ring_count(again, again_pts)))
        say(f"the rings moved {moved:.3f} px: auditing where they went")
        why = judge(again, again_pts, blind)
        if why:
            raise CalibrationError(
                "the fit has not settled: refined again from its own answer its rings move "
                + " px, then ".join(f"{m:.2f}" for m in moves) + f" px, and then {why}")
        settled = again
        if moved > SETTLE_AGAIN_PX and len(moves) < SETTLE_PASSES:
            say("refining again from there")
    if settled is None:
        return None
    # The last refit that converged where its start had not, and that a further
    # refinement measured.
    k = max((k for k in range(1, len(steps) - 1)
             if steps[k][1] <= SETTLE_CONVERGED * steps[k - 1][1]
             and steps[k][2] >= steps[k - 1][2]), default=0)
    if k == 0:
        return Settling(settled, moves, (result.values, settled.values))
    return Settling(settled, moves, (steps[k][0], steps[-1][0]),
                    (steps[k - 1][1], steps[k][1], steps[k - 1][2], steps[k][2]))


def _ring_count(result: Refinement, pts: ControlPoints) -> int:
    """Rings carrying inlier control points of a fit."""
    return int(np.unique(pts.ring[result.inliers]).size)


def _with_move(result: Refinement, before: dict, after: dict) -> Refinement:
    """`result` with its covariance widened by the move from `before` to `after`: Σ + Δ Δᵀ
    over the free parameters.

    Where the answer refined again from itself moves (`_settled`), two refinements of the
    same image, each as good as the other, differ by Δ: the control points follow the
    windows they are sought in (broad rings whose tails reach the window's ends), and the
    rounds creep towards the truth. Their 1σ, from the points' scatter alone, do not see
    that (LaB6 at 20 mm, σ = 2.8 px: moved 0.12 px, 1σ of the beam centre 0.02 px, the
    answer 0.14 px from the truth); Δ, one draw of that error, is counted as its 1σ.
    """
    delta = np.array([after[k] - before[k] for k in result.free])
    return with_covariance(result, covariance_matrix(result) + np.outer(delta, delta))


def _restarted(start, blind, solve, judge):
    """A refused fit's restart at the distance the audit found better (`_Judge.restart`),
    refined and judged once (no chain of restarts): (Refinement, ControlPoints, blind
    summary) when the audit accepts it, else None."""
    if start is None:
        return None
    say = solve[-1]
    say(f"the rings fit the calibrant better at {start['dist'] * 1e3:.1f} mm: refining from "
        "there")
    blind = {**blind, "distance_from_audit_m": start["dist"]}
    try:
        result, pts = _solve(start, *solve)
        # The start keeps the refused fit's tilt, towards which the points sampled about it
        # pull the refinement: the rms settles before the geometry does (0.07 px from the
        # truth on LaB6 at 100 keV), and a second refinement from the first's answer ends it.
        result, pts = _solve(result.values, *solve)
    except CalibrationError as exc:
        say(f"that start failed ({exc})")
        return None
    why = judge(result, pts, blind)
    judge.restart(result)
    if why:
        say(f"that start failed (the audit refuses the fit: {why})")
        return None
    return result, pts, blind


def _solve(start, *solve):
    """Refinement rounds from a start (`_rounds`), then the checks that refuse inconsistent
    fits (`_checked`). `solve` is (prepared, valid, detector, d_spacing, free, say).

    A fit the checks refuse is tried once more from its mirrored tilt, taken when it fits
    clearly better (`_mirror_if_better`): the mirror minimum's residuals grow with
    the rings' centre drift r² tan τ / L, and once that passes a pixel the checks refused
    the fit before the search's own mirror test (`_Judge`) could see it (Si at 83 kV
    electrons, 5 m, tilted 13°: σ 1.36 px and 1 px from the truth; its mirror 0.003 px).
    A mirror minimum that fits those points no better is refined on points of its own, and
    taken when the checks pass it (else the first fit's refusal stands).
    """
    result, pts = _rounds(start, *solve)
    try:
        _checked(result, pts, *solve)
    except CalibrationError as refused:
        prepared, valid, detector, d_spacing, free, say = solve
        taken, _, mirrored = _mirror_if_better(prepared, detector, d_spacing, result, pts,
                                               free, say)
        if taken is not result:
            result, pts = _rounds(taken.values, *solve)
            _checked(result, pts, *solve)
            return result, pts
        if mirrored is None:
            raise
        # The mirror minimum judged on the refused fit's points, picked along its rings,
        # can fit them worse and still be the truth's basin: LaB6 at 100 kV, 5 m, tilted
        # 16.7°, a fit at σ 1.66 px and a mirror at 2.21 px 0.6° from the truth's tilt,
        # whose own rounds find the truth. Rounds from it get their own points.
        say(f"the mirrored tilt fits the points no better (σ {_robust_sigma(mirrored[0]):.3f} "
            f"vs {_robust_sigma(result):.3f} px): refining it on points of its own")
        try:
            result, pts = _rounds(mirrored[0].values, *solve)
            _checked(result, pts, *solve)
        except CalibrationError:
            raise refused from None
    return result, pts


def _order_checked(result, pts, solve):
    """(Refinement, ControlPoints, summary or None): the fit, or, where its points fit far
    better with their reflections an order off (`ordershift`), the fit refined from that
    assignment (`_solve`) when it holds and fits better by the same margin, again until no
    shift fits better (at most `MAX_SHIFTS` times). The summary: the orders moved in all,
    the rms of the first fit and the last shift's. With the distance fixed the fit is not
    replaced: the summary, marked "kept", says what a shift with the distance free fits
    (and at which distance), for `calibrate` to refuse the fixed distance. `solve` is
    (prepared, valid, detector, d_spacing, free, say)."""
    prepared, valid, detector, d_spacing, free, say = solve
    chi_step = 2 * np.pi / azimuths(valid.shape)
    if "dist" not in free:
        shifted = order_shifted(detector, result, pts, d_spacing, free, chi_step)
        return result, pts, None if shifted is None else {
            "shift": shifted.shift, "rms_px": shifted.rms_px, "fit_rms_px": shifted.fit_rms_px,
            "dist_m": shifted.values["dist"], "kept": True}
    moved, first, last = 0, None, None
    for _ in range(MAX_SHIFTS):
        shifted = order_shifted(detector, result, pts, d_spacing, free, chi_step)
        if shifted is None:
            break
        say(f"{shifted.describe()}: refining from there")
        try:
            again, again_pts = _solve(shifted.values, *solve)
        except CalibrationError as exc:
            say(f"that start failed ({exc})")
            break
        if _robust_sigma(again) >= SHIFT_BETTER * _robust_sigma(result):
            say(f"refined, it fits no better ({_robust_sigma(again):.3f} px robust σ against "
                f"{_robust_sigma(result):.3f}): keeping the fit")
            break
        result, pts = again, again_pts
        moved, first, last = moved + shifted.shift, first or shifted, shifted
    if last is None:
        return result, pts, None
    return result, pts, {"shift": moved, "rms_px": last.rms_px, "fit_rms_px": first.fit_rms_px}


def _with_shift(blind: dict, shifted: dict | None) -> dict:
    """The search's summary with the order shift that replaced its fit (`_order_checked`),
    if any."""
    return blind if shifted is None else {**blind, "order_shift": shifted}


def _rounds(start, prepared, valid, detector, d_spacing, free, say):
    """The final fit's refinement rounds from a start: (Refinement, ControlPoints)."""
    return refine_rounds(prepared, detector, d_spacing, start, free, extra_rounds=EXTRA_ROUNDS,
                         say=say)


def _checked(result, pts, prepared, valid, detector, d_spacing, free, say):
    """Raise CalibrationError when the fit is inconsistent (`_check_consistency`) or its
    residuals too wide (`MAX_SIGMA_PX`)."""
    _check_consistency(prepared, valid, detector, d_spacing, result, pts, free)
    sigma = _robust_sigma(result)
    if sigma > MAX_SIGMA_PX:
        v = result.values
        geometry = geometry_from_values(detector, v)
        raise CalibrationError(_inconsistency_message(geometry, pts, result, d_spacing, sigma))


def _check_consistency(prepared, valid, detector, d_spacing, result, pts, free):
    """Refuse a fit that explains only part of what the calibrant predicts.

    Dropping rings protects against another phase's rings, but it can also let a wrong
    energy or a wrong calibrant fit a consistent subset. So: (1) if rings were dropped while
    the wavelength was fixed and some of them are among the first expected rings, a refit
    with the wavelength free must not explain clearly more of those (the refit's λ is named
    only when the rings fix it, `audit.judge_wavelength`: else it is any point of the D·λ
    valley; and it is named as one of two causes, since a fit on the wrong reflections
    slides along that valley too: hydrocerussite at 22 keV, assigned wrong, "fitted" 2 %
    off. The refusal's scan of the rings measured without a fit, `audit.scan_wavelength`,
    tells the user to check the energy where the image says so); (2) at least half of the
    first calibrant rings expected on valid pixels must carry control points; (3) no ring's
    mean residual may depart from its neighbours' trend by more than `misfit.JUMP_PX`
    (`misfit.ring_mean_jump`).
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
            alt_rings = np.unique(alt_pts.ring[alt.inliers])
            alt_seen = set(alt_rings.tolist())
            alt_found = [k for k in expected if k in alt_seen]
            lam0, lam1 = values["wavelength"], alt.values["wavelength"]
            if len(alt_found) >= len(found) + 2 and abs(lam1 / lam0 - 1) > 0.005:
                # Where the rings fix only D·λ the refit slides along it until stray rings
                # match (NaCl at 229 kV: to a λ 82 % short, 5 rings against 2): the fit
                # still lost rings another geometry explains, but the refit's λ says
                # nothing of the energy.
                if judge_wavelength(lam0, lam1, alt.sigma.get("wavelength", np.inf),
                                    ring_tth(d_spacing[alt_rings], lam1)).determined:
                    raise CalibrationError(
                        f"rings inconsistent with the calibrant at this wavelength: at "
                        f"{lam0 * 1e10:.5f} Å only {len(found)} of the first "
                        f"{expected.size} expected rings fit; with the wavelength free "
                        f"{len(alt_found)} fit" + _energy_hint(lam0, lam1, certain=False))
                raise CalibrationError(
                    f"the fit lost rings another geometry explains: only {len(found)} of the "
                    f"first {expected.size} expected rings fit, and a refit along the D·λ "
                    f"these rings fix (not λ itself) fits {len(alt_found)}: check the "
                    "calibrant, or give a --guess near the geometry")
    if expected.size >= 3 and len(found) <= MIN_RING_COVERAGE * expected.size:
        raise CalibrationError(
            f"no consistent ring assignment: only {len(found)} of the first {expected.size} "
            "calibrant rings expected on the detector carry control points (rings "
            + ", ".join(str(k + 1) for k in found) + "): check the calibrant and the energy")
    inl = result.inliers
    jump = ring_mean_jump(pts.ring[inl], tth[pts.ring[inl]], result.residual_px[inl])
    if jump is not None and abs(jump.departure_px) > JUMP_PX:
        a, b = jump.neighbours
        raise CalibrationError(
            f"no consistent ring assignment: the points of ring {jump.ring + 1} sit "
            f"{jump.departure_px:+.2f} px off the trend of rings {a + 1} and {b + 1}, so they "
            "belong to other rings: check the calibrant and the energy")


def _mirrored(prepared, detector, d_spacing, result, pts, free):
    """The refinement started from the mirrored tilt (−rot1, −rot2, same beam centre), when it
    converges to another minimum (a flipped tilt); else None.

    Below ~20° 2θ a tilt and its mirror image draw nearly the same ellipses (exactly so as
    2θ → 0), so the refinement can settle in either minimum; only the beam centre (and,
    beyond a few degrees, the residuals) tell them apart. Below `MIRROR_MIN_TILT_DEG` the
    other minimum is sought only where the fit's own points, refined from the mirrored tilt,
    reach one clearly better (`MIRROR_BETTER`), a refinement without new control points:
    there it is rarely elsewhere, and it need not be flipped (Si, 231 kV electrons at 2.9 m,
    tilted 2.8°: the search settled at 1.1° with σ 0.147 px, 0.08 px from the truth; its
    points refined from the mirrored tilt reach σ 0.109 px, 0.003 px from the truth, at
    2.7° in another direction). Returns (Refinement, ControlPoints).
    """
    v = result.values
    tilt = float(np.hypot(v["rot1"], v["rot2"]))
    tth = ring_tth(d_spacing[np.unique(pts.ring)], v["wavelength"])
    beam = frame_of(geometry_from_values(detector, v)).beam_center()
    if (tilt == 0.0 or np.nanmax(tth) > np.radians(MIRROR_MAX_TTH_DEG)
            or not np.all(np.isfinite(beam)) or not {"rot1", "rot2"} <= set(free)):
        return None
    g = make_geometry(detector, v["dist"], 0.0, 0.0, -v["rot1"], -v["rot2"], v["rot3"])
    p1, p2 = poni_for_beam_center(g, *beam)
    start = {**v, "poni1": p1, "poni2": p2, "rot1": -v["rot1"], "rot2": -v["rot2"]}
    small = tilt < np.radians(MIRROR_MIN_TILT_DEG)
    if small:
        inl = result.inliers
        try:
            own = refine_geometry(g, pts.d1[inl], pts.d2[inl], d_spacing[pts.ring[inl]], start,
                                  result.free)
        except ValueError:
            return None
        if not _robust_sigma(own) < MIRROR_BETTER * _robust_sigma(result):
            return None
    try:
        alt, alt_pts = refine_rounds(prepared, detector, d_spacing, start, free, n_rounds=2)
    except CalibrationError:
        return None
    a = alt.values
    if small:
        moved = _moved(detector, d_spacing, v, a, prepared.data.shape)
        return (alt, alt_pts) if moved > SETTLED_PX else None
    if a["rot1"] * v["rot1"] + a["rot2"] * v["rot2"] >= 0:
        return None
    return alt, alt_pts


def _moved(detector, d_spacing, before: dict, after: dict, shape) -> float:
    """How far the calibrant's rings (at `before`'s wavelength) move between two sets of the
    seven values: rms over the detector of shape `shape`, pixels (`ring_position_error`)."""
    return ring_position_error(geometry_from_values(detector, after),
                               geometry_from_values(detector, before),
                               ring_tth(d_spacing, before["wavelength"]), shape)


def _mirror_warning(detector, result, alt) -> str | None:
    """When the mirrored tilt fits as well (robust σ within 5 %), say so and by how much the
    beam centre moves: the covariance of one minimum does not see the other."""
    if alt is None or _robust_sigma(alt) > 1.05 * _robust_sigma(result):
        return None
    b = frame_of(geometry_from_values(detector, alt.values)).beam_center()
    beam = frame_of(geometry_from_values(detector, result.values)).beam_center()
    return (f"tilt direction ambiguous: the mirrored tilt fits as well (σ {_robust_sigma(alt):.3f} "
            f"vs {_robust_sigma(result):.3f} px), with the beam centre "
            f"{np.hypot(b[0] - beam[0], b[1] - beam[1]):.2f} px away; at these small angles "
            "the beam centre is known to that level, not to its 1σ")


def _rival_assignment(geometry, valid, result: Refinement, pts: ControlPoints, d_spacing, free):
    """Another assignment of a fit on fewer than `FEW_RINGS` rings, on a detector that holds
    fewer than that many at the fit (where it holds more, the rings the fit left out decide),
    that fits as well and predicts no more rings on the detector than the fit does (a rival
    that puts further rings where the image shows none is no rival): (its rings as text, its
    distance, its rms, the fit's rms), else None."""
    kept = result.inliers
    own = np.unique(pts.ring[kept])
    if own.size >= FEW_RINGS or own.size < 2:
        return None
    lam = result.values["wavelength"]
    tth = ring_tth(d_spacing, lam)
    # Rings too close to resolve still show: every ring on the detector counts.
    own_expected = expected_rings(valid, frame_of(geometry), tth).size
    if own_expected >= FEW_RINGS:
        return None
    d1, d2, ring = pts.d1[kept], pts.d2[kept], pts.ring[kept]
    rms = float(np.sqrt(np.mean(result.residual_px[kept] ** 2)))
    # Each reflection as the fit's first ring, with, for each further ring, the later
    # reflection whose d-spacing ratio to it is nearest the fit's (within RIVAL_RATIO).
    usable = np.nonzero(np.isfinite(tth))[0]
    log_d = np.log(d_spacing[usable])
    later = usable[None, :] > usable[:, None]
    columns = [usable]
    for r in np.log(d_spacing[own[1:]] / d_spacing[own[0]]):
        cost = np.where(later, np.abs(log_d[None, :] - log_d[:, None] - r), np.inf)
        best = np.argmin(cost, axis=1)
        columns.append(np.where(cost[np.arange(usable.size), best] < RIVAL_RATIO, usable[best], -1))
    candidates = np.column_stack(columns)
    candidates = candidates[(candidates >= 0).all(axis=1) & ~(candidates == own).all(axis=1)]
    for mapped in candidates:
        start = dict(result.values)
        start["dist"] *= np.tan(tth[own[0]]) / np.tan(tth[mapped[0]])
        start_frame = frame_of(geometry_from_values(geometry.detector, start))
        if expected_rings(valid, start_frame, tth).size > own_expected + RIVAL_START_MARGIN:
            continue
        d_alt = d_spacing[mapped[np.searchsorted(own, ring)]]
        try:
            alt = refine_geometry(geometry, d1, d2, d_alt, start, free, n_rounds=2)
        except ValueError:
            continue
        alt_rms = float(np.sqrt(np.mean(alt.residual_px[alt.inliers] ** 2)))
        if not (alt.values["dist"] > 0 and alt.inliers.mean() > 0.8
                and alt_rms < RIVAL_RMS * rms + 0.05):
            continue
        alt_frame = frame_of(geometry_from_values(geometry.detector, alt.values))
        if expected_rings(valid, alt_frame, tth).size <= own_expected:
            return ",".join(str(k + 1) for k in mapped), alt.values["dist"], alt_rms, rms
    return None


def _ring_centres(geometry, result: Refinement, pts: ControlPoints, d_spacing):
    """Each ring's shift from the fit (`concentric.ring_centres`), on the inliers."""
    inl = result.inliers
    frame = frame_of(geometry, [result.values[p] for p in PARAM_NAMES])
    return ring_shifts(frame, ring_tth(d_spacing[pts.ring[inl]], result.values["wavelength"]),
                       pts.chi[inl], pts.ring[inl], result.residual_px[inl])


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


def _correlation_clause(widening, shape) -> str:
    """What the 1σ assume of the points' errors (`clustered.widen_for_clusters`)."""
    if widening is None:
        return "the 1σ assume independent points"
    parts = []
    if widening.offset_px > 0:
        parts.append(f"each ring's own offset ({widening.offset_px:.3f} px rms)")
    if widening.skew >= SKEW_NAMED:
        parts.append(f"the skew of the rings' profiles (a shift of all rings by up to "
                     f"{widening.skew_px:.4f} px)")
    if widening.cells is not None:
        parts.append(f"errors shared within {max(shape) / CELLS_PER_SIDE:.0f} px cells of the "
                     f"detector (cluster-robust, widened up to ×{widening.cells:.1f}), not for "
                     "a distortion at the scale of the whole detector, which one image cannot "
                     "tell from the beam centre")
    if not parts:
        return "the 1σ assume independent points"
    return "the 1σ allow for " + " and for ".join(parts)


def _widened_note(widening, shape) -> str | None:
    """The note on 1σ widened `WIDENED_NOTE` times or more, naming why, or None."""
    if widening is None:
        return None
    why = [cause for factor, cause in (
        (widening.cells or 1.0, "neighbouring control points err alike"),
        (widening.rings, "whole rings sit off the fit beyond their points' scatter"),
        (widening.skew, "the rings' profiles are wide enough for their skew to shift them "
                        "all beyond the points' scatter"))
        if factor >= WIDENED_NOTE]
    if not why:
        return None
    top = max(widening.cells or 1.0, widening.rings, widening.skew)
    return (f"{WIDENED_START} up to ×{top:.1f}: " + " and ".join(why) + " ("
            + _correlation_clause(widening, shape) + ")")


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


def _energy_hint(lam0: float, lam1: float, certain: bool = True) -> str:
    """' at λ1 Å (E keV, ±x %)' and what to make of it (`audit.energy_advice`, `certain`
    as it takes it) for a refit wavelength λ1 against λ0 (m)."""
    from geocal_cli.core.geometry.units import energy_from_wavelength

    return (f" at {lam1 * 1e10:.5f} Å ({energy_from_wavelength(lam1):.3f} keV, "
            f"{100 * (lam1 / lam0 - 1):+.1f} %)" + energy_advice(lam0, lam1, certain))


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
