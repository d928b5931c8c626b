"""Wall-normal second-derivative operators and their eigen-decompositions.

On the stretched grid the three-point operators are ``A = W^{-1} S`` with ``W`` the diagonal of
control-volume heights and ``S`` symmetric, so ``W^{1/2} A W^{-1/2}`` is symmetric with real
eigenvalues ``lam`` and orthonormal eigenvectors ``Q``. Then::

    A = B diag(lam) F,    F = Q^T W^{1/2},    B = W^{-1/2} Q,    B F = I

which turns every wall-normal Helmholtz or Poisson problem into a scaling in eigen-space: one
dense matrix product per direction, which runs well on CPUs and GPUs alike.

The channel's grid is symmetric about its centreline, so each operator commutes with the
reflection ``J: y -> 2 - y`` and its eigenvectors are even or odd. A field then splits into its
even and odd parts (:func:`fold`, :func:`unfold`), on which the operators act as two blocks of
half the size: two products of a quarter of the cost each, half the arithmetic of the dense
product (:attr:`EigenOperator.split`; an operator that does not commute with the reflection, e.g.
on an asymmetric grid, keeps the dense product).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..grid import ChannelGrid

__all__ = ["apply_along_y", "EigenOperator", "centre_dirichlet_operator", "centre_neumann_operator", "face_dirichlet_operator",
           "fold", "unfold"]

#: A dense ``(m, n)`` matrix, or the ``(even, odd)`` blocks of a reflection-symmetric ``(n, n)`` one.
WallNormalMatrix = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _product(matrix: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    nx, n, nz = a.shape
    columns = a.transpose(0, 1).reshape(n, nx * nz)
    return (matrix @ columns).reshape(matrix.shape[0], nx, nz).transpose(0, 1).contiguous()


def apply_along_y(matrix: WallNormalMatrix, a: torch.Tensor) -> torch.Tensor:
    """``matrix @ a`` along the y dimension of ``a`` (shape ``(nx, n, nz)``).

    A dense ``(m, n)`` matrix is one matrix product and gives a contiguous ``(nx, m, nz)`` tensor.
    The blocks ``(even, odd)`` of a matrix that commutes with the reflection (e.g. of
    :meth:`EigenOperator.helmholtz_blocks`) act on :func:`fold`'s parts of ``a``, which
    :func:`unfold` joins: the same ``(nx, n, nz)`` result with half the arithmetic.
    """
    if isinstance(matrix, tuple):
        even, odd = fold(a)
        return unfold(_product(matrix[0], even), _product(matrix[1], odd))
    return _product(matrix, a)


def fold(a: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The even and odd parts of ``a`` about the centre of its dimension ``dim`` (``n`` points, y by
    default): with ``h = n // 2``, ``a_i + a_{n-1-i}`` and ``a_i - a_{n-1-i}`` for ``i < h``, the
    even part followed by the middle point ``a_h`` when ``n`` is odd; ``n - h`` and ``h`` points
    along ``dim``."""
    n = a.shape[dim]
    h = n // 2
    top, bottom = a.narrow(dim, 0, h), a.narrow(dim, n - h, h).flip(dim)
    even = top + bottom
    if n % 2:
        even = torch.cat([even, a.narrow(dim, h, 1)], dim=dim)
    return even, top - bottom


