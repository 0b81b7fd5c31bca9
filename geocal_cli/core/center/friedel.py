"""Beam centre of a single-crystal spot pattern from its Friedel pairs.

Reflections g and −g of a crystal at a zone axis leave the sample at the same 2θ and at
azimuths χ and χ + π (both lie on the Ewald sphere's intersection with the zero-order Laue
zone), with equal intensities by Friedel's law. In the gnomonic plane normal to the beam,
(x1/x3, x2/x3) of the lab position, the spot pattern is therefore point-symmetric about the
direct beam for a flat detector of any tilt, and it stays so under the projector-lens
ellipticity of electron microscopes (an affine stretch about the centre maps a symmetric
pattern to a symmetric pattern). This is the centring used for selected-area patterns
(e.g. Zuo & Spence, *Advanced Transmission Electron Microscopy*, Springer 2017, ch. 3,
doi:10.1007/978-1-4939-6607-3).

Steps: sub-pixel spots (local maxima of a band-passed image, weighted centroids); a vote of
the midpoints of all pairs of bright spots, weighted by how equal their intensities are (a
lattice is point-symmetric about every half lattice vector too; only intensities tell
Friedel mates from lattice neighbours), within the search range of the reference centre;
then mutual nearest-mirror pairs and a least-squares fit of the beam shift that makes every
pair symmetric, with outlier rejection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.center.filters import subtract_local_mean
from geocal_cli.core.geometry.frame import DetectorFrame, moved_frame
from geocal_cli.errors import CalibrationError


@dataclass(frozen=True)
class Spots:
    """Diffraction spots.

    Attributes
    ----------
    d1, d2 : ndarray, shape (n,)
        Sub-pixel centres (pixel indices, pixel centre of pixel i at i).
    intensity : ndarray, shape (n,)
        Background-subtracted counts within the centroid window.
    snr : ndarray, shape (n,)
        Smoothed peak height over the image's robust noise.
    """

    d1: np.ndarray
    d2: np.ndarray
    intensity: np.ndarray
    snr: np.ndarray

    def __len__(self) -> int:
        return int(self.d1.size)


def _window_moments(net: np.ndarray, valid: np.ndarray, p1: np.ndarray, p2: np.ndarray,
                    radius: int):
    """Positive-part weighted centroid (c1, c2), rms radius σ (per axis) and sum of `net`
    in (2r+1)² windows around integer positions p1, p2 (shape (n,)), all vectorised."""
    h, w = net.shape
    off = np.arange(-radius, radius + 1)
    i1 = np.clip(p1[:, None, None] + off[None, :, None], 0, h - 1)
    i2 = np.clip(p2[:, None, None] + off[None, None, :], 0, w - 1)
    wts = np.clip(net[i1, i2], 0, None) * valid[i1, i2]
    tot = wts.sum((1, 2))
    safe = np.where(tot > 0, tot, 1.0)
    c1 = (wts * i1).sum((1, 2)) / safe
    c2 = (wts * i2).sum((1, 2)) / safe
    var = (wts * ((i1 - c1[:, None, None]) ** 2 + (i2 - c2[:, None, None]) ** 2)).sum((1, 2)) / safe
    return c1, c2, np.sqrt(var / 2), tot


def find_spots(image: np.ndarray, valid: np.ndarray, min_snr: float = 8.0,
               max_spots: int = 600, radius_px: int | None = None) -> Spots:
    """Locate bright spots with sub-pixel centres.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    min_snr : float
        Minimum smoothed peak height over the robust noise of the band-passed image.
    max_spots : int
        Keep the brightest this many.
    radius_px : int, optional
        Half-size of the centroid window; by default three times the spots' rms radius,
        measured on the brightest spots (a window that cuts the spot's tails pulls the
        centroid towards the brightest pixel).

    Returns
    -------
    Spots
        Possibly empty; spots closer than the window radius to a brighter one are merged
        into it (a saturated plateau has many equal maxima).
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    img = np.where(valid, image, 0).astype(np.float32)
    net = subtract_local_mean(img, valid, 61)
    # The smoothing suppresses single noisy pixels before the maxima are taken.
    smooth = ndimage.gaussian_filter(net, 1.0)
    sample = smooth[valid][::7]
    noise = 1.4826 * float(np.median(np.abs(sample - np.median(sample)))) + 1e-12
    peak = (smooth == ndimage.maximum_filter(smooth, 5)) & valid & (smooth > min_snr * noise)
    p1, p2 = np.nonzero(peak)
    order = np.argsort(smooth[p1, p2])[::-1][:max_spots]
    p1, p2 = p1[order], p2[order]
    if radius_px is None:
        r = 8
        for _ in range(2):
            sigma = _window_moments(net, valid, p1[:30], p2[:30], r)[2]
            r = int(np.clip(np.ceil(3 * np.median(sigma)) if sigma.size else 3, 3, 15))
        radius_px = r
    c1, c2, _, tot = _window_moments(net, valid, p1, p2, radius_px)
    ok = tot > 0
    c1, c2, tot, snr = c1[ok], c2[ok], tot[ok], smooth[p1, p2][ok] / noise
    # Spots are sorted brightest first, so dropping the later member of a close pair keeps
    # the brighter one.
    drop = np.zeros(c1.size, bool)
    if c1.size > 1:
        close = cKDTree(np.column_stack([c1, c2])).query_pairs(radius_px, output_type="ndarray")
        if close.size:
            drop[np.max(close, axis=1)] = True
    return Spots(d1=c1[~drop], d2=c2[~drop], intensity=tot[~drop], snr=snr[~drop])


