"""The audit's decisions on ring lists with a known truth: which calibrant, which wavelength."""

from dataclasses import replace

import numpy as np
import pytest

from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.rings.audit import (Audit, CalibrantScore, WavelengthScan,
                                         calibrant_families, chi2_drop, counted_rings,
                                         energy_advice, judge_wavelength, merge_rankings,
                                         rank_calibrants, refusal, replacement, ring_strength,
                                         scan_wavelength)
from geocal_cli.core.rings.seen import SeenRings
from geocal_cli.io.calibrants import candidate_calibrants

CANDIDATES = candidate_calibrants()


def _seen(calibrant: str, wavelength: float, distance_px: float, u_max: float = 0.0,
          extra_u=()):
    """The rings of a calibrant drawn at a distance: those with tabulated intensities, with
    strengths from them, and every other ring up to `u_max` px (median strength), plus rings
    of another phase at `extra_u`."""
    d, mf2 = CANDIDATES[calibrant]
    tth = ring_tth(d, wavelength)
    u_all = distance_px * np.tan(tth)
    keep = np.nonzero(np.isfinite(mf2) | (u_all <= u_max))[0]
    u = u_all[keep]
    strength = ring_strength(mf2[keep], tth[keep])
    area = np.where(np.isfinite(strength), strength, np.nanmedian(strength))
    u = np.r_[u, extra_u]
    area = np.r_[area, np.full(len(extra_u), np.median(area))]
    one = np.ones(u.size)
    empty = np.empty(0)
    return SeenRings(u_px=u, tth=np.arctan(u / distance_px), snr=100 * one, coverage=one,
                     width_px=2 * one, area=area, offset=np.zeros((u.size, 2)),
                     profile_u=empty, profile=empty, noise=empty,
                     distance_px=distance_px)


def _audit(seen, given, wavelength, explained):
    ranking = rank_calibrants(seen, np.ones(seen.u_px.size, bool), CANDIDATES, wavelength)
    return Audit(seen=seen, counted=np.ones(seen.u_px.size, bool), explained=explained,
                 rankings=(ranking,),
                 fit_rings=np.arange(5), fit_points=np.full(5, 100), supported=np.ones(5, bool),
                 ranking=ranking, given=given, wavelength=None)


FAMILIES = calibrant_families(CANDIDATES)


def test_families_group_variants_only():
    assert FAMILIES["LaB6_SRM660c"] == FAMILIES["LaB6"]
    assert FAMILIES["Si_SRM640d"] == FAMILIES["Si"]
    assert FAMILIES["Au"] != FAMILIES["CeO2"]


@pytest.mark.parametrize("wrong", ["LaB6", "Si", "ZnO", "alpha_Al2O3", "Cr2O3"])
def test_another_pattern_is_named(wrong):
    """CeO2 rings at 30 keV: a calibrant of another pattern is refused, CeO2 named."""
    seen = _seen("CeO2", 0.4066e-10, 1200.0)
    a = _audit(seen, wrong, 0.4066e-10, np.full(seen.u_px.size, -1))
    better, given = a.better_calibrant(FAMILIES)
    assert FAMILIES[better.name] == "CeO2" and given.name == wrong
    assert "CeO2" in refusal(a, FAMILIES, 2)


def test_the_replacement_named_is_the_one_the_ranking_puts_first():
    """LaB6 given on CeO2 rings (the real Pilatus 1M image): under the wrong fit NaCl, an
    alias with CeO2's face-centred ring ratios, replaces LaB6; measured without the fit CeO2
    does and ranks first. The refusal names CeO2, counted in the measurement where it wins,
    beside LaB6 counted in the same one."""
    def score(name, explained, counted, value, misfit):
        return CalibrantScore(name=name, explained=explained, counted=counted, score=value,
                              distance_px=1000.0, misfit=misfit, misfit_rings=explained,
                              rings=frozenset(range(explained)))

    under_fit = [score("NaCl", 16, 26, 16.0, 1.5), score("LaB6", 11, 26, 2.0, 3.1)]
    neutral = [score("CeO2", 17, 18, 25.0, 0.12), score("NaCl", 17, 18, 25.0, 1.8),
               score("LaB6", 10, 18, 9.0, 2.5)]
    seen = _seen("CeO2", 0.4066e-10, 1200.0)
    a = replace(_audit(seen, "LaB6", 0.4066e-10, np.full(seen.u_px.size, -1)),
                rankings=(under_fit, neutral), ranking=merge_rankings(under_fit, neutral))
    better, given = a.better_calibrant(FAMILIES)
    assert (better.name, better.counted) == ("CeO2", 18)
    assert (given.name, given.explained, given.counted) == ("LaB6", 10, 18)
    assert "the rings fit CeO2 (17 of 18 rings" in refusal(a, FAMILIES, 2)
    assert "not LaB6 (10 of 18 rings" in refusal(a, FAMILIES, 2)


