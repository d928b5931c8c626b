"""Wall-normal second-derivative operators and their eigen-decompositions.

On the stretched grid the three-point operators are ``A = W^{-1} S`` with ``W`` the diagonal of
control-volume heights and ``S`` symmetric, so ``W^{1/2} A W^{-1/2}`` is symmetric with real
eigenvalues ``lam`` and orthonormal eigenvectors ``Q``. Then::

    A = B diag(lam) F,    F = Q^T W^{1/2},    B = W^{-1/2} Q,    B F = I

which turns every wall-normal Helmholtz or Poisson problem into a scaling in eigen-space: one
dense matrix product per direction, which runs well on CPUs and GPUs alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..grid import ChannelGrid

__all__ = ["apply_along_y", "EigenOperator", "centre_dirichlet_operator", "centre_neumann_operator", "face_dirichlet_operator"]


def apply_along_y(matrix: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``matrix @ a`` along the y dimension of ``a`` (shape ``(nx, n, nz)``) as one matrix product.

    Returns a contiguous ``(nx, m, nz)`` tensor for a ``(m, n)`` matrix.
    """
    nx, n, nz = a.shape
    columns = a.transpose(0, 1).reshape(n, nx * nz)
    return (matrix @ columns).reshape(matrix.shape[0], nx, nz).transpose(0, 1).contiguous()


def _tridiagonal(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray) -> np.ndarray:
    return np.diag(diag) + np.diag(lower, -1) + np.diag(upper, 1)


def _flux_operator(conductance: np.ndarray, wall_lower: float, wall_upper: float) -> np.ndarray:
    """Symmetric ``S`` of a flux-form second difference with given face conductances."""
    n = conductance.size + 1
    diag = np.zeros(n)
    diag[:-1] -= conductance
    diag[1:] -= conductance
    diag[0] -= wall_lower
    diag[-1] -= wall_upper
    return _tridiagonal(conductance, diag, conductance)


def centre_dirichlet_operator(grid: ChannelGrid) -> tuple[np.ndarray, np.ndarray]:
    """``(S, heights)`` of ``d2/dy2`` at cell centres for a quantity that vanishes on the walls.

    Used for the implicit diffusion of ``u`` and ``w``. Shapes ``(ny, ny)`` and ``(ny,)``.
    """
    s = _flux_operator(1.0 / grid.dy_centres, 1.0 / grid.y[0], 1.0 / (2.0 - grid.y[-1]))
    return s, grid.dy.copy()


def centre_neumann_operator(grid: ChannelGrid) -> tuple[np.ndarray, np.ndarray]:
    """``(S, heights)`` of ``d/dy (dp/dy)`` at cell centres with no flux through the walls.

    This is the wall-normal part of the pressure Poisson operator, the product of the discrete
    divergence and gradient. Shapes ``(ny, ny)`` and ``(ny,)``.
    """
    s = _flux_operator(1.0 / grid.dy_centres, 0.0, 0.0)
    return s, grid.dy.copy()


def face_dirichlet_operator(grid: ChannelGrid) -> tuple[np.ndarray, np.ndarray]:
    """``(S, heights)`` of ``d2/dy2`` at the interior faces with ``v = 0`` on the walls.

    Used for the implicit diffusion of ``v``. Shapes ``(ny - 1, ny - 1)`` and ``(ny - 1,)``.
    """
    inv_dy = 1.0 / grid.dy
    s = _flux_operator(inv_dy[1:-1], inv_dy[0], inv_dy[-1])
    return s, grid.dy_centres.copy()


@dataclass
class EigenOperator:
    """A wall-normal operator ``A = W^{-1} S`` in eigen-space, as torch tensors.

    Parameters
    ----------
    symmetric, heights
        ``S`` (shape ``(n, n)``) and the control-volume heights (``(n,)``) of the operator.
    device, dtype
        Where the transforms live.

    Attributes
    ----------
    eigenvalues : torch.Tensor, shape ``(n,)``
        Non-positive eigenvalues of ``A``, in 1/h^2 (a Neumann operator's null eigenvalue is
        set to exactly zero).
    forward, backward : torch.Tensor, shape ``(n, n)``
        ``F`` and ``B``: ``a_hat = F @ a`` and ``a = B @ a_hat`` along the y dimension.
    """

    symmetric: np.ndarray
    heights: np.ndarray
    device: torch.device
    dtype: torch.dtype

    def __post_init__(self) -> None:
        root = np.sqrt(self.heights)
        sym = self.symmetric / root[:, None] / root[None, :]
        lam, q = np.linalg.eigh(0.5 * (sym + sym.T))
        scale = np.abs(lam).max()
        lam[np.abs(lam) < 1e-12 * scale] = 0.0
        kw = dict(device=self.device, dtype=self.dtype)
        self.eigenvalues = torch.tensor(lam, **kw)
        self.forward = torch.tensor(q.T * root[None, :], **kw)
        self.backward = torch.tensor(q / root[:, None], **kw)
        self.matrix = torch.tensor(self.symmetric / self.heights[:, None], **kw)

    def helmholtz_inverse(self, coefficient: float | torch.Tensor) -> torch.Tensor:
        """Dense ``(I - coefficient * A)^{-1}``, shape ``(n, n)``, for ``coefficient >= 0`` (a number
        or a 0-d tensor)."""
        scale = 1.0 / (1.0 - coefficient * self.eigenvalues)
        return (self.backward * scale[None, :]) @ self.forward
