"""A lab source's Kα1/Kα2 doublet in the radial profile of a calibrant ring.

Every reflection gives two rings, at λ(Kα1) and λ(Kα2), with intensities in the ratio of the
lines (2:1 for Cu and Mo Kα, from the 2p3/2 and 2p1/2 occupancies). Where the rings are broad
or 2θ is small the two blend into one asymmetric peak whose maximum sits between them, up to
I2/(I1 + I2) of the separation from Kα1 (a third for 2:1); where they are resolved the
maximum is Kα1's. A fit that took the blended maximum for Kα1 would be biased in distance and
centre by a fraction of the split (0.2 % of the radius for Mo). The model here predicts where
the same estimator that measures a ring (`peaks`: background through the window ends,
iterated centroid) places the blended peak and how wide it measures it, so the lines' σ
follows from the measured width and control points are referred to Kα1 at every 2θ; the
geometry then carries λ(Kα1).
This follows the two-line profile of Rietveld programs (e.g. GSAS-II's Kα1/Kα2 pair,
Toby & Von Dreele, J. Appl. Cryst. 46 (2013) 544, doi:10.1107/S0021889813003531).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.rings.assign import MATCH_TOL_PX, MATCH_TOL_REL
from geocal_cli.core.rings.peaks import measured_lines

#: Narrowest Gaussian σ (pixels) the model uses: a measured width below it is noise-limited.
MIN_SIGMA_PX = 0.5
#: Largest 2θ (degrees) at which a traced ring is taken for a stronger one's Kα2 line
#: (`Doublet.companions`): the radius ratio of the lines grows with 2θ (Ag Kα: 1.008 at small
#: angles, 1.020 at 60°), and a wider window would take a dense calibrant's next ring too.
COMPANION_MAX_TTH_DEG = 60.0


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

    def companions(self, radii: np.ndarray, weights: np.ndarray,
                   tol_rel: float = MATCH_TOL_REL, tol_px: float = MATCH_TOL_PX) -> np.ndarray:
        """Traced rings that are the Kα2 line of a stronger traced ring.

        Where the lines are resolved, the ring tracer finds each reflection twice, the Kα2
        ring a factor tan 2θ₂ / tan 2θ₁ beyond the Kα1 ring (λ₂/λ₁ at small 2θ, up to
        `COMPANION_MAX_TTH_DEG`) and half as strong. Assigned to reflections of their own,
        those rings pull the start between the lines: Ag Kα on Si at 204 mm, 22 traces of 13
        reflections, started 7 px from the truth, where the rounds stalled at 1.3 px.

        Parameters
        ----------
        radii : ndarray, shape (n,)
            Traced ring radii (pixels, or anything proportional to tan 2θ).
        weights : ndarray, shape (n,)
            Their strengths.
        tol_rel, tol_px : float
            A ring within tol_rel · r + tol_px of a companion's place is one (the ring
            assignment's tolerance by default).

        Returns
        -------
        ndarray of bool, shape (n,)
        """
        r = np.asarray(radii, float)
        w = np.asarray(weights, float)
        top = np.radians(COMPANION_MAX_TTH_DEG)
        hi = float(np.tan(self.tth2(top)) / np.tan(top))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = r[None, :] / r[:, None]                                  # (i, j): r_j / r_i
        tol = tol_rel + tol_px / np.abs(r)[None, :]
        pair = ((ratio >= self.wavelength_ratio - tol) & (ratio <= hi + tol)
                & (w[None, :] < w[:, None]))
        np.fill_diagonal(pair, False)
        return pair.any(axis=0)

    def measured(self, sigma_px: np.ndarray, separation_px: np.ndarray, hw_px: np.ndarray,
                 half_px: np.ndarray, step_px: float) -> tuple[np.ndarray, np.ndarray]:
        """Where the image's estimator places a doublet's peak and how wide it measures it.

        The model profile (two Gaussian lines of σ `sigma_px`, Kα1 at 0 and Kα2
        `separation_px` further along increasing 2θ, heights 1 and `intensity_ratio`) goes
        through the same straight background over the window ± `hw_px` and the same
        iterated centroid as the image (`peaks.net_profile`, `peaks.peak_in_window`). The
        window matters: it cuts the lines' tails, which narrows the measured width by a sixth
        at σ = hw/2.5, and the background line through the ends leans towards Kα2.

        Parameters
        ----------
        sigma_px, separation_px, hw_px, half_px : ndarray, broadcastable to one shape
            Line σ, Kα2 − Kα1 distance along the profile (≥ 0), search window half-width
            and centroid half-window, pixels.
        step_px : float
            Sampling step of the image profiles, pixels.

        Returns
        -------
        shift, width : ndarray
            Peak position relative to Kα1 and rms width, pixels.
        """
        sigma, sep, hw, half = np.broadcast_arrays(
            np.maximum(np.asarray(sigma_px, float), MIN_SIGMA_PX),
            np.nan_to_num(np.asarray(separation_px, float), nan=0.0),
            np.asarray(hw_px, float), np.asarray(half_px, float))
        offsets = np.stack([np.zeros(sep.shape), sep], axis=-1)
        heights = np.broadcast_to([1.0, self.intensity_ratio], offsets.shape)
        return measured_lines(sigma, offsets, heights, hw, half, step_px)

    def line_sigma(self, width_px: np.ndarray, separation_px: np.ndarray, hw_px: np.ndarray,
                   half_px: np.ndarray, step_px: float) -> np.ndarray:
        """The line σ of each ring whose doublet the image's estimator measures as wide as it
        measured the ring (`measured`: window and split included).

        Where the lines are partly resolved inside the window two σ can measure alike: narrow
        resolved lines, whose split makes the width, and broad blended ones. The σ of rings
        with one solution (blended at small separations) is the reference; every ring takes
        its solution nearest to it, since one sample's lines have similar widths.

        Parameters
        ----------
        width_px, separation_px, hw_px, half_px : ndarray, shape (n,)
            Measured rms width, Kα2 − Kα1 distance, window and centroid half-windows of
            each ring, pixels.
        step_px : float

        Returns
        -------
        ndarray, shape (n,)
            σ in pixels, at least `MIN_SIGMA_PX`; where no σ measures as wide, the σ that
            comes nearest.
        """
        width = np.asarray(width_px, float)
        grid = np.geomspace(MIN_SIGMA_PX, max(4.0 * float(np.max(width, initial=1.0)), 2.0), 64)
        _, model = self.measured(grid[None, :], np.asarray(separation_px, float)[:, None],
                                 np.asarray(hw_px, float)[:, None],
                                 np.asarray(half_px, float)[:, None], step_px)
        diff = model - width[:, None]                                       # (n, G)
        a, b = diff[:, :-1], diff[:, 1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where((a <= 0) != (b <= 0), a / (a - b), np.nan)
        roots = grid[:-1] * (grid[1:] / grid[:-1]) ** t                      # (n, G-1), NaN: none
        n_roots = np.count_nonzero(np.isfinite(roots), axis=1)
        closest = grid[np.argmin(np.abs(diff), axis=1)]
        single = np.nanmax(np.where(n_roots[:, None] == 1, roots, np.nan), axis=1, initial=0.0)
        ref = np.median(single[n_roots == 1]) if np.any(n_roots == 1) else np.median(closest)
        pick = np.nanargmin(np.where(np.isfinite(roots), np.abs(np.log(roots / ref)), np.inf),
                            axis=1)
        chosen = roots[np.arange(width.size), pick]
        return np.where(n_roots > 0, chosen, closest)

    def peak_shift_px(self, separation_px: np.ndarray, sigma_px: np.ndarray, hw_px: np.ndarray,
                      half_px: np.ndarray, step_px: float) -> np.ndarray:
        """Where the blended peak is measured, relative to the Kα1 ring, along increasing 2θ.

        Parameters
        ----------
        separation_px : ndarray, shape (n,)
            Kα2 − Kα1 ring distance along the profile at each point, pixels (> 0).
        sigma_px : ndarray, shape (n,)
            σ of each line (`line_sigma`), pixels.
        hw_px, half_px : ndarray, shape (n,)
            Search window and centroid half-windows used on the image, pixels.
        step_px : float
            Sampling step of the image profiles, pixels.

        Returns
        -------
        ndarray, shape (n,)
            Shift in pixels (near the share I2/(I1 + I2) of the separation where the lines
            blend, near 0 where they are resolved).
        """
        return self.measured(sigma_px, separation_px, hw_px, half_px, step_px)[0]


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
