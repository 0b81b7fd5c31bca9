"""Is a calibration what the image shows? The checks that keep calib-ring from a confident
wrong answer.

A refinement can fit a consistent subset of rings with the wrong calibrant (LaB6's first two
rings on two CeO2 rings), the wrong wavelength (the distance absorbs it at small angles) or
noise (control points found on fluctuations). Each is caught by comparing the solution with
the rings the image shows, measured without the assignment (`seen.seen_rings`):

1. **Support.** The fit must rest on at least `min_rings` calibrant rings (rings the
   profile shows, or carrying `REST_POINTS` control points: five stray points on a second
   ring beside a real one are no second ring); the solution must
   explain at least `min_rings` of the profile's counted rings (those it predicts where the
   image shows them, whether or not they carry control points: a confirmation independent
   of the fit); and at least half of the control points must lie on calibrant rings that
   the profile shows (≥ `MIN_SNR` σ). Control points found on noise fail the last two. And
   the solution's own distance must score on the counted rings (as in rule 2) within
   `MIN_LEAD` rings of the calibrant's best distance: a fit that put the calibrant's rings
   on the wrong reflections, whose dense high orders then "explain" rings by chance, pays
   for every ring it predicts and the image lacks. Here reflections whose match windows
   overlap count as one predicted ring (`assign.assign_rings`, `merge_blends`): the
   profile cannot show them apart, and counted one by one they charged the right distance
   of a dense calibrant (silicon at 110 keV, corundum, vanadinite: hundreds of reflections
   on the detector) for every blend, so that a distance putting the rings among fewer
   reflections won, and the truth itself was refused. Every distance is scored on every
   reflection its rings reach, and the other distances are sought among the reflections
   the rings can be (`distance_scores`): where only a calibrant's high orders reach the
   detector, its first reflections alone explained them better at a longer distance than
   at the truth. Nor does a distance replace the solution's when it explains fewer rings
   precisely (within the error of the solution's own matches, at its own least-squares
   distance) than the solution does, or as many precisely and fewer in all: in
   a dense comb the weak reflections the image lacks charge the truth, while a distance
   that thins the comb out matches rings by chance, anywhere within the match windows
   (`distance_scores`). A hypothesis whose least-squares distance moves no ring beyond
   that error is the solution's own distance and scores as it does. A solution that
   explains fewer than
   `MIN_CLAIM` counted rings, or rests on fewer, must explain them all: two rings fit any
   calibrant at a distance of its choice, so a ring of the image left unexplained says the
   choice is wrong (a solution confirmed by more rings keeps another phase's rings as
   foreign). A ring the profile shows at a predicted radius confirms a fit of two rings
   only when the fit's control points find it too: under a wrong, strongly tilted geometry
   the profile's rings smear, and one of them falls on a prediction by chance. Finally, the
   solution must confirm (whatever the rings' width, `confirmed_any_width`) at least half
   the rings the given calibrant explains (at a distance of its choice) in the measurement
   without the fit (`neutral`): a right geometry measures its rings at least as sharply as
   a frame that knows neither the distance nor the tilt (on the robustness benchmark it
   refuses none of the 183 right fits), while a wrong tilt fitted to a few arcs blurs the
   others away.
2. **Calibrant.** Every candidate calibrant (pyFAI's list, the user's file) is matched to the
   profile's rings with its own best distance (`assign.assign_rings`, the blind search's
   scoring: +1.5 per ring explained, −0.5 per predicted ring in the observed range that is
   not seen, at the given wavelength), in two measurements of the rings: under the fit, and
   under a neutral frame built from the rings' own centres (a wrong fit distorts the
   former). Another calibrant replaces the given one when, in either measurement, it
   explains the rings the given one explains and more of them, with a score higher by what
   `MIN_LEAD` rings add (1.5 each): a score, not a count alone, because a calibrant with
   every hkl (LaB6) explains many rings of any pattern and pays for it in rings it predicts
   and the image lacks; and a replacement, because a second phase that is itself a
   calibrant (corundum beside ceria) explains other rings, not those of the given one.
   Where the given calibrant explains every ring of the fit's measurement, positions cannot
   do better and only intensities may replace it. Where it explains `VOUCH_RINGS` or more
   of them and leaves at most one, that measurement alone judges: a wrong fit blurs the
   rings measured under it and leaves few, while the neutral frame blurs those of a
   strongly tilted detector (Si on an Eiger2 1M tilted 20°: 14 of 15 rings under the right
   fit, 4 of 13 without it, where AgBh explained 10 and ended the search). The given
   calibrant's best distance is also sought with its unresolved reflections merged (as in
   rule 1), and the better score stands: counted one by one, the blends of a dense
   calibrant (vanadinite at 22 keV: 62 reflections under 21 rings) put it at a wrong
   distance with 17 of 21 rings, and silver behenate's sparse comb then "explained" 19 and
   replaced it at its true geometry. The others keep a penalty for every reflection, so a
   dense calibrant never wins a ranking for rings it does not resolve. Calibrants whose
   first rings agree within 0.2 % (LaB6 and its SRM variants) are one family and never
   compete. A phase under the calibrant (steel under CeO2) explains other rings, so its
   rings do not change the ranking; they are reported as foreign rings.
3. **Wavelength.** The final control points refitted with λ free. With the distance free
   too, λ moves a ring at u only through g(θ) = 1 / (cos² θ cos 2θ) − 1 ≈ 3θ² (a relative
   λ change δ moves it by u δ g(θ), the mean of which the distance absorbs), so λ rests on
   the spread Δg of g over the rings: 0.02 at 2θ ≤ 9°, 0.25 at 31°. A radial scale error
   of the detector ε (distortion, non-flatness, ring-profile asymmetry; `RADIAL_SYSTEMATIC`
   = 0.1 %) then biases λ by ε / Δg, which is added to the fit's 1σ. When that total fixes
   λ to better than `LAMBDA_DETERMINED`, a λ more than 5σ (and `LAMBDA_TOLERANCE`) from the
   given one refuses the fit, naming the λ that fits, if freeing λ also lowers the points'
   sum of squares by `LAMBDA_GAIN` times their variance (the likelihood-ratio test at the
   same 5σ, `chi2_drop`); otherwise the report says that only D·λ is determined, and how
   well. The 1σ alone is a quadratic view of a long, flat D·λ valley: hydrocerussite under
   Ag Kα, 3 resolved rings, and one control point on a ring at 28°, gave λ 2.9 % short at
   5.2σ, where the refit explained the points worse than the given λ. A refused fit (or a
   search that found none) may come from a wrong λ: the rings measured without a fit are
   matched over λ from half to twice the given one (`scan_wavelength`), and the refusal
   names the λ that explains more of them only when they sit well inside their match
   windows there (`SCAN_PRECISE`): chance matches of a dense calibrant spread over the
   windows at any λ.

Calibrants of one extinction class (CeO2, Au, Ni, Pt, NaCl: all face-centred cubic) draw the
same ring *ratios*: with the wavelength fixed only the nonlinearity of tan 2θ separates them,
which vanishes at small angles (high energy). Their ring *intensities* differ (CeO2's 200 is
weak, NaCl's 111 nearly absent): when two calibrants explain the rings equally by position,
the one whose m|F|² (from a CIF, or from the Cu Kα intensities pyFAI's calibrant files
tabulate for their first rings) matches the rings' integrated strengths is preferred. The
misfit is the rms of ln(observed / predicted) over the matched rings after a free scale and
a linear trend in 2θ (absorption, polarisation and Debye–Waller differences); the
prediction is m|F|² (1 + cos² 2θ) / (sin² θ cos θ) · cos 2θ, the powder Lorentz-polarisation
factor of a ring per unit arc and the flat detector's obliquity (Warren, *X-ray
Diffraction*, Dover 1990, ch. 4). The given calibrant loses a tie only to one that fits the
intensities `MISFIT_RATIO` times better and within `MISFIT_GOOD`, while its own misfit
exceeds `MISFIT_BAD`.

Rings are counted in the ranking when they stand `COUNT_SNR` σ above the profile's noise
over at least half of the azimuth with a width within a factor `WIDTH_RATIO` of the fit's
rings: weak, spotty, spiky or broad features near the beamstop edge or in a far corner then
count for no candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.rings.assign import (assign_rings, assignment_score, first_reflections,
                                          match_error_px, settled_distance)
from geocal_cli.core.rings.seen import SeenRings, explained_by

#: Control points that make a ring the profile does not show one the fit rests on
#: (`Audit.resting`).
REST_POINTS = 30
#: A profile ring matches a candidate's ring within MATCH_TOL_REL · u + MATCH_TOL_PX.
MATCH_TOL_REL = 0.002
MATCH_TOL_PX = 1.5
#: Profile rings counted for and against candidate calibrants: SNR and azimuthal coverage.
COUNT_SNR = 6.0
COUNT_COVERAGE = 0.5
#: Rings by which another calibrant must out-explain the given one to call it wrong, and
#: rings it must explain at all (two radii fit any calibrant at a distance of its choice).
MIN_LEAD = 2
MIN_CLAIM = 3
#: Rings the given calibrant explains under a fit, all but one of those counted there, for
#: that measurement alone to judge the calibrant (`Audit.better_calibrant`).
VOUCH_RINGS = 8
#: A ring is explained precisely (rule 1) within this many times the median distance of the
#: solution's matched rings from its predictions (4.5 × the median |error| of a Gaussian error
#: is 3σ), and never closer than `PRECISE_MIN_PX` nor wider than the match window.
PRECISE_FACTOR = 4.5
PRECISE_MIN_PX = 0.25
#: The given calibrant's other distances are sought from this factor beyond the fit's (rule
#: 1): a wrong assignment puts the rings on reflections √2, √3 … times out (a cubic
#: calibrant's aliases).
ALTERNATIVE_RANGE = 3.0
#: λ-free refit: relative 1σ below which λ counts as determined by the rings.
LAMBDA_DETERMINED = 0.01
#: Relative λ difference (beyond 5σ) that refuses the given wavelength.
LAMBDA_TOLERANCE = 0.003
#: Wavelengths, relative to the given one, that the scan tries and that a refusal may name
#: as the one to set: an energy off by more than a factor of two is no slip of a setting, and
#: a λ-free refit that slides that far along D·λ has matched other rings (Si at 72 keV
#: "fixed" at 1116 keV, hydrocerussite at 17.5 keV at 624 keV).
LAMBDA_RANGE = (0.5, 2.0)
#: Relative radial scale error of a real detector that no PONI models, for the λ check.
RADIAL_SYSTEMATIC = 1e-3
#: The fall of the control points' sum of squares, in units of their variance, that a λ
#: the rings fix must bring (`chi2_drop`): 25, the square of the 5σ its own 1σ must clear.
LAMBDA_GAIN = 25.0
#: Calibrants are one family when their first rings agree within this relative tolerance.
FAMILY_RTOL = 0.002
#: Counted rings are at most this factor wider or narrower (FWHM) than the fit's rings.
WIDTH_RATIO = 2.5
#: Intensity misfit (rms of ln ratios) above which the given calibrant's intensities are off,
#: and the factor by which another calibrant must do better to win a tie of positions.
MISFIT_BAD = 0.35
MISFIT_RATIO = 0.5
#: Intensity misfit the winner of a tie must reach itself (kinematic intensities of X-rays on
#: resolved rings reach 0.03–0.15; electrons' dynamical, blended rings do not).
MISFIT_GOOD = 0.25
#: Rings with known m|F|² that an intensity decision needs on each side (a scale and a
#: trend are fitted).
MIN_INTENSITY_RINGS = 5


@dataclass(frozen=True)
class CalibrantScore:
    """How well one calibrant explains the rings of the profile, at its own best distance.

    Attributes
    ----------
    name : str
    explained : int
        Counted profile rings it explains.
    counted : int
        Counted profile rings in all.
    score : float
        1.5 × explained − 0.5 × predicted rings in the observed range that are not seen.
    distance_px : float
        Its best perpendicular distance in pixels (NaN when it explains fewer than 2 rings).
    misfit : float
        Rms of ln(observed / predicted ring strength) over the explained rings whose m|F|² is
        known (see the module docstring); NaN for fewer than 3 such rings.
    misfit_rings : int
        How many rings that misfit rests on.
    rings : frozenset of int
        Which of the counted rings it explains (indices among them, in one measurement).
    precise : int
        For the given calibrant's best distance (`distance_scores`): counted rings it
        explains as precisely as the solution explains its own; −1 elsewhere.
    """

    name: str
    explained: int
    counted: int
    score: float
    distance_px: float
    misfit: float = np.nan
    rings: frozenset = frozenset()
    misfit_rings: int = 0
    precise: int = -1

    def describe(self) -> str:
        text = f"{self.name} ({self.explained} of {self.counted} rings"
        if np.isfinite(self.misfit):
            text += f", intensities within {100 * (np.exp(self.misfit) - 1):.0f} %"
        return text + ")"


@dataclass(frozen=True)
class WavelengthCheck:
    """The final control points refitted with λ free.

    Attributes
    ----------
    given : float
        The wavelength used, metres.
    fitted, sigma : float
        λ with λ free and its 1σ, metres, the detector's systematic radial error included
        (see the module docstring).
    sigma_fit : float
        The refit's own 1σ of λ, metres.
    determined : bool
        σ/λ below `LAMBDA_DETERMINED`: the rings fix λ, not only D·λ.
    consistent : bool
        The given λ agrees with the fitted one (within 5σ or `LAMBDA_TOLERANCE`), or λ is
        not determined, or freeing it explains the points no better (`LAMBDA_GAIN`).
    chi2_drop : float
        How far the points' sum of squares falls when λ is freed, in units of their
        variance (`chi2_drop`); inf when not measured.
    """

    given: float
    fitted: float
    sigma: float
    sigma_fit: float
    determined: bool
    consistent: bool
    chi2_drop: float = np.inf


#: Rings another wavelength must explain before a refusal names it.
MIN_SCAN_RINGS = 4
#: Median distance of those rings from their predictions, in match windows, at which a
#: refusal names the wavelength: matches by chance spread over the window (median about
#: half of it), real ones sit within their measurement error.
SCAN_PRECISE = 0.25


@dataclass(frozen=True)
class WavelengthScan:
    """The given calibrant matched to the profile's rings over a range of wavelengths, each
    with its own best distance (see the module docstring).

    Attributes
    ----------
    given, best : float
        The given λ and the λ that explains the most rings, metres.
    sigma : float
        1σ of `best` (least squares on the matched ring radii, the detector's radial
        systematic included), metres.
    explained_given, explained_best : int
        Counted rings explained at each.
    score_given, score_best : float
        Their scores (as `CalibrantScore.score`).
    error_best : float
        Median distance of the rings explained at `best` from the least-squares (D, λ)
        prediction, in match windows (`tolerance_px`).
    """

    given: float
    best: float
    sigma: float
    explained_given: int
    explained_best: int
    score_given: float
    score_best: float
    error_best: float

    @property
    def contradicts(self) -> bool:
        """The ring positions fix λ (the radial systematic included) more than 5σ from the
        given one, and the calibrant explains at least as many rings there, and
        `MIN_SCAN_RINGS` at least, and scores as well (the score alone let three rings with
        none missing, 4.5, name 6.01 keV for corundum drawn at 5.48 keV, and four rings name
        14.67 keV for LaB6 drawn at 13.91 keV, where five fit): within the
        tolerance of ring matching, a λ 10 % off may still match every ring of a moderate 2θ
        range at another distance, which the least squares on their positions does not. Three
        rings or fewer at the other λ prove nothing: their two ratios match some distance and
        wavelength by chance (a strongly tilted detector biases the ring radii measured
        without a geometry). Nor do rings matched anywhere within their windows
        (`SCAN_PRECISE`): Si drawn at 112.7 keV 107 mm from a detector the beam misses,
        its radii measured without a fit, matched 58 rings at 78.4 keV against 46 at the
        given energy, by chance at both (median 0.35 and 0.38 windows off); a wrong energy
        given for real rings leaves them 0.005–0.01 windows off the λ that fits."""
        return bool(self.explained_best >= max(self.explained_given, MIN_SCAN_RINGS)
                    and self.score_best >= max(self.score_given, MIN_SCAN_RINGS)
                    and self.error_best <= SCAN_PRECISE
                    and _lambda_off(self.given, self.best, self.sigma / self.given))

    def describe(self, calibrant: str) -> str:
        from geocal_cli.core.geometry.units import energy_from_wavelength

        return (f"the rings fit {calibrant} at λ = {self.best * 1e10:.5f} ± "
                f"{self.sigma * 1e10:.5f} Å ({energy_from_wavelength(self.best):.3f} keV; "
                f"{self.explained_best} rings), not at the given {self.given * 1e10:.5f} Å "
                f"({self.explained_given} rings): check the energy")


@dataclass(frozen=True)
class Audit:
    """What the image shows against what a calibration claims.

    Attributes
    ----------
    seen : SeenRings
    counted : ndarray of bool, shape (n,)
        Profile rings counted in the ranking (`COUNT_SNR`, `COUNT_COVERAGE`).
    explained : ndarray of int, shape (n,)
        Calibrant ring index explaining each profile ring under the fit, −1 for none.
    fit_rings : ndarray of int
        Calibrant rings carrying control points.
    fit_points : ndarray of int, shape like fit_rings
        Control points on each.
    supported : ndarray of bool, shape like fit_rings
        Which of them are rings of the profile.
    ranking : list of CalibrantScore
        Candidates, best first (the given calibrant included), each with its best score
        over the measurements.
    rankings : tuple of lists of CalibrantScore
        The ranking of each measurement of the rings (under the fit, without it).
    given : str
        Name of the calibrant used.
    wavelength : WavelengthCheck or None
        None when the wavelength was refined or the refit was not possible.
    fit_score : float
        The solution's own distance scored on the counted rings, blends merged
        (`distance_scores`).
    best_distance : CalibrantScore or None
        The given calibrant at its best distance on the same rings, scored the same way.
    fit_precise : int
        Counted rings the solution's distance explains precisely (`distance_scores`).
    scan : WavelengthScan or None
        The given calibrant over a range of wavelengths, on the profile's rings.
    """

    seen: SeenRings
    counted: np.ndarray
    explained: np.ndarray
    fit_rings: np.ndarray
    fit_points: np.ndarray
    supported: np.ndarray
    ranking: list
    rankings: tuple
    given: str
    wavelength: WavelengthCheck | None
    fit_score: float = np.nan
    best_distance: CalibrantScore | None = None
    fit_precise: int = 0
    scan: WavelengthScan | None = None

    @property
    def resting(self) -> np.ndarray:
        """Which fit rings the fit rests on (bool, shape like fit_rings): those the profile
        shows, and those carrying at least `REST_POINTS` control points (or a tenth of the
        fullest ring's, when that is fewer). A handful of stray points on a second ring
        beside a real one is no second ring: one ring fits any distance."""
        if self.fit_points.size == 0:
            return np.zeros(0, bool)
        enough = min(REST_POINTS, 0.1 * float(self.fit_points.max()))
        return self.supported | (self.fit_points >= enough)

    @property
    def foreign(self) -> np.ndarray:
        """Indices of counted profile rings that no calibrant ring explains."""
        return np.nonzero(self.counted & (self.explained < 0))[0]

    @property
    def _fitted_score(self) -> CalibrantScore | None:
        """The given calibrant at its best distance on the rings measured under the fit."""
        return next((s for s in self.rankings[0] if s.name == self.given), None) \
            if self.rankings else None

    @property
    def confirmed(self) -> int:
        """Counted rings of the profile that the fit explains."""
        return int(np.count_nonzero(self.counted & (self.explained >= 0)))

    @property
    def assignment_trusted(self) -> bool:
        """The solution's distance scores within `MIN_LEAD` rings of the best distance the
        given calibrant finds on the rings measured under it, or explains more of them
        precisely, or as many precisely and more in all (module docstring, rule 1)."""
        best = self.best_distance
        return best is None or best.explained < MIN_CLAIM \
            or not best.score >= self.fit_score + 1.5 * MIN_LEAD \
            or best.precise < self.fit_precise \
            or (best.precise == self.fit_precise
                and best.explained < self.confirmed)

    @property
    def confirmed_any_width(self) -> int:
        """Rings of the profile under the fit that it explains and that stand out
        (`COUNT_SNR`, `COUNT_COVERAGE`), whatever their width: the width window keeps broad
        features out of the ranking, where they would count for any candidate, but it is set
        by the strong rings and falls back to 2.5 px without two of them, which leaves out
        the broad weak rings of a lab source at 20 mm (6–9 px)."""
        stand_out = (self.seen.snr >= COUNT_SNR) & (self.seen.coverage >= COUNT_COVERAGE)
        return int(np.count_nonzero(stand_out & (self.explained >= 0)))

    @property
    def neutral(self) -> CalibrantScore | None:
        """The given calibrant on the rings measured without the fit (the last measurement
        ranked, when there are two), else None."""
        if len(self.rankings) < 2:
            return None
        return next((s for s in self.rankings[-1] if s.name == self.given), None)

    @property
    def better_distance_ratio(self) -> float | None:
        """When the assignment is not trusted: the given calibrant's best distance on the
        rings measured under the fit, over the fit's distance (a restart for the search:
        with a cubic calibrant a fit at √2 or √3 times the distance puts its rings on
        real ones); else None."""
        best = self.best_distance
        if self.assignment_trusted or not np.isfinite(best.distance_px) \
                or self.seen.distance_px <= 0:
            return None
        return float(best.distance_px / self.seen.distance_px)

    def score_of(self, name: str) -> CalibrantScore | None:
        return next((s for s in self.ranking if s.name == name), None)

    def better_calibrant(self, families: dict) -> tuple[CalibrantScore, CalibrantScore] | None:
        """Another calibrant that replaces the given one in some measurement of the rings
        (see the module docstring), else None. `families` maps a calibrant name to its
        family's name.

        Returns
        -------
        (replacement, given) : tuple of CalibrantScore, or None
            Both scored in the measurement where the replacement wins, so that the two
            counts compare. When measurements name different replacements, the one ranked
            first in `ranking` (the ranking the refusal reports): a wrong fit distorts the
            rings measured under it, and there an alias of the true calibrant (NaCl for
            CeO2: the same face-centred ring ratios) can be the one that replaces the given.
        """
        # Where the given calibrant explains every ring the fit's measurement counts, no
        # calibrant does better by positions; only intensities may still decide. Where it
        # explains many and all but one, that measurement judges alone (module docstring).
        fitted = self._fitted_score
        complete = fitted is not None and fitted.explained == int(self.counted.sum()) > 0
        found = []
        vouched = fitted is not None and fitted.explained >= VOUCH_RINGS \
            and fitted.counted - fitted.explained <= 1
        for ranking in self.rankings[:1] if vouched else self.rankings:
            better = replacement(ranking, self.given, families, by_positions=not complete)
            if better is not None:
                found.append((better, next(s for s in ranking if s.name == self.given)))
        if not found:
            return None
        order = {s.name: i for i, s in enumerate(self.ranking)}
        return min(found, key=lambda pair: order.get(pair[0].name, len(order)))

    def top(self, families: dict, n: int = 3) -> list:
        """The `n` best candidates, one per family."""
        return top_calibrants(self.ranking, families, n)


def replacement(ranking: list, given_name: str, families: dict,
                by_positions: bool = True) -> CalibrantScore | None:
    """In one measurement: the calibrant that explains the rings the given one explains
    (all but `MIN_LEAD` or a fifth of them) and clearly more (unless `by_positions` is
    False), or as many with clearly better intensities. A second phase, which explains
    other rings, is no replacement.

    Parameters
    ----------
    ranking : list of CalibrantScore
        One measurement's ranking (`rank_calibrants`).
    given_name : str
        The calibrant given.
    families : dict
        Calibrant name → family name (`calibrant_families`): a family never replaces its
        own members.
    by_positions : bool
        Whether more rings explained can replace the given calibrant (else intensities
        alone can).

    Returns
    -------
    CalibrantScore or None
    """
    given = next((s for s in ranking if s.name == given_name), None)
    if given is None:
        return None
    mine = families.get(given_name, given_name)
    slack = max(MIN_LEAD, len(given.rings) // 5)
    # Any calibrant matches two radii with a distance of its choice: claiming the rings
    # takes `MIN_CLAIM` of them.
    others = [s for s in ranking if families.get(s.name, s.name) != mine
              and s.explained >= MIN_CLAIM and len(given.rings - s.rings) <= slack]
    if not others:
        return None
    lead = 1.5 * MIN_LEAD
    for s in others if by_positions else ():
        # More rings explained, not a better score alone: with a handful of rings, the
        # penalty for a ring predicted and not seen is all that separates candidates.
        if s.score >= given.score + lead and s.explained > given.explained:
            return s
    # A tie of positions: the intensities decide, when they clearly do on enough rings.
    tied = [s for s in others if s.score > given.score - lead and np.isfinite(s.misfit)
            and s.misfit_rings >= MIN_INTENSITY_RINGS]
    if tied and np.isfinite(given.misfit) and given.misfit > MISFIT_BAD \
            and given.misfit_rings >= MIN_INTENSITY_RINGS:
        best = min(tied, key=lambda s: s.misfit)
        if best.misfit < min(MISFIT_RATIO * given.misfit, MISFIT_GOOD):
            return best
    return None


def top_calibrants(ranking: list, families: dict, n: int = 3) -> list:
    """The `n` best of a ranking (best first) that explain two rings or more, one per
    family (`calibrant_families`)."""
    out, taken = [], set()
    for s in ranking:
        fam = families.get(s.name, s.name)
        if fam not in taken and s.explained >= 2:
            taken.add(fam)
            out.append(s)
        if len(out) == n:
            break
    return out


def leading_given(ranking: list, given: str, families: dict) -> CalibrantScore | None:
    """The ranking's best (`top_calibrants`) when it is of the given calibrant's family,
    else None."""
    best = top_calibrants(ranking, families, 1)
    if best and families.get(best[0].name, best[0].name) == families.get(given, given):
        return best[0]
    return None


def ranking_text(ranking: list, families: dict) -> str:
    """'; the rings rank A (…), B (…), C (…)' for a refusal message, or ''."""
    top = top_calibrants(ranking, families)
    return "; the rings rank " + ", ".join(s.describe() for s in top) if top else ""


def tolerance_px(u: np.ndarray) -> np.ndarray:
    """Largest distance (px) between a profile ring and the calibrant ring explaining it."""
    return MATCH_TOL_PX + MATCH_TOL_REL * np.asarray(u, float)


def typical_fwhm(seen: SeenRings, default_px: float = 2.5) -> float:
    """The rings' FWHM (px) as the profile shows it: the median over its strong rings (SNR ≥
    20); with fewer than two, over the rings strong and whole enough to count
    (`COUNT_SNR`, `COUNT_COVERAGE`) if three are; else `default_px`. Control points' widths
    are no substitute: on weak rings noise inflates them. A weak pattern of broad rings (a
    lab doublet at 20 mm: FWHM 5–8 px) measured against the default would count the narrow
    edge of a beamstop's shadow and none of its rings."""
    strong = seen.snr >= 20
    if strong.sum() >= 2:
        return float(np.median(seen.width_px[strong]))
    whole = (seen.snr >= COUNT_SNR) & (seen.coverage >= COUNT_COVERAGE)
    return float(np.median(seen.width_px[whole])) if whole.sum() >= 3 else default_px


