"""Rounds of control-point extraction and refinement on the rings of a calibrant.

Each round samples every calibrant ring that crosses the detector (`controlpoints`), refines
the geometry on the points (`refine`), and narrows what the next round accepts: search
windows shrink with the fit's robust σ (never below four ring widths), rings whose points
sit off the model as a whole or scatter far more than the others are dropped, and so are
10° sectors of a ring whose median residual stands out among all sectors (another phase's
ring beside a calibrant ring, often only over some azimuths when it is textured or
strained). Points are weighted by their ring's scatter, widened by how far the ring's median
residual stands from the other rings' medians (a Huber weight per ring): a calibrant ring
that another phase's ring blends into keeps a biased median, and as the windows shrank its
scatter narrowed until it anchored the fit (on the MAR345 CeO2 + steel image, rounds started
at GSAS-II's geometry drifted from 0.05 to 0.25 px away; with the ring weight they end
0.08 px away). A ring's scatter is measured only on `MEASURED_POINTS` points or more: one
point has none, and its floor weight then outweighed every other ring.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from geocal_cli.core.rings.controlpoints import ControlPoints, extract_control_points
from geocal_cli.core.geometry.frame import PARAM_NAMES, frame_of, make_geometry, mean_pixel
from geocal_cli.core.rings.refine import MIN_DIST_PX, refine_geometry
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.errors import CalibrationError

#: A ring whose window a neighbour narrowed below what the round asked, and below this
#: half-width (pixels), is crowded: its window holds too few samples beside the peak for
#: their spread to measure the noise (`extract_control_points`).
CROWDED_HW_PX = 3.0


#: Points on a ring below which its scatter is not measured (its points keep weight 1):
#: the spread of one or two points is no scatter (one point's zero spread, floored, gave
#: its ring twenty times every other ring's weight).
MEASURED_POINTS = 3
#: A ring's median residual this many robust σ of the rings' medians from their median
#: starts to widen its scatter (Huber's constant on the ring medians).
RING_HUBER = 2.0
#: Floor of a ring's scatter, pixels.
SCATTER_FLOOR_PX = 0.05
#: Floor of the robust spread of the rings' medians, pixels: offsets within twice this
#: (`RING_HUBER`) are what a real detector's non-flatness and a lens's ellipticity leave on
#: clean rings (an electron image's rings spread by 0.1 px), not another ring's pull.
MEDIANS_FLOOR_PX = 0.1


#: A round whose rms falls below this fraction of the round before's is still converging
#: (a tilted fit went 0.63 → 0.12 px in its fifth round and stopped 0.15 px from the truth):
#: the final fit may go on (`refine_rounds`' extra rounds).
CONVERGING = 0.7


#: A fit whose rms stays above this (pixels) through `STALLED_ROUNDS` rounds without falling
#: below `CONVERGING` times its best before them has stalled far from any answer: its rounds
#: end there, and the caller's checks judge it as they would have after the full budget.
STALLED_RMS_PX = 2.0
STALLED_ROUNDS = 2


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


def window_px(frame, tth, hw_max, satellite=None, width_px=None) -> np.ndarray:
    """Search half-width per ring: hw_max, but under half the gap to either neighbour and,
    given each ring's `satellite` (2θ of its Kα2 line), to the satellite where it stands
    resolved, more than three measured ring widths (`width_px`, 0 where unknown) away."""
    g = _radial_scale(frame, tth)
    gap = _neighbour_gap(tth)
    if satellite is not None:
        sep = np.abs(np.asarray(satellite, float) - tth)
        width_px = np.asarray(width_px, float)
        # A width not measured yet (0) resolves nothing.
        resolved = (width_px > 0) & (np.nan_to_num(sep / g, nan=0.0) > 3 * width_px)
        gap = np.where(resolved, np.minimum(gap, sep), gap)
    return np.minimum(hw_max, 0.45 * gap / g)


def ring_gap_px(frame, tth) -> np.ndarray:
    """Each ring's distance to its nearer neighbour, pixels along the radius (χ-averaged).

    Parameters
    ----------
    frame : DetectorFrame
    tth : ndarray, shape (m,)
        The rings' 2θ, radians, increasing.

    Returns
    -------
    ndarray, shape (m,)
        Infinite for a single ring.
    """
    return _neighbour_gap(tth) / _radial_scale(frame, tth)


def _neighbour_gap(tth: np.ndarray) -> np.ndarray:
    """Each ring's 2θ gap to its nearer neighbour, radians (infinite for a single ring)."""
    gap = np.full(tth.size, np.inf)
    dt = np.diff(tth)
    gap[:-1] = np.minimum(gap[:-1], dt)
    gap[1:] = np.minimum(gap[1:], dt)
    return gap