def test_a_replacement_only_under_the_fit_is_told_as_such():
    """LaB6 at 198 kV on a dense comb, a wrong fit on one ring (robustness case 498): under
    the fit AgBh explains more of the 27 rings measured there, but measured without any
    fit LaB6 explains 97 of 116 and ranks first. The refusal says which measurement says
    what, instead of "check the calibrant" followed by a ranking with LaB6 on top."""
    def score(name, explained, counted, value, misfit):
        return CalibrantScore(name=name, explained=explained, counted=counted, score=value,
                              distance_px=1000.0, misfit=misfit, misfit_rings=explained,
                              rings=frozenset(range(explained)))

    under_fit = [score("AgBh", 14, 27, 14.0, np.nan), score("LaB6", 8, 27, 3.0, 0.93)]
    neutral = [score("LaB6", 97, 116, 120.0, 0.61), score("Si", 98, 116, 110.0, 1.69),
               score("AgBh", 20, 116, 5.0, np.nan)]
    seen = _seen("LaB6", 0.0251e-10, 10000.0)
    a = replace(_audit(seen, "LaB6", 0.0251e-10, np.full(seen.u_px.size, -1)),
                rankings=(under_fit, neutral), ranking=merge_rankings(under_fit, neutral))
    assert a.better_calibrant(FAMILIES)[0].name == "AgBh"
    why = refusal(a, FAMILIES, 2)
    assert ("under the fit the rings fit AgBh (14 of 27 rings), not LaB6 (8 of 27 rings"
            in why)
    assert "measured without any fit they fit LaB6 (97 of 116 rings" in why
    assert "check the calibrant, or give a --guess" in why


@pytest.mark.parametrize("unexplained, replaced", [(1, False), (2, True)])
def test_rings_the_given_calibrant_explains_under_the_fit_outweigh_a_blurred_profile(
        unexplained, replaced):
    """Si on an Eiger2 1M tilted 20°, the beam at its edge (robustness case 451): under the
    right fit Si explains 14 of 15 rings and nothing explains more; the neutral frame blurs
    the tilted rings into 13, of which Si explains 4 and AgBh 10. That measurement no longer
    names a replacement, unless the rings under the fit leave two unexplained."""
    def score(name, explained, counted, value, rings):
        return CalibrantScore(name=name, explained=explained, counted=counted, score=value,
                              distance_px=1000.0, misfit=np.nan, misfit_rings=0,
                              rings=frozenset(rings))

    n = 14 + unexplained
    under_fit = [score("Si", 14, n, 20.5, range(14)), score("AgBh", 6, n, 5.0, range(6))]
    neutral = [score("AgBh", 10, 13, 14.0, range(10)), score("Si", 4, 13, 5.5, range(4))]
    seen = _seen("Si", 0.215e-10, 1590.0)
    a = replace(_audit(seen, "Si", 0.215e-10, np.full(seen.u_px.size, -1)),
                rankings=(under_fit, neutral), ranking=merge_rankings(under_fit, neutral))
    found = a.better_calibrant(FAMILIES)
    assert (found is not None) == replaced
    if replaced:
        assert found[0].name == "AgBh" and found[0].counted == 13


@pytest.mark.parametrize("alias", ["Au", "Ni", "Pt", "Al"])
def test_an_alias_is_told_apart_by_intensities(alias):
    """At 100 keV every face-centred cubic calibrant draws CeO2's ring ratios; the
    tabulated intensities decide, and only against the given calibrant's own."""
    seen = _seen("CeO2", 0.124e-10, 7000.0)
    a = _audit(seen, alias, 0.124e-10, np.arange(seen.u_px.size))
    assert a.better_calibrant(FAMILIES)[0].name == "CeO2"
    true = _audit(seen, "CeO2", 0.124e-10, np.arange(seen.u_px.size))
    assert true.better_calibrant(FAMILIES) is None


