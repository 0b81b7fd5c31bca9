"""One least-squares problem over the control points of many images that share a detector.

Each image's residuals are those of a single calibration (`rings.refine`: 2θ of the point
minus the ring's Bragg angle, over the local |∇2θ|, in pixels); its pose comes from the
motion model. The Jacobian is the chain rule: ∂residual/∂pose (pyFAI geometry
differentiated through the detector frame, Bragg's law for λ) times ∂pose/∂θ (the model's
design). Rounds sample each image's rings at the geometry the model predicts, with each
image's own ring bookkeeping (`rings.rounds.RingState`), so rings join as the model
tightens and rings or sectors that do not fit are dropped as in calib-ring.

Unlike pyFAI's `GoniometerRefinement` (SLSQP on one scalar, no uncertainties) the optimum
gives 1σ and correlations of the shared parameters, and the directions the images do not fix
are named instead of being fitted to noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import PARAM_NAMES, frame_of, make_geometry
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.joint.model import POSE_KEYS, MotionModel
from geocal_cli.core.rings.refine import covariance, ring_tth_derivative, tth_jacobian
from geocal_cli.core.rings.rounds import RingState, sample_rings
from geocal_cli.errors import CalibrationError

#: |correlation| above which two free parameters are named as moving together.
INSEPARABLE = 0.999
#: A pose quantity is determined when its 1σ is within this tolerance (relative for the
#: distance and the wavelength, in pixels for the PONI, radians for the rotations): 0.1 %
#: of the distance, a pixel, a milliradian, and the 10⁻⁴ bandwidth of a Si(111)
#: monochromator (a fit that cannot place λ within the beam's own spread says nothing of it).
TOLERANCE = {"dist": 1e-3, "poni1": 1.0, "poni2": 1.0, "rot1": 1e-3, "rot2": 1e-3,
             "rot3": 1e-3, "wavelength": 1e-4}


@dataclass(frozen=True)
class ImagePoints:
    """Control points of one image.

    Attributes
    ----------
    d1, d2 : ndarray, shape (n,)
        Pixel indices (slow, fast).
    d_spacing : ndarray, shape (n,)
        d-spacing of each point's ring, metres.
    weights : ndarray, shape (n,)
        Inverse 1σ of each point, px⁻¹.
    """

    d1: np.ndarray
    d2: np.ndarray
    d_spacing: np.ndarray
    weights: np.ndarray

    @classmethod
    def none(cls) -> "ImagePoints":
        """No points: an image that shows no ring where the model puts them."""
        return cls(*(np.empty(0),) * 4)


@dataclass(frozen=True)
class JointRefinement:
    """Outcome of a joint fit.

    Attributes
    ----------
    values : dict[str, float]
        Every shared parameter, fixed ones included (SI units, scales per position unit).
    sigma : dict[str, float]
        1σ of the free parameters (inf where the images do not fix it).
    correlation : ndarray, shape (q, q)
        Of the free parameters, in `free` order.
    free : tuple of str
    condition : float
        Condition number of the scaled Jacobian.
    poses : ndarray, shape (n_images, 7)
        Each image's (dist, poni1, poni2, rot1, rot2, rot3, wavelength).
    pose_cov : ndarray, shape (n_images, 7, 7)
        Their covariance, propagated from the shared parameters' (inf where not finite).
    residual_px : list of ndarray
        Per image, the signed radial residual of every point, pixels.
    inliers : list of ndarray of bool
        Per image, the points the outlier rejection kept.
    feeds : dict[str, tuple of str]
        For each pose key, the free parameters it depends on.
    """

    values: dict
    sigma: dict
    correlation: np.ndarray
    free: tuple
    condition: float
    poses: np.ndarray
    pose_cov: np.ndarray
    residual_px: list
    inliers: list
    feeds: dict

    def undetermined(self, pixel_size: float) -> list:
        """The pose quantities the images do not determine (1σ beyond `TOLERANCE` on some
        image), each with its worst 1σ and the free parameters that move together in it.

        Parameters
        ----------
        pixel_size : float
            Metres (the PONI tolerance is one pixel).

        Returns
        -------
        list of (str, float, float, list of (str, str, float))
            (pose key, worst 1σ in the tolerance's unit, tolerance, the correlated pairs of
            free parameters it depends on).
        """
        scale = np.array([1.0, pixel_size, pixel_size, 1.0, 1.0, 1.0, 1.0])
        rel = np.array([k in ("dist", "wavelength") for k in POSE_KEYS])
        sig = self.pose_sigma() / np.where(rel, np.abs(self.poses), scale)
        worst = np.max(sig, axis=0) if len(sig) else np.zeros(len(POSE_KEYS))
        i, j = np.triu_indices(len(self.free), 1)
        strong = np.abs(self.correlation[i, j]) > INSEPARABLE
        pairs = [(self.free[a], self.free[b], float(self.correlation[a, b]))
                 for a, b in zip(i[strong], j[strong])]
        return [(k, float(w), TOLERANCE[k],
                 [p for p in pairs if p[0] in self.feeds[k] or p[1] in self.feeds[k]])
                for k, w in zip(POSE_KEYS, worst) if not w <= TOLERANCE[k]]

    def pose_sigma(self) -> np.ndarray:
        """1σ of every image's pose, shape (n_images, 7)."""
        return np.sqrt(np.abs(np.diagonal(self.pose_cov, axis1=1, axis2=2)))

    def rms_px(self) -> np.ndarray:
        """Each image's rms residual over its inliers, pixels, shape (n_images,)."""
        return np.array([np.sqrt(np.mean(r[k] ** 2)) if k.any() else np.nan
                         for r, k in zip(self.residual_px, self.inliers)])


