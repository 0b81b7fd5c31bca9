"""xrayutilities area-detector parameters, as cdiutils keeps them in `det_calib_params`.

xrayutilities' `QConversion.init_area` and its C kernel `ang2q_conversion_area`
(Kriegner et al., J. Appl. Cryst. 46 (2013) 1162, doi:10.1107/S0021889813017214) place
pixel (i1, i2), with all detector circles at zero, at

    D(detrot) · (distance r̂ + (i1 − cch1) T p1 + (i2 − cch2) T p2),

r̂ the primary beam, p_k = pwidth_k times the unit axis named by detectorDir_k ('z-', 'y+', …),
T = `rotation_arb(tilt, a)` about a = cos(tiltazimuth + 90°) p̂1 + sin(tiltazimuth + 90°) p̂2,
and D a right-handed rotation about r̂ (the extra detector circle init_area adds for detrot).
Angles are degrees; `distance` and `pwidth` share whatever length unit the user chose
(cdiutils uses metres). (cch1, cch2) is the pixel on the primary beam, `distance` the
sample–beam-centre distance along the beam.

cdiutils works in xrayutilities' frame with the beam along +x and z vertical (its CXI axes
x, y, z become y, z, x); pyFAI's axes are then (x1, x2, x3) = (z, −y, x).
"""

from __future__ import annotations

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame

#: Rows: pyFAI's x1, x2, x3 in xrayutilities coordinates (beam along +x, z up).
TO_PYFAI = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
BEAM = np.array([1.0, 0.0, 0.0])
_AXES = {"x": 0, "y": 1, "z": 2}


def axis_vector(name: str) -> np.ndarray:
    """'z-' → (0, 0, −1).

    Raises
    ------
    ValueError
        Not one of x, y, z followed by + or −.
    """
    if len(name) != 2 or name[0] not in _AXES or name[1] not in "+-":
        raise ValueError(f"detector direction {name!r}: expected x, y or z followed by + or -")
    v = np.zeros(3)
    v[_AXES[name[0]]] = 1.0 if name[1] == "+" else -1.0
    return v


def _rotation_arb(angle: float, e: np.ndarray) -> np.ndarray:
    """xrayutilities' `rotation_arb`: cos(I − eeᵀ) + eeᵀ + sin·K, K's rows e × x̂, e × ŷ, e × ẑ."""
    k = np.cross(e, np.eye(3))
    return np.cos(angle) * (np.eye(3) - np.outer(e, e)) + np.outer(e, e) + np.sin(angle) * k


def _about_beam(angle: float) -> np.ndarray:
    """Right-handed rotation about +x (xrayutilities' `rotation_xp`)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def frame_from_params(distance: float, cch1: float, cch2: float, pwidth1: float, pwidth2: float,
                      tilt: float = 0.0, tiltazimuth: float = 0.0, detrot: float = 0.0,
                      dir1: str = "z-", dir2: str = "y+") -> DetectorFrame:
    """The frame (pyFAI axes, the unit of `distance`) of xrayutilities area parameters.

    Parameters
    ----------
    distance, pwidth1, pwidth2 : float
        Same length unit.
    cch1, cch2 : float
        Beam pixel along detectorDir1 (rows) and detectorDir2 (columns).
    tilt, tiltazimuth, detrot : float
        Degrees.
    dir1, dir2 : str
        detectorDir1, detectorDir2 in xrayutilities' frame (perpendicular to the beam).
    """
    u1, u2 = axis_vector(dir1), axis_vector(dir2)
    axis = (np.cos(np.radians(tiltazimuth) + np.pi / 2) * u1
            + np.sin(np.radians(tiltazimuth) + np.pi / 2) * u2)
    rot = _about_beam(np.radians(detrot)) @ _rotation_arb(np.radians(tilt), axis)
    e1, e2 = rot @ u1 * pwidth1, rot @ u2 * pwidth2
    origin = distance * BEAM - cch1 * e1 - cch2 * e2
    return DetectorFrame(origin=TO_PYFAI @ origin, e1=TO_PYFAI @ e1, e2=TO_PYFAI @ e2)


def _nearest_axis(v: np.ndarray) -> str:
    k = int(np.argmax(np.abs(v[1:]))) + 1                 # y or z: perpendicular to the beam
    return "xyz"[k] + ("+" if v[k] > 0 else "-")


def params_from_frame(frame: DetectorFrame) -> dict:
    """xrayutilities parameters of a frame; inverse of `frame_from_params`. detectorDir1 is
    the axis nearest the row direction, detectorDir2 the perpendicular one that keeps the
    tilt below 90°.

    Returns
    -------
    dict
        distance, pwidth1, pwidth2 (frame units), cch1, cch2 (pixels), tilt, tiltazimuth,
        detrot (degrees), dir1, dir2.

    Raises
    ------
    ValueError
        The direct beam never meets the detector plane.
    """
    e1, e2 = TO_PYFAI @ frame.e1, TO_PYFAI @ frame.e2
    pw1, pw2 = np.linalg.norm(e1), np.linalg.norm(e2)
    f1, f2 = e1 / pw1, e2 / pw2
    dir1 = _nearest_axis(f1)
    u1 = axis_vector(dir1)
    u2 = np.cross(BEAM, u1) * np.sign(np.cross(f1, f2) @ BEAM or 1.0)
    dir2 = _nearest_axis(u2)
    g = np.column_stack([f1, f2, np.cross(f1, f2)]) @ np.column_stack([u1, u2, np.cross(u1, u2)]).T
    # g = D(detrot) T(tilt about a ⊥ beam): T⁻¹ r̂ = gᵀ r̂ fixes tilt and a, then D = g T⁻¹.
    m = g.T @ BEAM
    tilt = np.arccos(np.clip(m @ BEAM, -1, 1))
    if np.sin(tilt) > 1e-15:
        # a ⊥ r̂ and ⊥ the lean of m; of its two signs, the one that reproduces m.
        a = np.cross(m - np.cos(tilt) * BEAM, BEAM)
        a /= np.linalg.norm(a)
        if not np.allclose(_rotation_arb(tilt, a).T @ BEAM, m, atol=1e-12):
            a = -a
    else:
        tilt, a = 0.0, u2
    tiltazimuth = np.arctan2(a @ u2, a @ u1) - np.pi / 2
    d = g @ _rotation_arb(tilt, a).T
    detrot = np.arctan2(d[2, 1], d[1, 1])
    b1, b2 = frame.beam_center()
    if not np.isfinite(b1):
        raise ValueError("the direct beam never meets the detector plane")
    distance = float(np.linalg.norm(frame.positions(b1, b2)))
    return {"distance": distance, "cch1": b1, "cch2": b2, "pwidth1": float(pw1),
            "pwidth2": float(pw2), "tilt": float(np.degrees(tilt)),
            "tiltazimuth": float(np.degrees(np.angle(np.exp(1j * tiltazimuth)))),
            "detrot": float(np.degrees(detrot)), "dir1": dir1, "dir2": dir2}
