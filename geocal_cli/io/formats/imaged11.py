"""ImageD11 `.par` parameter files: `key value` lines.

Units as ImageD11 writes them: distance, y_size, z_size in µm; tilts in radians; wavelength
in Å. Only the detector and beam keys are geometry; the others (cell, omega, wedge, fit
tolerances) are listed in the notes and not converted.
"""

from __future__ import annotations

from pathlib import Path

from geocal_cli.core.geometry.conventions import imaged11
from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.errors import InputFileError
from geocal_cli.io.outputs import write_text
from geocal_cli.io.formats import Loaded, Options, geometry_from_frame, key_value_lines, number

LENGTHS = ("distance", "y_size", "z_size")
KEYS = LENGTHS + ("y_center", "z_center", "tilt_x", "tilt_y", "tilt_z", "o11", "o12", "o21", "o22")
WHAT = "ImageD11 parameter"


def read(path: Path, options: Options) -> Loaded:
    """A `.par` file → geometry (orientation 3, or 2 when the flip matrix mirrors)."""
    data = key_value_lines(path, WHAT)
    defaults = {"tilt_x": 0.0, "tilt_y": 0.0, "tilt_z": 0.0, "o11": 1.0, "o12": 0.0, "o21": 0.0, "o22": -1.0}
    values = {k: number(data, k, path, WHAT, default=defaults.get(k)) for k in KEYS}
    for k in ("y_size", "z_size"):
        if not 0.5 <= values[k] <= 5000:
            raise InputFileError(f"{path}: {k} = {values[k]} is not a pixel size in µm (ImageD11's unit)")
    o = tuple(int(round(values[k])) for k in ("o11", "o12", "o21", "o22"))
    if sorted(abs(v) for v in o) != [0, 0, 1, 1] or abs(o[0]) == abs(o[1]):
        raise InputFileError(f"{path}: o11, o12, o21, o22 = {o} is not a flip matrix")
    wavelength = number(data, "wavelength", path, WHAT, default=0.0)
    metres = {k: values[k] * 1e-6 for k in LENGTHS}
    frame = imaged11.frame_from_par(metres["distance"], values["y_center"], values["z_center"],
                                    metres["y_size"], metres["z_size"], values["tilt_x"],
                                    values["tilt_y"], values["tilt_z"], o)
    geometry = geometry_from_frame(frame, options.shape, wavelength * 1e-10 or None, path)
    values["wavelength"] = wavelength or None
    others = sorted(set(data) - set(KEYS) - {"wavelength"})
    notes = [f"not geometry, not converted: {', '.join(others)}"] if others else []
    return Loaded(geometry, options.shape, values, notes)


def write(path: Path, geometry, shape, options: Options) -> dict:
    """A `.par` file with the flip matrix pyFAI pairs with the detector orientation."""
    o = imaged11.ORIENTATION_FLIPS[int(geometry.detector.orientation or 3)]
    par = imaged11.par_from_frame(frame_of(geometry), o)
    for k in LENGTHS:
        par[k] *= 1e6
    par["wavelength"] = geometry.wavelength * 1e10 if geometry.wavelength else None
    lines = [f"{k} {v if isinstance(v, int) else repr(float(v))}"
             for k, v in sorted(par.items()) if v is not None]
    write_text(Path(path), "\n".join(lines) + "\n")
    return par
