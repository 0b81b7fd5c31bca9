"""Detector images: reading (fabio; rosettasciio for electron-microscopy formats), frames of
stacks, validity masks, writing."""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.files import MAX_PIXELS, checked_file

#: Formats read through rosettasciio rather than fabio (electron microscopy): suffix →
#: (format name, rosettasciio plugin).
EM_SUFFIXES = {".dm3": ("DigitalMicrograph", "rsciio.digitalmicrograph"),
               ".dm4": ("DigitalMicrograph", "rsciio.digitalmicrograph"),
               ".mrc": ("MRC", "rsciio.mrc"), ".emd": ("EMD", "rsciio.emd"),
               ".mib": ("Quantum Detectors MIB", "rsciio.quantumdetector"),
               ".ser": ("TIA", "rsciio.tia"), ".emi": ("TIA", "rsciio.tia"),
               ".blo": ("Blockfile", "rsciio.blockfile"), ".tvips": ("TVIPS", "rsciio.tvips"),
               ".hspy": ("HyperSpy HDF5", "rsciio.hspy")}
#: A calibrated pixel below this (µm) is a specimen pixel of an image, not a detector pixel.
MIN_DETECTOR_PIXEL_UM = 1.0
#: `frame` values that reduce a stack instead of picking one frame.
REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class Image:
    """A 2-D detector frame as geocal reads it.

    Attributes
    ----------
    data : ndarray, shape (H, W)
        As the reader returns it (fabio's array orientation): the single frame, or the frame
        or reduction of a stack that `read_image` was asked for.
    path : Path
    format : str
        Reader name (fabio class or rosettasciio plugin).
    metadata : dict
        What the file says about the experiment, in geocal units where known
        (`voltage_kv`, `pixel_size_um`, `camera_length_mm`), and `frame` for a stack.
    """

    data: np.ndarray
    path: Path
    format: str
    metadata: dict = field(default_factory=dict)


def read_image(path: Path, frame: int | str | None = None) -> Image:
    """Read a detector image: its only frame, or the frame of a stack that `frame` names.

    Parameters
    ----------
    path : Path
        Anything fabio reads (EDF, TIFF, CBF, MAR345, SPE, Eiger/NeXus HDF5, …) or, by
        suffix, what rosettasciio reads of electron microscopy (`EM_SUFFIXES`: DM3, DM4,
        MRC, EMD, MIB, SER/EMI, BLO, TVIPS, HSPY).
    frame : int, 'sum', 'mean' or None
        For a stack (a series, or the scan positions of a 4D-STEM file, in file order): the
        frame (0-based) or the sum or mean of all frames. A stack read without it is an
        error, never a silent first frame.

    Returns
    -------
    Image

    Raises
    ------
    InputFileError
        Missing or unreadable file, or not a non-empty 2-D array.
    ConfigError
        A stack without `frame`, a frame beyond the stack, or `frame` for a single image.
    """
    path = Path(path)
    checked_file(path, "image")
    if path.suffix.lower() in EM_SUFFIXES:
        data, fmt, meta = _read_em(path, frame)
    else:
        data, fmt, meta = _read_fabio(path, frame)
    data = np.asarray(data)
    if data.ndim != 2 or data.size == 0 or min(data.shape) < 2:
        raise InputFileError(f"{path}: expected a 2-D image, got an array of shape {data.shape}")
    if not np.issubdtype(data.dtype, np.number):
        raise InputFileError(f"{path}: pixel type {data.dtype} is not numeric")
    return Image(data=data, path=path, format=fmt, metadata=meta)


def _read_fabio(path: Path, frame):
    """A frame through fabio, after its header says the frame is of a sane size and
    complete: fabio would allocate whatever a header declares and pad a truncated file with
    zeros."""
    import fabio

    try:
        head = fabio.openheader(str(path))
        _check_declared(path, getattr(head, "shape", None), getattr(head, "incomplete_file", False))
        img = fabio.open(str(path))
        n = int(getattr(img, "nframes", 1) or 1)
        data = _pick_frame(path, n, frame, lambda i: img.getframe(i).data if n > 1 else img.data)
    except (InputFileError, ConfigError):
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
    meta = {"pixel_size_um": pixel} if pixel else {}
    if n > 1:
        meta["frame"] = _frame_text(frame, n)
    return data, type(img).__name__, meta


def _pick_frame(path: Path, n: int, frame, get) -> np.ndarray:
    """Frame `frame` of `n` (`get(i)` reads frame i), or their sum or mean.

    Raises
    ------
    ConfigError
        A stack without `frame`, a frame out of range, or `frame` for a single image.
    """
    if n <= 1:
        if frame not in (None, 0, *REDUCTIONS):
            raise ConfigError(f"{path}: --frame {frame}: the file holds a single image")
        return get(0)
    if frame is None:
        raise ConfigError(f"{path}: a stack of {n} frames: choose one with --frame N "
                          f"(0 … {n - 1}), or --frame sum or --frame mean")
    if frame in REDUCTIONS:
        total = np.zeros(np.shape(get(0)), float)
        for i in range(n):
            total += np.asarray(get(i), float)
        return total / n if frame == "mean" else total
    if not 0 <= int(frame) < n:
        raise ConfigError(f"{path}: --frame {frame}: the stack has frames 0 … {n - 1}")
    return get(int(frame))


def _frame_text(frame, n: int) -> str:
    """How the report names the frame read of a stack of `n`."""
    return f"{frame} of {n} frames" if frame in REDUCTIONS else f"frame {frame} of {n}"


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


