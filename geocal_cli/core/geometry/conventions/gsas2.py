"""GSAS-II image controls: beam centre (mm), distance (mm), tilt and rotation (deg).

GSAS-II's `GSASIIimage.GetTthAzmDsp2` (Toby & Von Dreele, J. Appl. Cryst. 46 (2013) 544,
doi:10.1107/S0021889813003531) takes the pixel at row r, column c of its image array at
x = (c + ½) pixelSize[0], y = (r + ½) pixelSize[1] (µm → mm), and with dx = x − center[0],
dy = y − center[1], L = distance / cos(tilt):

    (a, b, Z) = (dx, dy, 0) · R_z(rotation) · R_x(tilt)          (row vector, GSAS-II's makeMat)
    2θ = atan(√(dx² + dy² − Z²) / (L − Z)),   azm = atan2(dy, dx) + azmthOff.

So `distance` is the perpendicular sample–detector distance (pyFAI's dist) and the point sits
at (a, b) across the beam and L − Z along it. geocal maps (a, b, L − Z) to pyFAI's
(x2, x1, x3) (image x → x2, image y → x1, as pyFAI's orientation 3) and then turns the
laboratory about the beam by azmthOff, which carries the azimuth reference (2θ never depends
on it). GSAS-II has two tilt angles, so a frame whose normal leans elsewhere is first turned
about the beam: that turn becomes azmthOff.
"""

from __future__ import annotations

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame


def _make_mat(angle_deg: float, axis: int) -> np.ndarray:
    """GSAS-II's `makeMat`: rotation by `angle_deg` about axis 0, 1 or 2 (row-vector use)."""
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    m = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])
    return np.roll(np.roll(m, axis, axis=0), axis, axis=1)


def _to_pyfai(v: np.ndarray) -> np.ndarray:
    """(a, b, Z) → (x1, x2, x3) = (b, a, −Z); a proper rotation, its own inverse."""
    return np.array([v[1], v[0], -v[2]])


def _turn(v: np.ndarray, alpha: float) -> np.ndarray:
    """Turn a pyFAI-frame vector about the beam so that its χ grows by `alpha` (radians)."""
    c, s = np.cos(alpha), np.sin(alpha)
    return np.array([c * v[0] + s * v[1], c * v[1] - s * v[0], v[2]])


def frame_from_controls(center_mm, distance_mm: float, tilt_deg: float, rotation_deg: float,
                        pixel_size_um, azm_offset_deg: float = 0.0) -> DetectorFrame:
    """The frame (metres, pyFAI axes) of GSAS-II image controls, for GSAS-II's image array.

    Parameters
    ----------
    center_mm : (x, y)
    distance_mm, tilt_deg, rotation_deg : float
    pixel_size_um : (x, y)
        GSAS-II's pixelSize: along columns, then rows.
    azm_offset_deg : float
        GSAS-II's azmthOff.
    """
    p = _make_mat(rotation_deg, 2) @ _make_mat(tilt_deg, 0)
    sx, sy = pixel_size_um[0] * 1e-3, pixel_size_um[1] * 1e-3
    length = distance_mm / np.cos(np.radians(tilt_deg))
    corner = np.array([0.5 * sx - center_mm[0], 0.5 * sy - center_mm[1], 0.0]) @ p
    alpha = np.radians(azm_offset_deg)
    origin = _turn(_to_pyfai(corner) + [0.0, 0.0, length], alpha)
    e2 = _turn(_to_pyfai(sx * p[0]), alpha)
    e1 = _turn(_to_pyfai(sy * p[1]), alpha)
    return DetectorFrame(origin=origin * 1e-3, e1=e1 * 1e-3, e2=e2 * 1e-3)


def controls_from_frame(frame: DetectorFrame) -> dict:
    """GSAS-II image controls of a frame (for GSAS-II's array); inverse of
    `frame_from_controls`.

    Returns
    -------
    dict
        center (mm, (x, y)), distance (mm), tilt and rotation (deg), pixelSize (µm, (x, y)),
        azmthOff (deg).

    Raises
    ------
    ValueError
        The frame indexes the array mirrored with respect to GSAS-II's convention, or the
        detector is tilted by 90° or more, or the beam misses the plane.
    """
    normal = np.cross(frame.e1, frame.e2)
    if normal[2] <= 0:
        raise ValueError("this geometry indexes the image mirrored with respect to GSAS-II's "
                         "convention (or is tilted by 90° or more)")
    # Turn about the beam so that the normal leans towards −x1 only, as GSAS-II's does for a
    # positive tilt at rotation 0.
    alpha = 0.0
    if np.hypot(normal[0], normal[1]) > 0:
        alpha = float(np.angle(np.exp(1j * (np.arctan2(normal[0], normal[1]) + np.pi / 2))))
    e1, e2 = _turn(frame.e1, -alpha), _turn(frame.e2, -alpha)
    sx, sy = np.linalg.norm(e2), np.linalg.norm(e1)
    u, v = _to_pyfai(e2 / sx), _to_pyfai(e1 / sy)             # rows 0, 1 of R_z R_x
    w = np.cross(u, v)
    tilt = np.arctan2(w[1], w[2])
    rotation = np.arctan2(-u[1] / np.cos(tilt), u[0])
    b1, b2 = frame.beam_center()
    if not np.isfinite(b1):
        raise ValueError("the direct beam never meets the detector plane")
    distance = float(frame.origin @ (normal / np.linalg.norm(normal)))
    return {"center": ((b2 + 0.5) * sx * 1e3, (b1 + 0.5) * sy * 1e3),
            "distance": distance * 1e3, "tilt": float(np.degrees(tilt)),
            "rotation": float(np.degrees(rotation)), "pixelSize": (sx * 1e6, sy * 1e6),
            "azmthOff": float(np.degrees(alpha))}
