"""Detector distortion from a hole-grid image: spots → lattice → ideal grid → smooth field.

The method of Hammersley et al., NIM A 346 (1994) 312, doi:10.1016/0168-9002(94)90720-X
(Fit2D) and of pyFAI's CCD-calibration tutorial, made blind and robust: sizes and lattice
from the image (`spots`), indexing grown from the least-distorted region (`lattice`), a
five-parameter ideal grid and a GCV thin-plate smoothing spline (`fit`), outliers
rejected on the spline's residuals, the field masked outside the indexed holes' hull.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.displacement import Field
from geocal_cli.core.grid.fit import (IdealGrid, SmoothingSpline, evaluate_on_corners,
                                     fit_ideal_grid, fit_smoothing_spline, hull_mask, skew_deg)
from geocal_cli.core.grid.lattice import Indexing, index_lattice
from geocal_cli.core.grid.spots import (LatticeEstimate, bin_image, estimate_lattice, find_spots,
                                   flatten_illumination, patch_half_size, windowed_centroids)
from geocal_cli.errors import CalibrationError, ConfigError

MIN_HOLES = 16
PITCH_TOLERANCE = 0.10
MIN_CONTRAST = 0.15


@dataclass(frozen=True)
class GridMeasurement:
    """Everything measured on a grid image.

    Attributes
    ----------
    lattice : LatticeEstimate
        From the autocorrelation.
    diameter_px : float
        Spot diameter used.
    n_candidates : int
        Local maxima that stood above the noise.
    n_cut : int
        Candidates cut by the image edge or the mask, or whose centroid did not settle.
    n_off_grid : int
        Whole candidates that the lattice did not reach (dust, spurious spots).
    n_outliers : int
        Indexed spots rejected on the field fit's residuals.
    indexing : Indexing
        Of the kept spots (`spot` indexes `yx`'s source; see `ij`, `yx`).
    ij : ndarray of int, shape (n, 2)
        Lattice indices of the holes used.
    yx : ndarray, shape (n, 2)
        Their measured centres, corner coordinates.
    grid : IdealGrid
    skew_deg : float
        Shear of the pixel axes seen by the grid: x moves by tan(skew) · y.
    spline : SmoothingSpline
    field : Field
        At every pixel corner (also outside the hull, where it is extrapolated).
    inside : ndarray of bool, shape (H, W)
        Pixels inside the indexed holes' convex hull.
    outlier_threshold_px : float
    """

    lattice: LatticeEstimate
    diameter_px: float
    n_candidates: int
    n_cut: int
    n_off_grid: int
    n_outliers: int
    indexing: Indexing
    ij: np.ndarray
    yx: np.ndarray
    grid: IdealGrid
    skew_deg: float
    spline: SmoothingSpline
    field: Field
    inside: np.ndarray
    outlier_threshold_px: float

    @property
    def displacement(self) -> np.ndarray:
        """Ideal − measured at the holes used, shape (n, 2), pixels."""
        return self.grid.positions(self.ij) - self.yx


def measure_grid(image: np.ndarray, valid: np.ndarray, *, dark: bool = False,
                 expected_pitch_px: float | None = None, diameter_px: float | None = None,
                 say=None) -> GridMeasurement:
    """Measure the displacement field of a detector from an image of a hole grid.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    dark : bool
        Dark dots on a bright field instead of bright holes.
    expected_pitch_px : float, optional
        Pitch / pixel size when both are known: the image must agree within 10 %.
    diameter_px : float, optional
        Spot diameter; estimated from the image when None.
    say : callable, optional
        Progress messages.

    Returns
    -------
    GridMeasurement

    Raises
    ------
    CalibrationError
        No periodic spots, too few spots or too few indexed holes.
    ConfigError
        The hole spacing in the image disagrees with the expected pitch by more than 10 %.
    """
    say = say or (lambda msg: None)
    shape = image.shape
    # The lattice and the spot size are found on a 2 × 2 binned image when it is large.
    b = 2 if min(shape) >= 1024 else 1
    lat = estimate_lattice(flatten_illumination(*bin_image(image, valid, b), dark)).scaled(b)
    if lat.contrast < MIN_CONTRAST:
        raise CalibrationError(
            "no regular grid of spots in the image (its autocorrelation has no lattice peaks); "
            + ("for dark dots on a bright field use --dark-spots" if not dark else
               "is this a grid image?"))
    if expected_pitch_px is not None:
        ratio = lat.pitch_px / expected_pitch_px
        if abs(ratio - 1) > PITCH_TOLERANCE:
            raise ConfigError(
                f"the holes are {lat.pitch_px:.1f} px apart in the image, but --pitch / "
                f"--pixel-size gives {expected_pitch_px:.1f} px ({(ratio - 1) * 100:+.0f} %): "
                "check both values (the pixel size is in µm, the pitch in mm)")
    diameter = diameter_px or lat.diameter_px
    say(f"lattice {np.hypot(*lat.a):.2f} × {np.hypot(*lat.b):.2f} px, spots ≈ {diameter:.1f} px")
    spots = find_spots(image, dark, valid, diameter, lat.pitch_px)
    whole = np.nonzero(spots.converged)[0]
    if whole.size < MIN_HOLES:
        raise CalibrationError(f"only {whole.size} whole spots found (need {MIN_HOLES}); "
                               "check --spot-diameter, --dark-spots and the mask")
    idx = index_lattice(spots.y[whole], spots.x[whole], lat.a, lat.b)
    if idx.spot.size < MIN_HOLES:
        raise CalibrationError(
            f"only {idx.spot.size} of {whole.size} spots form a grid (need {MIN_HOLES}): "
            "not a hole-grid image, or a distortion over a third of the pitch between holes")
    ij = idx.ij
    yx = np.stack([spots.y[whole][idx.spot], spots.x[whole][idx.spot]], 1)
    say(f"{spots.y.size} candidates, {idx.spot.size} indexed in {idx.rounds} rounds")
    scale = float(max(shape))
    keep = np.ones(ij.shape[0], bool)
    threshold = np.inf
    for _ in range(3):
        grid = fit_ideal_grid(ij[keep], yx[keep])
        d = grid.positions(ij) - yx
        spline = fit_smoothing_spline(yx[keep], d[keep], scale)
        res = np.hypot(*(d - spline(yx[:, 0], yx[:, 1])).T)
        sigma = 1.4826 * np.median(res[keep])
        threshold = max(6 * sigma, 0.1)
        new = res <= threshold
        if np.array_equal(new, keep):
            break
        keep = new
    if keep.sum() < MIN_HOLES:
        raise CalibrationError(f"only {keep.sum()} holes agree with a smooth field (need {MIN_HOLES})")
    step = int(np.clip(float(np.min(grid.pitch_px)) / 3, 8, 32))
    field = evaluate_on_corners(spline, shape, step)
    inside = hull_mask(yx[keep], shape)
    return GridMeasurement(
        lattice=lat, diameter_px=float(diameter), n_candidates=int(spots.y.size),
        n_cut=int(spots.y.size - whole.size), n_off_grid=int(whole.size - idx.spot.size),
        n_outliers=int((~keep).sum()), indexing=idx, ij=ij[keep], yx=yx[keep], grid=grid,
        skew_deg=-skew_deg(ij[keep], yx[keep], grid.pitch_px), spline=spline, field=field,
        inside=inside, outlier_threshold_px=float(threshold))


@dataclass(frozen=True)
class Remeasured:
    """Holes re-measured on the corrected image against the ideal grid.

    Attributes
    ----------
    ideal : ndarray, shape (m, 2)
        Ideal positions of the holes re-measured (whole on the corrected image).
    error : ndarray, shape (m, 2)
        Measured − ideal, pixels.
    """

    ideal: np.ndarray
    error: np.ndarray


def misplacement_stats(error: np.ndarray, pitch_px: float) -> dict:
    """Count, rms and max length of misplacements, shape (n, 2), in pixels and pitches."""
    e = np.hypot(*error.T) if error.size else np.zeros(1)
    rms, mx = float(np.sqrt(np.mean(e**2))), float(e.max())
    return {"holes": int(error.shape[0]), "rms_px": rms, "max_px": mx,
            "rms_pitch": rms / pitch_px, "max_pitch": mx / pitch_px}


def remeasure(corrected: np.ndarray, covered: np.ndarray, m: GridMeasurement,
              dark: bool) -> Remeasured:
    """Re-measure the indexed holes on the distortion-corrected image.

    Parameters
    ----------
    corrected : ndarray, shape (H, W)
        The grid image resampled onto the ideal pixels.
    covered : ndarray of bool, shape (H, W)
        Corrected pixels fully fed by valid raw pixels.
    m : GridMeasurement
    dark : bool

    Returns
    -------
    Remeasured
    """
    ideal = m.grid.positions(m.ij)
    signal = -corrected if dark else corrected
    half = patch_half_size(float(np.min(m.grid.pitch_px)), m.diameter_px)
    y, x, _, ok = windowed_centroids(signal, ideal[:, 0], ideal[:, 1], m.diameter_px, half, covered)
    return Remeasured(ideal=ideal[ok], error=np.stack([y[ok], x[ok]], 1) - ideal[ok])