def _residuals(geometry, poses, points, grads, keep):
    out = []
    for pose, pts, g, k in zip(poses, points, grads, keep):
        t = frame_of(geometry, pose[:6]).tth(pts.d1[k], pts.d2[k])
        out.append((t - ring_tth(pts.d_spacing[k], pose[6])) * pts.weights[k] / g[k])
    return np.concatenate(out)


def _jacobian(geometry, poses, design, points, grads, keep, sc):
    out = []
    for pose, dsg, pts, g, k in zip(poses, design, points, grads, keep):
        a = np.empty((int(k.sum()), 7))
        a[:, :6] = tth_jacobian(geometry, pose[:6], pts.d1[k], pts.d2[k], PARAM_NAMES, np.ones(6))
        a[:, 6] = -ring_tth_derivative(pose[6], pts.d_spacing[k])
        out.append((a @ dsg) * sc * (pts.weights[k] / g[k])[:, None])
    return np.concatenate(out)


def joint_refine(detector, model: MotionModel, positions: np.ndarray, points: list,
                 theta0: np.ndarray, free: tuple, n_rounds: int = 3,
                 clip: float = 4.0, max_nfev: int = 100) -> JointRefinement:
    """Fit the shared parameters of a motion model on the control points of all images.

    Parameters
    ----------
    detector : pyFAI.detectors.Detector
        Shared by all images.
    model : MotionModel
    positions : ndarray, shape (n_images,) or (n_images, len(model.pos_names))
    points : list of ImagePoints
        One per image (an image without points contributes nothing).
    theta0 : ndarray, shape (p,)
        Start.
    free : tuple of str
        Parameters fitted; the others stay at `theta0`.
    n_rounds : int
        Fit / reject rounds: soft-L1 loss, then plain least squares on the inliers.
    clip : float
        Points beyond `clip` robust σ (and 0.3 px) of their image are rejected.
    max_nfev : int
        Evaluations per round (a start far from the truth is not worth more).

    Returns
    -------
    JointRefinement

    Raises
    ------
    ValueError
        Fewer points than free parameters, or a free name the model does not have.
    """
    from scipy.optimize import least_squares

    unknown = set(free) - set(model.param_names)
    if unknown:
        raise ValueError(f"the {model.name} model has no parameter {', '.join(sorted(unknown))}")
    idx = [model.param_names.index(n) for n in model.param_names if n in free]
    free = tuple(model.param_names[i] for i in idx)
    n_pts = sum(p.d1.size for p in points)
    if n_pts <= len(free):
        raise ValueError(f"{n_pts} control points cannot fix {len(free)} parameters")
    geometry = make_geometry(detector, 0.1, 0.0, 0.0)
    sc = model.theta_scales()[idx]
    theta = np.array(theta0, float)

    def unpack(x):
        t = theta.copy()
        t[idx] += x * sc
        return t

    def grads_at(t):
        return [frame_of(geometry, pose[:6]).tth_gradient(p.d1, p.d2)
                for pose, p in zip(model.poses(t, positions), points)]

    keep = [np.ones(p.d1.size, bool) for p in points]
    grads = grads_at(theta)
    res = None
    for rnd in range(n_rounds):
        def fun(x, keep=keep):
            return _residuals(geometry, model.poses(unpack(x), positions), points, grads, keep)

        def jac(x, keep=keep):
            t = unpack(x)
            design = model.design(t, positions)[:, :, idx]
            return _jacobian(geometry, model.poses(t, positions), design, points, grads, keep, sc)

        loss = "soft_l1" if rnd < n_rounds - 1 else "linear"
        res = least_squares(fun, np.zeros(len(idx)), jac=jac, loss=loss, f_scale=0.5,
                            method="trf", max_nfev=max_nfev)
        theta = unpack(res.x)
        grads = grads_at(theta)
        if rnd < n_rounds - 1:
            full = [np.ones(p.d1.size, bool) for p in points]
            r_all = _residuals(geometry, model.poses(theta, positions), points, grads, full)
            new_keep, start = [], 0
            for p, k in zip(points, keep):
                z = r_all[start:start + p.d1.size]
                start += p.d1.size
                if not k.any():
                    new_keep.append(k)
                    continue
                med = np.median(z[k])
                mad = 1.4826 * np.median(np.abs(z[k] - med))
                new_keep.append(np.abs(z - med) <= max(clip * mad, 0.3 * np.median(p.weights)))
            if sum(int(k.sum()) for k in new_keep) > len(idx):
                keep = new_keep
    sig, corr, cond = covariance(res.jac, res.fun)
    poses = model.poses(theta, positions)
    cov = corr * np.outer(sig, sig)
    design = model.design(theta, positions)[:, :, idx] * sc
    if np.all(np.isfinite(cov)):
        pose_cov = np.einsum("npq,qr,nkr->npk", design, cov, design)
    else:
        pose_cov = np.full(poses.shape + (7,), np.inf)
    full = [np.ones(p.d1.size, bool) for p in points]
    weighted = _residuals(geometry, poses, points, grads, full)
    residual_px, start = [], 0
    for p in points:
        residual_px.append(weighted[start:start + p.d1.size] / p.weights)
        start += p.d1.size
    return JointRefinement(
        values=dict(zip(model.param_names, map(float, theta))),
        sigma={n: float(s * c) for n, s, c in zip(free, sig, sc)}, correlation=corr, free=free,
        condition=cond, poses=poses, pose_cov=pose_cov, residual_px=residual_px,
        inliers=keep, feeds={k: tuple(n for q, n in enumerate(free)
                                      if np.any(design[:, j, q] != 0))
                             for j, k in enumerate(POSE_KEYS)})