def _radial_scale(frame, tth: np.ndarray) -> np.ndarray:
    """|∇2θ| near each ring, radians per pixel, the median over 16 azimuths."""
    chi = np.linspace(-np.pi, np.pi, 16, endpoint=False)
    p1, p2 = frame.pixel_at(tth[:, None], chi[None, :])
    return np.nanmedian(frame.tth_gradient(np.nan_to_num(p1), np.nan_to_num(p2)), axis=1)


@dataclass
class RingState:
    """What the rounds on one image have learnt about its rings: the search half-width
    limit, each ring's measured width and scatter, the rings dropped and the (ring, 10°
    sector) cells blocked.

    Attributes
    ----------
    hw_max : float
        Search half-width limit, pixels.
    width : ndarray, shape (m,)
        Each calibrant ring's median profile width (0 while unmeasured), pixels.
    ring_sigma : dict[int, float]
        Each measured ring's robust residual scatter, widened by its median's offset from
        the other rings' (module docstring), pixels.
    dropped : set of int
    blocked : ndarray of bool, shape (m, n_sectors)
    n_chi : int
        Azimuths sampled per ring.
    """

    hw_max: float
    width: np.ndarray
    ring_sigma: dict
    dropped: set
    blocked: np.ndarray
    n_chi: int

    @classmethod
    def start(cls, n_rings: int, shape: tuple[int, int], n_sectors: int = 36,
              n_chi: int | None = None) -> "RingState":
        """The state before the first round, for `n_rings` calibrant rings on an image of
        this shape, sampled at `n_chi` azimuths (default: `azimuths`)."""
        return cls(8.0, np.zeros(n_rings), {}, set(), np.zeros((n_rings, n_sectors), bool),
                   n_chi or azimuths(shape))

    def weights(self, cp: ControlPoints) -> np.ndarray:
        """Inverse scatter of each point's ring (1 for a ring not measured yet), px⁻¹."""
        inverse = np.ones(self.width.size)
        if self.ring_sigma:
            inverse[list(self.ring_sigma)] = 1 / np.array(list(self.ring_sigma.values()))
        return inverse[cp.ring]

    def judge(self, cp: ControlPoints, res: np.ndarray, inl: np.ndarray) -> tuple[list[int], float]:
        """Learn from a round's residuals; the rings it found wrong and the robust σ (px).

        A ring is wrong when under 30 % of its points are inliers, when its median residual
        is beyond 4σ (and 0.25 px), or when it scatters three times more than the median
        ring (and over 0.3 px). Sectors whose median stands out are blocked from then on.
        Each ring with `MEASURED_POINTS` points gets its scatter (at least
        `SCATTER_FLOOR_PX`), times max(1, |m − M| / (`RING_HUBER` s)) for its median
        residual m, the rings' median M and their robust spread s (at least
        `MEDIANS_FLOOR_PX`): Huber's weight on the ring medians (Huber, *Ann. Math.
        Statist.* 35, 73 (1964), doi:10.1214/aoms/1177703732).
        """
        ring_ids = np.unique(cp.ring)
        for k in ring_ids:
            self.width[k] = np.median(cp.width[cp.ring == k])
        sigma = 1.4826 * np.median(np.abs(res[inl])) + 1e-6
        spread = np.array([1.4826 * np.median(np.abs(res[cp.ring == k])) for k in ring_ids])
        median = np.array([np.median(res[cp.ring == k]) for k in ring_ids])
        count = np.array([np.count_nonzero(cp.ring == k) for k in ring_ids])
        bad = [int(k) for k, sp, m, n in zip(ring_ids, spread, median, count)
               if np.count_nonzero(inl & (cp.ring == k)) < 0.3 * n
               or abs(m) > max(4 * sigma, 0.25)
               or sp > max(3 * np.median(spread), 0.3)]
        self.blocked |= _contaminated_sectors(cp, res, self.width.size, self.blocked.shape[1])
        centre = np.median(median)
        s = max(1.4826 * np.median(np.abs(median - centre)), MEDIANS_FLOOR_PX)
        widen = np.maximum(1.0, np.abs(median - centre) / (RING_HUBER * s))
        measured = count >= MEASURED_POINTS
        self.ring_sigma = dict(zip(ring_ids[measured].tolist(),
                                   (np.maximum(spread, SCATTER_FLOOR_PX) * widen)[measured]))
        return bad, float(sigma)


#: Azimuths per ring that screen starts (`start.start_from_traces`): a robust σ and the rings
#: found need hundreds of points, not the final fit's thousands.
SCREEN_AZIMUTHS = 360


