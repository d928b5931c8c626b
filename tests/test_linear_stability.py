"""Orr–Sommerfeld solver against Orszag (1971) and basic properties of its eigenmodes."""

from __future__ import annotations

import numpy as np
import pytest

from surrogate.solver.linear_stability import (
    OrrSommerfeldMode,
    chebyshev_diff_matrix,
    orr_sommerfeld,
)


@pytest.fixture(scope="module")
def mode_re10000() -> OrrSommerfeldMode:
    return orr_sommerfeld(10000.0, 1.0)


def test_chebyshev_diff_matrix_is_exact_for_polynomials() -> None:
    d, x = chebyshev_diff_matrix(12)
    np.testing.assert_allclose(d @ x**5, 5 * x**4, atol=1e-11)
    np.testing.assert_allclose(d @ np.ones_like(x), 0.0, atol=1e-12)


@pytest.mark.parametrize(
    ("re", "c_ref"),
    [
        (10000.0, 0.23752649 + 0.00373967j),  # Orszag (1971)
        (7500.0, 0.24989154 + 0.00223497j),
    ],
)
def test_orszag_eigenvalues(re: float, c_ref: complex) -> None:
    mode = orr_sommerfeld(re, 1.0)
    # 6 significant digits of both parts (|c.imag| ~ 3e-3, so 1e-8 is 6 digits there too)
    assert abs(mode.c.real - c_ref.real) < 1e-8
    assert abs(mode.c.imag - c_ref.imag) < 1e-8
    assert mode.growth_rate == pytest.approx(mode.alpha * mode.c.imag)
    assert mode.growth_rate > 0  # both are beyond Re_crit = 5772.22


def test_converged_in_resolution() -> None:
    c80 = orr_sommerfeld(10000.0, 1.0, n=80).c
    c120 = orr_sommerfeld(10000.0, 1.0, n=120).c
    assert abs(c80 - c120) < 1e-9


def test_subcritical_mode_is_damped() -> None:
    assert orr_sommerfeld(2000.0, 1.0, n=60).growth_rate < 0


def test_eigenfunction_boundary_conditions_and_normalisation(mode_re10000: OrrSommerfeldMode) -> None:
    walls = np.array([-1.0, 1.0])
    np.testing.assert_allclose(mode_re10000.phi(walls), 0.0, atol=1e-12)
    np.testing.assert_allclose(mode_re10000.dphi(walls), 0.0, atol=1e-12)
    y = np.linspace(-1.0, 1.0, 2001)
    assert np.max(np.abs(mode_re10000.dphi(y))) == pytest.approx(1.0, abs=1e-5)
    shear = complex(mode_re10000.d2phi(-1.0))
    assert shear.real > 0 and abs(shear.imag) < 1e-10 * abs(shear)
    # the Tollmien–Schlichting mode is even in yb: phi(yb) = phi(-yb)
    np.testing.assert_allclose(mode_re10000.phi(y), mode_re10000.phi(-y), atol=1e-8)


def test_eigenfunction_satisfies_orr_sommerfeld_equation(mode_re10000: OrrSommerfeldMode) -> None:
    from numpy.polynomial import chebyshev as cheb

    m = mode_re10000
    y = np.linspace(-0.95, 0.95, 41)
    d = [cheb.chebval(y, cheb.chebder(m.coefficients, k)) for k in range(5)]
    a2 = m.alpha**2
    lhs = (1 - y**2 - m.c) * (d[2] - a2 * d[0]) + 2.0 * d[0]
    rhs = (d[4] - 2 * a2 * d[2] + a2 * a2 * d[0]) / (1j * m.alpha * m.re)
    assert np.max(np.abs(lhs - rhs)) < 1e-6 * np.max(np.abs(lhs))


def test_velocity_is_divergence_free(mode_re10000: OrrSommerfeldMode) -> None:
    m = mode_re10000
    h = 1e-5
    x = np.linspace(0.0, 2 * np.pi, 9)[:, None]
    y = np.linspace(-0.99, 0.99, 23)[None, :]
    t = 3.0
    u_xp, _ = m.velocity(x + h, y, t)
    u_xm, _ = m.velocity(x - h, y, t)
    _, v_yp = m.velocity(x, y + h, t)
    _, v_ym = m.velocity(x, y - h, t)
    div = (u_xp - u_xm) / (2 * h) + (v_yp - v_ym) / (2 * h)
    assert np.max(np.abs(div)) < 1e-7
    u, v = m.velocity(x, y, t)
    assert u.shape == v.shape == (9, 23)
    assert np.isrealobj(u) and np.isrealobj(v)
    # no slip at the walls
    uw, vw = m.velocity(x, np.array([[-1.0, 1.0]]), t)
    np.testing.assert_allclose(uw, 0.0, atol=1e-12)
    np.testing.assert_allclose(vw, 0.0, atol=1e-12)


def test_velocity_grows_at_the_growth_rate(mode_re10000: OrrSommerfeldMode) -> None:
    m = mode_re10000
    x = np.linspace(0.0, 2 * np.pi / m.alpha, 64, endpoint=False)[:, None]
    y = np.linspace(-1.0, 1.0, 201)[None, :]
    amp0 = np.max(np.abs(m.velocity(x, y, 0.0)[0]))
    amp1 = np.max(np.abs(m.velocity(x, y, 100.0)[0]))
    assert amp1 / amp0 == pytest.approx(np.exp(100.0 * m.growth_rate), rel=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [{"re": -1.0, "alpha": 1.0}, {"re": 100.0, "alpha": 0.0}, {"re": 100.0, "alpha": 1.0, "n": 2}],
)
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        orr_sommerfeld(**kwargs)
