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
    pred = dist * tan_tth
    k = np.searchsorted(pred, radii)
    k = np.clip(k, 1, pred.size - 1) if pred.size > 1 else np.zeros_like(k)
    if pred.size > 1:
        left = np.abs(radii - pred[k - 1])
        right = np.abs(radii - pred[k])
        k = np.where(left < right, k - 1, k)
    err = np.abs(radii - pred[k])
    ok = err <= tol_rel * radii + tol_px
    return np.where(ok, k, -1), err


def assign_rings(radii: np.ndarray, weights: np.ndarray, tth: np.ndarray, tol_rel: float = 0.006,
                 tol_px: float = 1.5, miss_penalty: float = 0.5,
                 min_distance_px: float = 10.0, n_best: int = 3) -> list[Assignment]:
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
        Proposals closer than this are ignored.

    n_best : int
        Number of hypotheses returned (distances at least 3 % apart).

    Returns
    -------
    list of Assignment
        Best first; empty when no proposal explains two rings or more. Several are returned
        because a second phase with the calibrant's lattice type (austenite under CeO2: both
        face-centred cubic, lattice ratio 1.507) is an exact alias of the ring ratios; only a
        geometry fit, through the nonlinearity of tan 2θ, tells them apart.
    """
    radii = np.asarray(radii, float)
    order = np.argsort(radii)
    r = radii[order]
    w = np.asarray(weights, float)[order]
    w = w / w.max() if w.max() > 0 else np.ones_like(w)
    tan_tth = np.tan(np.asarray(tth, float))
    proposals = (r[:, None] / tan_tth[None, :]).ravel()
    proposals = np.unique(proposals[proposals > min_distance_px])
    if proposals.size == 0 or r.size < 2:
        return []
    rmin, rmax = r.min(), r.max()
    scores = np.empty(proposals.size)
    for j, dist in enumerate(proposals):
        # A refinement step: least-squares distance from the matched rings.
        for _ in range(2):
            k, _ = _match(r, tan_tth, dist, tol_rel, tol_px)
            m = k >= 0
            if m.sum() >= 1:
                tk = tan_tth[k[m]]
                dist = float(np.sum(w[m] * r[m] * tk) / np.sum(w[m] * tk * tk))
        proposals[j] = dist
        k, _ = _match(r, tan_tth, dist, tol_rel, tol_px)
        matched = np.unique(k[k >= 0])
        pred = dist * tan_tth
        inside = np.nonzero((pred >= rmin * 0.98) & (pred <= rmax * 1.02))[0]
        missing = np.setdiff1d(inside, matched).size
        # Two observed rings claiming one reflection: only one counts.
        gain = sum(w[k == kk].max() + 0.5 for kk in matched)
        scores[j] = gain - miss_penalty * missing
    hypotheses = []
    for j in np.argsort(scores)[::-1]:
        dist = proposals[j]
        if any(abs(dist / h.distance_px - 1) < 0.03 for h in hypotheses):
            continue
        k, _ = _match(r, tan_tth, dist, tol_rel, tol_px)
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
