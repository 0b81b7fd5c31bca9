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
