"""PNG figures (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geocal_cli.io.atomic import atomic_path


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(*args, **kwargs)


def plot_calibration(path: Path, image: np.ndarray, valid: np.ndarray, calibration,
                     ring_tth: np.ndarray, title: str) -> None:
    """Image with fitted rings and control points, and residual per ring vs azimuth.

    Parameters
    ----------
    path : Path
        PNG written atomically.
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    calibration : geocal_cli.core.calibrate.Calibration
    ring_tth : ndarray, shape (K,)
        2θ (radians) of the calibrant rings to draw.
    title : str
    """
    from geocal_cli.core.geometry import frame_of

    plt, (fig, (ax0, ax1)) = _figure(1, 2, figsize=(15, 7), gridspec_kw={"width_ratios": [1.15, 1]})
    shown = np.where(valid, np.log1p(np.clip(image, 0, None)), np.nan)
    lo, hi = np.nanpercentile(shown, [1, 99.7])
    ax0.imshow(shown, cmap="gray_r", vmin=lo, vmax=hi, interpolation="nearest")
    fr = frame_of(calibration.geometry)
    chi = np.linspace(-np.pi, np.pi, 1441)
    h, w = image.shape
    for t in ring_tth:
        d1, d2 = fr.pixel_at(t, chi)
        out = ~((d1 > -1) & (d1 < h) & (d2 > -1) & (d2 < w))
        d1[out] = np.nan
        ax0.plot(d2, d1, "-", color="tab:red", lw=0.6, alpha=0.8)
    pts = calibration.points
    inl = calibration.refinement.inliers
    ax0.scatter(pts.d2[inl], pts.d1[inl], s=0.6, c=pts.ring[inl] % 10, cmap="tab10", lw=0)
    ax0.scatter(pts.d2[~inl], pts.d1[~inl], s=4, marker="x", color="black", lw=0.5,
                label="rejected points")
    bc1, bc2 = calibration.beam_center
    if np.isfinite(bc1):
        ax0.plot([bc2], [bc1], "+", color="tab:blue", ms=14, mew=1.5, label="beam centre")
    ax0.set_xlim(-0.5, w - 0.5)
    ax0.set_ylim(h - 0.5, -0.5)
    ax0.set_xlabel("column (x, fast) [px]")
    ax0.set_ylabel("row (y, slow) [px]")
    ax0.legend(loc="upper right", fontsize=8)
    ax0.set_title(title, fontsize=10)

    rings = calibration.rings
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
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