def test_a_foreign_phase_does_not_unseat_the_calibrant():
    """CeO2 with rings of another phase between its own (steel under the powder)."""
    seen = _seen("CeO2", 0.124e-10, 7000.0, extra_u=(450.0, 515.0, 645.0, 730.0, 790.0))
    explained = np.r_[np.arange(seen.u_px.size - 5), np.full(5, -1)]
    a = _audit(seen, "CeO2", 0.124e-10, explained)
    assert a.better_calibrant(FAMILIES) is None
    assert refusal(a, FAMILIES, 2) is None
    assert a.foreign.size == 5


@pytest.mark.parametrize("points, support, refused", [
    ((1224, 5), (True, False), True),      # five stray points the profile lacks
    ((1224, 5), (True, True), False),      # a weak ring, but one the image shows
    ((1224, 300), (True, False), False),   # a ring the profile misses, well covered
])
def test_stray_points_on_a_second_ring_are_no_support(points, support, refused):
    """A fit on one real ring plus five stray points on another (robustness case 210: Cr2O3
    at 80 mm instead of 44 mm, exit 0) rests on one ring, and one ring fits any distance:
    refused under --min-rings 2. A second ring the profile shows, or one with many points,
    is support."""
    seen = _seen("CeO2", 0.4066e-10, 1200.0)
    a = replace(_audit(seen, "CeO2", 0.4066e-10, np.arange(seen.u_px.size)),
                fit_rings=np.array([6, 40]), fit_points=np.array(points),
                supported=np.array(support))
    why = refusal(a, FAMILIES, 2)
    assert (why is not None) == refused
    if refused:
        assert why.startswith("the fit rests on 1 calibrant ring(s), fewer than --min-rings 2")


@pytest.mark.parametrize("factor", [0.75, 0.9, 1.0, 1.1, 1.25])
def test_the_scan_names_the_wavelength(factor):
    """Rings to 2θ = 30° fix λ: a wrong one is refused and the right one named to 0.1 %;
    the right one is not contradicted."""
    lam = 0.4066e-10
    seen = _seen("CeO2", lam, 1200.0, u_max=700.0)
    scan = scan_wavelength(seen, np.ones(seen.u_px.size, bool), CANDIDATES["CeO2"][0],
                           lam * factor)
    assert abs(scan.best / lam - 1) < 1e-3
    assert scan.contradicts == (factor != 1.0)


@pytest.mark.parametrize("given, explained, error, named", [
    (3, 3, 0.01, False), (3, 4, 0.01, True), (5, 4, 0.01, False), (46, 58, 0.35, False)])
def test_the_scan_names_a_wavelength_only_where_more_rings_fit(given, explained, error, named):
    """Corundum drawn at 5.48 keV beside the beam 78 px off a Pilatus 2M (robustness case
    11): measured about a wrong centre, its three rings fitted 6.01 keV as well as 5.48 keV,
    at a score of 4.5, and the refusal told the user to check an energy that was right.
    Three rings name no wavelength, whatever their score, nor do rings fewer than fit at the
    given one (LaB6 drawn at 13.91 keV, case 206: 4 rings at 14.67 keV against 5), nor rings
    matched anywhere in their windows (Si drawn at 112.7 keV, case 82: 58 rings at 78.4 keV
    against 46, a median 0.35 windows off)."""
    lam = 2.26360e-10
    scan = WavelengthScan(given=lam, best=2.06152e-10, sigma=0.00039e-10,
                          explained_given=given, explained_best=explained, score_given=4.5,
                          score_best=1.5 * explained, error_best=error)
    assert scan.contradicts == named


@pytest.mark.parametrize("factor, advice", [(0.9, ": check the energy"),
                                            (0.064, ", beyond any error of the energy")])
def test_a_refit_far_along_d_lambda_names_no_energy(factor, advice):
    """A λ-free refit of a fit on the wrong rings can slide along D·λ to a wavelength no
    setting gives (Si at 72 keV refitted to 1116 keV, robustness case 78): the refusal
    stands, but tells the user to check the energy only within a factor of two."""
    lam = 0.4066e-10
    seen = _seen("CeO2", lam, 1200.0, u_max=700.0)
    a = replace(_audit(seen, "CeO2", lam, np.arange(seen.u_px.size)),
                wavelength=judge_wavelength(lam, lam * factor, lam * 1e-5, seen.tth))
    why = refusal(a, FAMILIES, 2)
    assert f"({100 * (factor - 1):+.1f} %){advice}" in why, why
    assert ("check the energy" in why) == (factor == 0.9), why


