"""Beam centre from rings when distance, tilts and wavelength are already known.

The model: the pattern of a reference geometry, moved rigidly in the detector plane by a
shift s (pixels) and, optionally, stretched about the new beam centre by an area-preserving
elliptical distortion, the projector-lens distortion of electron microscopes (the rings of
an untilted detector become concentric ellipses of one axis ratio and orientation, as in
pyxem's `CalibrationGenerator` and Mitchell & Schaffer, Ultramicroscopy 103 (2005) 319,
doi:10.1016/j.ultramic.2005.02.003). Moving the PONI with dist and rotations fixed translates
the detector in its own plane, so the shifted pattern is exactly another pyFAI geometry; the
stretch is affine in pixel indices too, so both fold into a `DetectorFrame`.

Steps: a coarse shift by cross-correlating the binned, band-passed image with the reference
ring pattern (FFT, any shift within the search range, blind to beamstops and edges); control
points along lines of constant χ (calib-ring's extraction); a least-squares fit of the shift,
the distortion and one 2θ per ring (so a slightly changed distance or energy does not bias
the centre), with outlier rejection; two more rounds with narrowed windows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from geocal_cli.core.center.filters import subtract_local_mean
from geocal_cli.core.rings.clustered import at_least, cell_index, clustered_covariance
from geocal_cli.core.rings.concentric import RingCentres, ring_shifts
from geocal_cli.core.rings.controlpoints import ControlPoints, PreparedImage, extract_control_points
from geocal_cli.core.rings.profiles import fit_ring_profiles
from geocal_cli.core.geometry.frame import DetectorFrame, ellipse_of, moved_frame, stretch_matrix
from geocal_cli.core.rings.rounds import expected_rings, window_px
from geocal_cli.errors import CalibrationError


def _binned(data: np.ndarray, valid: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Square-root compressed block means of valid pixels (hot pixels clipped), and the
    blocks with at least half their pixels valid."""
    h, w = data.shape[0] // f * f, data.shape[1] // f * f

    def block_sum(a):
        # Sums of strided slices: several times faster than a 4-D reshape sum.
        rows = sum(a[i:h:f, :w] for i in range(f))
        return sum(rows[:, j::f] for j in range(f))

    total = block_sum(data)
    count = block_sum(valid.view(np.uint8))
    ok = count >= 0.5 * f * f
    mean = np.where(ok, total / np.maximum(count, 1), 0.0).astype(np.float32)
    if ok.any():
        lo, hi = np.percentile(mean[ok], [0.5, 99.0])
        np.clip(mean, min(lo, 0.0), hi, out=mean)
        mean -= min(lo, 0.0)
    return np.where(ok, np.sqrt(mean), 0.0).astype(np.float32), ok


def _bin_factor(shape) -> int:
    """Binning of the coarse search: about 256 binned pixels across, where the whole
    correlation costs about 10 ms and still places the pattern within about one pixel."""
    return max(1, int(round(max(shape) / 256)))