def counted_rings(seen: SeenRings) -> np.ndarray:
    """Profile rings strong, whole and ring-like enough to count for or against a calibrant:
    `COUNT_SNR`, `COUNT_COVERAGE`, and a width within `WIDTH_RATIO` of `typical_fwhm`.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    fwhm_px = typical_fwhm(seen)
    return ((seen.snr >= COUNT_SNR) & (seen.coverage >= COUNT_COVERAGE)
            & (seen.width_px >= fwhm_px / WIDTH_RATIO) & (seen.width_px <= fwhm_px * WIDTH_RATIO))


def ring_strength(mf2: np.ndarray, tth: np.ndarray) -> np.ndarray:
    """Predicted integrated strength in the azimuthal profile of rings of multiplicity ×
    |F|² `mf2` at 2θ `tth` (radians), up to a common scale (see the module docstring)."""
    theta = tth / 2
    lp = (1 + np.cos(tth) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    return mf2 * lp * np.cos(tth)


def intensity_misfit(observed: np.ndarray, predicted: np.ndarray, tth: np.ndarray) -> float:
    """Rms of ln(observed / predicted) after a free scale (and, from 5 rings on, a linear
    trend in 2θ), corrected for the fitted terms; NaN for fewer than 3 usable rings."""
    ok = (observed > 0) & (predicted > 0) & np.isfinite(predicted)
    if ok.sum() < 3:
        return np.nan
    x = np.log(observed[ok] / predicted[ok])
    cols = [np.ones(x.size)] + ([tth[ok] - tth[ok].mean()] if x.size >= 5 else [])
    a = np.stack(cols, 1)
    r = x - a @ np.linalg.lstsq(a, x, rcond=None)[0]
    return float(np.sqrt(np.sum(r**2) / (x.size - a.shape[1])))


def rank_calibrants(seen: SeenRings, counted: np.ndarray, candidates: dict,
                    wavelength: float, blends=()) -> list[CalibrantScore]:
    """Score every candidate calibrant on the counted rings, at its own best distance.

    Parameters
    ----------
    seen : SeenRings
    counted : ndarray of bool, shape (n,)
    candidates : dict[str, tuple]
        Calibrant name → (d-spacings in m, decreasing; multiplicity × |F|² per ring, NaN
        where unknown, or None).
    wavelength : float
        Metres.
    blends : collection of str
        Candidates (the given calibrant) whose best distance is also sought with the
        reflections the profile cannot resolve merged (`assign.assign_rings`,
        `merge_blends`), keeping the better score: see the module docstring, rule 2.

    Returns
    -------
    list of CalibrantScore
        Best first (by score, then by intensity misfit).
    """
    u = seen.u_px[counted]
    area = seen.area[counted]
    out = []
    for name, (d, mf2) in candidates.items():
        best, keep = _match(u, np.asarray(d, float), wavelength)
        if name in blends:
            merged, _ = _match(u, np.asarray(d, float), wavelength, merge_blends=True)
            if merged is not None and (best is None or merged.score > best.score):
                best = merged
        if best is None:
            out.append(CalibrantScore(name, 0, u.size, -np.inf, np.nan))
            continue
        k = best.ring_index
        hit = k >= 0
        misfit, n_misfit = np.nan, 0
        if mf2 is not None:
            tth = ring_tth(np.asarray(d, float)[keep][k[hit]], wavelength)
            mf2_k = np.asarray(mf2, float)[keep][k[hit]]
            misfit = intensity_misfit(area[hit], ring_strength(mf2_k, tth), tth)
            n_misfit = int(np.count_nonzero(np.isfinite(mf2_k) & (area[hit] > 0)))
        out.append(CalibrantScore(name, int(hit.sum()), u.size, best.score, best.distance_px,
                                  misfit, frozenset(np.nonzero(hit)[0].tolist()), n_misfit))
    out.sort(key=_rank_key, reverse=True)
    return out


def _match(u: np.ndarray, d: np.ndarray, wavelength: float, merge_blends: bool = False):
    """Best assignment of radii `u` (px) to the rings of d-spacings `d` (m) at one
    wavelength, each calibrant at the distance of its choice (`assign.assign_rings`, with
    `merge_blends` as it takes it).

    Returns
    -------
    assignment : Assignment or None
        Its `ring_index` indexes the rings kept (below 89° 2θ), None when none explains two.
    keep : ndarray of bool, shape like d
        The rings kept.
    """
    tth = ring_tth(d, wavelength)
    keep = _usable(tth)
    best = assign_rings(u, np.ones_like(u), tth[keep], tol_rel=MATCH_TOL_REL,
                        tol_px=MATCH_TOL_PX, n_best=1, merge_blends=merge_blends) \
        if u.size >= 2 and keep.any() else []
    return (best[0] if best else None), keep


def scan_wavelength(seen: SeenRings, counted: np.ndarray, d_spacing: np.ndarray,
                    wavelength: float) -> WavelengthScan | None:
    """Match a calibrant to the counted rings for λ from half to twice the given one.

    A 3 % grid, then 0.2 % steps around its best; then (D, λ) by least squares on the
    matched ring radii u = D tan(2 arcsin(λ / 2d)), with 1σ from the fit and the detector's
    radial systematic (module docstring, rule 3). Reflections the profile cannot resolve
    count as one ring (`assign.assign_rings`, `merge_blends`), at every λ alike: counted one
    by one, the blends of a dense calibrant charge the true λ for reflections the image
    cannot show apart (vanadinite drawn at 10.2 keV: 8.29 keV was named on 4 of 5 rings,
    which the true energy explains as well).

    Parameters
    ----------
    seen : SeenRings
    counted : ndarray of bool
    d_spacing : ndarray
        Metres, decreasing.
    wavelength : float
        The given λ, metres.

    Returns
    -------
    WavelengthScan or None
        None with fewer than three counted rings.
    """
    from scipy.optimize import least_squares

    u = seen.u_px[counted]
    d = np.asarray(d_spacing, float)
    if u.size < 3:
        return None

    def score(lam):
        m, keep = _match(u, d, lam, merge_blends=True)
        return (m.score, m, keep) if m is not None else (-np.inf, None, keep)

    coarse = wavelength * np.exp(np.arange(*np.log(LAMBDA_RANGE), 0.03))
    s_coarse = [score(lam)[0] for lam in coarse]
    centre = coarse[int(np.argmax(s_coarse))]
    fine = centre * np.exp(np.arange(-0.03, 0.0301, 0.002))
    results = [score(lam) for lam in fine]
    k = int(np.argmax([r[0] for r in results]))
    s_best, match, keep = results[k]
    s_given, given_match, _ = score(wavelength)
    if match is None:
        return None
    hit = match.ring_index >= 0
    u_hit, d_hit = u[hit], d[keep][match.ring_index[hit]]
    lam0 = fine[k]

    def resid(p):
        return p[0] * np.tan(2 * np.arcsin(np.minimum(p[1] * lam0 / (2 * d_hit), 1))) - u_hit

    fit = least_squares(resid, [match.distance_px, 1.0])
    lam_best = fit.x[1] * lam0
    dof = max(u_hit.size - 2, 1)
    s2 = np.sum(fit.fun**2) / dof
    try:
        cov = np.linalg.inv(fit.jac.T @ fit.jac) * s2
        rel_fit = np.sqrt(cov[1, 1]) * lam0 / lam_best
    except np.linalg.LinAlgError:
        rel_fit = np.inf
    rel = _lambda_rel_sigma(rel_fit, np.arcsin(np.minimum(lam_best / (2 * d_hit), 1)))
    n_given = int(np.count_nonzero(given_match.ring_index >= 0)) if given_match else 0
    return WavelengthScan(given=wavelength, best=float(lam_best), sigma=rel * lam_best,
                          explained_given=n_given, explained_best=int(hit.sum()),
                          score_given=float(s_given), score_best=float(s_best),
                          error_best=float(np.median(np.abs(fit.fun) / tolerance_px(u_hit))))


def _g(theta: np.ndarray) -> np.ndarray:
    """g(θ) = 1 / (cos² θ cos 2θ) − 1: how a ring moves with λ at a fixed D·λ (rule 3)."""
    return 1 / (np.cos(theta) ** 2 * np.cos(2 * theta)) - 1


def _lambda_rel_sigma(rel_fit: float, theta: np.ndarray) -> float:
    """Relative 1σ of a fitted λ: the fit's own, and the detector's radial systematic over the
    spread of g(θ) of the rings it rests on (rule 3); inf when they span no spread."""
    g = _g(np.asarray(theta, float))
    spread = float(np.ptp(g)) if g.size else 0.0
    return float(np.hypot(rel_fit, RADIAL_SYSTEMATIC / spread if spread > 0 else np.inf))


def _lambda_off(given: float, fitted: float, rel: float) -> bool:
    """λ is determined (relative 1σ `rel` below `LAMBDA_DETERMINED`) and the fitted one lies
    more than 5σ and `LAMBDA_TOLERANCE` from the given one (False for a NaN fit)."""
    return bool(rel < LAMBDA_DETERMINED
                and abs(fitted / given - 1) > max(5 * rel, LAMBDA_TOLERANCE))


def _usable(tth: np.ndarray) -> np.ndarray:
    """Rings that exist at this wavelength and meet a flat detector (below 89° 2θ)."""
    return np.isfinite(tth) & (tth < np.radians(89.0))


def _rank_key(s: CalibrantScore):
    return (s.score, -s.misfit if np.isfinite(s.misfit) else -np.inf)


def merge_rankings(*rankings: list) -> list[CalibrantScore]:
    """One ranking from several measurements of the same rings (e.g. under the fitted
    geometry and under the rings' common centre): each calibrant keeps its best score, so
    that a wrong fit, which distorts the rings measured under it, cannot hide the calibrant
    that explains them."""
    best: dict[str, CalibrantScore] = {}
    for ranking in rankings:
        for s in ranking:
            if s.name not in best or _rank_key(s) > _rank_key(best[s.name]):
                best[s.name] = s
    return sorted(best.values(), key=_rank_key, reverse=True)


def calibrant_families(candidates: dict, n_rings: int = 6) -> dict:
    """Name → family name: calibrants whose first `n_rings` d-spacings agree within
    `FAMILY_RTOL` share the family of the first of them (in the order given)."""
    families: dict[str, str] = {}
    heads: list[tuple[str, np.ndarray]] = []
    for name, (d, _) in candidates.items():
        d = np.asarray(d, float)[:n_rings]
        for head, hd in heads:
            m = min(d.size, hd.size)
            if m and np.all(np.abs(d[:m] / hd[:m] - 1) < FAMILY_RTOL):
                families[name] = head
                break
        else:
            heads.append((name, d))
            families[name] = name
    return families


def audit(seen: SeenRings, tth_fit: np.ndarray, fit_rings: np.ndarray, fit_points: np.ndarray,
          given: str,
          candidates: dict | None, wavelength: float,
          wavelength_check: WavelengthCheck | None,
          tth_kalpha2: np.ndarray | None = None) -> Audit:
    """Compare a calibration with the rings of the image.

    Parameters
    ----------
    seen : SeenRings
        Measured under the fitted geometry.
    tth_fit : ndarray, shape (m,)
        The calibrant's 2θ at the fitted wavelength, radians.
    fit_rings : ndarray of int
        Calibrant rings that carry control points.
    fit_points : ndarray of int, shape like fit_rings
        Control points on each.
    given : str
        The calibrant's name.
    candidates : dict[str, tuple] or None
        Calibrants to rank (as `rank_calibrants` takes them), the given one included.
    wavelength : float
        The wavelength of the fit, metres.
    wavelength_check : WavelengthCheck or None
    tth_kalpha2 : ndarray, shape (m,), optional
        2θ of the calibrant's Kα2 rings (a lab source's doublet): profile rings they explain
        and Kα1 does not are the resolved second line, neither counted nor foreign.

    Returns
    -------
    Audit
    """
    counted = counted_rings(seen)
    tol = float(np.median(tolerance_px(seen.u_px))) if seen.u_px.size else 1.5
    explained = explained_by(seen, tth_fit, tol)
    if tth_kalpha2 is not None:
        counted = counted & ~((explained < 0) & (explained_by(seen, tth_kalpha2, tol) >= 0))
    u_fit = seen.u_of(tth_fit[fit_rings])
    if seen.u_px.size:
        gap = np.abs(u_fit[:, None] - seen.u_px[None, :])
        supported = np.any(gap <= tolerance_px(u_fit)[:, None], axis=1)
    else:
        supported = np.zeros(u_fit.size, bool)
    ranking = rank_calibrants(seen, counted, candidates, wavelength, blends=(given,)) \
        if candidates else []
    fit_score, best_distance, fit_precise = distance_scores(seen, counted, tth_fit, given)
    return Audit(fit_score=fit_score, best_distance=best_distance, fit_precise=fit_precise,
                 seen=seen, counted=counted,
                 explained=explained, rankings=(ranking,), fit_rings=np.asarray(fit_rings, int),
                 fit_points=np.asarray(fit_points, int), supported=supported, ranking=ranking,
                 given=given, wavelength=wavelength_check)


def distance_scores(seen: SeenRings, counted: np.ndarray, tth_fit: np.ndarray,
                    given: str) -> tuple[float, CalibrantScore | None, int]:
    """The solution's distance and the given calibrant's best distance, scored on the
    counted rings measured under the fit, reflections whose match windows overlap merged
    into one predicted ring (module docstring, rule 1).

    Parameters
    ----------
    seen : SeenRings
        Measured under the fit.
    counted : ndarray of bool, shape (n,)
    tth_fit : ndarray, shape (m,)
        The calibrant's 2θ at the fitted wavelength, radians.
    given : str
        The calibrant's name.

    Returns
    -------
    fit_score : float
        `assign.assignment_score` at the fit's distance (−inf with fewer than 2 rings or
        no reflection below 89°).
    best : CalibrantScore or None
        The best distance: `assign.assign_rings`' hypotheses on the reflections from those a
        distance `ALTERNATIVE_RANGE` times the fit's puts the rings on, through those the
        fit puts them on at least, each scored as the fit is; None when none explains two
        rings. Its distance is settled by least squares on the rings it matches
        (`assign.settled_distance`), and its `precise` counts the rings it explains
        precisely there; a hypothesis settled where no ring moves beyond that precision is
        the fit's own distance and carries the fit's score.
    fit_precise : int
        The counted rings the fit's distance explains precisely: within `PRECISE_FACTOR`
        times the median distance of its matched rings from their predictions
        (`PRECISE_MIN_PX` at least, the match window at most). A dense comb's chance matches
        fall anywhere in the window, real rings within their measurement error: on CeO2 at
        94 keV (978 reflections, 219 counted rings) the truth explains every ring, 129 of
        them within 0.1 px, but pays for the weak reflections the image does not show, and
        a distance 1.85 times longer scored higher with 128 rings, only 3 within 0.1 px.
    """
    u = seen.u_px[counted]
    tth = tth_fit[_usable(tth_fit)]
    if u.size < 2 or not tth.size:
        return -np.inf, None, 0
    options = dict(tol_rel=MATCH_TOL_REL, tol_px=MATCH_TOL_PX, merge_blends=True)
    fit_score = assignment_score(u, tth, seen.distance_px, **options)
    # The other distances from the reflections that one `ALTERNATIVE_RANGE` times longer
    # would put the rings on, and at least through those the fit puts them on: with the beam
    # far off the detector, the rings may be a calibrant's 67th to 91st reflections, and the
    # blind search's first reflections (`first_reflections`) alone put them at a longer
    # distance, on lower orders, that then "explained" them better than the truth.
    tan_tth = np.tan(tth)
    first = int(np.searchsorted(tan_tth, u.min() / (ALTERNATIVE_RANGE * seen.distance_px)))
    last = max(first + first_reflections(u.size),
               int(np.searchsorted(tan_tth, 1.02 * u.max() / seen.distance_px, side="right")))
    found = assign_rings(u, np.ones_like(u), tth[first:last], reflections=last - first,
                         **options)
    window = MATCH_TOL_REL * u + MATCH_TOL_PX
    err_fit = match_error_px(u, tth, seen.distance_px)
    on = err_fit <= window
    precise = np.minimum(window, max(PRECISE_MIN_PX, PRECISE_FACTOR * float(
        np.median(err_fit[on])))) if on.any() else window
    fit_precise = int(np.count_nonzero(err_fit <= precise))
    if not found:
        return fit_score, None, fit_precise
    # Each scored as the fit is, on every reflection it reaches: the search scores them on
    # its window alone, which would not charge a distance for the reflections it predicts
    # past the window's end.
    scores = np.array([assignment_score(u, tth, h.distance_px, **options) for h in found])
    # Their precise matches at their own least-squares distances, as the fit's are at the
    # fit's.
    settled = np.array([settled_distance(u, tan_tth, h.distance_px, MATCH_TOL_REL, MATCH_TOL_PX)
                        for h in found])
    # Settled where no ring moves beyond its precision, a hypothesis is the fit's own
    # distance and scores as the fit does, whatever it scored where `assign_rings` left it
    # on its plateau (LaB6 at 87 keV tilted 31°, from its truth: 36 at 1158.3 px, where
    # fewer blended reflections go unclaimed, against the fit's 32 at 1150.1 px; settled at
    # 1150.6 px, it refused the truth). On a tie the fit's own comes first.
    own = ~np.any(np.abs(u[None, :] * (settled[:, None] / seen.distance_px - 1))
                  > precise, axis=1)
    scores = np.where(own, fit_score, scores)
    j = max(range(len(found)), key=lambda i: (scores[i], own[i]))
    best, distance = found[j], settled[j]
    hit = best.ring_index >= 0
    return fit_score, CalibrantScore(
        given, int(hit.sum()), int(u.size), float(scores[j]), distance,
        rings=frozenset(np.nonzero(hit)[0].tolist()),
        precise=int(np.count_nonzero(match_error_px(u, tth, distance) <= precise))), \
        fit_precise


def judge_wavelength(given: float, fitted: float, sigma_fit: float,
                     tth: np.ndarray, drop: float = np.inf) -> WavelengthCheck:
    """Classify a λ-free refit against the given wavelength.

    Parameters
    ----------
    given, fitted, sigma_fit : float
        The given λ, the refit's λ and its 1σ, metres.
    tth : ndarray
        2θ of the rings the refit rests on, radians.
    drop : float
        The likelihood-ratio statistic of freeing λ (`chi2_drop`); inf: not measured.

    Returns
    -------
    WavelengthCheck
    """
    rel_fit = sigma_fit / given if np.isfinite(sigma_fit) else np.inf
    rel = _lambda_rel_sigma(rel_fit, np.asarray(tth, float) / 2)
    return WavelengthCheck(given=given, fitted=fitted, sigma=rel * given, sigma_fit=sigma_fit,
                           determined=bool(rel < LAMBDA_DETERMINED),
                           consistent=not (_lambda_off(given, fitted, rel)
                                           and drop >= LAMBDA_GAIN),
                           chi2_drop=float(drop))


def chi2_drop(residual_given: np.ndarray, residual_free: np.ndarray, n_free: int) -> float:
    """The likelihood-ratio statistic of freeing λ: the fall of the sum of squared residuals
    from the fit at the given λ to the fit with λ free, over the same points, in units of
    the free fit's residual variance (Wilks, Ann. Math. Stat. 9, 60 (1938),
    doi:10.1214/aoms/1177732360; χ²₁ when λ is right).

    Parameters
    ----------
    residual_given, residual_free : ndarray, shape (n,)
        Each point's radial residual under each fit, pixels.
    n_free : int
        Parameters of the fit with λ free.

    Returns
    -------
    float
        Negative where the free fit explains the points worse (it stopped short in the D·λ
        valley); 0 with no degrees of freedom or no residual.
    """
    given = float(np.sum(np.square(residual_given)))
    free = float(np.sum(np.square(residual_free)))
    dof = np.size(residual_free) - n_free
    if dof <= 0 or free <= 0:
        return 0.0
    return (given - free) / (free / dof)


def energy_advice(given: float, fitted: float, certain: bool = True) -> str:
    """': check the energy' after a wavelength the rings fix instead of the given one (both
    in metres), or, not `certain` (a refit from a fit that may rest on the wrong
    reflections), ': a wrong energy, or rings assigned to the wrong reflections'; beyond
    `LAMBDA_RANGE` of it, why that wavelength is no energy to set: ', beyond any error of
    the energy: the rings fit the calibrant at no wavelength near the given one'."""
    if LAMBDA_RANGE[0] <= fitted / given <= LAMBDA_RANGE[1]:
        return ": check the energy" if certain else \
            ": a wrong energy, or rings assigned to the wrong reflections"
    return (", beyond any error of the energy: the rings fit the calibrant at no wavelength "
            "near the given one")


