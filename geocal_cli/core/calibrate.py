"""Blind calibration of a detector geometry from one calibrant ring image.

Stages (each a module of its own):
1. `ridges` + `blind`: ring pixels, the common centre by voting, ring ellipses.
2. `assign`: calibrant indices of the rings and the distance.
3. A multi-start refinement of pyFAI's geometry on the traced ring pixels (flat start and
   starts tilted along the ellipses' major axis), which resolves the tilt direction.
4. Rounds of `controlpoints` extraction on every calibrant ring that crosses the detector and
   `refine`, with windows that shrink as the fit improves, so that rings of another phase
   next to calibrant rings are not taken for them; rings whose points sit off the model as a
   whole are dropped.
5. Determinacy: parameters whose 1σ exceeds physical limits are reported as undetermined.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from geocal_cli.core.assign import assign_rings
from geocal_cli.core.blind import (arc_center, longest_curve, refine_center, sharpness,
                                   trace_rings, vote_center)
from geocal_cli.core.blind import RingTrace
from geocal_cli.core.controlpoints import ControlPoints, extract_control_points, prepare_image
from geocal_cli.core.ellipse import fit_circle
from geocal_cli.core.family import fit_ring_family
from geocal_cli.core.geometry import (PARAM_NAMES, frame_of, make_geometry,
                                      poni_for_beam_center)
from geocal_cli.core.refine import ALL_PARAMS, Refinement, propagate, refine_geometry
from geocal_cli.core.ridges import find_ridges
from geocal_cli.errors import CalibrationError

#: 1σ beyond which a quantity counts as undetermined by the data. The PONI itself is not
#: judged: with small 2θ it trades off against the tilts (σ of many pixels) while the beam
#: centre, which is what the rings fix, stays sharp.
UNDETERMINED_LIMITS = {"dist": 0.02, "beam_center_px": 5.0, "rot1": np.radians(1.0),
                       "rot2": np.radians(1.0), "rot3": np.radians(1.0), "wavelength": 0.01}
_ONE_RING = ("undetermined geometry: only {} was found, and one ring cannot fix the distance, "
             "beam centre and tilts together (dist, poni1, poni2, rot1, rot2 are undetermined). "
             "Give a --guess and --fix what it knows (e.g. --fix dist,rot1,rot2,rot3,wavelength)")
#: Of the first calibrant rings expected on valid pixels, more than this fraction must be seen.
MIN_RING_COVERAGE = 0.5
#: Robust σ (pixels) of control points under which the best-scored assignment is accepted
#: without testing the others.
EXCELLENT_SIGMA_PX = 0.35
#: Final rms residual (pixels) above which the rings are declared inconsistent.
MAX_RMS_PX = 1.0


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


def _ring_tth(d_spacing: np.ndarray, wavelength: float) -> np.ndarray:
    x = wavelength / (2 * np.asarray(d_spacing, float))
    with np.errstate(invalid="ignore"):
        return np.where(x < 1, 2 * np.arcsin(np.minimum(x, 1)), np.nan)


def _values(geometry, wavelength) -> dict:
    v = {p: float(getattr(geometry, p)) for p in PARAM_NAMES}
    v["wavelength"] = float(wavelength)
    return v


def _find_ridges(image, valid):
    ridges = find_ridges(image, valid, factor=max(1, int(round(max(image.shape) / 1200))))
    if ridges.d1.size < 50:
        raise CalibrationError("no rings found: the image shows no ring-like ridges above noise")
    return ridges


def _ring_traces(ridges, shape, say):
    """First strategy: a common centre (voting, arc circles), then rings grouped by radius."""
    c1, c2, contrast = vote_center(ridges, shape)
    arcs = arc_center(ridges)
    if arcs is not None and sharpness(ridges, *arcs) > sharpness(ridges, c1, c2):
        c1, c2 = arcs
    c1, c2 = refine_center(ridges, c1, c2)
    sane = max(abs(c1), abs(c2)) < 10 * max(shape)
    traces = trace_rings(ridges, c1, c2) if sane else []
    traces = [t for t in traces if t.ellipse.a / t.ellipse.b < 1.8 and t.arc >= np.radians(15)
              and t.d1.size >= 20]
    if len(traces) < 2:
        # One long curve and no common centre: a single ring arc, not an empty image.
        curve = longest_curve(ridges, shape)
        if len(traces) == 1 or curve >= max(60, 0.1 * max(shape)):
            raise CalibrationError(_ONE_RING.format("one ring (an arc)"))
        raise CalibrationError("no rings found: no ridge group fits an ellipse")
    say(f"ring centre at row {c1:.1f}, column {c2:.1f} (vote contrast {contrast:.0f})")
    ref = max(traces, key=lambda t: t.weight * min(t.arc, np.pi))
    traces = [t for t in traces
              if np.hypot(t.ellipse.c1 - ref.ellipse.c1, t.ellipse.c2 - ref.ellipse.c2)
              <= 0.35 * t.ellipse.radius + 10]
    return traces, None, {"centre_vote_px": [c1, c2], "centre_vote_contrast": contrast,
                          "strategy": "rings around a common centre"}


def _arc_traces(ridges, detector, wavelength, say):
    """Second strategy, for strongly tilted detectors (rings are conic arcs with drifting
    centres): each connected ridge arc is a ring piece; the ring-family fit gives the
    geometry and every arc's 2θ; arcs of one 2θ are merged into rings."""
    groups, counts = np.unique(ridges.group[ridges.group > 0], return_counts=True)
    arcs = []
    for g in groups[counts >= 60]:
        idx = np.nonzero(ridges.group == g)[0]
        e = fit_circle(ridges.d1[idx], ridges.d2[idx])
        if e is not None and np.ptp(ridges.d1[idx]) + np.ptp(ridges.d2[idx]) > 60:
            arcs.append((idx, e))
    if len(arcs) < 3:
        raise CalibrationError("no rings found: fewer than three ring arcs")
    rng = np.random.default_rng(4)
    picks = [rng.choice(idx, min(40, idx.size), replace=False) for idx, _ in arcs]
    fam = fit_ring_family(detector, ridges.d1[np.concatenate(picks)],
                          ridges.d2[np.concatenate(picks)],
                          np.concatenate([np.full(p.size, i) for i, p in enumerate(picks)]),
                          np.array([[e.c1, e.c2] for _, e in arcs]),
                          np.array([e.radius for _, e in arcs]), wavelength, max_nfev=40)
    if fam is None or fam.cost > 3.0:
        raise CalibrationError("no convergence: the ring arcs fit no single detector geometry")
    # Arcs within 0.1° of 2θ are one ring (pieces split by gaps or the beamstop).
    order = np.argsort(fam.tth)
    ring_of = np.concatenate([[0], np.cumsum(np.diff(fam.tth[order]) > np.radians(0.1))])
    traces, tth = [], []
    for k in range(ring_of[-1] + 1):
        members = order[ring_of == k]
        idx = np.concatenate([arcs[m][0] for m in members])
        longest = max(members, key=lambda m: arcs[m][0].size)
        traces.append(RingTrace(ellipse=arcs[longest][1], d1=ridges.d1[idx], d2=ridges.d2[idx],
                                weight=float(ridges.strength[idx].sum()),
                                arc=float(sum(arcs[m][1].inliers.mean() for m in members))))
        tth.append(float(np.mean(fam.tth[members])))
    say(f"{len(arcs)} ring arcs fit one tilted geometry ({fam.cost:.2f} px): {len(traces)} rings")
    return traces, (fam, np.array(tth)), {"strategy": "ring arcs of a tilted detector",
                                           "arcs": len(arcs)}


