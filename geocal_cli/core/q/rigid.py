"""Small rigid moves of a flat detector, and the wavelength: the parameters a q residual is
explained by (`diagnosis.explain`), common to powder control points and DIALS reflections.

The detector moves about the point where the beam meets it (the beam centre), so each
parameter has one meaning whatever the program's convention: distance along the detector
normal (away from the sample is +), the beam centre along the image columns (x) and rows (y)
in pixels, tilts about the fast and the slow axis and the turn about the normal through the
beam centre in degrees, and the wavelength in %. A beam-centre error of +δ px means the
beam hits the detector δ px further along the axis than the geometry says, so the detector
moves by −δ px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.q.diagnosis import Parameter
from geocal_cli.core.q.prediction import rotation_about

PARAMETERS = (Parameter("distance", "distance", "mm"), Parameter("centre_x", "centre", "px"),
              Parameter("centre_y", "centre", "px"), Parameter("tilt_about_fast", "tilt", "deg"),
              Parameter("tilt_about_slow", "tilt", "deg"),
              Parameter("rotation_about_normal", "detector rotation", "deg"),
              Parameter("wavelength", "wavelength", "%"))
#: Central-difference steps, in the parameters' units.
STEPS = np.array([0.01, 0.01, 0.01, 1e-3, 1e-3, 1e-3, 1e-4])


@dataclass(frozen=True)
class DetectorAxes:
    """A flat detector's axes and beam centre, in the laboratory frame of its positions.

    Attributes
    ----------
    fast, slow : ndarray, shape (3,)
        Unit vectors along image columns and rows.
    normal : ndarray, shape (3,)
        Unit normal pointing away from the sample.
    pivot : ndarray, shape (3,)
        Where the beam meets the detector plane (position units).
    pixel : (fast, slow)
        Pixel size in position units.
    mm : float
        Position units per mm (1 for mm, 1e-3 for m).
    """

    fast: np.ndarray
    slow: np.ndarray
    normal: np.ndarray
    pivot: np.ndarray
    pixel: tuple
    mm: float

    @classmethod
    def of(cls, fast, slow, corner, beam, pixel, mm: float) -> "DetectorAxes":
        """Axes of the plane through `corner` (3,) spanned by unit `fast` and `slow`, with the
        beam along `beam` (3,) from the sample at the origin."""
        fast, slow, corner, beam = (np.asarray(v, float) for v in (fast, slow, corner, beam))
        normal = np.cross(fast, slow)
        normal = normal / np.linalg.norm(normal) * np.sign(normal @ corner)
        u = beam / np.linalg.norm(beam)
        return cls(fast, slow, normal, u * (normal @ corner) / (normal @ u), tuple(pixel), mm)

    def move(self, lab: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Positions (n, 3) after the move `p` (the first six PARAMETERS, their units)."""
        rot = (rotation_about(self.fast, np.radians(p[3])) @ rotation_about(self.slow, np.radians(p[4]))
               @ rotation_about(self.normal, np.radians(p[5])))
        shift = (p[0] * self.mm * self.normal - p[1] * self.pixel[0] * self.fast
                 - p[2] * self.pixel[1] * self.slow)
        return self.pivot + (lab - self.pivot) @ rot.T + shift


def jacobian(residual, steps: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of a residual function.

    Parameters
    ----------
    residual : callable(p) -> ndarray, shape (n,) or (n, k)
        Residuals for parameter offsets p, shape (len(steps),).
    steps : ndarray, shape (p,)

    Returns
    -------
    ndarray, shape (n·k, p)
    """
    cols = []
    for j, h in enumerate(steps):
        step = np.zeros(len(steps))
        step[j] = h
        cols.append(((residual(step) - residual(-step)) / (2 * h)).ravel())
    return np.stack(cols, 1)