def _lambda_text(lam: float, sigma: float) -> str:
    from geocal_cli.core.geometry.units import energy_from_wavelength

    return (f"λ = {lam * 1e10:.5f} ± {sigma * 1e10:.5f} Å "
            f"({energy_from_wavelength(lam):.3f} keV)")


def fit_faults(a: Audit, min_rings: int) -> list[str]:
    """What the image says against the fit itself (rule 1 of the module docstring and the
    assignment's distance): too few rings, rings the profile does not show, a better
    distance for the calibrant, rings measured without the fit that it misses, unexplained
    rings of a fit on few. Empty for a fit the image confirms, which may still be refused
    for its calibrant or its wavelength (`refusal`).

    Parameters
    ----------
    a : Audit
    min_rings : int
        Calibrant rings the fit must rest on, each seen in the image's profile.

    Returns
    -------
    list of str
    """
    n_fit = int(a.fit_rings.size)
    n_seen = int(a.supported.sum())
    on_seen = a.fit_points[a.supported].sum() / max(a.fit_points.sum(), 1)
    confirmed = a.confirmed
    faults = []
    n_rest = int(np.count_nonzero(a.resting))
    if n_rest < min_rings:
        faults.append(f"the fit rests on {n_rest} calibrant ring(s), fewer than --min-rings "
                      f"{min_rings}" + (": one ring cannot tell which reflection it is, so the "
                                        "distance is a guess" if n_rest == 1 else ""))
    elif confirmed < min_rings or on_seen < 0.5:
        faults.append(f"the image does not show the solution's rings: {confirmed} ring(s) of "
                      f"its azimuthal profile confirm it, and {n_fit - n_seen} of the {n_fit} "
                      f"rings the fit rests on ({100 * (1 - on_seen):.0f} % of the control "
                      "points) are not in the profile: the control points are noise or "
                      "another pattern")
    elif not a.assignment_trusted:
        best = a.best_distance
        faults.append(f"{a.given} at another distance explains the image's rings better "
                      f"({best.explained} of {best.counted}, score {best.score:.1f}) than "
                      f"the solution (score {a.fit_score:.1f}): the rings are assigned to the "
                      "wrong reflections")
    elif a.neutral is not None and 2 * a.confirmed_any_width < a.neutral.explained:
        faults.append(f"measured without the fit, {a.given} explains "
                      f"{a.neutral.explained} of the image's rings, and the solution only "
                      f"{a.confirmed_any_width}: its tilt or its ring assignment is wrong")
    elif min(confirmed, n_rest) < MIN_CLAIM and a.foreign.size:
        faults.append(f"the solution rests on {n_rest} and explains {confirmed} of the image's "
                      f"rings, and leaves {a.foreign.size} unexplained: two rings fit any "
                      "calibrant at a distance of its choice, and a ring the choice does not "
                      "explain says it is wrong")
    return faults


