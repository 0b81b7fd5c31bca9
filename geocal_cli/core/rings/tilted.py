"""Strongly tilted detectors with dense rings: starting geometries from the ridge pixels' 2θ.

Around one centre, the rings of a detector tilted by 20–35° are ellipses whose centres drift
by more than the rings' spacing: grouped by radius they merge, and grouped by connected arcs
(`family`) touching rings become one. In the frame of the right geometry every ring is one
value of 2θ, whatever its shape. So the geometry is searched for where the histogram of the
ridge pixels' tilt-free radii D·tan 2θ is sharpest (Σh² / (Σh)², as `blind.refine_center`
does for a centre alone), by Nelder–Mead over beam centre, distance and the two tilts, from
the tilt the reference ellipse shows (both ways along its major axis) and a ladder of
distances. The radii are rescaled to the ridge pixels' own distances from the beam centre,
so that no geometry wins by shrinking all rings into one bin. Each sharp candidate then
re-groups the ridge pixels by its 2θ into ring traces for the usual assignment. When no
reference's starts lead to a geometry that holds, the last resort searches the whole range
of beam centres, distances and tilts by differential evolution for the sharpest one.
"""

from __future__ import annotations

from itertools import zip_longest

import numpy as np

from geocal_cli.core.geometry.frame import (beam_frame, frame_of, hypot, make_geometry,
                                            mean_pixel, poni_for_beam_center)
from geocal_cli.core.rings.blind import RingTrace, _radius_groups, arc_coverage
from geocal_cli.core.rings.ellipse import Ellipse, fit_circle, fit_ellipse
from geocal_cli.core.rings.family import RingFamily
from geocal_cli.core.rings import wholerange
from geocal_cli.core.rings.ridges import RidgePixels
from geocal_cli.core.rings.wholerange import MAX_TILT, at_wall

#: Axis ratio b/a of the reference ellipse below which the rings count as visibly tilted
#: (cos 8°): flatter rings are the common-centre strategy's.
TILTED_RATIO = float(np.cos(np.radians(8.0)))
#: Distance starts, in units of the reference ring's radius (its 2θ from 45° to 4°).
DISTANCE_STARTS = (1.0, 2.5, 6.0, 15.0)
#: Nelder–Mead runs at most per search of the best starts, each restarted from the last
#: one's end, and the relative gain in sharpness below which the restarts stop.
RESTARTS = 8
RESTART_GAIN = 1.01
#: Ridge pixels the sharpness is measured on.
SAMPLE = 4000
#: Histogram bins (pixels of tilt-free radius) of the coarse searches, which find the rings'
#: basin, and of the fine one, which ranks what they found.
COARSE_BIN_PX = 4.0
FINE_BIN_PX = 1.0
#: Smallest distance searched, in units of the reference ring's radius: the reference ring
#: below 84° of 2θ. Nearer, all ridge pixels crowd beyond 80° into a few sharp bins (a
#: detector 1 px from the sample "fitted" a Pilatus corner pattern at 60 mm).
MIN_DISTANCE = 0.1
#: Ridge arcs (connected ridge pixels) fitted for `arc_reference`: at least this many pixels,
#: and spanning at least this fraction of the turn around their ellipse's centre (in 10°
#: sectors), since short arcs of a tilted ring fit flat ellipses of any shape.
ARC_PIXELS = 60
ARC_TURN = 0.25
#: Joining ridge arcs into rings (`_joined_arcs`): reach and rms in units of the arcs'
#: median circle rms, the share of a group's pixels its ellipse keeps, and the pixels each
#: arc is measured by (at most `ARC_PIXELS`).
JOIN_REACH = 4.0
JOIN_RMS = 1.5
JOIN_INLIERS = 0.9
JOIN_PICKS = 60
#: Largest 2θ of the ridge pixels grouped into ring traces (radians), as the audit's rings.
MAX_TTH = np.radians(89.0)


def is_tilted(ref: Ellipse) -> bool:
    """Whether a ring ellipse is elliptical enough (tilt ≥ 8°) for the tilted search."""
    return ref.b / ref.a < TILTED_RATIO


