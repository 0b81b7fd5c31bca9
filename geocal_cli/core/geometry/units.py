"""Wavelengths from photon energy or electron accelerating voltage, and Bragg angles (SI)."""

from __future__ import annotations

import math

import numpy as np

from scipy import constants as _c

#: h·c in keV·Å, so that λ[Å] = HC_KEV_A / E[keV].
HC_KEV_A = _c.h * _c.c / (_c.e * 1e3) * 1e10


def wavelength_from_energy(energy_kev: float) -> float:
    """X-ray wavelength for a photon energy.

    Parameters
    ----------
    energy_kev : float
        Photon energy in keV, > 0.

    Returns
    -------
    float
        Wavelength in metres.

    Raises
    ------
    ValueError
        If the energy is not positive.
    """
    if not energy_kev > 0:
        raise ValueError(f"energy must be positive, got {energy_kev} keV")
    return HC_KEV_A / energy_kev * 1e-10


def wavelength_from_voltage(voltage_kv: float) -> float:
    """Relativistic de Broglie wavelength of electrons accelerated through a voltage.

    λ = h / sqrt(2 m₀ e V (1 + e V / (2 m₀ c²))), CODATA constants from scipy.
    At 200 kV this gives 2.5079 pm.

    Parameters
    ----------
    voltage_kv : float
        Accelerating voltage in kV, > 0.

    Returns
    -------
    float
        Wavelength in metres.

    Raises
    ------
    ValueError
        If the voltage is not positive.
    """
    if not voltage_kv > 0:
        raise ValueError(f"voltage must be positive, got {voltage_kv} kV")
    ev = _c.e * voltage_kv * 1e3
    return _c.h / math.sqrt(2 * _c.m_e * ev * (1 + ev / (2 * _c.m_e * _c.c**2)))


def energy_from_wavelength(wavelength_m: float) -> float:
    """Photon energy in keV for a wavelength in metres (inverse of `wavelength_from_energy`)."""
    return HC_KEV_A / (wavelength_m * 1e10)


def ring_tth(d_spacing, wavelength: float) -> np.ndarray:
    """Bragg angles 2θ = 2 arcsin(λ / 2d) of powder rings.

    Parameters
    ----------
    d_spacing : array_like, shape (m,)
        Metres.
    wavelength : float
        Metres.

    Returns
    -------
    ndarray, shape (m,)
        Radians; NaN where λ > 2d (no such reflection at this wavelength).
    """
    x = wavelength / (2 * np.asarray(d_spacing, float))
    with np.errstate(invalid="ignore"):
        return np.where(x < 1, 2 * np.arcsin(np.minimum(x, 1)), np.nan)
