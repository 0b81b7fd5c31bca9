"""Distances between geometries, measured where it matters: on the rings."""

from __future__ import annotations

import numpy as np

from geocal_cli.core.geometry.frame import frame_of


def ring_position_error(geometry, reference, tth: np.ndarray, shape: tuple[int, int],
                        n_chi: int = 720, valid: np.ndarray | None = None, field=None,
                        reference_field=None) -> float:
    """Rms distance in pixels between rings drawn with two geometries, over the detector.

    Points are placed on each ring of the reference geometry (every 2π/n_chi in χ, only where
    they fall on the detector and, if given, on valid pixels); for each point, the 2θ that
    `geometry` assigns to it is compared with the ring's 2θ and converted to a distance with
    `geometry`'s local |∇2θ|. With distortion fields, the comparison is made where the rings
    fall on the raw pixels: a reference point is taken to its raw pixel through
    `reference_field`, and from there to `geometry`'s ideal pixels through `field`.

    Parameters
    ----------
    geometry, reference : pyFAI.geometry.Geometry
        Same detector shape.
    tth : ndarray, shape (K,)
        Ring angles in radians (the same rings for both; the wavelength is not used).
    shape : (H, W)
    n_chi : int
    valid : ndarray of bool, shape (H, W), optional
    field, reference_field : geocal_cli.core.geometry.displacement.Field, optional
        The detector distortion each geometry goes with (None: an undistorted detector).

    Returns
    -------
    float
        Rms distance in pixels; NaN when no ring crosses the detector.
    """
    ref = frame_of(reference)
    fr = frame_of(geometry)
    chi = np.linspace(-np.pi, np.pi, n_chi, endpoint=False)
    # Rings off the detector first: a dense calibrant's full list (LaB6, 1441 rings) drawn
    # at every azimuth took 100 MB for the few dozen rings a detector holds.
    # 2θ changes by at most 1/L per pixel (L the distance in pixels): a margin of that keeps
    # the rings that reach only the border pixels' outer halves.
    lo, hi = ref.tth_range(shape)
    margin = 1.0 / ref.distance_px
    tth = np.asarray(tth, float)
    tth = tth[(tth >= lo - margin) & (tth <= hi + margin)]
    t = tth[:, None] + 0 * chi[None, :]
    d1, d2 = ref.pixel_at(t, chi[None, :])
    h, w = shape
    on = np.isfinite(d1) & (d1 >= -0.5) & (d1 <= h - 0.5) & (d2 >= -0.5) & (d2 <= w - 0.5)
    if valid is not None:
        i1 = np.clip(np.round(np.nan_to_num(d1)).astype(int), 0, h - 1)
        i2 = np.clip(np.round(np.nan_to_num(d2)).astype(int), 0, w - 1)
        on &= valid[i1, i2]
    if not on.any():
        return float("nan")
    d1, d2, t = d1[on], d2[on], t[on]
    if reference_field is not None:
        d1, d2 = (c - 0.5 for c in reference_field.raw_position(d1 + 0.5, d2 + 0.5))
    if field is not None:
        dy, dx = field.at(d1 + 0.5, d2 + 0.5)
        d1, d2 = d1 + dy, d2 + dx
    mine = fr.tth(d1, d2)
    dist = (mine - t) / fr.tth_gradient(d1, d2)
    return float(np.sqrt(np.mean(dist**2)))