def _read_em(path: Path, frame):
    """The diffraction pattern of an electron-microscopy file through rosettasciio: the
    first item with a 2-D signal, its navigation axes (a series, a 4D-STEM scan) flattened
    into frames in file order, read lazily where the plugin allows."""
    import importlib

    reader, module = EM_SUFFIXES[path.suffix.lower()]
    try:
        file_reader = importlib.import_module(module).file_reader
    except ImportError as exc:
        raise InputFileError(f"{path}: reading {reader} files needs rosettasciio "
                             f"(pip install rosettasciio): {exc}") from None
    try:
        # Lazily, so that one frame of a 4D-STEM file is all that is read; a plugin that
        # cannot (unchunked data) reads the whole file.
        items = file_reader(str(path), lazy=True)
    except Exception:  # the plugins raise many types, for corrupt input too
        try:
            items = file_reader(str(path))
        except Exception as exc:
            raise InputFileError(f"{path}: not a readable {reader} file ({exc})") from None
    item = next((i for i in items if len(getattr(i["data"], "shape", ())) >= 2), None)
    if item is None:
        raise InputFileError(f"{path}: no 2-D image in the file")
    data = item["data"]
    shape = tuple(data.shape)
    frames = data.reshape((-1,) + shape[-2:]) if len(shape) > 2 else data[None]
    n = frames.shape[0]
    try:
        image = _pick_frame(path, n, frame, lambda i: np.asarray(frames[i]))
    except (ConfigError, InputFileError):
        raise
    except Exception as exc:  # a lazy read fails only now on a truncated file
        raise InputFileError(f"{path}: not a readable {reader} file ({exc})") from None
    meta = _em_metadata(item)
    if reader == "MRC":
        meta = {**_mrc_fei_metadata(path), **meta}
    if n > 1:
        meta["frame"] = _frame_text(frame, n)
    return image, reader, meta


#: Units of calibrated axes that are lengths on the detector, in µm.
_LENGTH_UM = {"m": 1e6, "mm": 1e3, "µm": 1.0, "um": 1.0, "nm": 1e-3}


def _mrc_fei_metadata(path: Path) -> dict:
    """Voltage, camera length and pixel size from an MRC file's Thermo Fisher FEI1/FEI2
    extended header (mrcfile parses it; rosettasciio does not read these fields): `HT` (V),
    `Camera length` (m), `Pixel size X/Y` (m, kept as the detector pixel when at least
    `MIN_DETECTOR_PIXEL_UM`), from the first frame's record, where its bitmask says they
    are set or, written without a bitmask, where they are positive."""
    import mrcfile

    try:
        with mrcfile.open(str(path), permissive=True, header_only=False) as mrc:
            ext = mrc.indexed_extended_header
    except Exception:  # a plain MRC or a header mrcfile cannot parse: no metadata
        return {}
    if ext is None or not getattr(ext, "dtype", None) or ext.dtype.names is None \
            or "HT" not in ext.dtype.names or ext.size == 0:
        return {}
    rec = ext[0]
    meta = {}
    if float(rec["HT"]) > 0:
        meta["voltage_kv"] = float(rec["HT"]) / 1e3
    if float(rec["Camera length"]) > 0:
        meta["camera_length_mm"] = float(rec["Camera length"]) * 1e3
    pixel = (float(rec["Pixel size Y"]) * 1e6, float(rec["Pixel size X"]) * 1e6)
    if min(pixel) >= MIN_DETECTOR_PIXEL_UM:
        meta["pixel_size_um"] = pixel
    return meta


def _mapped(item: dict, prefix: str) -> dict:
    """The metadata a rosettasciio plugin leaves to HyperSpy to map (its `mapping`: a dotted
    path in `original_metadata` → a dotted metadata path and a conversion), for the targets
    under `prefix`, keyed by the rest of their path."""
    out = {}
    original = item.get("original_metadata", {})
    for source, (target, convert) in (item.get("mapping") or {}).items():
        if not target.startswith(prefix):
            continue
        value = original
        for key in source.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        try:
            out[target[len(prefix):]] = convert(value) if convert else value
        except (TypeError, ValueError):
            continue
    return out


def _em_metadata(item: dict) -> dict:
    """Voltage, camera length and detector pixel size from a rosettasciio item, where present.

    The voltage is HyperSpy's `Acquisition_instrument.TEM.beam_energy` (keV) or an FEI MRC
    extended header's `ht` (V); the camera length is `TEM.camera_length` (mm); the pixel size
    is the signal axes' scale when their unit is a length of at least `MIN_DETECTOR_PIXEL_UM`
    (smaller ones are specimen pixels of an image, reciprocal units a diffraction
    calibration, neither of them the detector's pixel).
    """
    meta = {}
    md = item.get("metadata", {})
    tem = {**_mapped(item, "Acquisition_instrument.TEM."),
           **md.get("Acquisition_instrument", {}).get("TEM", {})}
    fei = item.get("original_metadata", {}).get("fei_header", {})
    if tem.get("beam_energy"):
        meta["voltage_kv"] = float(tem["beam_energy"])
    elif np.size(fei.get("ht", 0)) and float(np.ravel(fei.get("ht", 0))[0]) > 0:
        meta["voltage_kv"] = float(np.ravel(fei["ht"])[0]) / 1e3
    if tem.get("camera_length"):
        meta["camera_length_mm"] = float(tem["camera_length"])
    axes = [a for a in item.get("axes", []) if not a.get("navigate", False)][-2:]
    if len(axes) == 2 and all(a.get("units") in _LENGTH_UM for a in axes):
        pixel = tuple(float(a["scale"]) * _LENGTH_UM[a["units"]] for a in axes)
        if min(pixel) >= MIN_DETECTOR_PIXEL_UM:
            meta["pixel_size_um"] = pixel
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
