"""What the refinement rounds learn from a round's residuals (`rounds.RingState.judge`): a
ring's weight against its median's offset and its number of points. The rounds on the real
ring another phase blends into are tests/real/test_real_data.py's MAR345 CeO2 + steel."""

import numpy as np

from geocal_cli.core.rings.controlpoints import ControlPoints
from geocal_cli.core.rings.rounds import RingState


def _points(offsets, scatters, counts, seed=0):
    """Control points of rings k = 0, 1, …: `counts[k]` points whose residuals scatter by
    `scatters[k]` px about `offsets[k]` px. Returns (ControlPoints, residuals)."""
    rng = np.random.default_rng(seed)
    ring = np.repeat(np.arange(len(counts)), counts)
    res = np.concatenate([rng.normal(o, s, n) for o, s, n in zip(offsets, scatters, counts)])
    n = ring.size
    chi = rng.uniform(-np.pi, np.pi, n)
    return ControlPoints(d1=np.zeros(n), d2=np.zeros(n), ring=ring, chi=chi,
                         snr=np.full(n, 20.0), width=np.full(n, 1.5)), res


def test_a_ring_whose_median_stands_apart_is_weighted_down():
    """Six rings centred on the fit within 0.05 px, one 0.15 px off (what a lens's
    ellipticity or a detector's non-flatness leaves) and one whose median sits 0.5 px off
    (another phase's ring inside its window, as CeO2's 533 beside ferrite's 222 on the
    MAR345 image): all keep their points; the last has its scatter widened by its distance
    from the others' medians, the others keep theirs as measured."""
    offsets = [0.0, 0.03, -0.04, 0.15, -0.5, 0.01, -0.02, 0.04]
    cp, res = _points(offsets, [0.4, 0.4, 0.4, 0.4, 0.5, 0.4, 0.4, 0.4], [1000] * 8)
    state = RingState.start(8, (1000, 1000))
    bad, _ = state.judge(cp, res, np.ones(res.size, bool))
    assert bad == []
    scatter = [1.4826 * np.median(np.abs(res[cp.ring == k])) for k in range(8)]
    for k in range(8):
        if k != 4:
            assert state.ring_sigma[k] == scatter[k]
    assert state.ring_sigma[4] > 2 * scatter[4]


def test_a_ring_of_a_few_points_is_not_measured():
    """A ring that kept two points has no scatter worth the name: it keeps the weight of an
    unmeasured ring (1), where the scatter floor gave it twenty times the others'."""
    cp, res = _points([0.0, 0.0, 0.0], [0.3, 0.3, 0.0], [500, 500, 2])
    state = RingState.start(3, (1000, 1000))
    state.judge(cp, res, np.ones(res.size, bool))
    assert 2 not in state.ring_sigma
    weights = state.weights(cp)
    assert np.all(weights[cp.ring == 2] == 1.0)
    assert weights[cp.ring == 2].max() < weights[cp.ring == 0].min()