def plane_scale(frame: DetectorFrame) -> float:
    """The detector's normal distance over its mean pixel size: gnomonic coordinates times
    this are in pixel-sized units."""
    return abs(float(frame.origin @ frame.normal)) / np.sqrt(
        np.linalg.norm(frame.e1) * np.linalg.norm(frame.e2))


def plane_coordinates(frame: DetectorFrame, d1, d2) -> np.ndarray:
    """Gnomonic coordinates (x1/x3, x2/x3) · `plane_scale` of pixels, shape (n, 2).

    Near the beam one unit is about one pixel; the direct beam is at (0, 0), and a point at
    u has tan 2θ = |u| / `plane_scale` and χ = atan2(u1, u2).
    """
    x1, x2, x3 = frame.xyz(d1, d2)
    return np.column_stack([x1 / x3, x2 / x3]) * plane_scale(frame)


@dataclass(frozen=True)
class FriedelFit:
    """Outcome of `recenter_on_friedel_pairs`.

    Attributes
    ----------
    shift : ndarray, shape (2,)
        Beam-centre shift (Δd1, Δd2) from the reference, pixels.
    shift_cov : ndarray, shape (2, 2)
        Its covariance, px².
    pairs : ndarray of int, shape (m, 2)
        Indices into `spots` of the Friedel pairs used.
    asymmetry_px : ndarray, shape (m,)
        |u_i + u_j| of each pair in the fitted frame: twice that pair's own centre error.
    votes : float
        Intensity-weighted pair votes at the coarse centre.
    spots : Spots
    """

    shift: np.ndarray
    shift_cov: np.ndarray
    pairs: np.ndarray
    asymmetry_px: np.ndarray
    votes: float
    spots: Spots


def _coarse_center(u: np.ndarray, intensity: np.ndarray, max_shift_px: float,
                   n_brightest: int = 300) -> tuple[np.ndarray, float]:
    """Midpoint vote of pairs of bright spots (plane coordinates `u`, shape (n, 2)) within
    `max_shift_px` of the origin; returns the winning centre and its weighted votes."""
    from scipy import ndimage

    top = np.argsort(intensity)[::-1][:n_brightest]
    u, inten = u[top], np.maximum(intensity[top], 1e-9)
    i, j = np.triu_indices(top.size, 1)
    mid = 0.5 * (u[i] + u[j])
    far = np.hypot(*(u[i] - u[j]).T) > 4.0
    near = np.all(np.abs(mid) <= max_shift_px + 2, axis=1) & far
    # Friedel mates have equal intensities: a lattice neighbour pair rarely does.
    weight = np.exp(-0.5 * (np.log(inten[i] / inten[j]) / 0.3) ** 2)[near]
    edges = np.arange(-np.ceil(max_shift_px) - 2, np.ceil(max_shift_px) + 3)
    hist, _, _ = np.histogram2d(mid[near, 0], mid[near, 1], bins=(edges, edges), weights=weight)
    smooth = ndimage.gaussian_filter(hist, 1.0)
    k1, k2 = np.unravel_index(np.argmax(smooth), smooth.shape)
    centre = np.array([edges[k1] + 0.5, edges[k2] + 0.5])
    close = np.hypot(*(mid[near] - centre).T) < 2.0
    return centre, float(weight[close].sum())


def _mirror_pairs(u: np.ndarray, intensity: np.ndarray, tol_px: float) -> np.ndarray:
    """Mutual nearest-mirror pairs: j is the spot nearest −u_i and i the one nearest −u_j,
    within `tol_px`, intensities within a factor 3; shape (m, 2) with i < j."""
    from scipy.spatial import cKDTree

    dist, j = cKDTree(u).query(-u)
    i = np.arange(u.shape[0])
    inten = np.maximum(intensity, 1e-9)
    ok = (j[j] == i) & (i < j) & (dist < tol_px) & (np.abs(np.log(inten / inten[j])) < np.log(3))
    return np.column_stack([i[ok], j[ok]])