def azimuths(shape: tuple[int, int]) -> int:
    """Azimuths the rounds sample per ring on an image of this shape: points about 6 px
    apart at half the image diagonal, 360 to 1440."""
    return int(np.clip(2 * np.pi * np.hypot(*shape) / 2 / 6, 360, 1440))


def sample_rings(prepared, geometry, d_spacing: np.ndarray, values: dict, state: RingState,
                 rings: np.ndarray | None = None) -> ControlPoints:
    """Control points on the calibrant rings an image shows for a geometry: every ring on the
    detector (or those of `rings`) not dropped, in windows narrowed by `window_px`, off
    the blocked sectors.

    Parameters
    ----------
    prepared : PreparedImage
    geometry : pyFAI.geometry.Geometry
        Supplies the detector.
    d_spacing : ndarray, shape (m,)
        Metres, decreasing.
    values : dict
        The seven parameters (`refine.ALL_PARAMS`).
    state : RingState
    rings : ndarray of int, optional

    Returns
    -------
    ControlPoints
        `ring` indexes `d_spacing`.

    Raises
    ------
    CalibrationError
        No ring on the detector, rings too close to sample apart, or fewer than ten points.
    """
    frame = frame_of(geometry, [values[p] for p in PARAM_NAMES])
    tth = ring_tth(d_spacing, values["wavelength"])
    finite = np.isfinite(tth)
    tmin, tmax = frame.tth_range(prepared.data.shape)
    use = np.nonzero(finite & (tth <= tmax + 1e-3))[0]
    if rings is not None:
        use = np.intersect1d(use, rings)
    use = np.setdiff1d(use, list(state.dropped)).astype(int)
    if use.size == 0:
        raise CalibrationError("no calibrant ring falls on the detector for this geometry")
    satellite = None if prepared.doublet is None else prepared.doublet.tth2(tth[finite])
    wanted = np.maximum(state.hw_max, 4 * state.width[finite])
    hw = window_px(frame, tth[finite], wanted, satellite, state.width[finite])[use]
    ok = hw >= 2.0
    use, hw, wanted = use[ok], hw[ok], wanted[use][ok]
    if use.size == 0:
        raise CalibrationError("the calibrant rings on the detector lie too close together "
                               "for this geometry to sample them apart")
    on = finite & (tth >= tmin - 1e-3) & (tth <= tmax + 1e-3)
    cp = extract_control_points(prepared, frame, tth[use], hw, n_chi=state.n_chi,
                                crowded=(hw < CROWDED_HW_PX) & (hw < wanted), neighbours=tth[on])
    cp = replace(cp, ring=use[cp.ring])
    cp = cp.subset(~state.blocked[cp.ring, _sector(cp.chi, state.blocked.shape[1])])
    if len(cp) < 10:
        raise CalibrationError("no rings found: too few control points on calibrant rings")
    return cp


