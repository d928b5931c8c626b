"""The Tollmien–Schlichting wave of plane Poiseuille flow run with the channel solver (a problem with a known answer).

:func:`tollmien_schlichting_growth` measures the growth rate of the Tollmien–Schlichting wave of
plane Poiseuille flow and compares it with the Orr–Sommerfeld eigenvalue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..grid import ChannelGrid
from .channel import ChannelSolver, ChannelState
from .linear_stability import orr_sommerfeld

__all__ = ["GrowthRateResult", "tollmien_schlichting_growth"]


@dataclass(frozen=True)
class GrowthRateResult:
    """Measured and Orr–Sommerfeld growth rates (in U_c / h) and the run that measured them."""

    measured: float
    expected: float
    grid: ChannelGrid
    final_divergence: float

    @property
    def relative_error(self) -> float:
        """``measured / expected - 1``."""
        return self.measured / self.expected - 1.0


def _perturbation_amplitude(solver: ChannelSolver, state: ChannelState, base: torch.Tensor) -> float:
    """Square root of the perturbation kinetic energy per unit wall area."""
    ops = solver.ops
    du = ((state.u - base) ** 2).mean(dim=(0, 2)) * ops.dy.view(-1)
    dv = (state.v**2).mean(dim=(0, 2))[1:-1] * ops.dyc.view(-1)
    return math.sqrt(float(du.sum() + dv.sum()))


def tollmien_schlichting_growth(
    *,
    re_centre: float = 7500.0,
    alpha: float = 1.0,
    nx: int = 64,
    ny: int = 256,
    stretching: float = 1.5,
    cfl: float = 0.5,
    duration: float = 60.0,
    n_samples: int = 31,
    amplitude: float = 1e-4,
) -> GrowthRateResult:
    """Grow the least stable Orr–Sommerfeld mode in the solver and fit its growth rate.

    The laminar flow driven by ``-dP/dx = 1`` in wall units has centreline velocity
    ``U_c = Re_tau / 2`` and ``Re_c = Re_tau^2 / 2``; the solver runs at that Re_tau on a
    two-dimensional grid one wavelength long, starting from the laminar state plus the
    eigenfunction with peak velocity ``amplitude * U_c``. The growth rate is the slope of the
    log of the perturbation amplitude over the last two thirds of ``duration`` (in ``h/U_c``).

    Parameters
    ----------
    re_centre, alpha
        Reynolds number ``U_c h / nu`` and streamwise wavenumber (in 1/h).
    nx, ny, stretching
        The grid (``lx = 2 pi / alpha``, one spanwise cell).
    cfl
        Fixed time step as a CFL number based on ``U_c`` and ``dx``.
    duration, n_samples
        Length of the run in ``h/U_c`` and number of amplitude samples.
    amplitude
        Initial perturbation size relative to ``U_c`` (small enough to stay linear).
    """
    mode = orr_sommerfeld(re_centre, alpha)
    re_tau = math.sqrt(2.0 * re_centre)
    u_centre = re_tau / 2.0
    grid = ChannelGrid(nx, ny, 1, lx=2.0 * math.pi / alpha, lz=1.0, stretching=stretching)
    solver = ChannelSolver(grid, re_tau, "constant_pressure_gradient")
    laminar = solver.initial_condition("laminar")

    xu, yu = np.meshgrid(grid.x_faces, grid.y - 1.0, indexing="ij")
    xv, yv = np.meshgrid(grid.x, grid.y_faces - 1.0, indexing="ij")
    u_mode = torch.as_tensor(mode.velocity(xu, yu)[0], dtype=solver.dtype)[:, :, None]
    v_mode = torch.as_tensor(mode.velocity(xv, yv)[1], dtype=solver.dtype)[:, :, None]
    scale = amplitude * u_centre
    state = solver.project(ChannelState(laminar.u + scale * u_mode, scale * v_mode, laminar.w, laminar.p))

    dt = cfl * grid.dx / u_centre
    times, log_amplitude = [], []
    for k in range(n_samples):
        if k:
            state = solver.run(state, t_end=k * duration / (n_samples - 1) / u_centre, dt=dt)
        times.append(state.time * u_centre)
        log_amplitude.append(math.log(_perturbation_amplitude(solver, state, laminar.u)))
    first = n_samples // 3  # let the small projection onto damped modes decay
    rate = float(np.polyfit(times[first:], log_amplitude[first:], 1)[0])
    return GrowthRateResult(rate, mode.growth_rate, grid, float(solver.divergence(state).abs().max()))
