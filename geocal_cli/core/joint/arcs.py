"""Blind start of a joint fit from ring arcs when no image calibrates alone.

Each image shows one or a few ring arcs (a strip detector on a 2θ arm sees one ring per
frame): no single image fixes a geometry, but the arcs of all images together do, through
the motion model. The search starts the model's distance parameter on a logarithmic grid
(the beam centre at the detector's middle, the rotations at the model's start), assigns
every arc the calibrant ring nearest its median 2θ, fits the shared parameters on the arcs'
ridge pixels (`fit.joint_refine`), and repeats assignment and fit until the assignment
holds. Starts that end on the same assignment are one solution; the best must stand clear
of any solution with another assignment, or the arcs do not decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.frame import frame_of, make_geometry, ring_shift_px
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.joint.fit import ImagePoints, joint_refine
from geocal_cli.core.joint.model import MotionModel
from geocal_cli.errors import CalibrationError

#: The runner-up must fit this many times worse than the best.
CLEAR_MARGIN = 2.0
#: Solutions whose rings lie within this many pixels (rms over every image) of the best's
#: are the best itself (an assignment that differs only on a stray or ambiguous short arc).
SAME_PX = 2.0
#: Ridge pixels used per image, shared among its arcs (a random subset: they only start the
#: fit), and at least this many per arc.
PIXELS_PER_IMAGE = 600
MIN_PIXELS_PER_ARC = 40


@dataclass(frozen=True)
class ArcStart:
    """The start the arcs give.

    Attributes
    ----------
    theta : ndarray, shape (p,)
    rings : list of list of int
        Per image, the calibrant ring (0-based) of each of its arcs.
    rms_px : float
        Of the ridge pixels about their rings.
    runner_up : tuple or None
        (rms_px, rings) of the best solution with another assignment.
    """

    theta: np.ndarray
    rings: list
    rms_px: float
    runner_up: tuple | None


def image_arcs(ridges, min_pixels: int = 60, seed: int = 0) -> list:
    """An image's ring arcs: its connected ridge groups of at least `min_pixels`, each a
    random subset of its pixels (`PIXELS_PER_IMAGE` in all, `MIN_PIXELS_PER_ARC` at least).

    Parameters
    ----------
    ridges : RidgePixels

    Returns
    -------
    list of (ndarray, ndarray)
        (d1, d2) per arc.
    """
    rng = np.random.default_rng(seed)
    out = []
    kept = ridges.arcs(min_pixels)
    per_arc = max(MIN_PIXELS_PER_ARC, PIXELS_PER_IMAGE // max(len(kept), 1))
    for idx in kept:
        idx = rng.choice(idx, min(per_arc, idx.size), replace=False)
        out.append((ridges.d1[idx], ridges.d2[idx]))
    return out


def _points(detector, model, theta, positions, arcs, d_spacings):
    poses = model.poses(theta, positions)
    points, rings = [], []
    for pose, image_arcs_, dsp in zip(poses, arcs, d_spacings):
        frame = frame_of(make_geometry(detector, *pose[:6]))
        tth_r = ring_tth(dsp, pose[6])
        d1s, d2s, ds, ks = [], [], [], []
        for d1, d2 in image_arcs_:
            t = np.nanmedian(frame.tth(d1, d2))
            k = int(np.nanargmin(np.abs(tth_r - t))) if np.isfinite(t) else 0
            d1s.append(d1)
            d2s.append(d2)
            ds.append(np.full(d1.size, dsp[k]))
            ks.append(k)
        rings.append(ks)
        if d1s:
            d1c, d2c = np.concatenate(d1s), np.concatenate(d2s)
            points.append(ImagePoints(d1c, d2c, np.concatenate(ds), np.ones(d1c.size)))
        else:
            points.append(ImagePoints.none())
    return points, rings


def search_arcs(detector, model: MotionModel, positions: np.ndarray, arcs: list,
                d_spacings: list, theta0: np.ndarray, free: tuple,
                distance: str = "dist", dist_range: tuple = (0.05, 3.0),
                n_starts: int = 16) -> ArcStart:
    """Shared parameters and ring assignments from the ring arcs of all images.

    Parameters
    ----------
    detector : pyFAI.detectors.Detector
    model : MotionModel
    positions : ndarray, shape (n,)
    arcs : list of list of (d1, d2)
        Per image, its arcs (`image_arcs`).
    d_spacings : list of ndarray
        Per image, the calibrant's d-spacings, metres, decreasing.
    theta0 : ndarray, shape (p,)
        Values of the parameters the search does not start (wavelength, scales).
    free : tuple of str
    distance : str
        The model's parameter started on the grid.
    dist_range : (float, float)
        Metres.
    n_starts : int

    Returns
    -------
    ArcStart

    Raises
    ------
    CalibrationError
        Fewer arcs than needed, no start converging, or two assignments fitting alike.
    """
    n_arcs = sum(len(a) for a in arcs)
    if n_arcs < 2:
        raise CalibrationError(f"the images show {n_arcs} ring arc(s): too few to search a geometry")
    names = model.param_names
    lam_index = names.index("wavelength") if "wavelength" in names else None
    solutions: dict = {}
    for dist in np.geomspace(*dist_range, n_starts):
        theta = np.array(theta0, float)
        theta[names.index(distance)] = dist
        for key, size in (("poni1", detector.shape[0] * detector.pixel1),
                          ("poni2", detector.shape[1] * detector.pixel2),
                          ("center1", detector.shape[0] * detector.pixel1),
                          ("center2", detector.shape[1] * detector.pixel2)):
            if key in names:
                theta[names.index(key)] = size / 2
        rings = None
        result = None
        for _ in range(5):
            points, new_rings = _points(detector, model, theta, positions, arcs, d_spacings)
            if new_rings == rings:
                break
            rings = new_rings
            try:
                # A short budget: a start far from the truth is not worth more, and the kept
                # solution is refined on control points afterwards.
                result = joint_refine(detector, model, positions, points, theta, free, n_rounds=2,
                                      max_nfev=30)
            except ValueError:
                result = None
                break
            theta = model.vector(result.values)
            if lam_index is not None and theta[lam_index] <= 0:
                result = None
                break
        if result is None or not np.all(np.isfinite(theta)):
            continue
        poses = model.poses(theta, positions)
        if np.any(poses[:, 0] <= 0):
            continue
        rms = float(np.sqrt(np.nanmean(result.rms_px() ** 2)))
        key = tuple(map(tuple, rings))
        if key not in solutions or rms < solutions[key][0]:
            solutions[key] = (rms, theta)
    if not solutions:
        raise CalibrationError("no start from the ring arcs converged to a geometry")
    ranked = sorted(solutions.items(), key=lambda kv: kv[1][0])
    (best_rings, (best_rms, best_theta)) = ranked[0]
    others = [(rms, [list(r) for r in rings]) for rings, (rms, theta) in ranked[1:]
              if _apart_px(detector, model, best_theta, theta, positions) > SAME_PX]
    runner = others[0] if others else None
    if runner is not None and runner[0] < CLEAR_MARGIN * best_rms:
        raise CalibrationError(
            f"the ring arcs fit two assignments alike: rings {_rings_text(best_rings)} "
            f"({best_rms:.2f} px) and {_rings_text(runner[1])} ({runner[0]:.2f} px)")
    return ArcStart(best_theta, [list(r) for r in best_rings], best_rms, runner)


def _apart_px(detector, model, theta_a, theta_b, positions) -> float:
    """Largest rms (over each image's pixels, a coarse grid) of the distance between the
    rings two solutions put there."""
    h, w = detector.shape
    d1, d2 = (g.ravel().astype(float) for g in np.meshgrid(np.linspace(0, h - 1, 12),
                                                            np.linspace(0, w - 1, 40),
                                                            indexing="ij"))
    worst = 0.0
    for pa, pb in zip(model.poses(theta_a, positions), model.poses(theta_b, positions)):
        moved = ring_shift_px(frame_of(make_geometry(detector, *pa[:6])),
                              frame_of(make_geometry(detector, *pb[:6])), d1, d2)
        worst = max(worst, float(np.sqrt(np.nanmean(moved ** 2))))
    return worst


def _rings_text(rings) -> str:
    return " / ".join(",".join(str(k + 1) for k in r) for r in rings)