@pytest.mark.parametrize("drop, consistent", [(-8.9, True), (24.0, True), (26.0, False)])
def test_a_lambda_off_by_5_sigma_must_also_explain_the_points_better(drop, consistent):
    """Hydrocerussite under Ag Kα (robustness case 163): the λ-free refit put λ 2.9 % short
    at 5.2σ, and explained the control points worse than the given λ (the drop of their sum
    of squares, -8.9 variances). The energy was right."""
    lam = 0.55941e-10
    tth = np.radians([4.1, 7.2, 8.1, 8.9, 9.8, 15.7, 17.9, 27.9])
    check = judge_wavelength(lam, 0.54345e-10, 0.00123e-10, tth, drop)
    assert check.determined and check.fitted < lam - 5 * check.sigma
    assert check.consistent == consistent


def test_the_drop_weighs_a_trend_against_the_points_noise():
    # 4000 points of 0.3 px noise: a ±0.04 px trend a wrong λ leaves clears the 5σ of the
    # test (n a² / 3 = 24 variances, and the noise's share), ±0.01 px does not; a free fit
    # worse than the given λ drops below zero.
    free = np.random.default_rng(0).normal(0.0, 0.3, 4000)
    trend = np.linspace(-1.0, 1.0, free.size)
    assert chi2_drop(free + 0.04 * trend, free, 7) > 25.0 > chi2_drop(free + 0.01 * trend, free, 7)
    assert chi2_drop(free, free + 0.04 * trend, 7) < 0


def test_a_refit_from_a_fit_on_maybe_wrong_reflections_names_both_causes():
    """Hydrocerussite at 22 keV assigned wrong (robustness case 256): the λ-free refit of a
    fit that lost rings fitted 2 % off, and the refusal told the user to check an energy
    that was right."""
    lam = 0.56422e-10
    assert energy_advice(lam, 1.02 * lam) == ": check the energy"
    assert energy_advice(lam, 1.02 * lam, certain=False) == \
        ": a wrong energy, or rings assigned to the wrong reflections"
    assert "beyond any error of the energy" in energy_advice(lam, 3 * lam, certain=False)


def test_small_angles_fix_only_distance_times_wavelength():
    lam = 0.124e-10
    seen = _seen("CeO2", lam, 7000.0)
    scan = scan_wavelength(seen, np.ones(seen.u_px.size, bool), CANDIDATES["CeO2"][0], lam * 0.9)
    assert not scan.contradicts
    check = judge_wavelength(lam, lam * 0.95, lam * 1e-4, seen.tth)
    assert not check.determined and check.consistent


@pytest.mark.parametrize("fit_rings, refused", [((3, 4), True), ((2, 3, 4), False)])
def test_a_two_ring_fit_is_not_confirmed_by_the_profile_alone(fit_rings, refused):
    """Pt on a Pilatus 2M tilted by 23°, the beam off the detector (robustness case 44): a
    fit on Pt's last two reflections at 38° of tilt, 16 px from the truth, was accepted with
    exit 0 because the profile under it showed a third ring at a predicted radius, and so
    kept two unexplained rings as another phase's. A fit resting on two rings must explain
    every ring of the image; one resting on three keeps the foreign rings."""
    seen = _seen("CeO2", 0.4066e-10, 1200.0, extra_u=(300.0, 420.0))
    n = seen.u_px.size - 2
    a = replace(_audit(seen, "CeO2", 0.4066e-10, np.r_[np.arange(n), -1, -1]),
                fit_rings=np.array(fit_rings), fit_points=np.full(len(fit_rings), 200),
                supported=np.ones(len(fit_rings), bool))
    why = refusal(a, FAMILIES, 2) or ""
    fault = f"the solution rests on 2 and explains {n} of the image's rings, and leaves 2"
    assert (fault in why) == refused, why


def _first_rings(seen: SeenRings, k: int) -> SeenRings:
    """The first `k` rings of `seen` alone."""
    return replace(seen, u_px=seen.u_px[:k], tth=seen.tth[:k], snr=seen.snr[:k],
                   coverage=seen.coverage[:k], width_px=seen.width_px[:k], area=seen.area[:k],
                   offset=seen.offset[:k])


