"""One geometry, another array convention: image flips, transposition, detector orientation.

A flip changes which pixel index sees which lab position, not the lab positions: the frame of
the flipped array is the old frame read at the mirrored index (d1 → H − 1 − d1 for an up-down
flip, as Dioptas displays images). A detector orientation (pyFAI's 1–4) changes only how the
PONI parameters describe the same frame; `frame.params_from_frame` solves for them. A
single flip or a transposition mirrors the array, which no rotation undoes: the orientation
must then change between the unflipped (1, 3) and the singly flipped (2, 4) ones, which is
why a Dioptas PONI fits fabio's array only with orientation 2.
"""

from __future__ import annotations

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame, frame_of, make_geometry, params_from_frame

#: Flips of an image array and what they do to (d1, d2).
FLIPS = {"ud": "rows reversed (numpy flipud, as Dioptas shows images)",
         "lr": "columns reversed (numpy fliplr)",
         "transpose": "rows and columns swapped (numpy .T)"}


def flip_frame(frame: DetectorFrame, shape: tuple[int, int], how: str) -> tuple[DetectorFrame, tuple[int, int]]:
    """The frame of the flipped image array.

    Parameters
    ----------
    frame : DetectorFrame
        Pixel indices of the original array to lab positions.
    shape : (H, W)
        Original array shape.
    how : {'ud', 'lr', 'transpose'}

    Returns
    -------
    frame : DetectorFrame
        Pixel indices of the flipped array to the same lab positions.
    shape : (H', W')

    Raises
    ------
    ValueError
        Unknown flip.
    """
    h, w = shape
    if how == "ud":
        return DetectorFrame(frame.origin + (h - 1) * frame.e1, -frame.e1, frame.e2), (h, w)
    if how == "lr":
        return DetectorFrame(frame.origin + (w - 1) * frame.e2, frame.e1, -frame.e2), (h, w)
    if how == "transpose":
        return DetectorFrame(frame.origin, frame.e2, frame.e1), (w, h)
    raise ValueError(f"unknown flip {how!r}: use one of {', '.join(FLIPS)}")


def index_map(shape: tuple[int, int], flips: list[str]):
    """Where each flipped-array index came from: a function (d1', d2') → (d1, d2) of the
    original array, for the flips applied in order, and the final shape."""
    steps = []
    for how in flips:
        h, w = shape
        steps.append((how, h, w))
        shape = (w, h) if how == "transpose" else shape

    def back(d1, d2):
        for how, h, w in reversed(steps):
            if how == "ud":
                d1 = h - 1 - d1
            elif how == "lr":
                d2 = w - 1 - d2
            else:
                d1, d2 = d2, d1
        return d1, d2

    return back, shape


#: The orientation that differs from each by one index flip (a mirror).
MIRRORED = {1: 4, 2: 3, 3: 2, 4: 1}


def _sample_side(frame: DetectorFrame) -> float:
    return float(np.sign(frame.origin @ np.cross(frame.e1, frame.e2)))


def reoriented(geometry, frame: DetectorFrame, shape: tuple[int, int], transposed: bool,
               orientation: int | None = None):
    """A pyFAI geometry with `frame` on the geometry's detector (pixel sizes swapped when
    `transposed`), in the given detector orientation or, by default, the detector's own or
    its mirror (`MIRRORED`) when the frame is mirrored; wavelength kept.

    Raises
    ------
    ValueError
        The requested orientation cannot describe the frame (it is mirrored with respect to
        it), or from `frame.params_from_frame`.
    """
    from pyFAI.detectors import Detector

    det = geometry.detector
    pix = (det.pixel2, det.pixel1) if transposed else (det.pixel1, det.pixel2)
    own = int(det.orientation or 3)
    probe = Detector(pixel1=pix[0], pixel2=pix[1], max_shape=shape, orientation=own)
    fits_own = _sample_side(frame) == _sample_side(frame_of(make_geometry(probe, 1.0, 0.0, 0.0)))
    default = own if fits_own else MIRRORED[own]
    orient = int(orientation) if orientation is not None else default
    # Orientations 1 and 3 index the array unmirrored, 2 and 4 mirrored.
    if orient % 2 != default % 2:
        fitting = (1, 3) if default % 2 else (2, 4)
        raise ValueError(f"orientation {orient} cannot describe this geometry (it indexes the "
                         f"array mirrored); use orientation {fitting[0]} or {fitting[1]}")
    if transposed or orient != own:
        # A transposed or reoriented named detector is no longer that detector: keep its
        # pixel sizes and shape, not its name or module mask.
        det = Detector(pixel1=pix[0], pixel2=pix[1], max_shape=shape, orientation=orient)
    elif det.max_shape is None:
        det.max_shape = shape
    return make_geometry(det, *params_from_frame(frame, det), wavelength=geometry.wavelength)


def map_difference(source, target, back, shape: tuple[int, int], n: int = 33) -> tuple[float, float, float]:
    """How far `target` at flipped indices is from `source` at the indices they came from
    (`index_map`), on an n × n grid over the target array.

    Returns
    -------
    tth : float
        Largest |Δ2θ|, radians.
    chi_offset : float
        Median Δχ (target − source), radians: a turn of the azimuth reference, which some
        conventions (Fit2D) do not carry.
    chi_spread : float
        Largest |Δχ − chi_offset|, radians: what no turn explains. Points within 10⁻⁶ rad of
        the direct beam are left out of χ: there the azimuth is undefined and rounding alone
        turns it by any angle.
    """
    d1, d2 = np.meshgrid(np.linspace(0, shape[0] - 1, n), np.linspace(0, shape[1] - 1, n),
                         indexing="ij")
    t_tth, t_chi = frame_of(target).tth_chi(d1, d2)
    s_tth, s_chi = frame_of(source).tth_chi(*back(d1, d2))
    dchi = np.angle(np.exp(1j * (t_chi - s_chi)))[s_tth > 1e-6]
    if dchi.size == 0:
        return float(np.max(np.abs(t_tth - s_tth))), 0.0, 0.0
    offset = float(np.median(dchi))
    return (float(np.max(np.abs(t_tth - s_tth))), offset,
            float(np.max(np.abs(np.angle(np.exp(1j * (dchi - offset)))))))
