"""Plane statistics and the mean-momentum equation: laminar flow, the turbulent stress balance, decay."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from surrogate.grid import ChannelGrid
from surrogate.mean_flow import MeanMomentum, bulk_velocity, plane_statistics

GRID = ChannelGrid(8, 48, 6, lx=2.0, lz=1.0, stretching=1.5)


def _y() -> torch.Tensor:
    return torch.as_tensor(GRID.y, dtype=torch.float64)


def test_plane_statistics_of_a_built_field():
    x = torch.as_tensor(GRID.x)[:, None, None]
    y = _y()[None, :, None]
    z = torch.as_tensor(GRID.z)[None, None, :]
    wave = torch.cos(2 * math.pi * x / GRID.lx) * torch.ones_like(z)
    u = y * (2 - y) + 0.3 * wave
    v = 0.2 * wave * torch.ones_like(y)
    w = 0.1 * torch.sin(2 * math.pi * z / GRID.lz) * torch.ones_like(x) * torch.ones_like(y)
    stats = plane_statistics(torch.stack([u, v, w]))
    torch.testing.assert_close(stats.mean[0], _y() * (2 - _y()))
    torch.testing.assert_close(stats.rms[:, 0], torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64) / math.sqrt(2))
    torch.testing.assert_close(stats.uv, torch.full((GRID.ny,), 0.3 * 0.2 / 2, dtype=torch.float64))
    torch.testing.assert_close(stats.vw, torch.zeros(GRID.ny, dtype=torch.float64), atol=1e-15, rtol=0)


def test_laminar_start_up_reaches_poiseuille_flow_at_the_held_flow_rate():
    re_tau, bulk = 20.0, 2.0
    momentum = MeanMomentum(GRID, re_tau, dt=1.0, substeps=2)
    profile, stress = torch.zeros(GRID.ny, dtype=torch.float64), torch.zeros(GRID.ny, dtype=torch.float64)
    for _ in range(300):  # 300 h/u_tau, 15 viscous times h^2 / nu
        profile, pi = momentum.step(profile, stress, bulk)
        assert float(bulk_velocity(profile, GRID)) == pytest.approx(bulk, abs=1e-12)
    exact = 1.5 * bulk * _y() * (2 - _y())
    assert float((profile - exact).abs().max()) < 5e-3 * bulk
    assert float(pi) == pytest.approx(3 * bulk / re_tau, rel=5e-3)  # Pi = 3 nu U_b / h^2


def test_turbulent_stress_balance_is_steady_with_unit_forcing():
    """With <u'v'> = nu dU/dy - (1 - y), the mean profile U is steady and Pi = 1 (u_tau^2 / h)."""
    re_tau = 180.0
    y = _y()
    profile = 20 * (1 - (1 - y) ** 8)
    slope = 160 * (1 - y) ** 7
    stress = slope / re_tau - (1 - y)
    momentum = MeanMomentum(GRID, re_tau, dt=0.2)
    bulk = bulk_velocity(profile, GRID)
    state = profile.clone()
    for _ in range(500):
        state, pi = momentum.step(state, stress, bulk)
    assert float(pi) == pytest.approx(1.0, rel=0.03)
    assert float((state - profile).abs().max()) < 0.03 * float(profile.max())


def test_unforced_spanwise_mean_decays_at_the_slowest_viscous_rate():
    re_tau, t = 10.0, 5.0
    momentum = MeanMomentum(GRID, re_tau, dt=0.05, substeps=1)
    w0 = torch.sin(math.pi * _y() / 2)
    w = w0.clone()
    for _ in range(int(round(t / 0.05))):
        w, pi = momentum.step(w, torch.zeros_like(w), None)
        assert float(pi) == 0.0
    rate = -math.log(float(w @ w0) / float(w0 @ w0)) / t
    assert rate == pytest.approx(math.pi**2 / 4 / re_tau, rel=0.02)


def test_batched_profiles_step_like_single_ones():
    momentum = MeanMomentum(GRID, 100.0, dt=0.2)
    rng = np.random.default_rng(0)
    profiles = torch.as_tensor(rng.normal(size=(2, GRID.ny)))
    stresses = torch.as_tensor(rng.normal(size=(2, GRID.ny)))
    batch, _ = momentum.step(profiles, stresses, torch.tensor([1.0, 2.0], dtype=torch.float64))
    for i, bulk in enumerate((1.0, 2.0)):
        single, _ = momentum.step(profiles[i], stresses[i], bulk)
        torch.testing.assert_close(batch[i], single)