def arc_references(ridges: RidgePixels, n: int = 3) -> list[Ellipse]:
    """The best-determined ellipses among the ridge arcs, references for
    `sharpest_geometries` where the common-centre traces give none.

    Around a beam near a corner the common-centre strategy groups a tilted detector's rings
    around a far centre, fitting circles to them; a ring's ridge arcs still show its
    ellipse's axis ratio and major axis. A ring cut by module gaps into pieces shows them
    only when its pieces are fitted together: one piece of a ring 1500 px across fits flat
    ellipses of any shape (axis ratios 3 to 6 where the truth is 1.17), its joined pieces the
    right one (`_joined_arcs`). Which ring shows them best is not certain: the longest is
    often an outer ring, whose ellipse is flattened by its cone angle as much as by the tilt
    (e = sin τ / cos 2θ), or a hyperbola's branch; joined rings are longer still (Si at 60 mm
    on a Pilatus 1M tilted by 33°: its joined outer rings show 48–64°, a single inner arc
    33°). So several are returned, of both kinds, each a set of starts for the search.

    Parameters
    ----------
    ridges : RidgePixels
    n : int
        Ellipses returned at most.

    Returns
    -------
    list of Ellipse
        The ellipses of joined arcs, by pixels per (1 + rms) px, alternating with those of
        single arcs with `ARC_PIXELS` pixels spanning `ARC_TURN` of their ellipse, by pixels
        per (1 + rms) px times their span; a joined ring first. Empty when no arc qualifies.
    """
    arcs = ridges.arcs(ARC_PIXELS)
    joined, single = [], []
    for members, e in _joined_arcs(ridges, arcs):
        idx = np.concatenate([arcs[m] for m in members])
        if e is not None:
            joined.append((idx.size / (1.0 + e.rms), e))
            continue
        e = fit_ellipse(ridges.d1[idx], ridges.d2[idx])
        if e is None:
            continue
        sector = np.arctan2(ridges.d1[idx] - e.c1, ridges.d2[idx] - e.c2) // np.radians(10.0)
        span = np.unique(sector).size / 36.0
        if span >= ARC_TURN:
            single.append((span * idx.size / (1.0 + e.rms), e))
    ranked = [[e for _, e in sorted(found, key=lambda f: -f[0])] for found in (joined, single)]
    return [e for pair in zip_longest(*ranked) for e in pair if e is not None][:n]


