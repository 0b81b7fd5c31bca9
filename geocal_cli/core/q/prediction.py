"""Reciprocal-lattice vectors, stills prediction and panel rays in DIALS' laboratory frame.

Units and conventions are DIALS' (Waterman et al., Acta Cryst. D72 (2016) 558,
doi:10.1107/S2059798316002187): lengths in mm, wavelengths in Å, |s0| = |s1| = 1/λ (no 2π),
q = s1 − s0. A crystal's setting matrix A = U B has the reciprocal basis a*, b*, c* as
columns, so q = A h in the crystal's frame; with a goniometer the laboratory vector is
q_lab = S R(axis, φ) F A h (setting rotation S, scan rotation R about the axis by φ, fixed
rotation F), as dxtbx's `Goniometer` composes them. A pixel position (x, y) in mm on a panel
lies at origin + x fast + y slow.

Stills are predicted as DIALS' `StillsRayPredictor` does: q is rotated about
e1 = q × ŝ0 onto the Ewald sphere, the rotation angle being −Δψ; the predicted ray s1 is
then intersected with its panel as dxtbx's `Panel.get_ray_intersection` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Panels:
    """Flat panels in the laboratory frame (all detectors of an experiment list, stacked).

    Attributes
    ----------
    origin : ndarray, shape (m, 3)
        Corner of each panel's first pixel, mm.
    fast, slow : ndarray, shape (m, 3)
        Unit vectors along each panel's columns and rows.
    pixel_size : ndarray, shape (m, 2)
        (fast, slow) pixel size, mm.
    image_size : ndarray of int, shape (m, 2)
        (fast, slow) size in pixels.
    """

    origin: np.ndarray
    fast: np.ndarray
    slow: np.ndarray
    pixel_size: np.ndarray
    image_size: np.ndarray

    def matrices(self) -> np.ndarray:
        """dxtbx's d matrices [fast | slow | origin] (columns), shape (m, 3, 3)."""
        return np.stack([self.fast, self.slow, self.origin], -1)

    def lab(self, panel: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Laboratory positions (mm), shape (n, 3), of mm positions `xy` (n, 2) on `panel` (n,)."""
        return (self.origin[panel] + xy[:, :1] * self.fast[panel] + xy[:, 1:2] * self.slow[panel])

    def moved(self, rotation: np.ndarray, shift: np.ndarray, pivot: np.ndarray) -> "Panels":
        """All panels turned rigidly by `rotation` (3, 3) about `pivot` (3,) then shifted by
        `shift` (3,), mm."""
        return Panels(pivot + (self.origin - pivot) @ rotation.T + shift, self.fast @ rotation.T,
                      self.slow @ rotation.T, self.pixel_size, self.image_size)


@dataclass(frozen=True)
class Crystals:
    """Crystal and goniometer models, one row per experiment.

    Attributes
    ----------
    A : ndarray, shape (e, 3, 3)
        Setting matrices U B (reciprocal basis as columns), Å⁻¹.
    fixed, setting : ndarray, shape (e, 3, 3)
        Goniometer fixed and setting rotations (identity without a goniometer).
    axis : ndarray, shape (e, 3)
        Unit rotation axis (any unit vector when there is no scan).
    s0 : ndarray, shape (e, 3)
        Incident beam vector, |s0| = 1/λ, Å⁻¹.
    """

    A: np.ndarray
    fixed: np.ndarray
    setting: np.ndarray
    axis: np.ndarray
    s0: np.ndarray


def rotation_about(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (Rodrigues) about unit axes by angles (rad), right-handed.

    Parameters
    ----------
    axis : ndarray, shape (n, 3) or (3,)
    angle : ndarray, shape (n,) or scalar

    Returns
    -------
    ndarray, shape (n, 3, 3) (or (3, 3) for a single axis and angle)
    """
    axis = np.asarray(axis, float)
    angle = np.asarray(angle, float)
    k = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    c, s = np.cos(angle)[..., None, None], np.sin(angle)[..., None, None]
    kx = np.zeros(k.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2] = -k[..., 2], k[..., 1]
    kx[..., 1, 0], kx[..., 1, 2] = k[..., 2], -k[..., 0]
    kx[..., 2, 0], kx[..., 2, 1] = -k[..., 1], k[..., 0]
    outer = k[..., :, None] * k[..., None, :]
    return c * np.eye(3) + s * kx + (1 - c) * outer


def q_bragg(crystals: Crystals, h: np.ndarray, exp: np.ndarray, phi: np.ndarray | None = None) -> np.ndarray:
    """Laboratory-frame reciprocal-lattice vectors S R(φ) F A h, Å⁻¹.

    Parameters
    ----------
    crystals : Crystals
    h : ndarray of int, shape (n, 3)
        Miller indices.
    exp : ndarray of int, shape (n,)
        Experiment of each reflection.
    phi : ndarray, shape (n,), optional
        Scan angle of each reflection, rad (None: stills, R = identity).

    Returns
    -------
    ndarray, shape (n, 3)
    """
    chain = np.einsum("eij,ejk->eik", crystals.fixed, crystals.A)
    q = np.einsum("nij,nj->ni", chain[exp], h.astype(float))
    if phi is not None:
        q = np.einsum("nij,nj->ni", rotation_about(crystals.axis[exp], phi), q)
    return np.einsum("nij,nj->ni", crystals.setting[exp], q)


def norm(v: np.ndarray) -> np.ndarray:
    """Lengths of 3-vectors, shape (...,) for v of shape (..., 3): several times faster than
    `np.linalg.norm(v, axis=-1)` on millions of rows."""
    return np.sqrt(np.einsum("...i,...i->...", v, v))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / norm(v)[..., None]


def stills_predict(q: np.ndarray, s0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate reciprocal-lattice vectors onto the Ewald sphere, as DIALS' stills predictor.

    Parameters
    ----------
    q : ndarray, shape (n, 3)
        Reciprocal-lattice vectors, Å⁻¹.
    s0 : ndarray, shape (n, 3)
        Incident beam of each reflection, Å⁻¹.

    Returns
    -------
    s1 : ndarray, shape (n, 3)
        Predicted diffracted beam, |s1| = |s0|.
    delpsi : ndarray, shape (n,)
        DIALS' Δψ (rad): the rotation about q × ŝ0 that brings q onto the sphere is −Δψ.
    excitation : ndarray, shape (n,)
        |q + s0| − |s0| (Å⁻¹): the distance of q from the Ewald sphere, signed (outside > 0).

    Raises
    ------
    ValueError
        A vector beyond the limiting sphere (|q| ≥ 2/λ), which never diffracts.
    """
    k = norm(s0)
    u = s0 / k[:, None]
    e1 = _unit(np.cross(q, u))
    c0 = _unit(np.cross(u, e1))
    qq = np.einsum("ni,ni->n", q, q)
    a = 0.5 * qq / k
    b2 = qq - a * a
    if np.any(b2 <= 0):
        raise ValueError(f"{int(np.count_nonzero(b2 <= 0))} reciprocal-lattice vectors lie beyond "
                         "the limiting sphere (|q| ≥ 2/λ)")
    r = -a[:, None] * u + np.sqrt(b2)[:, None] * c0
    q0 = _unit(q)
    q1 = _unit(np.cross(q0, e1))
    delpsi = -np.arctan2(np.einsum("ni,ni->n", r, q1), np.einsum("ni,ni->n", r, q0))
    s1 = _unit(s0 + r) * k[:, None]
    excitation = norm(q + s0) - k
    return s1, delpsi, excitation


def ray_intersection(panels: Panels, panel: np.ndarray, s1: np.ndarray) -> np.ndarray:
    """Where rays from the sample along `s1` meet their panels, mm (dxtbx's convention).

    Parameters
    ----------
    panels : Panels
    panel : ndarray of int, shape (n,)
    s1 : ndarray, shape (n, 3)

    Returns
    -------
    ndarray, shape (n, 2)
        (x, y) along fast and slow, mm; NaN where the ray runs parallel to or away from the panel.
    """
    inv = np.linalg.inv(panels.matrices())
    v = np.einsum("nij,nj->ni", inv[panel], s1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = v[:, :2] / v[:, 2:3]
    xy[v[:, 2] <= 0] = np.nan
    return xy


def q_from_positions(lab_mm: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """q = s1 − s0 with s1 along the laboratory position and |s1| = |s0| (DIALS' convention).

    Parameters
    ----------
    lab_mm : ndarray, shape (n, 3)
    s0 : ndarray, shape (n, 3)

    Returns
    -------
    ndarray, shape (n, 3), Å⁻¹
    """
    return _unit(lab_mm) * norm(s0)[:, None] - s0
