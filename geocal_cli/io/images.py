"""Detector images: reading (fabio; rosettasciio for DM3/DM4/MRC/EMD), validity masks, writing."""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocal_cli.errors import InputFileError
from geocal_cli.files import MAX_PIXELS, checked_file

#: Formats read through rosettasciio rather than fabio (electron microscopy).
EM_SUFFIXES = {".dm3": "DigitalMicrograph", ".dm4": "DigitalMicrograph", ".mrc": "MRC",
               ".emd": "EMD"}


@dataclass(frozen=True)
class Image:
    """A 2-D detector frame as geocal reads it.

    Attributes
    ----------
    data : ndarray, shape (H, W)
        As the reader returns it (fabio's array orientation), first frame of a stack.
    path : Path
    format : str
        Reader name (fabio class or rosettasciio plugin).
    metadata : dict
        What the file says about the experiment, in geocal units where known
        (`voltage_kv`, `pixel_size_um`, `camera_length_mm`).
    """

    data: np.ndarray
    path: Path
    format: str
    metadata: dict = field(default_factory=dict)


def read_image(path: Path) -> Image:
    """Read the first frame of a detector image.

    Parameters
    ----------
    path : Path
        Anything fabio reads (EDF, TIFF, CBF, MAR345, SPE, Eiger/NeXus HDF5, …) or, by
        suffix, DM3/DM4/MRC/EMD through rosettasciio.

    Returns
    -------
    Image

    Raises
    ------
    InputFileError
        Missing or unreadable file, or not a non-empty 2-D array.
    """
    path = Path(path)
    checked_file(path, "image")
    if path.suffix.lower() in EM_SUFFIXES:
        data, fmt, meta = _read_em(path)
    else:
        data, fmt, meta = _read_fabio(path)
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] >= 1:
        data = data[0]
    if data.ndim != 2 or data.size == 0 or min(data.shape) < 2:
        raise InputFileError(f"{path}: expected a 2-D image, got an array of shape {data.shape}")
    if not np.issubdtype(data.dtype, np.number):
        raise InputFileError(f"{path}: pixel type {data.dtype} is not numeric")
    return Image(data=data, path=path, format=fmt, metadata=meta)


def _read_fabio(path: Path):
    """The first frame through fabio, after its header says the frame is of a sane size and
    complete: fabio would allocate whatever a header declares and pad a truncated file with
    zeros."""
    import fabio

    try:
        head = fabio.openheader(str(path))
        _check_declared(path, getattr(head, "shape", None), getattr(head, "incomplete_file", False))
        img = fabio.open(str(path))
        data = img.data
    except InputFileError:
        raise
    except MemoryError:
        raise InputFileError(f"{path}: the image does not fit in memory") from None
    except Exception as exc:  # fabio raises many types for corrupt input
        raise InputFileError(f"{path}: not a readable detector image ({exc.__class__.__name__}: "
                             f"{str(exc)[:200]})") from None
    if data is None:
        raise InputFileError(f"{path}: the file holds no image data")
    _check_declared(path, data.shape, getattr(img, "incomplete_file", False))
    pixel = _header_pixel_size(img.header)
    return data, type(img).__name__, {"pixel_size_um": pixel} if pixel else {}


#: A date and time as detector headers write them: CBF "# 2011-06-30T13:14:15.123",
#: EDF and HDF5 "2011-06-30 13:14:15".
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(?:\.\d+)?)")


def read_header(path: Path) -> dict:
    """An image's header (fabio), only the header read.

    Raises
    ------
    InputFileError
        The header cannot be read.
    """
    import fabio

    try:
        return dict(fabio.openheader(str(path)).header)
    except Exception as exc:  # fabio raises many types for corrupt input
        raise InputFileError(f"{path}: no readable image header ({exc.__class__.__name__})") from None


def acquisition_time(path: Path) -> str | None:
    """The first date-time stamp in an image's header, as ISO 8601 (no zone: as the detector
    wrote it), or None when the header has none or cannot be read. Only the header is read.

    Parameters
    ----------
    path : Path
    """
    try:
        header = read_header(path)
    except InputFileError:  # no time; the image's reader says why
        return None
    for value in header.values():
        match = _TIMESTAMP.search(str(value))
        if match:
            return f"{match.group(1)}T{match.group(2)}"
    return None


def _header_pixel_size(header: dict) -> tuple[float, float] | None:
    """Pixel size (rows, cols) in µm where the image header states it: MAR345
    (PIXEL_HEIGHT/PIXEL_LENGTH, µm), Pilatus/Eiger CBF ("Pixel_size X m x Y m"), ESRF EDF
    (PSize_2/PSize_1, m)."""
    import re

    try:
        if "PIXEL_LENGTH" in header and "PIXEL_HEIGHT" in header:
            return float(header["PIXEL_HEIGHT"]), float(header["PIXEL_LENGTH"])
        m = re.search(r"Pixel_size\s+([0-9.eE+-]+)\s*m\s*x\s*([0-9.eE+-]+)\s*m",
                      str(header.get("_array_data.header_contents", ""))[:10_000])
        if m:
            return float(m.group(2)) * 1e6, float(m.group(1)) * 1e6
        if "PSize_1" in header and "PSize_2" in header:
            return float(header["PSize_2"]) * 1e6, float(header["PSize_1"]) * 1e6
    except (TypeError, ValueError):
        return None
    return None


