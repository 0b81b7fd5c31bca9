"""Ridge detection (`ridges`) on drawn rings of known radius."""

from __future__ import annotations

import numpy as np

from geocal_cli.core.rings.ridges import find_ridges, with_full_resolution_core
from geocal_cli.core.rings.start import find_ring_ridges

CENTRE = (1203.3, 1187.6)


def _rings(shape, radii, sigma_px=0.8, peak=400.0, background=20.0, seed=0):
    """Poisson image of Gaussian rings of the given radii about `CENTRE`."""
    d1, d2 = np.indices(shape, dtype=float)
    r = np.hypot(d1 - CENTRE[0], d2 - CENTRE[1])
    mean = background + sum(peak * np.exp(-0.5 * ((r - r0) / sigma_px) ** 2) for r0 in radii)
    return np.random.default_rng(seed).poisson(mean).astype(np.float64)


def _radii(ridges):
    return np.hypot(ridges.d1 - CENTRE[0], ridges.d2 - CENTRE[1])


def test_close_rings_near_the_beam_are_found_apart_at_full_resolution():
    # Two sharp rings 5 px apart on a 2400² image: binned by 2 their ridges merge into one
    # band; at full resolution none lies midway between them.
    image = _rings((2400, 2400), (100.0, 105.0))
    valid = np.ones(image.shape, bool)
    binned = find_ridges(image, valid, factor=2)
    ridges = find_ring_ridges(image, valid)

    def midway(r):
        band = np.abs(_radii(r) - 102.5)
        return np.count_nonzero(band < 0.5) / np.count_nonzero(band < 4.5)

    assert midway(binned) > 0.05
    assert midway(ridges) < 0.005
    # Outside the rings' region the binned pass's pixels are kept.
    far = np.abs(binned.d1 - CENTRE[0]) > 400
    assert np.count_nonzero(np.abs(ridges.d1 - CENTRE[0]) > 400) == np.count_nonzero(far)


def test_rings_across_the_whole_image_keep_the_binned_ridges():
    image = _rings((2400, 2400), (300.0, 700.0, 1100.0), sigma_px=2.0)
    valid = np.ones(image.shape, bool)
    binned = find_ridges(image, valid, factor=2)
    assert with_full_resolution_core(image, valid, binned, 2) is binned


def test_over_budget_crests_come_first_and_a_faint_inner_ring_keeps_its_share():
    # Four strong broad rings (σ 3 px) and a faint narrow one near the beam: 80 000 ridge
    # pixels, most of them the strong rings' flanks. A budget of 8000 taken at random would
    # leave the faint ring 1 % of it; crests first, it keeps more than twice that, and the
    # strong rings' pixels sit on their crests.
    centre = (600.3, 590.6)
    d1, d2 = np.indices((1200, 1200), dtype=float)
    r = np.hypot(d1 - centre[0], d2 - centre[1])
    strong = (250.0, 330.0, 410.0, 490.0)
    mean = 20 + 60 * np.exp(-0.5 * ((r - 40) / 0.8) ** 2) + sum(
        3000 * np.exp(-0.5 * ((r - r0) / 3.0) ** 2) for r0 in strong)
    image = np.random.default_rng(0).poisson(mean).astype(np.float64)
    valid = np.ones(image.shape, bool)

    def split(ridges):
        rr = np.hypot(ridges.d1 - centre[0], ridges.d2 - centre[1])
        off = np.min(np.abs(rr[:, None] - np.array(strong)[None, :]), axis=1)
        return np.count_nonzero(np.abs(rr - 40) < 4), off[rr > 200]

    whole = find_ridges(image, valid, max_pixels=10**9)
    budget = find_ridges(image, valid, max_pixels=8000)
    faint_whole, off_whole = split(whole)
    faint, off = split(budget)
    assert budget.d1.size == 8000 < whole.d1.size / 5
    assert faint / 8000 > 2 * faint_whole / whole.d1.size
    assert np.median(off) < 0.5 < 2.0 < np.median(off_whole)


