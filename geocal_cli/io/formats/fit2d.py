"""Fit2D geometry terms as YAML or JSON, converted by pyFAI's own Fit2D conversion.

Keys: directDist (mm), centerX, centerY (pixels), tilt, tiltPlanRotation (deg), pixelX,
pixelY (µm), wavelength (Å, optional). Fit2D has no rotation about the beam (pyFAI's rot3):
2θ is kept exactly, the azimuth reference is not.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from geocal_cli.errors import ConfigError
from geocal_cli.io.outputs import write_text
from geocal_cli.io.formats import Loaded, Options, load_mapping, number

KEYS = ("directDist", "centerX", "centerY", "tilt", "tiltPlanRotation", "pixelX", "pixelY")
WHAT = "Fit2D geometry"


def read(path: Path, options: Options) -> Loaded:
    """Fit2D terms → pyFAI geometry (orientation 3) through `Geometry.setFit2D`."""
    from pyFAI.detectors import Detector
    from pyFAI.geometry import Geometry

    data = load_mapping(path, WHAT)
    values = {k: number(data, k, path, WHAT, default=0.0 if k in ("tilt", "tiltPlanRotation") else None)
              for k in KEYS}
    wavelength = number(data, "wavelength", path, WHAT, default=0.0) or None
    notes = []
    if data.get("splineFile") not in (None, "None", ""):
        notes.append(f"splineFile {data['splineFile']} is not part of the geometry and was not converted")
    shape = tuple(options.shape) if options.shape is not None else None
    detector = Detector(pixel1=values["pixelY"] * 1e-6, pixel2=values["pixelX"] * 1e-6, max_shape=shape)
    geometry = Geometry(detector=detector)
    geometry.setFit2D(**values, detector=detector, wavelength=wavelength)
    values["wavelength"] = wavelength
    return Loaded(geometry, shape, values, notes)


def write(path: Path, geometry, shape, options: Options) -> dict:
    """The geometry's Fit2D terms (from `Geometry.getFit2D`) as YAML, or JSON for a .json path.

    Raises
    ------
    ConfigError
        The geometry indexes the image mirrored (orientation 2 or 4): Fit2D cannot say so.
    """
    import json

    from geocal_cli.core.geometry.flips import reoriented
    from geocal_cli.core.geometry.frame import frame_of

    if int(geometry.detector.orientation or 3) != 3:
        try:
            geometry = reoriented(geometry, frame_of(geometry), shape, transposed=False, orientation=3)
        except ValueError:
            raise ConfigError("Fit2D cannot describe this geometry: it indexes the image mirrored "
                              "(detector orientation 2 or 4); convert it for the flipped image "
                              "with --flip ud") from None
    f2d = geometry.getFit2D()
    values = {k: float(f2d[k]) for k in KEYS}
    values["wavelength"] = float(f2d["wavelength"]) if geometry.wavelength else None
    if Path(path).suffix.lower() == ".json":
        text = json.dumps(values, indent=2) + "\n"
    else:
        text = ("# Fit2D geometry (directDist mm, centerX/centerY px, tilt and tiltPlanRotation deg,\n"
                "# pixelX/pixelY µm, wavelength Å), written by geocal convert-poni\n"
                + yaml.safe_dump(values, sort_keys=False))
    write_text(Path(path), text)
    return values
