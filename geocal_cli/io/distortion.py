"""Detector distortion files through pyFAI: NeXus detector HDF5 (dx, dy, mask, pixel sizes),
Fit2D splines, and images corrected with pyFAI's `Distortion`.

All of them use pyFAI's convention (`geocal_cli.core.geometry.displacement`): a pixel corner at
(y, x) is really at (y + dy, x + dx) on an ideal detector of the stated pixel sizes; a Fit2D
spline is evaluated by pyFAI at corner coordinates (x = column, y = row).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from geocal_cli.core.geometry.displacement import Field, corner_grid
from geocal_cli.errors import InputFileError
from geocal_cli.files import MAX_PIXELS, MAX_TEXT_BYTES, checked_file

SPLINE_SUFFIXES = (".spline",)


def make_distorted_detector(field: Field, pixel_size_m: tuple[float, float],
                            mask: np.ndarray | None = None):
    """A pyFAI detector with a displacement field.

    Parameters
    ----------
    field : Field
    pixel_size_m : (float, float)
        (pixel1 along rows, pixel2 along columns), metres.
    mask : ndarray of bool, shape (H, W), optional
        Pixels to mask (pyFAI: 1 = masked).

    Returns
    -------
    pyFAI.detectors.Detector
    """
    from pyFAI.detectors import Detector

    det = Detector(pixel1=pixel_size_m[0], pixel2=pixel_size_m[1], max_shape=field.shape)
    det.set_dx(field.dx)
    det.set_dy(field.dy)
    if mask is not None:
        det.mask = mask.astype(np.int8)
    return det


def write_detector(path: Path, detector) -> None:
    """Save a detector as a NeXus HDF5 file with pyFAI's `Detector.save` (atomically)."""
    import h5py

    from geocal_cli.io.outputs import SIGNATURE, atomic_path

    with atomic_path(Path(path)) as tmp:
        detector.save(str(tmp))
        with h5py.File(tmp, "a") as h5:
            h5.attrs["creator"] = SIGNATURE


def read_distortion(path: Path) -> tuple[Field, tuple[float, float], np.ndarray | None]:
    """The displacement field of a pyFAI detector file or a Fit2D spline.

    Parameters
    ----------
    path : Path
        `.spline` (Fit2D) or anything `pyFAI.detector_factory` loads (NeXus `.h5`).

    Returns
    -------
    field : Field
    pixel_size_m : (float, float)
        (pixel1, pixel2).
    mask : ndarray of bool or None
        The file's mask (a spline has none).

    Raises
    ------
    InputFileError
        Missing or unreadable file. A regular detector file gives a zero field.
    """
    path = Path(path)
    if path.suffix.lower() in SPLINE_SUFFIXES:
        checked_file(path, "Fit2D spline", MAX_TEXT_BYTES)
        return _read_spline(path)
    checked_file(path, "distortion file")
    import pyFAI

    try:
        det = pyFAI.detector_factory(str(path))
        field = field_of(det)
    except Exception as exc:  # pyFAI/h5py raise many kinds on a foreign file
        raise InputFileError(f"{path}: not a pyFAI detector file ({exc})") from None
    mask = det.mask.astype(bool) if det.mask is not None else None
    return field, (det.pixel1, det.pixel2), mask


def field_of(detector) -> Field:
    """The displacement field of a pyFAI detector (per-corner or spline), from its pixel
    corners; zero for a regular detector.

    Parameters
    ----------
    detector : pyFAI.detectors.Detector

    Returns
    -------
    Field
    """
    corners = detector.get_pixel_corners()
    h, w = detector.shape
    # Corner A of pixel (i, j) is corner (i, j); the last row and column come from B, C, D.
    cy = np.empty((h + 1, w + 1))
    cx = np.empty((h + 1, w + 1))
    cy[:-1, :-1], cx[:-1, :-1] = corners[..., 0, 1], corners[..., 0, 2]
    cy[-1, :-1], cx[-1, :-1] = corners[-1, :, 1, 1], corners[-1, :, 1, 2]
    cy[:-1, -1], cx[:-1, -1] = corners[:, -1, 3, 1], corners[:, -1, 3, 2]
    cy[-1, -1], cx[-1, -1] = corners[-1, -1, 2, 1], corners[-1, -1, 2, 2]
    fy, fx = corner_grid((h, w))
    return Field(dy=cy / detector.pixel1 - fy[:, None], dx=cx / detector.pixel2 - fx[None, :])


def undistorted_twin(detector):
    """A regular pyFAI detector with the same shape, pixel sizes and mask."""
    from pyFAI.detectors import Detector

    twin = Detector(pixel1=detector.pixel1, pixel2=detector.pixel2, max_shape=tuple(detector.shape))
    twin.mask = detector.mask
    return twin


