"""The pixel noise on blocks (`noise`) against Poisson truth, and the control points it lets
through between the close rings of a dense calibrant."""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.core.geometry.metrics import ring_position_error
from geocal_cli.core.rings.controlpoints import extract_control_points, prepare_image
from geocal_cli.core.rings.noise import BLOCK, noise_at, pixel_noise
from geocal_cli.core.rings.rounds import window_px
from geocal_cli.io.calibrants import load_calibrant
from geocal_cli.io.images import valid_pixels
from tests.conftest import blind_calibrate, ring_tth, simulate_case

#: TiO2 on a 512² detector of 55 µm pixels 57 mm away at 94 keV: 25 rings within 130 px of
#: the beam, most of them 1.5–5 px from a neighbour (robustness benchmark case 243).
TIO2_DENSE = dict(calibrant="TiO2", pixel_size_um=[55.0, 55.0], shape=[512, 512],
                  energy_kev=94.3661867806583, distance_mm=56.90690195464671,
                  center_px=[264.6493365702257, 259.815172481848], tilt_deg=0.0,
                  tilt_plan_rotation_deg=154.9591065323994, hot_pixels=10,
                  peak_counts=3660.726847366549, width_px=1.0793868717239528, spotty=0.0,
                  seed=243)


@pytest.mark.parametrize("counts", [3.0, 100.0, 1e4])
def test_pixel_noise_recovers_poisson_sigma(counts):
    rng = np.random.default_rng(int(counts))
    image = rng.poisson(counts, (700, 900)).astype(float)
    valid = np.ones(image.shape, bool)
    valid[:, 300:320] = False                       # a module gap
    valid[rng.random(image.shape) < 0.01] = False   # dead pixels
    sigma = pixel_noise(image, valid)
    assert sigma.shape == (-(-700 // BLOCK), -(-900 // BLOCK))
    assert np.median(sigma) == pytest.approx(np.sqrt(counts), rel=0.02)
    # The blocks, the gap's included, carry a σ near the truth.
    assert np.percentile(np.abs(sigma / np.sqrt(counts) - 1), 99) < 0.15


def test_pixel_noise_is_not_the_rings_slope():
    """Rings 20σ high, 2.4 px FWHM and 10 px apart: the trimmed residuals read the
    background's noise within a factor of two."""
    rng = np.random.default_rng(1)
    r = np.hypot(*np.mgrid[-256:256, -256:256])
    rings = 200.0 * np.exp(-0.5 * ((r % 10.0 - 5.0) / 1.0) ** 2)
    image = rng.normal(100.0, 10.0, r.shape) + rings
    sigma = pixel_noise(image, np.ones(r.shape, bool))
    assert 10.0 < np.median(sigma) < 20.0
    # The lookup takes the block of each point, off the image the nearest one.
    assert noise_at(sigma, np.array([-5.0, 40.0]), np.array([3.0, 600.0])) == pytest.approx(
        [sigma[0, 0], sigma[40 // BLOCK, -1]])


def test_a_crowded_ring_keeps_its_points(tmp_path):
    """TiO2's second ring has a neighbour 4.6 px away, so a search window of ± 2 px: its own
    slopes, read as noise, put its peak (600σ in the azimuthal profile) below the threshold
    on nearly every azimuth. Judged as crowded, against the pixel noise, it carries points
    all round under the true geometry."""
    sim, cfg = simulate_case(TIO2_DENSE, tmp_path)
    g = sim.geometry
    tth = ring_tth(load_calibrant(cfg.calibrant).d_spacing, g.wavelength)
    frame = frame_of(g)
    hw = window_px(frame, tth, 8.0)[:2]
    assert hw[0] > 5.0 and hw[1] < 2.1
    prepared = prepare_image(sim.data, valid_pixels(sim.data))
    counts = [np.bincount(extract_control_points(prepared, frame, tth[:2], hw, n_chi=720,
                                                 crowded=crowded).ring, minlength=2)
              for crowded in (None, np.array([False, True]))]
    assert counts[0][1] < 0.1 * 720
    assert counts[1][1] > 0.9 * 720
    assert counts[1][0] == counts[0][0]


def test_a_dense_calibrant_calibrates_blind(tmp_path):
    """The same image calibrates blind within 0.05 px (it was refused as resting on one
    ring: the only one whose window was wide enough)."""
    sim, cfg = simulate_case(TIO2_DENSE, tmp_path)
    d_spacing = load_calibrant(cfg.calibrant).d_spacing
    g = sim.geometry
    err = ring_position_error(blind_calibrate(sim, d_spacing).geometry, g,
                              ring_tth(d_spacing, g.wavelength), sim.data.shape)
    assert err <= 0.05, f"ring-position error {err:.4f} px"
