"""Oudin (2005) PET and FAO-56 extraterrestrial radiation against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sca2lstm.data.pet import extraterrestrial_radiation, oudin_pet


def test_radiation_at_52n_midsummer_by_hand():
    # phi = 52 deg = 0.907571 rad; J = 172: 2 pi J / 365 = 2.960843
    # dr = 1 + 0.033 cos(2.960843) = 1 + 0.033 * (-0.983709) = 0.967538
    # delta = 0.409 sin(2.960843 - 1.39) = 0.409 sin(1.570843) = 0.409000
    # ws = arccos(-tan(phi) tan(delta)) = arccos(-1.279942 * 0.433443) = arccos(-0.554782) = 2.158897
    # Re = 1440 / pi * 0.0820 * 0.967538 * (ws sin(phi) sin(delta) + cos(phi) cos(delta) sin(ws))
    #    = 36.3659 * (2.158897 * 0.788011 * 0.397692 + 0.615661 * 0.917519 * 0.831996)
    #    = 36.3659 * (0.676580 + 0.469973) = 41.695
    assert extraterrestrial_radiation(52.0, 172) == pytest.approx(41.695, abs=2e-3)


def test_radiation_at_52n_midwinter_by_hand():
    # J = 355: 2 pi J / 365 = 6.111043; dr = 1.032512; delta = 0.409 sin(4.721043) = -0.408985
    # ws = arccos(-1.279942 * (-0.433425)) = arccos(0.554758) = 0.982724
    # Re = 1440 / pi * 0.0820 * 1.032512 * (ws sin(phi) sin(delta) + cos(phi) cos(delta) sin(ws))
    #    = 38.8080 * (0.982724 * 0.788011 * (-0.397678) + 0.615661 * 0.917525 * 0.832012)
    #    = 38.8080 * (-0.307967 + 0.469991) = 6.288
    assert extraterrestrial_radiation(52.0, 355) == pytest.approx(6.288, abs=2e-3)


def test_radiation_fao56_example_8():
    # FAO-56 example 8: 20 deg S on 3 September (J = 246): Ra = 32.2 MJ m-2 d-1.
    assert extraterrestrial_radiation(-20.0, 246) == pytest.approx(32.2, abs=0.05)


def test_polar_night_has_no_radiation_and_no_pet():
    # 80 N on J = 355: -tan(phi) tan(delta) = 5.671 * 0.433419 = 2.458 > 1: the sun never rises, ws = 0.
    assert extraterrestrial_radiation(80.0, 355) == 0.0
    assert oudin_pet([10.0], 80.0, [355])[0] == 0.0
    # Polar day (80 N, J = 172): ws = pi, Re = 1440/pi * 0.082 * dr * pi sin(phi) sin(delta) > 0.
    re = extraterrestrial_radiation(80.0, 172)
    assert re == pytest.approx(1440 * 0.082 * 0.967538 * np.sin(np.deg2rad(80)) * np.sin(0.409), rel=1e-4)


def test_oudin_pet_by_hand_and_its_threshold():
    # 52 N, J = 172, T = 15 degC: PE = Re / 2.45 * (T + 5) / 100 = 41.695 / 2.45 * 0.20 = 3.4037 mm/d.
    # T = -5 and below: T + 5 <= 0 -> 0. Missing T -> missing PE (masked, never filled).
    got = oudin_pet([15.0, -5.0, -10.0, np.nan], 52.0, [172, 172, 172, 172])
    assert got[0] == pytest.approx(3.4037, abs=1e-3)
    assert got[1] == 0.0 and got[2] == 0.0 and np.isnan(got[3])
    # 52 N, J = 355, T = 0: 6.288 / 2.45 * 0.05 = 0.12833 mm/d.
    assert oudin_pet([0.0], 52.0, [355])[0] == pytest.approx(0.12833, abs=1e-4)


def test_oudin_pet_is_causal_and_vectorised():
    """Day t's PET depends on T(t) alone: changing later temperatures leaves earlier PET unchanged."""
    rng = np.random.default_rng(0)
    t = rng.normal(8, 6, 400)
    doy = (np.arange(400) % 365) + 1
    a = oudin_pet(t, 55.0, doy)
    t2 = t.copy()
    t2[200:] += 10
    b = oudin_pet(t2, 55.0, doy)
    np.testing.assert_array_equal(a[:200], b[:200])
    assert a.shape == (400,) and (a >= 0).all()
    one = np.array([oudin_pet([t[i]], 55.0, [doy[i]])[0] for i in range(0, 400, 37)])
    np.testing.assert_allclose(a[::37], one)
