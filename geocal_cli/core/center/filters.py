"""Image filters shared by the centring methods."""

from __future__ import annotations

import numpy as np


def subtract_local_mean(img: np.ndarray, ok: np.ndarray, size: int) -> np.ndarray:
    """Image minus the mean of its valid pixels in a `size` × `size` window; 0 where invalid.

    Parameters
    ----------
    img : ndarray, shape (H, W)
    ok : ndarray of bool, shape (H, W)
        Valid pixels: only these enter the local means.
    size : int
        Window width, pixels.

    Returns
    -------
    ndarray of float32, shape (H, W)
        A band-pass: structure narrower than the window stays, smooth background goes.
    """
    from scipy import ndimage

    w = ok.astype(np.float32)
    num = ndimage.uniform_filter(img * w, size)
    den = ndimage.uniform_filter(w, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok & (den > 0), img - num / den, 0.0).astype(np.float32)