def _start_from_traces(traces, family, info, prepared, detector, wavelength, d_spacing, say,
                       min_explained=0.0):
    """Assign traced rings to calibrant reflections and pick the hypothesis whose control
    points fit best; returns (start values, blind-search info). With `min_explained`, the
    chosen assignment must explain at least three rings and that fraction of the traced ones.
    """
    tth_all = _ring_tth(d_spacing, wavelength)
    usable = np.nonzero(np.isfinite(tth_all) & (tth_all < np.radians(80)))[0]
    pixel = float(np.sqrt(detector.pixel1 * detector.pixel2))
    if family is not None:
        # Tilt-free ring radii: tan 2θ of each ring at the family's distance.
        radii = family[0].values["dist"] * np.tan(family[1]) / pixel
    else:
        radii = np.array([t.ellipse.radius for t in traces])
    weights = np.array([t.weight * min(t.arc, np.pi) for t in traces])
    hypotheses = assign_rings(radii, weights, tth_all[usable], n_best=5) if usable.size else []
    if not hypotheses:
        raise CalibrationError(
            f"no consistent ring assignment: {len(traces)} ring(s) traced, but their radii "
            "match no distance for this calibrant and wavelength (check --calibrant and the energy)")
    fits = []
    for h in hypotheses:
        assigned = [(t, usable[k]) for t, k in zip(traces, h.ring_index) if k >= 0]
        fit = _fit_assigned(assigned, h.distance_px, detector, wavelength, d_spacing,
                            None if family is None else family[0])
        if fit is None:
            continue
        # Control points on the assigned rings judge the hypothesis far more sharply than the
        # ridge pixels do.
        try:
            ref, cp = _refine_loop(prepared, detector, d_spacing, fit[1].values,
                                   free=("dist", "poni1", "poni2", "rot1", "rot2"),
                                   rings=np.array([k for _, k in fit[2]]), n_rounds=2)
        except CalibrationError:
            continue
        sigma = 1.4826 * float(np.median(np.abs(ref.residual_px[ref.inliers])))
        fits.append((sigma, h, ref, fit[2]))
        if h is hypotheses[0] and sigma <= EXCELLENT_SIGMA_PX:
            break
    if not fits:
        raise CalibrationError("no convergence: no ring assignment leads to a geometry fit")
    # An alias (another phase with the calibrant's lattice type) fits worse than the truth;
    # among the hypotheses that fit about as well as the best, the one whose geometry finds
    # most of the calibrant's expected rings wins, then the assignment score.
    floor = min(f[0] for f in fits)
    close = [f for f in fits if f[0] <= 1.5 * floor + 0.05]
    if len(close) > 1:
        close = [(_coverage(prepared, detector, d_spacing, f[2].values), f) for f in close]
        cost, h, refinement, assigned = max(close, key=lambda c: (c[0], c[1][1].score))[1]
    else:
        cost, h, refinement, assigned = close[0]
    if min_explained and len(assigned) < max(3, min_explained * len(traces)):
        raise CalibrationError(
            f"no consistent ring assignment: the calibrant explains {len(assigned)} of "
            f"{len(traces)} rings traced (check --calibrant and the energy)")
    say(f"{len(traces)} ring(s) traced, {len(assigned)} assigned to calibrant reflections "
        + ", ".join(str(k + 1) for _, k in sorted(assigned, key=lambda a: a[1]))
        + f" ({len(fits)} of {len(hypotheses)} assignment hypotheses tested)")
    info = {**info,
            "rings_traced": len(traces), "rings_assigned": sorted(int(k) for _, k in assigned),
            "start_distance_m": refinement.values["dist"], "start_sigma_px": cost,
            "hypotheses": [{"distance_m": f[2].values["dist"], "score": f[1].score,
                            "sigma_px": f[0]} for f in fits]}
    return refinement.values, info


