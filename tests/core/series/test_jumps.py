"""Jumps in a drifting series."""

import numpy as np

from geocal_cli.core.series.jumps import find_jumps


def test_a_jump_on_a_drift_is_found_where_it_is_and_nowhere_else():
    rng = np.random.default_rng(1)
    x = 500 + 0.02 * np.arange(30) + rng.normal(0, 0.003, 30)
    x[18:] += 3.0
    jumps = find_jumps(x, np.full(30, 0.003))
    assert [j.index for j in jumps] == [18]
    assert abs(jumps[0].move - 3.02) < 0.02


def test_noise_alone_gives_no_jump():
    rng = np.random.default_rng(2)
    for seed in range(20):
        x = rng.normal(0, 0.05, 50)
        assert find_jumps(x, np.full(50, 0.05)) == []


def test_missing_items_are_bridged():
    x = np.arange(12, dtype=float) * 0.1
    x[5] = np.nan
    x[8:] += 2
    assert [j.index for j in find_jumps(x)] == [8]


def test_too_short_a_series_is_not_judged():
    assert find_jumps(np.array([0.0, 5.0, 0.0])) == []