@pytest.mark.parametrize("blurred", [False, True])
def test_a_fit_that_blurs_the_rings_the_image_shows_is_refused(blurred):
    """Corundum, weak and spotty, with the beam off the detector (robustness case 219): a fit
    at 42° of tilt put 4 arcs on the wrong reflections, 32 px from the truth, and confirmed 6
    rings under its geometry, where the measurement without the fit showed 15 of corundum's.
    A fit confirming all but two of them stands; one confirming fewer than half is refused."""
    lam = 0.4066e-10
    seen = _seen("alpha_Al2O3", lam, 1200.0)
    n = seen.u_px.size
    k = n // 2 - 1 if blurred else n - 2
    under_fit = _first_rings(seen, k)
    a = _audit(under_fit, "alpha_Al2O3", lam, np.arange(k))
    a = replace(a, rankings=a.rankings + (rank_calibrants(seen, np.ones(n, bool), CANDIDATES,
                                                          lam),))
    assert a.neutral.explained == n >= 8
    why = refusal(a, FAMILIES, 2)
    if blurred:
        assert why.startswith(f"measured without the fit, alpha_Al2O3 explains {n} of the "
                              f"image's rings, and the solution only {k}")
    else:
        assert why is None


def _audit_at(seen: SeenRings, given: str, wavelength: float, distance_px: float) -> Audit:
    """The audit of a fit at `distance_px` (untilted) on the rings `seen`, all counted."""
    from geocal_cli.core.rings.audit import MATCH_TOL_PX, distance_scores, explained_by

    tth = ring_tth(CANDIDATES[given][0], wavelength)
    tth = tth[np.isfinite(tth)]
    seen = replace(seen, tth=np.arctan(seen.u_px / distance_px), distance_px=distance_px)
    a = _audit(seen, given, wavelength, explained_by(seen, tth, MATCH_TOL_PX))
    fit_score, best, precise = distance_scores(seen, np.ones(seen.u_px.size, bool), tth, given)
    return replace(a, fit_score=fit_score, best_distance=best, fit_precise=precise)


def test_an_alias_distance_is_not_trusted():
    """CeO2 at 100 keV fitted at √3/2 of its distance puts 111 on the image's 200 and 222 on
    its 400: the right distance explains more rings and scores higher, and the fit is
    refused."""
    lam = 0.124e-10
    seen = _seen("CeO2", lam, 7000.0)
    a = _audit_at(seen, "CeO2", lam, 7000.0 * np.sqrt(3) / 2)
    assert np.count_nonzero(a.explained >= 0) < a.best_distance.explained
    assert not a.assignment_trusted
    assert "at another distance explains the image's rings better" in refusal(a, FAMILIES, 2)


def test_broad_weak_rings_count_and_a_beamstop_edge_does_not():
    """The profile of robustness case 73 (Si, Ag Kα doublet at 20 mm, weak broad rings):
    one ring reaches an SNR of 20, so the rings' typical width comes from those strong and
    whole enough to count, 7 px, not from the 2.5 px default, against which the beamstop
    shadow's sharp edge (two 1.4 px peaks at 33-36 px) counted and 9 of the 11 whole rings of
    Si did not."""
    width = np.array([1.5, 1.4, 7.2, 6.9, 6.5, 7.2, 5.5, 4.6, 7.2, 4.6, 7.3, 7.4, 4.6, 5.1, 7.8,
                      8.2, 5.1])
    snr = np.array([14.6, 13.8, 57.5, 14.3, 13.0, 12.9, 8.4, 7.7, 14.6, 9.1, 14.4, 14.6, 8.9,
                    10.0, 13.0, 17.3, 9.7])
    coverage = np.array([0.83, 0.72, 1.0, 0.97, 0.85, 0.79, 0.53, 0.12, 0.53, 0.19, 0.67, 0.69,
                         0.08, 0.14, 0.53, 0.92, 0.56])
    u = np.array([33.3, 35.6, 48.4, 80.2, 95.4, 118.1, 130.1, 149.9, 161.1, 179.7, 190.6,
                  209.1, 220.2, 239.3, 250.4, 270.8, 282.9])
    empty = np.empty(0)
    seen = SeenRings(u_px=u, tth=np.arctan(u / 364.0), snr=snr, coverage=coverage,
                     width_px=width, area=snr * width, offset=np.zeros((u.size, 2)),
                     profile_u=empty, profile=empty, noise=empty, distance_px=364.0)
    counted = counted_rings(seen)
    assert not counted[:2].any()
    assert counted[2:].sum() == 11


