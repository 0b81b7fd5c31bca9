"""The rings an image shows, measured without an assignment, against a simulated truth."""

import numpy as np
import pyFAI.detectors
import pytest

from geocal_cli.core.geometry.frame import frame_of
from geocal_cli.core.rings.audit import MATCH_TOL_REL, counted_rings, tolerance_px
from geocal_cli.core.rings.unfitted import neutral_measure
from geocal_cli.core.rings.seen import explained_by, seen_rings
from geocal_cli.io.calibrants import load_calibrant
from geocal_cli.io.images import valid_pixels
from tests.conftest import ring_tth, simulate_case

CEO2_TILTED = dict(detector="Pilatus1M", calibrant="CeO2", energy_kev=30.0, distance_mm=220.0,
                   center_px=[480.3, 500.7], tilt_deg=5.0, tilt_plan_rotation_deg=40.0,
                   beamstop_radius_px=15.0, beamstop_arm_deg=30.0, hot_pixels=20, seed=31)


def _truth_radii(sim, seen):
    tth = ring_tth(load_calibrant("CeO2").d_spacing, sim.geometry.wavelength)
    return seen.u_of(tth), tth


def test_rings_are_seen_where_the_truth_puts_them(tmp_path):
    sim, _ = simulate_case(CEO2_TILTED, tmp_path)
    valid = valid_pixels(sim.data, sim.geometry.detector.mask.astype(bool))
    seen = seen_rings(sim.data, valid, frame_of(sim.geometry), width_px=1.0)
    counted = counted_rings(seen)
    u_true, tth = _truth_radii(sim, seen)
    k = explained_by(seen, tth, 1.0)
    # Every ring counted is a CeO2 ring, found within a few hundredths of a pixel of the
    # truth (half a pixel where a module gap runs along the ring for a few sectors).
    assert counted.sum() >= 10
    assert np.all(k[counted] >= 0)
    error = np.abs(seen.u_px[counted] - u_true[k[counted]])
    assert np.median(error) < 0.02 and error.max() < 0.5
    assert np.all(seen.coverage[counted] > 0.5)
    # The simulation's hot pixels make no ring (unclipped, they stood out at an SNR in the
    # thousands): every strong peak of the profile is a CeO2 ring.
    assert np.all(k[seen.snr >= 20] >= 0)


#: Si at 6.5 keV, 9.5 mm from a detector tilted by 21°: towards 2θ = 90° a pixel spans many
#: bins of u, so the far bins hold a few pixels each (robustness benchmark, seed 4).
SI_STEEP = dict(calibrant="Si", pixel_size_um=[73.24, 73.24], shape=[1024, 1024],
                energy_kev=6.4646, distance_mm=9.5, center_px=[508.0, 513.0], tilt_deg=21.3,
                tilt_plan_rotation_deg=-8.2, peak_counts=20000.0, width_px=1.5, hot_pixels=100,
                seed=4)


def test_hot_pixels_in_sparse_bins_make_no_rings(tmp_path):
    """A hot pixel alone in a bin of a few pixels is never 6σ from their mean: judged
    against its neighbouring bins it is clipped. Before, seven hot pixels between 84° and
    89° were counted as rings at an SNR of 24 000–77 000, and a correct fit on the three
    Si rings was refused for the rings it left unexplained."""
    sim, _ = simulate_case(SI_STEEP, tmp_path)
    seen = seen_rings(sim.data, valid_pixels(sim.data), frame_of(sim.geometry), width_px=1.5)
    counted = counted_rings(seen)
    tth = ring_tth(load_calibrant("Si").d_spacing, sim.geometry.wavelength)
    k = explained_by(seen, tth, 1.0)
    assert list(k[counted]) == [0, 1, 2]


def test_neutral_frame_keeps_each_tilted_ring_whole(tmp_path):
    """Without any geometry, the rings of a 5° tilted detector come out one radius each:
    proportional to the truth's (the distance is unknown), never split in two."""
    sim, _ = simulate_case(CEO2_TILTED, tmp_path)
    valid = valid_pixels(sim.data, sim.geometry.detector.mask.astype(bool))
    _, seen, counted = neutral_measure(sim.data, valid, sim.geometry.detector)
    truth = seen_rings(sim.data, valid, frame_of(sim.geometry), width_px=1.0)
    u_true = truth.u_px[counted_rings(truth)]
    u = np.sort(seen.u_px[counted])
    assert u.size == u_true.size
    scale = np.median(u / u_true)
    # First order in the tilt: within the tolerance the audit matches rings with.
    assert np.all(np.abs(u / scale - u_true) < MATCH_TOL_REL * u_true + 0.2)


SI_ARCS = dict(pixel_size_um=[50.0, 50.0], shape=[2048, 1024], calibrant="Si", energy_kev=113.0,
               distance_mm=107.0, center_px=[-245.0, 392.0], tilt_deg=4.8,
               tilt_plan_rotation_deg=-51.0, peak_counts=200.0, width_px=1.8, seed=5)


