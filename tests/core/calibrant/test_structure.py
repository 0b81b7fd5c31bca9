import numpy as np
import pytest

from geocal_cli.core.calibrant.structure import powder_multiplicity, powder_rings, structure_factors


def _fcc(a=4.0782):
    fract = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]], float)
    coefs = np.tile([16.8819, 18.5913, 25.5582, 5.86, 0.4611, 8.6216, 1.4826, 36.3956, 12.0658], (4, 1))
    return fract, coefs


def test_fcc_extinctions_and_amplitude():
    fract, coefs = _fcc()
    hkl = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [2, 0, 0]])
    d = 4.0782 / np.sqrt((hkl**2).sum(1))
    f = structure_factors(hkl, d, fract, np.ones(4), np.zeros(4), coefs)
    assert abs(f[0]) < 1e-9 and abs(f[1]) < 1e-9
    # Four atoms in phase: |F| = 4 f(s).
    s2 = 1 / (4 * d[2] ** 2)
    a, b, c = coefs[0, :4], coefs[0, 4:8], coefs[0, 8]
    assert abs(f[2]) == pytest.approx(4 * (np.sum(a * np.exp(-b * s2)) + c), rel=1e-9)


def test_cubic_multiplicities():
    import gemmi

    sg = gemmi.SpaceGroup("F m -3 m")
    rots = np.array([op.rot for op in sg.operations()]) // gemmi.Op.DEN
    m = powder_multiplicity(np.array([[1, 1, 1], [2, 0, 0], [2, 2, 0], [3, 1, 1], [4, 2, 1]]), rots)
    assert list(m) == [8, 6, 12, 24, 48]


def test_powder_rings_merge_equal_d_and_drop_absences():
    d = np.array([2.0, 1.5, 2.0, 1.0])
    i = np.array([1.0, 0.0, 3.0, 2.0])
    d_ring, i_ring = powder_rings(d, i)
    assert list(d_ring) == [2.0, 1.0]
    assert list(i_ring) == pytest.approx([1.0, 0.5])
