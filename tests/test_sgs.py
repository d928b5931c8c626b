"""Verification of the subgrid-scale models: discrete gradients, model formulas and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from surrogate.grid import ChannelGrid
from surrogate.solver.operators import StaggeredOperators
from surrogate.solver.poisson import PoissonSolver
from surrogate.solver.sgs import (
    SGS_MODELS,
    WALE,
    DynamicSmagorinsky,
    EddyViscosityModel,
    Smagorinsky,
    build_sgs_model,
    filter_width,
    velocity_gradient,
)

F64 = torch.float64
CPU = torch.device("cpu")
STRETCHED = ChannelGrid(8, 9, 8, lx=2.0, lz=1.0, stretching=1.5)
# a fixed, non-trivial velocity gradient (no symmetry, non-zero trace) in u_tau / h
GENERAL_GRADIENT = np.array([[0.3, 1.7, -0.4], [-0.9, -0.5, 0.8], [0.6, 1.1, 0.1]])


def _ops(grid: ChannelGrid, dtype: torch.dtype = F64) -> StaggeredOperators:
    return StaggeredOperators(grid, CPU, dtype)


def _t(a: np.ndarray, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.tensor(a, dtype=dtype)


def _mesh(grid: ChannelGrid, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    return np.meshgrid(x, y, z, indexing="ij")


def _random_field(grid: ChannelGrid, seed: int, dtype: torch.dtype = F64) -> tuple[torch.Tensor, ...]:
    """A random, smooth, divergence-free velocity field with a mean shear and wall-vanishing
    fluctuations (a few Fourier modes in x and z), projected with the exact Poisson solver."""
    rng = np.random.default_rng(seed)
    ops = _ops(grid)
    x, z = grid.x, grid.z

    def smooth(xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        X, Y, Z = _mesh(grid, xs, ys, zs)
        total = np.zeros_like(X)
        for kx in range(3):
            for kz in range(3):
                amp, m = rng.normal(), rng.integers(1, 4)
                phase_x, phase_z = rng.uniform(0, 2 * np.pi, size=2)
                total += (
                    amp
                    * np.cos(2 * np.pi * kx * X / grid.lx + phase_x)
                    * np.cos(2 * np.pi * kz * Z / grid.lz + phase_z)
                    * np.sin(np.pi * m * Y / 2) ** 2
                )
        return total

    y_u = _mesh(grid, grid.x_faces, grid.y, z)[1]
    u = smooth(grid.x_faces, grid.y, z) + 12.0 * y_u * (2 - y_u)
    v = smooth(x, grid.y_faces, z)
    v[:, 0], v[:, -1] = 0.0, 0.0
    w = smooth(x, grid.y, grid.z_faces)
    u, v, w = _t(u), _t(v), _t(w)
    phi = PoissonSolver(grid, CPU, F64).solve(ops.divergence(u, v, w))
    gx, gy, gz = ops.gradient(phi)
    return (u - gx).to(dtype), (v - gy).to(dtype), (w - gz).to(dtype)


# ---------------------------------------------------------------------------------------------
# velocity gradient
# ---------------------------------------------------------------------------------------------
def test_velocity_gradient_trace_equals_the_discrete_divergence():
    grid = ChannelGrid(8, 9, 8, lx=2.0, lz=1.0, stretching=2.0)
    ops = _ops(grid)
    gen = torch.Generator().manual_seed(1)
    u = torch.randn(grid.shape, generator=gen, dtype=F64)
    w = torch.randn(grid.shape, generator=gen, dtype=F64)
    v = ops.pad_faces(torch.randn(grid.nx, grid.ny - 1, grid.nz, generator=gen, dtype=F64))
    g = velocity_gradient(ops, u, v, w)
    assert g.shape == (3, 3, *grid.shape)
    trace = g[0, 0] + g[1, 1] + g[2, 2]
    div = ops.divergence(u, v, w)
    assert float((trace - div).abs().max()) <= 1e-14 * float(div.abs().max())


def test_velocity_gradient_is_exact_for_discrete_fourier_modes_and_wall_quadratics():
    """Exact discrete answers: staggered differences of sin/cos give 2 sin(k h / 2) / h, centred
    differences of the face averages cos(k h / 2) sin(k h) / h, and the three-point y derivative
    with zero wall values is exact for q(y) = y (2 - y)."""
    grid = ChannelGrid(8, 9, 8, lx=2.0, lz=1.0, stretching=1.5)
    ops = _ops(grid)
    kx, kz = 2 * np.pi * 2 / grid.lx, 2 * np.pi / grid.lz
    dx, dz = grid.dx, grid.dz
    x, y, z, yf, xf, zf = grid.x, grid.y, grid.z, grid.y_faces, grid.x_faces, grid.z_faces

    X, Y, Z = _mesh(grid, x, y, z)
    q, dq = Y * (2 - Y), 2 - 2 * Y
    Xf = _mesh(grid, xf, y, z)[0]
    Zf = _mesh(grid, x, y, zf)[2]
    _, Yf, _ = _mesh(grid, x, yf, z)
    u = np.cos(kx * Xf) * np.sin(kz * Z) * q
    v = np.sin(kx * X[:, :1]) * np.cos(kz * Z[:, :1]) * Yf * (2 - Yf)
    w = np.sin(kx * X) * np.sin(kz * Zf) * q
    v_bar = 0.5 * (Yf[:, 1:] * (2 - Yf[:, 1:]) + Yf[:, :-1] * (2 - Yf[:, :-1]))

    cx, cz = math.cos(kx * dx / 2), math.cos(kz * dz / 2)
    expected = np.empty((3, 3, *grid.shape))
    expected[0, 0] = -2 * math.sin(kx * dx / 2) / dx * np.sin(kx * X) * np.sin(kz * Z) * q
    expected[0, 1] = cx * np.cos(kx * X) * np.sin(kz * Z) * dq
    expected[0, 2] = cx * np.cos(kx * X) * math.sin(kz * dz) / dz * np.cos(kz * Z) * q
    expected[1, 0] = math.sin(kx * dx) / dx * np.cos(kx * X) * np.cos(kz * Z) * v_bar
    expected[1, 1] = np.sin(kx * X) * np.cos(kz * Z) * dq
    expected[1, 2] = -np.sin(kx * X) * math.sin(kz * dz) / dz * np.sin(kz * Z) * v_bar
    expected[2, 0] = math.sin(kx * dx) / dx * np.cos(kx * X) * cz * np.sin(kz * Z) * q
    expected[2, 1] = np.sin(kx * X) * cz * np.sin(kz * Z) * dq
    expected[2, 2] = np.sin(kx * X) * 2 * math.sin(kz * dz / 2) / dz * np.cos(kz * Z) * q

    g = velocity_gradient(ops, _t(u), _t(v), _t(w)).numpy()
    np.testing.assert_allclose(g, expected, rtol=0, atol=1e-12)


def _smooth_gradient_error(n: int) -> float:
    grid = ChannelGrid(n, n, n, lx=2.0, lz=1.5, stretching=1.5)
    ops = _ops(grid)
    a, c = 2 * np.pi / grid.lx, 2 * np.pi / grid.lz
    b = np.pi / 2

    def field_u(X, Y, Z):
        return np.sin(a * X) * np.cos(c * Z) * np.sin(b * Y) + np.sin(b * Y)

    def field_v(X, Y, Z):
        return np.cos(a * X) * np.sin(c * Z) * np.sin(b * Y) ** 2

    def field_w(X, Y, Z):
        return np.cos(a * X + 0.3) * np.sin(c * Z) * np.sin(2 * b * Y)

    X, Y, Z = _mesh(grid, grid.x, grid.y, grid.z)
    u = field_u(*_mesh(grid, grid.x_faces, grid.y, grid.z))
    v = field_v(*_mesh(grid, grid.x, grid.y_faces, grid.z))
    w = field_w(*_mesh(grid, grid.x, grid.y, grid.z_faces))
    exact = np.empty((3, 3, *grid.shape))
    exact[0] = [
        a * np.cos(a * X) * np.cos(c * Z) * np.sin(b * Y),
        b * np.cos(b * Y) * (np.sin(a * X) * np.cos(c * Z) + 1),
        -c * np.sin(a * X) * np.sin(c * Z) * np.sin(b * Y),
    ]
    exact[1] = [
        -a * np.sin(a * X) * np.sin(c * Z) * np.sin(b * Y) ** 2,
        np.cos(a * X) * np.sin(c * Z) * 2 * b * np.sin(b * Y) * np.cos(b * Y),
        c * np.cos(a * X) * np.cos(c * Z) * np.sin(b * Y) ** 2,
    ]
    exact[2] = [
        -a * np.sin(a * X + 0.3) * np.sin(c * Z) * np.sin(2 * b * Y),
        2 * b * np.cos(a * X + 0.3) * np.sin(c * Z) * np.cos(2 * b * Y),
        c * np.cos(a * X + 0.3) * np.cos(c * Z) * np.sin(2 * b * Y),
    ]
    g = velocity_gradient(ops, _t(u), _t(v), _t(w)).numpy()
    return float(np.abs(g - exact).max())


def test_velocity_gradient_converges_at_second_order_on_a_stretched_grid():
    errors = [_smooth_gradient_error(n) for n in (16, 32, 64)]
    orders = [math.log2(e0 / e1) for e0, e1 in zip(errors, errors[1:])]
    assert min(orders) > 1.8, (errors, orders)


# ---------------------------------------------------------------------------------------------
# Smagorinsky
# ---------------------------------------------------------------------------------------------
def test_filter_width_is_the_cube_root_of_the_cell_volume():
    ops = _ops(STRETCHED)
    delta = filter_width(ops)
    assert delta.shape == (1, STRETCHED.ny, 1)
    np.testing.assert_allclose(delta.view(-1).numpy() ** 3, STRETCHED.dx * STRETCHED.dy * STRETCHED.dz, rtol=1e-13)


def test_smagorinsky_formula_for_a_given_gradient():
    model = Smagorinsky(cs=0.13, van_driest=False)
    delta, damping = 0.07, 0.6
    s = 0.5 * (GENERAL_GRADIENT + GENERAL_GRADIENT.T)
    magnitude = math.sqrt(2 * (s * s).sum())
    g = _t(GENERAL_GRADIENT).view(3, 3, 1)
    assert float(model._nu_t_from_gradient(g, delta)[0]) == pytest.approx((0.13 * delta) ** 2 * magnitude, rel=1e-13)
    assert float(model._nu_t_from_gradient(g, delta, damping)[0]) == pytest.approx(
        (0.13 * delta * damping) ** 2 * magnitude, rel=1e-13
    )
    # pure shear du/dy = S: |S| = |S|
    shear = torch.zeros(3, 3, 1, dtype=F64)
    shear[0, 1] = -4.0
    assert float(model._nu_t_from_gradient(shear, delta)[0]) == pytest.approx((0.13 * delta) ** 2 * 4.0, rel=1e-13)


def _parabola(grid: ChannelGrid, amplitude: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """u = amplitude y (2 - y) (exact discrete du/dy = amplitude (2 - 2 y)), v = w = 0."""
    y = grid.y
    u = np.broadcast_to((amplitude * y * (2 - y))[None, :, None], grid.shape).copy()
    return _t(u), torch.zeros(grid.nx, grid.ny + 1, grid.nz, dtype=F64), torch.zeros(grid.shape, dtype=F64)


def test_smagorinsky_end_to_end_on_a_parabolic_profile():
    grid, nu, amplitude = STRETCHED, 1.0 / 180.0, 30.0
    ops = _ops(grid)
    u, v, w = _parabola(grid, amplitude)
    y = grid.y
    delta = (grid.dx * grid.dy * grid.dz) ** (1 / 3)
    shear = np.abs(amplitude * (2 - 2 * y))

    undamped = Smagorinsky(cs=0.1, van_driest=False).eddy_viscosity(ops, u, v, w, nu)
    assert undamped.shape == grid.shape
    expected = (0.1 * delta) ** 2 * shear

    def as_field(profile: np.ndarray) -> np.ndarray:
        return np.broadcast_to(profile[None, :, None], grid.shape)

    np.testing.assert_allclose(undamped.numpy(), as_field(expected), rtol=1e-12, atol=1e-15)

    # van Driest: both walls have u_tau = sqrt(nu U_first / d_first) = sqrt(nu amplitude (2 - y_0))
    u_tau = math.sqrt(nu * amplitude * (2 - y[0]))
    distance = np.minimum(y, 2 - y)
    damping = 1 - np.exp(-distance * u_tau / nu / 25.0)
    damped = Smagorinsky(cs=0.1, a_plus=25.0).eddy_viscosity(ops, u, v, w, nu)
    np.testing.assert_allclose(damped.numpy(), as_field(expected * damping**2), rtol=1e-12, atol=1e-15)
    assert float(damped.max()) < float(undamped.max())


def test_van_driest_damping_uses_the_friction_velocity_of_the_nearest_wall():
    grid, nu = ChannelGrid(4, 9, 4, stretching=2.0), 1.0 / 395.0
    ops = _ops(grid)
    profile = np.linspace(1.0, 2.0, grid.ny)
    profile[0], profile[-1] = 0.4, -3.0  # different shear at the two walls (sign irrelevant)
    u = _t(np.broadcast_to(profile[None, :, None], grid.shape).copy())
    u_tau_lower = math.sqrt(nu * 0.4 / grid.y[0])
    u_tau_upper = math.sqrt(nu * 3.0 / (2 - grid.y[-1]))
    y_plus = np.where(grid.y <= 1, grid.y * u_tau_lower, (2 - grid.y) * u_tau_upper) / nu
    expected = 1 - np.exp(-y_plus / 26.0)
    damping = Smagorinsky(a_plus=26.0).damping(ops, u, nu).view(-1).numpy()
    np.testing.assert_allclose(damping, expected, rtol=1e-13)
    assert np.all(Smagorinsky(van_driest=False).damping(ops, u, nu).numpy() == 1.0)


# ---------------------------------------------------------------------------------------------
# WALE
# ---------------------------------------------------------------------------------------------
def _wale_reference(g: np.ndarray, cw: float, delta: float) -> float:
    """Nicoud & Ducros (1999), eq. (13), evaluated directly with numpy."""
    g2 = g @ g
    sd = 0.5 * (g2 + g2.T) - np.eye(3) * np.trace(g2) / 3
    s = 0.5 * (g + g.T)
    sdsd, ss = (sd * sd).sum(), (s * s).sum()
    return (cw * delta) ** 2 * sdsd**1.5 / (ss**2.5 + sdsd**1.25)


def test_wale_formula_for_a_general_gradient():
    model = WALE(cw=0.5)
    value = float(model._nu_t_from_gradient(_t(GENERAL_GRADIENT).view(3, 3, 1), 0.03)[0])
    expected = _wale_reference(GENERAL_GRADIENT, 0.5, 0.03)
    assert expected > 0
    assert value == pytest.approx(expected, rel=1e-12)


def test_wale_closed_form_equals_the_tensor_formula_on_random_gradients():
    """The model evaluates sym(g @ g) as S S + r r^T (r the rotation vector, the isotropic part
    dropped); it must equal the direct 3 x 3 tensor formula for any gradient, divergence-free
    or not, over many orders of magnitude of the gradient."""
    rng = np.random.default_rng(7)
    g = rng.normal(size=(3, 3, 300)) * 10.0 ** rng.uniform(-3, 3, size=300)
    g[:, :, :100] -= np.eye(3)[:, :, None] * np.trace(g[:, :, :100])[None, None, :] / 3  # traceless
    nu_t = WALE(cw=0.4)._nu_t_from_gradient(_t(g), 0.05).numpy()
    expected = np.array([_wale_reference(g[:, :, n], 0.4, 0.05) for n in range(g.shape[2])])
    np.testing.assert_allclose(nu_t, expected, rtol=1e-12, atol=0)


def test_wale_vanishes_in_pure_shear_in_any_orientation():
    model = WALE()
    rng = np.random.default_rng(4)
    gradients = []
    for _ in range(5):
        a = rng.normal(size=3)
        b = rng.normal(size=3)
        b -= a * (a @ b) / (a @ a)  # a . b = 0 so that g = a b^T is a pure shear (g @ g = 0)
        gradients.append(np.outer(a, b))
    g = _t(np.stack(gradients, axis=-1))
    nu_t = model._nu_t_from_gradient(g, 0.1)
    scale = (0.325 * 0.1) ** 2 * float(g.abs().max())
    assert float(nu_t.abs().max()) < 1e-14 * scale
    # a general gradient with the same magnitude does not give zero
    assert float(model._nu_t_from_gradient(_t(GENERAL_GRADIENT).view(3, 3, 1), 0.1)[0]) > 1e-3 * scale


def test_wale_for_solid_body_rotation():
    """For a rotation with rate omega, S = 0 and S^d = Omega^2 - tr(Omega^2) I / 3, so that
    S^d_ij S^d_ij = 2 omega^4 / 3 and nu_t = (C_w Delta)^2 (2 / 3)^(1/4) |omega| (the model
    responds to rotation, unlike Smagorinsky)."""
    omega, delta = 2.5, 0.05
    rotation = np.array([[0.0, -omega, 0.0], [omega, 0.0, 0.0], [0.0, 0.0, 0.0]])
    axis = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    q, _ = np.linalg.qr(np.column_stack([axis, [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    tilted = q @ rotation @ q.T  # the same rotation rate about another axis
    g = _t(np.stack([rotation, tilted], axis=-1))
    nu_t = WALE()._nu_t_from_gradient(g, delta).numpy()
    expected = (0.325 * delta) ** 2 * (2 / 3) ** 0.25 * omega
    np.testing.assert_allclose(nu_t, expected, rtol=1e-12)
    assert float(Smagorinsky(van_driest=False)._nu_t_from_gradient(g, delta).abs().max()) < 1e-15


def test_wale_is_finite_and_homogeneous_of_degree_one_for_extreme_gradients():
    model = WALE()
    g = _t(GENERAL_GRADIENT).view(3, 3, 1)
    reference = float(model._nu_t_from_gradient(g, 1.0)[0])
    for scale in (1e-150, 1e-20, 1e20, 1e150):
        value = float(model._nu_t_from_gradient(g * scale, 1.0)[0])
        assert value == pytest.approx(reference * scale, rel=1e-12)
    assert float(model._nu_t_from_gradient(torch.zeros(3, 3, 2, dtype=F64), 1.0).abs().max()) == 0.0


def test_wale_end_to_end_vanishes_for_a_parallel_shear_flow():
    ops = _ops(STRETCHED)
    u, v, w = _parabola(STRETCHED, 20.0)
    nu_t = WALE().eddy_viscosity(ops, u, v, w, 1e-3)
    assert nu_t.shape == STRETCHED.shape
    assert float(nu_t.abs().max()) < 1e-14


# ---------------------------------------------------------------------------------------------
# dynamic Smagorinsky
# ---------------------------------------------------------------------------------------------
def _nyquist_field(grid: ChannelGrid, mean: float, eps: float, beta: float, delta: float):
    """Fields built from parabolas and the grid-scale (Nyquist) modes (-1)^k in z and (-1)^i in x,
    which the 1/4-1/2-1/4 test filter removes completely:

    u = (mean + eps (-1)^k) q(y),  v = beta (-1)^k q(y_f),  w = delta (-1)^i q(y),  q = y (2 - y).
    """
    nx, ny, nz = grid.shape
    sx = (-1.0) ** np.arange(nx)[:, None, None]
    sz = (-1.0) ** np.arange(nz)[None, None, :]
    q = (grid.y * (2 - grid.y))[None, :, None]
    qf = (grid.y_faces * (2 - grid.y_faces))[None, :, None]
    u = (mean + eps * sz) * q * np.ones((nx, 1, 1))
    v = beta * sz * qf * np.ones((nx, 1, 1))
    w = delta * sx * q * np.ones((1, 1, nz))
    return _t(u), _t(v), _t(w)


def _nyquist_coefficient(
    grid: ChannelGrid, mean: float, eps: float, beta: float, delta: float, ratio: float
) -> np.ndarray:
    """The Germano-Lilly coefficient of :func:`_nyquist_field`, computed by hand.

    Every quantity depends on (i mod 2, k mod 2) only, and the test filter of such a field is the
    average over the four parities; the discrete gradient is exact (parabolas) with the only
    non-zero entries du/dy = (mean + eps s_z) q', dv/dy = beta s_z q', dw/dy = delta s_x q'.
    """
    y = grid.y
    dq = 2 - 2 * y
    q = y * (2 - y)
    qf = grid.y_faces * (2 - grid.y_faces)
    q_bar = 0.5 * (qf[1:] + qf[:-1])  # cell-centre average of v's face profile
    width = (grid.dx * grid.dy * grid.dz) ** (1 / 3)
    alpha2 = ratio ** (4 / 3)
    coefficient = np.empty(grid.ny)
    for j in range(grid.ny):
        vel, strain, mag = [], [], []
        for sx in (1.0, -1.0):
            for sz in (1.0, -1.0):
                g = np.zeros((3, 3))
                g[0, 1] = (mean + eps * sz) * dq[j]
                g[1, 1] = beta * sz * dq[j]
                g[2, 1] = delta * sx * dq[j]
                s = 0.5 * (g + g.T)
                strain.append(s)
                mag.append(math.sqrt(2 * (s * s).sum()))
                vel.append(np.array([(mean + eps * sz) * q[j], beta * sz * q_bar[j], delta * sx * q[j]]))
        vel, strain, mag = np.array(vel), np.array(strain), np.array(mag)
        vel_f = vel.mean(axis=0)
        leonard = np.einsum("pi,pj->ij", vel, vel) / 4 - np.outer(vel_f, vel_f)
        s_f = strain.mean(axis=0)
        mag_f = math.sqrt(2 * (s_f * s_f).sum())
        model = 2 * width[j] ** 2 * ((mag[:, None, None] * strain).mean(axis=0) - alpha2 * mag_f * s_f)
        leonard -= np.eye(3) * np.trace(leonard) / 3
        model -= np.eye(3) * np.trace(model) / 3
        coefficient[j] = (leonard * model).sum() / (model * model).sum()
    return coefficient


@pytest.mark.parametrize("ratio", [2.0, math.sqrt(6.0)])
def test_dynamic_coefficient_has_the_hand_computed_value_for_grid_scale_modes(ratio):
    # even ny: no cell row sits on the centreline, where this field's gradient (and M) vanishes
    grid = ChannelGrid(8, 10, 6, lx=2.0, lz=1.0, stretching=1.5)
    ops = _ops(grid)
    params = dict(mean=3.0, eps=1.2, beta=0.7, delta=0.9)
    u, v, w = _nyquist_field(grid, **params)
    model = DynamicSmagorinsky(alpha_squared=ratio ** (4 / 3), clip=False)
    nu_t = model.eddy_viscosity(ops, u, v, w, 1e-3)
    expected = _nyquist_coefficient(grid, ratio=ratio, **params)
    assert np.all(np.isfinite(expected)) and np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(model.last_unclipped_coefficient.numpy(), expected, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(model.last_coefficient.numpy(), expected, rtol=1e-10, atol=1e-13)
    # nu_t = C Delta^2 |S| with |S| of the (exact) gradient
    g = velocity_gradient(ops, u, v, w)
    s = 0.5 * (g + g.transpose(0, 1))
    magnitude = torch.sqrt(2 * (s * s).sum(dim=(0, 1)))
    expected_nu_t = _t(expected).view(1, -1, 1) * filter_width(ops) ** 2 * magnitude
    torch.testing.assert_close(nu_t, expected_nu_t, rtol=1e-10, atol=1e-14)


def test_the_3d_test_filter_keeps_linear_rows_removes_the_row_nyquist_mode_and_spares_the_walls():
    from surrogate.solver.sgs import _test_filter_xyz, _test_filter_xz

    rows = torch.arange(7, dtype=torch.float64).view(1, -1, 1).expand(4, 7, 6)
    torch.testing.assert_close(_test_filter_xyz(rows.clone()), rows)  # linear in j: unchanged (walls too)
    sign = ((-1.0) ** torch.arange(7, dtype=torch.float64)).view(1, -1, 1).expand(4, 7, 6)
    assert float(_test_filter_xyz(sign.clone())[:, 1:-1].abs().max()) < 1e-12  # the row-to-row Nyquist mode goes
    torch.manual_seed(0)
    field = torch.randn(4, 7, 6, dtype=torch.float64)
    torch.testing.assert_close(_test_filter_xyz(field.clone())[:, [0, -1]], _test_filter_xz(field.clone())[:, [0, -1]])


def test_dynamic_coefficient_vanishes_without_resolved_small_scales():
    """For u = U(y) the test filter is the identity, L_ij = 0 while M_ij != 0, so C = 0."""
    ops = _ops(STRETCHED)
    u, v, w = _parabola(STRETCHED, 25.0)
    model = DynamicSmagorinsky(clip=False)
    nu_t = model.eddy_viscosity(ops, u, v, w, 1e-3)
    assert float(model.last_coefficient.abs().max()) < 1e-14
    assert float(nu_t.abs().max()) < 1e-14
    # a quiescent field gives C = 0, not NaN
    zero = DynamicSmagorinsky().eddy_viscosity(ops, 0 * u, 0 * v, 0 * w, 1e-3)
    assert torch.all(zero == 0)


def test_dynamic_coefficient_is_invariant_to_velocity_scaling():
    grid = STRETCHED
    ops = _ops(grid)
    u, v, w = _random_field(grid, seed=5)
    model = DynamicSmagorinsky(clip=False)
    nu_t = model.eddy_viscosity(ops, u, v, w, 1e-3)
    coefficient = model.last_coefficient.clone()
    assert float(coefficient.abs().max()) > 1e-4
    nu_t_scaled = model.eddy_viscosity(ops, 3.5 * u, 3.5 * v, 3.5 * w, 1e-3)
    torch.testing.assert_close(model.last_coefficient, coefficient, rtol=1e-11, atol=1e-14)
    torch.testing.assert_close(nu_t_scaled, 3.5 * nu_t, rtol=1e-11, atol=1e-14)


def test_dynamic_clipping_sets_negative_plane_coefficients_to_zero():
    grid = ChannelGrid(8, 8, 8, lx=2.0, lz=1.0, stretching=1.5)
    ops = _ops(grid)
    u, v, w = _nyquist_field(grid, mean=3.0, eps=1.2, beta=0.7, delta=0.9)
    raw = DynamicSmagorinsky(clip=False)
    clipped = DynamicSmagorinsky(clip=True)
    nu_raw = raw.eddy_viscosity(ops, u, v, w, 1e-3)
    nu_clipped = clipped.eddy_viscosity(ops, u, v, w, 1e-3)
    # this field's coefficient is odd about the centreline: negative in one half of the channel
    assert float(raw.last_coefficient.min()) < 0 < float(raw.last_coefficient.max())
    torch.testing.assert_close(clipped.last_unclipped_coefficient, raw.last_coefficient)
    torch.testing.assert_close(clipped.last_coefficient, raw.last_coefficient.clamp(min=0))
    torch.testing.assert_close(nu_clipped, nu_raw.clamp(min=0))
    assert bool((nu_clipped >= 0).all())


# ---------------------------------------------------------------------------------------------
# all models
# ---------------------------------------------------------------------------------------------
ALL_MODELS = [
    Smagorinsky(),
    Smagorinsky(cs=0.17, van_driest=False),
    WALE(),
    DynamicSmagorinsky(),
]


@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_model_gives_a_finite_non_negative_eddy_viscosity_on_a_random_field(model, dtype):
    grid = ChannelGrid(16, 17, 16, lx=2.0, lz=1.0, stretching=2.0)
    ops = _ops(grid, dtype)
    u, v, w = _random_field(grid, seed=11, dtype=dtype)
    nu_t = model.eddy_viscosity(ops, u, v, w, 1.0 / 180.0)
    assert nu_t.shape == grid.shape and nu_t.dtype == dtype
    assert bool(torch.isfinite(nu_t).all())
    assert float(nu_t.min()) >= 0.0
    assert float(nu_t.max()) > 0.0


@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
def test_models_leave_their_inputs_unchanged(model):
    """The models accumulate sums in place, into their own temporaries only."""
    grid = ChannelGrid(8, 9, 8, lx=2.0, lz=1.0, stretching=1.5)
    ops = _ops(grid)
    velocity = _random_field(grid, seed=3)
    copies = [c.clone() for c in velocity]
    model.eddy_viscosity(ops, *velocity, 1.0 / 180.0)
    for original, copy in zip(velocity, copies):
        assert torch.equal(original, copy)
    g = velocity_gradient(ops, *velocity)
    g_copy = g.clone()
    if hasattr(model, "_nu_t_from_gradient"):
        model._nu_t_from_gradient(g, filter_width(ops))
        assert torch.equal(g, g_copy)


def test_dynamic_model_on_a_random_field_is_non_negative_only_because_of_clipping():
    grid = ChannelGrid(16, 17, 16, lx=2.0, lz=1.0, stretching=2.0)
    ops = _ops(grid)
    u, v, w = _random_field(grid, seed=11)
    raw = DynamicSmagorinsky(clip=False)
    nu_raw = raw.eddy_viscosity(ops, u, v, w, 1.0 / 180.0)
    assert float(raw.last_coefficient.min()) < 0 < float(raw.last_coefficient.max())
    assert float(nu_raw.min()) < 0
    nu_clipped = DynamicSmagorinsky(clip=True).eddy_viscosity(ops, u, v, w, 1.0 / 180.0)
    torch.testing.assert_close(nu_clipped, nu_raw.clamp(min=0))


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------
def test_build_sgs_model_builds_every_registered_model_and_round_trips_describe():
    assert set(SGS_MODELS) == {"smagorinsky", "wale", "dynamic_smagorinsky", "neural"}
    built = {
        "neural": build_sgs_model("neural", hidden=8, layers=1, cs=0.2),
        "smagorinsky": build_sgs_model("smagorinsky", cs=0.12, a_plus=26.0, van_driest=False),
        "wale": build_sgs_model("WALE", cw=0.5),
        "dynamic_smagorinsky": build_sgs_model("dynamic-smagorinsky", alpha_squared=6 ** (2 / 3), clip=False, test_filter="xyz"),
    }
    assert isinstance(built["smagorinsky"], Smagorinsky) and built["smagorinsky"].cs == 0.12
    assert isinstance(built["wale"], WALE) and built["wale"].cw == 0.5
    assert isinstance(built["dynamic_smagorinsky"], DynamicSmagorinsky) and not built["dynamic_smagorinsky"].clip
    for name, model in built.items():
        assert isinstance(model, EddyViscosityModel)
        record = model.describe()
        assert record["name"] == name
        again = build_sgs_model(**record)
        assert type(again) is type(model) and again.describe() == record
    assert DynamicSmagorinsky().alpha_squared == 4.0 and DynamicSmagorinsky().test_filter == "xz"  # Germano et al. (1991)


def test_build_sgs_model_rejects_unknown_names_and_parameters():
    with pytest.raises(ValueError, match="did you mean 'wale'") as info:
        build_sgs_model("wael")
    for name in SGS_MODELS:
        assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match="did you mean 'dynamic_smagorinsky'"):
        build_sgs_model("dynamic_smagorinksy")
    with pytest.raises(ValueError, match="valid names are"):
        build_sgs_model("vreman_xyz_unrelated")
    with pytest.raises(ValueError, match="invalid parameters"):
        build_sgs_model("wale", cs=0.1)
    with pytest.raises(ValueError, match="cs"):
        build_sgs_model("smagorinsky", cs=-0.1)
    with pytest.raises(ValueError, match="alpha_squared must exceed 1"):
        build_sgs_model("dynamic_smagorinsky", alpha_squared=1.0)
    with pytest.raises(ValueError, match=r"test_filter must be one of \['xyz', 'xz'\], got 'y'"):
        build_sgs_model("dynamic_smagorinsky", test_filter="y")
    with pytest.raises(ValueError, match="cw"):
        WALE(cw=float("nan"))
