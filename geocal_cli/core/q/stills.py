"""q consistency of indexed DIALS experiments: crystal model against pixel positions.

For every reflection three q vectors are compared (DIALS' convention, |s| = 1/λ):
q_bragg = S R(φ) F A h from the crystal model, the prediction q_pred on the Ewald sphere
(`prediction.stills_predict`, as DIALS' stills predictor), and q_pixel = s1 − s0 with s1 along
the laboratory position of the reflection on its panel; the table's own s1 − s0 is checked
against both where present. The excitation error |q_bragg + s0| − |s0| is reported apart
from the geometric residual Δq = q_pixel − q_pred.

The residual is then explained (`diagnosis.explain`) by rigid moves of the whole detector
(distance along its normal, beam centre, two tilts and the turn about the normal, about the
point where the beam meets it) and the wavelength. Before that, discrete slips that no
small change explains are tried on up to 20 000 reflections (the continuous diagnosis uses up
to 200 000; beyond that a random subset tells no more): the detector mirrored in x or
in y (a "Y-axis flip") and the crystal frame turned by any of the 23 rotations that map
the laboratory axes onto each other (a missing 90° or 180° fixed or setting rotation).
A slip is named when, after the continuous fit, it leaves less than half the residual.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from geocal_cli.core.q.diagnosis import Diagnosis, NormalEquations, explain
from geocal_cli.core.q.rigid import PARAMETERS, STEPS, DetectorAxes, jacobian
from geocal_cli.core.q.prediction import (Crystals, Panels, q_bragg, q_from_positions, ray_intersection,
                                    stills_predict)

#: Reflections used to test the discrete slips, and to diagnose continuous errors.
MAX_SLIP_SAMPLE = 20_000
MAX_DIAGNOSIS_SAMPLE = 200_000


@dataclass(frozen=True)
class Reflections:
    """The columns of a DIALS reflection table that the check reads.

    Attributes
    ----------
    h : ndarray of int, shape (n, 3)
        Miller indices.
    exp : ndarray of int, shape (n,)
        Experiment index (into the experiment list).
    panel : ndarray of int, shape (n,)
        Panel index into the stacked `Panels`.
    xy : ndarray, shape (n, 2)
        Positions checked (observed or calculated), mm on the panel.
    phi : ndarray, shape (n,) or None
        Scan angle of each reflection, rad (None for stills).
    xy_cal : ndarray, shape (n, 2) or None
        DIALS' predicted positions (`xyzcal.mm`), mm.
    s1 : ndarray, shape (n, 3) or None
        The table's s1, Å⁻¹.
    """

    h: np.ndarray
    exp: np.ndarray
    panel: np.ndarray
    xy: np.ndarray
    phi: np.ndarray | None = None
    xy_cal: np.ndarray | None = None
    s1: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> "Reflections":
        """The reflections selected by an index array or boolean mask."""
        pick = [None if v is None else v[keep] for v in
                (self.h, self.exp, self.panel, self.xy, self.phi, self.xy_cal, self.s1)]
        return Reflections(*pick)


@dataclass(frozen=True)
class Slip:
    """A discrete error of the models (a mirrored detector or a turned crystal frame).

    Attributes
    ----------
    kind : str
        'detector mirror' or 'crystal rotation'.
    description : str
    matrix : ndarray, shape (3, 3)
        Applied to the detector's laboratory positions or to q_bragg.
    rms_before, rms_after : float
        Rms |Δq| (Å⁻¹) of the model as given and with the slip undone, each after the
        continuous fit.
    alternatives : tuple of str
        Other slips that fit within 25 % as well: stills alone cannot tell them apart (a
        crystal turned 180° about y predicts the spots of a detector mirrored in x).
    """

    kind: str
    description: str
    matrix: np.ndarray
    rms_before: float
    rms_after: float
    alternatives: tuple = ()

    def text(self) -> str:
        """The slip and its equivalents in one phrase."""
        return " or, equally, ".join((self.description,) + self.alternatives)


@dataclass(frozen=True)
class StillsCheck:
    """Outcome of `check_experiments`.

    Attributes
    ----------
    q_bragg, q_pred, q_pixel : ndarray, shape (n, 3)
        Å⁻¹, laboratory frame.
    dq : ndarray, shape (n, 3)
        q_pixel − q_pred.
    excitation : ndarray, shape (n,)
        Distance of q_bragg from the Ewald sphere, Å⁻¹.
    delpsi : ndarray, shape (n,)
        DIALS' Δψ, rad.
    xy_pred : ndarray, shape (n, 2)
        Predicted positions, mm.
    position_error_px : ndarray, shape (n,)
        |checked position − predicted position|, pixels.
    table : dict
        Agreement with the table's own columns (max differences), where present.
    diagnosis : Diagnosis
        Continuous detector/beam errors behind Δq (after undoing `slip`, if any).
    slip : Slip or None
    """

    q_bragg: np.ndarray
    q_pred: np.ndarray
    q_pixel: np.ndarray
    dq: np.ndarray
    excitation: np.ndarray
    delpsi: np.ndarray
    xy_pred: np.ndarray
    position_error_px: np.ndarray
    table: dict
    diagnosis: Diagnosis
    slip: Slip | None


def cube_rotations() -> list[np.ndarray]:
    """The 24 proper rotations that map the axes ±x, ±y, ±z onto each other, identity first."""
    out = []
    for perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2)):
        for signs in product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.linalg.det(m) > 0:
                out.append(m)
    out.sort(key=lambda m: -np.trace(m))
    return out


def describe_rotation(m: np.ndarray) -> str:
    """'90° about +z', '180° about (1, 1, 0)'…: a rotation matrix as angle and axis."""
    angle = np.degrees(np.arccos(np.clip((np.trace(m) - 1) / 2, -1, 1)))
    w, v = np.linalg.eig(m)
    axis = np.real(v[:, np.argmin(np.abs(w - 1))])
    if angle < 179:
        # The axis sign for which the turn is right-handed by +angle.
        skew = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
        axis = axis * np.sign(axis @ skew)
    else:
        axis = axis * np.sign(axis[np.argmax(np.abs(axis) > 1e-6)])
    axis = axis / np.abs(axis[np.abs(axis) > 1e-6]).min()
    names = "xyz"
    if np.count_nonzero(np.abs(axis) > 1e-6) == 1:
        i = int(np.argmax(np.abs(axis)))
        return f"{angle:.0f}° about {'+' if axis[i] > 0 else '−'}{names[i]}"
    return f"{angle:.0f}° about ({', '.join(f'{a:.0f}' for a in axis)})"


class _Model:
    """Δq as a function of rigid detector moves and the wavelength, for fixed reflections."""

    def __init__(self, crystals: Crystals, panels: Panels, refl: Reflections, q: np.ndarray):
        self.q = q
        self.s0 = crystals.s0[refl.exp]
        self.lab = panels.lab(refl.panel, refl.xy)
        self.axes = DetectorAxes.of(panels.fast[0], panels.slow[0], panels.origin[0], self.s0[0],
                                    panels.pixel_size[0], mm=1.0)
        self.q_pred = stills_predict(q, self.s0)[0] - self.s0

    def residual(self, p: np.ndarray) -> np.ndarray:
        """Δq (n, 3) with the detector moved and the wavelength scaled by `p` (PARAMETERS' units)."""
        if p[6] == 0:
            s0, q_pred = self.s0, self.q_pred
        else:
            s0 = self.s0 / (1 + p[6] / 100)
            q_pred = stills_predict(self.q, s0)[0] - s0
        return q_from_positions(self.axes.move(self.lab, p), s0) - q_pred

    def jacobian(self) -> np.ndarray:
        """∂Δq/∂p, shape (3n, 7)."""
        return jacobian(self.residual, STEPS)

    def fitted_rms(self) -> float:
        """Rms |Δq| after the best linear continuous fit."""
        r = self.residual(np.zeros(7)).ravel()
        rss = NormalEquations(r, self.jacobian()).fit(list(range(7)))[1]
        return float(np.sqrt(rss / r.size * 3))


def _mirrored(panels: Panels, m: np.ndarray) -> Panels:
    return panels.moved(m, np.zeros(3), np.zeros(3))


def _sample(refl: Reflections, q: np.ndarray, size: int, seed: int) -> tuple[Reflections, np.ndarray]:
    """A seeded random subset of at most `size` reflections."""
    n = refl.h.shape[0]
    if n <= size:
        return refl, q
    pick = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    return refl.subset(pick), q[pick]


def find_slip(crystals: Crystals, panels: Panels, refl: Reflections, q: np.ndarray,
              seed: int = 0) -> Slip | None:
    """The discrete slip (detector mirror or crystal-frame rotation) that best explains Δq.

    Parameters
    ----------
    crystals, panels, refl
        As for `check_experiments`.
    q : ndarray, shape (n, 3)
        q_bragg of the reflections.
    seed : int
        Seed of the reflection subsample.

    Returns
    -------
    Slip or None
        None when undoing no slip halves the continuously fitted rms.
    """
    refl, q = _sample(refl, q, MAX_SLIP_SAMPLE, seed)
    base = _Model(crystals, panels, refl, q).fitted_rms()
    trials = [("detector mirror", "the detector mirrored in x (x → −x)", np.diag([-1.0, 1, 1])),
              ("detector mirror", "the detector mirrored in y (y → −y, a Y-axis flip)", np.diag([1.0, -1, 1]))]
    trials += [("crystal rotation", f"the crystal frame turned by {describe_rotation(m.T)}", m)
               for m in cube_rotations()[1:]]
    scored = []
    for kind, text, m in trials:
        if kind == "detector mirror":
            rms = _Model(crystals, _mirrored(panels, m), refl, q).fitted_rms()
        else:
            rms = _Model(crystals, panels, refl, q @ m.T).fitted_rms()
        scored.append((rms, kind, text, m))
    scored.sort(key=lambda t: t[0])
    rms, kind, text, m = scored[0]
    if rms >= 0.5 * base:
        return None
    return Slip(kind, text, m, base, rms, tuple(t[2] for t in scored[1:] if t[0] <= 1.25 * rms))


def check_experiments(crystals: Crystals, panels: Panels, refl: Reflections) -> StillsCheck:
    """Compare crystal-model, predicted, pixel and table q for every reflection.

    Parameters
    ----------
    crystals : Crystals
    panels : Panels
    refl : Reflections

    Returns
    -------
    StillsCheck

    Raises
    ------
    ValueError
        A reflection beyond the limiting sphere, or too few reflections to diagnose.
    """
    q = q_bragg(crystals, refl.h, refl.exp, refl.phi)
    s0 = crystals.s0[refl.exp]
    s1, delpsi, excitation = stills_predict(q, s0)
    xy_pred = ray_intersection(panels, refl.panel, s1)
    q_pixel = q_from_positions(panels.lab(refl.panel, refl.xy), s0)
    pixel = panels.pixel_size[refl.panel]
    table = {}
    if refl.xy_cal is not None:
        q_cal = q_from_positions(panels.lab(refl.panel, refl.xy_cal), s0)
        table["prediction_vs_xyzcal_px"] = float(np.nanmax(np.abs((xy_pred - refl.xy_cal) / pixel)))
        if refl.s1 is not None:
            table["q_pixel_xyzcal_vs_table_s1"] = float(np.abs(q_cal - (refl.s1 - s0)).max())
    if refl.s1 is not None:
        table["q_pred_vs_table_s1"] = float(np.abs(s1 - refl.s1).max())
    slip = find_slip(crystals, panels, refl, q)
    fixed_panels, fixed_q = panels, q
    if slip is not None and slip.kind == "detector mirror":
        fixed_panels = _mirrored(panels, slip.matrix)
    elif slip is not None:
        fixed_q = q @ slip.matrix.T
    model = _Model(crystals, fixed_panels, *_sample(refl, fixed_q, MAX_DIAGNOSIS_SAMPLE, 1))
    diagnosis = explain(model.residual(np.zeros(7)).ravel(), model.jacobian(), list(PARAMETERS))
    return StillsCheck(q_bragg=q, q_pred=s1 - s0, q_pixel=q_pixel, dq=q_pixel - (s1 - s0),
                       excitation=excitation, delpsi=delpsi, xy_pred=xy_pred,
                       position_error_px=np.hypot(*((refl.xy - xy_pred) / pixel).T),
                       table=table, diagnosis=diagnosis, slip=slip)
