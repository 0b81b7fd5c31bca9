"""PONI files written by Dioptas, which shows (and calibrates) images flipped up-down.

The Dioptas geometry refers to row H − 1 − r of fabio's array where it says row r: reading
flips it onto fabio's array (the detector orientation changes class, 3 ↔ 2), writing flips
it back.
"""

from __future__ import annotations

from pathlib import Path

from geocal_cli.core.geometry.flips import flip_frame, reoriented
from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.errors import ConfigError
from geocal_cli.io.formats import Loaded, Options, poni


def _flipped(geometry, shape):
    if shape is None:
        raise ConfigError("a Dioptas PONI refers to the image flipped up-down: give the image "
                          "height with --shape ROWS,COLS or --image")
    frame, _ = flip_frame(frame_of(geometry), tuple(shape), "ud")
    return reoriented(geometry, frame, tuple(shape), transposed=False)


def read(path: Path, options: Options) -> Loaded:
    """A Dioptas PONI as a geometry of fabio's array."""
    loaded = poni.read(path, options)
    geometry = _flipped(loaded.geometry, loaded.shape)
    return Loaded(geometry, loaded.shape, loaded.values,
                  ["Dioptas shows images flipped up-down: the geometry was flipped onto the "
                   "image as fabio reads it"])


def write(path: Path, geometry, shape, options: Options) -> dict:
    """A PONI for the image flipped up-down, as Dioptas shows it."""
    return poni.write(path, _flipped(geometry, shape), shape, options)
