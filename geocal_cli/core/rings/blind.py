"""Blind search for the ring centre and the ring ellipses, from ridge pixels alone.

1. Every ridge pixel votes along its normal line (a Hough transform for the common centre of
   concentric curves; gradient-directed voting as in Kimme, Ballard & Sklansky, Commun. ACM
   18 (1975) 120, doi:10.1145/360666.360677). The accumulator extends one detector size
   beyond each edge, so a centre off the detector is found from arcs.
2. Around the voted centre, ridge pixels are grouped by radius (weighted histogram peaks);
   each group is fitted by a robust ellipse. The best ellipse re-centres and reshapes the
   radius measure, and the grouping is repeated, so tilted detectors (elliptical rings) group
   as sharply as flat ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import hypot
from geocal_cli.core.rings.ellipse import Ellipse, fit_circle, fit_ellipse
from geocal_cli.core.rings.ridges import RidgePixels


@dataclass(frozen=True)
class RingTrace:
    """A ring found in the image.

    Attributes
    ----------
    ellipse : Ellipse
        Fitted to the ring's ridge pixels.
    d1, d2 : ndarray, shape (n,)
        The inlier ridge pixels (pixel indices).
    weight : float
        Summed ridge strength of the inliers.
    arc : float
        Azimuthal coverage seen from the ellipse centre, radians (2π for a full ring).
    """

    ellipse: Ellipse
    d1: np.ndarray
    d2: np.ndarray
    weight: float
    arc: float

    @property
    def score(self) -> float:
        """Ridge strength times coverage up to half a turn: how well the trace shows its
        ring (beyond half a turn the shape is fixed, so more arc adds nothing)."""
        return self.weight * min(self.arc, np.pi)


def vote_center(ridges: RidgePixels, shape: tuple[int, int], cells: int = 300,
                margin: float = 1.0, n_voters: int = 2500) -> tuple[float, float, float]:
    """Common centre of the ridges by voting along their normals.

    Parameters
    ----------
    ridges : RidgePixels
    shape : (H, W)
        Image shape; the accumulator spans it plus `margin` times its size on every side.
    cells : int
        Accumulator cells along its longer side.
    n_voters : int
        Ridge pixels drawn at random to vote (twice as many in the fine pass).

    Returns
    -------
    c1, c2 : float
        Centre in pixel indices (may lie off the detector).
    contrast : float
        Peak height over the accumulator's mean over occupied cells (> ~5: a clear centre).
    """
    from scipy import ndimage

    h, w = shape
    lo1, hi1 = -margin * h, h * (1 + margin)
    lo2, hi2 = -margin * w, w * (1 + margin)
    cell = max(hi1 - lo1, hi2 - lo2) / cells
    n1 = int(np.ceil((hi1 - lo1) / cell))
    n2 = int(np.ceil((hi2 - lo2) / cell))
    reach = np.hypot(hi1 - lo1, hi2 - lo2)
    t = np.arange(-reach, reach, cell / 2)

    sel = np.arange(ridges.d1.size)
    if sel.size > n_voters:
        sel = np.random.default_rng(0).choice(sel, n_voters, replace=False)
    acc = ndimage.gaussian_filter(
        _accumulate(ridges, sel, t, lo1, lo2, cell, n1, n2).reshape(n1, n2), 1.0)
    k1, k2 = np.unravel_index(np.argmax(acc), acc.shape)
    occupied = acc[acc > 0]
    contrast = float(acc[k1, k2] / occupied.mean()) if occupied.size else 0.0
    c1 = lo1 + (k1 + 0.5) * cell
    c2 = lo2 + (k2 + 0.5) * cell
    # Second, finer pass within a few coarse cells of the peak.
    fine = cell / 10
    win = 4 * cell
    dist = np.hypot(ridges.d1 - c1, ridges.d2 - c2)
    tt = np.arange(-win, win, fine / 2)
    # Signed distance from each pixel to the foot of the perpendicular from the centre.
    s0 = (c1 - ridges.d1) * ridges.n1 + (c2 - ridges.d2) * ridges.n2
    sel = np.nonzero(dist > 2 * win)[0]
    if sel.size > 2 * n_voters:
        sel = np.random.default_rng(1).choice(sel, 2 * n_voters, replace=False)
    nf = int(np.ceil(2 * win / fine))
    accf = _accumulate(ridges, sel, tt, c1 - win, c2 - win, fine, nf, nf, offset=s0)
    if accf.any():
        accf = ndimage.gaussian_filter(accf.reshape(nf, nf), 2.0)
        f1, f2 = np.unravel_index(np.argmax(accf), accf.shape)
        c1 = c1 - win + (f1 + 0.5) * fine
        c2 = c2 - win + (f2 + 0.5) * fine
    return float(c1), float(c2), contrast


def arc_center(ridges: RidgePixels, min_pixels: int = 40) -> tuple[float, float] | None:
    """Common centre from circles fitted to each long ridge component (ring arc).

    Voting needs normals that cross at wide angles; on a narrow strip detector, or far from
    the beam, the arcs are long but their normals nearly parallel. A circle fitted to each
    arc fixes its own centre; the pixel-weighted median over arcs is robust to the few that
    are not ring pieces.

    Returns
    -------
    (c1, c2) or None
        None when fewer than two arcs fit.
    """
    centres, weights = [], []
    for idx in ridges.arcs(min_pixels):
        e = fit_circle(ridges.d1[idx], ridges.d2[idx])
        if e is not None and e.rms < 2.0 and np.ptp(ridges.d1[idx]) + np.ptp(ridges.d2[idx]) > 60:
            centres.append((e.c1, e.c2))
            weights.append(e.inliers.sum())
    if len(centres) < 2:
        return None
    c = np.array(centres)
    w = np.array(weights, float)
    return tuple(float(_weighted_median(c[:, i], w)) for i in range(2))


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, 0.5 * cum[-1])])


def sharpness(ridges: RidgePixels, c1: float, c2: float, width: float = 4.0,
              drift: np.ndarray | None = None) -> float:
    """Concentration Σh² / (Σh)² of the ridge-radius histogram around a centre (higher is
    sharper: concentric rings around the right centre).

    Parameters
    ----------
    ridges : RidgePixels
    c1, c2 : float
        The centre, pixel indices; with `drift`, the centre of a ring of radius 0.
    width : float
        Histogram bin, pixels.
    drift : ndarray, shape (2,), optional
        Centre shift per pixel² of r² (`center_drift_of`); none by default.

    Returns
    -------
    float
        At most 1 (every radius in one bin).
    """
    if drift is None or not np.any(drift):
        return -_sharpness_cost(np.array([c1, c2]), ridges.d1, ridges.d2, width)
    return -_drifted_concentration(
        _drifting_radius(ridges.d1, ridges.d2, _point(c1, c2), drift), width,
        _drift_reach(ridges.d1, ridges.d2))


def _point(c1: float, c2: float) -> Ellipse:
    """A unit circle at (c1, c2): the reference of ring radii about a centre."""
    return Ellipse(c1, c2, 1.0, 1.0, 0.0, 0.0, np.empty(0, bool))


def drifting_center(ridges: RidgePixels, starts: list, common: tuple[float, float]
                    ) -> tuple[float, float, np.ndarray]:
    """The centre and the drift of ring centres with r² that make the ridge radii sharpest
    (`_sharpest_drift`): the sharpest of the searches from each of `starts` with no drift
    and one from the drift between the inner and the outer rings about `common`.

    Around a beam on or off the edge of the detector every ring is an arc of less than half
    a turn, whose own centre no trace fixes (`center_drift_of` needs more), yet a few
    degrees of tilt at wide angles move the ring centres by tens of pixels across the
    pattern: vanadinite at 70 mm, tilted 4°, beam 24 px off the edge, its centres 90 px
    apart between the first ring and the last. One common centre then lands among the
    outer rings' centres, where the many outer pixels are sharpest, and smears the inner
    rings together. The cost is rugged, and each search found the drift where the other
    wandered off: from the vote on that image's ridges, from the two halves (the ridge
    pixels inside and outside their median radius, each sharpened about a centre of its
    own, `refine_center`) on ridges drawn evenly along its rings.

    Parameters
    ----------
    ridges : RidgePixels
    starts : list of (float, float)
        Centres not sharpened (the vote's, or the arcs', or both where they tie: sharpening
        without a drift takes them into the outer rings' basin), pixel indices.
    common : (float, float)
        The common centre (`refine_center`), pixel indices.

    Returns
    -------
    c1, c2 : float
        The centre of a ring of radius 0, pixel indices.
    drift : ndarray, shape (2,)
        Pixels per pixel² of r².
    """
    found = [_sharpest_drift(ridges.d1, ridges.d2, _point(*start), np.zeros(2))
             for start in starts]
    r = hypot(ridges.d1 - common[0], ridges.d2 - common[1])
    inner = r < np.median(r)
    centres, r2 = [], []
    for half in (inner, ~inner):
        part = ridges.subset(half)
        c = np.array(refine_center(part, *common))
        centres.append(c)
        r2.append(np.mean((part.d1 - c[0]) ** 2 + (part.d2 - c[1]) ** 2))
    drift = (centres[1] - centres[0]) / max(r2[1] - r2[0], 1.0)
    # Halves a few pixels apart in radius (one arc) give no drift; nor do centres further
    # apart than `_plausible` lets a ring's centre be from the common one.
    if (np.sqrt(r2[1]) - np.sqrt(r2[0]) >= 10.0
            and np.hypot(*(centres[1] - centres[0])) <= MAX_CENTRE_SHIFT * np.sqrt(r2[1])):
        found.append(_sharpest_drift(ridges.d1, ridges.d2,
                                     _point(*(centres[0] - drift * r2[0])), drift))
    e, drift = max(found, key=lambda f: sharpness(ridges, f[0].c1, f[0].c2, 1.0, f[1]))
    return e.c1, e.c2, drift


def _sharpness_cost(c, p1, p2, width):
    return _concentration(hypot(p1 - c[0], p2 - c[1]) / width)


def _concentration(r: np.ndarray) -> float:
    """−Σh² / (Σh)² of the histogram of radii `r` (in bins, ≥ 0), lightly smoothed."""
    from scipy import ndimage

    # From the lowest occupied bin less 3 (the kernel's reach): around a centre far off
    # the detector (one arc of a ring at a wide angle) the radii run to 10⁵ bins, and
    # smoothing the empty ones cost 13 ms a call.
    i = r.astype(np.int64)
    h = ndimage.gaussian_filter1d(np.bincount(i - max(int(i.min()) - 3, 0)).astype(float), 0.7)
    return -np.sum(h * h) / np.sum(h) ** 2


def _drift_reach(d1: np.ndarray, d2: np.ndarray) -> float:
    """The spread of drifted radii (pixels) beyond which a drift draws no ring on the
    detector: twice the points' extent, and 100 px."""
    return 2.0 * (np.ptp(d1) + np.ptp(d2)) + 100.0


def _drifted_concentration(r: np.ndarray, width: float, reach: float) -> float:
    """`_concentration` of radii `r` (pixels, shape (n,)) in bins of `width` pixels, or 0
    where they spread beyond `reach` (`_drift_reach`): a drift's histogram spans the
    radii's whole spread, and a wide one took minutes and tens of GB (one arc of a ring
    1700 px across gave a start 400 units of drift away; Si on a 3072² Rayonix tilted
    26°, its sharpest drift judged on every ridge pixel, 37 s and 21 GB in three calls)."""
    return _concentration(r / width) if np.ptp(r) <= reach else 0.0


def refine_center(ridges: RidgePixels, c1: float, c2: float) -> tuple[float, float]:
    """Sharpen a ring centre: maximise the concentration of the ridge-radius histogram.

    Around the true centre every ring's pixels fall into one narrow radius bin; any offset
    smears them over ±offset · |cos φ|. The sharpness Σh² / (Σh)² of the histogram is
    maximised by Nelder–Mead, first with 4-pixel bins from ±20 px, then with 1-pixel bins.
    Works on partial arcs (a beam near a corner) where voting is least precise.

    Parameters
    ----------
    ridges : RidgePixels
    c1, c2 : float
        Starting centre, pixel indices.

    Returns
    -------
    c1, c2 : float
    """
    from scipy.optimize import minimize

    sel = np.arange(ridges.d1.size)
    if sel.size > 8000:
        sel = np.random.default_rng(2).choice(sel, 8000, replace=False)
    p1, p2 = ridges.d1[sel], ridges.d2[sel]
    c = np.array([c1, c2], float)
    for width, step in ((4.0, 20.0), (1.0, 3.0)):
        simplex = np.array([c, c + [step, 0], c + [0, step]])
        c = minimize(_sharpness_cost, c, args=(p1, p2, width), method="Nelder-Mead",
                     options={"initial_simplex": simplex, "xatol": 0.05, "fatol": 1e-9,
                              "maxiter": 200}).x
    return float(c[0]), float(c[1])


def _accumulate(ridges, sel, t, lo1, lo2, cell, n1, n2, offset=None, chunk=50) -> np.ndarray:
    """Votes of ridge pixels `sel` along their normals at steps `t` (plus `offset` per pixel),
    binned into an n1 × n2 grid of `cell`-sized cells from (lo1, lo2); flat, shape (n1·n2,).
    Voters go in chunks so that memory stays at chunk × len(t)."""
    acc = np.zeros(n1 * n2)
    t = np.asarray(t, np.float32)
    for start in range(0, sel.size, chunk):
        s = sel[start:start + chunk]
        tt = t[None, :] + (0 if offset is None else offset[s, None].astype(np.float32))
        p1 = ridges.d1[s, None].astype(np.float32) + tt * ridges.n1[s, None].astype(np.float32)
        p2 = ridges.d2[s, None].astype(np.float32) + tt * ridges.n2[s, None].astype(np.float32)
        i1 = np.floor((p1 - lo1) / cell).astype(np.int64)
        i2 = np.floor((p2 - lo2) / cell).astype(np.int64)
        ok = (i1 >= 0) & (i1 < n1) & (i2 >= 0) & (i2 < n2)
        wts = np.broadcast_to(np.sqrt(ridges.strength[s, None]), ok.shape)[ok]
        acc += np.bincount((i1 * n2 + i2)[ok], weights=wts, minlength=n1 * n2)
    return acc


#: Scale of the drift (pixels per pixel²) in `_sharpest_drift`'s search: a few pixels of
#: centre shift across a ring pattern a few hundred pixels wide.
DRIFT_UNIT = 1e-5
#: Rounds `trace_rings` may add past its own while the measured drift of the ring centres
#: still changes.
DRIFT_ROUNDS = 3
#: Radius (pixels) below which ring candidates are ranked as if at this radius
#: (`_radius_groups`), so that noise specks near the centre do not rank first.
MIN_RANK_RADIUS = 20.0


def _radius_groups(r: np.ndarray, width: float, max_groups: int) -> list[np.ndarray]:
    """Indices of points in each peak of the radius histogram (counts), strongest first.

    Counting pixels rather than summing ridge strength keeps weak rings beside strong ones;
    a peak must stand out from the histogram's local level by 5 Poisson σ, so that noise
    ridges do not make rings.
    """
    from scipy import ndimage, signal

    nb = int(np.ceil(r.max() / width)) + 3
    hist = np.bincount(np.floor(r / width).astype(int), minlength=nb).astype(float)
    hist = ndimage.gaussian_filter1d(hist, 1.0)
    level = ndimage.median_filter(hist, size=25, mode="nearest")
    peaks, props = signal.find_peaks(hist, prominence=hist.max() * 0.02, distance=2)
    # The smoothing (σ = 1 bin) divides the Poisson σ of a bin by about √(2√π) ≈ 1.9.
    strong = hist[peaks] - level[peaks] > 5 * np.sqrt(level[peaks] + 1) / 1.9
    peaks = peaks[strong]
    props = {k: v[strong] for k, v in props.items()}
    # Ranked by pixels per unit of circumference: a ring's pixel count grows with its radius,
    # and the few small inner rings of a dense pattern decide its assignment.
    density = props["prominences"] / np.maximum((peaks + 0.5) * width, MIN_RANK_RADIUS)
    order = np.argsort(density)[::-1][:max_groups]
    groups = []
    for p in peaks[order]:
        # Extend to the valleys on either side (half-prominence base) to take the whole peak.
        left = p
        while left > 0 and hist[left - 1] < hist[left] and hist[left - 1] > 0.3 * hist[p]:
            left -= 1
        right = p
        while right < nb - 1 and hist[right + 1] < hist[right] and hist[right + 1] > 0.3 * hist[p]:
            right += 1
        sel = np.nonzero((r >= left * width) & (r < (right + 1) * width))[0]
        groups.append(sel)
    return groups


def trace_rings(ridges: RidgePixels, c1: float, c2: float, max_rings: int = 30,
                n_rounds: int = 3, drift: np.ndarray | None = None) -> list[RingTrace]:
    """Group ridge pixels into rings around a centre and fit an ellipse to each.

    Parameters
    ----------
    ridges : RidgePixels
    c1, c2 : float
        Approximate common centre (pixel indices), e.g. from `vote_center`.
    max_rings : int
        At most this many ring candidates, strongest first.
    n_rounds : int
        Re-centring rounds (the best ellipse and the drift of the ring centres with r²
        define the next round's radius measure), and up to `DRIFT_ROUNDS` more while that
        drift changes by more than a tenth.
    drift : ndarray, shape (2,), optional
        Drift of the ring centres with r² (pixels per pixel², `drifting_center`), (c1, c2)
        then being the centre of a ring of radius 0. It stands unless the traces measure
        one (`center_drift_of`).

    Returns
    -------
    list of RingTrace
        Sorted by increasing radius, one per ring: of traces whose radii agree within 1 %,
        only the strongest is kept.
    """
    d1, d2, s = ridges.d1, ridges.d2, ridges.strength
    shape_ref = _point(c1, c2)
    drift = np.zeros(2) if drift is None else np.asarray(drift, float)
    traces: list[RingTrace] = []
    for rnd in range(n_rounds + DRIFT_ROUNDS):
        r = _drifting_radius(d1, d2, shape_ref, drift)
        used = drift
        traces = []
        for sel in _radius_groups(r, width=1.5, max_groups=max_rings):
            if sel.size < 12:
                continue
            # Five ellipse parameters need most of the ring: on shorter arcs a circle.
            arc = arc_coverage(d1[sel] - shape_ref.c1, d2[sel] - shape_ref.c2)
            e = (fit_ellipse if arc >= np.radians(200) else fit_circle)(d1[sel], d2[sel])
            if e is None or e.a > 20 * max(np.ptp(d1), np.ptp(d2), 1.0):
                continue
            keep = sel[e.inliers]
            arc = arc_coverage(d1[keep] - e.c1, d2[keep] - e.c2)
            traces.append(RingTrace(ellipse=e, d1=d1[keep], d2=d2[keep],
                                    weight=float(s[keep].sum()), arc=arc))
        # Reference for the next round: a plausible ring (near the current centre, not too
        # eccentric, not tiny) with the most pixels over a wide arc.
        plausible = [t for t in traces if _plausible(t.ellipse, shape_ref)]
        if not plausible:
            break
        best = max(plausible, key=lambda t: t.d1.size * min(t.arc, np.pi)).ellipse
        measured = center_drift_of(plausible, best)
        if measured.any():
            shape_ref, drift = _sharpest_drift(d1, d2, best, measured)
        elif rnd == 0 and drift.any():
            # The caller's drift (`drifting_center`), which arcs of less than half a turn
            # cannot measure, stands with the traces drawn under it.
            break
        else:
            shape_ref, drift = best, measured
        # Traces merged by a drift not yet followed bias the next estimate towards none:
        # rounds go on while it still moves by a tenth.
        if rnd + 1 >= n_rounds and np.hypot(*(drift - used)) <= 0.1 * np.hypot(*drift):
            break
    traces = _drop_duplicates(traces)
    return sorted(traces, key=lambda t: t.ellipse.radius)


def _drifting_radius(d1, d2, ref: Ellipse, drift: np.ndarray, n_iter: int = 3) -> np.ndarray:
    """Radii of points (d1, d2), shape (n,), in the shape of `ref` about a centre that moves
    with the radius: ref's centre + drift · (r² − r_ref²) (`center_drift_of`)."""
    ca, sa = np.cos(ref.angle), np.sin(ref.angle)
    ratio = np.sqrt(ref.a / ref.b)
    y, x = d1 - ref.c1, d2 - ref.c2
    # Along the ellipse's axes, scaled to a circle; the centre's shift drift · q (q = r² −
    # r_ref²) moves every point along one fixed direction there, by q.
    u = (x * ca + y * sa) / ratio
    v = (y * ca - x * sa) * ratio
    r = hypot(u, v)
    if drift.any():
        du = (drift[1] * ca + drift[0] * sa) / ratio
        dv = (drift[0] * ca - drift[1] * sa) * ratio
        r2_ref = ref.radius ** 2
        for _ in range(n_iter - 1):
            q = r * r - r2_ref
            r = hypot(u - du * q, v - dv * q)
    return r


def _sharpest_drift(d1, d2, ref: Ellipse, drift: np.ndarray) -> tuple[Ellipse, np.ndarray]:
    """The centre of `ref` and the drift (`_drifting_radius`) that make the ridge radii
    sharpest (as `refine_center` does for a centre alone), by Nelder–Mead from `drift`.

    The drift fitted through trace centres is biased towards none while the traces still
    merge rings that the drift has not yet separated; the sharpness measures it on all
    ridge pixels at once."""
    from dataclasses import replace

    from scipy.optimize import minimize

    pick = np.arange(d1.size)
    if pick.size > 8000:
        pick = np.random.default_rng(3).choice(pick, 8000, replace=False)
    p1, p2 = d1[pick], d2[pick]

    reach = _drift_reach(p1, p2)

    def cost(x):
        return _drifted_concentration(
            _drifting_radius(p1, p2, replace(ref, c1=x[0], c2=x[1]), x[2:] * DRIFT_UNIT), 1.0,
            reach)

    x0 = np.array([ref.c1, ref.c2, *(drift / DRIFT_UNIT)])
    x = minimize(cost, x0, method="Nelder-Mead",
                 options={"initial_simplex": np.vstack([x0, x0 + np.diag([1.0, 1.0, 0.5, 0.5])]),
                          "xatol": 0.02, "fatol": 1e-9, "maxiter": 300}).x
    return replace(ref, c1=float(x[0]), c2=float(x[1])), x[2:] * DRIFT_UNIT


def center_drift_of(traces: list, ref: Ellipse, clip: float = 3.0) -> np.ndarray:
    """How ring centres move with r² (pixels per pixel², shape (2,)): a robust weighted line
    through the centres of the traces seen over more than half a turn, zero when fewer than
    three are.

    The rings of a tilted detector are conics whose centres move away from the beam as the
    square of their radius (`family.center_drift`); around one common centre a few degrees
    of tilt smear the small inner rings of a dense pattern, whose centres sit near the beam
    while the many outer rings set the common one.
    """
    full = [t for t in traces if t.arc > np.pi]
    if len(full) < 3:
        return np.zeros(2)
    c = np.array([[t.ellipse.c1, t.ellipse.c2] for t in full]) - [ref.c1, ref.c2]
    r2 = np.array([t.ellipse.radius for t in full]) ** 2 - ref.radius ** 2
    w = np.sqrt([t.d1.size for t in full])
    keep = np.ones(r2.size, bool)
    for _ in range(3):
        a = np.stack([np.ones(keep.sum()), r2[keep]], 1) * w[keep, None]
        sol = np.linalg.lstsq(a, c[keep] * w[keep, None], rcond=None)[0]
        res = np.hypot(*(c - sol[0] - np.outer(r2, sol[1])).T)
        mad = 1.4826 * np.median(res[keep]) + 0.5
        keep = res <= clip * mad
        if keep.sum() < 3:
            return np.zeros(2)
    # Below half a pixel across the traces the drift is no help and not worth a search.
    if np.hypot(*sol[1]) * np.ptp(r2[keep]) < 0.5:
        return np.zeros(2)
    return sol[1]


def ridge_turn(ridges: RidgePixels, c1: float, c2: float) -> float:
    """Share of the turn (0 to 1) about (c1, c2) over which the ridges show rings: 5°
    sectors holding at least a fifth of an upper-quartile sector's pixels, so that noise
    ridges scattered over the rest do not count."""
    h = _sector_counts(ridges.d1 - c1, ridges.d2 - c2)
    return float(np.count_nonzero((h > 0) & (h >= 0.2 * np.percentile(h, 75))) / h.size)


def arc_coverage(y: np.ndarray, x: np.ndarray) -> float:
    """Azimuthal coverage (radians, 2π for a full ring) of points at offsets (y, x), shape (n,),
    from a centre, counted in 5° bins."""
    hist = _sector_counts(y, x)
    return float(np.count_nonzero(hist) * 2 * np.pi / hist.size)


def _sector_counts(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Points at offsets (y, x) from a centre in each 5° sector, shape (72,)."""
    return np.histogram(np.arctan2(y, x), bins=72, range=(-np.pi, np.pi))[0]


#: How far from the common centre a ring's own centre may lie, as a share of its radius: a
#: detector tilted below ~55° keeps it nearer.
MAX_CENTRE_SHIFT = 0.35


def _plausible(e: Ellipse, ref: Ellipse) -> bool:
    """A ring ellipse consistent with a ring around `ref`'s centre (tilt below ~55°)."""
    return (e.a / e.b < 1.8 and e.radius >= 15
            and np.hypot(e.c1 - ref.c1, e.c2 - ref.c2) <= MAX_CENTRE_SHIFT * e.radius + 20)


def _drop_duplicates(traces: list[RingTrace]) -> list[RingTrace]:
    """Keep one trace per ring: traces whose radii agree within 1 % are the same ring."""
    out: list[RingTrace] = []
    for t in sorted(traces, key=lambda t: -t.weight):
        if all(abs(t.ellipse.radius - o.ellipse.radius) > 0.01 * o.ellipse.radius for o in out):
            out.append(t)
    return out


def longest_curve(ridges: RidgePixels, shape: tuple[int, int]) -> int:
    """Pixel count of the largest 8-connected group of ridge pixels (a ring arc is long,
    noise ridges are short)."""
    from scipy import ndimage

    if ridges.d1.size == 0:
        return 0
    mask = np.zeros(shape, bool)
    mask[np.clip(np.round(ridges.d1).astype(int), 0, shape[0] - 1),
         np.clip(np.round(ridges.d2).astype(int), 0, shape[1] - 1)] = True
    # Bridge the sampling holes of a binned or subsampled ridge map.
    mask = ndimage.binary_dilation(mask, iterations=2)
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
    return int(np.bincount(lab.ravel())[1:].max()) if n else 0