def _read_spline(path: Path):
    from pyFAI.spline import Spline

    try:
        spline = Spline(str(path))
        h, w = (int(round(v)) for v in spline.getDetectorSize())
        if not 2 <= h * w <= MAX_PIXELS or min(h, w) < 2:
            raise InputFileError(f"{path}: the spline declares a {h} × {w} detector; geocal takes "
                                 f"2 × 2 … {MAX_PIXELS:,} pixels")
        for axis in "xy":
            kx, ky = (np.asarray(getattr(spline, f"{axis}SplineKnots{k}")) for k in "XY")
            coeff = np.asarray(getattr(spline, f"{axis}SplineCoeff"))
            # A bicubic tensor-product spline has (nx − 4)(ny − 4) coefficients.
            if kx.size < 8 or ky.size < 8 or coeff.size != (kx.size - 4) * (ky.size - 4) \
                    or not np.all(np.isfinite(coeff)):
                raise InputFileError(f"{path}: the {axis} spline has {coeff.size} coefficients for "
                                     f"{kx.size} × {ky.size} knots (truncated or corrupt)")
        fy, fx = corner_grid((h, w))
        dx = spline.splineFuncX(fx, fy)
        dy = spline.splineFuncY(fx, fy)
        p2, p1 = spline.getPixelSize()
    except InputFileError:
        raise
    except Exception as exc:  # the spline reader raises ValueError/IndexError on bad text
        raise InputFileError(f"{path}: not a readable Fit2D spline ({exc})") from None
    return Field(dy=np.asarray(dy, float), dx=np.asarray(dx, float)), (p1, p2), None


def write_spline(path: Path, field: Field, pixel_size_m: tuple[float, float],
                 step: int = 16) -> None:
    """Write a field as a Fit2D spline (pyFAI's `Spline.write`).

    The field is sampled every `step` pixels (and on the far edges) and interpolated there
    by a bicubic spline with knots at the samples (scipy's `RectBivariateSpline`, s = 0),
    the tensor-product B-spline form Fit2D and pyFAI evaluate.

    Parameters
    ----------
    path : Path
    field : Field
    pixel_size_m : (float, float)
        (pixel1, pixel2).
    step : int
    """
    from scipy.interpolate import RectBivariateSpline

    from pyFAI.spline import Spline

    from geocal_cli.io.outputs import atomic_path

    h, w = field.shape
    gy, gx = corner_grid((h, w), step)
    iy, ix = gy.astype(int), gx.astype(int)
    spline = Spline()
    spline.xmin, spline.ymin, spline.xmax, spline.ymax = 0.0, 0.0, float(w), float(h)
    spline.grid = 2500.0
    spline.pixelSize = (pixel_size_m[1] * 1e6, pixel_size_m[0] * 1e6)
    for comp, name in ((field.dx, "x"), (field.dy, "y")):
        # Fitpack's surface is f(x, y): the first axis is x (columns).
        fit = RectBivariateSpline(gx, gy, comp[np.ix_(iy, ix)].T, s=0)
        kx, ky = fit.get_knots()
        setattr(spline, f"{name}SplineKnotsX", kx)
        setattr(spline, f"{name}SplineKnotsY", ky)
        setattr(spline, f"{name}SplineCoeff", fit.get_coeffs())
    with atomic_path(Path(path)) as tmp:
        spline.write(str(tmp))


def correct_images(detector, *images: np.ndarray) -> list[np.ndarray]:
    """Resample images onto the ideal pixel grid with pyFAI's `Distortion` (one look-up
    table for all of them).

    The output has the detector's shape and no offset: output pixel (i, j) covers the ideal
    positions [i, i + 1] × [j, j + 1]; pixels that receive nothing are 0.

    Parameters
    ----------
    detector : pyFAI.detectors.Detector
        With a displacement field; pixels in its mask (if any) contribute nothing.
    *images : ndarray, shape (H, W)

    Returns
    -------
    list of ndarray of float32, shape (H, W)
    """
    from pyFAI.distortion import Distortion

    if detector.mask is None:
        # pyFAI's Distortion needs a mask array.
        detector.mask = np.zeros(detector.shape, np.int8)
    dis = Distortion(detector, shape=detector.shape, method="csr")
    out = []
    with _c_stdout_silenced():
        for image in images:
            out.append(np.asarray(dis.correct(np.ascontiguousarray(image, dtype=np.float32)), np.float32))
    return out


@contextlib.contextmanager
def _c_stdout_silenced():
    """Silence what compiled code prints on stdout (pyFAI's look-up-table builder prints a
    debug line for each edge pixel whose corners leave the image), which would corrupt
    --json output: Python's sys.stdout and the process's file descriptor 1 both."""
    import ctypes
    import io

    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def is_distortion_file(path: Path) -> bool:
    """A Fit2D spline (by its suffix) or an HDF5 file with a pyFAI detector (an NXdetector
    group with pixel sizes), as opposed to an image."""
    path = Path(path)
    if path.suffix.lower() in SPLINE_SUFFIXES:
        return True
    import h5py

    if not path.is_file() or not os.access(path, os.R_OK) or not h5py.is_hdf5(path):
        return False
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and obj.attrs.get("NX_class") in (b"NXdetector", "NXdetector") \
                and "pixel_size" in obj:
            found.append(name)
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return bool(found)


def has_distortion(detector) -> bool:
    """Whether a pyFAI detector carries a spline or per-corner displacements."""
    return bool(getattr(detector, "spline", None) is not None or not detector.uniform_pixel)
