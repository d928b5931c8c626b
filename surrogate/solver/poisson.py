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
from .wall_normal import EigenOperator, apply_along_y, centre_neumann_operator

__all__ = ["PoissonSolver"]


def modified_wavenumber_squared(n: int, length: float, *, real: bool) -> torch.Tensor:
    """``(2 sin(k d / 2) / d)^2`` of the second difference for the FFT frequencies of ``n`` points."""
    d = length / n
    freqs = (torch.fft.rfftfreq if real else torch.fft.fftfreq)(n, d=d, dtype=torch.float64)
    return (2.0 * torch.sin(math.pi * freqs * d) / d) ** 2


class PoissonSolver:
    """Solve the discrete pressure Poisson equation on a :class:`ChannelGrid`.

    The mean (zero-wavenumber, constant-in-y) part of the solution is fixed to zero.
    """

    def __init__(self, grid: ChannelGrid, device: torch.device, dtype: torch.dtype) -> None:
        self.grid = grid
        self.wall_normal = EigenOperator(*centre_neumann_operator(grid), device=device, dtype=dtype)
        kx2 = modified_wavenumber_squared(grid.nx, grid.lx, real=False).to(device=device, dtype=dtype)
        kz2 = modified_wavenumber_squared(grid.nz, grid.lz, real=True).to(device=device, dtype=dtype)
        denom = self.wall_normal.eigenvalues.view(1, -1, 1) - kx2.view(-1, 1, 1) - kz2.view(1, 1, -1)
        inverse = torch.where(denom == 0, torch.zeros_like(denom), 1.0 / torch.where(denom == 0, 1.0, denom))
        self._inverse = inverse.unsqueeze(-1)  # (nx, ny, nz//2+1, 1) to scale real and imaginary parts

    def _along_y(self, matrix: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
        """Apply a real ``(ny, ny)`` matrix along y of a complex ``(nx, ny, nk)`` spectrum."""
        nx, ny, nk = spectrum.shape
        real = torch.view_as_real(spectrum).reshape(nx, ny, nk * 2)
        return torch.view_as_complex(apply_along_y(matrix, real).reshape(nx, ny, nk, 2))

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        """Return ``phi`` with ``D G phi = rhs``; ``rhs`` and ``phi`` have shape ``(nx, ny, nz)``."""
        spectrum = torch.fft.rfft2(rhs, dim=(0, 2))
        spectrum = self._along_y(self.wall_normal.forward, spectrum)
        real = torch.view_as_real(spectrum) * self._inverse
        spectrum = self._along_y(self.wall_normal.backward, torch.view_as_complex(real))
        return torch.fft.irfft2(spectrum, s=(self.grid.nx, self.grid.nz), dim=(0, 2))