#: The 21 counted rings (px) of a vanadinite image with Ag Kα at 83 mm on a Pilatus 1M tilted
#: 12° (robustness case 29), measured under its true geometry: 62 reflections lie below the
#: last, many of them closer than the rings' 2.5 px width, so most rings are blends.
VANADINITE_BLENDS = np.array([29.65, 58.85, 78.86, 89.80, 97.10, 108.49, 116.46, 121.62,
                              128.81, 133.15, 143.11, 149.42, 153.37, 172.17, 191.83, 199.14,
                              206.43, 211.69, 220.61, 231.43, 241.28])


def _strong_rings(u: np.ndarray, distance_px: float) -> SeenRings:
    """Profile rings at radii `u` (px), all strong, whole and alike, measured at
    `distance_px`."""
    one = np.ones(u.size)
    return SeenRings(u_px=u, tth=np.arctan(u / distance_px), snr=100 * one, coverage=one,
                     width_px=2 * one, area=one, offset=np.zeros((u.size, 2)),
                     profile_u=np.empty(0), profile=np.empty(0), noise=np.empty(0),
                     distance_px=distance_px)


#: The 25 counted rings (px) of LaB6 at 32.6 keV with the beam 627 px above a Pilatus 2M CdTe,
#: 575.2 px away and untilted (robustness case 278), measured under its true geometry: its
#: 67th to 91st reflections.
LAB6_HIGH_ORDERS = np.array([632.73, 647.08, 654.67, 661.96, 669.31, 676.76, 684.57, 692.10,
                             707.75, 715.42, 723.36, 731.52, 747.64, 755.94, 772.59, 781.08,
                             789.64, 798.36, 807.05, 815.88, 824.84, 843.01, 852.22, 861.64,
                             871.07])


def test_high_orders_trust_their_own_distance():
    """Scored on the first 75 reflections only, the true distance got 13 for these 25 rings,
    and a distance of 750 px, putting them on lower orders, 25.5: the truth was refused. Every reflection the rings reach now counts for the fit's distance, and the
    other distances are sought among the reflections the rings can be."""
    u = LAB6_HIGH_ORDERS
    a = _audit_at(_strong_rings(u, 575.2), "LaB6_SRM660b", 0.38080e-10, 575.2)
    assert np.all(a.explained >= 0)
    assert a.best_distance.explained == u.size
    assert a.best_distance.distance_px == pytest.approx(575.2, rel=1e-3)
    assert a.assignment_trusted and a.fit_score == a.best_distance.score


#: The 32 counted rings (px) of LaB6 SRM 660a at 86.7 keV, 1150.14 px from a Pilatus 2M CdTe
#: tilted by 31° (robustness case 589), measured under its true geometry.
LAB6_TILTED = np.array([39.5, 56.0, 68.6, 79.3, 88.7, 97.2, 112.2, 119.1, 125.7, 131.9, 140.4,
                        149.0, 159.4, 164.4, 178.5, 183.0, 187.4, 196.0, 208.1, 216.0, 219.5,
                        227.2, 234.2, 244.7, 271.0, 315.5, 318.0, 328.8, 333.8, 400.3, 405.5,
                        417.7])


def test_a_distance_that_settles_on_the_fit_is_the_fit():
    """The best hypothesis of these rings lies at 1158.3 px, on its score plateau, where
    fewer blended reflections go unclaimed: 36 there against the fit's 32. Settled, it is the
    fit's own distance (every ring within its precision), and it refused the truth."""
    a = _audit_at(_strong_rings(LAB6_TILTED, 1150.14), "LaB6_SRM660a", 0.14302e-10, 1150.14)
    assert a.best_distance.distance_px == pytest.approx(1150.14, rel=1e-3)
    assert a.best_distance.score == a.fit_score
    assert a.assignment_trusted


