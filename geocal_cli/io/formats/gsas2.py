"""GSAS-II image controls (`.imctrl`): `key:value` lines.

Units as GSAS-II keeps them: center and distance in mm, tilt, rotation and azmthOff in
degrees, pixelSize in µm (x, y), wavelength in Å; size is (x, y) pixels. The geometry refers
to the image array as GSAS-II reads it (GSAS-II reads some formats, MAR345 among them,
flipped up-down with respect to fabio: convert with --flip ud then). invert_x and invert_y
only turn GSAS-II's display and do not change the geometry.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from geocal_cli.core.geometry.conventions import gsas2
from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.io.outputs import write_text
from geocal_cli.io.formats import Loaded, Options, geometry_from_frame, key_value_lines, number, numbers

WHAT = "GSAS-II image controls"


#: numpy ≥ 2 scalar reprs, which GSAS-II writes into `.imctrl` files: `np.float64(168.59)`.
NUMPY_REPR = re.compile(r"\b(?:np|numpy)\.(?:float|int|uint|bool_|str_)\w*\(([^()]*)\)")


def _parse(path: Path) -> dict:
    """`key:value` lines, values as Python literals where they are (numpy reprs unwrapped)."""
    data = key_value_lines(path, WHAT, sep=":")
    for key, value in data.items():
        if len(value) > 10_000:
            continue
        try:
            data[key] = ast.literal_eval(NUMPY_REPR.sub(r"\1", value))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return data


def read(path: Path, options: Options) -> Loaded:
    """Image controls → geometry of GSAS-II's image array."""
    data = _parse(path)
    center = numbers(data, "center", path, WHAT)
    if "pixelSize" in data:
        pixel = numbers(data, "pixelSize", path, WHAT)
    elif options.pixel_size_um is not None:
        pixel = [options.pixel_size_um[1], options.pixel_size_um[0]]  # GSAS-II: (x, y)
    else:
        raise InputFileError(f"{path}: no pixelSize (GSAS-II takes it from the image): give "
                             "--pixel-size, or --image with a header that states it")
    values = {k: number(data, k, path, WHAT) for k in ("distance", "tilt", "rotation")}
    values["azmthOff"] = number(data, "azmthOff", path, WHAT, default=0.0)
    notes = []
    if number(data, "det2theta", path, WHAT, default=0.0) != 0.0:
        raise InputFileError(f"{path}: det2theta = {data['det2theta']}: only a detector at 2θ = 0 "
                             "is supported (GetTthAzmDsp2's model)")
    if number(data, "DetDepth", path, WHAT, default=0.0) != 0.0:
        notes.append(f"DetDepth = {data['DetDepth']} (penetration correction) is not part of a "
                     "flat geometry and was not converted")
    if "invert_x" in data or "invert_y" in data:
        notes.append("invert_x/invert_y only turn GSAS-II's display; the geometry does not depend on them")
    shape = tuple(options.shape) if options.shape is not None else None
    if shape is None and "size" in data:
        size = numbers(data, "size", path, WHAT)
        shape = (int(size[1]), int(size[0]))
    wavelength = number(data, "wavelength", path, WHAT, default=0.0)
    frame = gsas2.frame_from_controls(center, values["distance"], values["tilt"], values["rotation"],
                                      pixel, values["azmthOff"])
    values.update(center=list(center), pixelSize=list(pixel), wavelength=wavelength or None)
    return Loaded(geometry_from_frame(frame, shape, wavelength * 1e-10 or None, path), shape, values, notes)


def write(path: Path, geometry, shape, options: Options) -> dict:
    """Image controls for the same image array.

    Raises
    ------
    ConfigError
        The geometry indexes the image mirrored with respect to GSAS-II's convention.
    """
    try:
        c = gsas2.controls_from_frame(frame_of(geometry))
    except ValueError as exc:
        raise ConfigError(f"GSAS-II cannot describe this geometry: {exc}; convert it for the "
                          "image flipped up-down with --flip ud (and read the image so in GSAS-II)") from None
    c = {"type": "PWDR", "wavelength": geometry.wavelength * 1e10 if geometry.wavelength else None,
         "distance": c["distance"], "center": [float(v) for v in c["center"]],
         "pixelSize": [float(v) for v in c["pixelSize"]], "tilt": c["tilt"],
         "rotation": c["rotation"], "azmthOff": c["azmthOff"], "det2theta": 0.0, "DetDepth": 0.0,
         "invert_x": False, "invert_y": True}
    if shape is not None:
        c["size"] = [int(shape[1]), int(shape[0])]
    write_text(Path(path), "".join(f"{k}:{v!r}\n" for k, v in c.items() if v is not None))
    return c