def recenter_on_friedel_pairs(spots: Spots, frame: DetectorFrame, max_shift_px: float = 100.0,
                              min_pairs: int = 4, max_asymmetry_px: float = 1.0,
                              n_rounds: int = 5, say=lambda msg: None) -> FriedelFit:
    """New beam centre as the centre of symmetry of Friedel pairs (module docstring).

    Parameters
    ----------
    spots : Spots
        From `find_spots`.
    frame : DetectorFrame
        Reference geometry (its beam centre is the old one; its tilt is kept).
    max_shift_px : float
        Largest beam move searched.
    min_pairs : int
        Fewer pairs than this is no centre.
    max_asymmetry_px : float
        Pairs symmetric only to this rms (chance pairs of a ring or a random field, paired
        within the 3 px start window, reach about 2 px) are no centre.
    n_rounds : int
        Pairing and fitting rounds.
    say : callable(str)

    Returns
    -------
    FriedelFit

    Raises
    ------
    CalibrationError
        Too few spots or Friedel pairs, or pairs not symmetric to `max_asymmetry_px`.
    """
    if len(spots) < 2 * min_pairs:
        raise CalibrationError(f"no Friedel pairs: {len(spots)} spots found, need at least "
                               f"{2 * min_pairs}; is this a single-crystal spot pattern?")
    b_ref = np.array(frame.beam_center())
    centre, votes = _coarse_center(plane_coordinates(frame, spots.d1, spots.d2),
                                   spots.intensity, max_shift_px)
    # The pixel seen along the voted direction gives the starting shift.
    pix = np.array(frame.pixel_at(np.arctan(np.hypot(*centre) / plane_scale(frame)),
                                  np.arctan2(centre[0], centre[1]))).ravel()
    shift = pix - b_ref
    say(f"{len(spots)} spots; coarse centre shift ({shift[1]:+.1f}, {shift[0]:+.1f}) px in "
        f"(x, y) from {votes:.1f} weighted pair votes")
    tol = 3.0

    def residual(s, pairs):
        u = plane_coordinates(moved_frame(frame, s), spots.d1, spots.d2)
        return (u[pairs[:, 0]] + u[pairs[:, 1]]).ravel()

    def linearised(s, pairs):
        r = residual(s, pairs)
        jac = np.column_stack([(residual(s + step, pairs) - r) / 1e-3
                               for step in (np.array([1e-3, 0.0]), np.array([0.0, 1e-3]))])
        return r, jac

    pairs = np.zeros((0, 2), int)
    for _ in range(n_rounds):
        pairs = _mirror_pairs(plane_coordinates(moved_frame(frame, shift), spots.d1, spots.d2),
                              spots.intensity, tol)
        if pairs.shape[0] < min_pairs:
            raise CalibrationError(f"no Friedel pairs: {pairs.shape[0]} of {len(spots)} spots "
                                   f"pair up within {tol:.1f} px of symmetric positions (need "
                                   f"{min_pairs}); is this a single-crystal zone-axis pattern?")
        # Gauss–Newton on two parameters; the model is linear to within 1e-6 px here.
        for _ in range(3):
            r, jac = linearised(shift, pairs)
            dx = np.linalg.lstsq(jac, -r, rcond=None)[0]
            shift = shift + dx
        asym = np.hypot(*residual(shift, pairs).reshape(-1, 2).T)
        rms = float(np.sqrt(np.mean(asym**2)))
        # Narrow the pairing towards the measured asymmetry, never widen it: chance pairs
        # would join a wider window.
        new_tol = float(np.clip(4 * rms, 1.0, tol))
        if new_tol > 0.95 * tol:
            break
        tol = new_tol
    if rms > max_asymmetry_px:
        raise CalibrationError(f"no Friedel pairs: the {pairs.shape[0]} best candidate pairs are "
                               f"symmetric only to {rms:.2f} px rms (need < {max_asymmetry_px:g}); "
                               "spots on rings or a pattern off a zone axis pair by chance")
    r, jac = linearised(shift, pairs)
    dof = max(r.size - 2, 1)
    cov = np.linalg.inv(jac.T @ jac) * float(np.sum(r**2) / dof)
    return FriedelFit(shift=shift, shift_cov=cov, pairs=pairs,
                      asymmetry_px=np.hypot(*r.reshape(-1, 2).T), votes=votes, spots=spots)
