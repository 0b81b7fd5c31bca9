"""PNG figures (matplotlib, Agg backend)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.io.outputs import SIGNATURE, atomic_path


#: Largest side (pixels) of an image as displayed: about what a panel of the figure shows.
DISPLAY_PX = 800


def _import_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(*args, **kwargs):
    plt = _import_pyplot()
    # Constrained layout is solved during the one draw that saves the figure; tight_layout
    # drew it once more to measure it.
    return plt, plt.subplots(*args, layout="constrained", **kwargs)


def display_image(image: np.ndarray, valid: np.ndarray,
                  max_side: int = DISPLAY_PX) -> tuple[np.ndarray, int]:
    """log(1 + counts) reduced to at most `max_side` pixels a side by the maximum of each
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
    shown = np.full((-(-h // f) * f, -(-w // f) * f), -np.inf, dtype=np.float32)
    shown[:h, :w] = np.where(valid, np.log1p(np.clip(image, 0, None)), -np.inf)
    shown = shown.reshape(shown.shape[0] // f, f, shown.shape[1] // f, f).max(axis=(1, 3))
    shown[np.isneginf(shown)] = np.nan
    return shown, f


def _show(ax, image: np.ndarray, valid: np.ndarray) -> None:
    """The image on a log scale, invalid pixels blank, in pixel-index coordinates (the
    display is reduced by `display_image`, the axes are not)."""
    shown, f = display_image(image, valid)
    lo, hi = np.nanpercentile(shown, [1, 99.7]) if np.isfinite(shown).any() else (0, 1)
    h, w = image.shape
    ax.imshow(shown, cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest",
              extent=(-0.5, shown.shape[1] * f - 0.5, shown.shape[0] * f - 0.5, -0.5))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)


def _save(plt, fig, path: Path) -> None:
    with atomic_path(Path(path)) as tmp:
        # zlib level 1: a third of the encoding time at level 6, files about a fifth larger.
        fig.savefig(tmp, dpi=90, format="png", metadata={"Software": SIGNATURE},
                    pil_kwargs={"compress_level": 1})
    plt.close(fig)


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


def plot_calibration(path: Path, image: np.ndarray, valid: np.ndarray, fit: RingFitView,
                     ring_tth: np.ndarray, title: str) -> None:
    """Image with fitted rings and control points, and residual per ring vs azimuth.

    Parameters
    ----------
    path : Path
        PNG written atomically.
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    fit : RingFitView
    ring_tth : ndarray, shape (K,)
        2θ (radians) of the calibrant rings to draw.
    title : str
    """
    plt, (fig, (ax0, ax1)) = _figure(1, 2, figsize=(15, 7), gridspec_kw={"width_ratios": [1.15, 1]})
    _show(ax0, image, valid)
    fr = fit.frame
    chi = np.linspace(-np.pi, np.pi, 1441)
    h, w = image.shape
    for t in ring_tth:
        d1, d2 = fr.pixel_at(t, chi)
        out = ~((d1 > -1) & (d1 < h) & (d2 > -1) & (d2 < w))
        d1[out] = np.nan
        ax0.plot(d2, d1, "-", color="tab:red", lw=0.6, alpha=0.8)
    pts = fit.points
    inl = fit.inliers
    ax0.scatter(pts.d2[inl], pts.d1[inl], s=0.6, c=pts.ring[inl] % 10, cmap="tab10", lw=0)
    ax0.scatter(pts.d2[~inl], pts.d1[~inl], s=4, marker="x", color="black", lw=0.5,
                label="rejected points")
    bc1, bc2 = fit.beam_center
    if np.isfinite(bc1):
        ax0.plot([bc2], [bc1], "+", color="tab:blue", ms=14, mew=1.5, label="beam centre")
    ax0.set_xlim(-0.5, w - 0.5)
    ax0.set_ylim(h - 0.5, -0.5)
    ax0.set_xlabel("column (x, fast) [px]")
    ax0.set_ylabel("row (y, slow) [px]")
    ax0.legend(loc="upper right", fontsize=8)
    ax0.set_title(title, fontsize=10)

    rings = fit.rings
    rms = max(np.sqrt(np.mean(np.concatenate([r.residual_px for r in rings]) ** 2)), 0.02)
    step = 8 * rms
    for i, r in enumerate(rings):
        ax1.plot(np.degrees(r.chi), r.residual_px + i * step, ".", ms=1.5)
        ax1.axhline(i * step, color="gray", lw=0.4)
    ax1.set_yticks([i * step for i in range(len(rings))])
    ax1.set_yticklabels([f"{r.index + 1}: {r.rms_px:.2f}" for r in rings], fontsize=7)
    ax1.set_xlabel("azimuth χ [deg]")
    ax1.set_ylabel(f"ring: rms [px]   (residual, one row per ring, rows {step:.2f} px apart)")
    ax1.set_xlim(-180, 180)
    ax1.set_title("radial residual per ring vs azimuth", fontsize=10)
    _save(plt, fig, path)


def plot_recenter(path: Path, image: np.ndarray, valid: np.ndarray, old, new,
                  points: tuple | None, title: str, pairs: np.ndarray | None = None) -> None:
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
    """
    plt, (fig, axes) = _figure(1, 2, figsize=(14, 7))
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
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("column (x, fast) [px]")
        ax.set_ylabel("row (y, slow) [px]")
    _save(plt, fig, path)


def _strain_scale(values: np.ndarray) -> float:
    """Symmetric colour limit: the 98th percentile of |values|."""
    return float(np.percentile(np.abs(values), 98)) or 1.0


def plot_q_powder(path: Path, image: np.ndarray, valid: np.ndarray, check, title: str) -> None:
    """Δd/d on the detector, Δq against χ per ring and Δq against radius.

    Parameters
    ----------
    path : Path
        PNG written atomically.
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    check : geocal_cli.core.q.powder.PowderCheck
    title : str
    """
    plt, (fig, axes) = _figure(1, 3, figsize=(19, 6.5), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    cp = check.points
    ue = check.strain * 1e6
    lim = _strain_scale(ue)
    _show(axes[0], image, valid)
    sc = axes[0].scatter(cp.d2, cp.d1, c=ue, s=4, cmap="coolwarm", vmin=-lim, vmax=lim)
    fig.colorbar(sc, ax=axes[0], shrink=0.8, label="Δd/d (µε)")
    axes[0].set_title("Δd/d at the control points")
    cmap = plt.get_cmap("viridis")
    rings = np.unique(cp.ring)
    for i, k in enumerate(rings):
        on = cp.ring == k
        order = np.argsort(cp.chi[on])
        colour = cmap(i / max(len(rings) - 1, 1))
        axes[1].plot(np.degrees(cp.chi[on]), check.dq[on] * 1e3, ".", ms=2, color=colour)
        axes[1].plot(np.degrees(cp.chi[on][order]),
                     (check.geometric_strain[on] * -check.q_pixel[on])[order] * 1e3, "-", lw=1,
                     color=colour, label=f"ring {k + 1}" if i < 12 else None)
    axes[1].set_xlabel("χ (deg)")
    axes[1].set_ylabel("Δq (10⁻³ Å⁻¹)")
    axes[1].set_title("Δq against χ per ring (lines: geometric part)")
    axes[1].legend(fontsize=7, ncol=2, markerscale=4)
    axes[2].scatter(check.radius_mm, check.dq * 1e3, s=2, c=ue, cmap="coolwarm", vmin=-lim, vmax=lim)
    axes[2].axhline(0, color="k", lw=0.5)
    axes[2].set_xlabel("radius from the beam centre (mm)")
    axes[2].set_ylabel("Δq (10⁻³ Å⁻¹)")
    axes[2].set_title("Δq against radius")
    fig.suptitle(title, fontsize=10)
    _save(plt, fig, path)


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
        ax.set_xlabel("fast (mm)")
        ax.set_ylabel("slow (mm)")
        ax.set_title(f"panel {p}: |Δq| (arrows: to the prediction, ×50)")
        fig.colorbar(sc, ax=ax, shrink=0.8, label="|Δq| (10⁻⁴ Å⁻¹)")
    res = np.linalg.norm(check.q_pred, axis=1)
    axes[-1].scatter(res, dq, s=4, c=refl.exp, cmap="tab10")
    axes[-1].set_xlabel("|q| = 1/d (Å⁻¹)")
    axes[-1].set_ylabel("|Δq| (10⁻⁴ Å⁻¹)")
    axes[-1].set_title("|Δq| against resolution (colour: experiment)")
    fig.suptitle(title, fontsize=10)
    _save(plt, fig, path)


def plot_grid_distortion(path: Path, field, inside: np.ndarray, measurement, remeasured,
                         title: str) -> None:
    """dx and dy on the detector (blank outside the holes' hull) with the measured holes, and
    the holes' misplacement on the corrected image as magnified arrows.

    Parameters
    ----------
    path : Path
    field : geocal_cli.core.geometry.displacement.Field
    inside : ndarray of bool, shape (H, W)
    measurement : geocal_cli.core.grid.measure.GridMeasurement
    remeasured : geocal_cli.core.grid.measure.Remeasured
    title : str
    """
    plt, (fig, axes) = _figure(1, 3, figsize=(19, 6.5))
    cy, cx = field.centres()
    lim = float(max(np.abs(cx[inside]).max(), np.abs(cy[inside]).max())) or 1.0
    for ax, comp, name in ((axes[0], cx, "dx"), (axes[1], cy, "dy")):
        im = ax.imshow(np.where(inside, comp, np.nan), cmap="coolwarm", vmin=-lim, vmax=lim,
                       interpolation="nearest")
        ax.plot(measurement.yx[:, 1] - 0.5, measurement.yx[:, 0] - 0.5, ".", ms=2, color="k")
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"{name} (px)")
        ax.set_title(f"{name}: displacement along {'columns' if name == 'dx' else 'rows'}")
    ax = axes[2]
    e = remeasured.error
    size = np.hypot(*e.T)
    scale = 0.5 * float(np.min(measurement.grid.pitch_px)) / max(float(np.percentile(size, 95)), 1e-3)
    ax.quiver(remeasured.ideal[:, 1], remeasured.ideal[:, 0], e[:, 1] * scale, e[:, 0] * scale,
              size, angles="xy", scale_units="xy", scale=1, cmap="viridis", width=0.003)
    ax.set_xlim(0, field.shape[1])
    ax.set_ylim(field.shape[0], 0)
    ax.set_aspect("equal")
    rms = float(np.sqrt(np.mean(size**2))) if size.size else 0.0
    ax.set_title(f"corrected image: hole − ideal, ×{scale:.0f} (rms {rms:.3f} px)")
    fig.suptitle(title, fontsize=10)
    _save(plt, fig, path)


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
