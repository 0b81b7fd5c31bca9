"""Electron-microscopy files: voltage, camera length and pixel size from the metadata fill what
the command line does not give, and a stack is never read as a silent first frame (issue 19,
must-show 4). The files are written here by the programs microscopists use (rosettasciio's
HyperSpy writer, mrcfile with a Thermo Fisher FEI1 extended header, a Velox EMD as h5py
lays it out) around a simulated 300 kV Au pattern of known geometry."""

import json

import h5py
import numpy as np
import pytest

from geocal_cli.main import run

CENTRE = (251.3, 262.7)      # x, y pixels
LENGTH_MM = 250.0


@pytest.fixture(scope="module")
def pattern(tmp_path_factory):
    """A simulated Au pattern (300 kV, 55 µm pixels, lens axis ratio 1.03)."""
    import fabio

    path = tmp_path_factory.mktemp("em") / "au.tif"
    with pytest.raises(SystemExit) as exc:
        run(["--quiet", "simulate", str(path), "-c", "Au", "--voltage", "300", "--pixel-size", "55",
             "--shape", "512,512", "--distance", str(LENGTH_MM), "--center",
             ",".join(map(str, CENTRE)), "--axis-ratio", "1.03", "--ellipse-angle", "30",
             "--width", "1.5", "--peak-counts", "2000", "--background", "300", "--seed", "3",
             "--direct-beam", "50000", "--saturation", "20000"])
    assert exc.value.code == 0
    return fabio.open(str(path)).data.astype(np.float32)


def _hspy(path, data):
    from rsciio.hspy import file_writer

    nav = data.ndim - 2
    axes = [{"size": n, "scale": 1.0, "offset": 0.0, "units": "", "name": f"t{i}",
             "navigate": True} for i, n in enumerate(data.shape[:nav])]
    axes += [{"size": n, "scale": 55.0, "offset": 0.0, "units": "µm", "name": a,
              "navigate": False} for n, a in zip(data.shape[-2:], "yx")]
    file_writer(str(path), {
        "data": data, "axes": axes, "original_metadata": {}, "tmp_parameters": {},
        "attributes": {"_lazy": False}, "learning_results": {}, "models": {},
        "package_info": {"name": "geocal-tests", "version": "0"},
        "metadata": {"General": {"title": "Au"}, "Signal": {"signal_type": "electron_diffraction"},
                     "Acquisition_instrument": {"TEM": {"beam_energy": 300.0,
                                                        "camera_length": LENGTH_MM}}}})


def _mrc(path, data):
    import mrcfile
    import mrcfile.dtypes

    ext = np.zeros(1, dtype=mrcfile.dtypes.get_ext_header_dtype(b"FEI1"))
    ext["Metadata size"] = ext.dtype.itemsize
    ext["HT"] = 300e3
    ext["Camera length"] = LENGTH_MM * 1e-3
    ext["Pixel size X"] = ext["Pixel size Y"] = 55e-6
    with mrcfile.new(str(path), overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.set_extended_header(ext)
        mrc.header.exttyp = b"FEI1"


def _velox(path, data):
    """A Velox EMD as Thermo Fisher's Velox writes it: one camera image, its metadata JSON."""
    meta = {"BinaryResult": {"PixelSize": {"width": "5.5e-05", "height": "5.5e-05"},
                             "PixelUnitX": "m", "PixelUnitY": "m",
                             "Offset": {"x": "0", "y": "0"}, "DetectorIndex": "0"},
            "Detectors": {"Detector-0": {"DetectorName": "BM-Ceta", "ExposureTime": "1"}},
            "Optics": {"AccelerationVoltage": "300000", "CameraLength": str(LENGTH_MM * 1e-3)},
            "Scan": {}, "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1700000000"}},
            "Instrument": {"InstrumentClass": "Talos"}}
    text = np.frombuffer(json.dumps(meta).encode() + b"\0", np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("Version", data=np.array([json.dumps({"format": "Velox",
                                                               "version": "11"}).encode()]))
        image = f.create_group("Data/Image/6a1f")
        image.create_dataset("Data", data=data[:, :, None])
        image.create_dataset("Metadata", data=text[:, None])


def _calib(tmp_path, capsys, image, *extra):
    with pytest.raises(SystemExit) as exc:
        run(["--quiet", "calib-ring", str(image), "-c", "Au", "-o", str(tmp_path / "au.poni"),
             "--report", str(tmp_path / "au.json"), "--overwrite", *extra])
    err = capsys.readouterr().err
    if exc.value.code:
        return exc.value.code, err, None
    return 0, err, json.loads((tmp_path / "au.json").read_text())


@pytest.mark.parametrize("suffix,write", [(".hspy", _hspy), (".mrc", _mrc), (".emd", _velox)])
def test_metadata_fills_voltage_and_pixel_size(tmp_path, capsys, pattern, suffix, write):
    image = tmp_path / f"au{suffix}"
    write(image, pattern)
    code, err, report = _calib(tmp_path, capsys, image)
    assert code == 0, err
    sources = report["results"]["sources"]
    assert sources["radiation"] == "image metadata (300 kV)"
    assert sources["pixel_size"].startswith("image metadata (55")
    assert sources["camera_length_mm_metadata"] == pytest.approx(LENGTH_MM)
    e = report["results"]["electron"]
    assert e["center_px"]["x"] == pytest.approx(CENTRE[0], abs=0.05)
    assert e["center_px"]["y"] == pytest.approx(CENTRE[1], abs=0.05)
    assert e["camera_length_mm"] == pytest.approx(LENGTH_MM, rel=5e-4)
    # The command line wins over the metadata, and the report says so.
    code, err, report = _calib(tmp_path, capsys, image, "--voltage", "300", "--pixel-size", "55")
    assert code == 0, err
    assert report["results"]["sources"]["radiation"] == "command line"
    assert report["results"]["sources"]["pixel_size"] == "command line"


def test_a_stack_needs_frame(tmp_path, capsys, pattern):
    image = tmp_path / "series.hspy"
    _hspy(image, np.stack([pattern * 0.5, pattern * 0.2, pattern]))
    code, err, _ = _calib(tmp_path, capsys, image)
    assert code == 3 and "--frame" in err
    code, err, report = _calib(tmp_path, capsys, image, "--frame", "2")
    assert code == 0, err
    assert report["results"]["sources"]["frame"] == "frame 2 of 3"
    assert report["results"]["electron"]["center_px"]["x"] == pytest.approx(CENTRE[0], abs=0.05)
    code, err, report = _calib(tmp_path, capsys, image, "--frame", "sum")
    assert code == 0, err
    assert report["results"]["sources"]["frame"] == "sum of 3 frames"
    code, err, _ = _calib(tmp_path, capsys, image, "--frame", "3")
    assert code == 3 and "0 … 2" in err
