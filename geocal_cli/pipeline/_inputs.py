"""Inputs shared by the pipelines that check or move an existing geometry on an image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.errors import ConfigError, InputFileError
from geocal_cli.io.detectors import detector_mask
from geocal_cli.io.images import read_image, read_mask, valid_pixels
from geocal_cli.io.poni import read_poni


@dataclass(frozen=True)
class ImageAndGeometry:
    """An image, the geometry given for it, its valid pixels and the wavelength to use.

    Attributes
    ----------
    image : the `io.images` image (data, format, metadata)
    geometry : pyFAI.geometry.Geometry
    valid : ndarray of bool, shape (H, W)
    wavelength : float
        Metres.
    wavelength_source : str
    """

    image: object
    geometry: object
    valid: np.ndarray
    wavelength: float
    wavelength_source: str


def wavelength_for(cfg, reference, metadata: dict) -> tuple[float, str]:
    """The wavelength (m) and where it came from: the command line, the PONI, the image's
    metadata (electron voltage), in that order.

    Raises
    ------
    ConfigError
        None of them has one.
    """
    from geocal_cli.core.geometry.units import wavelength_from_voltage

    if any(v is not None for v in (cfg.energy_kev, cfg.wavelength_a, cfg.voltage_kv)):
        return cfg.wavelength_m(), "command line"
    if reference.wavelength:
        return float(reference.wavelength), "reference PONI"
    if metadata.get("voltage_kv"):
        return wavelength_from_voltage(metadata["voltage_kv"]), "image metadata (voltage)"
    raise ConfigError("no wavelength: the PONI has none; give --energy, --wavelength or --voltage")


def load_image_and_geometry(cfg) -> ImageAndGeometry:
    """Read `cfg.image`, `cfg.poni` and `cfg.mask` and check they belong together.

    Raises
    ------
    InputFileError
        Unreadable files, a PONI for another detector shape, or no valid pixel.
    ConfigError
        No wavelength anywhere.
    """
    img = read_image(cfg.image, getattr(cfg, "frame", None))
    data = img.data
    reference = read_poni(cfg.poni)
    detector = reference.detector
    if detector.shape is not None and tuple(detector.shape) != tuple(data.shape):
        raise InputFileError(f"{cfg.poni} is for a {tuple(detector.shape)} detector, "
                             f"{cfg.image} is {tuple(data.shape)}")
    if detector.max_shape is None:
        detector.max_shape = data.shape
    wavelength, source = wavelength_for(cfg, reference, img.metadata)
    user_mask = read_mask(cfg.mask, data.shape) if cfg.mask else None
    valid = valid_pixels(data, detector_mask(detector, data.shape), user_mask)
    if not valid.any():
        raise InputFileError(f"{cfg.image}: no valid pixel (all masked, negative or NaN)")
    return ImageAndGeometry(img, reference, valid, wavelength, source)


def flip_verdict(data: np.ndarray, valid: np.ndarray, frame, tth: np.ndarray) -> tuple[list, str | None]:
    """Rate the image's flips against a geometry; name the flip that fits when the image as
    it is does not.

    Parameters
    ----------
    data, valid : ndarray, shape (H, W)
    frame : DetectorFrame
    tth : ndarray, shape (K,)
        Calibrant ring angles (radians); those on the detector are used, at most 12.

    Returns
    -------
    flips : list of FlipFit
    message : str or None
        Why the geometry belongs to a flipped array, with the command that converts it; None
        when the image as it is fits (or no flip fits better).
    """
    from geocal_cli.core.q.flipcheck import check_flips

    tth = tth[np.isfinite(tth) & (tth <= frame.tth_range(data.shape)[1])][:12]
    if tth.size == 0:
        return [], None
    flips = check_flips(data, valid, frame, tth)
    fitting = [f.name for f in flips if f.fits]
    if not fitting or "as is" in fitting:
        return flips, None
    return flips, (f"the geometry fits the image only after flipping it ({', '.join(fitting)}): it was "
                   "made for another array convention (a Dioptas PONI, a GSAS-II import …); convert "
                   f"it with geocal convert-poni --flip {fitting[0].replace('+', ',')}")
