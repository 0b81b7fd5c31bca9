"""Which geometry error would explain a set of q residuals? A linear regression on the Jacobian.

Residuals r (Δq of control points or reflections) are regressed on the columns of the model's
Jacobian J = ∂r/∂p, one column per detector or beam parameter, expressed per unit of the
error as the report states it (mm, px, deg, %). The least-squares δ = argmin |r − J δ| is
then the error of the geometry (its value minus the one the data want), with the covariance
s² (JᵀJ)⁻¹ (s² the reduced χ²). Points beyond five robust σ of the fitted residual are left
out and the fit is repeated once.

Parameters come in groups (distance, centre, tilt, wavelength, …). Each group is also fitted
alone; the cause named is the smallest set of groups, taken best first, that explains at
least 90 % of what all parameters together explain, and groups that explain nearly as much
on their own are named as alternatives (distance and wavelength scale small-angle rings
alike). The residuals are called systematic when the parameters explain at least half of
their sum of squares (R² ≥ 0.5) and the cause's largest term is at least 5σ; otherwise they
are random as far as the geometry can tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: R² above which residuals count as systematic, and the significance the cause needs.
MIN_EXPLAINED = 0.5
MIN_SIGMA = 5.0


@dataclass(frozen=True)
class Parameter:
    """One column of the Jacobian.

    Attributes
    ----------
    name : str
        As reported, e.g. 'distance', 'centre_x'.
    group : str
        The cause it belongs to, e.g. 'distance', 'centre', 'tilt', 'wavelength'.
    unit : str
        Unit of the error, e.g. 'mm', 'px', 'deg', '%'.
    """

    name: str
    group: str
    unit: str


@dataclass(frozen=True)
class Diagnosis:
    """Outcome of `explain`.

    Attributes
    ----------
    systematic : bool
    explained : float
        R² of the fit on all parameters (fraction of Σr² removed, about zero).
    cause : tuple of str
        Groups named as the cause (best first); empty when not systematic.
    alternatives : tuple of str
        Groups that alone explain ≥ 95 % of what the cause does.
    group_explained : dict[str, float]
        R² of each group fitted alone.
    error : dict[str, float]
        Fitted error of each parameter of the cause, in its unit.
    sigma : dict[str, float]
        1σ of `error`.
    units : dict[str, str]
    rms_before, rms_after : float
        Rms residual before and after subtracting the cause's fit (residual units).
    used, rejected : int
        Residuals fitted and left out as outliers (each component of a vector residual
        counts once).
    """

    systematic: bool
    explained: float
    cause: tuple
    alternatives: tuple
    group_explained: dict
    error: dict
    sigma: dict
    units: dict
    rms_before: float
    rms_after: float
    used: int
    rejected: int

    def summary(self) -> str:
        """One line: 'residuals match a distance error of +1.52 mm (410σ)' or 'no systematic
        geometry error (…)'."""
        if not self.systematic:
            text = (f"no systematic geometry error: detector and beam parameters explain "
                    f"{self.explained:.0%} of the residuals")
            strongest = max(self.error, key=lambda k: abs(self.error[k]) / max(self.sigma[k], 1e-300))
            if abs(self.error[strongest]) >= MIN_SIGMA * self.sigma[strongest]:
                text += (f"; the strongest term, {strongest.replace('_', ' ')} "
                         f"{self.error[strongest]:+.2g} {self.units[strongest]}, is below the scatter")
            return text
        terms = [f"{name.replace('_', ' ')} {self.error[name]:+.3g} {self.units[name]} "
                 f"({abs(self.error[name]) / self.sigma[name]:.0f}σ)"
                 for name in self.error if abs(self.error[name]) >= MIN_SIGMA * self.sigma[name]]
        text = f"residuals match a {' + '.join(self.cause)} error: " + ", ".join(terms)
        if self.alternatives:
            text += f" (a {' or '.join(self.alternatives)} error fits almost as well)"
        return text

    def as_dict(self) -> dict:
        """Plain values for a JSON report."""
        return {"systematic": self.systematic, "summary": self.summary(),
                "explained_fraction": self.explained, "cause": list(self.cause),
                "alternatives": list(self.alternatives), "group_explained": self.group_explained,
                "error": {k: {"value": v, "sigma": self.sigma[k], "unit": self.units[k],
                              "significance": abs(v) / self.sigma[k] if self.sigma[k] > 0 else float("inf")}
                          for k, v in self.error.items()},
                "rms_before": self.rms_before, "rms_after": self.rms_after,
                "points_used": self.used, "points_rejected": self.rejected,
                "convention": "error = the geometry's value minus the value the residuals ask for"}


