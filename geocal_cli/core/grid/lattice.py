"""Indexing hole-grid spots: lattice indices grown from the least-distorted region.

A global assignment (rounding each spot's coordinates in the mean lattice) breaks once the
distortion reaches a fraction of the pitch. Here the lattice grows from a seed hole whose four
neighbours match the mean lattice best, one shell of neighbours per round: each empty node
next to indexed ones is predicted by extrapolating the local lattice steps of its indexed
neighbours (second differences of a smooth distortion are tiny over one pitch), and takes the
nearest unclaimed spot within a fraction of the pitch. All nodes of a round are handled at
once. Missing holes stay empty and are grown around; spots that no prediction reaches
(dust, hot clusters) stay unindexed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_DIRS = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]])


@dataclass(frozen=True)
class Indexing:
    """Lattice indices of spots.

    Attributes
    ----------
    spot : ndarray of int, shape (m,)
        Index into the spot list of each indexed spot.
    ij : ndarray of int, shape (m, 2)
        Its lattice indices (i along `a`, j along `b`), the seed at (0, 0).
    seed : int
        Spot the growth started from.
    rounds : int
        Growth rounds (≈ the largest lattice distance from the seed).
    """

    spot: np.ndarray
    ij: np.ndarray
    seed: int
    rounds: int


def index_lattice(y: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray,
                  tolerance: float = 0.3) -> Indexing:
    """Give lattice indices to the spots that form a grid.

    Parameters
    ----------
    y, x : ndarray, shape (n,)
        Spot centres, pixels.
    a, b : ndarray, shape (2,)
        Mean lattice vectors (dy, dx), pixels.
    tolerance : float
        Largest distance between a prediction and its spot, in units of the shorter lattice
        vector.

    Returns
    -------
    Indexing
        Empty when no spot has its four neighbours where the lattice puts them.
    """
    from scipy.spatial import cKDTree

    pos = np.stack([y, x], 1)
    n = pos.shape[0]
    step_len = min(np.hypot(*a), np.hypot(*b))
    tol = tolerance * step_len
    tree = cKDTree(pos)
    basis = np.stack([a, b])                                              # (2, 2): rows a, b
    seed = _seed(pos, tree, basis, tol)
    if seed < 0:
        return Indexing(np.zeros(0, int), np.zeros((0, 2), int), -1, 0)
    span = np.ptp(pos, axis=0).max() if n else 0.0
    reach = int(np.ceil(span / step_len)) + 2
    size = 2 * reach + 1
    node = np.full((size, size), -1)
    grid = np.full((size, size, 2), np.nan)
    node[reach, reach] = seed
    grid[reach, reach] = pos[seed]
    taken = np.zeros(n, bool)
    taken[seed] = True
    rounds = 0
    while True:
        rounds += 1
        pred = _predictions(grid, basis)
        empty = node < 0
        cand = empty & np.isfinite(pred[..., 0])
        ci, cj = np.nonzero(cand)
        if ci.size == 0:
            break
        dist, hit = tree.query(pred[ci, cj], distance_upper_bound=tol)
        ok = np.isfinite(dist)
        ci, cj, dist, hit = ci[ok], cj[ok], dist[ok], hit[ok]
        free = ~taken[hit]
        ci, cj, dist, hit = ci[free], cj[free], dist[free], hit[free]
        # One node per spot: the closest prediction wins.
        order = np.argsort(dist)
        _, first = np.unique(hit[order], return_index=True)
        sel = order[first]
        if sel.size == 0:
            break
        node[ci[sel], cj[sel]] = hit[sel]
        grid[ci[sel], cj[sel]] = pos[hit[sel]]
        taken[hit[sel]] = True
    gi, gj = np.nonzero(node >= 0)
    return Indexing(spot=node[gi, gj], ij=np.stack([gi - reach, gj - reach], 1), seed=seed,
                    rounds=rounds)


def _seed(pos: np.ndarray, tree, basis: np.ndarray, tol: float) -> int:
    """The spot whose four neighbours lie closest to the mean lattice, preferring the
    middle of the spot cloud; −1 if no spot has all four."""
    steps = np.concatenate([basis, -basis])                              # (4, 2)
    dist, _ = tree.query(pos[:, None, :] + steps[None], distance_upper_bound=tol)
    full = np.all(np.isfinite(dist), axis=1)
    if not full.any():
        return -1
    mismatch = np.sqrt(np.mean(np.where(np.isfinite(dist), dist, 0) ** 2, axis=1))
    centre = np.median(pos, axis=0)
    spread = np.hypot(*np.ptp(pos, axis=0)) or 1.0
    score = mismatch / tol + np.hypot(*(pos - centre).T) / spread
    return int(np.argmin(np.where(full, score, np.inf)))


def _predictions(grid: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Predicted position of every node from its indexed neighbours, NaN where none.

    From the neighbour p = node − e (e = ±1 along a lattice axis) the prediction is p + s,
    with s the lattice step at p along e: the step to p from p − e when that node is indexed,
    else the mean step along that axis of the indexed nodes around p, else the mean lattice
    vector. Predictions from all four neighbours are averaged.
    """
    total = np.zeros_like(grid)
    count = np.zeros(grid.shape[:2])
    for axis in (0, 1):
        # Forward step along this axis, stored at the node it arrives at.
        forward = grid - _shifted(grid, axis, 1)
        local = _nanmean3(forward)
        fallback = np.where(np.isfinite(local), local, basis[axis])
        for sign in (1, -1):
            # The step at p along +e is forward(p); along −e it is −forward(p + e).
            step = forward if sign > 0 else -_shifted(forward, axis, -1)
            step = np.where(np.isfinite(step), step, sign * fallback)
            pred = _shifted(grid + step, axis, sign)
            have = np.isfinite(pred[..., 0])
            total[have] += pred[have]
            count[have] += 1
    with np.errstate(invalid="ignore"):
        out = total / count[..., None]
    out[count == 0] = np.nan
    return out


def _shifted(a: np.ndarray, axis: int, k: int) -> np.ndarray:
    """`a` moved by k = ±1 nodes along `axis` (out[i] = a[i − k]), NaN where nothing arrives."""
    out = np.full_like(a, np.nan)
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    src[axis] = slice(None, -1) if k > 0 else slice(1, None)
    dst[axis] = slice(1, None) if k > 0 else slice(None, -1)
    out[tuple(dst)] = a[tuple(src)]
    return out


def _nanmean3(a: np.ndarray) -> np.ndarray:
    """Mean over each node's 3 × 3 neighbourhood of the finite entries, NaN where none."""
    finite = np.isfinite(a[..., 0])
    v = np.where(finite[..., None], a, 0.0)
    c = finite.astype(float)
    pad_v = np.pad(v, ((1, 1), (1, 1), (0, 0)))
    pad_c = np.pad(c, 1)
    s = sum(pad_v[1 + di:1 + di + a.shape[0], 1 + dj:1 + dj + a.shape[1]]
            for di in (-1, 0, 1) for dj in (-1, 0, 1))
    k = sum(pad_c[1 + di:1 + di + a.shape[0], 1 + dj:1 + dj + a.shape[1]]
            for di in (-1, 0, 1) for dj in (-1, 0, 1))
    with np.errstate(invalid="ignore"):
        out = s / k[..., None]
    out[k == 0] = np.nan
    return out