def test_another_distance_is_scored_as_the_fit_is():
    """Five rings counted under the true geometry of CeO2 at 95 keV, 653 px from a MAR345
    tilted 34° (robustness case 196), span its 3rd to 730th reflection. The search scores its
    distances on a window of reflections: the best it found scored 3.0 there, but predicts
    reflections past the window's end that the image lacks. Reported, it carries the score
    the fit's own distance gets, on every reflection its rings reach."""
    from geocal_cli.core.rings.assign import assignment_score
    from geocal_cli.core.rings.audit import MATCH_TOL_PX, MATCH_TOL_REL, distance_scores

    u = np.array([44.63, 166.97, 636.48, 703.27, 1674.39])
    tth = ring_tth(CANDIDATES["CeO2"][0], 0.130579e-10)
    tth = tth[np.isfinite(tth) & (tth < np.radians(89))]
    _, best, _ = distance_scores(_strong_rings(u, 652.8), u > 0, tth, "CeO2")
    assert best.score == assignment_score(u, tth, best.distance_px, tol_rel=MATCH_TOL_REL,
                                          tol_px=MATCH_TOL_PX, merge_blends=True)


#: The 219 counted rings (px) of CeO2 at 94.3 keV, 1673 px from a Pilatus 2M CdTe tilted by
#: 14° (robustness case 284), measured under its true geometry: 978 reflections reach the
#: detector, and the weak ones among them do not show.
CEO2_DENSE = np.array([
    70.41, 81.33, 115.14, 135.10, 141.14, 163.11, 177.83, 200.11, 212.37, 231.50, 245.69,
    259.25, 284.55, 296.22, 307.94, 316.27, 329.73, 338.16, 350.38, 360.08, 370.05, 377.64,
    388.80, 395.65, 406.81, 414.92, 424.20, 430.68, 448.27, 457.32, 463.35, 473.18, 480.71,
    488.66, 495.56, 503.78, 510.42, 518.56, 524.03, 533.03, 539.20, 547.21, 553.34, 561.15,
    566.86, 574.84, 579.89, 588.32, 594.51, 601.60, 607.57, 614.68, 620.52, 632.37, 640.32,
    645.72, 652.93, 658.10, 670.50, 677.67, 682.21, 689.83, 695.06, 701.87, 707.32, 713.85,
    719.06, 725.67, 730.07, 737.41, 742.54, 749.08, 753.75, 760.62, 765.44, 772.08, 776.30,
    783.48, 788.19, 799.80, 811.15, 817.20, 821.32, 828.31, 832.95, 839.36, 843.74, 854.92,
    861.30, 865.31, 876.84, 887.59, 893.78, 898.59, 908.53, 915.26, 919.74, 925.96, 930.58,
    936.56, 941.44, 947.17, 951.05, 962.13, 968.25, 972.83, 983.30, 989.26, 993.10, 999.76,
    1004.25, 1010.11, 1015.02, 1024.99, 1030.91, 1034.77, 1041.35, 1045.68, 1051.65,
    1056.26, 1062.02, 1066.40, 1072.31, 1076.16, 1082.63, 1087.27, 1092.93, 1097.68,
    1107.71, 1113.53, 1117.34, 1123.81, 1128.13, 1134.09, 1138.27, 1144.33, 1148.90,
    1154.63, 1158.39, 1169.56, 1175.11, 1179.55, 1190.19, 1195.60, 1199.42, 1205.87,
    1210.49, 1216.13, 1220.61, 1226.38, 1230.68, 1236.69, 1240.48, 1246.93, 1251.27,
    1257.22, 1261.97, 1267.51, 1271.96, 1281.63, 1288.10, 1292.40, 1298.40, 1303.02,
    1308.74, 1313.19, 1319.06, 1322.90, 1329.43, 1333.75, 1339.79, 1344.39, 1354.58,
    1360.54, 1364.39, 1375.71, 1381.36, 1385.74, 1391.80, 1396.34, 1402.25, 1406.13,
    1417.24, 1423.21, 1428.15, 1438.56, 1444.25, 1448.18, 1454.81, 1459.48, 1465.39,
    1470.06, 1476.00, 1480.93, 1486.61, 1490.56, 1497.28, 1501.91, 1507.95, 1512.28,
    1523.23, 1529.36, 1533.35, 1540.12, 1544.83, 1555.47, 1561.72, 1566.41, 1576.58,
    1588.34, 1598.76, 1605.27, 1610.31, 1620.33, 1631.88, 1643.34, 1653.94, 1671.59, 1676.75])