def _joined_arcs(ridges: RidgePixels,
                 arcs: list[np.ndarray]) -> list[tuple[list[int], Ellipse | None]]:
    """The ridge arcs grouped into rings: from the longest arc not yet grouped, the nearest
    arc to its curve joins while the ellipse of the group's pixels still fits them.

    The curve is the arc's circle, then the group's ellipse; an arc is near when the median
    distance of its pixels from the curve is below `JOIN_REACH` noise units, and it joins
    when the group's ellipse with it has an rms within `JOIN_RMS` noise units and keeps
    `JOIN_INLIERS` of its pixels; an arc refused is tried again once another has joined
    (two pieces of a ring 1240 px across fitted an ellipse 3.9 px rms off them with an axis
    ratio of 3.3, three of them one within 2.5 px). A group stands when the ellipse of all
    its pixels does the same; else its arcs are returned alone. The noise unit is the arcs'
    median circle rms (at least 1 px): most arcs are one ring's pieces, short enough for a
    circle. An arc whose own circle misses that (touching rings, a spotty blur) starts no
    group. Each arc is measured by `JOIN_PICKS` of its pixels (seeded), so that a step costs
    one vectorised distance.

    Parameters
    ----------
    ridges : RidgePixels
    arcs : list of ndarray of int
        Ridge pixel indices of each arc (`RidgePixels.arcs`), each of at least `JOIN_PICKS`.

    Returns
    -------
    list of (list of int, Ellipse or None)
        Indices into `arcs` of each group, with the ellipse of all its pixels; one arc alone,
        with None, where none joined.
    """
    circles = [fit_circle(ridges.d1[idx], ridges.d2[idx]) for idx in arcs]
    rms = [c.rms for c in circles if c is not None]
    if not rms:
        return [([k], None) for k, _ in enumerate(arcs)]
    noise = max(float(np.median(rms)), 1.0)

    def fits(sel):
        e = fit_ellipse(ridges.d1[sel], ridges.d2[sel])
        return e if (e is not None and e.rms <= JOIN_RMS * noise
                     and e.inliers.mean() >= JOIN_INLIERS) else None

    rng = np.random.default_rng(6)
    picks = np.stack([rng.choice(idx, JOIN_PICKS, replace=False) for idx in arcs])
    q1, q2 = ridges.d1[picks], ridges.d2[picks]
    free = np.ones(len(arcs), bool)
    groups = []
    for seed in np.argsort([-idx.size for idx in arcs], kind="stable").tolist():
        if not free[seed]:
            continue
        free[seed] = False
        members, curve = [seed], circles[seed]
        if curve is None or curve.rms > JOIN_RMS * noise:
            groups.append((members, None))
            continue
        open_ = free.copy()
        while True:
            reach = np.where(open_, np.median(np.abs(curve.distance(q1, q2)), axis=1), np.inf)
            j = int(np.argmin(reach))
            if not reach[j] < JOIN_REACH * noise:
                break
            open_[j] = False
            e = fits(picks[members + [j]].ravel())
            if e is not None:
                members.append(j)
                free[j] = False
                curve = e
                # An arc refused by a shorter group's ellipse may fit the longer one's.
                open_ = free.copy()
        whole = fits(np.concatenate([arcs[m] for m in members])) if len(members) > 1 else None
        if len(members) > 1 and whole is None:
            groups.extend(([m], None) for m in members)
        else:
            groups.append((members, whole))
    return groups


