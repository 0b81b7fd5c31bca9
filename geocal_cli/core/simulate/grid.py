"""Synthetic hole-grid images seen through a known detector distortion.

The distortion is the sum of a radial (pincushion > 0 / barrel < 0) term growing as r³ about
the image centre, a smooth Gaussian random field and an affine skew (a shear of the pixel
axes), with its gauge part removed (`geocal_cli.core.geometry.displacement`), so that the nominal pixel
size is the true mean pixel size. Each pixel shows the grid at its physical position
(raw + displacement, pyFAI's convention): holes are discs with soft edges, under uneven
illumination, with missing holes, spurious bright spots, background and Poisson noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.displacement import Field, corner_grid, gauge_part


@dataclass(frozen=True)
class DistortionSpec:
    """A synthetic distortion.

    Attributes
    ----------
    radial_px : float
        Radial displacement at the image corners before the gauge is removed, pixels:
        > 0 pincushion (outwards), < 0 barrel.
    random_px : float
        Rms length of the smooth random displacement, pixels.
    correlation_px : float or None
        Gaussian correlation length of the random field (default: a fifth of the larger
        image side).
    skew_deg : float
        Shear of the pixel axes: x is displaced by tan(skew) (y − y_centre).
    seed : int
    """

    radial_px: float = 0.0
    random_px: float = 0.0
    correlation_px: float | None = None
    skew_deg: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class GridSpec:
    """A hole grid in front of the detector, as the detector would see it undistorted.

    Attributes
    ----------
    pitch_px : (float, float)
        Hole spacing along the grid's two axes, in ideal pixels (pitch / pixel size along
        y and along x).
    angle_deg : float
        Rotation of the grid from the detector's x axis towards y.
    diameter_px : float
        Hole diameter, pixels.
    offset_px : (float, float)
        Position (y, x) of hole (0, 0), corner coordinates; default: the image centre.
    counts : float
        Peak counts of a hole above the background (bright holes).
    background : float
        Counts between holes.
    dark : bool
        Dark dots on a bright field instead of bright holes.
    illumination : float
        Relative fall-off of the illumination from the brightest to the darkest corner
        (0: even).
    missing : float
        Fraction of holes that are missing (blocked).
    spurious : int
        Number of bright spots off the grid (dust, hot clusters).
    poisson : bool
    seed : int
    """

    pitch_px: tuple[float, float] = (100.0, 100.0)
    angle_deg: float = 0.0
    diameter_px: float = 20.0
    offset_px: tuple[float, float] | None = None
    counts: float = 1000.0
    background: float = 20.0
    dark: bool = False
    illumination: float = 0.0
    missing: float = 0.0
    spurious: int = 0
    poisson: bool = True
    seed: int = 0


def synthetic_field(shape: tuple[int, int], spec: DistortionSpec) -> Field:
    """The displacement field of `spec` at the pixel corners, gauge removed.

    Parameters
    ----------
    shape : (H, W)
    spec : DistortionSpec

    Returns
    -------
    Field
    """
    from scipy.interpolate import RectBivariateSpline

    # Smooth fields are built on a coarse corner grid and interpolated by bicubic splines.
    gy, gx = corner_grid(shape, 8)
    y, x = np.meshgrid(gy, gx, indexing="ij")
    yc, xc = shape[0] / 2, shape[1] / 2
    ry, rx = y - yc, x - xc
    dy, dx = np.zeros_like(y), np.zeros_like(y)
    if spec.radial_px:
        k = spec.radial_px / np.hypot(yc, xc) ** 3
        r2 = ry**2 + rx**2
        dy, dx = dy + k * r2 * ry, dx + k * r2 * rx
    if spec.skew_deg:
        dx = dx + np.tan(np.radians(spec.skew_deg)) * ry
    if spec.random_px:
        from scipy.ndimage import gaussian_filter

        corr = spec.correlation_px or max(shape) / 5
        rng = np.random.default_rng(spec.seed)
        noise = rng.standard_normal((2,) + y.shape)
        smooth = np.stack([gaussian_filter(n, corr / 8, mode="reflect") for n in noise])
        smooth *= spec.random_px / np.sqrt(np.mean(np.sum(smooth**2, axis=0)))
        dy, dx = dy + smooth[0], dx + smooth[1]
    g_y, g_x, _ = gauge_part(y.ravel(), x.ravel(), dy.ravel(), dx.ravel())
    dy, dx = dy - g_y.reshape(y.shape), dx - g_x.reshape(y.shape)
    fy, fx = corner_grid(shape)
    return Field(dy=RectBivariateSpline(gy, gx, dy)(fy, fx), dx=RectBivariateSpline(gy, gx, dx)(fy, fx))


def grid_nodes(shape: tuple[int, int], grid: GridSpec, margin: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ideal positions of the grid holes that fall on the image (± margin pixels).

    Returns
    -------
    ij : ndarray of int, shape (n, 2)
        Hole indices along the grid's two axes.
    y, x : ndarray, shape (n,)
        Ideal positions, corner coordinates.
    """
    oy, ox = grid.offset_px if grid.offset_px is not None else (shape[0] / 2, shape[1] / 2)
    a = np.radians(grid.angle_deg)
    reach = int(np.ceil(np.hypot(*shape) / min(grid.pitch_px))) + 1
    i, j = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1), indexing="ij")
    i, j = i.ravel(), j.ravel()
    # Grid axis i runs along x turned by the angle, axis j along y.
    y = oy + grid.pitch_px[0] * (i * np.sin(a) + j * np.cos(a))
    x = ox + grid.pitch_px[1] * (i * np.cos(a) - j * np.sin(a))
    on = (y > -margin) & (y < shape[0] + margin) & (x > -margin) & (x < shape[1] + margin)
    return np.stack([i[on], j[on]], 1), y[on], x[on]


