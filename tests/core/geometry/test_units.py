import pytest

from geocal_cli.core.geometry.units import energy_from_wavelength, wavelength_from_energy, wavelength_from_voltage


def test_electron_wavelength_200kv_is_relativistic():
    # 2.5079 pm at 200 kV (the value pyxem uses for the Au cross-grating data).
    assert wavelength_from_voltage(200) * 1e12 == pytest.approx(2.5079, abs=1e-4)
    # The non-relativistic formula would give 2.742 pm: the correction must be present.
    assert wavelength_from_voltage(200) * 1e12 < 2.6


def test_xray_energy_round_trip():
    assert wavelength_from_energy(12.398419843) * 1e10 == pytest.approx(1.0, rel=1e-8)
    assert energy_from_wavelength(wavelength_from_energy(30.5)) == pytest.approx(30.5)


@pytest.mark.parametrize("bad", [0.0, -12.0])
def test_non_positive_inputs_raise(bad):
    with pytest.raises(ValueError):
        wavelength_from_energy(bad)
    with pytest.raises(ValueError):
        wavelength_from_voltage(bad)
