"""The models of an indexed DIALS experiment list (`.expt`): crystals, beams, goniometers,
detectors, as arrays for `core.q.prediction`.

A crystal's `real_space_a/b/c` are the rows of the real-space matrix; its inverse has the
reciprocal basis as columns, A = U B. A single-axis goniometer stores `fixed_rotation`,
`rotation_axis` and `setting_rotation`; a multi-axis one stores `axes`, `angles` (degrees)
and `scan_axis`, from which dxtbx composes F = R(axes[k−1]) ⋯ R(axes[0]) and
S = R(axes[n−1]) ⋯ R(axes[k+1]) with k the scan axis (dxtbx `MultiAxisGoniometer`).
An experiment whose scan covers more than one image is rotation data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.core.q.prediction import Crystals, Panels, rotation_about
from geocal_cli.errors import InputFileError
from geocal_cli.io.formats import dials, numbers

WHAT = dials.WHAT


@dataclass(frozen=True)
class Experiments:
    """The models of an experiment list.

    Attributes
    ----------
    crystals : Crystals
        One row per experiment.
    panels : Panels
        The panels of every detector used, stacked.
    panel_offset : ndarray of int, shape (e,)
        Index in `panels` of each experiment's first panel.
    n_panels : ndarray of int, shape (e,)
        Panels of each experiment's detector.
    identifiers : list of str
    rotation : ndarray of bool, shape (e,)
        Rotation data (a goniometer and a scan over more than one image).
    notes : list of str
    """

    crystals: Crystals
    panels: Panels
    panel_offset: np.ndarray
    n_panels: np.ndarray
    identifiers: list
    rotation: np.ndarray
    notes: list


def _matrix(data: dict, key: str, path: Path) -> np.ndarray:
    return np.array(numbers(data, key, path, WHAT, count=9)).reshape(3, 3)


def _goniometer(g: dict, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F, S, axis) of a single- or multi-axis goniometer model."""
    if "axes" in g:
        axes = np.asarray(g["axes"], float).reshape(-1, 3)
        angles = np.radians(np.asarray(g["angles"], float))
        k = int(g.get("scan_axis", 0))
        fixed, setting = np.eye(3), np.eye(3)
        for i in range(k):
            fixed = rotation_about(axes[i], angles[i]) @ fixed
        for i in range(k + 1, len(axes)):
            setting = rotation_about(axes[i], angles[i]) @ setting
        return fixed, setting, axes[k] / np.linalg.norm(axes[k])
    axis = np.array(numbers(g, "rotation_axis", path, WHAT, count=3))
    fixed = _matrix(g, "fixed_rotation", path) if "fixed_rotation" in g else np.eye(3)
    setting = _matrix(g, "setting_rotation", path) if "setting_rotation" in g else np.eye(3)
    return fixed, setting, axis / np.linalg.norm(axis)


def _index(exp: dict, key: str, models: list, i: int, path: Path) -> dict | None:
    j = exp.get(key)
    if j is None:
        return None
    try:
        return models[int(j)]
    except (IndexError, TypeError, ValueError):
        raise InputFileError(f"{path}: experiment {i} points to {key} {j!r}, which the file "
                             "does not hold") from None


def read_experiments(path: Path, fix_units: bool = False) -> Experiments:
    """Read the crystals, beams, goniometers and detectors of every experiment.

    Raises
    ------
    InputFileError
        Not an experiment list, an experiment without a crystal (not indexed), a malformed
        model, or an implausible wavelength (metres: see `--fix-units`).
    """
    data = dials.load(path)
    notes: list[str] = []
    exps = data.get("experiment") or []
    if not exps:
        raise InputFileError(f"{path}: the experiment list holds no experiment")
    if not data.get("crystal"):
        raise InputFileError(f"{path}: no crystal model: q-check needs indexed experiments "
                             "(the output of dials.index or dials.refine)")
    A, F, S, axes, s0, rotation, offsets, n_panels, ids = [], [], [], [], [], [], [], [], []
    detectors: dict[int, tuple[int, int]] = {}     # detector index → (first panel, panels)
    parts: list[tuple] = []
    for i, exp in enumerate(exps):
        crystal = _index(exp, "crystal", data.get("crystal", []), i, path)
        if crystal is None:
            raise InputFileError(f"{path}: experiment {i} has no crystal: q-check needs "
                                 "indexed experiments (dials.index or dials.refine output)")
        real = np.array([numbers(crystal, k, path, WHAT, count=3)
                         for k in ("real_space_a", "real_space_b", "real_space_c")])
        if abs(np.linalg.det(real)) < 1e-9:
            raise InputFileError(f"{path}: crystal of experiment {i} has a degenerate cell")
        A.append(np.linalg.inv(real))
        if "A_at_scan_points" in crystal and i == 0:
            notes.append("scan-varying crystal models are present: the static model is used")
        beam = _index(exp, "beam", data["beam"], i, path)
        lam = dials.wavelength_angstrom(beam, path, fix_units, notes)
        direction = np.array(numbers(beam, "direction", path, WHAT, count=3))
        s0.append(-direction / np.linalg.norm(direction) / lam)
        gonio = _index(exp, "goniometer", data.get("goniometer", []), i, path)
        f, s, ax = _goniometer(gonio, path) if gonio else (np.eye(3), np.eye(3), np.array([1.0, 0, 0]))
        F.append(f)
        S.append(s)
        axes.append(ax)
        scan = _index(exp, "scan", data.get("scan", []), i, path)
        image_range = (scan or {}).get("image_range", [1, 1])
        rotation.append(gonio is not None and image_range[1] > image_range[0])
        d = int(exp.get("detector", 0))
        if d not in detectors:
            det = _index(exp, "detector", data["detector"], i, path)
            parts.append(_detector_panels(det, path, notes))
            detectors[d] = (sum(len(p[0]) for p in parts[:-1]), len(parts[-1][0]))
        offsets.append(detectors[d][0])
        n_panels.append(detectors[d][1])
        ids.append(str(exp.get("identifier", "")))
    stack = [np.concatenate([p[k] for p in parts]) for k in range(5)]
    return Experiments(
        crystals=Crystals(A=np.array(A), fixed=np.array(F), setting=np.array(S), axis=np.array(axes),
                          s0=np.array(s0)),
        panels=Panels(*stack), panel_offset=np.array(offsets), n_panels=np.array(n_panels),
        identifiers=ids, rotation=np.array(rotation), notes=notes)


def _detector_panels(det: dict, path: Path, notes: list) -> tuple:
    """(origin, fast, slow, pixel_size, image_size) arrays of a detector's panels."""
    rows = []
    for index, panel in enumerate(det.get("panels") or []):
        glob, pixel, offset = dials.panel_in_lab(det, index, path)
        if offset and "the detector hierarchy's group origin offset is included" not in notes:
            notes.append("the detector hierarchy's group origin offset is included")
        size = numbers(panel, "image_size", path, WHAT)
        rows.append((glob["origin"], glob["fast_axis"], glob["slow_axis"], np.array(pixel), np.array(size, int)))
    if not rows:
        raise InputFileError(f"{path}: a detector model has no panels")
    return tuple(np.array([r[k] for r in rows]) for k in range(5))