def sharpest_geometries(ridges: RidgePixels, detector, refs: list[Ellipse], wavelength: float,
                        n_best: int = 3, cone: bool = False,
                        shape: tuple[int, int] | None = None) -> list[dict]:
    """Geometries under which the ridge pixels' 2θ fall into the sharpest rings.

    Parameters
    ----------
    ridges : RidgePixels
    detector : pyFAI.detectors.Detector
    refs : list of Ellipse
        Ring ellipses (the common-centre strategy's best ring, the best ridge arcs, or a
        circle for an untilted start): each one's axis ratio gives a tilt, its major axis
        the tilt plane, its centre the start of the beam centre.
    wavelength : float
        Metres (carried into the values).
    n_best : int
        Candidates returned, sharpest first.
    cone : bool
        Read each start's tilt from its reference as a ring at the 2θ of its distance start
        (`_tilt_rotations`), not as one at 2θ = 0.
    shape : (int, int), optional
        The image's shape: given, the sharpest geometry over the whole range of beam
        centres, distances and tilts (`_global_starts`) starts a search too (the blind
        search gives it with no `refs`).

    Returns
    -------
    list of dict
        dist, poni1, poni2, rot1, rot2, rot3 (0), wavelength: pyFAI values, metres and
        radians.
    """
    from scipy.optimize import minimize

    sel = np.arange(ridges.d1.size)
    if sel.size > SAMPLE:
        sel = np.random.default_rng(5).choice(sel, SAMPLE, replace=False)
    p1, p2 = ridges.d1[sel], ridges.d2[sel]
    pixel = mean_pixel(detector)
    flat = make_geometry(detector, 0.1, 0.0, 0.0)

    def search(x0, min_dist, step, width, xatol, fatol, restarts=1):
        # On the rugged histogram cost a simplex collapses short of the optimum: the best
        # runs restart from their end with a fresh simplex while that gains.
        best = None
        for _ in range(restarts):
            res = minimize(_cost, x0, args=(flat, pixel, p1, p2, width, min_dist),
                           method="Nelder-Mead",
                           options={"initial_simplex": np.vstack([x0, x0 + np.diag(step)]),
                                    "maxiter": 500, "xatol": xatol, "fatol": fatol})
            if best is not None and res.fun > RESTART_GAIN * best.fun:
                return res if res.fun < best.fun else best
            best, x0 = res, res.x
        return best

    # Coarse bins from every reference's starts, restarted for the best, then fine
    # bins from the best of those.
    runs = [] if shape is None else _global_starts(flat, pixel, p1, p2, shape)
    for ref in refs:
        min_dist = MIN_DISTANCE * ref.radius
        for k in DISTANCE_STARTS:
            tth = np.arctan(1.0 / k) if cone else 0.0
            for rot1, rot2 in _tilt_rotations(flat, pixel, ref, tth):
                x0 = np.array([ref.c1, ref.c2, k * ref.radius, rot1, rot2])
                runs.append((search(x0, min_dist, np.array([10.0, 10.0, 0.3 * x0[2], 0.05,
                                                             0.05]), COARSE_BIN_PX, 0.01, 1e-10),
                             min_dist))
    # A run that ends against a wall found the crowding there, not rings.
    runs = sorted([(r, m) for r, m in runs if not at_wall(r.x, m)], key=lambda rm: rm[0].fun)
    runs = [(search(r.x, m, np.array([10.0, 10.0, 0.1 * r.x[2], 0.03, 0.03]), COARSE_BIN_PX,
                    0.01, 1e-10, RESTARTS), m) for r, m in runs[:2 * n_best]]
    refined = [(search(r.x, m, np.array([2.0, 2.0, 0.05 * r.x[2], 0.01, 0.01]), FINE_BIN_PX,
                       0.001, 1e-12, RESTARTS), m)
               for r, m in sorted(runs, key=lambda rm: rm[0].fun)[:n_best]]
    out, kept = [], []
    # The fine bins rank: a coarse optimum may be a wrong distance whose rings blur together.
    for res, min_dist in sorted(refined, key=lambda rm: rm[0].fun):
        b1, b2, dist_px, rot1, rot2 = res.x
        if res.fun >= 0 or at_wall(res.x, min_dist):
            continue
        # Runs from different starts often end in one optimum: one candidate each.
        if any(np.all(np.abs(res.x - k) <= [2.0, 2.0, 0.01 * dist_px, 0.005, 0.005])
               for k in kept):
            continue
        kept.append(res.x)
        g = make_geometry(detector, dist_px * pixel, 0.0, 0.0, rot1, rot2)
        poni1, poni2 = poni_for_beam_center(g, b1, b2)
        out.append({"dist": dist_px * pixel, "poni1": poni1, "poni2": poni2, "rot1": rot1,
                    "rot2": rot2, "rot3": 0.0, "wavelength": wavelength})
    return out


#: Ridge pixels the global search (`_global_starts`) measures the sharpness on: its 13 000
#: measures take 1.5 s, spent only where every other start has failed.
GLOBAL_SAMPLE = 1500


def _global_starts(flat, pixel: float, p1: np.ndarray, p2: np.ndarray, shape) -> list:
    """The sharpest geometry over the whole range (`wholerange.search`), on the coarse
    sharpness (`COARSE_BIN_PX`) of `GLOBAL_SAMPLE` ridge pixels: a start for the searches
    that the reference ellipses' starts could not give.

    Returns
    -------
    list of (OptimizeResult, float)
        One run in `sharpest_geometries`' terms (x: beam d1, d2 and distance in pixels, rot1,
        rot2; its smallest distance), empty when it ends at a wall.
    """
    from scipy.optimize import OptimizeResult

    pick = np.random.default_rng(7).permutation(p1.size)[:GLOBAL_SAMPLE]
    q1, q2 = p1[pick], p2[pick]
    min_dist = wholerange.min_distance(shape)
    x = wholerange.search(lambda x: _cost(x, flat, pixel, q1, q2, COARSE_BIN_PX, min_dist),
                          shape)
    if x is None:
        return []
    return [(OptimizeResult(x=x, fun=_cost(x, flat, pixel, p1, p2, COARSE_BIN_PX, min_dist)),
             min_dist)]