def map_sigma_px(detector, pose: np.ndarray, pose_cov: np.ndarray, d1: np.ndarray,
                 d2: np.ndarray) -> np.ndarray:
    """1σ of the 2θ map a pose gives, at pixels, in pixels along the radius: how far the
    rings of any 2θ may sit from where the fit puts them.

    Parameters
    ----------
    detector : pyFAI.detectors.Detector
    pose : ndarray, shape (7,)
    pose_cov : ndarray, shape (7, 7)
    d1, d2 : ndarray, shape (n,)
        Pixel indices.

    Returns
    -------
    ndarray, shape (n,)
        inf where the covariance is not finite.
    """
    if not np.all(np.isfinite(pose_cov)):
        return np.full(np.shape(d1), np.inf)
    geometry = make_geometry(detector, 0.1, 0.0, 0.0)
    j = tth_jacobian(geometry, pose[:6], d1, d2, PARAM_NAMES, np.ones(6))
    var = np.einsum("np,pq,nq->n", j, pose_cov[:6, :6], j)
    return np.sqrt(np.abs(var)) / frame_of(geometry, pose[:6]).tth_gradient(d1, d2)


def joint_rounds(prepared: list, detector, d_spacings: list, model: MotionModel,
                 positions: np.ndarray, theta0: np.ndarray, free: tuple, n_rounds: int = 5,
                 say=lambda msg: None) -> tuple[JointRefinement, list]:
    """Rounds of per-image control-point sampling at the model's geometries and joint fits.

    Parameters
    ----------
    prepared : list of PreparedImage
        One per image.
    detector : pyFAI.detectors.Detector
    d_spacings : list of ndarray
        Each image's calibrant d-spacings, metres, decreasing.
    model, positions, theta0, free
        As for `joint_refine`.
    n_rounds : int
        At most this many rounds (more when rings are dropped, at most twice as many);
        they stop once the total rms settles within 2 %.
    say : callable(str)

    Returns
    -------
    JointRefinement
    list
        Each image's last `ControlPoints` (None for an image that gave none).

    Raises
    ------
    CalibrationError
        No image gives control points at the model's geometry, or no convergence.
    """
    geometry = make_geometry(detector, 0.1, 0.0, 0.0)
    states = [RingState.start(d.size, p.data.shape) for p, d in zip(prepared, d_spacings)]
    theta = np.array(theta0, float)
    rms, result, cps = np.inf, None, []
    for rnd in range(2 * n_rounds):
        poses = model.poses(theta, positions)
        cps, points = [], []
        for prep, dsp, pose, state in zip(prepared, d_spacings, poses, states):
            try:
                cp = sample_rings(prep, geometry, dsp, dict(zip(POSE_KEYS, pose)), state)
            except CalibrationError:
                cp = None
            cps.append(cp)
            points.append(ImagePoints.none() if cp is None else
                          ImagePoints(cp.d1, cp.d2, dsp[cp.ring], state.weights(cp)))
        if all(cp is None for cp in cps):
            raise CalibrationError("no image shows calibrant rings where the model puts them")
        try:
            result = joint_refine(detector, model, positions, points, theta, free)
        except ValueError as exc:
            raise CalibrationError(f"no convergence: {exc}") from exc
        theta = model.vector(result.values)
        per_image = result.rms_px()
        new_rms = float(np.sqrt(np.nanmean(per_image ** 2)))
        n_pts = sum(int(k.sum()) for k in result.inliers)
        say(f"round {rnd + 1}: {n_pts} control points on {sum(cp is not None for cp in cps)} "
            f"images, rms {new_rms:.3f} px")
        dropped = False
        for cp, state, r, k in zip(cps, states, result.residual_px, result.inliers):
            if cp is None:
                continue
            bad, sigma = state.judge(cp, r, k)
            if bad and len(bad) < np.unique(cp.ring).size / 2:
                state.dropped.update(bad)
                dropped = True
            state.hw_max = float(np.clip(4 * sigma + 1.5, 2.5, 8.0))
        if dropped and rnd + 1 < 2 * n_rounds:
            continue
        if rnd + 1 >= n_rounds or (abs(rms - new_rms) < 0.02 * new_rms and rnd >= 1):
            break
        rms = new_rms
    return result, cps
