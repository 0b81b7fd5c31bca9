"""A blind start from the image's azimuthal profile, for rings the tracing strategies misread.

Dense ring lists (LaB6 or CeO2 at high energy, 50–90 rings on a large detector) defeat the
traced-ring starts: touching rings join into one trace, faint ones are missed, and the radii
of the traces that remain align with a wrong stretch of the ring list. The azimuthal profile
under the neutral frame (`unfitted.neutral_frame`: the rings' common centre, the tilt their
own centres show) resolves every ring as a peak of flat-equivalent radius u = L tan 2θ / p
(`seen`), and matching those radii to the calibrant, the distance L its own free parameter
(`assign.assign_rings`), is the assignment the audit's calibrant ranking already trusts. This
start is that frame at the matched distance, with the neutral frame's tilt made a rotation.
"""

from __future__ import annotations

import numpy as np

from geocal_cli.core.geometry.frame import DetectorFrame, params_from_frame
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.rings.assign import assign_rings, assignable
from geocal_cli.core.rings.audit import MATCH_TOL_PX, MATCH_TOL_REL
from geocal_cli.errors import CalibrationError

#: Profile rings the match must explain, and the fraction of the counted ones.
MIN_EXPLAINED = 3
MIN_FRACTION = 0.5
#: Assignments proposed, and returned at most. The match only counts the profile's strong,
#: whole rings, and its score charges every predicted ring it does not see, weak reflections
#: included: the truth can score below distances where fewer predicted rings go unseen
#: (Al2O3 at 62 mm: 8 of 9 rings matched, twelfth by score). So the proposals are taken by
#: rings matched, and the refinement decides.
N_PROPOSALS = 12
N_HYPOTHESES = 3


def start_from_profile(seen, counted: np.ndarray, frame: DetectorFrame, detector,
                       wavelength: float, d_spacing: np.ndarray) -> list[tuple[dict, dict]]:
    """Starting geometries from the profile rings' radii matched to the calibrant.

    Parameters
    ----------
    seen : SeenRings
        Rings of the azimuthal profile under `frame` (`seen.seen_rings`).
    counted : ndarray of bool, shape (n,)
        The rings strong and whole enough to count (`audit.counted_rings`).
    frame : DetectorFrame
        The neutral frame the rings were measured under: its axes carry the tilt as slopes
        (e1 = p1 (1, 0, t1), e2 = p2 (0, 1, t2) at distance `seen.distance_px`).
    detector : pyFAI.detectors.Detector
    wavelength : float
        Metres.
    d_spacing : ndarray, shape (m,)
        Metres, decreasing.

    Returns
    -------
    list of (dict, dict)
        Per assignment hypothesis, most rings matched first (at most `N_HYPOTHESES`, each
        explaining at least `MIN_EXPLAINED` rings and `MIN_FRACTION` of the counted ones):
        the seven parameters (metres, radians) and the blind-search summary (strategy, rings
        matched and assigned, start distance).

    Raises
    ------
    CalibrationError
        Too few counted rings, no assignment explains enough of them, or none gives a
        detector geometry.
    """
    u = seen.u_px[counted]
    tth = ring_tth(np.asarray(d_spacing, float), wavelength)
    usable = assignable(tth, derived=True)
    found = assign_rings(u, np.ones_like(u), tth[usable], tol_rel=MATCH_TOL_REL,
                         tol_px=MATCH_TOL_PX, n_best=N_PROPOSALS) if u.size >= MIN_EXPLAINED else []
    found.sort(key=lambda h: (np.count_nonzero(h.ring_index >= 0), h.score), reverse=True)
    enough = [h for h in found if np.count_nonzero(h.ring_index >= 0)
              >= max(MIN_EXPLAINED, MIN_FRACTION * u.size)][:N_HYPOTHESES]
    if not enough:
        best = max((np.count_nonzero(h.ring_index >= 0) for h in found), default=0)
        raise CalibrationError(f"the calibrant explains {best} of the {u.size} rings of the "
                               "azimuthal profile")
    pix = np.array([detector.pixel1, detector.pixel2])
    # The neutral frame's slopes are tan τ at its own distance; at a matched distance the
    # rings' centres drift the same way for the tilt whose tangent scales with it.
    slope = np.array([frame.e1[2] / frame.e1[0], frame.e2[2] / frame.e2[1]]) / seen.distance_px
    beam = np.asarray(frame.beam_center(), float)
    starts = []
    for h in enough:
        try:
            params = params_from_frame(
                _tilted_frame(beam, slope * h.distance_px, h.distance_px, pix), detector)
        except ValueError:
            continue
        if not np.all(np.isfinite(params)):
            # The neutral frame's beam misses its plane: no start, not a crash.
            continue
        values = {**dict(zip(("dist", "poni1", "poni2", "rot1", "rot2", "rot3"), params)),
                  "wavelength": wavelength}
        hit = h.ring_index >= 0
        starts.append((values, {"strategy": "rings of the azimuthal profile",
                                "rings_traced": int(u.size),
                                "rings_assigned": sorted(int(usable[k]) for k in h.ring_index[hit]),
                                "start_distance_m": float(values["dist"])}))
    if not starts:
        raise CalibrationError("the azimuthal profile's rings give no detector geometry")
    return starts


def _tilted_frame(beam, tilt, dist_px: float, pix) -> DetectorFrame:
    """The frame at `dist_px` whose pixel axes climb out of the plane with slopes `tilt`
    (tan of the tilt along d1, d2) and whose beam hits pixel `beam`: the axes rotated
    rigidly by atan |tilt| about the in-plane line normal to the tilt's direction."""
    t = float(np.hypot(*tilt))
    rot = np.eye(3)
    if t > 0:
        axis = np.array([tilt[1], -tilt[0], 0.0]) / t
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        angle = np.arctan(t)
        rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    e1, e2 = rot @ np.array([pix[0], 0.0, 0.0]), rot @ np.array([0.0, pix[1], 0.0])
    origin = np.array([0.0, 0.0, dist_px * np.sqrt(pix[0] * pix[1])]) - beam[0] * e1 - beam[1] * e2
    return DetectorFrame(origin=origin, e1=e1, e2=e2)