def _tilt_rotations(flat, pixel: float, ref: Ellipse, tth: float = 0.0
                    ) -> list[tuple[float, float]]:
    """(rot1, rot2) tilting the detector by the angle the ellipse's axis ratio shows for a
    ring at `tth` (radians), along its major axis, both ways (once for a circle: no tilt).

    A cone of half-angle 2θ cut by a plane tilted by τ is a conic of eccentricity
    e = sin τ / cos 2θ: the tilt is arcsin(e cos 2θ); read at 2θ = 0 it is overstated where
    the ring is wide (by 12° for a 25° tilt at 2θ = 45°). Which pyFAI rotation leans the
    detector along which pixel axis depends on the detector's orientation, so the map is
    measured: how the beam-axis component of the pixel steps changes with each rotation."""
    def lean(r1, r2):
        f = frame_of(flat, [0.1, 0.0, 0.0, r1, r2, 0.0])
        return np.array([f.e1[2], f.e2[2]]) / pixel

    eps = 1e-3
    jac = np.stack([(lean(eps, 0) - lean(-eps, 0)) / (2 * eps),
                    (lean(0, eps) - lean(0, -eps)) / (2 * eps)], 1)
    eccentricity = np.sqrt(max(1.0 - (ref.b / ref.a) ** 2, 0.0))
    tau = float(np.arcsin(min(eccentricity * np.cos(tth), 1.0)))
    # The major axis in (d1, d2); `Ellipse.angle` is measured from the d2 (x) axis.
    axis = np.array([np.sin(ref.angle), np.cos(ref.angle)])
    return [tuple(np.linalg.solve(jac, s * np.sin(tau) * axis))
            for s in ((1.0, -1.0) if tau > 0 else (1.0,))]


