"""Flat-detector geometry helpers built on pyFAI's model.

pyFAI's `Geometry.calc_pos_zyx` places every pixel in the laboratory frame (x1 along the slow
detector axis, x2 along the fast axis, x3 along the beam, sample at the origin) for the six
PONI parameters (dist, poni1, poni2, rot1, rot2, rot3) and the detector orientation. For a flat
detector without spatial distortion this map is affine in the pixel indices, so three calls
give an origin and two axis vectors; everything here (2θ, χ, the inverse map from (2θ, χ) back
to pixels, the beam centre) derives from that frame and therefore follows pyFAI exactly.

Pixel indices (d1, d2) are pyFAI's: d1 along rows (slow, y), d2 along columns (fast, x), with
the centre of pixel i at index i (its physical position is (i + 0.5) · pixel size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def hypot(a, b):
    """√(a² + b²) elementwise, for lengths in pixels or metres: `np.hypot` guards against
    overflow and underflow that such values never reach, and takes 3.5 times longer on
    float64 (the per-pixel radii of a ring profile, the centre searches' radii). It differs
    from `np.hypot` in the last bit, on which the ring-arc search's outcome can hang (with
    it in the frame's 2θ, one robustness case of 300 lost its calibration): the frame's
    own 2θ keeps numpy's."""
    return np.sqrt(a * a + b * b)


#: pyFAI's parameter order for a geometry (GeometryRefinement.PARAM_ORDER without wavelength).
PARAM_NAMES = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")


@dataclass(frozen=True)
class DetectorFrame:
    """Affine map from pixel indices to laboratory positions (metres).

    Attributes
    ----------
    origin : ndarray, shape (3,)
        Position of the centre of pixel (0, 0), as (x1, x2, x3) with x3 along the beam.
    e1, e2 : ndarray, shape (3,)
        Displacement for one pixel step along d1 (rows) and d2 (columns).
    """

    origin: np.ndarray
    e1: np.ndarray
    e2: np.ndarray

    @property
    def normal(self) -> np.ndarray:
        """Unit normal of the detector plane, shape (3,)."""
        n = np.cross(self.e1, self.e2)
        return n / np.linalg.norm(n)

    @property
    def distance_px(self) -> float:
        """Distance from the sample to the detector plane, in pixels (the geometric mean of
        the two pixel sizes)."""
        pixel = np.sqrt(np.linalg.norm(np.cross(self.e1, self.e2)))
        return abs(float(self.origin @ self.normal)) / float(pixel)

    def positions(self, d1, d2) -> np.ndarray:
        """Lab positions of pixel indices, shape (..., 3) for d1, d2 of shape (...)."""
        return np.stack(self.xyz(d1, d2), -1)

    def xyz(self, d1, d2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lab coordinates (x1, x2, x3), metres, of pixel indices d1, d2 (broadcastable),
        as three arrays: no (..., 3) temporary, which dominates for large pixel sets."""
        d1 = np.asarray(d1, dtype=float)
        d2 = np.asarray(d2, dtype=float)
        o, a, b = self.origin, self.e1, self.e2
        return tuple(o[i] + d1 * a[i] + d2 * b[i] for i in range(3))

    def tth_chi(self, d1, d2) -> tuple[np.ndarray, np.ndarray]:
        """Scattering angle 2θ and azimuth χ (radians, pyFAI's convention) at pixel indices."""
        x1, x2, x3 = self.xyz(d1, d2)
        return np.arctan2(np.hypot(x1, x2), x3), np.arctan2(x1, x2)

    def tth(self, d1, d2) -> np.ndarray:
        """Scattering angle 2θ (radians) at pixel indices d1, d2 (broadcastable arrays)."""
        x1, x2, x3 = self.xyz(d1, d2)
        return np.arctan2(np.hypot(x1, x2), x3)

    def tth_range(self, shape: tuple[int, int]) -> tuple[float, float]:
        """Smallest and largest 2θ (radians) over a detector of `shape` (H, W).

        2θ has no local maximum inside a plane and its only minimum is the beam's foot, so
        the extremes lie on the border, or at 0 when the beam falls on the detector.
        """
        h, w = shape
        r, c = np.arange(h, dtype=float), np.arange(w, dtype=float)
        d1 = np.concatenate([r, r, np.zeros(w), np.full(w, h - 1.0)])
        d2 = np.concatenate([np.zeros(h), np.full(h, w - 1.0), c, c])
        t = self.tth(d1, d2)
        bc1, bc2 = self.beam_center()
        inside = 0 <= bc1 <= h - 1 and 0 <= bc2 <= w - 1
        return (0.0 if inside else float(np.min(t))), float(np.max(t))

    def tth_and_grad(self, d1, d2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """2θ and its analytic derivatives ∂2θ/∂d1, ∂2θ/∂d2 (radians per pixel).

        With ρ = |(x1, x2)|, 2θ = atan2(ρ, x3) and dx = e_i per pixel step i, so
        ∂2θ/∂d_i = (x3 (x1 e_i1 + x2 e_i2)/ρ − ρ e_i3) / |x|². Undefined at the beam
        centre itself (ρ = 0), where 2θ has a cone point.
        """
        x1, x2, x3 = self.xyz(d1, d2)
        rho = np.hypot(x1, x2)
        r2 = rho**2 + x3**2
        with np.errstate(invalid="ignore", divide="ignore"):
            grads = [(x3 * (x1 * e[0] + x2 * e[1]) / rho - rho * e[2]) / r2
                     for e in (self.e1, self.e2)]
        return np.arctan2(rho, x3), grads[0], grads[1]

    def pixel_at(self, tth, chi) -> tuple[np.ndarray, np.ndarray]:
        """Pixel indices where the ray of scattering angle 2θ and azimuth χ meets the detector.

        Parameters
        ----------
        tth, chi : array_like
            Radians, broadcastable to a common shape (...).

        Returns
        -------
        d1, d2 : ndarray, shape (...)
            Fractional pixel indices; NaN where the ray misses the detector plane (it runs
            parallel to it or meets it behind the sample).
        """
        tth, chi = np.broadcast_arrays(np.asarray(tth, float), np.asarray(chi, float))
        u = np.stack([np.sin(tth) * np.sin(chi), np.sin(tth) * np.cos(chi), np.cos(tth)], -1)
        n = np.cross(self.e1, self.e2)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (self.origin @ n) / (u @ n)
        s = np.where(s > 0, s, np.nan)
        rel = u * s[..., None] - self.origin
        # Dual basis of (e1, e2) within the detector plane.
        g = np.array([[self.e1 @ self.e1, self.e1 @ self.e2], [self.e1 @ self.e2, self.e2 @ self.e2]])
        ginv = np.linalg.inv(g)
        a = rel @ self.e1
        b = rel @ self.e2
        return ginv[0, 0] * a + ginv[0, 1] * b, ginv[1, 0] * a + ginv[1, 1] * b

    def radial_direction(self, tth, chi) -> tuple[np.ndarray, ...]:
        """Where a ring of 2θ crosses the azimuth χ, and the unit vector of increasing 2θ there.

        Parameters
        ----------
        tth, chi : array_like
            Radians, broadcastable to a common shape (...).

        Returns
        -------
        d1, d2 : ndarray, shape (...)
            Fractional pixel indices (`pixel_at`).
        u1, u2 : ndarray, shape (...)
            Unit vector (rows, columns) along the line of constant χ towards larger 2θ; NaN
            where the ray misses the detector plane.
        """
        tth = np.asarray(tth, float)
        d1, d2 = self.pixel_at(tth, chi)
        e1, e2 = self.pixel_at(tth + 1e-5, chi)
        u1, u2 = e1 - d1, e2 - d2
        norm = np.hypot(u1, u2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return d1, d2, u1 / norm, u2 / norm

    def beam_center(self) -> tuple[float, float]:
        """Pixel indices (d1, d2) of the direct beam (2θ = 0); NaN if it misses the detector.

        The beam (+x3) meets the plane where the position's x1 and x2 vanish: a 2 × 2 solve
        (`pixel_at`'s general ray costs ten times more, and the tilted search asks this at
        every step).
        """
        a = np.array([[self.e1[0], self.e2[0]], [self.e1[1], self.e2[1]]])
        try:
            d = np.linalg.solve(a, -self.origin[:2])
        except np.linalg.LinAlgError:
            return float("nan"), float("nan")
        # The plane must meet the beam downstream of the sample.
        if not self.origin[2] + d[0] * self.e1[2] + d[1] * self.e2[2] > 0:
            return float("nan"), float("nan")
        return float(d[0]), float(d[1])

    def tth_gradient(self, d1, d2) -> np.ndarray:
        """|∇2θ| in radians per pixel at pixel indices (converts Δ2θ to a distance in pixels)."""
        _, g1, g2 = self.tth_and_grad(d1, d2)
        return np.hypot(g1, g2)


def ring_shift_px(frame: DetectorFrame, reference: DetectorFrame, d1, d2) -> np.ndarray:
    """How far the rings `frame` puts at pixels lie from where `reference` puts them, in
    pixels along the radius: (2θ − 2θ_ref) / |∇2θ_ref|.

    Parameters
    ----------
    frame, reference : DetectorFrame
    d1, d2 : array_like, shape (n,)
        Pixel indices.

    Returns
    -------
    ndarray, shape (n,)
        NaN where a ray misses either detector plane.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return (frame.tth(d1, d2) - reference.tth(d1, d2)) / reference.tth_gradient(d1, d2)


def frame_of(geometry, param=None) -> DetectorFrame:
    """The `DetectorFrame` of a pyFAI geometry, optionally for other PONI parameters.

    Parameters
    ----------
    geometry : pyFAI.geometry.Geometry
        Supplies the detector (pixel sizes, orientation) and, when `param` is None, the
        six PONI parameters.
    param : sequence of 6 floats, optional
        (dist, poni1, poni2, rot1, rot2, rot3) in metres and radians.
    """
    if param is None:
        param = [getattr(geometry, n) for n in PARAM_NAMES]
    # The refinements' Jacobians ask for 11 frames each, hundreds of thousands per blind
    # search: pyFAI's part is 16 µs of a frame, so the rest is kept lean.
    x3, x1, x2 = geometry.calc_pos_zyx(d1=_FRAME_D1, d2=_FRAME_D2, param=np.asarray(param, float))
    p = np.array([x1, x2, x3]).reshape(3, 3).T
    return DetectorFrame(origin=p[0], e1=p[1] - p[0], e2=p[2] - p[0])


def _read_only(values) -> np.ndarray:
    a = np.array(values, float)
    a.flags.writeable = False
    return a


#: The three pixels (d1, d2) = (0, 0), (1, 0), (0, 1) that define a frame; read-only, since
#: every call shares them.
_FRAME_D1 = _read_only([0.0, 1.0, 0.0])
_FRAME_D2 = _read_only([0.0, 0.0, 1.0])


def params_from_frame(frame: DetectorFrame, detector, rtol: float = 1e-6) -> np.ndarray:
    """PONI parameters (dist, poni1, poni2, rot1, rot2, rot3) that give `frame` on `detector`;
    the exact inverse of `frame_of`, for every detector orientation.

    The orientation's index flips are read off `frame_of` at zero rotation, which maps pixel
    indices to pyFAI's internal (orientation 3) indices; there pyFAI's position formula
    (`Geometry.calc_pos_zyx`) has columns e1 = pixel1 (c2c3, c2s3, s2) and
    e2 = pixel2 (c3s1s2 − c1s3, c1c3 + s1s2s3, −c2s1), which give the rotations in closed form,
    and the origin's components along e1, e2 and the normal give poni1, poni2 and dist.

    Parameters
    ----------
    frame : DetectorFrame
        Pixel indices (of the image array) to lab positions, metres; beam along +x3.
    detector : pyFAI.detectors.Detector
        Pixel sizes and orientation of the result.
    rtol : float
        Allowed relative mismatch of pixel sizes and of the axes' orthogonality.

    Returns
    -------
    ndarray, shape (6,)
        Metres and radians.

    Raises
    ------
    ValueError
        The frame's pixel steps differ from the detector's pixel sizes, its axes are not
        orthogonal, or the sample lies behind the detector plane.
    """
    pix = np.array([detector.pixel1, detector.pixel2])
    zero = frame_of(make_geometry(detector, 1.0, 0.0, 0.0), [1.0, 0, 0, 0, 0, 0])
    # Internal index i = A d + t (pixel centres at (i + 0.5) pixel in the detector plane).
    a_mat = np.column_stack([zero.e1[:2], zero.e2[:2]]) / pix[:, None]
    t = zero.origin[:2] / pix - 0.5
    a_inv = np.linalg.inv(a_mat)
    axes = np.column_stack([frame.e1, frame.e2]) @ a_inv                     # (3, 2)
    origin = frame.origin - axes @ t
    steps = np.linalg.norm(axes, axis=0)
    if np.any(np.abs(steps / pix - 1) > rtol):
        raise ValueError(f"pixel steps {steps * 1e6} µm differ from the detector's pixel sizes "
                         f"{pix * 1e6} µm")
    u, v = axes[:, 0] / steps[0], axes[:, 1] / steps[1]
    if abs(u @ v) > rtol:
        raise ValueError(f"detector axes are not orthogonal (cos = {u @ v:.2e})")
    w = np.cross(u, v)
    dist = float(origin @ w)
    if dist <= 0:
        raise ValueError("the sample lies behind the detector plane")
    rot2 = np.arcsin(np.clip(u[2], -1, 1))
    rot3 = np.arctan2(u[1], u[0])
    c2, c3, s3 = np.cos(rot2), np.cos(rot3), np.sin(rot3)
    rot1 = np.arctan2(-v[2] / c2, v[1] * c3 - v[0] * s3)
    poni1 = 0.5 * pix[0] - origin @ u
    poni2 = 0.5 * pix[1] - origin @ v
    return np.array([dist, poni1, poni2, rot1, rot2, rot3])


def mean_pixel(detector) -> float:
    """The geometric mean of a pyFAI detector's two pixel sizes, metres: the pixel in which
    distances are counted (`DetectorFrame.distance_px`)."""
    return float(np.sqrt(detector.pixel1 * detector.pixel2))


def make_geometry(detector, dist, poni1, poni2, rot1=0.0, rot2=0.0, rot3=0.0, wavelength=None):
    """A pyFAI `Geometry` for a detector object and PONI parameters (metres, radians)."""
    from pyFAI.geometry import Geometry

    return Geometry(dist=dist, poni1=poni1, poni2=poni2, rot1=rot1, rot2=rot2, rot3=rot3,
                    detector=detector, wavelength=wavelength)


def geometry_from_values(detector, values: dict):
    """A pyFAI `Geometry` from a dict of PONI parameters (m, rad) and, if present, the
    wavelength (m), as refinements keep them."""
    return make_geometry(detector, *[float(values[p]) for p in PARAM_NAMES],
                         wavelength=values.get("wavelength"))


def geometry_params(geometry) -> np.ndarray:
    """The six PONI parameters of a pyFAI geometry as an array, shape (6,)."""
    return np.array([getattr(geometry, n) for n in PARAM_NAMES], float)


def with_params(geometry, param):
    """A copy of a pyFAI geometry with other PONI parameters (shape (6,), m and rad)."""
    return make_geometry(geometry.detector, *[float(v) for v in param], wavelength=geometry.wavelength)


def poni_for_beam_center(geometry, d1: float, d2: float) -> tuple[float, float]:
    """(poni1, poni2) in metres that put the direct beam at pixel indices (d1, d2).

    Keeps dist and the rotations: the PONI is where the detector normal through the sample
    meets the detector, which differs from the beam centre as soon as the detector is tilted.
    """
    p = geometry_params(geometry)
    p[1] = p[2] = 0.0
    bc1, bc2 = frame_of(geometry, p).beam_center()
    # Moving the PONI by δ translates the detector in its own plane: the beam centre moves by
    # -δ / pixel along the same axes, a linear relation we invert with a probe step.
    step = 1e-3
    q = p.copy()
    q[1] += step
    a1, a2 = frame_of(geometry, q).beam_center()
    q = p.copy()
    q[2] += step
    b1, b2 = frame_of(geometry, q).beam_center()
    jac = np.array([[a1 - bc1, b1 - bc1], [a2 - bc2, b2 - bc2]]) / step
    dp = np.linalg.solve(jac, np.array([d1 - bc1, d2 - bc2]))
    return float(dp[0]), float(dp[1])


def beam_frame(x, flat, pixel: float) -> DetectorFrame:
    """The frame of a geometry given by its beam centre, as the blind searches vary it.

    Parameters
    ----------
    x : sequence of 5 float
        Beam centre d1, d2 (pixel indices), distance (pixels), pyFAI's rot1, rot2 (radians).
    flat : pyFAI.geometry.Geometry
        Any geometry of the detector (its orientation and pixels are used).
    pixel : float
        The detector's mean pixel size, metres (`mean_pixel`).

    Returns
    -------
    DetectorFrame
        rot3 = 0; the point of normal incidence is wherever the tilts and the beam centre
        put it.
    """
    b1, b2, dist_px, rot1, rot2 = x
    f = frame_of(flat, [dist_px * pixel, 0.0, 0.0, rot1, rot2, 0.0])
    # An in-plane shift of the detector moves the beam centre, not the plane: the beam (+x3)
    # meets the plane at (0, 0, o·n / n3), n = e1 × e2, and pixel (b1, b2) goes there (in
    # closed form, as the searches ask this at every step).
    (o1, o2, o3), (a1, a2, a3), (c1, c2, c3) = f.origin.tolist(), f.e1.tolist(), f.e2.tolist()
    n3 = a1 * c2 - a2 * c1
    foot = (o1 * (a2 * c3 - a3 * c2) + o2 * (a3 * c1 - a1 * c3)) / n3 + o3
    return DetectorFrame(np.array([0.0, 0.0, foot]) - b1 * f.e1 - b2 * f.e2, f.e1, f.e2)


def with_distance_scaled(detector, values: dict, ratio: float) -> dict:
    """PONI values (`geometry_from_values`' dict) with the distance times `ratio` and the
    beam centre and tilts kept: the start at which a ring of radius r appears at r × ratio
    (for small 2θ) under the same beam. Where the beam misses the detector's plane, the
    PONI is kept instead."""
    geometry = geometry_from_values(detector, values)
    c1, c2 = frame_of(geometry).beam_center()
    out = {**values, "dist": values["dist"] * ratio}
    if np.isfinite(c1) and np.isfinite(c2):
        out["poni1"], out["poni2"] = poni_for_beam_center(geometry_from_values(detector, out),
                                                          c1, c2)
    return out


def stretch_matrix(ellipticity) -> np.ndarray:
    """Distortion matrix in (d1, d2) pixel indices for ellipticity (e_c, e_s), shape (2, 2).

    In (x, y) = (d2, d1) the matrix is I + [[e_c, e_s], [e_s, −e_c]]: axis ratio
    (1 + e)/(1 − e) with e = |(e_c, e_s)|, major axis at ½·atan2(e_s, e_c) from +x towards +y.
    """
    ec, es = ellipticity
    return np.array([[1.0 - ec, es], [es, 1.0 + ec]])


def ellipse_of(ellipticity) -> tuple[float, float]:
    """(axis ratio ≥ 1, major-axis angle in degrees from +x towards +y, in [0, 180)) of an
    ellipticity (e_c, e_s); inverse of `ellipticity_of`."""
    e = float(np.hypot(*ellipticity))
    return (1 + e) / (1 - e), float(np.degrees(0.5 * np.arctan2(ellipticity[1], ellipticity[0])) % 180)


def ellipticity_of(axis_ratio: float, angle_deg: float) -> np.ndarray:
    """(e_c, e_s), shape (2,), of rings with this axis ratio (≥ 1) and major-axis angle
    (degrees from +x towards +y)."""
    e = (axis_ratio - 1) / (axis_ratio + 1)
    a = np.radians(2 * angle_deg)
    return np.array([e * np.cos(a), e * np.sin(a)])


def moved_frame(frame: DetectorFrame, shift, ellipticity=(0.0, 0.0)) -> DetectorFrame:
    """The frame of `frame`'s pattern moved by `shift` and stretched about its new beam centre.

    Parameters
    ----------
    frame : DetectorFrame
        Reference geometry.
    shift : sequence of 2 floats
        Beam-centre shift (Δd1, Δd2), pixels.
    ellipticity : sequence of 2 floats
        (e_c, e_s) of `stretch_matrix`; (0, 0) for none.

    Raises
    ------
    ValueError
        The reference's direct beam never meets the detector plane.

    Returns
    -------
    DetectorFrame
        A pixel p of the new frame sees what the reference saw at b_ref + M⁻¹(p − b), b the
        new beam centre: an affine map, so the result is again a flat-detector frame.
    """
    b_ref = np.array(frame.beam_center())
    if not np.all(np.isfinite(b_ref)):
        raise ValueError("the reference geometry's direct beam never meets the detector plane")
    b = b_ref + np.asarray(shift, float)
    minv = np.linalg.inv(stretch_matrix(ellipticity))
    axes = np.stack([frame.e1, frame.e2])                                    # (2, 3)
    origin = frame.origin + (b_ref - minv @ b) @ axes
    e1, e2 = minv.T @ axes
    return DetectorFrame(origin=origin, e1=e1, e2=e2)