def coarse_shift(data: np.ndarray, valid: np.ndarray, frame: DetectorFrame, tth: np.ndarray,
                 max_shift_px: float, max_scale: float = 0.0) -> tuple[np.ndarray, float, float]:
    """Shift (and radial scale) of the ring pattern from the reference by FFT cross-correlation.

    The image (square-root compressed, hot pixels clipped) and a template of the reference
    rings are binned (`_bin_factor`) and band-passed; the correlation peak within
    ±`max_shift_px` gives the shift to about one binned pixel. With `max_scale`, templates
    of the rings scaled in tan 2θ by factors within 1 ± `max_scale` (steps of half a ring
    width at the outermost ring) are tried and the best correlation wins: a camera length
    or an energy that changed since the reference.

    Parameters
    ----------
    data : ndarray, shape (H, W)
        Counts with invalid pixels set to 0 (`PreparedImage.data`).
    valid : ndarray of bool, shape (H, W)
    frame : DetectorFrame
        Reference geometry.
    tth : ndarray, shape (K,)
        Ring angles, radians.
    max_shift_px : float
    max_scale : float
        Largest relative change of the rings' tan 2θ searched (0: none).

    Returns
    -------
    shift : ndarray, shape (2,)
        (Δd1, Δd2) in pixels.
    contrast : float
        Peak height over the correlation's robust spread (> ~8: a clear match).
    scale : float
        Factor on tan 2θ of every ring (1 without `max_scale`).
    """
    from scipy import fft

    f = _bin_factor(data.shape)
    binned, ok = _binned(data, valid, f)
    img = subtract_local_mean(binned, ok, 5)
    n1, n2 = binned.shape
    g1, g2 = np.meshgrid(np.arange(n1) * f + (f - 1) / 2, np.arange(n2) * f + (f - 1) / 2,
                         indexing="ij")
    t_map, t1, t2 = frame.tth_and_grad(g1, g2)
    grad = np.hypot(t1, t2)
    # Rings drawn wider with radius so that a few % of lens ellipticity still overlaps.
    b1, b2 = frame.beam_center()
    rad = np.hypot(g1 - b1, g2 - b2)
    sig = grad * np.maximum(0.6 * f, 0.01 * rad)
    tth = np.sort(np.asarray(tth, float))
    tth = tth[np.isfinite(tth)]
    # Inner rings weigh more: ellipticity and small tilt errors displace them least.
    weight = (tth[0] / tth) ** 2
    m = int(np.ceil(max_shift_px / f)) + 2
    shape = (fft.next_fast_len(n1 + m), fft.next_fast_len(n2 + m))
    image_ft = fft.rfft2(img, shape, workers=2)
    lags = np.arange(-m, m + 1)
    scales = [1.0]
    on = ok & (t_map <= tth[-1] * (1 + max_scale))
    if max_scale > 0 and on.any():
        # Half a template ring's width at the outermost ring on the detector.
        outer = float(rad[on].max())
        step = 0.5 * max(0.6 * f, 0.01 * outer) / max(outer, 1.0)
        n = int(np.ceil(np.log1p(max_scale) / step))
        scales = np.exp(np.arange(-n, n + 1) * step)
    best = None
    for s in scales:
        ring = np.arctan2(s * np.sin(tth), np.cos(tth))  # tan(ring) = s tan(tth), any 2θ
        k0 = np.searchsorted(ring, t_map)
        # Each binned pixel draws the two rings nearest in 2θ: enough for separated rings.
        template = np.zeros(t_map.shape, np.float32)
        for k in (k0 - 1, k0):
            kk = np.clip(k, 0, ring.size - 1)
            template += (weight[kk] * np.exp(-0.5 * ((t_map - ring[kk]) / sig) ** 2)).astype(np.float32)
        template = subtract_local_mean(template, np.ones_like(ok), 5)
        corr = fft.irfft2(image_ft * np.conj(fft.rfft2(template, shape, workers=2)), shape,
                          workers=2)
        win = corr[np.ix_(lags % shape[0], lags % shape[1])]
        i1, i2 = np.unravel_index(np.argmax(win), win.shape)
        spread = 1.4826 * np.median(np.abs(win - np.median(win))) + 1e-30
        contrast = float((win[i1, i2] - np.median(win)) / spread)
        if best is None or contrast > best[0]:
            best = (contrast, win, i1, i2, float(s))
    contrast, win, i1, i2, scale = best

    def vertex(a, b, c):
        den = a - 2 * b + c
        return 0.5 * (a - c) / den if den < 0 else 0.0

    j1 = vertex(*win[max(i1 - 1, 0):i1 + 2, i2]) if 0 < i1 < win.shape[0] - 1 else 0.0
    j2 = vertex(*win[i1, max(i2 - 1, 0):i2 + 2]) if 0 < i2 < win.shape[1] - 1 else 0.0
    return np.array([lags[i1] + j1, lags[i2] + j2]) * f, contrast, scale


