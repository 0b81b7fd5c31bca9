import pytest

from geocal_cli.core.geometry.frame import make_geometry
from geocal_cli.errors import InputFileError
from geocal_cli.io.poni import read_poni, write_poni


def test_round_trip_keeps_detector_and_orientation(tmp_path):
    import pyFAI
    import pyFAI.detectors

    det = pyFAI.detectors.detector_factory("Pilatus1M", {"orientation": 2})
    g = make_geometry(det, 0.2, 0.05, 0.06, 0.01, -0.02, 0.0, 1e-10)
    path = tmp_path / "a.poni"
    write_poni(path, g)
    text = path.read_text()
    assert "poni_version: 2.1" in text and '"orientation": 2' in text
    back = read_poni(path)
    loaded = pyFAI.load(str(path))
    for obj in (back, loaded):
        assert obj.dist == pytest.approx(0.2) and obj.rot2 == pytest.approx(-0.02)
        assert int(obj.detector.orientation) == 2


def test_poni_v1_reads(tmp_path):
    path = tmp_path / "v1.poni"
    path.write_text("PixelSize1: 0.000172\nPixelSize2: 0.000172\nDistance: 1.5\nPoni1: 0.03\n"
                    "Poni2: 0.04\nRot1: 0\nRot2: 0\nRot3: 0\n")
    g = read_poni(path)
    assert g.dist == 1.5 and g.detector.pixel1 == pytest.approx(172e-6)


@pytest.mark.parametrize("text", ["hello\n", "Distance: abc\nPoni1: 1\nPoni2: 1\n", "Poni1: 0.1\n"])
def test_malformed(tmp_path, text):
    path = tmp_path / "bad.poni"
    path.write_text(text)
    with pytest.raises(InputFileError, match="malformed"):
        read_poni(path)
