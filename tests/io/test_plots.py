"""Every plot rendered on real data (synthetic where no real data fits) and checked through
matplotlib's artist tree: axes labelled with units, legends naming what is drawn, colour bars
where colour carries a quantity, the integration check's ticks matching the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli.conftest import geocal
from tests.conftest import colourbars, labelled, legend_texts, shared

CEO2 = ("xray", "ceo2_pilatus1m_dioptas", "CeO2_Pilatus1M.tif")


def _run(args, capsys, code=0):
    got, _, err = geocal(args, capsys)
    assert got == code, err


def _integration(fig):
    """The integration check's pattern axis (x label 2θ) and cake axis (y label χ)."""
    pattern = next(ax for ax in fig.axes if ax.get_xlabel() == "2θ [deg]")
    cake = next(ax for ax in fig.axes if ax.get_ylabel() == "χ [deg]")
    return pattern, cake




def test_calib_ring_plot(tmp_path, capsys, figures):
    _run(["calib-ring", shared(*CEO2), "-c", "CeO2", "--wavelength", "0.4066", "-d", "Pilatus1M",
          "-o", tmp_path / "c.poni", "--report", tmp_path / "c.json", "--plot", tmp_path / "c.png", "-q"],
         capsys)
    report = json.loads((tmp_path / "c.json").read_text())
    (fig,) = figures
    image_ax, residual_ax = fig.axes[0], fig.axes[1]
    for ax in (image_ax, residual_ax):
        labelled(ax)
    assert {"CeO2 rings used", "beam centre"} <= set(legend_texts(image_ax))
    # One residual row per ring of the report, labelled with its number and rms.
    used = [r["ring"] for r in report["residuals"]["rings"]]
    rows = [t.get_text() for t in residual_ax.texts if ": " in t.get_text()]
    assert [int(t.split(":")[0]) for t in rows] == used
    # A scale bar names its length.
    assert any(t.get_text().strip().endswith("px") for t in residual_ax.texts)
    pattern, cake = _integration(fig)
    labelled(pattern)
    legend = legend_texts(pattern)
    assert f"CeO2 rings used ({len(used)})" in legend
    assert f"foreign rings ({report['rings_seen']['foreign_rings']})" in legend
    assert len(_tick_positions(pattern, "tab:green")) == len(used)
    assert len(_tick_positions(pattern, "tab:orange")) == report["rings_seen"]["foreign_rings"]
    # The ticks sit on the pattern's peaks: the intensity at each used ring is the maximum
    # within ± 6 bins, 2 bins from the tick at most.
    line = next(ln for ln in pattern.get_lines() if ln.get_label() == "mean intensity above background")
    x, y = line.get_xdata(), line.get_ydata()
    step = x[1] - x[0]
    for t in _tick_positions(pattern, "tab:green"):
        near = np.abs(x - t) <= 6 * step
        assert abs(x[near][np.argmax(y[near])] - t) <= 2 * step