def unfold(even: torch.Tensor, odd: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The field whose first half is ``even + odd`` (over the ``h`` points of ``odd`` along ``dim``),
    whose mirror half is ``even - odd`` and whose middle point, if ``even`` has one more, is its
    last: :func:`fold`'s inverse up to the factor 2 that :class:`EigenOperator`'s blocks absorb."""
    h = odd.shape[dim]
    top = even.narrow(dim, 0, h)
    return torch.cat([top + odd, even.narrow(dim, h, even.shape[dim] - h), (top - odd).flip(dim)], dim=dim)


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


def _parity_bases(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal bases ``(n, n - n // 2)`` and ``(n, n // 2)`` of the vectors even and odd about the
    centre of ``n`` points."""
    h = n // 2
    even, odd = np.zeros((n, n - h)), np.zeros((n, h))
    for i in range(h):
        even[i, i] = even[n - 1 - i, i] = odd[i, i] = np.sqrt(0.5)
        odd[n - 1 - i, i] = -np.sqrt(0.5)
    if n % 2:
        even[h, h] = 1.0
    return even, odd


@dataclass
class EigenOperator:
    """A wall-normal operator ``A = W^{-1} S`` in eigen-space, as torch tensors.

    Parameters
    ----------
    symmetric, heights
        ``S`` (shape ``(n, n)``) and the control-volume heights (``(n,)``) of the operator.
    device, dtype
        Where the transforms live.
    split
        Apply the operator as even and odd blocks where it allows that (default); ``False``: always
        as dense matrices.

    Attributes
    ----------
    eigenvalues : torch.Tensor, shape ``(n,)``
        Non-positive eigenvalues of ``A``, in 1/h^2 (a Neumann operator's null eigenvalue is
        set to exactly zero).
    forward, backward : torch.Tensor, shape ``(n, n)``
        ``F`` and ``B``: ``a_hat = F @ a`` and ``a = B @ a_hat`` along the y dimension.
    split : bool
        Asked for, and the operator commutes with the reflection about the centre (a symmetric
        grid), so that its eigenvectors are chosen even or odd, each parity from its own block. Then
        ``even_eigenvalues`` and ``odd_eigenvalues`` are those of the ``n - n // 2`` even and
        ``n // 2`` odd eigenvectors, ``even_forward``, ``odd_forward`` map :func:`fold`'s even and
        odd parts to their eigen-coordinates, and ``even_backward``, ``odd_backward`` map those back
        to the parts that :func:`unfold` joins.
    """

    symmetric: np.ndarray
    heights: np.ndarray
    device: torch.device
    dtype: torch.dtype
    split: bool = True

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
        reflected = sym[::-1, ::-1]
        self.split = bool(self.split and np.abs(reflected - sym).max() <= 1e-10 * np.abs(sym).max()
                          and np.abs(root[::-1] - root).max() <= 1e-12 * root.max())
        if self.split:  # each parity's eigenvectors from its own block: near-degenerate pairs stay apart
            for name, basis in zip(("even", "odd"), _parity_bases(lam.size)):
                lam_part, q_part = np.linalg.eigh(basis.T @ (0.5 * (sym + sym.T)) @ basis)
                lam_part[np.abs(lam_part) < 1e-12 * scale] = 0.0
                vectors = basis @ q_part  # (n, n_part), each even or odd about the centre
                rows = basis.shape[1]  # the points fold keeps of this parity
                setattr(self, f"{name}_eigenvalues", torch.tensor(lam_part, **kw))
                setattr(self, f"{name}_forward", torch.tensor((vectors.T * root[None, :])[:, :rows], **kw))
                setattr(self, f"{name}_backward", torch.tensor((vectors / root[:, None])[:rows], **kw))

    def helmholtz_inverse(self, coefficient: float | torch.Tensor) -> torch.Tensor:
        """Dense ``(I - coefficient * A)^{-1}``, shape ``(n, n)``, for ``coefficient >= 0`` (a number
        or a 0-d tensor)."""
        return _helmholtz(self.backward, self.eigenvalues, self.forward, coefficient)

    @property
    def parts(self) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]:
        """``(backward, eigenvalues, forward)`` of the even and then the odd block where the operator
        is :attr:`split` (acting on :func:`fold`'s parts), else of the dense operator alone."""
        if not self.split:
            return ((self.backward, self.eigenvalues, self.forward),)
        return ((self.even_backward, self.even_eigenvalues, self.even_forward),
                (self.odd_backward, self.odd_eigenvalues, self.odd_forward))

    def helmholtz_blocks(self, coefficient: float | torch.Tensor) -> WallNormalMatrix:
        """``(I - coefficient * A)^{-1}`` for :func:`apply_along_y`: its even and odd blocks where the
        operator is :attr:`split`, else the dense matrix of :meth:`helmholtz_inverse`."""
        blocks = tuple(_helmholtz(*part, coefficient) for part in self.parts)
        return blocks if self.split else blocks[0]


def _helmholtz(backward: torch.Tensor, eigenvalues: torch.Tensor, forward: torch.Tensor, coefficient) -> torch.Tensor:
    """``B diag(1 / (1 - c lam)) F``: the inverse of ``I - c A`` in eigen-space, composed back."""
    return (backward * (1.0 / (1.0 - coefficient * eigenvalues))[None, :]) @ forward