@dataclass(frozen=True)
class RingCenterFit:
    """Outcome of `fit_ring_center`.

    Attributes
    ----------
    shift : ndarray, shape (2,)
        Beam-centre shift (Δd1, Δd2) from the reference, pixels.
    shift_cov : ndarray, shape (2, 2)
        Its covariance, px², scaled by the reduced χ².
    ellipticity : ndarray, shape (2,)
        (e_c, e_s) of `stretch_matrix`; zeros when not fitted.
    ellipticity_cov : ndarray, shape (2, 2) or None
    fitted_ellipticity : bool
    tth : ndarray, shape (K,)
        Fitted 2θ of each ring, radians.
    residual_px : ndarray, shape (n,)
        Signed residual of every point along the ring normal.
    inliers : ndarray of bool, shape (n,)
    scale : float
        With the rings tied to the calibrant: tan 2θ of every ring over its reference value
        (the reference distance over the fitted one); 1 otherwise.
    cov : ndarray, shape (p, p)
        Covariance of (shift, ellipticity if fitted, scale or the rings' 2θ).
    """

    shift: np.ndarray
    shift_cov: np.ndarray
    ellipticity: np.ndarray
    ellipticity_cov: np.ndarray | None
    fitted_ellipticity: bool
    tth: np.ndarray
    residual_px: np.ndarray
    inliers: np.ndarray
    scale: float = 1.0
    cov: np.ndarray | None = None

    def scale_sigma(self) -> float:
        """1σ of `scale` (0 when the rings were free)."""
        n_geo = 4 if self.fitted_ellipticity else 2
        return float(np.sqrt(self.cov[n_geo, n_geo])) if self.cov is not None and \
            self.cov.shape[0] == n_geo + 1 else 0.0

    def ellipticity_sigma(self) -> tuple[float, float]:
        """1σ of the ellipticity's magnitude e and of the major-axis angle (degrees), from
        `ellipticity_cov` projected along and across (e_c, e_s); (0, 0) when not fitted."""
        e = float(np.hypot(*self.ellipticity))
        if not self.fitted_ellipticity or e == 0:
            return 0.0, 0.0
        u = self.ellipticity / e
        v = np.array([-u[1], u[0]])
        cov = self.ellipticity_cov
        return (float(np.sqrt(max(u @ cov @ u, 0.0))),
                float(np.degrees(0.5 * np.sqrt(max(v @ cov @ v, 0.0)) / e)))


