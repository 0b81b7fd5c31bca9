"""DIALS/dxtbx experiment lists (`.expt`, JSON): one panel of the detector and the beam.

Units as DIALS writes them: mm and Å. Panels of a detector hierarchy are given relative to
their group; the group frames are composed (`core.geometry.conventions.dials.global_panel`). A
wavelength below 1e-6 "Å" is metres (`dials.powder_calibrate` wrote some files so): it is
refused unless `fix_units`. Parallax correction (thickness, µ) is not part of a flat
geometry and is not converted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geocal_cli.core.geometry.conventions import dials
from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.files import parse_structured, read_text
from geocal_cli.io.outputs import write_text
from geocal_cli.io.formats import Loaded, Options, geometry_from_frame, number, numbers

WHAT = "DIALS experiment list"


def load(path: Path) -> dict:
    """The experiment list as parsed JSON, with detector and beam models.

    Raises
    ------
    InputFileError
        Missing file, not JSON, or no detector/beam models.
    """
    data = parse_structured(read_text(path, f"{WHAT} file"), path, f"{WHAT} file", json_only=True)
    if not isinstance(data, dict) or not data.get("detector") or not data.get("beam"):
        raise InputFileError(f"{path}: not a {WHAT} (no 'detector' and 'beam' models)")
    return data


def _group_path(node: dict, panel: int, chain: list) -> list | None:
    """Groups from `node` down to the parent of `panel`, or None when it is not below."""
    for child in node.get("children", []):
        if child.get("panel") == panel:
            return chain + [node]
        if "children" in child:
            found = _group_path(child, panel, chain + [node])
            if found is not None:
                return found
    return None


def _vector(data: dict, key: str, path: Path) -> np.ndarray:
    return np.array(numbers(data, key, path, WHAT, count=3))


def panel_in_lab(det: dict, index: int, path: Path) -> tuple[dict, tuple, bool]:
    """Panel `index` of a detector model in the laboratory frame.

    Returns
    -------
    dict with 'origin' (mm), 'fast_axis', 'slow_axis' : ndarray, shape (3,)
    pixel_size : (fast, slow), mm
    offset : bool
        Whether hierarchy groups above it have a non-zero origin.

    Raises
    ------
    InputFileError
        The panel is not in the hierarchy, a vector is malformed, or the pixel size is not mm.
    """
    panel = det["panels"][index]
    chain = _group_path(det["hierarchy"], index, []) if "hierarchy" in det else []
    if chain is None:
        raise InputFileError(f"{path}: panel {index} is not in the detector hierarchy")
    local = {k: _vector(panel, k, path) for k in ("origin", "fast_axis", "slow_axis")}
    groups = [{k: _vector(g, k, path) for k in ("origin", "fast_axis", "slow_axis")} for g in chain]
    pixel = numbers(panel, "pixel_size", path, WHAT)
    if not all(1e-3 <= p <= 10 for p in pixel):
        raise InputFileError(f"{path}: pixel_size = {list(pixel)} is not in mm (DIALS' unit)")
    return (dials.global_panel(groups, local), pixel,
            any(np.linalg.norm(g["origin"]) > 0 for g in groups))


def wavelength_angstrom(beam: dict, path: Path, fix_units: bool, notes: list) -> float:
    """The beam's wavelength in Å, with the metres-for-Å slip detected.

    Raises
    ------
    InputFileError
        Implausible wavelength (metres without `fix_units`, or beyond 100 Å).
    """
    lam = number(beam, "wavelength", path, WHAT)
    if 0 < lam < 1e-6:
        if not fix_units:
            raise InputFileError(f"{path}: wavelength = {lam:g} Å is implausible: it is in metres "
                                 f"(a known slip of dials.powder_calibrate); rerun with --fix-units "
                                 f"to read it as {lam * 1e10:.6g} Å")
        notes.append(f"wavelength {lam:g} was in metres; read as {lam * 1e10:.6g} Å (--fix-units)")
        lam *= 1e10
    if not 0 < lam <= 100:
        raise InputFileError(f"{path}: wavelength = {lam:g} Å is implausible")
    return lam


def read(path: Path, options: Options) -> Loaded:
    """One panel and the beam of the first experiment → geometry (metres)."""
    data = load(path)
    notes = []
    experiments = data.get("experiment") or [{"beam": 0, "detector": 0}]
    exp = experiments[0]
    if len(experiments) > 1:
        notes.append(f"{len(experiments)} experiments: the first one's detector and beam were used")
    try:
        det = data["detector"][int(exp.get("detector", 0))]
        beam = data["beam"][int(exp.get("beam", 0))]
        panels = det["panels"]
    except (KeyError, IndexError, TypeError, ValueError):
        raise InputFileError(f"{path}: not a {WHAT} (experiment 0 points to no detector/beam "
                             "with panels)") from None
    if options.panel is None and len(panels) > 1:
        raise InputFileError(f"{path}: the detector has {len(panels)} panels: choose one with "
                             f"--panel 0..{len(panels) - 1}")
    index = options.panel or 0
    if not 0 <= index < len(panels):
        raise ConfigError(f"--panel {index}: the detector has {len(panels)} panel(s)")
    panel = panels[index]
    glob, pixel, offset = panel_in_lab(det, index, path)
    if offset:
        notes.append("the detector hierarchy's group origin offset is included")
    size = numbers(panel, "image_size", path, WHAT)
    if not all(float(v).is_integer() and 2 <= v <= 65_536 for v in size):
        raise InputFileError(f"{path}: image_size = {list(size)}: a panel is 2 … 65536 whole pixels a side")
    shape = (int(size[1]), int(size[0]))
    if options.shape is not None and tuple(options.shape) != shape:
        raise ConfigError(f"--shape {options.shape} differs from the panel's image_size {shape} (rows, cols)")
    direction = _vector(beam, "direction", path)
    if np.linalg.norm(np.cross(direction, dials.DEFAULT_DIRECTION)) > 1e-12:
        notes.append(f"beam direction {direction.tolist()} is not along z: the detector frame "
                     "is given relative to the beam")
    lam = wavelength_angstrom(beam, path, options.fix_units, notes)
    if panel.get("px_mm_strategy", {}).get("type", "").startswith("Parallax"):
        notes.append("the panel's parallax correction (thickness, µ) is not part of the geometry")
    frame = dials.frame_from_panel(glob["origin"], glob["fast_axis"], glob["slow_axis"], pixel, direction)
    values = {"panel": index, **{k: v.tolist() for k, v in glob.items()}, "pixel_size": list(pixel),
              "image_size": list(size), "wavelength": lam, "direction": direction.tolist()}
    return Loaded(geometry_from_frame(frame, shape, lam * 1e-10, path), shape, values, notes)


def write(path: Path, geometry, shape, options: Options) -> dict:
    """A single-panel experiment list (beam along −z, no hierarchy offset) DIALS can load.

    Raises
    ------
    ConfigError
        No image shape (DIALS panels need image_size) or no wavelength.
    """
    if shape is None:
        raise ConfigError("a DIALS panel needs the image size: give --shape ROWS,COLS or --image")
    if not geometry.wavelength:
        raise ConfigError("a DIALS beam needs a wavelength: give --energy or --wavelength")
    p = dials.panel_from_frame(frame_of(geometry))
    panel = {"name": "Panel", "type": "SENSOR_UNKNOWN", "fast_axis": p["fast_axis"].tolist(),
             "slow_axis": p["slow_axis"].tolist(), "origin": p["origin"].tolist(),
             "raw_image_offset": [0, 0], "image_size": [int(shape[1]), int(shape[0])],
             "pixel_size": [float(v) for v in p["pixel_size"]], "trusted_range": [-1.0, 1e9],
             "thickness": 0.0, "material": "", "mu": 0.0, "identifier": "", "mask": [],
             "gain": 1.0, "pedestal": 0.0, "px_mm_strategy": {"type": "SimplePxMmStrategy"}}
    root = {"name": "", "type": "", "fast_axis": [1.0, 0.0, 0.0], "slow_axis": [0.0, 1.0, 0.0],
            "origin": [0.0, 0.0, 0.0], "raw_image_offset": [0, 0], "image_size": [0, 0],
            "pixel_size": [0.0, 0.0], "trusted_range": [0.0, 0.0], "thickness": 0.0,
            "material": "", "mu": 0.0, "identifier": "", "mask": [], "gain": 1.0, "pedestal": 0.0,
            "px_mm_strategy": {"type": "SimplePxMmStrategy"}, "children": [{"panel": 0}]}
    beam = {"direction": [0.0, 0.0, 1.0], "wavelength": geometry.wavelength * 1e10,
            "divergence": 0.0, "sigma_divergence": 0.0, "polarization_normal": [0.0, 1.0, 0.0],
            "polarization_fraction": 0.999, "flux": 0.0, "transmission": 1.0}
    doc = {"__id__": "ExperimentList",
           "experiment": [{"__id__": "Experiment", "identifier": "", "beam": 0, "detector": 0}],
           "imageset": [], "beam": [beam], "detector": [{"panels": [panel], "hierarchy": root}],
           "goniometer": [], "scan": [], "crystal": [], "profile": [], "scaling_model": []}
    write_text(Path(path), json.dumps(doc, indent=2) + "\n")
    return {k: panel[k] for k in ("origin", "fast_axis", "slow_axis", "pixel_size", "image_size")} | \
        {"wavelength": beam["wavelength"]}
