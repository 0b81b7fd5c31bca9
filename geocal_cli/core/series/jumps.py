"""Jumps in a series of measured parameters (beam centre, distance, tilt) against acquisition
order.

A beamline series drifts slowly (a beam centre creeping 0.02 px per frame as the optics warm)
and now and then jumps (a refill, a motor move, a knocked detector). Successive differences
separate the two: a drift shifts all of them alike, noise spreads them by the items' 1σ and
the series' own frame-to-frame scatter, a jump is one difference far outside both. A
difference is flagged when it departs from the median difference (the drift) by more than
`k` times the larger of its propagated 1σ and the robust scatter of all differences
(1.4826 × MAD, robust to the jumps themselves; the usual outlier rule, e.g. Rousseeuw &
Croux, J. Am. Stat. Assoc. 88 (1993) 1273, doi:10.1080/01621459.1993.10476408).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Departures beyond this many σ are jumps (5σ: one false alarm in ~10⁶ differences).
K_SIGMA = 5.0


@dataclass(frozen=True)
class Jump:
    """A move between two successive items.

    Attributes
    ----------
    index : int
        Position of the item after the move (the move is from `index - 1` to `index`).
    move : float
        The difference, in the parameter's unit, drift included.
    limit : float
        The departure from the drift that would have been accepted.
    """

    index: int
    move: float
    limit: float


def find_jumps(values: np.ndarray, sigma: np.ndarray | None = None, k: float = K_SIGMA) -> list[Jump]:
    """Moves between successive items that the series' drift, scatter and 1σ do not explain.

    Parameters
    ----------
    values : ndarray, shape (n,)
        The parameter in acquisition order; NaN for items without a value (skipped: the
        move is taken between the valid neighbours).
    sigma : ndarray, shape (n,), optional
        1σ of each value (NaN or absent: 0).
    k : float
        Threshold in σ.

    Returns
    -------
    list of Jump
        Empty for fewer than four valid values (no scatter to judge by).
    """
    v = np.asarray(values, float)
    s = np.zeros(v.size) if sigma is None else np.nan_to_num(np.asarray(sigma, float), nan=0.0)
    idx = np.nonzero(np.isfinite(v))[0]
    if idx.size < 4:
        return []
    d = np.diff(v[idx])
    steps = np.diff(idx)                      # > 1 across items without a value
    drift = np.median(d / steps)
    departure = d - drift * steps
    scatter = 1.4826 * np.median(np.abs(departure))
    own = np.hypot(s[idx[1:]], s[idx[:-1]])
    # Rounding is not a jump, even in a noiseless series.
    floor = 1e3 * np.finfo(float).eps * max(np.abs(v[idx]).max(), 1.0)
    limit = np.maximum(k * np.maximum(own, scatter), floor)
    out = np.abs(departure) > limit
    return [Jump(index=int(idx[i + 1]), move=float(d[i]), limit=float(limit[i]))
            for i in np.nonzero(out)[0]]
