"""Blind starting geometry: rings found in the image, assigned to the calibrant.

Two strategies. `ring_traces`: a common ring centre (voting along ridge normals, circles on
long arcs), rings grouped by radius and fitted by ellipses or circles. `arc_traces`, for
strongly tilted detectors whose rings are conic arcs with drifting centres: every ridge arc
is a ring piece, and the ring-family fit (`family`) gives the geometry and each arc's 2θ.
`start_from_traces` then ranks assignment hypotheses (`assign`), fits each on the traced
pixels from flat and tilted starts, and judges it by control-point residuals, because an
isostructural second phase can alias the calibrant's ring ratios; its starts come best
first, for the caller to refine until one holds.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from geocal_cli.core.rings.assign import MATCH_TOL_PX, MATCH_TOL_REL, assign_rings, assignable
from geocal_cli.core.rings.blind import (MAX_CENTRE_SHIFT, RingTrace, arc_center, arc_coverage,
                                   drifting_center, longest_curve, refine_center, ridge_turn,
                                   sharpness, trace_rings, vote_center)
from geocal_cli.core.rings.ellipse import fit_circle, fit_ellipse
from geocal_cli.core.rings.family import coherent_start, fit_ring_family, residual_px
from geocal_cli.core.geometry.frame import (frame_of, geometry_from_values, make_geometry,
                                      mean_pixel, poni_for_beam_center)
from geocal_cli.core.rings.refine import refine_geometry
from geocal_cli.core.rings.ridges import FEW_RIDGE_PIXELS, find_ridges, with_full_resolution_core
from geocal_cli.core.rings.rounds import SCREEN_AZIMUTHS, expected_rings, refine_rounds
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.errors import CalibrationError

_ONE_RING = ("undetermined geometry: only {} was found, and one ring cannot fix the distance, "
             "beam centre and tilts together (dist, poni1, poni2, rot1, rot2 are undetermined). "
             "Give a --guess and --fix what it knows (e.g. --fix dist,rot1,rot2,rot3,wavelength)")
#: How many times sharper (`blind.sharpness`, 1-px bins) the ridge radii must be with a
#: drift of the ring centres than about the sharpened common centre for the drift to be
#: taken: two more parameters always sharpen a little (1.00 on most of the robustness
#: benchmark's untilted images, up to 1.26; 1.3–3.2 on 40 of its 300).
DRIFT_GAIN = 1.3
#: Share of the turn about the common centre (`blind.ridge_turn`) from which the ridges are
#: whole rings, whose traces measure their drift themselves: no drift is searched for
#: (a beamstop's arm hides a sector or two; rings around a beam at an edge show half a
#: turn, 0.5 or less).
WHOLE_TURN = 0.85
#: Robust σ (pixels) of control points under which the best-scored assignment is accepted
#: without testing the others.
EXCELLENT_SIGMA_PX = 0.35
#: Robust σ (pixels) of control points within which an assignment hypothesis other than
#: the best is offered as a further start: a worse one is no start for refinement rounds.
NEXT_SIGMA_PX = 1.0
#: Traced rings such a further hypothesis must assign: two rings fit any calibrant at a
#: distance of its choice, and a hypothesis tried because the best one failed has no benefit
#: of the doubt.
NEXT_MIN_RINGS = 3
#: Ring arcs (the longest) the ring-family fit of the arc strategy starts from.
FAMILY_ARCS = 48
#: Mean |residual| (pixels) of the arcs' ridge pixels within which a ring-family fit stands.
FAMILY_COST_PX = 3.0
#: An arc is one ring's when an ellipse fits its ridge pixels within this rms (pixels; a
#: ring's arc fits within about 1 px, a chain of touching rings 5–40 px) ...
ONE_RING_RMS_PX = 2.0
#: ... keeping at least this fraction of them (the fit's 3σ clip drops 10–35 % of a
#: ring's ridge pixels, a chain's rms is what gives it away).
ONE_RING_INLIERS = 0.5


def find_ring_ridges(image: np.ndarray, valid: np.ndarray):
    """Ridge pixels of a ring image, binned to about 1200 pixels across for speed, the
    strongest rings' region unbinned (`ridges.with_full_resolution_core`).

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)

    Returns
    -------
    RidgePixels

    Raises
    ------
    CalibrationError
        Fewer than 50 ridge pixels stand above noise (no rings).
    """
    factor = max(1, int(round(max(image.shape) / 1200)))
    ridges = with_full_resolution_core(image, valid, find_ridges(image, valid, factor=factor),
                                       factor)
    if ridges.d1.size < FEW_RIDGE_PIXELS:
        raise CalibrationError("no rings found: the image shows no ring-like ridges above noise")
    return ridges


#: Sharpness ratio within which the vote's and the arcs' centres are both refined before
#: the sharper is taken (`common_center`).
START_TIE = 1.2


def common_center(ridges, shape: tuple[int, int]) -> tuple[float, float, float, np.ndarray]:
    """The rings' common centre: the vote along ridge normals or the centre of the longest
    arcs, whichever concentrates the ridge radii more (each sharpened first where they
    concentrate them within `START_TIE` of each other), sharpened (`blind.refine_center`),
    or, where the ridges are arcs (less than `WHOLE_TURN` of a turn about it), with a drift
    of the ring centres (`blind.drifting_center`) where that concentrates them at least
    `DRIFT_GAIN` times more.

    Parameters
    ----------
    ridges : RidgePixels
    shape : (H, W)

    Returns
    -------
    c1, c2 : float
        Pixel indices (may lie off the detector); with a drift, the centre of a ring of
        radius 0.
    contrast : float
        The vote's peak contrast (> ~5: a clear centre).
    drift : ndarray, shape (2,)
        Pixels per pixel² of r², zero unless taken.
    """
    c1, c2, contrast = vote_center(ridges, shape)
    candidates = [(c1, c2)]
    arcs = arc_center(ridges)
    if arcs is not None:
        ratio = sharpness(ridges, *arcs) / max(sharpness(ridges, c1, c2), 1e-300)
        # Near a tie each is sharpened before they are compared: on half rings drifting
        # apart (a beam off the edge, tilted 4°), arc circles 145 px from the beam edged out
        # the vote by 2 %, and the vote sharpened 30 % more.
        if ratio >= START_TIE:
            candidates = [arcs]
        elif ratio > 1.0 / START_TIE:
            candidates.append(arcs)
    refined = [refine_center(ridges, *c) for c in candidates]
    c1, c2 = max(refined, key=lambda c: sharpness(ridges, *c))
    # Whole rings' traces measure the drift themselves (`blind.center_drift_of`); on its
    # rugged cost, tied starts are both searched from.
    if ridge_turn(ridges, c1, c2) < WHOLE_TURN:
        m1, m2, drift = drifting_center(ridges, candidates, (c1, c2))
        if sharpness(ridges, m1, m2, 1.0, drift) >= DRIFT_GAIN * sharpness(ridges, c1, c2, 1.0):
            return m1, m2, contrast, drift
    return c1, c2, contrast, np.zeros(2)


def ring_traces(ridges, shape: tuple[int, int], say):
    """First strategy: a common centre (voting, arc circles), then rings grouped by radius.

    Parameters
    ----------
    ridges : RidgePixels
    shape : (H, W)
    say : callable(str)
        Progress.

    Returns
    -------
    traces : list of RingTrace
        At least two, consistent with one centre.
    family : None
        (The second strategy returns its ring family here.)
    info : dict
        What the search saw, for the report.

    Raises
    ------
    CalibrationError
        One ring only (undetermined), or no rings.
    """
    c1, c2, contrast, drift = common_center(ridges, shape)
    sane = max(abs(c1), abs(c2)) < 10 * max(shape)
    traces = trace_rings(ridges, c1, c2, drift=drift) if sane else []
    traces = [t for t in traces if t.ellipse.a / t.ellipse.b < 1.8 and t.arc >= np.radians(15)
              and t.d1.size >= 20]
    if len(traces) < 2:
        # One long curve and no common centre: a single ring arc, not an empty image.
        curve = longest_curve(ridges, shape)
        if len(traces) == 1 or curve >= max(60, 0.1 * max(shape)):
            raise CalibrationError(_ONE_RING.format("one ring (an arc)"))
        raise CalibrationError("no rings found: no ridge group fits an ellipse")
    say(f"ring centre at row {c1:.1f}, column {c2:.1f} (vote contrast {contrast:.0f})"
        + (f", the centres drifting as r² ({np.hypot(*drift) * 1e4:.1f} px at radius 100 px)"
           if drift.any() else ""))
    ref = max(traces, key=lambda t: t.score)
    traces = [t for t in traces
              if np.hypot(t.ellipse.c1 - ref.ellipse.c1, t.ellipse.c2 - ref.ellipse.c2)
              <= MAX_CENTRE_SHIFT * t.ellipse.radius + 10]
    info = {"centre_vote_px": [c1, c2], "centre_vote_contrast": contrast,
            "strategy": "rings around a common centre"}
    if drift.any():
        info["centre_drift_px_per_px2"] = drift.tolist()
    return traces, None, info


def arc_traces(ridges, detector, wavelength: float, say, shape: tuple[int, int],
               crests: bool = False):
    """Second strategy, for strongly tilted detectors (rings are conic arcs with drifting
    centres): each connected ridge arc is a ring piece; the ring-family fit gives the
    geometry and every arc's 2θ; arcs within 0.1° of 2θ are merged into one ring.

    The fit's cost grows with the cube of its arcs (one 2θ each): with more than
    `FAMILY_ARCS` arcs, the grid of starts runs on the longest, and two families follow from
    its solution: every arc fitted from it (usually the sharper), and every arc given its 2θ
    by it, where the joint fit drifts; with fewer, the fit continued from its solution
    follows it (`_family_readings`). When no reading fits, the arcs that are one ring each
    (`_one_ring`) are read alone; where readings fit, they are read alone after all others.

    The grid's beam centre is extrapolated from the drift of the arcs' circle centres, which
    can lie far from the beam: LaB6 on a MAR345 tilted 24.5° at 72 mm, rings at 2θ 38–86°,
    extrapolated 1500 px off, the grid's best fit 180 px from the beam. Where no reading of
    the grid holds, the geometry under which the arcs are most coherent over the whole
    range (`family.coherent_start`) starts the same readings again, fitted in their own
    pixels (`fit_ring_family`'s `own_pixels`). With `crests`, the arcs read are those of the
    connected ridge crests (`ring_arcs`' `crests`) that are one ring each, when there are
    three or more, and more than among the ridges' arcs. The ridge pixels are read at the
    centres of their lines (`RidgePixels.on_lines`).

    Parameters
    ----------
    ridges : RidgePixels
    detector : pyFAI.detectors.Detector
    wavelength : float
        Metres.
    say : callable(str)
    shape : (int, int)
        The image's shape (the whole range's extent).
    crests : bool
        Read the ridge crests' arcs of one ring each (the search's last resort).

    Yields
    ------
    (traces, family, info)
        The ring-family readings of the arcs, to try in turn, those of the whole range's
        start computed only when the caller asks for them. `traces` (list of RingTrace) has
        one trace per ring, whose `arc` is the coverage seen from the family's beam centre;
        `family` is (RingFamily, each ring's 2θ in radians); `info` a dict.

    Raises
    ------
    CalibrationError
        Fewer than three arcs (with `crests`, no more one-ring arcs than the ridges'), or
        arcs that fit no single geometry from either start (raised before any reading is
        yielded, or after all of them).
    """
    # The arcs' shapes are what this strategy reads: on a binned image, at their lines'
    # centres (`RidgePixels.line1`). Read there by every strategy, the ridges lost as many
    # robustness cases as they gained.
    ridges = ridges.on_lines()
    arcs, picks = ring_arcs(ridges)
    if crests:
        # Broad rings whose ridge bands touch join into a few chains, and a beamstop arm's
        # edge can join them all (graphite tilted 33° at 20 mm: one arc of 26 000 ridge
        # pixels), while their crests stay apart (18 arcs, 16 of them one ring).
        crest_arcs, crest_picks = ring_arcs(ridges, crests=True)
        single = _one_rings(ridges, crest_arcs)
        if len(single) < 3 or len(single) <= len(_one_rings(ridges, arcs)):
            raise CalibrationError("no rings found: the ridge crests hold no more arcs of one "
                                   "ring than the ridges")
        arcs, picks = [crest_arcs[i] for i in single], [crest_picks[i] for i in single]
    elif len(arcs) < 3:
        raise CalibrationError("no rings found: fewer than three ring arcs")
    n = 0
    single = None if not crests else []  # (The crests' arcs read are one ring each already.)

    def one_ring_readings(whole_range):
        # Where a strong tilt crowds the rings on one side, their ridges touch and one
        # connected arc runs along several rings; the longest arcs, which the fit starts
        # from, are then such chains, and no geometry fits them (Al2O3 tilted 29° at 56 mm:
        # the 5 longest arcs each held 2–4 rings). The arcs that are one ring each, if three
        # or more, carry the geometry alone.
        nonlocal single
        if single is None:
            single = _one_rings(ridges, arcs)
        if not 3 <= len(single) < len(arcs):
            return []
        return _family_readings(ridges, [arcs[i] for i in single], [picks[i] for i in single],
                                detector, wavelength, whole_range)

    def readings():
        # The grid's readings first; then, only where none held, those started from the
        # arcs' most coherent geometry over the whole range; each, where no reading of every
        # arc fits, of the arcs that are one ring each.
        deferred = []
        for whole_range in (None, shape):
            every = _family_readings(ridges, arcs, picks, detector, wavelength, whole_range)
            if every:
                deferred.append(whole_range)
            yield from every or one_ring_readings(whole_range)
        # Last, where every arc's readings fitted but none held, the arcs that are one ring
        # each: arcs of no ring fit the family with 2θ of their own and pull it off (CeO2 on
        # an Eiger 9M tilted 31°, read at the lines' centres: two arcs read at 2θ 0.9° and
        # 7.6° held every 2θ 0.6° low, and no assignment explained half the rings).
        for whole_range in deferred:
            yield from one_ring_readings(whole_range)

    for n, (read, f) in enumerate(readings(), 1):
        yield _family_traces(ridges, read, f, detector, say, n)
    if n == 0:
        raise CalibrationError("no convergence: the ring arcs fit no single detector geometry")


def ring_arcs(ridges, crests: bool = False) -> tuple[list, list]:
    """The ridge arcs the ring-family fit reads: connected arcs of at least 60 pixels spanning
    more than 60 px, each with its circle, and the (at most 40, seeded) pixels fitted of each.

    Parameters
    ----------
    ridges : RidgePixels
    crests : bool
        Arcs of connected ridge crests (`RidgePixels.arcs`).

    Returns
    -------
    arcs : list of (ndarray of int, Circle)
        Ridge pixel indices of each arc and its circle (`ellipse.fit_circle`).
    picks : list of ndarray of int
        The ridge pixels fitted of each arc.
    """
    arcs = []
    for idx in ridges.arcs(60, crests):
        e = fit_circle(ridges.d1[idx], ridges.d2[idx])
        if e is not None and np.ptp(ridges.d1[idx]) + np.ptp(ridges.d2[idx]) > 60:
            arcs.append((idx, e))
    rng = np.random.default_rng(4)
    return arcs, [rng.choice(idx, min(40, idx.size), replace=False) for idx, _ in arcs]


def _family_readings(ridges, arcs: list, picks: list, detector, wavelength: float,
                     shape: tuple[int, int] | None = None) -> list:
    """The ring-family readings of `arc_traces` whose cost is within `FAMILY_COST_PX`, as
    (arcs, RingFamily) with one 2θ per arc: the fit of the `FAMILY_ARCS` longest arcs from
    the grid of starts (given the image's `shape`: from their most coherent geometry over
    the whole range, every fit in its own pixels) and, with more arcs, every arc fitted
    from its solution and every arc given its 2θ by it; with fewer, the fit continued from
    its solution. `arcs` are (ridge pixel indices, circle) and `picks` the ridge pixels
    fitted of each. From the whole range's start, where no reading is within
    `FAMILY_COST_PX`, the readings of the longest arcs that its fit explains
    (`_explained_arcs`), if three or more: the longest arcs of broad rings crowded by a 33°
    tilt chain them, 4.9 px at the truth."""

    def family(which, **options):
        return fit_ring_family(detector, *_picked(ridges, [picks[i] for i in which]),
                               np.array([[arcs[i][1].c1, arcs[i][1].c2] for i in which]),
                               np.array([arcs[i][1].radius for i in which]), wavelength,
                               own_pixels=shape is not None, **options)

    first = sorted(sorted(range(len(arcs)), key=lambda i: -arcs[i][0].size)[:FAMILY_ARCS])
    if shape is None:
        fam = family(first, max_nfev=40)
    else:
        start = coherent_start(detector, *_picked(ridges, [picks[i] for i in first]), shape)
        fam = None if start is None else family(first, max_nfev=40, start=start)
    if fam is None:
        return []
    # Every arc fitted from that solution. With all arcs in it, the grid's first start under
    # `good_px` ends its 40 evaluations anywhere along the valley where distance, tilt and a
    # common 2θ offset trade at nearly equal cost (vanadinite tilted 34° at 98 mm: 3.7 %
    # short, every 2θ 1.1° high, no assignment held); 40 more from there reach its floor
    # (0.5 %, 0.17°). On a few arcs they can also slide off a right reading (7 arcs of a
    # strip: 1.99 → 2.40 px), so there the continued fit is the second reading, not a
    # replacement.
    continued = family(range(len(arcs)), max_nfev=40, start=fam.values)
    if len(first) == len(arcs):
        families = [fam, continued]
    else:
        every = np.concatenate([idx for idx, _ in arcs])
        label = np.repeat(np.arange(len(arcs)), [idx.size for idx, _ in arcs])
        t = frame_of(geometry_from_values(detector, fam.values)).tth_chi(
            ridges.d1[every], ridges.d2[every])[0]
        families = [continued, replace(fam, tth=np.bincount(label, t) / np.bincount(label))]
    readings = [(arcs, f) for f in families if f is not None and f.cost <= FAMILY_COST_PX]
    if not readings and shape is not None:
        kept = _explained_arcs(ridges, [picks[i] for i in first], fam, detector)
        if 3 <= kept.size < len(first):
            return _family_readings(ridges, [arcs[first[k]] for k in kept],
                                    [picks[first[k]] for k in kept], detector, wavelength,
                                    shape)
    return readings


def _explained_arcs(ridges, picks: list, fam, detector) -> np.ndarray:
    """Indices of the arcs whose fitted pixels `picks` sit, on average, within
    `FAMILY_COST_PX` of their 2θ under the family fit `fam` (in its pixels): chains of
    touching rings do not."""
    d1, d2, arc = _picked(ridges, picks)
    off = np.abs(residual_px(frame_of(geometry_from_values(detector, fam.values)), d1, d2,
                             fam.tth[arc]))
    return np.flatnonzero(np.bincount(arc, off) / np.bincount(arc) <= FAMILY_COST_PX)


def _picked(ridges, picks: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d1, d2, arc) of the ridge pixels `picks` (one index array per arc), shape (n,) each:
    the family fit's inputs, `arc` numbering the arcs in the order given."""
    sel = np.concatenate(picks)
    return ridges.d1[sel], ridges.d2[sel], np.repeat(np.arange(len(picks)),
                                                     [p.size for p in picks])


def _one_rings(ridges, arcs: list) -> list:
    """Indices of the `arcs` ((ridge pixel indices, circle) each) that are one ring each
    (`_one_ring`)."""
    return [i for i, (idx, _) in enumerate(arcs) if _one_ring(ridges, idx)]


def _one_ring(ridges, idx: np.ndarray) -> bool:
    """Whether the ridge pixels `idx` of one connected arc lie on one ellipse (at most
    `ONE_RING_RMS_PX` rms, `ONE_RING_INLIERS` of them): a ring's own arc does, a chain of
    touching rings does not."""
    e = fit_ellipse(ridges.d1[idx], ridges.d2[idx])
    return e is not None and e.rms <= ONE_RING_RMS_PX and e.inliers.mean() >= ONE_RING_INLIERS


def _family_traces(ridges, arcs, fam, detector, say, n):
    """(traces, family, info) of `arc_traces` from one ring-family fit of all `arcs`, its
    `n`-th reading."""
    # Arcs within 0.1° of 2θ are one ring (pieces split by gaps or the beamstop).
    order = np.argsort(fam.tth)
    ring_of = np.concatenate([[0], np.cumsum(np.diff(fam.tth[order]) > np.radians(0.1))])
    b1, b2 = frame_of(geometry_from_values(detector, fam.values)).beam_center()
    traces, tth = [], []
    for k in range(ring_of[-1] + 1):
        members = order[ring_of == k]
        idx = np.concatenate([arcs[m][0] for m in members])
        longest = max(members, key=lambda m: arcs[m][0].size)
        traces.append(RingTrace(ellipse=arcs[longest][1], d1=ridges.d1[idx], d2=ridges.d2[idx],
                                weight=float(ridges.strength[idx].sum()),
                                arc=arc_coverage(ridges.d1[idx] - b1, ridges.d2[idx] - b2)))
        tth.append(float(np.mean(fam.tth[members])))
    say(f"{len(arcs)} ring arcs fit one tilted geometry ({fam.cost:.2f} px): {len(traces)} rings"
        f" (reading {n})")
    return traces, (fam, np.array(tth)), {"strategy": "ring arcs of a tilted detector",
                                           "arcs": len(arcs)}


def start_from_traces(traces, family, info, prepared, detector, wavelength: float,
                      d_spacing: np.ndarray, say, min_explained: float = 0.0,
                      n_hypotheses: int = 5):
    """Assign traced rings to calibrant reflections: the starts of the assignment
    hypotheses, best first.

    The hypotheses are fitted on the control points of their assigned rings, best scored
    first, until one fits excellently (`EXCELLENT_SIGMA_PX`). Among those about as good as
    the best fit, the one whose geometry finds most of the calibrant's expected rings comes
    first, then the assignment score. The others that fit within `NEXT_SIGMA_PX` and assign
    at least `NEXT_MIN_RINGS` traced rings follow in the order of their σ, the hypotheses
    not fitted yet last: a start whose refinement the caller refuses (a fit on a few rings
    of a dense calibrant can be excellent at a wrong distance) is then followed by the next.
    Under a lab source's doublet (`prepared.doublet`), traced rings that are the Kα2 line of
    a stronger one (`Doublet.companions`) are left out: the control points refer every ring
    to its Kα1 line.

    Parameters
    ----------
    traces : list of RingTrace
    family : None or (RingFamily, ndarray)
        From `arc_traces`: tilt-free ring radii and a tilted start.
    info : dict
        Extended with the assignment, for each start.
    prepared : PreparedImage
    detector : pyFAI.detectors.Detector
    wavelength : float
        Metres.
    d_spacing : ndarray, shape (m,)
        Metres, decreasing.
    say : callable(str)
    min_explained : float
        If > 0, an assignment must explain at least three rings and this fraction of the
        traced ones.
    n_hypotheses : int
        Assignment hypotheses fitted at most, best scored first.

    Yields
    ------
    values : dict
        Starting values of the seven parameters.
    info : dict

    Raises
    ------
    CalibrationError
        Before the first start: no assignment, none that converges, or none that explains
        enough rings (`min_explained`).
    """
    tth_all = ring_tth(d_spacing, wavelength)
    usable = assignable(tth_all, derived=family is not None)
    pixel = mean_pixel(detector)
    if family is not None:
        # Tilt-free ring radii: tan 2θ of each ring at the family's distance.
        radii = family[0].values["dist"] * np.tan(family[1]) / pixel
    else:
        radii = np.array([t.ellipse.radius for t in traces])
    weights = np.array([t.score for t in traces])
    if prepared.doublet is not None and len(traces) > 2:
        kalpha2 = prepared.doublet.companions(radii, weights)
        if kalpha2.any() and np.count_nonzero(~kalpha2) >= 2:
            say(f"{np.count_nonzero(kalpha2)} traced ring(s) are the Kα2 line of a stronger "
                "one: left out of the assignment")
            traces = [t for t, k2 in zip(traces, kalpha2) if not k2]
            radii, weights = radii[~kalpha2], weights[~kalpha2]
            if family is not None:
                family = (family[0], family[1][~kalpha2])
    radius = {id(t): r for t, r in zip(traces, radii)}
    hypotheses = (assign_rings(radii, weights, tth_all[usable], n_best=n_hypotheses)
                  if usable.size else [])
    if not hypotheses:
        raise CalibrationError(
            f"no consistent ring assignment: {len(traces)} ring(s) traced, but their radii "
            "match no distance for this calibrant and wavelength (check --calibrant and the energy)")

    one_ring = []

    def fitted(h):
        """(σ of the control points, hypothesis, Refinement, assigned rings) or None."""
        assigned = [(t, usable[k]) for t, k in zip(traces, h.ring_index) if k >= 0]
        try:
            fit = _fit_assigned(assigned, h.distance_px, detector, wavelength, d_spacing,
                                None if family is None else family[0])
        except CalibrationError as exc:
            # A hypothesis that rests on one partial ring ends only itself, not the
            # hypotheses after it; it says why when no hypothesis fits.
            one_ring.append(exc)
            return None
        if fit is None:
            return None
        # Control points on the assigned rings judge the hypothesis far more sharply than
        # the ridge pixels do.
        try:
            ref, cp = refine_rounds(prepared, detector, d_spacing, fit[1].values,
                                   free=("dist", "poni1", "poni2", "rot1", "rot2"),
                                   rings=np.array([k for _, k in fit[2]]), n_rounds=2,
                                   n_chi=SCREEN_AZIMUTHS)
        except CalibrationError:
            return None
        return 1.4826 * float(np.median(np.abs(ref.residual_px[ref.inliers]))), h, ref, fit[2]

    def explained(f):
        """Traced rings the fit explains: those it assigns, and traces at the same radius
        (a reading of ring arcs can take the arcs of one ring for rings of their own, 1 %
        apart; one of them is assigned, and the others are that ring too)."""
        kept = np.array([radius[id(t)] for t, _ in f[3]])
        near = np.abs(radii[:, None] - kept[None, :]) <= MATCH_TOL_REL * radii[:, None] + MATCH_TOL_PX
        return int(np.count_nonzero(near.any(axis=1)))

    def enough(f):
        return not min_explained or explained(f) >= max(3, min_explained * len(traces))

    fits, tried = [], 0
    for h in hypotheses:
        tried += 1
        f = fitted(h)
        if f is not None:
            fits.append(f)
            # An excellent fit that does not explain enough rings ends nothing: on two
            # rings any assignment fits excellently (Al2O3 tilted 29°: 0.009 px on two
            # rings, 100 px from the truth, ahead of the right assignment of three).
            if h is hypotheses[0] and f[0] <= EXCELLENT_SIGMA_PX and enough(f):
                break
    if not fits:
        raise one_ring[0] if one_ring else CalibrationError(
            "no convergence: no ring assignment leads to a geometry fit")

    if not any(enough(f) for f in fits):
        raise CalibrationError(
            f"no consistent ring assignment: the calibrant explains at most "
            f"{max(explained(f) for f in fits)} of {len(traces)} rings traced (check "
            "--calibrant and the energy)")
    fits_ok = [f for f in fits if enough(f)]
    # An alias (another phase with the calibrant's lattice type) fits worse than the truth;
    # among the hypotheses that fit about as well as the best, the one whose geometry finds
    # most of the calibrant's expected rings wins, then the assignment score.
    floor = min(f[0] for f in fits_ok)
    close = [f for f in fits_ok if f[0] <= 1.5 * floor + 0.05]
    if len(close) > 1:
        close = [(_coverage(prepared, detector, d_spacing, f[2].values), f) for f in close]
        first = max(close, key=lambda c: (c[0], c[1][1].score))[1]
    else:
        first = close[0]
    def next_ok(f):
        return f is not None and f[0] <= NEXT_SIGMA_PX and len(f[3]) >= NEXT_MIN_RINGS

    rest = sorted((f for f in fits_ok if f is not first and next_ok(f)), key=lambda f: f[0])
    # Fitted only when the caller asks for them (unpacked into a tuple, every blind run
    # fitted all five hypotheses before trying the first).
    later = (fitted(h) for h in hypotheses[tried:])
    later = (f for f in later if next_ok(f) and enough(f))
    for cost, h, refinement, assigned in itertools.chain((first,), rest, later):
        say(f"{len(traces)} ring(s) traced, {len(assigned)} assigned to calibrant reflections "
            + ", ".join(str(k + 1) for _, k in sorted(assigned, key=lambda a: a[1]))
            + f" (hypothesis {hypotheses.index(h) + 1} of {len(hypotheses)}, "
            f"σ {cost:.3f} px)")
        yield refinement.values, {
            **info, "rings_traced": len(traces),
            "rings_assigned": sorted(int(k) for _, k in assigned),
            "start_distance_m": refinement.values["dist"], "start_sigma_px": cost,
            "hypotheses": [{"distance_m": f[2].values["dist"], "score": f[1].score,
                            "sigma_px": f[0]} for f in fits]}


def _coverage(prepared, detector, d_spacing, values) -> int:
    """How many of the first eight calibrant rings expected on the detector carry control
    points after one extraction round on all rings from `values`."""
    try:
        ref, cp = refine_rounds(prepared, detector, d_spacing, values,
                               free=("dist", "poni1", "poni2", "rot1", "rot2"), n_rounds=1,
                               n_chi=SCREEN_AZIMUTHS)
    except CalibrationError:
        return 0
    v = ref.values
    frame = frame_of(geometry_from_values(detector, v))
    expected = expected_rings(prepared.interpolable, frame, ring_tth(d_spacing, v["wavelength"]),
                              float(np.median(cp.width[ref.inliers])))[:8]
    return int(np.isin(expected, cp.ring[ref.inliers]).sum())


def _fit_assigned(assigned, distance_px, detector, wavelength, d_spacing, family=None):
    """Fit the geometry to traced ring pixels of one assignment.

    Starts: the ring family's tilt and beam centre when there is one, a flat detector
    centred on the strongest ring, and, when that ring is visibly elliptical (> 4°), tilts
    along its major axis; the first start that fits the ridge pixels to half a pixel ends
    the search. Rings whose pixels sit off the best fit as a whole are dropped and
    the fit repeated. Returns (median |residual| px, Refinement, rings kept) or None. One
    partial ring: raises.
    """
    if len({k for _, k in assigned}) < 2 and all(t.arc < np.radians(300) for t, _ in assigned):
        raise CalibrationError(_ONE_RING.format("one partial ring"))
    pixel = mean_pixel(detector)
    dist = distance_px * pixel
    e = max(assigned, key=lambda a: a[0].score)[0].ellipse
    tau = float(np.arccos(np.clip(e.b / e.a, 0, 1)))
    starts = [(0.0, 0.0, e.c1, e.c2)]
    if family is not None:
        v = family.values
        g = make_geometry(detector, v["dist"], v["poni1"], v["poni2"], v["rot1"], v["rot2"])
        starts.insert(0, (v["rot1"], v["rot2"], *frame_of(g).beam_center()))
    # Noisy ellipse fits of flat rings read a/b ≈ 1.001, already 2.6°: only a clear
    # ellipticity is worth the tilted starts.
    if tau > np.radians(4.0):
        # The detector leans along the ellipse's major axis; which of pyFAI's rotations (and
        # signs) that is depends on the detector orientation, so all are tried.
        ca, sa = np.cos(e.angle), np.sin(e.angle)
        starts += [(s1 * tau * sa, s2 * tau * ca, e.c1, e.c2) for s1 in (1, -1) for s2 in (1, -1)]
        starts += [(s1 * tau * ca, s2 * tau * sa, e.c1, e.c2) for s1 in (1, -1) for s2 in (1, -1)]
    d1 = np.concatenate([t.d1 for t, _ in assigned])
    d2 = np.concatenate([t.d2 for t, _ in assigned])
    ring = np.concatenate([np.full(t.d1.size, i) for i, (t, _) in enumerate(assigned)])
    # Ridge pixels are good to about a pixel: a thousand fix a start geometry.
    if d1.size > 1000:
        sel = np.random.default_rng(0).choice(d1.size, 1000, replace=False)
        d1, d2, ring = d1[sel], d2[sel], ring[sel]
    dsp = np.array([d_spacing[k] for _, k in assigned])[ring]
    free = ("dist", "poni1", "poni2", "rot1", "rot2")
    best = None
    for rot1, rot2, b1, b2 in starts:
        g = make_geometry(detector, dist, 0.0, 0.0, rot1, rot2, 0.0, wavelength)
        p1, p2 = poni_for_beam_center(g, b1, b2)
        start = {"dist": dist, "poni1": p1, "poni2": p2, "rot1": rot1, "rot2": rot2,
                 "rot3": 0.0, "wavelength": wavelength}
        try:
            r = refine_geometry(g, d1, d2, dsp, start, free=free, n_rounds=2)
        except ValueError:
            continue
        cost = float(np.median(np.abs(r.residual_px)))
        if np.isfinite(cost) and (best is None or cost < best[0]):
            best = (cost, r, g)
        if cost < 0.5:
            break
    if best is None:
        return None
    cost, r, g = best
    med = np.array([np.median(np.abs(r.residual_px[ring == i])) for i in range(len(assigned))])
    off = med > max(3 * np.median(med), 1.5)
    if off.any() and (~off).sum() >= 2:
        keep = ~off[ring]
        try:
            r = refine_geometry(g, d1[keep], d2[keep], dsp[keep], r.values, free=free, n_rounds=2)
        except ValueError:
            return None
        cost = float(np.median(np.abs(r.residual_px)))
        assigned = [a for a, o in zip(assigned, off) if not o]
    return cost, r, assigned
