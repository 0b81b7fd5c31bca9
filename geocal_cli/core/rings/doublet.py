"""A lab source's Kα1/Kα2 doublet in the radial profile of a calibrant ring.

Every reflection gives two rings, at λ(Kα1) and λ(Kα2), with intensities in the ratio of the
lines (2:1 for Cu and Mo Kα, from the 2p3/2 and 2p1/2 occupancies). Where the rings are broad
or 2θ is small the two blend into one asymmetric peak whose maximum sits between them, up to
I2/(I1 + I2) of the separation from Kα1 (a third for 2:1); where they are resolved the
maximum is Kα1's. A fit that took the blended maximum for Kα1 would be biased in distance and
centre by a fraction of the split (0.2 % of the radius for Mo). The model here predicts where
the same estimator that measures a ring (`peaks.iterated_centroid`) places the blended peak,
so control points are referred to Kα1 at every 2θ; the geometry then carries λ(Kα1).
This follows the two-line profile of Rietveld programs (e.g. GSAS-II's Kα1/Kα2 pair,
Toby & Von Dreele, J. Appl. Cryst. 46 (2013) 544, doi:10.1107/S0021889813003531).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.rings.peaks import iterated_centroid

#: Narrowest Gaussian σ (pixels) the model uses: a measured width below it is noise-limited.
MIN_SIGMA_PX = 0.5


@dataclass(frozen=True)
class Doublet:
    """The second line of a lab source.

    Attributes
    ----------
    wavelength_ratio : float
        λ(Kα2) / λ(Kα1), above 1 (Cu 1.00248, Mo 1.00605).
    intensity_ratio : float
        I(Kα2) / I(Kα1), in (0, 1); 0.5 for Kα.
    """

    wavelength_ratio: float
    intensity_ratio: float = 0.5

    def tth2(self, tth1: np.ndarray) -> np.ndarray:
        """2θ of the Kα2 ring of each Kα1 ring (radians, any shape; NaN beyond 180°)."""
        s = self.wavelength_ratio * np.sin(np.asarray(tth1, float) / 2)
        with np.errstate(invalid="ignore"):
            return np.where(s <= 1, 2 * np.arcsin(np.minimum(s, 1)), np.nan)

    def peak_shift_px(self, separation_px: np.ndarray, width_px: np.ndarray, half_px: np.ndarray,
                      step_px: float) -> np.ndarray:
        """Where the blended peak is measured, relative to the Kα1 ring, along increasing 2θ.

        Parameters
        ----------
        separation_px : ndarray, shape (n,)
            Kα2 − Kα1 ring distance along the profile at each point, pixels (> 0).
        width_px : ndarray, shape (n,)
            Measured rms width of the blended peak (the ring's median), pixels; the Gaussian
            σ of each line follows by removing the split's share of the variance,
            I1·I2/(I1 + I2)² × separation².
        half_px : ndarray, shape (n,)
            Half-width of the centroid window used on the image, pixels.
        step_px : float
            Sampling step of the image profiles, pixels.

        Returns
        -------
        ndarray, shape (n,)
            Shift in pixels (0 ≤ shift ≤ the share I2/(I1 + I2) of the separation).
        """
        sep = np.nan_to_num(np.asarray(separation_px, float), nan=0.0)
        if sep.size == 0:
            return np.zeros(0)
        r = self.intensity_ratio
        var = np.asarray(width_px, float) ** 2 - r / (1 + r) ** 2 * sep ** 2
        sigma = np.sqrt(np.maximum(np.nan_to_num(var, nan=0.0), MIN_SIGMA_PX ** 2))
        half = np.broadcast_to(np.asarray(half_px, float), sep.shape)
        n = int(np.ceil((half.max() + 4 * sigma.max()) / step_px)) + 1
        s = (np.arange(-n, n + 1) * step_px).astype(np.float32)
        prof = (np.exp(-0.5 * ((s - 0.0) / sigma[:, None]) ** 2)
                + r * np.exp(-0.5 * ((s - sep[:, None]) / sigma[:, None]) ** 2)).astype(np.float32)
        start = s[np.argmax(prof, axis=1)]
        return iterated_centroid(prof, s, start, half, step_px).astype(float)


#: Kα1 and Kα2 wavelengths (Å) of common anodes (International Tables for Crystallography
#: Vol. C, Table 4.2.2.1, as tabulated in cctbx.eltbx.wavelengths).
KALPHA_LINES = {"Cr": (2.28970, 2.29361), "Fe": (1.93604, 1.93998), "Co": (1.788965, 1.792850),
                "Cu": (1.54056, 1.54439), "Mo": (0.70930, 0.71359), "Ag": (0.55941, 0.56380)}


def lab_line(wavelength: float, rtol: float = 3e-4) -> str | None:
    """A warning when a single wavelength is a lab anode's Kα1 or its Kα mean, else None.

    Such a source often carries Kα2 too (no monochromator, or one that passes both lines);
    an unmodelled doublet biases the distance and centre by up to a third of the split.

    Parameters
    ----------
    wavelength : float
        Metres.
    rtol : float
        Relative match tolerance.
    """
    lam = wavelength * 1e10
    for anode, (ka1, ka2) in KALPHA_LINES.items():
        for what, value in (("Kα1", ka1), ("the Kα1/Kα2 mean", (2 * ka1 + ka2) / 3)):
            if abs(lam / value - 1) <= rtol:
                return (f"λ = {lam:.5f} Å is {anode} {what}: if the source's Kα2 line is not "
                        f"filtered out, give --wavelength {ka1},{ka2} (an unmodelled doublet "
                        "moves ring maxima by up to a third of its split, biasing distance and "
                        "centre)")
    return None
