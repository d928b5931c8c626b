r"""Divergence and divergence-free projection of cell-centred velocity fields.

Surrogates predict velocities at the cell centres of a :class:`~surrogate.grid.ChannelGrid`.
On these points this module defines a discrete divergence ``D`` and its exact projection.

Derivatives
    x and z: spectral (the fields are periodic), ``i k_x`` and ``i k_z`` with the Nyquist modes'
    derivative set to zero. y: the wall-normal velocity is interpolated linearly from the cell
    centres to the cell faces, with ``v = 0`` on the walls (``I_f``), and differenced over each
    cell, ``(D_y v)_j = (v_{j+1/2} - v_{j-1/2}) / dy_j``: second-order accurate inside, first
    order in the two wall cells (one interpolated face, one exact wall value). So per Fourier
    mode ``(k_x, k_z)``

    .. math:: \widehat{Dq} = i k_x \hat u + D_y \hat v + i k_z \hat w .

Projection
    The gradient is the negative adjoint of ``D`` in the volume-weighted inner product
    (weights ``dy_j``): ``G phi = (i k_x phi, G_y phi, i k_z phi)`` with
    ``G_y = -W^{-1} D_y^T W``, ``W = diag(dy)``. Then ``P q = q - G M^+ D q`` with
    ``M = D G = D_y G_y - (k_x^2 + k_z^2)`` (one ``ny x ny`` matrix per mode, pseudo-inverted
    once) is the orthogonal projection onto the fields with ``D q = 0``: it removes the least
    energy that makes the field divergence-free, leaves divergence-free fields unchanged, and
    ``P P = P`` to round-off. The mean ``u`` and ``w`` profiles are untouched. As on any
    collocated grid, ``D_y`` has a one-dimensional null space, a y-checkerboard of ``v`` whose
    interpolated face values vanish; that pattern is invisible to ``D`` and passes ``P``
    unchanged (for every ``(k_x, k_z)``, including the plane mean).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .grid import ChannelGrid

__all__ = ["CentredProjection"]


def _wavenumbers(n: int, length: float, real: bool) -> np.ndarray:
    """Angular wavenumbers in 1/h of an (r)FFT of ``n`` points over ``length``, Nyquist set to 0."""
    index = np.fft.rfftfreq(n, 1.0 / n) if real else np.fft.fftfreq(n, 1.0 / n)
    k = 2 * np.pi / length * index
    if n % 2 == 0:
        k[np.abs(index) == n // 2] = 0.0
    return k


class CentredProjection:
    """Discrete divergence and divergence-free projection on the cell centres of ``grid``.

    Parameters
    ----------
    grid
        The grid; fields have shape ``(..., 3, nx, ny, nz)`` with components ``u, v, w`` in u_tau.
    device, dtype
        Where the operators live; ``dtype`` is the real precision of the computation (the
        result is returned in the input's dtype).
    """

    def __init__(self, grid: ChannelGrid, device: Any = "cpu", dtype: torch.dtype = torch.float64) -> None:
        self.grid = grid
        ny = grid.ny
        dy = grid.dy
        interp = grid.centre_to_face_interpolation()  # v = 0 on the walls
        dy_matrix = (interp[1:] - interp[:-1]) / dy[:, None]  # D_y, (ny, ny)
        gy_matrix = -(dy_matrix.T * dy[None, :]) / dy[:, None]  # G_y = -W^-1 D_y^T W
        kx = _wavenumbers(grid.nx, grid.lx, real=False)
        kz = _wavenumbers(grid.nz, grid.lz, real=True)
        k2 = kx[:, None] ** 2 + kz[None, :] ** 2  # (nx, nz//2+1)
        m = dy_matrix @ gy_matrix - k2[:, :, None, None] * np.eye(ny)
        self._m_pinv = torch.as_tensor(np.linalg.pinv(m, hermitian=False), device=device, dtype=dtype)
        self._dy = torch.as_tensor(dy_matrix, device=device, dtype=dtype)
        self._gy = torch.as_tensor(gy_matrix, device=device, dtype=dtype)
        self._ikx = torch.as_tensor(1j * kx[:, None, None], device=device)  # broadcast over (nx, ny, nz/2+1)
        self._ikz = torch.as_tensor(1j * kz[None, None, :], device=device)
        self.device, self.dtype = torch.device(device), dtype

    def _spectra(self, field: torch.Tensor) -> torch.Tensor:
        if field.shape[-4:] != (3,) + self.grid.shape:
            raise ValueError(f"expected velocities of shape (..., 3, {', '.join(map(str, self.grid.shape))}), got {tuple(field.shape)}")
        return torch.fft.fft(torch.fft.rfft(field.to(self.device, self.dtype), dim=-1), dim=-3)

    def _div_hat(self, q: torch.Tensor) -> torch.Tensor:
        dy_v = torch.einsum("jk,...xkz->...xjz", self._dy.to(q.dtype), q[..., 1, :, :, :])
        return self._ikx.to(q.dtype) * q[..., 0, :, :, :] + dy_v + self._ikz.to(q.dtype) * q[..., 2, :, :, :]

    def _physical(self, q: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Back from the (x, z) spectra, in the device and dtype of ``like``."""
        return torch.fft.irfft(torch.fft.ifft(q, dim=-3), n=self.grid.nz, dim=-1).to(like.device, like.dtype)

    def divergence(self, field: torch.Tensor) -> torch.Tensor:
        """``D q`` in u_tau / h: ``field`` ``(..., 3, nx, ny, nz)`` -> ``(..., nx, ny, nz)``."""
        return self._physical(self._div_hat(self._spectra(field)), field)

    def __call__(self, field: torch.Tensor) -> torch.Tensor:
        """``P q``: the divergence-free part of ``field`` ``(..., 3, nx, ny, nz)``, same shape and dtype."""
        q = self._spectra(field)
        phi = torch.einsum("xzjk,...xkz->...xjz", self._m_pinv.to(q.dtype), self._div_hat(q))
        grad_y = torch.einsum("jk,...xkz->...xjz", self._gy.to(q.dtype), phi)
        q = torch.stack(
            [
                q[..., 0, :, :, :] - self._ikx.to(q.dtype) * phi,
                q[..., 1, :, :, :] - grad_y,
                q[..., 2, :, :, :] - self._ikz.to(q.dtype) * phi,
            ],
            dim=-4,
        )
        return self._physical(q, field)
