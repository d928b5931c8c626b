"""Pressure Poisson solver: FFT in x and z, eigen-decomposition in y.

Solves ``D G phi = rhs`` exactly (to round-off) for the discrete divergence ``D`` and gradient
``G`` of :class:`~surrogate.solver.operators.StaggeredOperators`, so that a projected velocity
field is divergence-free to machine precision. The periodic second differences become the
modified wavenumbers ``-(2 sin(k dx / 2) / dx)^2`` after the FFT.
"""

from __future__ import annotations

import math

import torch

from ..grid import ChannelGrid
from .wall_normal import EigenOperator, centre_neumann_operator, fold, unfold

__all__ = ["PoissonSolver"]


def modified_wavenumber_squared(n: int, length: float, *, real: bool) -> torch.Tensor:
    """``(2 sin(k d / 2) / d)^2`` of the second difference for the FFT frequencies of ``n`` points."""
    d = length / n
    freqs = (torch.fft.rfftfreq if real else torch.fft.fftfreq)(n, d=d, dtype=torch.float64)
    return (2.0 * torch.sin(math.pi * freqs * d) / d) ** 2


class PoissonSolver:
    """Solve the discrete pressure Poisson equation on a :class:`ChannelGrid`.

    The mean (zero-wavenumber, constant-in-y) part of the solution is fixed to zero. With ``split``
    (and a symmetric grid: :attr:`EigenOperator.split` of :attr:`wall_normal`) the even and odd parts
    of the spectrum go through their own halves of the wall-normal transforms, half the arithmetic
    of the dense ones.
    """

    def __init__(self, grid: ChannelGrid, device: torch.device, dtype: torch.dtype, split: bool = False) -> None:
        self.grid = grid
        self.wall_normal = EigenOperator(*centre_neumann_operator(grid), device=device, dtype=dtype, split=split)
        kx2 = modified_wavenumber_squared(grid.nx, grid.lx, real=False).to(device=device, dtype=dtype)
        kz2 = modified_wavenumber_squared(grid.nz, grid.lz, real=True).to(device=device, dtype=dtype)
        self._inverses = [_inverse(eigenvalues, kx2, kz2) for _, eigenvalues, _ in self.wall_normal.parts]

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        """Return ``phi`` with ``D G phi = rhs``; ``rhs`` and ``phi`` have shape ``(nx, ny, nz)``.

        The spectrum is transformed along y as ``(ny, nx * nk * 2)`` columns of its real and
        imaginary parts, y first: the memory order the CPU's FFT returns (so that no copy is made
        there) in which each wall-normal transform is one plain matrix product.
        """
        spectrum = torch.fft.rfft2(rhs, dim=(0, 2))
        nx, ny, nk = spectrum.shape
        columns = torch.view_as_real(spectrum.transpose(0, 1).contiguous()).view(ny, -1)
        split = self.wall_normal.split
        parts = fold(columns, dim=0) if split else (columns,)
        solved = [
            back @ ((fwd @ part).view(-1, nx, nk, 2) * inverse).view(-1, nx * nk * 2)
            for (back, _, fwd), part, inverse in zip(self.wall_normal.parts, parts, self._inverses)
        ]
        columns = unfold(*solved, dim=0) if split else solved[0]
        spectrum = torch.view_as_complex(columns.view(ny, nx, nk, 2)).transpose(0, 1)
        return torch.fft.irfft2(spectrum, s=(self.grid.nx, self.grid.nz), dim=(0, 2))


def _inverse(eigenvalues: torch.Tensor, kx2: torch.Tensor, kz2: torch.Tensor) -> torch.Tensor:
    """``1 / (lam - kx^2 - kz^2)`` (0 where that vanishes: the mean), ``(n, nx, nk, 1)`` to scale the
    real and imaginary parts of a y-first spectrum in eigen-coordinates."""
    denom = eigenvalues.view(-1, 1, 1) - kx2.view(1, -1, 1) - kz2.view(1, 1, -1)
    inverse = torch.where(denom == 0, torch.zeros_like(denom), 1.0 / torch.where(denom == 0, 1.0, denom))
    return inverse.unsqueeze(-1)