def _tick_positions(ax, colour) -> list[float]:
    """x of every tick line of a colour."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba

    return [seg[0][0] for c in ax.collections if isinstance(c, LineCollection) and len(c.get_segments())
            and np.allclose(c.get_colors()[0], to_rgba(colour)) for seg in c.get_segments()]


def test_electron_plot_shows_the_rings(tmp_path, capsys, figures):
    au = shared("electron", "au_xgrating_pyxem", "au_xgrating_20cm.tif")
    _run(["calib-ring", au, "-c", shared("electron", "au_xgrating_pyxem", "au.cif"), "--voltage", "200",
          "--pixel-size", "55", "-o", tmp_path / "au.poni", "--report", tmp_path / "au.json",
          "--plot", tmp_path / "au.png", "-q"], capsys)
    (fig,) = figures
    shown = fig.axes[0].get_images()[0]
    values, (vmin, vmax) = shown.get_array(), shown.get_clim()
    # Between the direct beam and the edge (the rings' annulus), the display uses a good part
    # of the colour range: the beam does not flatten the rings into one grey (log(1 + I) of
    # this camera's normalised floats used 2 % of it).
    h, w = values.shape
    r = np.hypot(*np.mgrid[:h, :w] - np.array([h / 2, w / 2])[:, None, None])
    annulus = np.asarray(values)[(r > 0.2 * h) & (r < 0.45 * h)]
    spread = np.nanpercentile(annulus, 95) - np.nanpercentile(annulus, 5)
    assert spread > 0.2 * (vmax - vmin)


def test_strip_detector_plot(tmp_path, capsys, figures):
    ssrl = ("xray", "lab6_pilatus300kw_ssrl72")
    _run(["calib-ring", shared(*ssrl, "scan2_0009.tif"), "-c", "LaB6", "--wavelength", "0.885601",
          "-d", "Pilatus300kw", "--guess", shared(*ssrl, "scan2_0009_pyFAI-calib2.poni"),
          "--fix", "dist,rot1,rot2,rot3,wavelength", "--min-rings", "1", "-o", tmp_path / "s.poni",
          "--report", tmp_path / "s.json", "--plot", tmp_path / "s.png", "-q"], capsys)
    (fig,) = figures
    image_ax, residual_ax = fig.axes[0], fig.axes[1]
    assert image_ax.get_aspect() == "auto"  # stretched to the panel, and said so
    assert any("not square" in t.get_text() for t in image_ax.texts)
    lo, hi = residual_ax.get_xlim()
    assert hi - lo < 120  # the arc's azimuths, not ±180°
    pattern, _ = _integration(fig)
    assert pattern.get_xlim()[0] > 5  # from the first 2θ the detector sees


def test_recenter_plot(tmp_path, capsys, figures):
    image = shared(*CEO2)
    poni = shared("xray", "ceo2_pilatus1m_dioptas", "CeO2_Pilatus1M.poni")
    _run(["convert-poni", poni, "--from", "dioptas", "--to", "poni", "--shape", "1043,981",
          "-o", tmp_path / "g.poni", "--report", tmp_path / "g.json", "-q"], capsys)
    _run(["recenter", image, "--poni", tmp_path / "g.poni", "-c", "CeO2", "-o", tmp_path / "r.poni",
          "--report", tmp_path / "r.json", "--plot", tmp_path / "r.png", "-q"], capsys)
    report = json.loads((tmp_path / "r.json").read_text())
    (fig,) = figures
    for ax in fig.axes[:2]:
        labelled(ax)
    assert {"old centre", "new centre", "ring points"} <= set(legend_texts(fig.axes[0]))
    pattern, _ = _integration(fig)
    assert f"CeO2 rings used ({len(report['results']['rings'])})" in legend_texts(pattern)


def test_q_check_powder_plot_makes_a_wrong_calibrant_plain(tmp_path, capsys, figures):
    image = shared(*CEO2)
    _run(["calib-ring", image, "-c", "CeO2", "--wavelength", "0.4066", "-d", "Pilatus1M",
          "-o", tmp_path / "c.poni", "--report", tmp_path / "c.json", "-q"], capsys)
    figures.clear()
    _run(["q-check", image, "--poni", tmp_path / "c.poni", "-c", "LaB6", "--report", tmp_path / "q.json",
          "--plot", tmp_path / "q.png", "-q"], capsys, code=6)
    report = json.loads((tmp_path / "q.json").read_text())
    (fig,) = figures
    assert fig._suptitle.get_text().split(": ", 1)[1].startswith("FAILED: the rings fit CeO2")
    bars = colourbars(fig)
    assert bars.count("Δd/d [µε]") == 2 and "ring number" in bars
    for ax in [a for a in fig.axes if not hasattr(a, "_colorbar") and a.get_title()][:3]:
        labelled(ax)
    pattern, _ = _integration(fig)
    legend = legend_texts(pattern)
    assert f"LaB6 rings used ({len(report['results']['rings'])})" in legend
    # CeO2's rings, which the image shows, are foreign to LaB6: marked at the peaks.
    foreign = sum(1 for r in report["rings_seen"]["rings"] if r["counted"] and r["calibrant_ring"] is None)
    assert foreign >= 5 and f"foreign rings ({foreign})" in legend


def test_q_check_stills_plot(tmp_path, capsys, figures):
    expt, refl = shared("dials", "cunir_ssx", "indexed.expt"), shared("dials", "cunir_ssx", "indexed.refl")
    _run(["q-check", "--expt", expt, "--refl", refl, "--report", tmp_path / "s.json",
          "--plot", tmp_path / "s.png", "-q"], capsys)
    (fig,) = figures
    panel, resolution = fig.axes[0], next(a for a in fig.axes if "resolution" in a.get_title())
    labelled(panel)
    labelled(resolution)
    assert "|Δq| [10⁻⁴ Å⁻¹]" in colourbars(fig)
    experiments = json.loads(expt.read_text())["experiment"]
    assert legend_texts(resolution) == [f"experiment {i}" for i in range(len(experiments))][:16]


@pytest.mark.parametrize("source", ["image", "spline"])
def test_grid_distortion_plot(source, tmp_path, capsys, figures):
    from matplotlib.quiver import QuiverKey

    grid = tmp_path / "grid.edf"
    _run(["-q", "simulate", grid, "--grid", "2", "--pixel-size", "100", "--shape", "512,512",
          "--radial", "3", "--random-field", "1"], capsys)
    _run(["grid-distortion", grid, "--pitch", "2", "--pixel-size", "100", "-o", tmp_path / "d.h5",
          "--spline", tmp_path / "d.spline", "--report", tmp_path / "g.json", "-q"]
         + (["--plot", tmp_path / "g.png"] if source == "image" else []), capsys)
    if source == "spline":
        _run(["grid-distortion", tmp_path / "d.spline", "-o", tmp_path / "e.h5",
              "--report", tmp_path / "e.json", "--plot", tmp_path / "e.png", "-q"], capsys)
        assert (tmp_path / "e.png").is_file()
    (fig,) = figures
    maps = [a for a in fig.axes if not hasattr(a, "_colorbar")]
    assert len(maps) == 3
    for ax in maps:
        labelled(ax)
    assert {"dx [px]", "dy [px]", "|displacement| [px]"} <= set(colourbars(fig))
    key = next(a for a in maps[2].get_children() if isinstance(a, QuiverKey))
    assert key.text.get_text().endswith(" px")
    assert ("holes measured" in legend_texts(maps[0])) == (source == "image")


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32, np.float64])
def test_displayed_image_is_the_block_maximum_of_log_intensity(dtype):
    """`display_image` takes the logarithm of each block's maximum: the maximum of
    `log_intensity` over the block, bit for bit, and NaN for a block without a valid pixel."""
    from geocal_cli.io.plots import display_image, log_intensity

    rng = np.random.default_rng(3)
    image = (rng.gamma(0.5, 200, (1001, 850)) - 5).astype(dtype)  # zeros and negatives too
    valid = rng.random(image.shape) > 0.3
    valid[:300, :300] = False  # whole blocks masked (a beamstop)
    shown, f = display_image(image, valid, max_side=300)
    assert f == 4 and shown.shape == (251, 213) and shown.dtype == np.float32
    logs = np.where(valid, log_intensity(image, valid), -np.inf)
    padded = np.full((251 * 4, 213 * 4), -np.inf, np.float32)
    padded[:1001, :850] = logs
    expected = padded.reshape(251, 4, 213, 4).max(axis=(1, 3))
    expected[np.isneginf(expected)] = np.nan
    assert np.isnan(shown[:75, :75]).all()
    assert np.array_equal(shown, expected, equal_nan=True)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (240, 321)])
def test_png_reads_back_pixel_for_pixel_and_signed(tmp_path, shape):
    """`_write_png` encodes the PNG itself: Pillow reads every RGBA pixel back unchanged, the
    file carries geocal's signature where `io.outputs` looks for it, and its chunks' CRCs hold
    (Pillow checks them on `verify`)."""
    from PIL import Image

    from geocal_cli.io.outputs import SIGNATURE, written_by_geocal
    from geocal_cli.io.plots import _write_png

    rgba = np.random.default_rng(5).integers(0, 256, (*shape, 4), dtype=np.uint8)
    path = tmp_path / "f.png"
    _write_png(path, rgba)
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.mode == "RGBA" and im.info["Software"] == SIGNATURE
        assert np.array_equal(np.asarray(im), rgba)
    assert written_by_geocal(path)
