"""PNG figures (matplotlib, Agg backend)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.io.outputs import SIGNATURE, atomic_path
from geocal_cli.io.render import gather, offloaded, submit


#: Resolution of every figure, dots per inch.
DPI = 90
#: Height of a figure's integration-check part and its margins above and below, inches.
INTEGRATION_HEIGHT, INTEGRATION_TOP, INTEGRATION_BOTTOM = 5.3, 0.35, 0.6
#: Largest side (pixels) of an image as displayed: about what a panel of the figure shows.
DISPLAY_PX = 800
#: Side ratio beyond which an image is drawn stretched to its panel.
STRIP_ASPECT = 3.0


def _import_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(*args, **kwargs):
    plt = _import_pyplot()
    # Constrained layout is solved during the one draw that saves the figure; tight_layout
    # drew it once more to measure it.
    return plt, plt.subplots(*args, layout="constrained", dpi=DPI, **kwargs)


def _grid_figure(figsize, **gridspec):
    """A figure and a gridspec with fixed margins, for layouts `_figure` cannot make (panels
    spanning columns). No layout engine: constrained layout costs a second draw (0.2 s on a
    large figure), and a fixed figure needs no solving."""
    plt = _import_pyplot()
    fig = plt.figure(figsize=figsize, dpi=DPI)
    return plt, fig, fig.add_gridspec(**gridspec)


@dataclass(frozen=True)
class IntegrationView:
    """What the integration check draws: the pattern and cake under the fitted geometry
    (`core.rings.integration.Integrated`) and where the calibrant's rings fall.

    Attributes
    ----------
    integrated : Integrated
    used : ndarray, shape (k,)
        2θ (radians) of the calibrant rings the fit used.
    numbers : ndarray of int, shape (k,)
        Their calibrant ring numbers (1-based).
    unused : ndarray, shape (u,)
        2θ of the calibrant's other rings within the pattern.
    foreign : ndarray, shape (f,)
        2θ of rings the image shows that no calibrant ring explains.
    """

    integrated: object
    used: np.ndarray
    numbers: np.ndarray
    unused: np.ndarray
    foreign: np.ndarray


#: Entries of a legend, at most (the rest are counted in its title).
LEGEND_ENTRIES = 16
#: Ring numbers written above the ticks, at most (the first rings).
LABELLED_RINGS = 12


def _draw_integration(fig, spec, view: IntegrationView, calibrant: str,
                      under: str = "the fitted geometry") -> tuple:
    """The integration check in `spec`: the cake (χ against 2θ) over the 1D pattern, with the
    calibrant's rings as ticks (used: green, numbered; not used: grey; foreign rings: orange).
    Returns the two axes (cake, pattern)."""
    sub = spec.subgridspec(2, 1, height_ratios=[1, 1.1], hspace=0.05)
    ax_cake = fig.add_subplot(sub[0])
    ax = fig.add_subplot(sub[1], sharex=ax_cake)
    integ = view.integrated
    x = np.degrees(integ.tth)
    step = x[1] - x[0] if x.size > 1 else 1.0
    rows = np.isfinite(integ.cake).any(axis=1)
    chi = np.degrees(integ.chi)
    lo_chi, hi_chi = (chi[rows].min() - 0.5, chi[rows].max() + 0.5) if rows.any() else (-180, 180)
    shown = log_intensity(integ.cake, np.isfinite(integ.cake))
    finite = shown[np.isfinite(shown)]
    vmin, vmax = np.percentile(finite, [1, 99.7]) if finite.size else (0, 1)
    ax_cake.imshow(shown, cmap="gray_r", vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest",
                   origin="lower", extent=(x[0] - step / 2, x[-1] + step / 2, -180, 180))
    ax_cake.set_ylim(lo_chi, hi_chi)
    ax_cake.set_ylabel("χ [deg]")
    ax_cake.set_title(f"integration check: the image under {under}, {calibrant}'s rings as ticks "
                      "(right: straight cake lines, peaks on the green ticks)", fontsize=10)
    ax_cake.tick_params(labelbottom=False)
    # Above its background, on a linear scale: the peaks stand out alike on a flat X-ray
    # background and on an electron pattern's steep fall from the direct beam.
    above = integ.mean - integ.background
    ok = np.isfinite(above)
    ax.plot(x[ok], above[ok], "-", color="black", lw=0.7, label="mean intensity above background")
    # Scaled to the rings: from just before the first calibrant ring (a direct beam's tail
    # before it would flatten them).
    rings = np.degrees(np.concatenate([view.used, view.unused]))
    scaled = ok & (x >= 0.8 * rings.min()) if rings.size else ok
    if scaled.any():
        ax.set_ylim(min(0.0, float(np.percentile(above[scaled], 1))) * 1.1, float(above[scaled].max()) * 1.15)
    top = ax.get_xaxis_transform()
    for axis in (ax, ax_cake):
        trans = axis.get_xaxis_transform()
        label = axis is ax
        axis.vlines(np.degrees(view.unused), 0, 0.06, transform=trans, color="0.55", lw=0.8,
                    label=f"{calibrant} rings not used ({view.unused.size})" if label else None)
        axis.vlines(np.degrees(view.used), 0, 0.12, transform=trans, color="tab:green", lw=1.4,
                    label=f"{calibrant} rings used ({view.used.size})" if label else None)
        axis.vlines(np.degrees(view.foreign), 0.86, 1.0, transform=trans, color="tab:orange", lw=1.6,
                    label=f"foreign rings ({view.foreign.size})" if label else None)
    for t, n in list(zip(np.degrees(view.used), view.numbers))[:LABELLED_RINGS]:
        ax.text(t, 0.13, str(n), transform=top, fontsize=7, color="tab:green", ha="center", va="bottom")
    # From the first 2θ the detector sees (a detector on an arm starts far from 0°).
    seen = x[np.isfinite(integ.mean)]
    ax.set_xlim((seen[0] if seen.size else x[0]) - step / 2, x[-1] + step / 2)
    ax.set_xlabel("2θ [deg]")
    ax.set_ylabel("intensity above background [counts]")
    ax.legend(loc="upper right", fontsize=8)
    return ax_cake, ax


def log_intensity(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """log10 of intensities floored at the image's own low level (the 1st percentile of its
    positive valid values), so that photon counts and an electron camera's normalised
    floats (rings at 0.01 beside a direct beam at 100) both show their rings.

    Parameters
    ----------
    values : ndarray
    valid : ndarray of bool, same shape

    Returns
    -------
    ndarray of float32, same shape (invalid entries: the floor's logarithm)
    """
    floor = _low_level(values, valid)
    with np.errstate(invalid="ignore"):
        return np.log10(np.maximum(np.where(valid, values, floor), floor)).astype(np.float32)


def _low_level(values: np.ndarray, valid: np.ndarray) -> float:
    """`log_intensity`'s floor: the 1st percentile of the positive valid values (1 if none)."""
    sample = values[valid][:: max(1, int(valid.sum()) // 200_000)]
    positive = sample[sample > 0]
    return float(np.percentile(positive, 1)) if positive.size else 1.0


def display_image(image: np.ndarray, valid: np.ndarray,
                  max_side: int = DISPLAY_PX) -> tuple[np.ndarray, int]:
    """`log_intensity` reduced to at most `max_side` pixels a side by the maximum of each
    block (thin rings stay visible), NaN where a block holds no valid pixel.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    max_side : int

    Returns
    -------
    shown : ndarray, shape (ceil(H / f), ceil(W / f))
    f : int
        The reduction, ceil(max(H, W) / max_side) (1: none).
    """
    f = max(1, int(np.ceil(max(image.shape) / max_side)))
    h, w = image.shape
    # In the precision `log_intensity` takes its logarithm in (float32 for float32 images).
    top = np.full((-(-h // f) * f, -(-w // f) * f), -np.inf, dtype=np.result_type(image.dtype, 1.0))
    top[:h, :w] = np.where(valid, image, -np.inf)
    top = top.reshape(top.shape[0] // f, f, top.shape[1] // f, f).max(axis=(1, 3))
    # The logarithm is monotonic: taken of each block's maximum, it is `log_intensity`'s
    # maximum, at a f² share of the cost.
    with np.errstate(invalid="ignore"):
        shown = np.log10(np.maximum(top, _low_level(image, valid))).astype(np.float32)
    shown[np.isneginf(top)] = np.nan
    return shown, f


def _show(ax, image: np.ndarray, valid: np.ndarray) -> None:
    """The image on a log scale, invalid pixels blank, in pixel-index coordinates (the
    display is reduced by `display_image`, the axes are not)."""
    shown, f = display_image(image, valid)
    # From the 10th percentile: a detector edge or beamstop shadow at the floor takes no range.
    lo, hi = np.nanpercentile(shown, [10, 99.7]) if np.isfinite(shown).any() else (0, 1)
    h, w = image.shape
    # A strip detector (195 × 1475) drawn with square pixels is a sliver: stretch it to the
    # panel and say so.
    strip = max(h, w) > STRIP_ASPECT * min(h, w)
    ax.imshow(shown, cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest",
              extent=(-0.5, shown.shape[1] * f - 0.5, shown.shape[0] * f - 0.5, -0.5),
              aspect="auto" if strip else "equal")
    if strip:
        ax.text(0.01, 0.01, "stretched: pixels not square", transform=ax.transAxes, fontsize=7,
                color="0.3", va="bottom")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)


#: zlib level of the PNGs: level 6 takes 2.5 times as long for files a seventh smaller.
PNG_COMPRESSION = 1


def _save(plt, fig, path: Path) -> None:
    """Draw the figure, close it and write it as a PNG, atomically."""
    _write_png(path, _pixels(plt, fig))


def _pixels(plt, fig) -> np.ndarray:
    """The figure drawn (Agg, at its own DPI) and closed.

    Returns
    -------
    ndarray of uint8, shape (H, W, 4)
        RGBA.
    """
    fig.canvas.draw()
    rgba = np.array(fig.canvas.buffer_rgba())
    plt.close(fig)
    return rgba


def _write_png(path: Path, rgba: np.ndarray) -> None:
    """Write RGBA pixels (uint8, shape (H, W, 4)) as a PNG, atomically, signed as geocal's.

    Encoded here to the PNG specification (ISO/IEC 15948: IHDR, a tEXt "Software" chunk in
    the file's head where `io.outputs` looks for the signature, one IDAT, IEND) with filter
    type 0 on every row. Pillow chooses a filter per row by trying them (libpng's heuristic):
    on a calibration figure that choice was 0.045 of its 0.08 s, and the unfiltered rows of
    these figures (flat backgrounds, text, a display-reduced image) compress 5 % smaller.
    """
    h, w, _ = rgba.shape
    rows = np.zeros((h, 4 * w + 1), np.uint8)  # a leading 0 on each row: filter type 0
    rows[:, 1:] = rgba.reshape(h, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # 8 bits per sample, colour type 6 (RGBA), compression, filter and interlace methods 0.
    png = b"".join([b"\x89PNG\r\n\x1a\n",
                    chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)),
                    chunk(b"tEXt", b"Software\0" + SIGNATURE.encode("latin-1")),
                    chunk(b"IDAT", zlib.compress(rows, PNG_COMPRESSION)),
                    chunk(b"IEND", b"")])
    with atomic_path(Path(path)) as tmp:
        Path(tmp).write_bytes(png)


def _integration_part(view: IntegrationView, calibrant: str, under: str, width: float,
                      left: float, right: float) -> np.ndarray:
    """The integration check (`_draw_integration`) as a figure part `width` inches wide with
    the given horizontal margins (figure fractions, as the part above it has), as RGBA."""
    plt, fig, gs = _grid_figure((width, INTEGRATION_HEIGHT), left=left, right=right,
                                top=1 - INTEGRATION_TOP / INTEGRATION_HEIGHT,
                                bottom=INTEGRATION_BOTTOM / INTEGRATION_HEIGHT)
    _draw_integration(fig, gs[0, 0], view, calibrant, under)
    return _pixels(plt, fig)


def _with_integration(path: Path, upper, check, calibrant: str, under: str, width: float,
                      left: float, right: float) -> None:
    """Write a figure of two parts, drawn at once in two helpers (`io.render.submit`): `upper`,
    already submitted, over the integration check (`_integration_part`).

    Parameters
    ----------
    path : Path
        PNG written atomically.
    upper : io.render.Pending
        The upper part's RGBA, `width` inches wide.
    check : IntegrationView, callable returning one, or None
        A callable is called here while the helpers draw the upper part. None: no check.
    calibrant, under : str
    width, left, right : float
        The parts' width (inches) and the upper part's horizontal margins (figure fractions).
    """
    parts = [upper]
    try:
        if check is not None:
            view = check() if callable(check) else check
            parts.append(submit(_integration_part, view, calibrant, under, width, left, right))
    finally:
        pixels = gather(parts)
    _write_png(path, np.concatenate(pixels))


@dataclass(frozen=True)
class RingFitView:
    """What `plot_calibration` draws of a ring fit, whichever model made it.

    Attributes
    ----------
    frame : DetectorFrame
        The fitted model (a tilted detector, or the electron model's stretched frame).
    points : ControlPoints
    inliers : ndarray of bool, shape (n,)
    beam_center : (float, float)
        Pixel indices (d1, d2).
    rings : list of RingResidual
        Per ring: `index`, `chi`, `residual_px`, `rms_px` of its inliers.
    """

    frame: object
    points: object
    inliers: np.ndarray
    beam_center: tuple
    rings: list


#: The calibration figure's upper part: size (inches) and horizontal margins (fractions).
CALIBRATION_SIZE, CALIBRATION_LEFT, CALIBRATION_RIGHT = (15, 7.4), 0.06, 0.98


def plot_calibration(path: Path, image: np.ndarray, valid: np.ndarray, fit: RingFitView,
                     ring_tth: np.ndarray, check, calibrant: str, title: str) -> None:
    """Image with the fitted rings and control points and the residual per ring against χ,
    over the integration check (`_draw_integration`).

    Parameters
    ----------
    path : Path
        PNG written atomically.
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    fit : RingFitView
    ring_tth : ndarray, shape (K,)
        2θ (radians) of every calibrant ring (NaN beyond 90°): the rings `fit` used are drawn
        on the image in red, the others in grey.
    check : IntegrationView or callable returning one
        Computed here while a helper draws the upper part.
    calibrant : str
    title : str
    """
    upper = submit(_calibration_part, image, valid, fit, ring_tth, calibrant, title)
    _with_integration(path, upper, check, calibrant, "the fitted geometry", CALIBRATION_SIZE[0],
                      CALIBRATION_LEFT, CALIBRATION_RIGHT)


def _calibration_part(image: np.ndarray, valid: np.ndarray, fit: RingFitView,
                      ring_tth: np.ndarray, calibrant: str, title: str) -> np.ndarray:
    """`plot_calibration`'s upper part, as RGBA."""
    height = CALIBRATION_SIZE[1]
    plt, fig, gs = _grid_figure(CALIBRATION_SIZE, nrows=1, ncols=2, width_ratios=[1.15, 1],
                                left=CALIBRATION_LEFT, right=CALIBRATION_RIGHT,
                                top=1 - 0.375 / height, bottom=0.8 / height, wspace=0.2)
    ax0, ax1 = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    _show(ax0, image, valid)
    fr = fit.frame
    chi = np.linspace(-np.pi, np.pi, 721)
    h, w = image.shape

    def rings(tth, **style):
        if not len(tth):
            return
        d1, d2 = fr.pixel_at(np.asarray(tth)[:, None], chi[None, :])
        out = ~((d1 > -1) & (d1 < h) & (d2 > -1) & (d2 < w))
        d1[out] = np.nan
        # Only rings the image shows: the legend must not list rings beyond the detector.
        seen = ~out.all(axis=1)
        if not seen.any():
            return
        d1, d2, tth = d1[seen], d2[seen], np.asarray(tth)[seen]
        # One line object for all rings (NaN breaks them): fewer artists to draw.
        d1 = np.concatenate([d1, np.full((len(tth), 1), np.nan)], 1).ravel()
        d2 = np.concatenate([d2, np.full((len(tth), 1), np.nan)], 1).ravel()
        ax0.plot(d2, d1, **{"ls": "-", **style})

    tth = np.asarray(ring_tth, float)
    used = np.unique([r.index for r in fit.rings]).astype(int)
    unused = np.delete(tth, used)
    rings(unused[np.isfinite(unused)], color="0.5", lw=0.5, ls=":", label=f"{calibrant} rings not used")
    rings(tth[used], color="tab:red", lw=0.6, alpha=0.8, label=f"{calibrant} rings used")
    pts = fit.points
    inl = fit.inliers
    _dots(ax0, pts.d2[inl], pts.d1[inl], pts.ring[inl], "o", 0.775)
    ax0.scatter(pts.d2[~inl], pts.d1[~inl], s=4, marker="x", color="black", lw=0.5,
                label="rejected points")
    bc1, bc2 = fit.beam_center
    if np.isfinite(bc1):
        ax0.plot([bc2], [bc1], "+", color="tab:blue", ms=14, mew=1.5, label="beam centre")
    ax0.set_xlim(-0.5, w - 0.5)
    ax0.set_ylim(h - 0.5, -0.5)
    ax0.set_xlabel("column (x, fast) [px]")
    ax0.set_ylabel("row (y, slow) [px]")
    # Below the image, not on it: a legend inside covers rings.
    ax0.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=4, fontsize=8, frameon=False)
    ax0.set_title(title, fontsize=10)
    _draw_residuals(ax1, fit.rings)
    return _pixels(plt, fig)


def _dots(ax, x: np.ndarray, y: np.ndarray, group: np.ndarray, marker: str, size: float) -> None:
    """Points (x, y), shape (n,), coloured by `group` (int, shape (n,)) cycling through the ten
    `tab10` colours, `size` points across.

    One marker line per colour, not a scatter: Agg stamps a line's markers from one
    rasterised marker, but draws a scatter's points one path each (6500 control points: 5
    instead of 25 ms).
    """
    import matplotlib

    colours = matplotlib.colormaps["tab10"].colors
    for k in np.unique(group % 10):
        on = group % 10 == k
        ax.plot(x[on], y[on], ls="none", marker=marker, ms=size, mew=0, color=colours[k])


#: Residual scale bars offered, pixels (the largest that fits a row is drawn).
SCALE_BARS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _draw_residuals(ax, rings: list) -> None:
    """One row per ring: radial residual against χ, offset by a fixed step, with a scale bar;
    χ limited to where the points are."""
    res = [r.residual_px for r in rings if r.residual_px.size]
    rms = max(np.sqrt(np.mean(np.concatenate(res) ** 2)), 0.02) if res else 0.1
    step = 8 * rms
    rows = np.arange(len(rings)) * step
    chis = np.degrees(np.concatenate([r.chi for r in rings])) if rings else np.zeros(0)
    # One artist per colour (cycling by row), not two per ring: a figure's draw time grows
    # with its artists.
    if rings:
        row = np.repeat(np.arange(len(rings)), [r.chi.size for r in rings])
        _dots(ax, chis, np.concatenate([r.residual_px for r in rings]) + rows[row], row, ".", 1.5)
    ax.hlines(rows, 0, 1, transform=ax.get_yaxis_transform(), color="gray", lw=0.4)
    # Row labels as texts beside the axis, not tick labels: a tick is five artists with
    # transforms of their own (17 rings: 15–20 of the part's 260 ms).
    ax.set_yticks([])
    beside = ax.get_yaxis_transform()
    for y, r in zip(rows, rings):
        ax.text(-0.01, y, f"{r.index + 1}: {r.rms_px:.2f}", transform=beside, ha="right",
                va="center", fontsize=7)
    lo, hi = (chis.min(), chis.max()) if chis.size else (-180, 180)
    if hi - lo > 300:
        lo, hi = -180, 180
    pad = max(2.0, 0.03 * (hi - lo))
    ax.set_xlim(max(lo - pad, -180), min(hi + pad, 180))
    bar = max([b for b in SCALE_BARS if b <= 0.8 * step] or [SCALE_BARS[0]])
    x = ax.get_xlim()[1] - 0.02 * (ax.get_xlim()[1] - ax.get_xlim()[0])
    y0 = (len(rings) - 0.5) * step
    ax.plot([x, x], [y0, y0 + bar], "-", color="black", lw=2.5, solid_capstyle="butt")
    ax.text(x, y0 + bar / 2, f"{bar:g} px ", ha="right", va="center", fontsize=8)
    ax.set_ylim(-step, (len(rings) + 0.5) * step)
    ax.set_xlabel("azimuth χ [deg]")
    # Clear of the row labels (up to "NN: 0.00" at 7 pt), which the label's own placement
    # does not see.
    ax.set_ylabel("ring number: rms [px]   (radial residual, one row per ring)", labelpad=38)
    ax.set_title(f"radial residual per ring against χ (rows {step:.2f} px apart; bar: {bar:g} px)",
                 fontsize=10)


#: The recenter figure's upper part: size (inches) and horizontal margins (fractions).
RECENTER_SIZE, RECENTER_LEFT, RECENTER_RIGHT = (14, 8.0), 0.06, 0.98


def plot_recenter(path: Path, image: np.ndarray, valid: np.ndarray, old, new,
                  points: tuple | None, title: str, pairs: np.ndarray | None = None,
                  check: IntegrationView | None = None, calibrant: str = "") -> None:
    """Image with old and new beam centre and the ring points or spots used, plus a close-up.

    Parameters
    ----------
    path : Path
        PNG written atomically.
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    old, new : sequence of 2 floats
        Beam centres (d1, d2) in pixel indices.
    points : (d1, d2) arrays or None
        Ring points (or spots) kept by the fit.
    title : str
    pairs : ndarray, shape (m, 2, 2), optional
        Friedel pairs as (spot, (d1, d2)): drawn as lines, which cross at the centre.
    check : IntegrationView or callable returning one, optional
        The integration check under the new geometry (`_draw_integration`), below; a
        callable is called here while a helper draws the part above.
    calibrant : str
        The calibrant's name, for the integration check.
    """
    upper = submit(_recenter_part, image, valid, old, new, points, title, pairs)
    _with_integration(path, upper, check, calibrant, "the moved PONI", RECENTER_SIZE[0],
                      RECENTER_LEFT, RECENTER_RIGHT)


def _recenter_part(image: np.ndarray, valid: np.ndarray, old, new, points: tuple | None,
                   title: str, pairs: np.ndarray | None) -> np.ndarray:
    """`plot_recenter`'s upper part, as RGBA."""
    height = RECENTER_SIZE[1]
    # Room below for the legend under the image.
    plt, fig, gs = _grid_figure(RECENTER_SIZE, nrows=1, ncols=2, left=RECENTER_LEFT,
                                right=RECENTER_RIGHT, top=1 - 0.35 / height, bottom=0.85 / height,
                                wspace=0.15)
    axes = [fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])]
    h, w = image.shape
    span = max(15.0, 3 * float(np.hypot(new[0] - old[0], new[1] - old[1])))
    for ax, zoom in zip(axes, (False, True)):
        _show(ax, image, valid)
        if pairs is not None:
            from matplotlib.collections import LineCollection

            ax.add_collection(LineCollection(pairs[:, :, ::-1], colors="tab:green", lw=0.5,
                                             alpha=0.6, label="Friedel pairs"))
        if points is not None:
            ax.scatter(points[1], points[0], s=(0.8 if pairs is None else 12) if not zoom else 6,
                       color="tab:orange", lw=0, label="ring points" if pairs is None else "spots")
        ax.plot([old[1]], [old[0]], "x", color="tab:red", ms=12, mew=1.5, label="old centre")
        ax.plot([new[1]], [new[0]], "+", color="tab:blue", ms=16, mew=1.5, label="new centre")
        if zoom:
            c1, c2 = (old[0] + new[0]) / 2, (old[1] + new[1]) / 2
            ax.set_xlim(c2 - span, c2 + span)
            ax.set_ylim(c1 + span, c1 - span)
            ax.set_title("close-up", fontsize=10)
        else:
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            ax.set_title(title, fontsize=10)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4, fontsize=8,
                      frameon=False)
        ax.set_xlabel("column (x, fast) [px]")
        ax.set_ylabel("row (y, slow) [px]")
    return _pixels(plt, fig)


def _strain_scale(values: np.ndarray) -> float:
    """Symmetric colour limit: the 98th percentile of |values|."""
    return float(np.percentile(np.abs(values), 98)) or 1.0


#: The q-check figure's upper part: size (inches) and horizontal margins (fractions).
Q_POWDER_SIZE, Q_POWDER_LEFT, Q_POWDER_RIGHT = (19, 7.4), 0.05, 0.97


def plot_q_powder(path: Path, image: np.ndarray, valid: np.ndarray, check, title: str,
                  integration: IntegrationView | None = None, calibrant: str = "") -> None:
    """Δd/d on the detector, Δq against χ per ring, Δq against radius, and the integration
    check under the geometry checked.

    Parameters
    ----------
    path : Path
        PNG written atomically.
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    check : geocal_cli.core.q.powder.PowderCheck
    title : str
    integration : IntegrationView or callable returning one, optional
        Drawn below (`_draw_integration`); a callable is called here while a helper draws the
        part above.
    calibrant : str
    """
    upper = submit(_q_powder_part, image, valid, check, title)
    _with_integration(path, upper, integration, calibrant, "the geometry checked",
                      Q_POWDER_SIZE[0], Q_POWDER_LEFT, Q_POWDER_RIGHT)


def _q_powder_part(image: np.ndarray, valid: np.ndarray, check, title: str) -> np.ndarray:
    """`plot_q_powder`'s upper part, as RGBA."""
    plt, fig, gs = _grid_figure(Q_POWDER_SIZE, nrows=1, ncols=3, width_ratios=[1.2, 1, 1],
                                left=Q_POWDER_LEFT, right=Q_POWDER_RIGHT,
                                top=1 - 0.7 / Q_POWDER_SIZE[1], bottom=0.65 / Q_POWDER_SIZE[1],
                                wspace=0.28)
    axes = [fig.add_subplot(gs[0, i]) for i in range(3)]
    cp = check.points
    ue = check.strain * 1e6
    lim = _strain_scale(ue)
    _show(axes[0], image, valid)
    sc = axes[0].scatter(cp.d2, cp.d1, c=ue, s=4, cmap="coolwarm", vmin=-lim, vmax=lim, rasterized=True)
    fig.colorbar(sc, ax=axes[0], shrink=0.8, label="Δd/d [µε]")
    axes[0].set_title("Δd/d at the control points")
    axes[0].set_xlabel("column (x, fast) [px]")
    axes[0].set_ylabel("row (y, slow) [px]")
    cmap = plt.get_cmap("viridis")
    rings = np.unique(cp.ring)
    for i, k in enumerate(rings):
        on = cp.ring == k
        order = np.argsort(cp.chi[on])
        colour = cmap(i / max(len(rings) - 1, 1))
        axes[1].plot(np.degrees(cp.chi[on]), check.dq[on] * 1e3, ".", ms=2, color=colour)
        axes[1].plot(np.degrees(cp.chi[on][order]),
                     (check.geometric_strain[on] * -check.q_pixel[on])[order] * 1e3, "-", lw=1,
                     color=colour)
    # Every ring in one colour bar (a legend of 16 rings covers the data).
    from matplotlib.colors import BoundaryNorm
    from matplotlib.cm import ScalarMappable

    numbers = rings + 1
    bounds = np.arange(len(rings) + 1) - 0.5
    bar = fig.colorbar(ScalarMappable(BoundaryNorm(bounds, cmap.N), cmap), ax=axes[1], shrink=0.8,
                       label="ring number")
    ticks = np.arange(len(rings))[:: max(1, len(rings) // 12)]
    bar.set_ticks(ticks, labels=[str(numbers[t]) for t in ticks])
    axes[1].set_xlabel("χ [deg]")
    axes[1].set_ylabel("Δq [10⁻³ Å⁻¹]")
    axes[1].set_title("Δq against χ per ring (lines: geometric part)")
    sc = axes[2].scatter(check.radius_mm, check.dq * 1e3, s=2, c=ue, cmap="coolwarm", vmin=-lim,
                         vmax=lim, rasterized=True)
    fig.colorbar(sc, ax=axes[2], shrink=0.8, label="Δd/d [µε]")
    axes[2].axhline(0, color="k", lw=0.5)
    axes[2].set_xlabel("radius from the beam centre [mm]")
    axes[2].set_ylabel("Δq [10⁻³ Å⁻¹]")
    axes[2].set_title("Δq against radius")
    fig.suptitle(title, fontsize=10)
    return _pixels(plt, fig)


@offloaded
def plot_q_stills(path: Path, panels, refl, check, title: str) -> None:
    """|Δq| of every reflection on its panel (one heatmap per panel, up to 4) and |Δq| against
    resolution.

    Parameters
    ----------
    path : Path
    panels : geocal_cli.core.q.prediction.Panels
    refl : geocal_cli.core.q.stills.Reflections
    check : geocal_cli.core.q.stills.StillsCheck
    title : str
    """
    used = np.unique(refl.panel)[:4]
    plt, (fig, axes) = _figure(1, len(used) + 1, figsize=(6.5 * (len(used) + 1), 6), squeeze=False)
    axes = axes[0]
    dq = np.linalg.norm(check.dq, axis=1) * 1e4
    lim = _strain_scale(dq)
    for ax, p in zip(axes, used):
        on = refl.panel == p
        size = panels.image_size[p] * panels.pixel_size[p]
        ax.add_patch(plt.Rectangle((0, 0), size[0], size[1], fill=False, color="0.5"))
        sc = ax.scatter(refl.xy[on, 0], refl.xy[on, 1], c=dq[on], s=10, cmap="magma_r", vmin=0, vmax=lim)
        d = (check.xy_pred[on] - refl.xy[on])
        ax.quiver(refl.xy[on, 0], refl.xy[on, 1], d[:, 0], d[:, 1], angles="xy", scale_units="xy",
                  scale=0.02, width=0.002, color="tab:blue")
        ax.set_xlim(0, size[0])
        ax.set_ylim(size[1], 0)
        ax.set_aspect("equal")
        ax.set_xlabel("fast [mm]")
        ax.set_ylabel("slow [mm]")
        ax.set_title(f"panel {p}: |Δq| (arrows: to the prediction, ×50)")
        fig.colorbar(sc, ax=ax, shrink=0.8, label="|Δq| [10⁻⁴ Å⁻¹]")
    res = np.linalg.norm(check.q_pred, axis=1)
    experiments = np.unique(refl.exp)
    cmap = plt.get_cmap("tab10")
    for i, e in enumerate(experiments):
        on = refl.exp == e
        axes[-1].scatter(res[on], dq[on], s=4, color=cmap(i % 10),
                         label=f"experiment {e}" if i < LEGEND_ENTRIES else None)
    more = len(experiments) - LEGEND_ENTRIES
    axes[-1].legend(fontsize=7, markerscale=3, title=f"and {more} more" if more > 0 else None,
                    title_fontsize=7, ncol=2 if len(experiments) > 8 else 1)
    axes[-1].set_xlabel("|q| = 1/d [Å⁻¹]")
    axes[-1].set_ylabel("|Δq| [10⁻⁴ Å⁻¹]")
    axes[-1].set_title("|Δq| against resolution, per experiment")
    fig.suptitle(title, fontsize=10)
    _save(plt, fig, path)


@offloaded
def plot_grid_distortion(path: Path, field, inside: np.ndarray, measurement, remeasured,
                         title: str) -> None:
    """dx and dy on the detector (blank outside the holes' hull) with the measured holes, and
    the holes' misplacement on the corrected image as magnified arrows; for a distortion file
    (no grid measured) the field itself as arrows instead.

    Parameters
    ----------
    path : Path
    field : geocal_cli.core.geometry.displacement.Field
    inside : ndarray of bool, shape (H, W)
    measurement : geocal_cli.core.grid.measure.GridMeasurement or None
    remeasured : geocal_cli.core.grid.measure.Remeasured or None
    title : str
    """
    plt, (fig, axes) = _figure(1, 3, figsize=(19, 6.5))
    cy, cx = field.centres()
    lim = float(max(np.abs(cx[inside]).max(), np.abs(cy[inside]).max())) if inside.any() else 1.0
    lim = lim or 1.0
    for ax, comp, name in ((axes[0], cx, "dx"), (axes[1], cy, "dy")):
        im = ax.imshow(np.where(inside, comp, np.nan), cmap="coolwarm", vmin=-lim, vmax=lim,
                       interpolation="nearest")
        if measurement is not None:
            ax.plot(measurement.yx[:, 1] - 0.5, measurement.yx[:, 0] - 0.5, ".", ms=2, color="k",
                    label="holes measured")
            ax.legend(loc="upper right", fontsize=8, markerscale=4)
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"{name} [px]")
        ax.set_title(f"{name}: displacement along {'columns' if name == 'dx' else 'rows'}")
    ax = axes[2]
    if remeasured is not None:
        y, x, e = remeasured.ideal[:, 0], remeasured.ideal[:, 1], remeasured.error
        spacing = float(np.min(measurement.grid.pitch_px))
        what = "corrected image: hole − ideal"
    else:
        # The field on a coarse grid: ~25 arrows a side.
        step = max(1, int(max(field.shape) // 25))
        g1, g2 = np.mgrid[step // 2:field.shape[0]:step, step // 2:field.shape[1]:step]
        keep = inside[g1, g2]
        y, x = g1[keep].astype(float), g2[keep].astype(float)
        e = np.stack([cy[g1, g2][keep], cx[g1, g2][keep]], 1)
        spacing = float(step)
        what = "the field (dy, dx)"
    size = np.hypot(*e.T) if e.size else np.zeros(0)
    typical = max(float(np.percentile(size, 95)), 1e-3) if size.size else 1.0
    scale = 0.5 * spacing / typical
    q = ax.quiver(x, y, e[:, 1] * scale, e[:, 0] * scale, size, angles="xy", scale_units="xy",
                  scale=1, cmap="viridis", width=0.003)
    # The arrow scale: a key arrow of a round length in pixels of displacement.
    key = float(f"{typical:.1g}")
    ax.quiverkey(q, 0.86, -0.1, key * scale, f"{key:g} px", labelpos="E", coordinates="axes",
                 fontproperties={"size": 8})
    fig.colorbar(q, ax=ax, shrink=0.8, label="|displacement| [px]")
    ax.set_xlim(0, field.shape[1])
    ax.set_ylim(field.shape[0], 0)
    ax.set_aspect("equal")
    rms = float(np.sqrt(np.mean(size**2))) if size.size else 0.0
    ax.set_title(f"{what}: arrows ×{scale:.0f} (rms {rms:.3f} px)", fontsize=10)
    for a in axes:
        a.set_xlabel("column (x, fast) [px]")
        a.set_ylabel("row (y, slow) [px]")
    fig.suptitle(title, fontsize=10)
    _save(plt, fig, path)


@offloaded
def plot_series(path: Path, series: dict) -> None:
    """Each followed parameter of a batch against acquisition order, with 1σ error bars and
    the jumps marked.

    Parameters
    ----------
    path : Path
        PNG written atomically.
    series : dict
        `pipeline.batch.series_of`'s result.
    """
    params = series["parameters"]
    plt, (fig, axes) = _figure(len(params), 1, figsize=(11, 1.9 * len(params) + 0.8),
                               sharex=True, squeeze=False)
    x = np.arange(len(series["items"]))
    for ax, (key, p) in zip(axes[:, 0], params.items()):
        v = np.array(p["values"], float)
        s = np.nan_to_num(np.array(p["sigma"], float), nan=0.0)
        ax.errorbar(x, v, yerr=s, fmt="o", ms=3, lw=0.8, capsize=2, color="tab:blue")
        for j in series["jumps"]:
            if j["parameter"] == key:
                ax.axvline(j["index"] - 0.5, color="tab:red", lw=1)
                ax.annotate(f"{j['move']:+.3g} {p['unit']}", (j["index"] - 0.5, np.nanmax(v)),
                            color="tab:red", fontsize=8, ha="left", va="top")
        ax.set_ylabel(f"{key.rsplit('_', 1)[0].replace('_', ' ')} [{p['unit']}]", fontsize=9)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    axes[-1, 0].xaxis.get_major_locator().set_params(integer=True)
    axes[-1, 0].set_xlabel(f"item ({series['order']})")
    fig.suptitle("batch trends: 1σ error bars, jumps in red", fontsize=10)
    _save(plt, fig, path)


@offloaded
def plot_joint(path: Path, names: list, result, points: list) -> None:
    """A joint calibration's residuals: every control point per image (coloured by ring), and
    each image's rms per ring.

    Parameters
    ----------
    path : Path
        PNG written atomically.
    names : list of str
        The images, in fit order.
    result : geocal_cli.core.joint.fit.JointRefinement
    points : list of ControlPoints or None
        Each image's last control points.
    """
    plt, (fig, (left, right)) = _figure(1, 2, figsize=(11, 4.2), width_ratios=(3, 2))
    cmap = plt.get_cmap("viridis")
    rings = sorted({int(k) for cp in points if cp is not None for k in np.unique(cp.ring)})
    colour = {k: cmap(i / max(len(rings) - 1, 1)) for i, k in enumerate(rings)}
    jitter = np.random.default_rng(0)
    for i, (cp, r, keep) in enumerate(zip(points, result.residual_px, result.inliers)):
        if cp is None:
            continue
        for k in np.unique(cp.ring):
            sel = (cp.ring == k) & keep
            x = i + jitter.uniform(-0.3, 0.3, sel.sum())
            left.scatter(x, r[sel], s=7, color=colour[int(k)], alpha=0.6, lw=0)
            right.plot(i, np.sqrt(np.mean(r[sel] ** 2)) if sel.any() else np.nan, "o",
                       color=colour[int(k)], ms=5)
    for k in rings:
        right.plot([], [], "o", color=colour[k], label=f"ring {k + 1}")
    left.axhline(0, color="k", lw=0.6)
    left.set_ylabel("radial residual [px]")
    right.set_ylabel("rms per ring [px]")
    for ax in (left, right):
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("image")
        ax.grid(alpha=0.3)
    right.set_ylim(0, 1.15 * max(right.get_ylim()[1], 0.05))
    right.set_xlim(-0.5, len(names) - 0.5)
    left.set_xlim(-0.5, len(names) - 0.5)
    if rings:
        right.legend(fontsize=7, ncol=2 if len(rings) > 8 else 1, loc="best")
    fig.suptitle(f"joint calibration: rms {np.sqrt(np.nanmean(result.rms_px() ** 2)):.3f} px "
                 f"over {len(names)} images", fontsize=10)
    _save(plt, fig, path)
