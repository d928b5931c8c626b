"""What a rollout imposes on each prediction: exact properties of the channel the model may miss.

A surrogate predicts the whole next state; some properties of that state are known exactly and
need not be left to the model. :class:`RolloutConstraints` applies the chosen ones to every
prediction of a rollout, in this order:

``mean_momentum``
    The plane-mean ``u`` and ``w`` profiles are not taken from the prediction but advanced from
    the previous state's by the mean-momentum equations (:class:`~surrogate.mean_flow.MeanMomentum`)
    with the Reynolds stresses ``<u'v'>``, ``<v'w'>`` of the previous state as the model
    predicted it, at the constant flow rate of the initial state. The fluctuations are the
    model's.
``zero_mean_v``
    The plane mean of ``v`` is set to zero (continuity with impermeable walls makes it vanish
    exactly).
``project``
    The prediction is replaced by its divergence-free part with ``v = 0`` on the walls
    (:class:`~surrogate.projection.CentredProjection`).
``hold_flow_rate``
    The mean streamwise velocity is shifted, uniformly in y, so that the bulk velocity equals
    that of the initial state (the DNS runs at constant flow rate); a no-op after
    ``mean_momentum``, which holds it already.

Every input is the rollout's own initial state or the model's predictions; nothing is taken from
the data the rollout is compared with. :meth:`RolloutConstraints.describe` names what was imposed,
for the attributes of the rollout file and the summary tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .grid import ChannelGrid
from .mean_flow import MeanMomentum, bulk_velocity, plane_statistics
from .projection import CentredProjection

__all__ = ["ConstraintSettings", "RolloutConstraints"]


@dataclass(frozen=True)
class ConstraintSettings:
    """Which constraints a rollout imposes (see the module docstring)."""

    mean_momentum: bool = False
    zero_mean_v: bool = False
    project: bool = False
    hold_flow_rate: bool = False

    def names(self) -> list[str]:
        """The names of the constraints that are on, in the order they are applied."""
        return [name for name in ("mean_momentum", "zero_mean_v", "project", "hold_flow_rate") if getattr(self, name)]


class RolloutConstraints:
    """Applies :class:`ConstraintSettings` to the predictions of one rollout.

    Parameters
    ----------
    settings
        The constraints to impose.
    initial
        The rollout's initial state ``(..., 3, nx, ny, nz)`` in u_tau: its bulk velocity is the
        flow rate held.
    grid, re_tau, dt
        The grid of the states, the friction Reynolds number and the time between states (h/u_tau).
    device
        Where the operators live.
    """

    def __init__(
        self,
        settings: ConstraintSettings,
        initial: torch.Tensor,
        grid: ChannelGrid,
        re_tau: float,
        dt: float,
        device: Any = "cpu",
    ) -> None:
        self.settings = settings
        self.grid = grid
        self.bulk = bulk_velocity(initial[..., 0, :, :, :].double().mean(dim=(-3, -1)), grid).to(device)
        self.momentum = MeanMomentum(grid, re_tau, dt, device=device) if settings.mean_momentum else None
        self.projection = CentredProjection(grid, device=device) if settings.project else None

    def describe(self) -> str:
        """A comma-separated list of what is imposed (``"none"`` when nothing is)."""
        return ", ".join(self.settings.names()) or "none"

    def __call__(self, prediction: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """The constrained ``prediction`` given the ``previous`` state, both ``(..., 3, nx, ny, nz)`` in u_tau."""
        state = prediction
        if self.momentum is not None:
            before = plane_statistics(previous.double())
            now = state.double().mean(dim=(-3, -1))
            u_mean, _ = self.momentum.step(before.mean[..., 0, :], before.uv, self.bulk)
            w_mean, _ = self.momentum.step(before.mean[..., 2, :], before.vw, None)
            shift = torch.stack([u_mean - now[..., 0, :], torch.zeros_like(u_mean), w_mean - now[..., 2, :]], dim=-2)
            state = state + shift[..., :, None, :, None].to(state.dtype)
        if self.settings.zero_mean_v:
            v = state[..., 1:2, :, :, :]
            state = torch.cat([state[..., :1, :, :, :], v - v.mean(dim=(-3, -1), keepdim=True), state[..., 2:, :, :, :]], dim=-4)
        if self.projection is not None:
            state = self.projection(state)
        if self.settings.hold_flow_rate and self.momentum is None:
            bulk = bulk_velocity(state[..., 0, :, :, :].double().mean(dim=(-3, -1)), self.grid)
            offset = (self.bulk - bulk).to(state.dtype)[..., None, None, None, None]
            state = torch.cat([state[..., :1, :, :, :] + offset, state[..., 1:, :, :, :]], dim=-4)
        return state