def _cost(x, flat, pixel, p1, p2, width, min_dist) -> float:
    """−sharpness of the ridge pixels' tilt-free radii at `x`, in bins of `width` pixels;
    0 for geometries nearer than `min_dist` pixels, tilted past `MAX_TILT` or that put half
    the pixels beyond 90°.

    The radii D tan 2θ are divided by their median local stretch |∇(D tan 2θ)| (1 on an
    untilted detector), so a ring `width` pixels wide on the detector is about `width` wide
    in the histogram. Without it a geometry wins by compressing the radii: the detector
    placed far off-axis, where all pixels see nearly one 2θ. Pixels beyond 90° (a near
    detector tilted towards the sample sees backscattered rings) have negative radii and
    rank in bins of their own. The sharpness is normalised by all sampled pixels, so a
    geometry that throws pixels out of the histogram (radii beyond 20 times the pixels'
    own, near 90°) loses their share instead of sharpening the rest."""
    if x[2] <= max(min_dist, 1.0) or max(abs(x[3]), abs(x[4])) > MAX_TILT:
        return 0.0
    # This runs some 10 000 times a search, three quarters of the search's time: no
    # trigonometry, since with ρ = |(x1, x2)| D tan 2θ = D ρ / x3 and |∇(D tan 2θ)| =
    # D |x3 ∇ρ − ρ ∇x3| / x3², so D cancels from their ratio; `hypot` rather than np.hypot,
    # which costs 3.5 times as much; medians by partition, the pixels' own radius as the
    # root of their squares' median.
    f = beam_frame(x, flat, pixel)
    x1, x2, x3 = f.xyz(p1, p2)
    a, b = f.e1, f.e2
    rho = hypot(x1, x2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        tan = rho / x3
        q = x3 / rho
        stretch = hypot((x1 * a[0] + x2 * a[1]) * q - rho * a[2],
                        (x1 * b[0] + x2 * b[1]) * q - rho * b[2]) / (x3 * x3)
    ok = np.isfinite(tan) & np.isfinite(stretch)
    fwd = ok & (tan >= 0)
    n_fwd = np.count_nonzero(fwd)
    if n_fwd < 0.5 * p1.size:
        return 0.0
    u1, u2 = p1 - x[0], p2 - x[1]
    if n_fwd < p1.size:
        u1, u2, tan, stretch = u1[fwd], u2[fwd], tan[ok], stretch[ok]
    limit = 20.0 * np.sqrt(_median(u1 * u1 + u2 * u2))
    r = tan / max(_median(stretch), 1e-9 / x[2])
    # Near 90° a few radii run to millions of pixels: they are not rings, and their bins
    # would cost the histogram its speed.
    h = _smooth(np.bincount(((r[np.abs(r) < limit] + limit) / width).astype(np.int64)))
    return -float(h @ h) / p1.size ** 2


#: scipy.ndimage.gaussian_filter1d's kernel for σ = 0.7 bins (radius 3), which `_smooth`
#: applies without its per-call overhead (a tenth of the sharpness's time).
_KERNEL = np.exp(-0.5 / 0.49 * np.arange(-3.0, 4.0) ** 2)
_KERNEL /= _KERNEL.sum()


def _smooth(counts: np.ndarray) -> np.ndarray:
    """A histogram smoothed by `_KERNEL`, its ends reflected (gaussian_filter1d's default)."""
    c = counts.astype(float)
    if c.size < 3:      # too short to reflect by slicing; empty when every radius is clipped
        from scipy import ndimage

        return ndimage.gaussian_filter1d(c, 0.7)
    return np.convolve(np.concatenate((c[2::-1], c, c[:-4:-1])), _KERNEL, mode="valid")


def _median(a: np.ndarray) -> float:
    """np.median of a non-empty 1-d array, the same value, without its overhead."""
    k = a.size // 2
    if a.size % 2:
        return float(np.partition(a, k)[k])
    p = np.partition(a, (k - 1, k))
    return float((p[k - 1] + p[k]) / 2)


def traces_in_frame(ridges: RidgePixels, detector, values: dict, max_rings: int = 30):
    """Ridge pixels grouped into rings by their 2θ under `values`.

    Parameters
    ----------
    ridges : RidgePixels
    detector : pyFAI.detectors.Detector
    values : dict
        pyFAI values (dist, poni1, poni2, rot1, rot2, rot3).
    max_rings : int

    Returns
    -------
    traces : list of RingTrace
        By increasing 2θ; `ellipse` is a circle fitted to the pixels (for the start's
        weights only), `arc` the coverage seen from the beam centre.
    family : (RingFamily, ndarray of shape (len(traces),))
        `values` and each trace's median 2θ (radians), as `start.arc_traces` gives them.
    """
    g = make_geometry(detector, values["dist"], values["poni1"], values["poni2"],
                      values["rot1"], values["rot2"], values.get("rot3", 0.0))
    frame = frame_of(g)
    pixel = mean_pixel(detector)
    tth = frame.tth(ridges.d1, ridges.d2)
    r = values["dist"] * np.tan(tth) / pixel
    # Beyond `MAX_TTH` a flat detector meets no ring worth tracing, and the radius (tan 2θ)
    # of pixels near 90° would stretch the histogram to 10⁸ bins (two minutes on an Eiger 9M).
    idx = np.nonzero(np.isfinite(r) & (r >= 0) & (tth < MAX_TTH))[0]
    b1, b2 = frame.beam_center()
    found = []
    for sel in _radius_groups(r[idx], width=1.5, max_groups=max_rings):
        sel = idx[sel]
        e = fit_circle(ridges.d1[sel], ridges.d2[sel]) if sel.size >= 12 else None
        if e is None:
            continue
        found.append((float(np.median(tth[sel])),
                      RingTrace(ellipse=e, d1=ridges.d1[sel], d2=ridges.d2[sel],
                                weight=float(ridges.strength[sel].sum()),
                                arc=arc_coverage(ridges.d1[sel] - b1, ridges.d2[sel] - b2))))
    found.sort(key=lambda f: f[0])
    tth_rings = np.array([f[0] for f in found])
    return [f[1] for f in found], (RingFamily(values=values, tth=tth_rings, cost=float("nan")),
                                   tth_rings)
