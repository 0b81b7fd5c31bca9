import numpy as np
import pytest

from geocal_cli.errors import InputFileError
from geocal_cli.io.images import read_image, valid_pixels, write_image
from tests.conftest import emd_signal


def test_round_trip_edf_and_tif(tmp_path):
    data = np.arange(12, dtype=np.int32).reshape(3, 4)
    for suffix in (".edf", ".tif", ".cbf", ".npy"):
        path = tmp_path / f"x{suffix}"
        if suffix == ".npy":
            write_image(path, data)
            assert np.array_equal(np.load(path), data)
            continue
        write_image(path, data)
        assert np.array_equal(read_image(path).data, data)


@pytest.mark.parametrize("content", [b"", b"not an image at all" * 10, b"\x00\x01\x02"])
def test_corrupt_files_raise_input_error(tmp_path, content):
    path = tmp_path / "bad.edf"
    path.write_bytes(content)
    with pytest.raises(InputFileError):
        read_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_image(tmp_path / "nope.cbf")


def test_one_dimensional_array_rejected(tmp_path):
    path = tmp_path / "line.tif"
    write_image(path, np.arange(10, dtype=np.int32)[None, :])
    with pytest.raises(InputFileError, match="2-D"):
        read_image(path)


def test_valid_pixels_rules():
    data = np.full((50, 60), 10.0)
    data[0:30, 0:5] = 0          # border-connected zero region, 5 % of the image: no data
    data[20, 20] = 0             # a genuine zero count: valid
    data[10, 40] = -1            # gap
    data[11, 41] = np.nan
    user = np.zeros_like(data, bool)
    user[45, 50] = True
    v = valid_pixels(data, user_mask=user)
    assert not v[0:30, 0:5].any()
    assert v[20, 20] and not v[10, 40] and not v[11, 41] and not v[45, 50]
    assert v.sum() == data.size - 150 - 3


def test_mask_shape_mismatch():
    with pytest.raises(InputFileError, match="shape"):
        valid_pixels(np.ones((5, 5)), user_mask=np.zeros((4, 5), bool))


def test_eiger_hdf5_stack_reads_the_frame_asked_for_never_a_silent_first_one(tmp_path):
    import h5py

    from geocal_cli.errors import ConfigError

    stack = np.arange(2 * 30 * 40, dtype=np.uint32).reshape(2, 30, 40)
    path = tmp_path / "series_master.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("entry/data/data_000001", data=stack)
    with pytest.raises(ConfigError, match="--frame"):
        read_image(path)
    img = read_image(path, 1)
    assert img.format == "EigerImage"
    assert np.array_equal(img.data, stack[1])
    assert img.metadata["frame"] == "frame 1 of 2"
    assert np.array_equal(read_image(path, "sum").data, stack.sum(0))
    assert np.allclose(read_image(path, "mean").data, stack.mean(0))


def test_emd_reads_through_rosettasciio_with_its_pixel_size(tmp_path):
    from rsciio.emd import file_writer

    data = np.arange(48, dtype=np.int32).reshape(6, 8)
    file_writer(str(tmp_path / "x.emd"), emd_signal(data))
    img = read_image(tmp_path / "x.emd")
    assert np.array_equal(img.data, data)
    assert img.format == "EMD"
    assert img.metadata["pixel_size_um"] == pytest.approx((55.0, 55.0))


def test_em_metadata_gives_voltage_and_camera_length():
    from geocal_cli.io.images import _em_metadata

    item = {"metadata": {"Acquisition_instrument": {"TEM": {"beam_energy": 200.0, "camera_length": 250.0}}},
            "axes": [{"scale": 1.0, "units": "1/nm"}, {"scale": 1.0, "units": "1/nm"}]}
    # Reciprocal-space calibrations are not pixel sizes.
    assert _em_metadata(item) == {"voltage_kv": 200.0, "camera_length_mm": 250.0}


@pytest.mark.parametrize("suffix", [".dm4", ".dm3", ".mrc", ".emd"])
def test_corrupt_em_files_raise_input_error(tmp_path, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b"not an image at all" * 10)
    with pytest.raises(InputFileError, match="not a readable"):
        read_image(path)


def test_the_acquisition_time_is_the_headers_first_time_stamp(tmp_path):
    from geocal_cli.io.images import acquisition_time

    path = tmp_path / "frame.edf"
    write_image(path, np.zeros((8, 8), np.int32), header={"date": "2026-11-30 08:00:01.25"})
    assert acquisition_time(path) == "2026-11-30T08:00:01.25"
    write_image(path, np.zeros((8, 8), np.int32))
    assert acquisition_time(path) is None
    (tmp_path / "junk.edf").write_bytes(b"junk")
    assert acquisition_time(tmp_path / "junk.edf") is None