def render_grid_image(shape: tuple[int, int], grid: GridSpec, field: Field | None = None
                      ) -> np.ndarray:
    """Render a hole-grid image through a displacement field.

    Parameters
    ----------
    shape : (H, W)
    grid : GridSpec
    field : Field, optional
        The detector's distortion (pyFAI convention); None for an ideal detector.

    Returns
    -------
    ndarray of int32, shape (H, W)
    """
    rng = np.random.default_rng(grid.seed)
    h, w = shape
    y = np.arange(h, dtype=float)[:, None] + 0.5
    x = np.arange(w, dtype=float)[None, :] + 0.5
    if field is not None:
        cy, cx = field.centres()
        y, x = y + cy, x + cx
    else:
        y, x = np.broadcast_arrays(y, x)
    oy, ox = grid.offset_px if grid.offset_px is not None else (h / 2, w / 2)
    a = np.radians(grid.angle_deg)
    # Fractional hole indices of each pixel's physical position (inverse of `grid_nodes`).
    u, v = (y - oy) / grid.pitch_px[0], (x - ox) / grid.pitch_px[1]
    fi = u * np.sin(a) + v * np.cos(a)
    fj = u * np.cos(a) - v * np.sin(a)
    ni, nj = np.round(fi), np.round(fj)
    # Distance to the nearest hole in pixels, with the pitch of each axis.
    ei, ej = fi - ni, fj - nj
    ry = grid.pitch_px[0] * (ei * np.sin(a) + ej * np.cos(a))
    rx = grid.pitch_px[1] * (ei * np.cos(a) - ej * np.sin(a))
    r = np.hypot(ry, rx)
    from scipy.special import erfc

    radius = grid.diameter_px / 2
    soft = max(0.6, 0.08 * grid.diameter_px)
    holes = 0.5 * erfc((r - radius) / (np.sqrt(2) * soft))
    if grid.missing > 0:
        reach = int(np.ceil(np.hypot(h, w) / min(grid.pitch_px))) + 2
        blocked = rng.random((2 * reach + 1, 2 * reach + 1)) < grid.missing
        holes = holes * ~blocked[ni.astype(int) + reach, nj.astype(int) + reach]
    if grid.spurious:
        py = rng.uniform(0, h, grid.spurious)
        px = rng.uniform(0, w, grid.spurious)
        s = max(1.0, radius / 2)
        for yy, xx in zip(py, px):
            # A handful of spots: the loop is over spots, not pixels.
            holes = holes + 2.0 * np.exp(-0.5 * ((y - yy) ** 2 + (x - xx) ** 2) / s**2)
    light = 1.0 - grid.illumination * (0.6 * (x / w) + 0.4 * (y / h) ** 2)
    if grid.dark:
        img = grid.background + grid.counts * light * (1 - 0.8 * np.clip(holes, 0, 1))
    else:
        img = grid.background + grid.counts * light * holes
    if grid.poisson:
        img = rng.poisson(img).astype(float)
    return np.round(img).astype(np.int32)
