"""Motion models: each image's PONI parameters and wavelength as expressions of shared
parameters and the image's position.

A model is what pyFAI's goniometer files hold (`pyFAI.goniometer.ExtendedTransformation`:
one numexpr expression per PONI parameter and for the wavelength, over named parameters,
positions and constants), so a fitted model is a `goniometer.json` pyFAI loads as it is. The
presets are the usual motions:

========== ============================================================ ===================
preset     per image                                                    position
========== ============================================================ ===================
fixed      one geometry for all (several exposures of one setup)         any (unused)
calibrants one geometry, each image its own calibrant                    any (unused)
arm-2theta rot2 = rot2_offset + rot2_scale × pos (detector on an arm     arm angle, degrees
           turning about an axis through the sample), optionally
           rot1 = rot1 + rot1_scale × pos (an arm axis slightly askew)
translation the direct-beam distance direct_dist + dist_scale × pos, the   stage, mm
           beam centre (center1, center2) fixed or drifting linearly
           with pos (a stage along the beam; a tilted detector's PONI
           moves with it)
energy     λ = hc / (energy_scale × pos + energy_offset), a monochromator  energy, keV
           whose energies are off by a constant
========== ============================================================ ===================

A parameter's start is the value its unit fixes (a scale of π/180 for degrees, 10⁻³ for mm)
or what the images calibrated alone say (`seed`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

#: The per-image quantities a model gives, in pyFAI's order (m, m, m, rad, rad, rad, m).
POSE_KEYS = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "wavelength")
#: Their conditioning scales.
POSE_SCALES = np.array([1e-3, 1e-4, 1e-4, 1e-3, 1e-3, 1e-3, 1e-13])

_GEOMETRY = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")
#: The shared detector term every preset has (`with_pixel_scale`).
PIXEL_SCALE = "pixel_scale"


@dataclass(frozen=True)
class MotionModel:
    """Per-image PONI parameters and wavelength as expressions of shared parameters.

    Attributes
    ----------
    name : str
        The preset's name, or "expressions".
    param_names : tuple of str
        The shared parameters, in the order of every parameter vector.
    expressions : dict[str, str]
        One numexpr expression per key of `POSE_KEYS`, over `param_names`, `pos_names`
        and `constants`.
    start : dict[str, float]
        Starting value of every parameter (SI units; scales per position unit).
    scales : dict[str, float]
        Typical size of a change of each parameter (conditioning, difference steps).
    free : tuple of str
        Parameters fitted unless the user says otherwise.
    pos_names : tuple of str
        Names of the position axes (one per motor).
    constants : dict[str, float]
    """

    name: str
    param_names: tuple
    expressions: dict
    start: dict
    scales: dict
    free: tuple
    pos_names: tuple = ("pos",)
    constants: dict = field(default_factory=dict)

    def transformation(self):
        """pyFAI's `ExtendedTransformation` of this model (what `goniometer.json` holds)."""
        from pyFAI.goniometer import ExtendedTransformation

        return ExtendedTransformation(
            **{f"{k}_expr": self.expressions[k] for k in POSE_KEYS},
            param_names=list(self.param_names), pos_names=list(self.pos_names),
            constants=dict(self.constants))

    def vector(self, values: dict) -> np.ndarray:
        """Parameter vector, shape (p,), from a mapping name → value (missing: `start`)."""
        return np.array([float(values.get(n, self.start[n])) for n in self.param_names])

    def poses(self, theta: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Each image's (dist, poni1, poni2, rot1, rot2, rot3, wavelength).

        Parameters
        ----------
        theta : ndarray, shape (p,)
        positions : ndarray, shape (n,) or (n, len(pos_names))

        Returns
        -------
        ndarray, shape (n, 7)
            m, rad, wavelength in m.

        Raises
        ------
        ValueError
            An expression does not give a finite value.
        """
        return self._poses_at(np.asarray(theta, float)[None, :], positions)[0]

    def _poses_at(self, thetas: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """`poses` for m parameter vectors at once, shape (m, n, 7) from thetas (m, p): one
        evaluation per expression, which matters in `design`'s 2p perturbed vectors."""
        import numexpr
        from pyFAI.goniometer import CONST_hc, CONST_q

        pos = np.asarray(positions, float).reshape(len(positions), -1)
        shape = (thetas.shape[0], pos.shape[0])
        # The constants pyFAI's transformations define (hc in keV·Å).
        env = {"pi": np.pi, "hc": CONST_hc, "q": CONST_q, **self.constants}
        env.update({name: thetas[:, j:j + 1] for j, name in enumerate(self.param_names)})
        env.update({name: pos[None, :, i] for i, name in enumerate(self.pos_names)})
        out = np.empty(shape + (len(POSE_KEYS),))
        for j, key in enumerate(POSE_KEYS):
            out[..., j] = np.broadcast_to(numexpr.evaluate(self.expressions[key], local_dict=env),
                                          shape)
        if not np.all(np.isfinite(out)):
            raise ValueError("the motion model gives no finite geometry for some position")
        return out

    def theta_scales(self) -> np.ndarray:
        """`scales` as a vector, shape (p,)."""
        return np.array([self.scales[n] for n in self.param_names])

    def design(self, theta: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """∂pose/∂θ by central differences (exact for the presets, which are affine in θ).

        Returns
        -------
        ndarray, shape (n, 7, p)
        """
        theta = np.asarray(theta, float)
        steps = self.theta_scales() * 1e-2
        shifts = np.diag(steps)
        ends = self._poses_at(np.concatenate([theta + shifts, theta - shifts]), positions)
        p = theta.size
        return np.moveaxis((ends[:p] - ends[p:]) / (2 * steps)[:, None, None], 0, -1)

    def seed(self, poses: np.ndarray, positions: np.ndarray, free: tuple,
             theta0: np.ndarray | None = None) -> np.ndarray:
        """Shared parameters that best reproduce geometries calibrated image by image.

        Gauss–Newton on the poses in units of `POSE_SCALES`, minimum-norm steps, so that a
        direction the calibrated images do not fix keeps its start.

        Parameters
        ----------
        poses : ndarray, shape (k, 7)
            The geometries of the images calibrated alone.
        positions : ndarray, shape (k,) or (k, len(pos_names))
        free : tuple of str
            Parameters to adjust; the others keep `theta0`.
        theta0 : ndarray, shape (p,), optional
            Start (default: `start`).

        Returns
        -------
        ndarray, shape (p,)
        """
        theta = self.vector({}) if theta0 is None else np.array(theta0, float)
        idx = [self.param_names.index(n) for n in free]
        if not idx or len(poses) == 0:
            return theta
        sc = self.theta_scales()[idx]
        for _ in range(3):
            r = ((poses - self.poses(theta, positions)) / POSE_SCALES).ravel()
            j = (self.design(theta, positions)[:, :, idx] / POSE_SCALES[None, :, None]).reshape(r.size, -1)
            step = np.linalg.lstsq(j * sc, r, rcond=1e-10)[0] * sc
            theta[idx] += step
        return theta


def _identity(name: str, free: tuple) -> MotionModel:
    return MotionModel(
        name=name, param_names=POSE_KEYS, expressions={k: k for k in POSE_KEYS},
        start={"dist": 0.1, "poni1": 0.0, "poni2": 0.0, "rot1": 0.0, "rot2": 0.0, "rot3": 0.0,
               "wavelength": 1e-10},
        scales=dict(zip(POSE_KEYS, POSE_SCALES)), free=free)


def preset(name: str) -> MotionModel:
    """A preset motion model by name (see the module docstring), with the shared
    `pixel_scale` (`with_pixel_scale`).

    Raises
    ------
    KeyError
        Unknown name (`PRESETS` lists the names).
    """
    return with_pixel_scale(PRESETS[name]())


def with_pixel_scale(model: MotionModel) -> MotionModel:
    """The model with a shared detector term: `pixel_scale`, the true pixel size over the
    nominal one (binned or badly known pixels), fixed at 1 unless freed.

    A detector whose pixels are s times larger, at distance D and PONI P, shows every pixel
    at the 2θ and χ of the nominal detector at D/s and P/s (every length scales alike), so
    the poses stay those of the nominal detector (what integration with its detector file
    needs) with the distance and PONI divided by s; the physical ones are s times those. A
    single image cannot tell s from the distance; known stage steps can.
    """
    expr = dict(model.expressions)
    for key in ("dist", "poni1", "poni2"):
        expr[key] = f"({expr[key]}) / pixel_scale"
    return replace(model, param_names=model.param_names + (PIXEL_SCALE,), expressions=expr,
                   start={**model.start, PIXEL_SCALE: 1.0},
                   scales={**model.scales, PIXEL_SCALE: 1e-5})


def _fixed() -> MotionModel:
    return _identity("fixed", _GEOMETRY[:5])


def _calibrants() -> MotionModel:
    return _identity("calibrants", _GEOMETRY[:5])


def _arm() -> MotionModel:
    # rot1_scale: an arm axis not quite square to the detector's axis 1 turns the detector
    # about axis 1 as it moves (pyFAI's own arm example fits it); fixed at 0 unless freed.
    names = ("dist", "poni1", "poni2", "rot1", "rot1_scale", "rot2_offset", "rot2_scale",
             "rot3", "wavelength")
    expr = {k: k for k in POSE_KEYS}
    expr.update(rot1="rot1 + rot1_scale * pos", rot2="rot2_offset + rot2_scale * pos")
    return MotionModel(
        name="arm-2theta", param_names=names, expressions=expr,
        start={"dist": 0.1, "poni1": 0.0, "poni2": 0.0, "rot1": 0.0, "rot1_scale": 0.0,
               "rot2_offset": 0.0, "rot2_scale": np.pi / 180, "rot3": 0.0, "wavelength": 1e-10},
        scales={"dist": 1e-3, "poni1": 1e-4, "poni2": 1e-4, "rot1": 1e-3, "rot1_scale": 1e-5,
                "rot2_offset": 1e-3, "rot2_scale": 1e-5, "rot3": 1e-3, "wavelength": 1e-13},
        free=("dist", "poni1", "poni2", "rot1", "rot2_offset"))


def _translation() -> MotionModel:
    # The stage moves the detector along the beam: the direct-beam distance changes and the
    # beam centre stays (unless it drifts); a tilted detector's PONI moves with it. pyFAI's
    # own Fit2D conversion relates them: centre = PONI + dist·(tan rot2 / cos rot1, −tan rot1)
    # and directDist = dist / (cos rot1 cos rot2).
    names = ("direct_dist", "dist_scale", "center1", "center1_drift", "center2",
             "center2_drift", "rot1", "rot2", "rot3", "wavelength")
    expr = {k: k for k in POSE_KEYS}
    reach = "(direct_dist + dist_scale * pos)"
    expr.update(dist=f"{reach} * cos(rot1) * cos(rot2)",
                poni1=f"center1 + center1_drift * pos - {reach} * sin(rot2)",
                poni2=f"center2 + center2_drift * pos + {reach} * sin(rot1) * cos(rot2)")
    return MotionModel(
        name="translation", param_names=names, expressions=expr,
        start={"direct_dist": 0.1, "dist_scale": 1e-3, "center1": 0.0, "center1_drift": 0.0,
               "center2": 0.0, "center2_drift": 0.0, "rot1": 0.0, "rot2": 0.0, "rot3": 0.0,
               "wavelength": 1e-10},
        scales={"direct_dist": 1e-3, "dist_scale": 1e-6, "center1": 1e-4, "center1_drift": 1e-7,
                "center2": 1e-4, "center2_drift": 1e-7, "rot1": 1e-3, "rot2": 1e-3,
                "rot3": 1e-3, "wavelength": 1e-13},
        free=("direct_dist", "center1", "center2", "rot1", "rot2", "wavelength"))


def _energy() -> MotionModel:
    names = ("dist", "poni1", "poni2", "rot1", "rot2", "rot3", "energy_offset", "energy_scale")
    expr = {k: k for k in _GEOMETRY}
    expr["wavelength"] = "1e-10 * hc / (energy_scale * pos + energy_offset)"
    return MotionModel(
        name="energy", param_names=names, expressions=expr,
        start={"dist": 0.1, "poni1": 0.0, "poni2": 0.0, "rot1": 0.0, "rot2": 0.0, "rot3": 0.0,
               "energy_offset": 0.0, "energy_scale": 1.0},
        scales={"dist": 1e-3, "poni1": 1e-4, "poni2": 1e-4, "rot1": 1e-3, "rot2": 1e-3,
                "rot3": 1e-3, "energy_offset": 1e-3, "energy_scale": 1e-5},
        free=("dist", "poni1", "poni2", "rot1", "rot2", "energy_offset"))


PRESETS = {"fixed": _fixed, "calibrants": _calibrants, "arm-2theta": _arm,
           "translation": _translation, "energy": _energy}


def from_goniometer(trans_function: dict, param: list | None = None,
                    wavelength: float | None = None) -> MotionModel:
    """The model of a pyFAI goniometer file's `trans_function` (the expert's escape).

    Parameters
    ----------
    trans_function : dict
        As in pyFAI's `goniometer.json`: `param_names`, `pos_names`, `<key>_expr` for the
        PONI parameters (and optionally `wavelength_expr`), `constants`.
    param : list of float, optional
        Starting values (the file's `param`); zeros otherwise.
    wavelength : float, optional
        The wavelength where the file has no `wavelength_expr`, metres.

    Returns
    -------
    MotionModel
        Every parameter free, except those no expression uses.

    Raises
    ------
    ValueError
        An expression is missing, or there is no wavelength.
    """
    names = tuple(trans_function["param_names"])
    expr = {}
    for key in POSE_KEYS:
        e = trans_function.get(f"{key}_expr")
        if e is None and key == "wavelength":
            if wavelength is None:
                raise ValueError("the goniometer file has no wavelength_expr: give the wavelength")
            e = repr(float(wavelength))
        if e is None:
            raise ValueError(f"the goniometer file has no {key}_expr")
        expr[key] = e
    start = dict(zip(names, map(float, param))) if param is not None else dict.fromkeys(names, 0.0)
    constants = {k: float(v) for k, v in (trans_function.get("constants") or {}).items()}
    used = set(re.findall(r"[A-Za-z_]\w*", " ".join(expr.values())))
    scales = {n: 1e-3 * max(abs(start[n]), 1e-3) for n in names}
    return MotionModel(name="expressions", param_names=names, expressions=expr, start=start,
                       scales=scales, free=tuple(n for n in names if n in used),
                       pos_names=tuple(trans_function.get("pos_names") or ("pos",)),
                       constants=constants)
