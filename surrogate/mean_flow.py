r"""Plane statistics of velocity tensors and the mean-momentum equation of the channel.

The rollout and the training losses need the x-z plane statistics of a velocity state as torch
tensors (differentiable, on any device), and a rollout that advances the mean profile needs the
plane-averaged streamwise momentum equation. Both live here; :mod:`surrogate.stats` computes the
same statistics on field Datasets for reports.

Plane statistics
    For a state ``q = (u, v, w)`` of shape ``(..., 3, nx, ny, nz)`` in u_tau, the plane means
    ``U_c(y) = <q_c>_{x,z}``, the rms of the fluctuations ``q_c' = q_c - U_c`` and the Reynolds
    shear stress ``<u'v'>(y)``.

Mean-momentum equation
    Averaged over x-z planes, the streamwise and spanwise momentum of the channel obey

    .. math:: \partial_t U = \Pi + \partial_y \left( \nu \partial_y U - \langle u'v' \rangle \right),
              \qquad \partial_t W = \partial_y \left( \nu \partial_y W - \langle v'w' \rangle \right),

    with ``U = W = 0`` on the walls and, at constant flow rate, the driving pressure gradient
    ``Pi(t)`` chosen so that the bulk velocity ``U_b = (1/2) int_0^2 U dy`` stays fixed (the
    condition of the DNS the datasets come from). :class:`MeanMomentum` integrates them on the
    cell centres of a :class:`~surrogate.grid.ChannelGrid` (finite volumes, fluxes on the cell
    faces): the viscous term implicitly (backward Euler), the Reynolds stress explicitly, ``Pi``
    exactly for the prescribed flow rate. Lengths in h, velocities in u_tau, ``nu = 1 / Re_tau``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from .grid import ChannelGrid

__all__ = ["MeanMomentum", "PlaneStatistics", "bulk_velocity", "plane_statistics"]


class PlaneStatistics(NamedTuple):
    """Plane statistics of velocity states, each of shape ``(..., ny)`` in u_tau (``uv``: u_tau^2)."""

    mean: torch.Tensor
    """Plane means of ``u, v, w``, shape ``(..., 3, ny)``."""
    rms: torch.Tensor
    """Rms of the fluctuations of ``u, v, w``, shape ``(..., 3, ny)``."""
    uv: torch.Tensor
    """Reynolds shear stress ``<u'v'>``, shape ``(..., ny)``."""
    vw: torch.Tensor
    """``<v'w'>``, shape ``(..., ny)``."""


def plane_statistics(state: torch.Tensor) -> PlaneStatistics:
    """Plane means, rms, ``<u'v'>`` and ``<v'w'>`` of ``state`` ``(..., 3, nx, ny, nz)`` (u_tau)."""
    mean = state.mean(dim=(-3, -1))
    fluct = state - mean[..., :, None, :, None]
    rms = fluct.square().mean(dim=(-3, -1)).clamp_min(0).sqrt()
    uv = (fluct[..., 0, :, :, :] * fluct[..., 1, :, :, :]).mean(dim=(-3, -1))
    vw = (fluct[..., 1, :, :, :] * fluct[..., 2, :, :, :]).mean(dim=(-3, -1))
    return PlaneStatistics(mean, rms, uv, vw)


def bulk_velocity(profile: torch.Tensor, grid: ChannelGrid) -> torch.Tensor:
    """Bulk velocity ``(1/2) int_0^2 U dy`` of cell-centre profiles ``(..., ny)`` (finite-volume sum)."""
    dy = torch.as_tensor(grid.dy, dtype=profile.dtype, device=profile.device)
    return (profile * dy).sum(-1) / dy.sum()


class MeanMomentum:
    """The plane-averaged momentum equations of the channel on the cell centres of ``grid``.

    Parameters
    ----------
    grid
        The channel grid (cell centres ``grid.y``, faces ``grid.y_faces``).
    re_tau
        Friction Reynolds number of the case, ``nu = 1 / re_tau``.
    dt
        Time step in h/u_tau (one step of :meth:`step`).
    substeps
        Backward-Euler sub-steps per :meth:`step` (the Reynolds stress held fixed over them).
    device, dtype
        Where the profiles live.
    """

    def __init__(
        self,
        grid: ChannelGrid,
        re_tau: float,
        dt: float,
        *,
        substeps: int = 4,
        device: Any = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        self.grid, self.nu, self.dt, self.substeps = grid, 1.0 / re_tau, dt, substeps
        y, faces, dy = grid.y, grid.y_faces, grid.dy
        ny = grid.ny
        # distances between the points each face flux differences: centres inside, centre-wall at the walls
        gap = np.empty(ny + 1)
        gap[1:-1] = np.diff(y)
        gap[0], gap[-1] = y[0] - faces[0], faces[-1] - y[-1]
        # L U: (flux_{j+1/2} - flux_{j-1/2}) / dy_j with flux = dU/dy and U = 0 on the walls
        laplacian = np.zeros((ny, ny))
        for j in range(ny):
            laplacian[j, j] -= (1.0 / gap[j] + 1.0 / gap[j + 1]) / dy[j]
            if j > 0:
                laplacian[j, j - 1] += 1.0 / (gap[j] * dy[j])
            if j < ny - 1:
                laplacian[j, j + 1] += 1.0 / (gap[j + 1] * dy[j])
        h = dt / substeps
        solve = np.linalg.inv(np.eye(ny) - h * self.nu * laplacian)
        # interpolation of a cell-centre profile to the interior faces (the wall faces carry zero stress)
        interp = grid.centre_to_face_interpolation()
        divergence = (np.eye(ny + 1)[1:] - np.eye(ny + 1)[:-1]) / dy[:, None]  # faces -> centres
        options = dict(device=device, dtype=dtype)
        self._solve = torch.as_tensor(solve, **options)
        self._stress_divergence = torch.as_tensor(divergence @ interp, **options)  # d/dy of a centre profile
        self._unit_response = self._solve @ torch.ones(ny, **options)  # A^-1 1
        self._weights = torch.as_tensor(dy / dy.sum(), **options)
        self._h = h

    def step(
        self,
        profile: torch.Tensor,
        stress: torch.Tensor,
        bulk: torch.Tensor | float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance a mean profile by ``dt``.

        Parameters
        ----------
        profile
            ``U`` (or ``W``) on the cell centres, shape ``(..., ny)``, u_tau.
        stress
            The Reynolds stress ``<u'v'>`` (or ``<v'w'>``) on the cell centres, ``(..., ny)``,
            held fixed over the step.
        bulk
            The bulk velocity to hold (constant flow rate), or ``None`` for no driving
            pressure gradient (``Pi = 0``, e.g. the spanwise mean).

        Returns
        -------
        (profile, pi)
            The profile at ``t + dt`` and the mean driving pressure gradient ``Pi`` over the step
            (u_tau^2 / h; ``1`` in a statistically steady channel in wall units).
        """
        solve = self._solve.to(profile.dtype)
        source = -(stress.to(profile.dtype) @ self._stress_divergence.to(profile.dtype).T)
        pis = []
        for _ in range(self.substeps):
            free = (profile + self._h * source) @ solve.T
            if bulk is None:
                profile, pi = free, torch.zeros(profile.shape[:-1], dtype=profile.dtype, device=profile.device)
            else:
                weights = self._weights.to(profile.dtype)
                response = self._unit_response.to(profile.dtype)
                pi = (torch.as_tensor(bulk, dtype=profile.dtype, device=profile.device) - free @ weights) / (
                    self._h * (response @ weights)
                )
                profile = free + self._h * pi[..., None] * response
            pis.append(pi)
        return profile, torch.stack(pis).mean(0)
