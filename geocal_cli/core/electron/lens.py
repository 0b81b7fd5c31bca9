"""The electron-microscope model of a ring pattern: camera length, lens ellipticity, centre.

In a TEM the detector is normal to the beam to within what the rings can show, and what
distorts the rings is the projector lens: it maps the diffraction plane onto the detector
with a small area-preserving stretch, so that rings of one phase become concentric ellipses
of one axis ratio and orientation (Mitchell & Schaffer, Ultramicroscopy 103 (2005) 319,
doi:10.1016/j.ultramic.2005.02.003; pyxem's `CalibrationGenerator`). The model here is
exactly that: an untilted detector at camera length L (tan 2θ = r / L), the stretch M of
`geometry.frame.stretch_matrix` about the ring centre, and the centre. Fitting a tilted
detector instead makes a tilt stand in for the stretch; its mirror image fits as well and
the centre moves with the choice (0.6 px on the Au cross-grating at 200 kV).

Rounds: control points from multi-peak profiles (`rings.profiles`, so that overlapping
rings such as Au 111/200 each carry points), a weighted least-squares fit of centre,
ellipticity and one scale of tan 2θ for all calibrant rings (`center.ringcenter`), windows
narrowed to what the fit predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.center.ringcenter import RingCenterFit, fit_ring_center
from geocal_cli.core.geometry.frame import (DetectorFrame, ellipse_of, frame_of, make_geometry,
                                           moved_frame)
from geocal_cli.core.rings.concentric import RingCentres, ring_shifts
from geocal_cli.core.rings.controlpoints import ControlPoints, PreparedImage
from geocal_cli.core.rings.profiles import fit_ring_profiles, separable_rings
from geocal_cli.core.rings.rounds import expected_rings
from geocal_cli.errors import CalibrationError

#: Largest rounds of extraction and fit.
MAX_ROUNDS = 8
#: The rounds stop when the centre moves less than this, pixels.
CONVERGED_PX = 0.002

# Azimuths per ring: the profile fits cost in proportion, and 1° sectors already give
# thousands of points on a few rings.
N_CHI = 360


@dataclass(frozen=True)
class LensCalibration:
    """Outcome of `calibrate_lens`.

    Attributes
    ----------
    center : ndarray, shape (2,)
        Common centre of the ring ellipses, fractional pixel indices (d1, d2).
    center_cov : ndarray, shape (2, 2)
        Its covariance, px².
    camera_length_m, camera_length_sigma_m : float
    wavelength_m : float
    pixel_m : ndarray, shape (2,)
        Pixel size (rows, columns), metres.
    fit : RingCenterFit
        The last fit (ellipticity, its covariance, residuals, inliers).
    points : ControlPoints
        The last round's points (`fit.inliers` selects those kept).
    sigma_px : ndarray, shape (n,)
        1σ of each point from its profile fit.
    frame : DetectorFrame
        The fitted model as a flat-detector frame (stretch included).
    rounds : int
    ring_centres : RingCentres or None
        Each ring's own centre about the common one; `center_cov` includes what their
        spread adds (`rings.concentric`).
    """

    center: np.ndarray
    center_cov: np.ndarray
    camera_length_m: float
    camera_length_sigma_m: float
    wavelength_m: float
    pixel_m: np.ndarray
    fit: RingCenterFit
    points: ControlPoints
    sigma_px: np.ndarray
    frame: DetectorFrame
    rounds: int
    ring_centres: RingCentres | None = None

    @property
    def axis_ratio(self) -> float:
        """Major over minor axis of the ring ellipses."""
        return ellipse_of(self.fit.ellipticity)[0]

    @property
    def major_axis_deg(self) -> float:
        """Direction of the major axis, degrees from +x (columns) towards +y (rows)."""
        return ellipse_of(self.fit.ellipticity)[1]

    def axis_ratio_sigma(self) -> float:
        """1σ of `axis_ratio` (d ratio / de = 2 / (1 − e)²)."""
        e = float(np.hypot(*self.fit.ellipticity))
        return 2 * self.fit.ellipticity_sigma()[0] / (1 - e) ** 2

    def reciprocal_per_px(self) -> float:
        """Reciprocal-space scale 1/d per pixel along the mean radius, Å⁻¹, in the
        small-angle form pyxem and py4DSTEM use (1/d = r / (λ L))."""
        return float(np.sqrt(np.prod(self.pixel_m)) / (self.wavelength_m * 1e10 * self.camera_length_m))

    def ring_radius_px(self, ring: int) -> float:
        """Mean radius of calibrant ring `ring` (index into the 2θ fitted), pixels."""
        # fit.tth is 2θ seen from the reference distance L / scale.
        return float(np.tan(self.fit.tth[ring]) * self.camera_length_m / self.fit.scale
                     / np.sqrt(np.prod(self.pixel_m)))

    def mrad_per_px(self) -> float:
        """Scattering angle 2θ per pixel, milliradians (small-angle)."""
        return float(1e3 * np.sqrt(np.prod(self.pixel_m)) / self.camera_length_m)


def equivalent_geometry(detector, camera_length: float, center, wavelength: float):
    """The untilted pyFAI geometry at `camera_length` (m) with the PONI at `center` (pixel
    indices d1, d2): what a PONI can hold of the electron model (pyFAI has no lens
    ellipticity)."""
    return make_geometry(detector, camera_length, (center[0] + 0.5) * detector.pixel1,
                         (center[1] + 0.5) * detector.pixel2, wavelength=wavelength)


def calibrate_lens(prepared: PreparedImage, valid: np.ndarray, detector, wavelength: float,
                   tth: np.ndarray, center0, camera_length0: float, width_px: float = 2.0,
                   fit_ellipticity: bool = True, points0: ControlPoints | None = None,
                   say=lambda msg: None) -> LensCalibration:
    """Fit camera length, lens ellipticity and centre to a calibrant's rings.

    Parameters
    ----------
    prepared : PreparedImage
    valid : ndarray of bool, shape (H, W)
    detector : pyFAI.detectors.Detector
        Pixel size (the camera length is in the units it gives).
    wavelength : float
        Metres.
    tth : ndarray, shape (K,)
        2θ of the calibrant's rings at `wavelength`, radians, increasing (NaN where the
        reflection does not exist at this wavelength).
    center0 : sequence of 2 floats
        Starting centre (d1, d2), pixels.
    camera_length0 : float
        Starting camera length, metres.
    width_px : float
        Starting rms width of the rings, pixels.
    fit_ellipticity : bool
        Fit the lens's stretch (else the rings are circles).
    points0 : ControlPoints, optional
        Points of the start's own fit (`ring` indexes `tth`): a first fit on them narrows
        the first round's windows.
    say : callable(str)

    Returns
    -------
    LensCalibration

    Raises
    ------
    CalibrationError
        No ring on valid pixels, or too few points for the fit.
    """
    tth = np.asarray(tth, float)
    pix = np.array([detector.pixel1, detector.pixel2])
    c0 = np.asarray(center0, float)
    frame0 = frame_of(equivalent_geometry(detector, camera_length0, c0, wavelength))
    shift, ell, scale = np.zeros(2), np.zeros(2), 1.0
    finite = np.isfinite(tth)
    fit = None
    hw_rel, hw_abs = 0.04, 3.0
    if points0 is not None and len(points0) >= 20:
        # The start's own control points fix the stretch and the scale first: the windows
        # then need only what that first fit leaves (e·R would be tens of pixels on the
        # outer rings of a large detector).
        first = fit_ring_center(points0, frame0, tth, shift, ell, fit_ellipticity,
                                rings="calibrant")
        shift, ell, scale = first.shift, first.ellipticity, first.scale
        rms0 = float(np.sqrt(np.mean(first.residual_px[first.inliers] ** 2)))
        hw_rel, hw_abs = 0.0, max(4 * rms0 + 1.0, 2.0)
    for rnd in range(MAX_ROUNDS):
        fr = moved_frame(frame0, shift, ell)
        scaled = np.where(finite, np.arctan(scale * np.tan(np.where(finite, tth, 0))), np.nan)
        radius = np.tan(scaled) * camera_length0 / np.sqrt(np.prod(pix))
        on = expected_rings(valid, fr, scaled)
        on = on[separable_rings(radius, width_px)[on]]
        if on.size == 0:
            raise CalibrationError("no calibrant ring falls on valid pixels apart from its "
                                   "neighbours")
        radius = radius[on]
        hw = np.maximum(hw_abs, hw_rel * radius)
        prof = fit_ring_profiles(prepared, fr, scaled[on], hw, width_px, n_chi=N_CHI)
        pts = prof.points
        pts = ControlPoints(pts.d1, pts.d2, on[pts.ring], pts.chi, pts.snr, pts.width)
        if len(pts) < 20:
            raise CalibrationError(f"too few ring points ({len(pts)}) for the electron model")
        # Points of the profile fit are located to a few millipixels where the noise is
        # low, better than the pixels' own response: a floor keeps one strong ring from
        # outweighing all others.
        sigma = np.maximum(prof.sigma_px, 0.02)
        new = fit_ring_center(pts, frame0, tth, shift, ell, fit_ellipticity, rings="calibrant",
                              sigma_px=sigma, shape=valid.shape)
        moved = float(np.hypot(*(new.shift - shift)))
        fit, shift, ell, scale = new, new.shift, new.ellipticity, new.scale
        inl = fit.inliers
        rms = float(np.sqrt(np.mean(fit.residual_px[inl] ** 2)))
        width_px = float(np.median(pts.width[inl]))
        hw_rel, hw_abs = 0.0, max(4 * rms + 0.5, 1.5)
        say(f"lens round {rnd + 1}: {inl.sum()} points on rings "
            + ",".join(str(k + 1) for k in np.unique(pts.ring[inl])) + ", "
            f"rms {rms:.3f} px, centre moved {moved:.3f} px")
        if moved < CONVERGED_PX and rnd >= 1:
            break
    fr = moved_frame(frame0, shift, ell)
    inl = fit.inliers
    centres = ring_shifts(fr, fit.tth[pts.ring[inl]], pts.chi[inl], pts.ring[inl],
                          fit.residual_px[inl])
    center_cov = fit.shift_cov
    if centres is not None:
        # Rings whose own centres scatter beyond their noise: the common centre is a mean
        # over rings, known to the spread over √rings.
        center_cov = center_cov + np.eye(2) * centres.centre_sigma_px ** 2
    # Rings whose radii scatter about the calibrant's ratios beyond their noise (a lens's
    # higher-order distortion, peak shapes): the camera length is a mean over rings.
    spread = _radius_spread(pts.ring[inl], fit.residual_px[inl],
                            np.tan(fit.tth) * camera_length0 / np.sqrt(np.prod(pix)))
    # A ring of true 2θ lies where the reference frame (distance L0) has tan 2θ' = κ tan 2θ:
    # at radius L0 κ tan 2θ, so the camera length is L0 κ.
    length = camera_length0 * scale
    return LensCalibration(
        center=c0 + shift, center_cov=center_cov, camera_length_m=length,
        camera_length_sigma_m=length * np.hypot(fit.scale_sigma() / scale, spread),
        wavelength_m=wavelength, pixel_m=pix, fit=fit, points=pts, sigma_px=sigma,
        frame=moved_frame(frame_of(equivalent_geometry(detector, length, c0, wavelength)),
                          shift, ell),
        rounds=rnd + 1, ring_centres=centres)


def _radius_spread(ring: np.ndarray, residual_px: np.ndarray, radius_px: np.ndarray) -> float:
    """Relative scatter of the rings' radii about the fit beyond their noise, over
    √rings: what it adds to the camera length's relative 1σ (0 with fewer than three rings).

    Each ring's mean residual over its radius is its own relative camera-length error; their
    scatter beyond their noise is a between-ring variance component, as in `rings.concentric`.

    Parameters
    ----------
    ring : ndarray of int, shape (n,)
    residual_px : ndarray, shape (n,)
    radius_px : ndarray, shape (K,)
        Radius of every ring, pixels (indexed by `ring`).
    """
    ids, inv = np.unique(ring, return_inverse=True)
    if ids.size < 3:
        return 0.0
    count = np.bincount(inv)
    mean = np.bincount(inv, residual_px) / count
    noise = np.sqrt(np.bincount(inv, (residual_px - mean[inv]) ** 2) / np.maximum(count - 1, 1)
                    / count)
    rel, rel_noise = mean / radius_px[ids], noise / radius_px[ids]
    excess = np.var(rel) - np.mean(rel_noise ** 2)
    return float(np.sqrt(max(excess, 0.0) / ids.size))