def _check_declared(path: Path, shape, incomplete: bool) -> None:
    """Refuse a frame larger than `MAX_PIXELS` or shorter than its header declares.

    Raises
    ------
    InputFileError
    """
    if shape is not None and len(shape) and int(np.prod([int(s) for s in shape], dtype=float)) > MAX_PIXELS:
        raise InputFileError(f"{path}: its header declares {' × '.join(str(int(s)) for s in shape)} "
                             f"pixels; geocal reads images of at most {MAX_PIXELS:,} pixels")
    if incomplete:
        raise InputFileError(f"{path}: the file is shorter than its header declares (truncated "
                             "or corrupt); the missing pixels would read as zeros")


def _read_em(path: Path):
    import importlib

    reader = EM_SUFFIXES[path.suffix.lower()]
    module = {"DigitalMicrograph": "rsciio.digitalmicrograph", "MRC": "rsciio.mrc",
              "EMD": "rsciio.emd"}[reader]
    try:
        file_reader = importlib.import_module(module).file_reader
    except ImportError as exc:
        raise InputFileError(f"{path}: reading {reader} files needs rosettasciio "
                             f"(pip install rosettasciio): {exc}") from None
    try:
        items = file_reader(str(path))
    except Exception as exc:  # the plugins raise many types for corrupt input
        raise InputFileError(f"{path}: not a readable {reader} file ({exc})") from None
    item = next((i for i in items if np.asarray(i["data"]).ndim >= 2), None)
    if item is None:
        raise InputFileError(f"{path}: no 2-D image in the file")
    return item["data"], reader, _em_metadata(item)


def _em_metadata(item: dict) -> dict:
    """Voltage, camera length and pixel size from a rosettasciio item, where present."""
    meta = {}
    md = item.get("metadata", {})
    tem = md.get("Acquisition_instrument", {}).get("TEM", {})
    if "beam_energy" in tem:
        meta["voltage_kv"] = float(tem["beam_energy"])
    if "camera_length" in tem:
        meta["camera_length_mm"] = float(tem["camera_length"])
    axes = item.get("axes", [])
    if len(axes) >= 2 and all(a.get("units") in ("nm", "µm", "um") for a in axes[-2:]):
        to_um = {"nm": 1e-3, "µm": 1.0, "um": 1.0}
        meta["pixel_size_um"] = tuple(float(a["scale"]) * to_um[a["units"]] for a in axes[-2:])
    return meta


def valid_pixels(data: np.ndarray, detector_mask: np.ndarray | None = None,
                 user_mask: np.ndarray | None = None) -> np.ndarray:
    """Pixels that carry a measurement.

    Invalid: non-finite values, negative values (Pilatus/Eiger gaps and dead pixels), pixels
    masked by the detector definition or by the user (non-zero = masked, pyFAI's convention),
    and zero-valued regions connected to the image border that cover ≥ 1 % of it (the area
    outside a MAR345 plate, a shutter shadow): they are not measured counts of zero.

    Parameters
    ----------
    data : ndarray, shape (H, W)
    detector_mask, user_mask : ndarray, shape (H, W), optional

    Returns
    -------
    ndarray of bool, shape (H, W)

    Raises
    ------
    InputFileError
        A mask whose shape differs from the image.
    """
    from scipy import ndimage

    data = np.asarray(data)
    valid = np.isfinite(data) if np.issubdtype(data.dtype, np.floating) else np.ones(data.shape, bool)
    with np.errstate(invalid="ignore"):
        valid &= ~(data < 0)
    for name, m in (("detector mask", detector_mask), ("mask", user_mask)):
        if m is None:
            continue
        if m.shape != data.shape:
            raise InputFileError(f"{name} shape {m.shape} differs from the image shape {data.shape}")
        valid &= ~np.asarray(m).astype(bool)
    zero = valid & (data == 0)
    if zero.mean() > 0.01:
        lab, _ = ndimage.label(zero)
        border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        border = border[border > 0]
        if border.size:
            sizes = np.bincount(lab.ravel())
            big = border[sizes[border] >= 0.01 * data.size]
            valid &= ~np.isin(lab, big)
    return valid


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Read a mask image (non-zero = masked) and check its shape.

    Raises
    ------
    InputFileError
        Unreadable, or not of the image's shape.
    """
    m = read_image(path).data
    if m.shape != tuple(shape):
        raise InputFileError(f"mask {path} has shape {m.shape}, the image {tuple(shape)}")
    return m != 0


def write_image(path: Path, data: np.ndarray, header: dict | None = None) -> None:
    """Write an image with fabio, the format chosen by the suffix (.edf, .tif, .cbf, .npy)."""
    from geocal_cli.io.outputs import SIGNATURE, atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, data)
            return
        import fabio.cbfimage
        import fabio.edfimage
        import fabio.tifimage

        cls = {".edf": fabio.edfimage.EdfImage, ".tif": fabio.tifimage.TifImage,
               ".tiff": fabio.tifimage.TifImage, ".cbf": fabio.cbfimage.CbfImage}.get(suffix)
        if cls is None:
            raise InputFileError(f"cannot write images of type '{suffix}': use .edf, .tif, .cbf or .npy")
        # The signature lands in the file's first bytes (EDF header, TIFF ImageDescription,
        # CBF header contents): how a rerun knows the file is geocal's to replace.
        img = cls(data=data, header={"creator": SIGNATURE, **{k: str(v) for k, v in (header or {}).items()}})
        img.write(str(tmp))
