"""Detector displacement fields in pyFAI's convention, and their gauge.

pyFAI places the corner of pixel (i, j) (corner coordinates: row y = i, column x = j; a pixel
centre is at i + 0.5) at the physical position (y + dy, x + dx) × pixel size (pyFAI
`Detector.set_dx` / `set_dy`, the arrays of its NeXus detector files and Fit2D splines): the
field maps raw image coordinates to where that point really is on an ideal, regular detector.

A field measured with a grid is only known up to the grid's own placement and the detector's
pixel sizes: a translation, a rotation and a scale along each axis of the field look exactly
like a grid moved, turned or of another pitch. `gauge_part` is that 5-parameter part (the
"gauge"); geocal's fields carry none of it, so that the pixel sizes written with them are the
detector's mean pixel sizes and the field is what no choice of the ideal grid can remove.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Field:
    """A displacement field sampled at the pixel corners.

    Attributes
    ----------
    dy, dx : ndarray, shape (H + 1, W + 1)
        Displacement of each pixel corner along rows (y) and columns (x), pixels.
    """

    dy: np.ndarray
    dx: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (H, W)."""
        return (self.dy.shape[0] - 1, self.dy.shape[1] - 1)

    def at(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear interpolation between corners, as pyFAI does, at corner coordinates.

        Parameters
        ----------
        y, x : ndarray, same shape
            Corner coordinates (pixel centres at i + 0.5); clipped to the detector.

        Returns
        -------
        dy, dx : ndarray, shape of `y`
        """
        from scipy.ndimage import map_coordinates

        h, w = self.shape
        pts = np.stack([np.clip(y, 0, h), np.clip(x, 0, w)])
        return (map_coordinates(self.dy, pts, order=1),
                map_coordinates(self.dx, pts, order=1))

    def raw_position(self, y: np.ndarray, x: np.ndarray, n_iter: int = 8
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Raw image coordinates r whose true position r + d(r) is (y, x).

        Fixed-point iteration r ← (y, x) − d(r); it converges while |∇d| ≪ 1, which holds for
        detector distortions (a few pixels over hundreds).

        Parameters
        ----------
        y, x : ndarray, same shape
            True (ideal) positions, corner coordinates.
        n_iter : int

        Returns
        -------
        y, x : ndarray
        """
        ry, rx = np.asarray(y, float), np.asarray(x, float)
        for _ in range(n_iter):
            dy, dx = self.at(ry, rx)
            ry, rx = y - dy, x - dx
        return ry, rx

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """The field at the pixel centres (mean of the four corners), shape (H, W) each."""
        def mean4(a):
            return 0.25 * (a[:-1, :-1] + a[1:, :-1] + a[:-1, 1:] + a[1:, 1:])
        return mean4(self.dy), mean4(self.dx)

    def norm(self) -> np.ndarray:
        """|d| at the corners, shape (H + 1, W + 1), pixels."""
        return np.hypot(self.dy, self.dx)


def gauge_basis(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The five gauge fields at points: shifts along y and x, a rotation about the points'
    centre and a scale along each axis.

    Parameters
    ----------
    y, x : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (2n, 5)
        Columns are the fields stacked as (dy of all points, then dx of all points).
    """
    yc, xc = y - y.mean(), x - x.mean()
    zero, one = np.zeros_like(y), np.ones_like(y)
    cols = [(one, zero), (zero, one), (xc, -yc), (yc, zero), (zero, xc)]
    return np.stack([np.concatenate(c) for c in cols], axis=1)


def gauge_part(y: np.ndarray, x: np.ndarray, dy: np.ndarray, dx: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares translation + rotation + per-axis scale part of a field at points.

    Parameters
    ----------
    y, x : ndarray, shape (n,)
        Where the field is known (corner coordinates).
    dy, dx : ndarray, shape (n,)

    Returns
    -------
    gy, gx : ndarray, shape (n,)
        The gauge part of the field at the points (subtract it to remove the gauge).
    coef : ndarray, shape (5,)
        Shift y, shift x (px), rotation (rad), scale y, scale x (relative).
    """
    basis = gauge_basis(y, x)
    coef = np.linalg.lstsq(basis, np.concatenate([dy, dx]), rcond=None)[0]
    g = basis @ coef
    return g[:y.size], g[y.size:], coef


def gauge_free_difference(dy: np.ndarray, dx: np.ndarray, where: np.ndarray,
                          every: int = 4) -> np.ndarray:
    """|difference| between two fields at pixel centres, the gauge part of the difference
    removed: how two measurements of one distortion disagree beyond what no grid can tell.

    Parameters
    ----------
    dy, dx : ndarray, shape (H, W)
        Difference of the two fields at the pixel centres.
    where : ndarray of bool, shape (H, W)
        Pixels compared.
    every : int
        Compare every `every`-th pixel along both axes.

    Returns
    -------
    ndarray, shape (n,)
        Pixels.
    """
    sel = np.zeros(where.shape, bool)
    sel[::every, ::every] = where[::every, ::every]
    y, x = (i + 0.5 for i in np.nonzero(sel))
    ey, ex = dy[sel], dx[sel]
    gy, gx, _ = gauge_part(y, x, ey, ex)
    return np.hypot(ey - gy, ex - gx)


def corner_grid(shape: tuple[int, int], step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Corner coordinates (y, x) of an image, every `step` pixels plus the far edges.

    Returns
    -------
    y, x : ndarray, shape (ny,), (nx,)
    """
    def axis(n):
        a = np.arange(0, n + 1, step, dtype=float)
        return a if a[-1] == n else np.append(a, float(n))
    return axis(shape[0]), axis(shape[1])
