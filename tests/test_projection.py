"""Divergence and divergence-free projection of cell-centred velocities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from surrogate.grid import ChannelGrid
from surrogate.projection import CentredProjection

GRIDS = [ChannelGrid(16, 33, 12, lx=2 * math.pi, lz=math.pi, stretching=2.0), ChannelGrid(7, 9, 5, lx=2.0, lz=1.0, stretching=1.5)]


def _field(grid, k=3.0, seed=0):
    rng = np.random.default_rng(seed)
    q = torch.as_tensor(rng.normal(size=(2, 3) + grid.shape))
    q[:, 0] += torch.as_tensor(15.0 * grid.y * (2 - grid.y))[None, None, :, None]
    return q


def test_divergence_is_spectral_in_x_and_z_and_second_order_in_y_inside():
    """Interior cells converge at second order; the wall cells, where only one face value is
    interpolated (the wall value is exact), at first order."""
    interior, wall = [], []
    for ny in (32, 64, 128):
        grid = ChannelGrid(8, ny, 6, lx=2.0, lz=1.0, stretching=1.5)
        x, y, z = np.meshgrid(grid.x, grid.y, grid.z, indexing="ij")
        kx, kz = 2 * np.pi / grid.lx, 2 * np.pi / grid.lz
        u = np.sin(kx * x) * np.cos(np.pi * y)
        v = np.sin(np.pi * y / 2) ** 2 * np.cos(kz * z)  # zero on both walls
        w = np.cos(kz * z) * y
        exact = kx * np.cos(kx * x) * np.cos(np.pi * y) + np.pi / 2 * np.sin(np.pi * y) * np.cos(kz * z) - kz * np.sin(kz * z) * y
        div = CentredProjection(grid).divergence(torch.as_tensor(np.stack([u, v, w])))
        error = np.abs(div.numpy() - exact)
        interior.append(float(error[:, 1:-1].max()))
        wall.append(float(error[:, [0, -1]].max()))
    interior_rates = np.log2(np.array(interior[:-1]) / np.array(interior[1:]))
    wall_rates = np.log2(np.array(wall[:-1]) / np.array(wall[1:]))
    assert interior_rates.min() > 1.8, (interior, interior_rates)
    assert wall_rates.min() > 0.9, (wall, wall_rates)


@pytest.mark.parametrize("grid", GRIDS, ids=["16x33x12", "7x9x5"])
def test_projection_is_exact_idempotent_and_keeps_the_mean_profile(grid):
    projection = CentredProjection(grid)
    q = _field(grid)
    p = projection(q)
    scale = float(projection.divergence(q).abs().max())
    assert float(projection.divergence(p).abs().max()) < 1e-12 * scale
    torch.testing.assert_close(projection(p), p, rtol=0, atol=1e-12)
    torch.testing.assert_close(p[:, 0].mean(dim=(1, 3)), q[:, 0].mean(dim=(1, 3)), rtol=0, atol=1e-12)


def test_projection_is_orthogonal_in_the_volume_weighted_norm():
    grid = GRIDS[0]
    projection = CentredProjection(grid)
    q = _field(grid)
    p = projection(q)
    dy = torch.as_tensor(grid.dy)[None, None, None, :, None]
    inner = float(((q - p) * p * dy).sum())
    assert abs(inner) < 1e-10 * float((q * q * dy).sum())


def test_projection_keeps_the_input_dtype_and_checks_the_shape():
    grid = GRIDS[1]
    projection = CentredProjection(grid)
    q = _field(grid).float()
    assert projection(q).dtype == torch.float32
    with pytest.raises(ValueError, match=r"expected velocities of shape \(\.\.\., 3, 7, 9, 5\)"):
        projection(torch.zeros(3, 7, 9, 6))
