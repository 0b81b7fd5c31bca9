"""cdiutils/xrayutilities detector calibration (`det_calib_params`) as YAML.

`det_calib_params` holds what xrayutilities' `init_area` takes: cch1, cch2 (pixels), distance,
pwidth1, pwidth2 (one length unit: cdiutils uses metres; `length_unit` says which), tilt,
tiltazimuth, detrot (degrees), for the detector at its calibration position (all detector
circles at zero). The detector axes are cdiutils' `detector_axis0_orientation` and
`detector_axis1_orientation`, in the CXI frame as cdiutils' Geometry takes them (ID01: y-, x+);
the beam is along CXI z. The energy is in eV, as cdiutils keeps it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from geocal_cli.core.geometry.conventions import xrayutilities as xu
from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.core.geometry.units import wavelength_from_energy
from geocal_cli.errors import InputFileError
from geocal_cli.io.outputs import write_text
from geocal_cli.io.formats import Loaded, Options, geometry_from_frame, load_mapping, number

WHAT = "cdiutils detector calibration"
CXI_TO_XU = {"x": "y", "y": "z", "z": "x"}
XU_TO_CXI = {v: k for k, v in CXI_TO_XU.items()}
UNITS = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6}


def _axis(data: dict, key: str, default: str, path: Path) -> str:
    name = str(data.get(key, default))
    if len(name) != 2 or name[0] not in CXI_TO_XU or name[1] not in "+-":
        raise InputFileError(f"{path}: {key} = {name!r}: expected x, y or z followed by + or -")
    return CXI_TO_XU[name[0]] + name[1]


def read(path: Path, options: Options) -> Loaded:
    """det_calib_params (top level or under `det_calib_params`) → geometry."""
    data = load_mapping(path, WHAT)
    params = data.get("det_calib_params", data)
    if not isinstance(params, dict):
        raise InputFileError(f"{path}: det_calib_params is not a mapping")
    values = {k: number(params, k, path, WHAT) for k in ("cch1", "cch2", "distance", "pwidth1", "pwidth2")}
    values.update({k: number(params, k, path, WHAT, default=0.0) for k in ("tilt", "tiltazimuth", "detrot")})
    notes = []
    if number(params, "outerangle_offset", path, WHAT, default=0.0) != 0.0:
        raise InputFileError(f"{path}: outerangle_offset = {params['outerangle_offset']} needs the "
                             "detector circles; cdiutils no longer uses it: set it to 0")
    unit = str(data.get("length_unit", "m"))
    if unit not in UNITS:
        raise InputFileError(f"{path}: length_unit = {unit!r}: use one of {', '.join(UNITS)}")
    scale = UNITS[unit]
    for k in ("pwidth1", "pwidth2"):
        if not 0.5e-6 <= values[k] * scale <= 5e-3:
            raise InputFileError(f"{path}: {k} = {values[k]} {unit} is not a pixel size; "
                                 "set length_unit (m, mm, um) to the unit of distance and pwidth")
    if "beam_direction" in data and list(map(float, data["beam_direction"])) != [1.0, 0.0, 0.0]:
        raise InputFileError(f"{path}: beam_direction {data['beam_direction']}: only [1, 0, 0] "
                             "(cdiutils' setups) is supported")
    dir1 = _axis(data, "detector_axis0_orientation", "y-", path)
    dir2 = _axis(data, "detector_axis1_orientation", "x+", path)
    if "x" in (dir1[0], dir2[0]) or dir1[0] == dir2[0]:
        raise InputFileError(f"{path}: detector axes {data.get('detector_axis0_orientation')}, "
                             f"{data.get('detector_axis1_orientation')} must be two different CXI "
                             "axes across the beam (x or y)")
    frame = xu.frame_from_params(values["distance"] * scale, values["cch1"], values["cch2"],
                                 values["pwidth1"] * scale, values["pwidth2"] * scale,
                                 values["tilt"], values["tiltazimuth"], values["detrot"], dir1, dir2)
    energy = number(data, "energy", path, WHAT, default=0.0)
    wavelength = wavelength_from_energy(energy * 1e-3) if energy else None
    values.update(detector_axis0_orientation=data.get("detector_axis0_orientation", "y-"),
                  detector_axis1_orientation=data.get("detector_axis1_orientation", "x+"),
                  length_unit=unit, energy=energy or None)
    return Loaded(geometry_from_frame(frame, options.shape, wavelength, path), options.shape, values, notes)


def write(path: Path, geometry, shape, options: Options) -> dict:
    """det_calib_params in metres and degrees, with the detector axes that fit the geometry."""
    par = xu.params_from_frame(frame_of(geometry))
    params = {k: float(par[k]) for k in ("cch1", "cch2", "distance", "pwidth1", "pwidth2",
                                          "tilt", "tiltazimuth", "detrot")}
    doc = {"det_calib_params": params,
           "detector_axis0_orientation": XU_TO_CXI[par["dir1"][0]] + par["dir1"][1],
           "detector_axis1_orientation": XU_TO_CXI[par["dir2"][0]] + par["dir2"][1],
           "beam_direction": [1, 0, 0], "length_unit": "m"}
    if geometry.wavelength:
        doc["energy"] = float(wavelength_from_energy(1.0) / geometry.wavelength * 1e3)
    text = ("# cdiutils/xrayutilities detector calibration, all detector circles at zero,\n"
            "# written by geocal convert-poni. Lengths in metres, angles in degrees, energy in eV;\n"
            "# detector axes in cdiutils' CXI frame (beam along z, y up).\n"
            + yaml.safe_dump(doc, sort_keys=False))
    write_text(Path(path), text)
    return {**params, **{k: v for k, v in doc.items() if k != "det_calib_params"}}
