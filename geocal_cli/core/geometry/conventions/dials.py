"""DIALS/dxtbx panels: origin, fast and slow axes in the DIALS laboratory frame (mm).

dxtbx places the centre of pixel (fast f, slow s) at origin + (f + ½) p_f fast + (s + ½) p_s
slow (Waterman et al., Acta Cryst. D72 (2016) 558, doi:10.1107/S2059798316002187). The beam
`direction` points from the sample to the source, so s0 = −direction / λ; y is vertical.
pyFAI's x3 is the beam (−direction), x1 the vertical orthogonalised against it, and
x2 = x3 × x1 (DIALS' x for the usual beam along −z). Groups of a detector hierarchy hold
their children in a local frame: a child's global origin is group origin + the child's local
origin along the group's fast, slow and normal axes, and its axes turn the same way.
"""

from __future__ import annotations

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame

#: dxtbx's default beam direction (sample → source) and the vertical axis.
DEFAULT_DIRECTION = np.array([0.0, 0.0, 1.0])
_UP = np.array([0.0, 1.0, 0.0])


def lab_basis(direction=DEFAULT_DIRECTION) -> np.ndarray:
    """Rows: pyFAI's x1, x2, x3 expressed in DIALS laboratory coordinates, shape (3, 3).

    Raises
    ------
    ValueError
        The beam is vertical (no azimuth reference).
    """
    x3 = -np.asarray(direction, float)
    x3 = x3 / np.linalg.norm(x3)
    x1 = _UP - (_UP @ x3) * x3
    if np.linalg.norm(x1) < 1e-6:
        raise ValueError("the beam direction is vertical: no azimuth reference")
    x1 /= np.linalg.norm(x1)
    return np.stack([x1, np.cross(x3, x1), x3])


def global_panel(group_frames: list[dict], panel: dict) -> dict:
    """A panel's origin, fast and slow axes in the laboratory frame.

    Parameters
    ----------
    group_frames : list of dict
        The hierarchy groups from the root down to the panel's parent, each with 'origin',
        'fast_axis', 'slow_axis' (as dxtbx writes them, local to their own parent).
    panel : dict
        The panel's 'origin', 'fast_axis', 'slow_axis', local to its parent group.

    Returns
    -------
    dict with 'origin', 'fast_axis', 'slow_axis' : ndarray, shape (3,)
    """
    origin = np.asarray(panel["origin"], float)
    fast = np.asarray(panel["fast_axis"], float)
    slow = np.asarray(panel["slow_axis"], float)
    for g in reversed(group_frames):
        gf = np.asarray(g["fast_axis"], float)
        gs = np.asarray(g["slow_axis"], float)
        rot = np.column_stack([gf, gs, np.cross(gf, gs)])
        origin = np.asarray(g["origin"], float) + rot @ origin
        fast, slow = rot @ fast, rot @ slow
    return {"origin": origin, "fast_axis": fast, "slow_axis": slow}


def frame_from_panel(origin_mm, fast_axis, slow_axis, pixel_size_mm,
                     direction=DEFAULT_DIRECTION) -> DetectorFrame:
    """The frame (metres, pyFAI axes) of a panel given in the laboratory frame.

    Parameters
    ----------
    origin_mm : array_like, shape (3,)
        Corner of the first pixel, mm.
    fast_axis, slow_axis : array_like, shape (3,)
        Unit vectors along the image columns and rows.
    pixel_size_mm : (fast, slow)
    direction : array_like, shape (3,)
        Beam direction, sample → source.
    """
    b = lab_basis(direction)
    fast = np.asarray(fast_axis, float)
    slow = np.asarray(slow_axis, float)
    e2 = fast * pixel_size_mm[0]
    e1 = slow * pixel_size_mm[1]
    corner = np.asarray(origin_mm, float) + 0.5 * (e1 + e2)
    return DetectorFrame(origin=b @ corner * 1e-3, e1=b @ e1 * 1e-3, e2=b @ e2 * 1e-3)


def panel_from_frame(frame: DetectorFrame) -> dict:
    """The dxtbx panel (beam along −z) of a frame: 'origin' (mm), 'fast_axis', 'slow_axis'
    (unit vectors) and 'pixel_size' (fast, slow) in mm; the inverse of `frame_from_panel`."""
    b = lab_basis(DEFAULT_DIRECTION)
    e1 = b.T @ frame.e1 * 1e3
    e2 = b.T @ frame.e2 * 1e3
    p_slow, p_fast = np.linalg.norm(e1), np.linalg.norm(e2)
    origin = b.T @ frame.origin * 1e3 - 0.5 * (e1 + e2)
    return {"origin": origin, "fast_axis": e2 / p_fast, "slow_axis": e1 / p_slow,
            "pixel_size": (p_fast, p_slow)}
