"""Grid distortion against the simulator's known displacement fields.

A field is only defined up to the grid's placement (shift, rotation, scale per axis: the
gauge of `core.geometry.displacement`); the simulator removes that part over the whole image and the
measurement over the indexed holes, so the comparison removes the best gauge difference
over the compared pixels. The scale part is checked on its own through the pixel sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

from geocal_cli.core.geometry.displacement import corner_grid, gauge_free_difference, gauge_part
from geocal_cli.core.grid.measure import measure_grid
from geocal_cli.core.simulate.grid import DistortionSpec, GridSpec, grid_nodes, render_grid_image, synthetic_field
from geocal_cli.core.grid.lattice import index_lattice
from geocal_cli.errors import CalibrationError, ConfigError


def field_error(m, truth) -> tuple[float, float]:
    """Rms and max |recovered − true| (px) at every 4th pixel centre inside the hull, the
    gauge difference removed."""
    cy, cx = m.field.centres()
    ty, tx = truth.centres()
    e = gauge_free_difference(cy - ty, cx - tx, m.inside)
    return float(np.sqrt(np.mean(e**2))), float(e.max())


def holes_where_truth_puts_them(m, truth, grid, shape, tol=0.2) -> bool:
    """Every indexed hole sits within `tol` px of where the true field images a grid hole
    (no stray spot was taken for a hole)."""
    from scipy.spatial import cKDTree

    _, y, x = grid_nodes(shape, grid, margin=grid.pitch_px[0])
    ry, rx = truth.raw_position(y, x)
    dist, _ = cKDTree(np.stack([ry, rx], 1)).query(m.yx)
    return bool(np.all(dist < tol))


SHAPE = (1024, 1024)
GRID = GridSpec(pitch_px=(20.0, 20.0), angle_deg=0.6, diameter_px=8.0, illumination=0.5,
                missing=0.03, spurious=4, seed=5)
FIELDS = {"pincushion 4 px": DistortionSpec(radial_px=4.0, seed=1),
          "barrel 4 px": DistortionSpec(radial_px=-4.0, seed=1),
          "random 1.5 px": DistortionSpec(random_px=1.5, seed=2),
          "skew 0.5 deg": DistortionSpec(skew_deg=0.5, seed=3)}


@pytest.mark.parametrize("name", FIELDS)
def test_field_recovered_on_a_20px_grid(name):
    truth = synthetic_field(SHAPE, FIELDS[name])
    img = render_grid_image(SHAPE, GRID, truth)
    m = measure_grid(img.astype(np.float32), np.ones(SHAPE, bool), expected_pitch_px=20.0)
    rms, mx = field_error(m, truth)
    assert rms < 0.05 and mx < 0.15, (rms, mx)
    # The simulator's pixel size is the mean one: 20 px per pitch along both axes.
    assert np.allclose(m.grid.pitch_px, 20.0, rtol=1e-3)
    assert abs(np.degrees(m.grid.angle) - 0.6) < 0.02
    assert holes_where_truth_puts_them(m, truth, GRID, SHAPE)
    # 3 % of ~2600 holes are missing: they are absent, not filled by stray spots.
    assert m.ij.shape[0] < 0.985 * grid_nodes(SHAPE, GRID)[0].shape[0]
    if name.startswith("skew"):
        assert abs(m.skew_deg - 0.5) < 0.02


def test_combined_field_on_a_2048_image_with_100px_pitch():
    shape = (2048, 2048)
    truth = synthetic_field(shape, DistortionSpec(radial_px=4.0, random_px=1.5, skew_deg=0.5, seed=7))
    grid = GridSpec(pitch_px=(100.0, 100.0), angle_deg=-0.8, diameter_px=20.0,
                    illumination=0.6, missing=0.03, spurious=6, seed=8)
    img = render_grid_image(shape, grid, truth)
    m = measure_grid(img.astype(np.float32), np.ones(shape, bool), expected_pitch_px=100.0)
    rms, mx = field_error(m, truth)
    assert rms < 0.05 and mx < 0.15, (rms, mx)
    assert np.allclose(m.grid.pitch_px, 100.0, rtol=1e-3)
    assert holes_where_truth_puts_them(m, truth, grid, shape)


def test_dark_dots_on_a_bright_field():
    truth = synthetic_field(SHAPE, DistortionSpec(random_px=1.5, seed=4))
    grid = GridSpec(pitch_px=(20.0, 20.0), diameter_px=8.0, dark=True, illumination=0.4, seed=6)
    img = render_grid_image(SHAPE, grid, truth)
    m = measure_grid(img.astype(np.float32), np.ones(SHAPE, bool), dark=True)
    rms, mx = field_error(m, truth)
    assert rms < 0.05 and mx < 0.15, (rms, mx)


def test_anisotropic_pixels_give_two_pixel_sizes():
    grid = GridSpec(pitch_px=(20.0, 25.0), diameter_px=8.0, seed=9)
    img = render_grid_image(SHAPE, grid)
    m = measure_grid(img.astype(np.float32), np.ones(SHAPE, bool))
    assert np.allclose(m.grid.pitch_px, (20.0, 25.0), rtol=1e-3)


def test_synthetic_field_is_gauge_free_and_as_large_as_asked():
    f = synthetic_field((512, 512), DistortionSpec(radial_px=4.0, seed=0))
    gy, gx = corner_grid((512, 512), 8)
    y, x = (a.ravel() for a in np.meshgrid(gy, gx, indexing="ij"))
    dy, dx = f.at(y, x)
    assert np.abs(gauge_part(y, x, dy, dx)[2]).max() < 1e-6
    # r³ at the corners, less its mean scale (which a pixel size absorbs).
    assert 2.0 < f.norm().max() < 4.0


def test_growth_indexes_where_rounding_to_the_mean_lattice_fails():
    n, pitch = 30, 20.0
    i, j = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    c = (n - 1) / 2
    # A pincushion-like displacement reaching 0.8 pitch at the corners.
    u, v = (i - c) / c, (j - c) / c
    y = pitch * j + 16.0 * v * (u**2 + v**2) / 2
    x = pitch * i + 16.0 * u * (u**2 + v**2) / 2
    rng = np.random.default_rng(0)
    keep = rng.random(i.size) > 0.03
    idx = index_lattice(y[keep], x[keep], np.array([0.0, pitch]), np.array([pitch, 0.0]))
    truth = np.stack([i[keep], j[keep]], 1)[idx.spot]
    assert np.all(np.ptp(truth - idx.ij, axis=0) == 0)          # one constant offset
    assert idx.spot.size == keep.sum()
    naive = np.stack([np.round(x[keep] / pitch), np.round(y[keep] / pitch)], 1)
    assert np.any(naive != np.stack([i[keep], j[keep]], 1))


def test_no_spots_and_a_ring_image_are_calibration_errors():
    rng = np.random.default_rng(1)
    noise = rng.poisson(100, SHAPE).astype(np.float32)
    with pytest.raises(CalibrationError, match="no regular grid"):
        measure_grid(noise, np.ones(SHAPE, bool))
    yy, xx = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    rings = (100 + 1000 * np.exp(-0.5 * ((np.hypot(yy - 500, xx - 530) % 60 - 30) / 2) ** 2))
    with pytest.raises(CalibrationError):
        measure_grid(rng.poisson(rings).astype(np.float32), np.ones(SHAPE, bool))


def test_pitch_inconsistent_with_pixel_size_is_a_config_error():
    img = render_grid_image(SHAPE, GridSpec(pitch_px=(20.0, 20.0), diameter_px=8.0))
    with pytest.raises(ConfigError, match="apart in the image"):
        measure_grid(img.astype(np.float32), np.ones(SHAPE, bool), expected_pitch_px=23.0)
    measure_grid(img.astype(np.float32), np.ones(SHAPE, bool), expected_pitch_px=21.5)