def test_a_dense_comb_s_chance_matches_do_not_unseat_the_truth():
    """The truth explains all 219 rings, 129 within 0.1 px, but pays for the weak reflections
    the image lacks; 1.85 times further the comb thins out and, matching 128 rings anywhere
    within its match windows, scored higher: the truth was refused. That distance explains
    few rings as precisely as the truth explains its own, so the fit is trusted; the alias
    of a cubic calibrant (`test_an_alias_distance_is_not_trusted`) is not."""
    lam = 0.131441e-10
    a = _audit_at(_strong_rings(CEO2_DENSE, 1672.955), "CeO2", lam, 1672.955)
    assert a.best_distance.score >= a.fit_score + 3
    assert a.best_distance.precise < 20 < 120 < a.fit_precise
    assert a.assignment_trusted


#: The 26 counted rings (px) of LaB6 at 287.7 kV, 9067 px from a 512² detector tilted 5.8°
#: (robustness case 1), measured under the fit at √2 times that distance, which puts the
#: calibrant's rings on the image's even orders (h² + k² + l² = 2N) and leaves the odd ones
#: foreign.
LAB6_SQRT2 = np.array([44.192, 62.321, 76.375, 88.134, 98.490, 108.021, 124.491, 132.303,
                       139.386, 152.670, 158.914, 165.093, 176.214, 187.007, 215.890, 228.980,
                       237.365, 241.369, 260.757, 278.828, 292.400, 308.506, 317.836, 335.831,
                       419.855, 502.898])


def test_the_other_distance_s_precise_matches_are_counted_where_it_fits_best():
    """Every distance from 9060 to 9125 px scores the same on these rings, and the search's
    hypothesis sat at 9125.5 px, 0.6 % long, with its rings 0.15–1.7 px off: one of them
    within the fit's precision. The fit at √2 explains 14 precisely, and was trusted with
    11 of the image's rings left foreign. Settled by least squares, the truth explains
    25, and the fit is refused."""
    from geocal_cli.core.geometry.units import wavelength_from_voltage

    lam = wavelength_from_voltage(287.6758673129385)
    a = _audit_at(_strong_rings(LAB6_SQRT2, 12824.993), "LaB6", lam, 12824.993)
    assert a.best_distance.distance_px == pytest.approx(12824.993 / np.sqrt(2), rel=0.001)
    assert a.best_distance.precise > 20 > a.fit_precise
    assert not a.assignment_trusted
    assert "at another distance explains the image's rings better" in refusal(a, FAMILIES, 2)


def test_a_distance_as_precise_that_explains_fewer_rings_does_not_unseat_the_truth():
    """CeO2 at 94.9 keV on a MAR345 tilted 34° (robustness case 196), measured under its
    truth: 5 counted rings, all explained within 0.5 px, but the truth pays for the many
    weak reflections the image lacks (score −3.5). At 371 px CeO2 explains 4 of them,
    as precisely, with a score of 1.0, and the truth was refused. A distance that explains
    no more rings precisely must explain more in all."""
    from geocal_cli.core.geometry.units import wavelength_from_energy

    lam = wavelength_from_energy(94.94902425816169)
    u = np.array([44.628, 166.971, 636.476, 703.273, 1674.392])
    a = _audit_at(_strong_rings(u, 652.795), "CeO2", lam, 652.795)
    best = a.best_distance
    assert best.score >= a.fit_score + 3 and best.precise == a.fit_precise
    assert best.explained < np.count_nonzero(a.explained >= 0)
    assert a.assignment_trusted


@pytest.mark.parametrize("blends, replaced", [((), "AgBh"), (("vanadinite",), None)])
def test_the_given_calibrant_s_blends_are_merged(blends, replaced):
    """Counted reflection by reflection, vanadinite's blends cost its true distance (472.7
    px) so much that it scores best at 586 px with 17 of the 21 rings, and silver behenate's
    even comb, with 19, replaces it. Merged, vanadinite explains all 21 at its true
    distance."""
    u = VANADINITE_BLENDS
    seen = _strong_rings(u, 472.7)
    ranking = rank_calibrants(seen, u > 0, CANDIDATES, 0.55941e-10, blends=blends)
    better = replacement(ranking, "vanadinite", FAMILIES)
    assert (better and better.name) == replaced
    if not blends:
        return
    given = next(s for s in ranking if s.name == "vanadinite")
    assert (given.explained, given.distance_px) == (21, pytest.approx(472.7, rel=0.005))
