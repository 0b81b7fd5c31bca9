"""Geometry files of other programs: written and read back, every format gives the same
pixel map (2θ, and χ where the format carries the azimuth reference) as the geometry it came
from; a tilted, off-centre geometry with non-square pixels, unmirrored and mirrored."""

import pytest

from geocal_cli.core.geometry.flips import map_difference
from geocal_cli.core.geometry.frame import make_geometry
from geocal_cli.io.formats import FORMATS, Options, detect, module

SHAPE = (600, 400)
SAME = lambda d1, d2: (d1, d2)  # noqa: E731


def _geometry(orientation):
    from pyFAI.detectors import Detector

    det = Detector(pixel1=75e-6, pixel2=172e-6, max_shape=SHAPE, orientation=orientation)
    return make_geometry(det, 0.15, 0.02, 0.03, 0.05, -0.07, 0.1, 1.2e-10)


# Fit2D and GSAS-II index the array one way only (a mirrored geometry needs --flip).
MIRROR_OK = ["poni", "dioptas", "imaged11", "cdiutils", "dials"]


@pytest.mark.parametrize("name, orientation", [(n, 3) for n in FORMATS] + [(n, 2) for n in MIRROR_OK])
def test_write_then_read_keeps_the_pixel_map(name, orientation, tmp_path):
    g = _geometry(orientation)
    path = tmp_path / f"geo{FORMATS[name][1]}"
    module(name).write(path, g, SHAPE, Options())
    if name != "dioptas":
        assert detect(path) == name
    back = module(name).read(path, Options(shape=SHAPE)).geometry
    tth, chi_offset, chi_spread = map_difference(g, back, SAME, SHAPE)
    assert tth < 1e-12 and chi_spread < 1e-11
    if name != "fit2d":       # Fit2D has no rot3: only its χ reference turns
        assert abs(chi_offset) < 1e-11
    assert back.wavelength == pytest.approx(g.wavelength, rel=1e-12)
    # And once more through the file: A → B → A → B writes the same values.
    again = tmp_path / f"again{FORMATS[name][1]}"
    first = module(name).write(again, back, SHAPE, Options())
    second = module(name).write(path, module(name).read(again, Options(shape=SHAPE)).geometry, SHAPE, Options())
    for k, v in first.items():
        if isinstance(v, float):
            assert second[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k


def test_fit2d_values_are_pyfais(tmp_path):
    g = _geometry(3)
    written = module("fit2d").write(tmp_path / "g.json", g, SHAPE, Options())
    ref = g.getFit2D()
    for k in ("directDist", "centerX", "centerY", "tilt", "tiltPlanRotation", "pixelX", "pixelY"):
        assert written[k] == pytest.approx(ref[k], rel=1e-12)
    assert detect(tmp_path / "g.json") == "fit2d"


def test_mirrored_geometry_is_refused_by_fit2d_and_gsas2(tmp_path):
    from geocal_cli.errors import ConfigError

    for name in ("fit2d", "gsas2"):
        with pytest.raises(ConfigError, match="--flip ud"):
            module(name).write(tmp_path / f"g{FORMATS[name][1]}", _geometry(2), SHAPE, Options())
        assert not list(tmp_path.iterdir())
