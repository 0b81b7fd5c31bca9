"""The whole range of geometries, searched without a start.

Where the starts the image suggests (a common centre, reference ellipses, arc circles) lead
nowhere, the blind search's last resorts measure a cost over every geometry a user can bring:
every beam centre within an image's size of the image, every distance from a twentieth to
twenty image diagonals, every tilt up to `MAX_TILT`. Differential evolution searches it (Storn
& Price 1997, doi:10.1023/A:1008202821328, as scipy.optimize.differential_evolution), the
distance on a log scale: a SAXS ring pattern and a wide-angle one differ by a factor of a
hundred.

Points are (beam centre d1, d2 in pixel indices, distance in pixels, pyFAI's rot1, rot2), as
`frame.beam_frame` reads them.
"""

from __future__ import annotations

import numpy as np

#: Largest tilt (radians) searched, beyond the 35° a detector is mounted at.
MAX_TILT = np.radians(50.0)
#: The distances searched, in units of the image's diagonal.
DISTANCE = (0.05, 20.0)
#: Searches ending within this factor of their smallest distance are dropped: there the
#: crowding near 90° is still sharper than any ring pattern in coarse bins (a Si image
#: tilted by 33° ranked two such ends above its true geometry).
WALL = 1.2
#: Searches ending within this many radians of `MAX_TILT` are dropped likewise: a start
#: tilted by the axis ratio of an outer ring (flattened by its cone angle too) ran to that
#: wall, where the rings crowd, and its runs outranked those at the truth (Si at 60 mm on a
#: Pilatus 1M tilted by 33°).
TILT_WALL = np.radians(2.0)
#: The differential evolution's population (per parameter) and generations: some 13 000
#: evaluations of the cost.
POPSIZE = 15
GENERATIONS = 100


def at_wall(x, min_dist: float) -> bool:
    """Whether a search point lies within `WALL` of the smallest distance `min_dist` (pixels)
    or within `TILT_WALL` of `MAX_TILT`."""
    return x[2] <= WALL * min_dist or max(abs(x[3]), abs(x[4])) >= MAX_TILT - TILT_WALL


def min_distance(shape: tuple[int, int]) -> float:
    """The smallest distance searched for an image of `shape`, pixels."""
    return DISTANCE[0] * float(np.hypot(*shape))


def search(cost, shape: tuple[int, int]) -> np.ndarray | None:
    """The point of least `cost` over the whole range for an image of `shape`.

    Parameters
    ----------
    cost : callable(ndarray of shape (5,)) -> float
        Takes a search point (distance in pixels).
    shape : (int, int)
        The image's shape.

    Returns
    -------
    ndarray, shape (5,), or None
        The best point found; None where it lies at a wall (`at_wall`): the search found
        the crowding there, not rings.
    """
    from scipy.optimize import differential_evolution

    h, w = shape
    found = differential_evolution(
        lambda y: cost(np.array([y[0], y[1], np.exp(y[2]), y[3], y[4]])),
        [(-h, 2.0 * h), (-w, 2.0 * w),
         tuple(np.log(np.array(DISTANCE) * float(np.hypot(h, w)))),
         (-MAX_TILT, MAX_TILT), (-MAX_TILT, MAX_TILT)],
        popsize=POPSIZE, maxiter=GENERATIONS, tol=1e-6, polish=False, init="sobol", seed=11)
    x = np.array([*found.x[:2], np.exp(found.x[2]), *found.x[3:]])
    return None if at_wall(x, min_distance(shape)) else x
