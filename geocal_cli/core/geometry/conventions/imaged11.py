"""ImageD11 `.par` geometry: distance, y/z centre, tilt_x/y/z and the o11–o22 flip matrix.

ImageD11's `transform.compute_xyz_lab` (Wright, ImageD11, github.com/FABLE-3DXRD/ImageD11)
places a peak at row r, column c (its `sc`, `fc`) at

    (f0, f1) = O · ((r − z_center) z_size, (c − y_center) y_size),   O = [[o11, o12], [o21, o22]]
    xyz = R_x(tilt_x) R_y(tilt_y) R_z(tilt_z) · (0, f1, f0) + (distance, 0, 0),

with x along the beam and z vertical; its η is atan2(−y, z). pyFAI's axes are then
(x1, x2, x3) = (z, −y, x) (pyFAI's own conversion pairs orientation 3 with o22 = −1 for
the same reason). Centres count pixel centres at integers, like geocal's indices.
"""

from __future__ import annotations

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame

#: Rows: pyFAI's x1, x2, x3 in ImageD11 coordinates (symmetric and its own inverse).
TO_PYFAI = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])

#: ImageD11 flip matrices (o11, o12, o21, o22) that pyFAI pairs with its orientations.
ORIENTATION_FLIPS = {1: (-1, 0, 0, 1), 2: (-1, 0, 0, -1), 3: (1, 0, 0, -1), 4: (1, 0, 0, 1)}


def detector_rotation(tilt_x: float, tilt_y: float, tilt_z: float) -> np.ndarray:
    """ImageD11's `detector_rotation_matrix`: R_x(tilt_x) R_y(tilt_y) R_z(tilt_z), radians,
    shape (3, 3)."""
    cx, sx = np.cos(tilt_x), np.sin(tilt_x)
    cy, sy = np.cos(tilt_y), np.sin(tilt_y)
    cz, sz = np.cos(tilt_z), np.sin(tilt_z)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1.0]])
    ry = np.array([[cy, 0, sy], [0, 1.0, 0], [-sy, 0, cy]])
    rx = np.array([[1.0, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rx @ ry @ rz


def _in_plane(o, z_size: float, y_size: float) -> np.ndarray:
    """Columns: the (y, z) components of one row step and one column step before tilting."""
    o11, o12, o21, o22 = o
    return np.array([[o21 * z_size, o22 * y_size], [o11 * z_size, o12 * y_size]])


def frame_from_par(distance: float, y_center: float, z_center: float, y_size: float,
                   z_size: float, tilt_x: float, tilt_y: float, tilt_z: float,
                   o=(1, 0, 0, -1)) -> DetectorFrame:
    """The frame (pyFAI axes) of ImageD11 parameters.

    Parameters
    ----------
    distance, y_size, z_size : float
        Metres.
    y_center, z_center : float
        Beam centre, column and row index.
    tilt_x, tilt_y, tilt_z : float
        Radians.
    o : (o11, o12, o21, o22)
    """
    r = detector_rotation(tilt_x, tilt_y, tilt_z)
    steps = r[:, 1:] @ _in_plane(o, z_size, y_size)                        # (3, 2)
    origin = np.array([distance, 0.0, 0.0]) - steps @ np.array([z_center, y_center])
    return DetectorFrame(origin=TO_PYFAI @ origin, e1=TO_PYFAI @ steps[:, 0],
                         e2=TO_PYFAI @ steps[:, 1])


def par_from_frame(frame: DetectorFrame, o=(1, 0, 0, -1)) -> dict:
    """ImageD11 parameters of a frame for a given flip matrix; inverse of `frame_from_par`.

    Returns
    -------
    dict
        distance, y_size, z_size (metres), y_center, z_center (pixels), tilt_x, tilt_y,
        tilt_z (radians), o11, o12, o21, o22.

    Raises
    ------
    ValueError
        The flip matrix mirrors the frame (no rotation fits), or the beam misses the plane.
    """
    e1, e2 = TO_PYFAI @ frame.e1, TO_PYFAI @ frame.e2
    z_size, y_size = np.linalg.norm(e1), np.linalg.norm(e2)
    yz = np.column_stack([e1, e2]) @ np.linalg.inv(_in_plane(o, z_size, y_size))
    r = np.column_stack([np.cross(yz[:, 0], yz[:, 1]), yz])
    # A flip matrix that mirrors the frame leaves only a detector turned to face away.
    if r[0, 0] <= 0:
        raise ValueError(f"the flip matrix {tuple(o)} mirrors this geometry (or it is tilted by 90° or more)")
    z_center, y_center = frame.beam_center()
    if not np.isfinite(z_center):
        raise ValueError("the direct beam never meets the detector plane")
    distance = float((TO_PYFAI @ frame.positions(z_center, y_center))[0])
    return {"distance": distance, "y_center": y_center, "z_center": z_center,
            "y_size": float(y_size), "z_size": float(z_size),
            "tilt_x": float(np.arctan2(-r[1, 2], r[2, 2])),
            "tilt_y": float(np.arcsin(np.clip(r[0, 2], -1, 1))),
            "tilt_z": float(np.arctan2(-r[0, 1], r[0, 0])),
            "o11": o[0], "o12": o[1], "o21": o[2], "o22": o[3]}