def refine_rounds(prepared, detector, d_spacing: np.ndarray, values: dict, free: tuple,
                  rings: np.ndarray | None = None, n_rounds: int = 5, extra_rounds: int = 0,
                  say=lambda msg: None, n_chi: int | None = None):
    """Rounds of control-point extraction and refinement (see the module docstring).

    Parameters
    ----------
    prepared : PreparedImage
    detector : pyFAI.detectors.Detector
    d_spacing : ndarray, shape (m,)
        Calibrant d-spacings, metres, decreasing.
    values : dict
        Starting values of the seven parameters (`refine.ALL_PARAMS`), m and rad.
    free : tuple of str
        Parameters refined (the wavelength only once three rings carry points).
    rings : ndarray of int, optional
        Sample only these calibrant rings.
    n_rounds : int
        At most this many rounds; they stop once the rms settles (within 2 %), or stalls
        far from any answer (`_stalled`).
    extra_rounds : int
        Rounds allowed past `n_rounds`, each only after one that dropped rings or cut the
        rms below `CONVERGING` times the round before, so that an answer does not rest on
        rings its last round found wrong, nor on a fit still on its way (for a final fit; a
        screening of starts keeps its fixed budget, where further drops would let a wrong
        start shrink to the few rings it fits).
    say : callable(str)
    n_chi : int, optional
        Azimuths sampled per ring (default: `azimuths`, up to 1440 on a large image); a
        screening of starts needs fewer (`SCREEN_AZIMUTHS`).

    Returns
    -------
    Refinement
    ControlPoints
        The last round's points (`Refinement.inliers` selects those kept).

    Raises
    ------
    CalibrationError
        No ring on the detector, fewer than ten control points, no convergence, or an end
        with the detector plane within `refine.MIN_DIST_PX` pixels of the sample or facing
        away from it.
    """
    geometry = make_geometry(detector, 0.1, 0.0, 0.0)
    state = RingState.start(d_spacing.size, prepared.data.shape, n_chi=n_chi)
    rms = np.inf
    history: list[float] = []
    for rnd in range(n_rounds + extra_rounds):
        cp = sample_rings(prepared, geometry, d_spacing, values, state, rings)
        n_rings = np.unique(cp.ring).size
        fr = free if n_rings >= 3 else tuple(p for p in free if p != "wavelength")
        try:
            result = refine_geometry(geometry, cp.d1, cp.d2, d_spacing[cp.ring], values, fr,
                                     weights=state.weights(cp), n_rounds=2)
        except ValueError as exc:
            raise CalibrationError(f"no convergence: {exc}") from exc
        res = result.residual_px
        inl = result.inliers
        new_rms = float(np.sqrt(np.mean(res[inl] ** 2)))
        say(f"round {rnd + 1}: {inl.sum()} control points on {n_rings} rings, rms {new_rms:.3f} px")
        history.append(new_rms)
        bad, sigma = state.judge(cp, res, inl)
        values = result.values
        if _stalled(history):
            # (A hydrocerussite start 2000 mm off: 3.2 px, then 5.3, 14.2, 6.7, 5.5, 4.8,
            # 4.7, 5.2 px over eight rounds, each dropping rings.)
            say(f"the rounds stalled at rms {new_rms:.3f} px")
            break
        if bad and len(bad) < n_rings / 2 and rnd + 1 < n_rounds + extra_rounds:
            state.dropped.update(bad)
            continue
        converging = new_rms < CONVERGING * rms
        if rnd + 1 >= n_rounds and not (converging and rnd + 1 < n_rounds + extra_rounds):
            break
        state.hw_max = float(np.clip(4 * sigma + 1.5, 2.5, 8.0))
        if abs(rms - new_rms) < 0.02 * new_rms and rnd >= 1:
            break
        rms = new_rms
    if values["dist"] < MIN_DIST_PX * mean_pixel(detector):
        # A wild start's rounds can end with the detector plane passing beside the sample or
        # facing away from it, its rings so oblique that a few points per ring fit anything
        # (LaB6 tilted 24°, from a tilted start: the plane 2.9 mm behind the sample, tilted
        # 71°, 64 points on 22 rings at 0.3 px).
        raise CalibrationError(
            f"no convergence: the fit put the detector plane {values['dist'] * 1e3:.3f} mm "
            f"from the sample (pyFAI's signed distance), nearer than {MIN_DIST_PX:.0f} pixels "
            "or facing away from it")
    return result, cp


def _stalled(history: list[float]) -> bool:
    """Whether the rounds' rms (pixels, one per round so far) has stalled far from any
    answer (`STALLED_RMS_PX`, `STALLED_ROUNDS`)."""
    if len(history) <= STALLED_ROUNDS:
        return False
    recent, before = history[-STALLED_ROUNDS:], min(history[:-STALLED_ROUNDS])
    return min(recent) > max(STALLED_RMS_PX, CONVERGING * before)


def expected_rings(valid, frame, tth, width_px: float = 0.0) -> np.ndarray:
    """Indices of rings with at least 10 % of their circumference on valid pixels and, given
    the rings' rms width in pixels, at least 5 widths from either neighbour (closer rings
    blend into one profile that no control point separates)."""
    h, w = valid.shape
    lo, hi = frame.tth_range((h, w))
    # Only rings within the detector's 2θ range are traced round (a high-energy calibrant
    # has hundreds beyond it).
    near = np.nonzero(np.isfinite(tth) & (tth >= lo) & (tth <= hi))[0]
    chi = np.linspace(-np.pi, np.pi, 360, endpoint=False)
    d1, d2 = frame.pixel_at(tth[near][:, None], chi[None, :])
    on = np.isfinite(d1) & (d1 >= 0) & (d1 <= h - 1) & (d2 >= 0) & (d2 <= w - 1)
    i1 = np.clip(np.round(np.nan_to_num(d1)).astype(int), 0, h - 1)
    i2 = np.clip(np.round(np.nan_to_num(d2)).astype(int), 0, w - 1)
    ok = np.zeros(tth.size, bool)
    ok[near] = (on & valid[i1, i2]).mean(axis=1) >= 0.1
    if width_px > 0:
        finite = np.nonzero(np.isfinite(tth))[0]
        resolvable = np.zeros(tth.size, bool)
        resolvable[finite] = window_px(frame, tth[finite], np.inf) >= 2.5 * width_px
        ok &= resolvable
    return np.nonzero(ok)[0]