def fit_ring_center(cp: ControlPoints, frame: DetectorFrame, tth0: np.ndarray, shift0,
                    ellipticity0=(0.0, 0.0), fit_ellipticity: bool = True,
                    n_rounds: int = 3, clip: float = 4.0, rings: str = "free",
                    sigma_px: np.ndarray | None = None,
                    shape: tuple[int, int] | None = None) -> RingCenterFit:
    """Least-squares shift (and distortion) of the reference pattern onto ring points.

    Parameters
    ----------
    cp : ControlPoints
        Points on rings; `cp.ring` indexes `tth0`.
    frame : DetectorFrame
        Reference geometry.
    tth0 : ndarray, shape (K,)
        Starting 2θ of each ring, radians: each is refined, or all scaled together.
    shift0, ellipticity0 : sequence of 2 floats
        Starting values.
    fit_ellipticity : bool
        Refine the lens distortion (else it stays at `ellipticity0`).
    n_rounds : int
        Fit and reject rounds.
    clip : float
        Points beyond `clip` robust σ (and 0.1 px) are rejected.
    rings : {'free', 'calibrant'}
        One 2θ per ring (a changed distance or energy does not bias the centre), or the
        calibrant's 2θ with one scale of tan 2θ for all (the camera length of an untilted
        detector: tan 2θ = r / L).
    sigma_px : ndarray, shape (n,), optional
        1σ of each point along the radius: a weighted fit.
    shape : (int, int), optional
        The image's shape: the covariance then allows for errors that neighbouring points
        share (a lens's distortion beyond the ellipse, a detector's), widened to the
        cluster-robust one over the detector's cells where that is larger (`clustered`).

    Returns
    -------
    RingCenterFit

    Raises
    ------
    CalibrationError
        Fewer points than parameters plus five.
    """
    used, ring_idx = np.unique(cp.ring, return_inverse=True)
    tan0 = np.tan(np.asarray(tth0, float))
    tied = rings == "calibrant"
    n_geo = 4 if fit_ellipticity else 2
    n_par = n_geo + (1 if tied else used.size)
    wt = 1.0 / np.asarray(sigma_px, float) if sigma_px is not None else np.ones(len(cp))
    if len(cp) < n_par + 5:
        raise CalibrationError(f"too few ring points ({len(cp)}) to fit the beam centre")

    def unpack(x):
        ell = x[2:4] if fit_ellipticity else np.asarray(ellipticity0, float)
        return x[:2], ell, x[n_geo:]

    b_ref = np.array(frame.beam_center())
    d_stretch = (np.array([[-1.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]]))

    def model(x, d1, d2):
        """2θ at the points, |∇2θ| in px⁻¹ and ∂2θ/∂(shift, ellipticity), all analytic.

        A point p sees the reference at q = b_ref + M⁻¹(p − b_ref − s) (`moved_frame`), so
        ∂2θ/∂s = −∇_q2θ·M⁻¹ and ∂2θ/∂e_k = −∇_q2θ·M⁻¹ (∂M/∂e_k) (q − b_ref).
        """
        s, ell, _ = unpack(x)
        minv = np.linalg.inv(stretch_matrix(ell))
        r1, r2 = d1 - b_ref[0] - s[0], d2 - b_ref[1] - s[1]
        q1 = minv[0, 0] * r1 + minv[0, 1] * r2
        q2 = minv[1, 0] * r1 + minv[1, 1] * r2
        t, g1, g2 = frame.tth_and_grad(b_ref[0] + q1, b_ref[1] + q2)
        p1 = g1 * minv[0, 0] + g2 * minv[1, 0]
        p2 = g1 * minv[0, 1] + g2 * minv[1, 1]
        cols = [-p1, -p2]
        for dm in d_stretch[:n_geo - 2]:
            v = minv @ dm
            cols.append(-(g1 * (v[0, 0] * q1 + v[0, 1] * q2) + g2 * (v[1, 0] * q1 + v[1, 1] * q2)))
        return t, np.hypot(p1, p2), np.stack(cols, -1)

    x = np.concatenate([np.asarray(shift0, float),
                        np.asarray(ellipticity0, float) if fit_ellipticity else [],
                        [1.0] if tied else np.asarray(tth0, float)[used]])
    keep = np.ones(len(cp), bool)

    def residual_jacobian(x, sel):
        d1, d2, idx = cp.d1[sel], cp.d2[sel], ring_idx[sel]
        t, g, dgeo = model(x, d1, d2)
        jac = np.zeros((d1.size, n_par))
        jac[:, :n_geo] = dgeo / g[:, None]
        if tied:
            tan = tan0[used][idx]
            ring = np.arctan(x[n_geo] * tan)
            jac[:, n_geo] = -tan / (1 + (x[n_geo] * tan) ** 2) / g
        else:
            ring = x[n_geo:][idx]
            jac[np.arange(d1.size), n_geo + idx] = -1.0 / g
        return (t - ring) / g, jac

    for _ in range(n_rounds):
        # Gauss–Newton: the model is nearly linear in its parameters near the start.
        for _ in range(8):
            res, jac = residual_jacobian(x, keep)
            w = wt[keep]
            scale = np.linalg.norm(jac * w[:, None], axis=0) + 1e-30
            dx = np.linalg.lstsq(jac * w[:, None] / scale, -res * w, rcond=None)[0] / scale
            x = x + dx
            if np.max(np.abs(dx[:2])) < 1e-5:
                break
        res = residual_jacobian(x, slice(None))[0]
        sigma = 1.4826 * np.median(np.abs(res * wt)[keep]) + 1e-9
        new_keep = np.abs(res * wt) <= max(clip * sigma, 0.1 * np.median(wt))
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
        if keep.sum() < n_par + 5:
            raise CalibrationError("too few ring points left after outlier rejection")
    r_in, jac = residual_jacobian(x, keep)
    w = wt[keep]
    dof = max(keep.sum() - n_par, 1)
    jac_w, r_w = jac * w[:, None], r_in * w
    cov = np.linalg.pinv(jac_w.T @ jac_w) * float(np.sum(r_w ** 2) / dof)
    if shape is not None:
        robust = clustered_covariance(jac_w, r_w, cell_index(cp.d1[keep], cp.d2[keep], shape))
        if robust is not None:
            cov = at_least(cov, robust)
    tth = np.asarray(tth0, float).copy()
    if tied:
        tth = np.arctan(x[n_geo] * tan0)
    else:
        tth[used] = x[n_geo:]
    return RingCenterFit(
        shift=x[:2].copy(), shift_cov=cov[:2, :2],
        ellipticity=np.asarray(unpack(x)[1], float).copy(),
        ellipticity_cov=cov[2:4, 2:4] if fit_ellipticity else None,
        fitted_ellipticity=fit_ellipticity, tth=tth, residual_px=res, inliers=keep,
        scale=float(x[n_geo]) if tied else 1.0, cov=cov)


