"""Detector definitions from pyFAI: by name (with mask and orientation) or by pixel size."""

from __future__ import annotations

from geocal_cli.files import checked_file
from geocal_cli.errors import ConfigError, InputFileError


def make_detector(name: str | None, pixel_size_um: tuple[float, float] | None,
                  shape: tuple[int, int]):
    """A pyFAI detector for an image.

    Parameters
    ----------
    name : str or None
        Any name `pyFAI.detector_factory` knows (e.g. "Pilatus1M", "Eiger2_4M", "mar345"),
        or a pyFAI detector file (NeXus HDF5, e.g. from `geocal grid-distortion`).
    pixel_size_um : (float, float) or None
        (rows, columns) in µm, used when no name is given.
    shape : (H, W)
        The image shape; a named detector must match it (binning aside).

    Returns
    -------
    pyFAI.detectors.Detector

    Raises
    ------
    ConfigError
        Unknown detector name, or neither a name nor a pixel size.
    InputFileError
        The image shape does not fit the named detector.
    """
    import pyFAI.detectors
    from pathlib import Path

    if name is not None and not name.strip():
        raise ConfigError("detector '': give a pyFAI detector name or a detector file")
    if name is not None:
        is_file = Path(name).exists()
        if is_file:
            import h5py

            # A detector file: PONI files written with it must find it from any folder.
            name = str(checked_file(name, "detector file").resolve())
            if not h5py.is_hdf5(name):
                raise InputFileError(f"detector file {name}: not a pyFAI detector file (NeXus HDF5)")
        try:
            det = pyFAI.detectors.detector_factory(name)
        except Exception as exc:  # pyFAI and h5py raise many types for a name or file they do not know
            if is_file:
                raise InputFileError(f"detector file {name}: not a pyFAI detector file "
                                     f"({exc.__class__.__name__}: {str(exc)[:160]})") from None
            raise ConfigError(f"detector '{name}': unknown to pyFAI ({str(exc)[:160]}); "
                              "see pyFAI.detectors.ALL_DETECTORS for names") from None
        if det.shape is not None and tuple(det.shape) != tuple(shape):
            if det.max_shape is not None and all(m % s == 0 for m, s in zip(det.max_shape, shape)):
                det.set_binning([m // s for m, s in zip(det.max_shape, shape)])
            else:
                raise InputFileError(f"image shape {tuple(shape)} does not fit detector {name} "
                                     f"{tuple(det.shape)}")
        return det
    if pixel_size_um is None:
        raise ConfigError("give a detector name (--detector) or a pixel size (--pixel-size)")
    return pyFAI.detectors.Detector(pixel1=pixel_size_um[0] * 1e-6, pixel2=pixel_size_um[1] * 1e-6,
                                    max_shape=tuple(shape))


def detector_mask(detector, shape) -> "object | None":
    """The detector's own mask (gaps, dead pixels) as a bool array, or None."""
    m = detector.mask
    if m is None or tuple(m.shape) != tuple(shape):
        return None
    return m.astype(bool)