def _coverage(prepared, detector, d_spacing, values) -> int:
    """How many of the first eight calibrant rings expected on the detector carry control
    points after one extraction round on all rings from `values`."""
    try:
        ref, cp = _refine_loop(prepared, detector, d_spacing, values,
                               free=("dist", "poni1", "poni2", "rot1", "rot2"), n_rounds=1)
    except CalibrationError:
        return 0
    v = ref.values
    frame = frame_of(make_geometry(detector, 0.1, 0.0, 0.0), [v[p] for p in PARAM_NAMES])
    expected = _expected_rings(prepared.interpolable, frame, _ring_tth(d_spacing, v["wavelength"]))[:8]
    return int(np.isin(expected, cp.ring[ref.inliers]).sum())


def _fit_assigned(assigned, distance_px, detector, wavelength, d_spacing, family=None):
    """Fit the geometry to traced ring pixels of one assignment.

    Starts: the ring family's tilt and beam centre when there is one, a flat detector
    centred on the strongest ring, and, when that ring is visibly elliptical (> 2°), tilts
    along its major axis. Rings whose pixels sit off the best fit as a whole are dropped and
    the fit repeated. Returns (median |residual| px, Refinement, rings kept) or None. One
    partial ring: raises.
    """
    if len({k for _, k in assigned}) < 2 and all(t.arc < np.radians(300) for t, _ in assigned):
        raise CalibrationError(_ONE_RING.format("one partial ring"))
    pixel = float(np.sqrt(detector.pixel1 * detector.pixel2))
    dist = distance_px * pixel
    e = max(assigned, key=lambda a: a[0].weight * min(a[0].arc, np.pi))[0].ellipse
    tau = float(np.arccos(np.clip(e.b / e.a, 0, 1)))
    starts = [(0.0, 0.0, e.c1, e.c2)]
    if family is not None:
        v = family.values
        g = make_geometry(detector, v["dist"], v["poni1"], v["poni2"], v["rot1"], v["rot2"])
        starts.insert(0, (v["rot1"], v["rot2"], *frame_of(g).beam_center()))
    if tau > np.radians(2.0):
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