def _significant(fit: RingCenterFit) -> bool:
    """Whether a fitted lens ellipticity exceeds 3σ and an axis ratio of 1.001."""
    e = float(np.hypot(*fit.ellipticity))
    return e > 3 * fit.ellipticity_sigma()[0] and ellipse_of(fit.ellipticity)[0] > 1.001


@dataclass(frozen=True)
class RingRecentering:
    """Outcome of `recenter_on_rings`.

    Attributes
    ----------
    fit : RingCenterFit
    points : ControlPoints
        The last round's points (`fit.inliers` selects those kept).
    coarse_shift : ndarray, shape (2,)
        Shift from the cross-correlation, pixels.
    contrast : float
        Its correlation contrast.
    rings : ndarray of int, shape (k,)
        Rings (indices into the input 2θ) that carry points.
    coverage : ndarray, shape (k,)
        Fraction of 10° azimuth sectors each ring's inliers cover.
    coarse_scale : float
        Factor on the reference rings' tan 2θ from the coarse search.
    ring_centres : RingCentres or None
        Each ring's own centre about the common one and their spread (`rings.concentric`).
    """

    fit: RingCenterFit
    points: ControlPoints
    coarse_shift: np.ndarray
    contrast: float
    rings: np.ndarray
    coverage: np.ndarray
    coarse_scale: float = 1.0
    ring_centres: RingCentres | None = None


