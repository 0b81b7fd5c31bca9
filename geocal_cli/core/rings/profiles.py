"""Control points from multi-peak fits of radial profiles: overlapping rings resolved.

Electron diffraction rings are broad (the beam's convergence, the grains' size) and close
in radius: Au 111 and 200 overlap, so do 311 and 222. A centroid would place one point
between two such rings, or the refinement drops both. Here each azimuth's profile across a
group of overlapping rings is fitted as a straight background plus one Gaussian per ring,
of one width shared by the group, each ring's position free (Levenberg–Marquardt, all
profiles of all groups at once). Each ring then carries its own points with a 1σ along the
radius from the fit's covariance, so that the geometry fit can weight them (a ring standing
on its neighbour's flank is located less well than an isolated one).

The model is the one pyxem and py4DSTEM fit to azimuthal profiles (sums of peaks on a
background); the sampling along lines of constant χ is calib-ring's (`controlpoints`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame
from geocal_cli.core.rings.controlpoints import ControlPoints, PreparedImage, sample_lines

#: Most rings fitted together in one profile; a denser group is left without points (its
#: rings are too close to locate each one).
MAX_GROUP = 4
#: Peaks closer than this many widths (rms σ) are fitted together.
OVERLAP_WIDTHS = 6.0
#: Rings nearer than this many widths to a neighbour form one hump in the profile; a run of
#: such rings longer than `MAX_GROUP` is a continuum no fit divides (`separable_rings`).
BLEND_WIDTHS = 3.0
#: Levenberg–Marquardt iterations (the start is within a window of the solution).
N_ITER = 15


@dataclass(frozen=True)
class ProfilePoints:
    """Outcome of `fit_ring_profiles`.

    Attributes
    ----------
    points : ControlPoints
        One point per ring and azimuth where its peak was found (`width` is the group's
        fitted rms width, `snr` the peak amplitude over its 1σ).
    sigma_px : ndarray, shape (n,)
        1σ of each point along the radius, pixels.
    groups : list of ndarray of int
        Rings fitted together (indices into the input 2θ), one array per group.
    """

    points: ControlPoints
    sigma_px: np.ndarray
    groups: list


def ring_groups(offset: np.ndarray, half_width: np.ndarray, width: float) -> list[np.ndarray]:
    """Rings whose search regions overlap, in runs of neighbours of at most `MAX_GROUP`.

    Two neighbours are fitted together when one's peak, anywhere in its search window, reaches
    into the other's (`OVERLAP_WIDTHS` widths between the window edges). A longer run is
    split at its widest gaps.

    Parameters
    ----------
    offset : ndarray, shape (K,)
        Ring positions along the radius, pixels, increasing.
    half_width : ndarray, shape (K,)
        Search half-window of each ring, pixels.
    width : float
        Rms width of a peak, pixels.

    Returns
    -------
    list of ndarray of int
    """
    gap = np.diff(offset) - half_width[1:] - half_width[:-1]
    cut = list(np.nonzero(gap >= OVERLAP_WIDTHS * width)[0] + 1)
    bounds = [0, *cut, offset.size]
    groups = []
    while bounds[1:]:
        a, b = bounds[0], bounds[1]
        if b - a > MAX_GROUP:
            split = a + 1 + int(np.argmax(gap[a:b - 1]))
            bounds.insert(1, split)
            continue
        groups.append(np.arange(a, b))
        bounds.pop(0)
    return groups


def separable_rings(radius_px: np.ndarray, width_px: float) -> np.ndarray:
    """Rings a multi-peak fit can locate: those not in a run of more than `MAX_GROUP` rings,
    each within `BLEND_WIDTHS` widths of the next.

    A dense calibrant's high orders blend into a continuum (LaB6 at 198 kV on a 1500 × 1200
    detector: 960 rings, 1 px apart beyond the eighth). `ring_groups` groups rings by their
    search windows and splits a long run at its widest gaps, so a continuum went to the fit in
    runs of four cut out of it, each pulled by the peaks beyond its ends: 26 s a round for
    the electron model, which then took a perfect start's camera length 0.35 % off.

    Parameters
    ----------
    radius_px : ndarray, shape (K,)
        Every ring's radius (or position along the radius), pixels, increasing; NaN for
        rings that do not exist.
    width_px : float
        Rms width of a peak, pixels.

    Returns
    -------
    ndarray of bool, shape (K,)
        False for NaN radii.
    """
    radius_px = np.asarray(radius_px, float)
    ok = np.zeros(radius_px.size, bool)
    index = np.nonzero(np.isfinite(radius_px))[0]
    if index.size == 0:
        return ok
    run = np.r_[0, np.cumsum(np.diff(radius_px[index]) >= BLEND_WIDTHS * width_px)]
    ok[index] = np.bincount(run)[run] <= MAX_GROUP
    return ok


def fit_ring_profiles(prepared: PreparedImage, frame: DetectorFrame, tth: np.ndarray,
                      half_width_px: np.ndarray, width_px: float, n_chi: int = 360,
                      step_px: float = 0.5, min_snr: float = 5.0) -> ProfilePoints:
    """Locate every ring of `tth` along many azimuths by fitting overlapping peaks together.

    Parameters
    ----------
    prepared : PreparedImage
    frame : DetectorFrame
        Current geometry: predicts each ring's position (the fit starts there).
    tth : ndarray, shape (K,)
        2θ of the rings, radians, increasing.
    half_width_px : ndarray, shape (K,)
        How far each ring may lie from its prediction, pixels.
    width_px : float
        Starting rms width of the peaks, pixels.
    n_chi : int
        Azimuths, evenly spaced over 2π.
    step_px : float
        Sampling step along the radius.
    min_snr : float
        A peak counts when its amplitude exceeds `min_snr` times its 1σ.

    Returns
    -------
    ProfilePoints
    """
    tth = np.asarray(tth, float)
    hw = np.broadcast_to(np.asarray(half_width_px, float), tth.shape)
    chi = (np.arange(n_chi) + 0.5) * (2 * np.pi / n_chi) - np.pi
    c1, c2, u1, u2 = frame.radial_direction(tth[:, None], chi[None, :])      # (K, J)
    # Position of each ring along its azimuth's line, from the first ring: the lines of
    # constant χ of a flat detector are straight, so every ring of an azimuth lies on one.
    along = (c1 - c1[:1]) * u1[:1] + (c2 - c2[:1]) * u2[:1]
    offset = np.nanmedian(np.where(np.isfinite(along), along, np.nan), axis=1)
    ok = np.isfinite(offset)
    index = np.nonzero(ok)[0]
    groups = [index[g] for g in ring_groups(offset[ok], hw[ok], width_px) if g.size <= MAX_GROUP]
    if not groups:
        return _empty()
    # Groups of one size are fitted together: the arrays of a fit are padded to its largest
    # group and widest window, and most groups are single rings, for which the padding to
    # four peaks cost a dozen times the work. The width's upper bound stays the one of all
    # groups, so that the split does not change any fit.
    size = np.array([g.size for g in groups])
    fits = [_fit_groups(prepared, c1, c2, u1, u2, hw, width_px, step_px,
                        [groups[i] for i in np.nonzero(size == n)[0]])
            for n in np.unique(size)]
    fits = [f for f in fits if f is not None]
    if not fits:
        return _empty()
    max_width = max(f.max_width for f in fits)
    found = [_found(f, max_width, hw, width_px, step_px, min_snr) for f in fits]
    # In the order of one fit of all groups: by group, then azimuth, then ring.
    ring, jj, p, k0, amp, amp_sig, delta_sig, sigma = (np.concatenate(a) for a in zip(*found))
    group_of_lead = np.zeros(tth.size, int)
    group_of_lead[[g[0] for g in groups]] = np.arange(len(groups))
    order = np.lexsort((ring, jj, group_of_lead[k0]))
    ring, jj, p, k0 = ring[order], jj[order], p[order], k0[order]
    pts = ControlPoints(d1=c1[k0, jj] + p * u1[k0, jj], d2=c2[k0, jj] + p * u2[k0, jj],
                        ring=ring.astype(int), chi=chi[jj], snr=(amp / amp_sig)[order],
                        width=sigma[order])
    return ProfilePoints(points=pts, sigma_px=delta_sig[order], groups=groups)


class _Sampled(NamedTuple):
    """The profiles of some ring groups, sampled for one fit (shapes as in `_fit_peaks`;
    `member` (G, n) holds each group's rings, −1 padded, `lead` (G,) its first ring), and half
    their widest window plus one, pixels."""

    s: np.ndarray
    y: np.ndarray
    w: np.ndarray
    o: np.ndarray
    active: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    member: np.ndarray
    lead: np.ndarray
    max_width: float


def _fit_groups(prepared, c1, c2, u1, u2, hw, width_px, step_px, groups) -> _Sampled | None:
    """Sample the profiles of `groups` (arrays of ring indices) for one fit; None when no
    azimuth crosses them."""
    n_max = max(g.size for g in groups)
    G = len(groups)
    lead = np.array([g[0] for g in groups])
    member = np.full((G, n_max), -1)
    for i, g in enumerate(groups):
        member[i, :g.size] = g
    active = member >= 0
    m = np.where(active, member, lead[:, None])
    # Predicted offsets of each member from its group's lead ring, per azimuth.  (G, n, J)
    o = ((c1[m] - c1[lead][:, None]) * u1[lead][:, None] + (c2[m] - c2[lead][:, None]) * u2[lead][:, None])
    pad = hw[m] + 3.0 * width_px                                            # (G, n)
    lo = np.min(np.where(active[..., None], o - pad[..., None], np.inf), axis=1)   # (G, J)
    hi = np.max(np.where(active[..., None], o + pad[..., None], -np.inf), axis=1)
    span = np.nanmax(hi - lo)
    if not np.isfinite(span):
        return None
    n_s = int(np.ceil(span / step_px)) + 1
    s0 = np.where(np.isfinite(lo), lo, 0.0)
    s = s0[..., None] + np.arange(n_s) * step_px                           # (G, J, S)
    # Samples along the lead ring's line: from its point at s = 0.
    prof, good = sample_lines(prepared, c1[lead] + s0 * u1[lead], c2[lead] + s0 * u2[lead],
                              u1[lead], u2[lead], (np.arange(n_s) * step_px).astype(np.float32))
    inside = (s <= hi[..., None]) & np.isfinite(u1[lead])[..., None] & np.isfinite(lo)[..., None]
    w = (good & inside).astype(float)
    y = prof.astype(float) * w
    o = np.where(np.isfinite(o), o, 0.0).transpose(0, 2, 1)                 # (G, J, n)
    return _Sampled(s, y, w, o, active, lo, hi, member, lead, 0.5 * np.nanmax(hi - lo) + 1)


def _found(sampled: _Sampled, max_width, hw, width_px, step_px, min_snr):
    """Fit sampled profiles and keep the peaks found: (ring, azimuth index, position along
    the lead ring's line, lead ring, amplitude, its 1σ, position 1σ, group width), one entry
    per point."""
    s, y, w, o, active, lo, hi, member, lead, _ = sampled
    delta, amp, amp_sig, delta_sig, sigma = _fit_peaks(
        s, y, w, o, np.broadcast_to(active[:, None, :], o.shape), width_px, lo, hi, max_width)
    # The least-squares 1σ treats every sample as independent noise. Samples `step_px` apart
    # share pixels (one independent sample per pixel, not 1 / step_px), and bilinear
    # interpolation at a random fraction f averages the noise of neighbours down to
    # ((1 − f)² + f²)² = 4/9 of its variance on average, so the residuals understate it by
    # 2/3: both together make the true 1σ larger by √(1 / step_px) · 3/2 (2.1 for 0.5 px
    # steps; measured 2.0-2.6 on rings of known radius).
    inflate = np.sqrt(max(1.0 / step_px, 1.0)) * 1.5
    amp_sig, delta_sig = amp_sig * inflate, delta_sig * inflate
    m = np.where(active, member, lead[:, None])
    pos = o + delta                                                         # (G, J, n)
    gg, jj, ii = np.nonzero(active[:, None, :] & (amp > min_snr * amp_sig) & (amp > 0)
                            & (np.abs(delta) < hw[m][:, None, :])
                            & (delta_sig < 0.5 * np.maximum(sigma, 1.0)[..., None])
                            & (w.sum(-1) >= 0.8 * ((hi - lo) / step_px))[..., None]
                            & np.isfinite(delta_sig))
    return (member[gg, ii], jj, pos[gg, jj, ii], lead[gg], amp[gg, jj, ii], amp_sig[gg, jj, ii],
            delta_sig[gg, jj, ii], sigma[gg, jj])


def _empty() -> ProfilePoints:
    z = np.zeros(0)
    return ProfilePoints(ControlPoints(z, z, np.zeros(0, int), z, z, z), z, [])


def _fit_peaks(s, y, w, o, active, width, lo, hi, max_width):
    """Levenberg–Marquardt fit of y ≈ a + b·t + Σ A_i exp(−(s − o_i − δ_i)²/2σ²), all
    profiles at once.

    Parameters
    ----------
    s, y, w : ndarray, shape (G, J, S)
        Sample positions, values (0 where unused) and weights (0 or 1).
    o : ndarray, shape (G, J, n)
        Predicted peak positions; `active` (same shape) says which peaks exist.
    width : float
        Starting σ.
    lo, hi : ndarray, shape (G, J)
        Window ends (the background slope's variable t runs from −1 to 1 over it).
    max_width : float
        Upper bound of σ, pixels: half the widest window of all groups plus one, also when
        the groups are fitted in parts.

    Returns
    -------
    delta, amp, amp_sigma, delta_sigma : ndarray, shape (G, J, n)
    sigma : ndarray, shape (G, J)
        Fitted peak width.
    """
    n = o.shape[-1]
    mid = 0.5 * (lo + hi)[..., None]
    t = (s - mid) / np.maximum(0.5 * (hi - lo), 1.0)[..., None]
    act = active.astype(float)
    # Parameters: a, b, A_1..n, δ_1..n, log σ.
    P = 3 + 2 * n
    x = np.zeros(o.shape[:2] + (P,))
    x[..., -1] = np.log(width)

    def model(x):
        a, b = x[..., 0:1], x[..., 1:2]
        amp, delta = x[..., 2:2 + n], x[..., 2 + n:2 + 2 * n]
        sig = np.exp(x[..., -1])[..., None, None]
        z = (s[..., None] - o[..., None, :] - delta[..., None, :]) / sig    # (G, J, S, n)
        g = np.exp(-0.5 * z * z) * act[..., None, :]
        f = a + b * t + (g @ amp[..., None])[..., 0]
        jac = np.empty(s.shape + (P,))
        jac[..., 0] = 1.0
        jac[..., 1] = t
        jac[..., 2:2 + n] = g
        ag = g * amp[..., None, :]
        jac[..., 2 + n:2 + 2 * n] = ag * z / sig
        jac[..., -1] = np.sum(ag * z * z, -1)
        return f, jac

    # The linear parameters at the start, by linear least squares.
    _, jac = model(x)
    lin = jac[..., :2 + n] * w[..., None]
    h = np.swapaxes(lin, -1, -2) @ lin + 1e-9 * np.eye(2 + n)
    x[..., :2 + n] = np.linalg.solve(h, np.swapaxes(lin, -1, -2) @ y[..., None])[..., 0]
    x[..., 2:2 + n] = np.maximum(x[..., 2:2 + n], 0.0)
    mu = np.full(o.shape[:2], 1e-3)
    f, jac = model(x)
    cost = np.sum(w * (y - f) ** 2, -1)
    fixed = np.concatenate([np.zeros(o.shape[:2] + (2,)), 1 - act, 1 - act,
                            np.zeros(o.shape[:2] + (1,))], -1)
    for _ in range(N_ITER):
        jw = jac * w[..., None] * (1 - fixed)[..., None, :]
        h = np.swapaxes(jw, -1, -2) @ jac
        g = (np.swapaxes(jw, -1, -2) @ (y - f)[..., None])[..., 0]
        diag = np.diagonal(h, axis1=-2, axis2=-1)
        damp = mu[..., None] * np.maximum(diag, 1e-12) + fixed
        step = np.linalg.solve(h + damp[..., None] * np.eye(P), g[..., None])[..., 0]
        x_new = x + step
        x_new[..., -1] = np.clip(x_new[..., -1], np.log(0.3), np.log(max_width))
        f_new, jac_new = model(x_new)
        cost_new = np.sum(w * (y - f_new) ** 2, -1)
        better = cost_new < cost
        x = np.where(better[..., None], x_new, x)
        f = np.where(better[..., None], f_new, f)
        jac = np.where(better[..., None, None], jac_new, jac)
        cost = np.where(better, cost_new, cost)
        mu = np.where(better, mu / 3, mu * 4)
    jw = jac * w[..., None] * (1 - fixed)[..., None, :]
    h = np.swapaxes(jw, -1, -2) @ jac + np.eye(P) * fixed[..., None, :]
    dof = np.maximum(w.sum(-1) - (3 + 2 * act.sum(-1)), 1)
    with np.errstate(invalid="ignore"):
        cov = np.linalg.pinv(h) * (cost / dof)[..., None, None]
    var = np.diagonal(cov, axis1=-2, axis2=-1)
    amp_sig = np.sqrt(np.maximum(var[..., 2:2 + n], 0))
    delta_sig = np.sqrt(np.maximum(var[..., 2 + n:2 + 2 * n], 0))
    delta_sig = np.where(active, delta_sig, np.inf)
    return (x[..., 2 + n:2 + 2 * n], x[..., 2:2 + n], amp_sig + 1e-30, delta_sig,
            np.exp(x[..., -1]))