class NormalEquations:
    """Normal equations of a least-squares problem, so that fits on any subset of the
    columns cost O(p³) instead of a pass over the n points. Columns are scaled to unit norm
    for conditioning."""

    def __init__(self, r: np.ndarray, J: np.ndarray):
        self.scale = np.linalg.norm(J, axis=0) + 1e-300
        Js = J / self.scale
        self.G = Js.T @ Js
        self.b = Js.T @ r
        self.ss0 = float(r @ r) + 1e-300
        self.n = r.size

    def fit(self, idx: list[int]) -> tuple[np.ndarray, float, np.ndarray]:
        """Parameters, residual sum of squares and (JᵀJ)⁻¹ of the fit on columns `idx`."""
        g = np.linalg.pinv(self.G[np.ix_(idx, idx)])
        ds = g @ self.b[idx]
        rss = max(self.ss0 - float(self.b[idx] @ ds), 0.0)
        sc = self.scale[idx]
        return ds / sc, rss, g / np.outer(sc, sc)

    def explained(self, idx: list[int]) -> float:
        """R² of the fit on columns `idx`."""
        return 1 - self.fit(idx)[1] / self.ss0


def explain(residual: np.ndarray, jacobian: np.ndarray, params: list[Parameter]) -> Diagnosis:
    """Regress residuals on a geometry's Jacobian and name the parameter change behind them.

    Parameters
    ----------
    residual : ndarray, shape (n,)
        Residuals (e.g. Δq, Å⁻¹; vector residuals flattened).
    jacobian : ndarray, shape (n, p)
        ∂residual/∂parameter, per unit of each parameter's error.
    params : list of Parameter, length p

    Returns
    -------
    Diagnosis

    Raises
    ------
    ValueError
        Fewer points than twice the number of parameters.
    """
    r = np.asarray(residual, float)
    J = np.asarray(jacobian, float)
    if r.size < 2 * len(params):
        raise ValueError(f"{r.size} residuals cannot tell {len(params)} parameters apart")
    every = list(range(len(params)))
    post = r - J @ NormalEquations(r, J).fit(every)[0]
    sig = 1.4826 * np.median(np.abs(post - np.median(post))) + 1e-300
    keep = np.abs(post) <= 5 * sig
    ne = NormalEquations(r[keep], J[keep])
    explained = ne.explained(every)
    groups = list(dict.fromkeys(p.group for p in params))
    cols = {g: [i for i, p in enumerate(params) if p.group == g] for g in groups}
    alone = {g: ne.explained(cols[g]) for g in groups}
    cause: list[str] = []
    reached = 0.0
    while len(cause) < 3 and reached < 0.9 * explained:
        best = max((g for g in groups if g not in cause),
                   key=lambda g: ne.explained(sum((cols[c] for c in cause + [g]), [])))
        cause.append(best)
        reached = ne.explained(sum((cols[c] for c in cause), []))
    idx = sum((cols[c] for c in cause), [])
    d, rss_c, inv = ne.fit(idx)
    sigma = np.sqrt(np.maximum(np.diag(inv) * rss_c / max(ne.n - len(idx), 1), 0))
    signif = np.abs(d) / np.maximum(sigma, 1e-300)
    systematic = explained >= MIN_EXPLAINED and bool(signif.max() >= MIN_SIGMA)
    alternatives = tuple(g for g in groups if g not in cause and len(cause) == 1
                         and alone[g] >= 0.95 * reached) if systematic else ()
    return Diagnosis(
        systematic=systematic, explained=float(explained), cause=tuple(cause) if systematic else (),
        alternatives=alternatives, group_explained={g: float(v) for g, v in alone.items()},
        error={params[i].name: float(v) for i, v in zip(idx, d)},
        sigma={params[i].name: float(s) for i, s in zip(idx, sigma)},
        units={params[i].name: params[i].unit for i in idx},
        rms_before=float(np.sqrt(ne.ss0 / ne.n)), rms_after=float(np.sqrt(rss_c / ne.n)),
        used=ne.n, rejected=int((~keep).sum()))
