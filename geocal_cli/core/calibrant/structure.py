"""Kinematic structure factors and powder ring intensities (vectorised over atoms × reflections).

F(hkl) = Σ_j occ_j f_j(s) exp(−8π² U_j s²) exp(2πi h·x_j), s = sin θ / λ = 1 / (2d), with
f_j from Gaussian expansions: X-ray IT92 (International Tables C, Table 6.1.1.4: Σ aᵢ e^(−bᵢs²) + c)
or electron (International Tables C, Table 4.3.2.2, Peng et al., Acta Cryst. A52 (1996) 257,
doi:10.1107/S0108767395014371: Σ aᵢ e^(−bᵢs²)), coefficients as gemmi tabulates them.
"""

from __future__ import annotations

import numpy as np


def scattering_factor(coefs: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Atomic scattering factors from Gaussian coefficients.

    Parameters
    ----------
    coefs : ndarray, shape (N, 9) or (N, 10)
        Per atom: 9 = IT92 X-ray (a1..a4, b1..b4, c); 10 = electron (a1..a5, b1..b5).
    s2 : ndarray, shape (M,)
        (sin θ / λ)² in Å⁻².

    Returns
    -------
    ndarray, shape (N, M)
    """
    coefs = np.asarray(coefs, float)
    n = (coefs.shape[1] - 1) // 2 if coefs.shape[1] % 2 else coefs.shape[1] // 2
    a = coefs[:, :n]
    b = coefs[:, n:2 * n]
    c = coefs[:, 2 * n] if coefs.shape[1] % 2 else 0.0
    f = np.einsum("ni,nim->nm", a, np.exp(-b[:, :, None] * np.asarray(s2)[None, None, :]))
    return f + np.asarray(c)[..., None] if np.ndim(c) else f + c


def structure_factors(hkl: np.ndarray, d_spacing: np.ndarray, fract: np.ndarray, occ: np.ndarray,
                      u_iso: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """Structure factors of reflections for all atoms of the unit cell.

    Parameters
    ----------
    hkl : ndarray of int, shape (M, 3)
    d_spacing : ndarray, shape (M,)
        Å.
    fract : ndarray, shape (N, 3)
        Fractional coordinates of every atom in the cell (symmetry images included).
    occ, u_iso : ndarray, shape (N,)
        Occupancy; isotropic displacement U in Å².
    coefs : ndarray, shape (N, 9) or (N, 10)
        Scattering-factor coefficients (see `scattering_factor`).

    Returns
    -------
    ndarray of complex, shape (M,)
    """
    s2 = 1.0 / (4.0 * np.asarray(d_spacing, float) ** 2)
    f = scattering_factor(coefs, s2) * np.exp(-8 * np.pi**2 * np.asarray(u_iso)[:, None] * s2)
    phase = np.exp(2j * np.pi * (np.asarray(fract, float) @ np.asarray(hkl, float).T))
    return np.sum(np.asarray(occ)[:, None] * f * phase, axis=0)


def powder_multiplicity(hkl: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Number of distinct reflections equivalent to each hkl under the Laue group.

    Parameters
    ----------
    hkl : ndarray of int, shape (M, 3)
    rotations : ndarray, shape (R, 3, 3)
        Rotation parts of the space-group operations (integers); Friedel pairs are added here.

    Returns
    -------
    ndarray of int, shape (M,)
    """
    rots = np.concatenate([rotations, -rotations]).astype(float)
    eq = np.einsum("nij,mi->mnj", rots, np.asarray(hkl, float)).round().astype(np.int64)
    span = int(np.abs(eq).max()) * 2 + 1
    code = ((eq[..., 0] + span // 2) * span + eq[..., 1] + span // 2) * span + eq[..., 2] + span // 2
    code.sort(axis=1)
    return 1 + np.count_nonzero(np.diff(code, axis=1), axis=1)


def powder_rings(d_spacing: np.ndarray, intensity: np.ndarray, rel_tol: float = 1e-5,
                 min_rel_intensity: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Merge reflections of equal d into powder rings and drop absences.

    Parameters
    ----------
    d_spacing, intensity : ndarray, shape (M,)

    Returns
    -------
    d_ring : ndarray, shape (K,)
        Decreasing.
    i_ring : ndarray, shape (K,)
        Summed intensities normalised to a maximum of 1.
    """
    order = np.argsort(-np.asarray(d_spacing, float))
    d = np.asarray(d_spacing, float)[order]
    inten = np.asarray(intensity, float)[order]
    ring = np.concatenate([[0], np.cumsum(np.abs(np.diff(d)) > rel_tol * d[1:])])
    d_ring = np.bincount(ring, weights=d) / np.bincount(ring)
    i_ring = np.bincount(ring, weights=inten)
    keep = i_ring > min_rel_intensity * i_ring.max()
    return d_ring[keep], i_ring[keep] / i_ring[keep].max()
