"""The wall-normal operators split into even and odd blocks on the symmetric grid, against the
dense products they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surrogate.grid import ChannelGrid
from surrogate.solver.poisson import PoissonSolver
from surrogate.solver.wall_normal import (
    EigenOperator,
    apply_along_y,
    centre_dirichlet_operator,
    centre_neumann_operator,
    face_dirichlet_operator,
    fold,
    unfold,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("n", [6, 7])
def test_fold_splits_a_field_into_its_even_and_odd_parts_and_unfold_joins_them(n, dim) -> None:
    a = torch.randn(3, n, 4, dtype=torch.float64).movedim(1, dim)  # y along dim
    even, odd = fold(a, dim)
    assert even.shape[dim] == n - n // 2 and odd.shape[dim] == n // 2
    torch.testing.assert_close(fold(a.flip(dim), dim)[0], even)  # the even part is the reflection's too
    torch.testing.assert_close(fold(a.flip(dim), dim)[1], -odd)
    halved = even.clone()
    halved.narrow(dim, 0, n // 2).mul_(0.5)
    torch.testing.assert_close(unfold(halved, 0.5 * odd, dim), a)


@pytest.mark.parametrize("ny", [9, 10, 33, 65])
@pytest.mark.parametrize("operator", [centre_dirichlet_operator, face_dirichlet_operator, centre_neumann_operator])
def test_the_parity_blocks_of_a_helmholtz_inverse_act_as_its_dense_matrix(ny, operator) -> None:
    op = EigenOperator(*operator(ChannelGrid(8, ny, 8, stretching=2.0)), device=CPU, dtype=torch.float64)
    assert op.split
    n = op.forward.shape[0]
    a = torch.randn(5, n, 7, dtype=torch.float64)
    for coefficient in (0.0, 1e-3, torch.tensor(0.3, dtype=torch.float64)):
        dense = apply_along_y(op.helmholtz_inverse(coefficient), a)
        split = apply_along_y(op.helmholtz_blocks(coefficient), a)
        assert float((split - dense).abs().max()) < 1e-12 * float(dense.abs().max())
    merged = torch.cat([op.even_eigenvalues, op.odd_eigenvalues]).sort().values
    torch.testing.assert_close(merged, op.eigenvalues.sort().values, rtol=1e-10, atol=1e-10)


def test_an_operator_of_an_asymmetric_grid_keeps_the_dense_product() -> None:
    symmetric, heights = centre_dirichlet_operator(ChannelGrid(8, 9, 8, stretching=2.0))
    heights = heights * np.linspace(1.0, 1.2, heights.size)
    op = EigenOperator(symmetric, heights, device=CPU, dtype=torch.float64)
    assert not op.split
    assert torch.equal(op.helmholtz_blocks(0.2), op.helmholtz_inverse(0.2))


@pytest.mark.parametrize("ny", [16, 17])
def test_the_split_poisson_solve_inverts_the_discrete_laplacian(ny) -> None:
    """D G phi = rhs to round-off for a zero-mean right-hand side, on an even and an odd number of cells."""
    from surrogate.solver.operators import StaggeredOperators

    grid = ChannelGrid(8, ny, 6, stretching=2.0)
    split, dense = (PoissonSolver(grid, CPU, torch.float64, split=flag) for flag in (True, False))
    ops = StaggeredOperators(grid, CPU, torch.float64)
    assert split.wall_normal.split and not dense.wall_normal.split
    rhs = torch.randn(grid.shape, dtype=torch.float64)
    rhs -= (rhs * ops.dy).sum() / (ops.dy.sum() * grid.nx * grid.nz)  # solvable: no net source
    phi = split.solve(rhs)
    residual = ops.divergence(*ops.gradient(phi)) - rhs
    assert float(residual.abs().max()) < 1e-10 * float(rhs.abs().max())
    assert float((phi - dense.solve(rhs)).abs().max()) < 1e-12 * float(phi.abs().max())


def test_a_compiled_solver_with_many_wall_normal_cells_splits_and_steps_as_the_dense_one() -> None:
    """Round-off apart, one step of the split solver (compiled, 64 cells) is the dense solver's."""
    from surrogate.solver import ChannelSolver

    grid = ChannelGrid(8, 64, 8, lx=2.0, lz=1.0, stretching=1.5)
    compiled, eager = (ChannelSolver(grid, 180.0, "constant_flow_rate", compile=flag) for flag in (True, False))
    assert compiled.split_wall_normal and not eager.split_wall_normal
    start = eager.initial_condition("turbulent", seed=3, amplitude=0.5)
    a, b = compiled.step(start, 1e-3), eager.step(start, 1e-3)
    for name in ("u", "v", "w"):
        assert float((getattr(a, name) - getattr(b, name)).abs().max()) < 1e-12 * float(getattr(b, name).abs().max()), name