def test_neutral_frame_follows_the_drift_of_traced_arcs(tmp_path, monkeypatch):
    """Dense Si rings at 113 keV, arcs around a beam 245 px off a tilted detector: their
    common centre, sharpened without a drift, lands among their drifting centres, 10 px from
    the beam, where every ring smears over its neighbours. The traced arcs' own centres give
    the drift, and the frame started from it finds the beam within a few pixels and counts
    several times the rings. (The common centre now takes the drift itself, `blind.
    drifting_center`, and lands within 2 px of the beam: the frame's own drift is for the
    images where it does not.)"""
    from geocal_cli.core.rings import start
    from geocal_cli.core.rings.start import find_ring_ridges, ring_traces

    sim, _ = simulate_case(SI_ARCS, tmp_path)
    valid = valid_pixels(sim.data)
    ridges = find_ring_ridges(sim.data, valid)
    beam = np.array(frame_of(sim.geometry).beam_center())
    _, _, info = ring_traces(ridges, sim.data.shape, lambda msg: None)
    assert np.hypot(*(np.array(info["centre_vote_px"]) - beam)) < 2
    monkeypatch.setattr(start, "DRIFT_GAIN", np.inf)
    traces, _, info = ring_traces(ridges, sim.data.shape, lambda msg: None)
    centre = info["centre_vote_px"]
    assert np.hypot(*(np.array(centre) - beam)) > 8
    det = sim.geometry.detector
    frame, _, counted = neutral_measure(sim.data, valid, det, ridges=ridges, centre=centre,
                                        traces=traces)
    _, _, alone = neutral_measure(sim.data, valid, det, ridges=ridges, centre=centre)
    assert np.hypot(*(np.array(frame.beam_center()) - beam)) < 4
    assert counted.sum() >= 3 * alone.sum() > 0


def test_the_neutral_frame_never_ends_blurrier_than_it_measured(tmp_path, monkeypatch):
    """On a detector tilted by 10° the first-order drift overshoots: the refits blurred the
    profile (to 0.71 of the first one's signal, about the rings' common centre alone), and
    the last of them was kept."""
    import geocal_cli.core.rings.unfitted as unfitted

    sim, _ = simulate_case(dict(detector="Pilatus1M", calibrant="CeO2", energy_kev=30.0,
                                distance_mm=300.0, center_px=[250.3, 330.7], tilt_deg=10.0,
                                tilt_plan_rotation_deg=60.0, seed=2), tmp_path)
    valid = valid_pixels(sim.data, sim.geometry.detector.mask.astype(bool))
    signals = []
    measure = unfitted.seen_rings

    def spy(*args, **kwargs):
        seen = measure(*args, **kwargs)
        signals.append(float(seen.snr[counted_rings(seen)].sum()))
        return seen

    monkeypatch.setattr(unfitted, "seen_rings", spy)
    _, seen, counted = neutral_measure(sim.data, valid, sim.geometry.detector)
    assert len(signals) >= 2
    assert seen.snr[counted].sum() >= unfitted.BLURRED * max(signals)


def test_noise_has_no_ring_that_counts():
    det = pyFAI.detectors.detector_factory("Pilatus1M")
    for seed in range(3):
        data = np.random.default_rng(seed).poisson(40, det.shape).astype(np.int32)
        data[det.mask.astype(bool)] = -1
        valid = valid_pixels(data, det.mask.astype(bool))
        neutral = neutral_measure(data, valid, det)
        if neutral is not None:
            assert neutral[2].sum() == 0


def test_tolerance_grows_with_radius():
    assert tolerance_px(np.array([0.0]))[0] == 1.5
    assert tolerance_px(np.array([1000.0]))[0] == 3.5


@pytest.mark.parametrize("rows", [None, 5], ids=["mean profile", "sector profiles"])
def test_the_profile_noise_is_each_block_s_own_with_the_rings_left_out(rows):
    """`_clipped_sigma` on white noise whose σ steps from 1 to 4 halfway, under rings 50σ high
    and 3 bins wide every 10 bins, in blocks of unequal lengths (2001 bins, blocks of 200 and
    201): each half's σ within 20 % (a block keeps about 100 bins between the rings: its MAD
    scatters by about 15 %), the rings clipped out (left in, the halves read 1.9 and 6.9); a
    stack of sector profiles gets each row's own σ."""
    from geocal_cli.core.rings.seen import _clipped_sigma

    rng = np.random.default_rng(5)
    n = 2001
    scale = np.where(np.arange(n) < 1000, 1.0, 4.0)
    gain = np.ones(1) if rows is None else np.arange(1, rows + 1, dtype=float)
    noise = rng.normal(size=(gain.size, n)) * scale * gain[:, None]
    rings = np.zeros(n)
    for c in range(5, n, 10):
        rings[c - 1:c + 2] = 50 * scale[c]
    profile = noise + rings * gain[:, None]
    sigma = _clipped_sigma(profile[0] if rows is None else profile, 201, 1)
    sigma = np.atleast_2d(sigma)
    assert sigma.shape == (gain.size, n)
    for g, row in zip(gain, sigma):
        assert np.median(row[100:800]) == pytest.approx(1.0 * g, rel=0.2)
        assert np.median(row[1200:1900]) == pytest.approx(4.0 * g, rel=0.2)
