import numpy as np
import pytest

from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.io.calibrants import load_calibrant
from tests.conftest import shared


def test_pyfai_name_case_insensitive():
    c = load_calibrant("lab6")
    assert c.name == "LaB6"
    assert c.d_spacing[0] == pytest.approx(4.1569e-10, rel=1e-3)
    assert np.all(np.diff(c.d_spacing) < 0)


def test_reflections_of_one_d_spacing_are_one_ring():
    """pyFAI's vanadinite file lists hexagonal hk0/kh0 pairs on lines of their own, at one
    d-spacing: one ring each, whose m|F|² is the sum of its lines (from the file's Cu Kα1
    intensities over the Lorentz-polarisation factor)."""
    from pathlib import Path

    from pyFAI.calibrant import CALIBRANT_FACTORY

    cal = CALIBRANT_FACTORY("vanadinite")
    listed = np.array(cal.dspacing, float)
    assert np.unique(listed).size < listed.size
    c = load_calibrant("vanadinite")
    assert np.all(np.diff(c.d_spacing) < 0)
    assert c.d_spacing.size == np.unique(listed).size
    lines = [(float(v), float(f.replace("(", " ").replace(")", " ").split()[4]))
             for v, _, f in (ln.partition("#") for ln in
                             Path(cal._get_abs_path(cal.filename)).read_text().splitlines())
             if v.strip() and len(f.replace("(", " ").replace(")", " ").split()) >= 5]
    d_twin = next(d for d in listed if np.count_nonzero(listed == d) == 2)
    theta = np.arcsin(1.5406 / (2 * d_twin))
    lp = (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    summed = sum(i for d, i in lines if d == d_twin) / lp
    (k,) = np.nonzero(c.d_spacing * 1e10 == d_twin)[0]
    assert c.mf2()[k] == pytest.approx(summed, rel=1e-9)


def test_dspacing_file(tmp_path):
    path = tmp_path / "mine.D"
    path.write_text("# my calibrant\n3.1\n2.5  # (200)\n\n4.0\n")
    c = load_calibrant(str(path))
    assert list(c.d_spacing * 1e10) == pytest.approx([4.0, 3.1, 2.5])


def test_cif_gold_rings_and_intensities():
    c = load_calibrant(str(shared("electron", "au_xgrating_pyxem", "au.cif")), "electron")
    d = c.d_spacing[:5] * 1e10
    a = 4.0782
    assert d == pytest.approx(a / np.sqrt([3, 4, 8, 11, 12]), rel=2e-3)
    assert c.intensity.max() == 1.0 and c.intensity[0] > c.intensity[1]


def test_unknown_name_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not a pyFAI calibrant"):
        load_calibrant("unobtainium")
    bad = tmp_path / "x.D"
    bad.write_text("abc\n")
    with pytest.raises(InputFileError):
        load_calibrant(str(bad))
    cif = tmp_path / "x.cif"
    cif.write_text("data_x\n_cell_length_a 4\n")
    with pytest.raises(InputFileError):
        load_calibrant(str(cif))