def refusal(a: Audit, families: dict, min_rings: int) -> str | None:
    """Why the audited calibration must be refused, or None when it stands.

    Parameters
    ----------
    a : Audit
    families : dict
        Calibrant name → family name (`calibrant_families`).
    min_rings : int
        Calibrant rings the fit must rest on, each seen in the image's profile.

    Returns
    -------
    str or None
        What is wrong with the solution (`fit_faults`), then what the data say instead (the
        wavelength and the calibrants that fit), for the user to act on.
    """
    faults = fit_faults(a, min_rings)
    instead = []
    if a.scan is not None and a.scan.contradicts:
        instead.append(a.scan.describe(a.given))
    replaced = a.better_calibrant(families)
    if replaced is not None:
        better, given = replaced
        alone = leading_given(a.rankings[-1], a.given, families) if len(a.rankings) > 1 \
            else None
        if alone is not None:
            # Only the rings measured under the fit name another calibrant: a wrong fit
            # distorts them, and the user must hear which measurement says what (LaB6 at
            # 198 kV, refused as "the rings fit AgBh (14 of 27 rings), not LaB6", then
            # ranked LaB6 first on 116 rings without a word of why).
            instead.append(f"under the fit the rings fit {better.describe()}, not "
                           f"{given.describe()}, but measured without any fit they fit "
                           f"{alone.describe()} best: check the calibrant, or give a "
                           "--guess near the geometry")
        else:
            instead.append(f"the rings fit {better.describe()}, not {given.describe()}: "
                           "check the calibrant")
    w = a.wavelength
    if w is not None and not w.consistent and not (a.scan is not None and a.scan.contradicts):
        instead.append(f"the rings fix {_lambda_text(w.fitted, w.sigma)} with {a.given}, not "
                       f"the given {w.given * 1e10:.5f} Å ({100 * (w.fitted / w.given - 1):+.1f} %)"
                       + energy_advice(w.given, w.fitted))
    if not faults and not instead:
        return None
    return "; ".join(faults + [" — or ".join(instead)] if instead else faults) \
        + ranking_text(a.ranking, families)