def recenter_on_rings(prepared: PreparedImage, valid: np.ndarray, frame: DetectorFrame,
                      tth: np.ndarray, max_shift_px: float = 100.0, ellipticity: str = "auto",
                      n_rounds: int = 3, max_scale: float = 0.0, overlapping: bool = False,
                      say=lambda msg: None) -> RingRecentering:
    """New beam centre from rings of known 2θ (see the module docstring).

    Parameters
    ----------
    prepared : PreparedImage
        The image, from `rings.controlpoints.prepare_image`.
    valid : ndarray of bool, shape (H, W)
    frame : DetectorFrame
        Reference geometry (its beam centre is the old one).
    tth : ndarray, shape (K,)
        2θ of the rings to use, radians, increasing; rings off the detector are ignored.
    max_shift_px : float
        Largest beam move searched.
    ellipticity : {'auto', 'fit', 'none'}
        Lens distortion: always fitted, never, or kept only when significant (> 3σ and an
        axis ratio above 1.001).
    n_rounds : int
        Extraction and fit rounds after the coarse shift.
    max_scale : float
        Largest relative change of the rings' radii (camera length, energy) searched
        before the rings are matched.
    overlapping : bool
        Locate the rings by multi-peak profile fits (`rings.profiles`), so that rings too
        close for a centroid (electron patterns' broad overlapping rings) carry points too,
        each weighted by its 1σ.
    say : callable(str)

    Returns
    -------
    RingRecentering

    Raises
    ------
    CalibrationError
        No ring matches (too few points), or the pattern is not found.
    """
    tth = np.asarray(tth, float)
    coarse, contrast, scale = coarse_shift(prepared.data, valid, frame, tth, max_shift_px,
                                           max_scale)
    shift = coarse
    say(f"coarse shift ({shift[1]:+.1f}, {shift[0]:+.1f}) px in (x, y), ring radii ×{scale:.3f}, "
        f"correlation contrast {contrast:.1f}")
    if contrast < 5:
        raise CalibrationError(f"no ring found: the reference rings match nowhere within "
                               f"{max_shift_px:g} px (correlation contrast {contrast:.1f}); "
                               "check the calibrant, the wavelength and --max-shift")
    f = _bin_factor(valid.shape)
    ell = np.zeros(2)
    # The rings start where the scale search put them: matched to the image, not to a
    # camera length that has changed.
    ring_tth = np.arctan2(scale * np.sin(tth), np.cos(tth))
    # Mean radius of each ring: rounds grow outwards from the innermost ring, where lens
    # ellipticity displaces the ring least, so each new ring is predicted by the fit so far.
    chi = np.linspace(-np.pi, np.pi, 36, endpoint=False)
    p1, p2 = frame.pixel_at(ring_tth[:, None], chi[None, :])
    b_ref = frame.beam_center()
    r = np.hypot(p1 - b_ref[0], p2 - b_ref[1])
    radius = np.array([np.median(row[np.isfinite(row)]) if np.isfinite(row).any() else np.inf
                       for row in r])
    # About one point every 8 px of the longest ring: thousands of points, σ ≪ 0.01 px.
    n_chi = int(np.clip(2 * np.pi * np.hypot(*valid.shape) / 2 / 8, 360, 720))
    fr = moved_frame(frame, shift, ell)
    on = expected_rings(valid, fr, ring_tth)
    if on.size == 0:
        raise CalibrationError("no ring of the reference geometry falls on valid pixels")
    hw_max = np.maximum(max(2.0 * f, 6.0), 0.02 * radius)
    # The first round needs room around each ring for the coarse shift's error; rings closer
    # to a neighbour join once the fit predicts them well.
    hw_min = 4.0
    hw = window_px(fr, ring_tth, hw_max)
    first = on[hw[on] >= hw_min]
    if first.size == 0:
        hw_min = 2.0
    reach = 1.6 * (radius[first].min() if first.size else radius[on].min())
    moved = np.inf
    width = 2.0
    for rnd in range(n_rounds + 4):
        fr = moved_frame(frame, shift, ell)
        hw = window_px(fr, ring_tth, hw_max)
        near = (radius <= reach) if overlapping else (hw >= hw_min) & (radius <= reach)
        use = np.intersect1d(np.nonzero(near)[0], expected_rings(valid, fr, ring_tth))
        if use.size == 0:
            raise CalibrationError("no ring of the reference geometry falls on valid pixels")
        sigma = None
        if overlapping:
            prof = fit_ring_profiles(prepared, fr, ring_tth[use], hw_max[use], width,
                                     n_chi=n_chi if rnd else 360)
            cp, sigma = prof.points, np.maximum(prof.sigma_px, 0.02)
        else:
            # The first round only has to bring the coarse shift within the narrow windows.
            cp = extract_control_points(prepared, fr, ring_tth[use], hw[use],
                                        n_chi=n_chi if rnd else 360)
        cp = replace(cp, ring=use[cp.ring])
        fit = fit_ring_center(cp, frame, ring_tth, shift, ell, ellipticity != "none",
                              sigma_px=sigma, shape=valid.shape)
        if ellipticity == "auto" and not _significant(fit):
            fit = fit_ring_center(cp, frame, ring_tth, shift, (0.0, 0.0), False, sigma_px=sigma,
                                  shape=valid.shape)
        moved = float(np.hypot(*(fit.shift - shift)))
        shift, ell, ring_tth = fit.shift, fit.ellipticity, fit.tth
        inl = fit.inliers
        rms = float(np.sqrt(np.mean(fit.residual_px[inl] ** 2)))
        width = float(np.median(cp.width[inl]))
        # Centroid windows hold the whole peak; a profile fit's window is only where the
        # peak may have moved.
        hw_max = np.full(tth.size, max(4 * rms + 0.5, 1.5) if overlapping else
                         max(4 * rms + 1.5, 4 * width, 2.5))
        hw_min = 2.0
        say(f"round {rnd + 1}: {inl.sum()} points on {np.unique(cp.ring[inl]).size} rings, "
            f"rms {rms:.3f} px, centre moved {moved:.3f} px")
        if reach >= radius[on].max():
            n_rounds -= 1
            if n_rounds <= 0 or (moved < 0.005 and rnd >= 1):
                break
        reach *= 2
    sectors = np.clip(((cp.chi + np.pi) / (2 * np.pi) * 36).astype(int), 0, 35)
    rings = np.unique(cp.ring[inl])
    coverage = np.array([np.unique(sectors[inl & (cp.ring == k)]).size / 36 for k in rings])
    centres = ring_shifts(moved_frame(frame, shift, ell), fit.tth[cp.ring[inl]], cp.chi[inl],
                          cp.ring[inl], fit.residual_px[inl])
    return RingRecentering(fit=fit, points=cp, coarse_shift=coarse, contrast=contrast,
                           coarse_scale=scale, ring_centres=centres,
                           rings=rings, coverage=coverage)
