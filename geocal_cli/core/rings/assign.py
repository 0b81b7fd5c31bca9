"""Assignment of traced rings to calibrant reflections, which also gives the distance.

Each pairing of an observed ring radius r_i with a calibrant angle 2θ_k proposes a distance
D = r_i / tan 2θ_k (in pixels). Every proposal is scored by the rings it explains minus the
calibrant rings it predicts inside the observed radius range that are not seen; the penalty
is what separates the true distance from its √2 or √3 aliases on cubic calibrants, and rings
that fit no calibrant reflection (a steel sample under the powder) are simply left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Distance proposals (observed ring × reflection pairs) scored at most: each costs a row of
#: (rings × reflections) arrays, and a dense calibrant's profile at high energy (CeO2 at
#: 94 keV: 222 rings against 666 reflections, 148 000 proposals) took 15 s a match and
#: minutes a wavelength scan. Beyond it only the strongest rings propose (at least
#: `MIN_PROPOSERS`); every ring still counts in the scores.
PROPOSAL_BUDGET = 6000
MIN_PROPOSERS = 12
#: A ring matches a predicted one within MATCH_TOL_REL · r + MATCH_TOL_PX pixels.
MATCH_TOL_REL = 0.006
MATCH_TOL_PX = 1.5
#: Reflections a blind assignment may use lie below this 2θ (degrees) where the radii are
#: measured on the image (rings traced about their common centre): a ring at 88° lies 29
#: distances from the beam on a flat detector. At 80° a detector 20 mm from the sample with
#: its edge 100 mm beside the beam, which shows only rings of 80–87°, was refused.
MAX_TTH_DEG = 88.0
#: ... and below this one where the radii are derived from fitted 2θ (D tan 2θ of a ring
#: family's or a profile's rings): there a 0.1° error of 2θ moves a ring at 80° by 1 % of
#: its radius, beyond `MATCH_TOL_REL`, and the reflections added beyond it took the place
#: of the right assignment (vanadinite tilted 34° at 98 mm: 10 of 10 arcs' rings assigned
#: below 80°, at most 3 below 88°; robustness case 15, refused with 88°).
DERIVED_MAX_TTH_DEG = 80.0


@dataclass(frozen=True)
class Assignment:
    """Ring assignment result.

    Attributes
    ----------
    distance_px : float
        Sample–detector distance in pixels (flat, untilted approximation).
    ring_index : ndarray of int, shape (n_obs,)
        Calibrant ring index for each observed ring, −1 for rings left unassigned.
    score : float
        Rings explained (weighted) minus the penalty for predicted rings not seen.
    """

    distance_px: float
    ring_index: np.ndarray
    score: float


def _match(radii, tan_tth, dist, tol_rel, tol_px):
    """Nearest predicted ring for every observed ring, for one or many distances.

    Parameters
    ----------
    radii : ndarray, shape (N,)
    tan_tth : ndarray, shape (M,), increasing
    dist : ndarray, shape (P,) or float

    Returns
    -------
    k : ndarray of int, shape (P, N) (or (N,) for a float distance)
        Matched ring index, −1 where no prediction is within tolerance.
    """
    dist = np.asarray(dist, float)
    k, err = _nearest(radii, tan_tth, np.atleast_1d(dist))
    k = np.where(err <= tol_rel * radii[None, :] + tol_px, k, -1)
    return k if dist.ndim else k[0]


def _nearest(radii, tan_tth, dist):
    """Nearest predicted ring of every observed ring for distances `dist` (shape (P,)):
    its index and |observed − predicted| radius (pixels), both shape (P, N)."""
    ratio = radii[None, :] / dist[:, None]                                   # (P, N)
    k = np.clip(np.searchsorted(tan_tth, ratio), 1, max(tan_tth.size - 1, 1))
    if tan_tth.size > 1:
        left = np.abs(ratio - tan_tth[k - 1])
        right = np.abs(ratio - tan_tth[k])
        k = np.where(left < right, k - 1, k)
    else:
        k = np.zeros_like(k)
    return k, np.abs(radii[None, :] - dist[:, None] * tan_tth[k])


def match_error_px(radii: np.ndarray, tth: np.ndarray, distance_px: float) -> np.ndarray:
    """How far each observed ring lies from the nearest ring a distance predicts.

    Parameters
    ----------
    radii : ndarray, shape (n,)
        Observed ring radii (flat-equivalent), pixels.
    tth : ndarray, shape (m,)
        Calibrant 2θ in radians, increasing, all below 90°.
    distance_px : float
        Perpendicular distance, pixels: a ring of 2θ lies at distance_px · tan 2θ.

    Returns
    -------
    ndarray, shape (n,)
        |radius − nearest predicted radius|, pixels.
    """
    tan_tth = np.tan(np.asarray(tth, float))
    return _nearest(np.asarray(radii, float), tan_tth, np.array([float(distance_px)]))[1][0]


def settled_distance(radii: np.ndarray, tan_tth: np.ndarray, distance_px: float,
                     tol_rel: float = MATCH_TOL_REL, tol_px: float = MATCH_TOL_PX,
                     max_steps: int = 10) -> float:
    """A distance refined until its matches hold: the least-squares distance of the rings it
    matches, matched again, until the matches stop changing.

    A hypothesis' score is flat wherever its rings stay inside their match windows, so its
    distance can sit anywhere on that plateau; `assign_rings`' two steps leave it there
    when, in a dense comb, each step hands a ring to the next reflection (LaB6 at 287 kV:
    0.6 % long, its rings 0.15–1.7 px off; four more steps reach the truth, where all but
    one are within 0.3 px).

    Parameters
    ----------
    radii : ndarray, shape (n,)
        Observed ring radii, pixels.
    tan_tth : ndarray, shape (m,)
        tan 2θ of the calibrant's reflections, increasing.
    distance_px : float
        The start, pixels.
    tol_rel, tol_px : float
        Match windows, as `assign_rings`.
    max_steps : int

    Returns
    -------
    float
        Pixels; the start when it matches no ring.
    """
    radii = np.asarray(radii, float)
    dist, held = np.array([float(distance_px)]), None
    for _ in range(max_steps):
        fitted, k = _least_squares_distances(radii, 1.0, tan_tth, dist, tol_rel, tol_px)
        if held is not None and np.array_equal(k, held):
            break
        dist, held = fitted, k
    return float(dist[0])


def _least_squares_distances(r, w, tan_tth, dist, tol_rel, tol_px):
    """One least-squares step from each distance of `dist` (shape (P,)): the distance that
    best puts the rings `r` (weights `w`) it matches on their reflections (unchanged where
    it matches none), and those matches (`_match`, shape (P, N))."""
    k = _match(r, tan_tth, dist, tol_rel, tol_px)
    tk = np.where(k >= 0, tan_tth[np.maximum(k, 0)], 0.0)
    den = np.sum(w * tk * tk, axis=1)
    return np.where(den > 0, np.sum(w * r * tk, axis=1) / np.where(den > 0, den, 1), dist), k


def _scores(r, w, tan_tth, dist, tol_rel, tol_px, miss_penalty, merge_blends=False) -> np.ndarray:
    """Score of each distance in `dist` (shape (P,)): per reflection, the strongest observed
    ring claiming it counts once (weight + 0.5), minus `miss_penalty` per predicted ring
    inside the observed radius range that no observed ring claims.

    With `merge_blends`, reflections whose match windows overlap are one predicted ring: its
    strongest claimant counts once, and it is missed only when no observed ring claims any
    of them (see `assign_rings`)."""
    k = _match(r, tan_tth, dist, tol_rel, tol_px)
    best_w = np.full((dist.size, tan_tth.size), -1.0)
    pr, ob = np.nonzero(k >= 0)
    np.maximum.at(best_w, (pr, k[pr, ob]), w[ob])
    pred = dist[:, None] * tan_tth[None, :]
    inside = (pred >= r.min() * 0.98) & (pred <= r.max() * 1.02)
    if not merge_blends:
        matched = best_w >= 0
        gain = np.sum(np.where(matched, best_w + 0.5, 0.0), axis=1)
        return gain - miss_penalty * np.sum(inside & ~matched, axis=1)
    # Predicted rings: runs of reflections with overlapping windows, numbered across all
    # distances.
    tol = tol_rel * pred + tol_px
    starts = np.ones(pred.shape, bool)
    starts[:, 1:] = np.diff(pred, axis=1) >= tol[:, :-1] + tol[:, 1:]
    group = np.cumsum(starts.ravel()) - 1
    n_groups = int(group[-1]) + 1 if group.size else 0
    claimed = np.full(n_groups, -1.0)
    np.maximum.at(claimed, group, best_w.ravel())
    has_inside = np.bincount(group, inside.ravel(), n_groups) > 0
    row = np.repeat(np.arange(dist.size), starts.sum(axis=1))
    gain = np.bincount(row, np.where(claimed >= 0, claimed + 0.5, 0.0), dist.size)
    return gain - miss_penalty * np.bincount(row, has_inside & (claimed < 0), dist.size)


def first_reflections(n: int) -> int:
    """How many of a calibrant's first reflections `assign_rings` matches to `n` observed
    rings by default: a blind search's rings are among the first reflections, and far beyond
    them proposals only add implausibly short distances."""
    return max(60, 3 * n)


def assignment_score(radii: np.ndarray, tth: np.ndarray, distance_px: float,
                     tol_rel: float = MATCH_TOL_REL, tol_px: float = MATCH_TOL_PX,
                     miss_penalty: float = 0.5, merge_blends: bool = False) -> float:
    """The score `assign_rings` gives one distance, all rings weighted alike.

    Parameters
    ----------
    radii : ndarray, shape (n,)
        Observed ring radii, pixels.
    tth : ndarray, shape (m,)
        Calibrant 2θ in radians, increasing.
    distance_px : float
    tol_rel, tol_px, miss_penalty, merge_blends : float, float, float, bool
        As `assign_rings`.

    Returns
    -------
    float
        −inf for fewer than two radii. Every reflection counts (`assign_rings` matches the
        first ones only).
    """
    r = np.sort(np.asarray(radii, float))
    if r.size < 2:
        return -np.inf
    # Every reflection that reaches the observed range, and no other: beyond it a
    # reflection neither matches nor counts as missed.
    tan_tth = np.tan(np.asarray(tth, float))
    pred = float(distance_px) * tan_tth
    reach = (pred >= min(0.98 * r[0], (1 - tol_rel) * r[0] - tol_px)) \
        & (pred <= max(1.02 * r[-1], (1 + tol_rel) * r[-1] + tol_px))
    if not reach.any():
        return 0.0
    return float(_scores(r, np.ones_like(r), tan_tth[reach], np.array([float(distance_px)]),
                         tol_rel, tol_px, miss_penalty, merge_blends)[0])


def assignable(tth: np.ndarray, derived: bool = False) -> np.ndarray:
    """Indices of the rings a blind assignment may use: those that exist at the wavelength
    (finite 2θ) and lie below `MAX_TTH_DEG`, or `DERIVED_MAX_TTH_DEG` for radii derived
    from fitted 2θ (beyond, tan 2θ on a flat detector runs away).

    Parameters
    ----------
    tth : ndarray, shape (m,)
        Calibrant 2θ, radians (NaN where the reflection does not exist).
    derived : bool
        The radii matched are D tan 2θ of fitted 2θ, not measured.

    Returns
    -------
    ndarray of int
    """
    tth = np.asarray(tth, float)
    limit = DERIVED_MAX_TTH_DEG if derived else MAX_TTH_DEG
    return np.nonzero(np.isfinite(tth) & (tth < np.radians(limit)))[0]


def assign_rings(radii: np.ndarray, weights: np.ndarray, tth: np.ndarray,
                 tol_rel: float = MATCH_TOL_REL, tol_px: float = MATCH_TOL_PX,
                 miss_penalty: float = 0.5, min_distance_px: float = 10.0, n_best: int = 3,
                 merge_blends: bool = False, reflections: int | None = None) -> list[Assignment]:
    """Find the distances and ring indices that best explain observed ring radii.

    Parameters
    ----------
    radii : ndarray, shape (n,)
        Observed ring radii in pixels (e.g. sqrt(a·b) of the ring ellipses).
    weights : ndarray, shape (n,)
        Confidence of each ring (e.g. ridge strength × arc); normalised internally.
    tth : ndarray, shape (m,)
        Calibrant 2θ in radians, increasing (NaN-free, < π/2).
    tol_rel, tol_px : float
        A ring matches a prediction within tol_rel · r + tol_px pixels.
    miss_penalty : float
        Score lost per predicted ring inside the observed range with no observed ring.
    min_distance_px : float
        Proposals closer than this are ignored. Each ring paired with each reflection
        proposes a distance; beyond `PROPOSAL_BUDGET` pairs only the strongest rings propose.

    n_best : int
        Number of hypotheses returned (distances at least 3 % apart).
    merge_blends : bool
        Count reflections whose match windows overlap as one predicted ring, for the gain
        and for the penalty: the profile cannot show them apart, so missing one of them is
        no evidence against a distance. Counted per reflection, a dense calibrant's high
        orders (silicon at 110 keV, 300 reflections on the detector; corundum, vanadinite)
        charge the right distance for dozens of unresolvable reflections, and a distance
        that puts the observed rings among fewer predictions scores higher. The blind
        search keeps them apart: there, the penalty for every reflection is what keeps a
        calibrant's long distances, where its rings crowd, from explaining another
        pattern's rings by chance.
    reflections : int, optional
        Reflections matched: the first ones of `tth` (default `first_reflections`).

    Returns
    -------
    list of Assignment
        Best first; empty when no proposal explains two rings or more. Several are returned
        because a second phase with the calibrant's lattice type (austenite under CeO2: both
        face-centred cubic, lattice ratio 1.507) is an exact alias of the ring ratios; only a
        geometry fit, through the nonlinearity of tan 2θ, tells them apart.
    """
    radii = np.asarray(radii, float)
    tth = np.asarray(tth, float)[:reflections or first_reflections(radii.size)]
    order = np.argsort(radii)
    r = radii[order]
    w = np.asarray(weights, float)[order]
    w = w / w.max() if w.max() > 0 else np.ones_like(w)
    tan_tth = np.tan(np.asarray(tth, float))
    # Positive radii first (no distance comes of the others), then the strongest; lexsort is
    # stable, so the inner first among equals.
    first = np.lexsort((-w, r <= 0))
    proposers = r[first[:max(MIN_PROPOSERS, PROPOSAL_BUDGET // max(tan_tth.size, 1))]]
    proposals = (proposers[:, None] / tan_tth[None, :]).ravel()
    proposals = np.unique(proposals[proposals > min_distance_px])
    if proposals.size == 0 or r.size < 2:
        return []
    # Two refinement steps: least-squares distance from each proposal's matched rings.
    for _ in range(2):
        proposals = _least_squares_distances(r, w, tan_tth, proposals, tol_rel, tol_px)[0]
    scores = _scores(r, w, tan_tth, proposals, tol_rel, tol_px, miss_penalty, merge_blends)
    hypotheses = []
    for j in np.argsort(scores)[::-1]:
        dist = proposals[j]
        if any(abs(dist / h.distance_px - 1) < 0.03 for h in hypotheses):
            continue
        k = _match(r, tan_tth, dist, tol_rel, tol_px)
        if np.count_nonzero(k >= 0) < 2:
            continue
        # One observed ring per reflection: the strongest claimant keeps it.
        for kk in np.unique(k[k >= 0]):
            idx = np.nonzero(k == kk)[0]
            if idx.size > 1:
                k[idx[w[idx] < w[idx].max()]] = -1
        ring_index = np.empty_like(k)
        ring_index[order] = k
        hypotheses.append(Assignment(distance_px=float(dist), ring_index=ring_index,
                                     score=float(scores[j])))
        if len(hypotheses) == n_best:
            break
    return hypotheses