def _sector(chi: np.ndarray, n_sectors: int) -> np.ndarray:
    return np.clip(((chi + np.pi) / (2 * np.pi) * n_sectors).astype(int), 0, n_sectors - 1)


def _contaminated_sectors(cp: ControlPoints, res: np.ndarray, n_rings: int,
                          n_sectors: int) -> np.ndarray:
    """(ring, sector) cells whose median residual is an outlier among all cells.

    Returns a boolean array of shape (n_rings, n_sectors); cells with fewer than three
    points are never flagged.
    """
    n_r = n_rings
    cell = cp.ring * n_sectors + _sector(cp.chi, n_sectors)
    order = np.lexsort((res, cell))
    cells, start, counts = np.unique(cell[order], return_index=True, return_counts=True)
    sorted_res = res[order]
    med = 0.5 * (sorted_res[start + (counts - 1) // 2] + sorted_res[start + counts // 2])
    ok = counts >= 3
    out = np.zeros(n_r * n_sectors, bool)
    if ok.sum() < 5:
        return out.reshape(n_r, n_sectors)
    centre = np.median(med[ok])
    spread = 1.4826 * np.median(np.abs(med[ok] - centre))
    out[cells[ok & (np.abs(med - centre) > max(5 * spread, 0.3))]] = True
    return out.reshape(n_r, n_sectors)


def _detector_tth_max(frame, shape) -> float:
    g1, g2 = np.meshgrid(np.linspace(0, shape[0] - 1, 33), np.linspace(0, shape[1] - 1, 33),
                         indexing="ij")
    return float(np.nanmax(frame.tth_chi(g1, g2)[0]))


def _window_px(frame, tth, hw_max) -> np.ndarray:
    """Search half-width per ring: hw_max, but under half the gap to either neighbour."""
    # Radial pixel scale near the ring, χ-averaged.
    chi = np.linspace(-np.pi, np.pi, 16, endpoint=False)
    p1, p2 = frame.pixel_at(tth[:, None], chi[None, :])
    g = np.nanmedian(frame.tth_gradient(np.nan_to_num(p1), np.nan_to_num(p2)), axis=1)
    gap = np.full(tth.size, np.inf)
    dt = np.diff(tth)
    gap[:-1] = np.minimum(gap[:-1], dt)
    gap[1:] = np.minimum(gap[1:], dt)
    return np.minimum(hw_max, 0.45 * gap / g)


def _refine_loop(prepared, detector, d_spacing, values, free, rings=None, n_rounds=5,
                 say=lambda msg: None):
    """Rounds of control-point extraction and refinement.

    Every calibrant ring that crosses the detector is sampled (or only `rings`, indices into
    `d_spacing`); windows shrink with the fit's robust σ but stay ≥ 4 ring widths; rings
    whose points sit off the model as a whole, or scatter far more than the others, are
    dropped, and so are 10° sectors of a ring whose median residual stands out from all
    sectors (another phase's ring next to a calibrant ring, often only over some azimuths
    when that phase is textured or strained). Points are weighted by their ring's scatter.
    Returns (Refinement, points).
    """
    geometry = make_geometry(detector, 0.1, 0.0, 0.0)
    hw_max = 8.0
    width = np.zeros(d_spacing.size)
    dropped: set[int] = set()
    n_sectors = 36
    blocked = np.zeros((d_spacing.size, n_sectors), bool)
    ring_sigma: dict = {}
    rms = np.inf
    n_chi = int(np.clip(2 * np.pi * np.hypot(*prepared.data.shape) / 2 / 6, 360, 1440))
    for rnd in range(n_rounds):
        frame = frame_of(geometry, [values[p] for p in PARAM_NAMES])
        tth = _ring_tth(d_spacing, values["wavelength"])
        finite = np.isfinite(tth)
        tmax = _detector_tth_max(frame, prepared.data.shape)
        use = np.nonzero(finite & (tth <= tmax + 1e-3))[0]
        if rings is not None:
            use = np.intersect1d(use, rings)
        use = np.setdiff1d(use, list(dropped)).astype(int)
        if use.size == 0:
            raise CalibrationError("no calibrant ring falls on the detector for this geometry")
        hw = _window_px(frame, tth[finite], np.maximum(hw_max, 4 * width[finite]))[use]
        ok = hw >= 2.0
        use, hw = use[ok], hw[ok]
        cp = extract_control_points(prepared, frame, tth[use], hw, n_chi=n_chi)
        cp = replace(cp, ring=use[cp.ring])
        cp = cp.subset(~blocked[cp.ring, _sector(cp.chi, n_sectors)])
        if len(cp) < 10:
            raise CalibrationError("no rings found: too few control points on calibrant rings")
        n_rings = np.unique(cp.ring).size
        fr = free if n_rings >= 3 else tuple(p for p in free if p != "wavelength")
        wts = np.array([1 / ring_sigma.get(int(k), 1.0) for k in cp.ring])
        try:
            result = refine_geometry(geometry, cp.d1, cp.d2, d_spacing[cp.ring], values, fr,
                                     weights=wts, n_rounds=2)
        except ValueError as exc:
            raise CalibrationError(f"no convergence: {exc}") from exc
        ring_ids = np.unique(cp.ring)
        for k in ring_ids:
            width[k] = np.median(cp.width[cp.ring == k])
        res = result.residual_px
        inl = result.inliers
        new_rms = float(np.sqrt(np.mean(res[inl] ** 2)))
        say(f"round {rnd + 1}: {inl.sum()} control points on {n_rings} rings, rms {new_rms:.3f} px")
        sigma = 1.4826 * np.median(np.abs(res[inl])) + 1e-6
        spread = np.array([1.4826 * np.median(np.abs(res[cp.ring == k])) for k in ring_ids])
        bad = [int(k) for k, sp in zip(ring_ids, spread)
               if np.count_nonzero(inl & (cp.ring == k)) < 0.3 * np.count_nonzero(cp.ring == k)
               or abs(np.median(res[cp.ring == k])) > max(4 * sigma, 0.25)
               or sp > max(3 * np.median(spread), 0.3)]
        blocked |= _contaminated_sectors(cp, res, d_spacing.size, n_sectors)
        ring_sigma = dict(zip(ring_ids.tolist(), np.maximum(spread, 0.05)))
        values = result.values
        if bad and len(bad) < n_rings / 2:
            dropped.update(bad)
            continue
        hw_max = float(np.clip(4 * sigma + 1.5, 2.5, 8.0))
        if abs(rms - new_rms) < 0.02 * new_rms and rnd >= 1:
            break
        rms = new_rms
    return result, cp


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
    image = np.asarray(image, dtype=np.float64)
    valid = np.asarray(valid, bool) & np.isfinite(image)
    if not valid.any():
        raise CalibrationError("all pixels are masked or invalid")
    d_spacing = np.asarray(d_spacing, float)
    if max_rings:
        d_spacing = d_spacing[:max_rings]
    geometry = make_geometry(detector, 0.1, 0.0, 0.0, wavelength=wavelength)
    prepared = prepare_image(image, valid)
    free = tuple(p for p in ALL_PARAMS if p not in set(fix))
    warnings: list[str] = []
    solve = (prepared, valid, detector, d_spacing, free, say)
    if guess is None:
        ridges = _find_ridges(image, valid)
        try:
            traces, family, info = _ring_traces(ridges, image.shape, say)
            start, blind = _start_from_traces(traces, family, info, prepared, detector,
                                              wavelength, d_spacing, say)
            result, pts = _solve(start, *solve)
        except CalibrationError as first:
            # A strongly tilted detector defeats the common-centre strategy; its rings are
            # still arcs of one geometry.
            say(f"common-centre strategy failed ({first}); trying ring arcs of a tilted detector")
            try:
                traces, family, info = _arc_traces(ridges, detector, wavelength, say)
                # Every arc is taken for a ring: the calibrant must explain most of them.
                start, blind = _start_from_traces(traces, family, info, prepared, detector,
                                                  wavelength, d_spacing, say, min_explained=0.5)
                result, pts = _solve(start, *solve)
            except CalibrationError:
                raise first from None
    else:
        blind = {}
        result, pts = _solve(_values(guess, wavelength), *solve)
    timings["calibration"] = time.perf_counter() - t0
    values = result.values
    geometry = make_geometry(detector, *[values[p] for p in PARAM_NAMES],
                             wavelength=values["wavelength"])
    beam, beam_sigma = _beam_center(geometry, result)
    undetermined = _undetermined(result, beam_sigma)
    if undetermined:
        raise CalibrationError(
            "undetermined geometry: the rings found cannot fix the " + ", ".join(undetermined)
            + f" ({np.unique(pts.ring).size} ring(s)). Give a --guess and --fix these parameters")
    if "rot3" not in free:
        warnings.append("rot3 fixed: powder rings alone hardly separate it from rot1/rot2")
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
    result, pts = _refine_loop(prepared, detector, d_spacing, start, free, say=say)
    _check_consistency(prepared, valid, detector, d_spacing, result, pts, free)
    rms = float(np.sqrt(np.mean(result.residual_px[result.inliers] ** 2)))
    if rms > MAX_RMS_PX:
        v = result.values
        geometry = make_geometry(detector, *[v[p] for p in PARAM_NAMES], wavelength=v["wavelength"])
        raise CalibrationError(_inconsistency_message(geometry, pts, result, d_spacing, rms))
    return result, pts


def _expected_rings(valid, frame, tth) -> np.ndarray:
    """Indices of rings with at least 10 % of their circumference on valid pixels."""
    chi = np.linspace(-np.pi, np.pi, 360, endpoint=False)
    d1, d2 = frame.pixel_at(np.where(np.isfinite(tth), tth, 0)[:, None], chi[None, :])
    h, w = valid.shape
    on = np.isfinite(d1) & (d1 >= 0) & (d1 <= h - 1) & (d2 >= 0) & (d2 <= w - 1)
    i1 = np.clip(np.round(np.nan_to_num(d1)).astype(int), 0, h - 1)
    i2 = np.clip(np.round(np.nan_to_num(d2)).astype(int), 0, w - 1)
    frac = (on & valid[i1, i2]).mean(axis=1)
    return np.nonzero(np.isfinite(tth) & (frac >= 0.1))[0]


def _check_consistency(prepared, valid, detector, d_spacing, result, pts, free):
    """Refuse a fit that explains only part of what the calibrant predicts.

    Dropping rings protects against another phase's rings, but it can also let a wrong
    energy or a wrong calibrant fit a consistent subset. So: (1) if rings were dropped while
    the wavelength was fixed and some of them are among the first expected rings, a refit
    with the wavelength free must not explain clearly more of those; (2) at least half of the first calibrant rings expected on valid
    pixels must carry control points.
    """
    values = result.values
    frame = frame_of(make_geometry(detector, 0.1, 0.0, 0.0), [values[p] for p in PARAM_NAMES])
    tth = _ring_tth(d_spacing, values["wavelength"])
    expected = _expected_rings(valid, frame, tth)[:8]
    seen = set(np.unique(pts.ring[result.inliers]).tolist())
    found = [int(k) for k in expected if k in seen]
    # Rings lost wholesale (dropped, or all their sectors rejected) are the symptom.
    lost = set(expected.tolist()) - seen
    if lost and "wavelength" not in free and expected.size >= 3:
        try:
            alt, alt_pts = _refine_loop(prepared, detector, d_spacing, values,
                                           free + ("wavelength",), n_rounds=2)
        except CalibrationError:
            alt = None
        if alt is not None:
            alt_seen = set(np.unique(alt_pts.ring[alt.inliers]).tolist())
            alt_found = [k for k in expected if k in alt_seen]
            lam0, lam1 = values["wavelength"], alt.values["wavelength"]
            if len(alt_found) >= len(found) + 2 and abs(lam1 / lam0 - 1) > 0.005:
                from geocal_cli.core.units import energy_from_wavelength

                raise CalibrationError(
                    f"rings inconsistent with the calibrant at this wavelength: at "
                    f"{lam0 * 1e10:.5f} Å only {len(found)} of the first {expected.size} "
                    f"expected rings fit; with the wavelength free {len(alt_found)} fit at "
                    f"{lam1 * 1e10:.5f} Å ({energy_from_wavelength(lam1):.3f} keV, "
                    f"{100 * (lam1 / lam0 - 1):+.1f} %): check the energy")
    if expected.size >= 3 and len(found) <= MIN_RING_COVERAGE * expected.size:
        raise CalibrationError(
            f"no consistent ring assignment: only {len(found)} of the first {expected.size} "
            "calibrant rings expected on the detector carry control points (rings "
            + ", ".join(str(k + 1) for k in found) + "): check the calibrant and the energy; "
            "broad rings closer together than their width cannot be separated")


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


def _inconsistency_message(geometry, pts, result, d_spacing, rms) -> str:
    msg = (f"rings inconsistent with the calibrant at this wavelength: rms residual {rms:.2f} px "
           f"after refinement")
    if "wavelength" in result.free or np.unique(pts.ring).size < 3:
        return msg
    try:
        free = result.free + ("wavelength",)
        alt = refine_geometry(geometry, pts.d1, pts.d2, d_spacing[pts.ring], result.values, free)
    except ValueError:
        return msg
    alt_rms = float(np.sqrt(np.mean(alt.residual_px[alt.inliers] ** 2)))
    lam0, lam1 = result.values["wavelength"], alt.values["wavelength"]
    if alt_rms < rms / 2:
        from geocal_cli.core.units import energy_from_wavelength

        msg += (f"; with the wavelength free they fit at {lam1 * 1e10:.5f} Å "
                f"({energy_from_wavelength(lam1):.3f} keV, {100 * (lam1 / lam0 - 1):+.1f} %, "
                f"rms {alt_rms:.2f} px): check the energy")
    return msg


def _ring_residuals(pts, result, d_spacing, wavelength) -> list[RingResidual]:
    out = []
    inl = result.inliers
    for k in np.unique(pts.ring):
        sel = inl & (pts.ring == k)
        if not sel.any():
            continue
        tth = float(_ring_tth(d_spacing[k:k + 1], wavelength)[0])
        r_t = result.residual_tth[sel]
        strain = -(r_t / 2) / np.tan(tth / 2) * 1e6
        out.append(RingResidual(index=int(k), d_spacing=float(d_spacing[k]), tth=tth,
                                count=int(sel.sum()), rms_tth=float(np.sqrt(np.mean(r_t**2))),
                                rms_px=float(np.sqrt(np.mean(result.residual_px[sel] ** 2))),
                                rms_microstrain=float(np.sqrt(np.mean(strain**2))),
                                chi=pts.chi[sel], residual_px=result.residual_px[sel]))
    return out
