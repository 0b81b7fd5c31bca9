"""Which flips of an image does a geometry fit? Calibrant rings sampled on the flipped image.

A geometry converted with the wrong array convention still looks plausible in numbers; on
the image its rings miss the real ones. For each of the eight ways to flip or transpose an
array (those that keep its shape), control points are extracted along 2θ at fixed χ around
the expected rings (`rings.controlpoints.extract_control_points`), and the median distance between
the found maxima and the expected rings, in pixels, tells whether the geometry fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.rings.controlpoints import extract_control_points, prepare_image
from geocal_cli.core.geometry.frame import DetectorFrame

#: The eight flips of an array, as numpy operations (applied in order), by name.
CANDIDATES = {
    "as is": (),
    "ud": ("ud",),
    "lr": ("lr",),
    "ud+lr": ("ud", "lr"),
    "transpose": ("transpose",),
    "transpose+ud": ("transpose", "ud"),
    "transpose+lr": ("transpose", "lr"),
    "transpose+ud+lr": ("transpose", "ud", "lr"),
}
_NUMPY = {"ud": np.flipud, "lr": np.fliplr, "transpose": np.transpose}


@dataclass(frozen=True)
class FlipFit:
    """How well a geometry fits one flip of the image.

    Attributes
    ----------
    name : str
        Key of `CANDIDATES`.
    points : int
        Ring maxima found within the search window.
    median_offset_px : float
        Median distance of those maxima from the expected rings, pixels (NaN without points).
    fits : bool
        Sub-half-pixel median and at least half the points of the best candidate.
    """

    name: str
    points: int
    median_offset_px: float
    fits: bool


def check_flips(image: np.ndarray, valid: np.ndarray, frame: DetectorFrame, tth: np.ndarray,
                half_width_px: float = 6.0, n_chi: int = 180) -> list[FlipFit]:
    """Rate every shape-preserving flip of `image` against the geometry `frame`.

    Parameters
    ----------
    image, valid : ndarray, shape (H, W)
        Counts and the mask of measured pixels.
    frame : DetectorFrame
        The geometry, for the image as it should be.
    tth : ndarray, shape (K,)
        Ring angles, radians (those on the detector).
    half_width_px : float
        Search window on each side of an expected ring, pixels.
    n_chi : int
        Azimuths per ring.

    Returns
    -------
    list of FlipFit
        In `CANDIDATES` order, transpositions only for square images.
    """
    rows = []
    for name, ops in CANDIDATES.items():
        if "transpose" in ops and image.shape[0] != image.shape[1]:
            continue
        img, ok = image, valid
        for op in ops:
            img, ok = _NUMPY[op](img), _NUMPY[op](ok)
        cp = extract_control_points(prepare_image(np.ascontiguousarray(img), np.ascontiguousarray(ok)),
                                    frame, tth, np.full(tth.size, half_width_px), n_chi=n_chi)
        if len(cp):
            t, g1, g2 = frame.tth_and_grad(cp.d1, cp.d2)
            offset = np.abs(t - tth[cp.ring]) / np.hypot(g1, g2)
            rows.append((name, len(cp), float(np.median(offset))))
        else:
            rows.append((name, 0, float("nan")))
    best = max(r[1] for r in rows)
    return [FlipFit(n, p, m, bool(p > 0 and p >= 0.5 * best and m < 0.5)) for n, p, m in rows]
