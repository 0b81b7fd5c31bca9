"""The image integrated under a fitted geometry: the check a user otherwise makes by hand.

Every valid pixel's 2θ and χ come from the model's `DetectorFrame` (pyFAI's tilted-detector
geometry, or the electron model's stretched frame, which pyFAI cannot express); the mean
intensity in bins of 2θ is the 1D pattern and in bins of 2θ × χ the cake, as pyFAI's
`integrate1d` / `integrate2d` without pixel splitting or solid-angle correction (the tests
compare the 1D pattern with pyFAI's). With the right geometry and calibrant, the calibrant's
ring positions sit on the pattern's peaks and the cake's rings are straight lines; a wrong
distance, wavelength or calibrant shows as peaks beside the ticks, a wrong centre or tilt as
wavy cake lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame
from geocal_cli.core.rings.seen import rolling_background

#: Most azimuthal bins of the cake (1° each); a small detector gets fewer, about one per
#: four pixels of its larger side, so that the cake's inner bins are not mostly empty.
N_CHI = 360
#: Most 2θ bins: about one per pixel of radius on a large detector.
MAX_TTH_BINS = 2000
#: Width of the background's clipping window, as a fraction of the pattern's 2θ range: wider
#: than a ring (the rings of a pattern are a few bins wide whatever its range).
BACKGROUND_WINDOW = 0.05
#: Pixels per block of rows: bounds the memory of the per-pixel coordinates.
BLOCK_PIXELS = 2**20


@dataclass(frozen=True)
class Integrated:
    """A 1D pattern and a cake.

    Attributes
    ----------
    tth : ndarray, shape (n,)
        2θ bin centres, radians.
    mean : ndarray, shape (n,)
        Mean intensity of the valid pixels in each 2θ bin; NaN for an empty bin.
    background : ndarray, shape (n,)
        The pattern's smooth background under its peaks (`seen.rolling_background`, windows
        of `BACKGROUND_WINDOW`); NaN where `mean` is.
    chi : ndarray, shape (m,)
        χ bin centres, radians (pyFAI's convention, −π … π).
    cake : ndarray, shape (m, n)
        Mean intensity per (χ, 2θ) bin; NaN where empty.
    """

    tth: np.ndarray
    mean: np.ndarray
    background: np.ndarray
    chi: np.ndarray
    cake: np.ndarray


def integrate(image: np.ndarray, valid: np.ndarray, frame: DetectorFrame,
              n_chi: int | None = None, max_bins: int = MAX_TTH_BINS) -> Integrated:
    """Integrate an image over azimuth (1D) and into a cake (2D) under a geometry.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Intensities; invalid pixels may hold anything.
    valid : ndarray of bool, shape (H, W)
    frame : DetectorFrame
    n_chi : int, optional
        χ bins of the cake (default: see `N_CHI`).
    max_bins : int
        Most 2θ bins; fewer on a small detector (one per pixel of its larger side).

    Returns
    -------
    Integrated
        2θ bins span 0 … the largest 2θ on the detector (bins beyond the valid pixels stay
        empty); all NaN when no pixel is valid.
    """
    h, w = image.shape
    n_chi = n_chi or int(np.clip(max(h, w) // 4, 36, N_CHI))
    block = max(1, BLOCK_PIXELS // w)
    cols = np.arange(w, dtype=float)[None, :]

    def blocks():
        for start in range(0, h, block):
            rows = np.arange(start, min(start + block, h), dtype=float)[:, None]
            ok = valid[start:start + rows.size]
            tth, chi = frame.tth_chi(rows, cols)
            ok = ok & np.isfinite(tth)
            yield tth[ok], chi[ok], image[start:start + rows.size][ok].astype(float)

    # 2θ grows outward from the beam's foot on the detector plane (its level lines are
    # closed conics around it): its largest value is on the detector's edge, and one pass
    # over the pixels suffices.
    edge1 = np.r_[np.arange(h), np.arange(h), np.zeros(w), np.full(w, h - 1)]
    edge2 = np.r_[np.zeros(h), np.full(h, w - 1), np.arange(w), np.arange(w)]
    edge = frame.tth(edge1, edge2)
    tth_max = float(np.nanmax(edge)) if valid.any() and np.isfinite(edge).any() else 0.0
    n = int(min(max_bins, max(h, w)))
    sums, counts = np.zeros(n_chi * n), np.zeros(n_chi * n)
    if tth_max > 0:
        for tth, chi, v in blocks():
            b = np.minimum((tth / tth_max * n).astype(np.int64), n - 1)
            c = np.clip(((chi + np.pi) / (2 * np.pi) * n_chi).astype(np.int64), 0, n_chi - 1)
            cell = c * n + b
            sums += np.bincount(cell, v, n_chi * n)
            counts += np.bincount(cell, None, n_chi * n)
    sums, counts = sums.reshape(n_chi, n), counts.reshape(n_chi, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums.sum(0) / counts.sum(0)
        cake = sums / counts
    edges = np.linspace(0.0, tth_max, n + 1)
    chi_edges = np.linspace(-np.pi, np.pi, n_chi + 1)
    seen = np.isfinite(mean)
    background = np.full(n, np.nan)
    if seen.sum() > 2:
        window = max(3, int(BACKGROUND_WINDOW * seen.sum()))
        background[seen] = rolling_background(mean[seen], window)
    return Integrated(tth=(edges[:-1] + edges[1:]) / 2, mean=mean, background=background,
                      chi=(chi_edges[:-1] + chi_edges[1:]) / 2, cake=cake)