def test_ridge_pixels_of_a_binned_image_sit_on_their_rings():
    # Broad rings (σ 2 px) binned by 3: the ridge measure stands above noise over a band
    # ± 5 px wide (3.3 px rms from the rings); at the lines' centres, the ridge pixels lie
    # within a third of a binned pixel of the rings (rms).
    radii = np.array([300.0, 520.0, 760.0, 1010.0])
    image = _rings((2400, 2400), radii, sigma_px=2.0)
    ridges = find_ridges(image, np.ones(image.shape, bool), factor=3)

    def rms_off(r):
        off = np.min(np.abs(_radii(r)[:, None] - radii[None, :]), axis=1)
        assert np.count_nonzero(off < 10) > 0.95 * off.size
        return np.sqrt(np.mean(off[off < 10] ** 2))

    assert rms_off(ridges.on_lines()) < 1.0 < 3.0 < rms_off(ridges)


def _with_beamstop(image, radius=30.0, arm_half_width=6.0, seed=1):
    """`image` with a beamstop's shadow (2 % transmitted) about `CENTRE` and its arm running
    along +d2 to the edge, redrawn with Poisson noise."""
    d1, d2 = np.indices(image.shape, dtype=float)
    shadow = np.hypot(d1 - CENTRE[0], d2 - CENTRE[1]) < radius
    shadow |= (d2 > CENTRE[1]) & (np.abs(d1 - CENTRE[0]) < arm_half_width)
    return np.random.default_rng(seed).poisson(np.where(shadow, 0.02 * image, image)).astype(float)


def test_a_beamstop_arm_joins_no_rings_into_one_arc():
    # The bright side of a shadow's edge curves like a ridge: an arm's two edges crossing
    # three rings made one arc of them all (the tilted search then fitted one ellipse to
    # three rings and started 350 px from the beam). Its edge pixels belong to no arc now,
    # and every arc is one ring.
    rings = np.array([150.0, 250.0, 350.0])
    image = _with_beamstop(_rings((2400, 2400), rings))
    ridges = find_ridges(image, np.ones(image.shape, bool))
    # Beyond the beamstop's rim (its own arc where the disc is too large to stand out).
    arcs = [idx for idx in ridges.arcs(60) if np.median(_radii(ridges)[idx]) > 60]
    assert len(arcs) >= 3
    for idx in arcs:
        r = _radii(ridges)[idx]
        assert np.ptp(r) < 10, f"an arc spans radii {r.min():.0f}-{r.max():.0f} px"
    # The arm's edges are still ridge pixels, in no arc.
    along_arm = ((np.abs(np.abs(ridges.d1 - CENTRE[0]) - 6.0) < 4) & (ridges.d2 > CENTRE[1] + 60)
                 & (np.abs(_radii(ridges)[:, None] - rings).min(axis=1) > 10))
    assert np.count_nonzero(along_arm) > 100
    assert not ridges.group[along_arm].any()


def test_the_valleys_between_strong_dense_rings_are_no_shadow():
    # Strong rings 12 px apart: every 16-px block's minimum there is a valley's, far above
    # the background between the two groups of rings, which is no darker than the image's
    # own level: no ridge pixel is taken for a shadow's edge.
    radii = tuple(np.arange(100.0, 460.0, 12.0)) + tuple(np.arange(600.0, 800.0, 12.0))
    image = _rings((2400, 2400), radii, sigma_px=2.0, peak=20000.0)
    ridges = find_ridges(image, np.ones(image.shape, bool))
    assert ridges.d1.size > 1000
    assert (ridges.group > 0).all()


def test_rings_covering_the_image_are_found_where_their_spread_tops_every_crest():
    # Strong sharp rings 6 px apart fill a 512² image from a beam near its edge: the ridge
    # strengths' spread is the rings' own and lay above all but a few hundred crest pixels
    # (a few rings' worth). The pixel noise decides then, and every ring on the image is
    # found, on its crest.
    centre = (20.3, 250.6)
    d1, d2 = np.indices((512, 512), dtype=float)
    r = np.hypot(d1 - centre[0], d2 - centre[1])
    radii = np.arange(40.0, 700.0, 6.0)
    mean = 5 + sum(30000 * 40 / r0 * np.exp(-0.5 * ((r - r0) / 1.2) ** 2) for r0 in radii)
    image = np.random.default_rng(0).poisson(mean).astype(np.float64)
    ridges = find_ridges(image, np.ones(image.shape, bool))
    rr = np.hypot(ridges.d1 - centre[0], ridges.d2 - centre[1])
    nearest = np.argmin(np.abs(rr[:, None] - radii[None, :]), axis=1)
    on_image = radii < r.max() - 10
    found = np.bincount(nearest, minlength=radii.size) >= 20
    assert found[on_image].all()
    assert np.median(np.abs(rr - radii[nearest])) < 0.5
