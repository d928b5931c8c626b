"""Training a subgrid closure a posteriori: through the LES solver, against filtered DNS.

The coarse solver with a learned closure (:class:`surrogate.solver.NeuralEddyViscosity`) is
unrolled ``steps`` time steps from a filtered-DNS state; the loss compares the state it reaches
with the filtered DNS at that time, and torch autograd carries the gradient back through every
RK3 substep, pressure projection and implicit diffusion solve to the network's weights (List,
Chen & Thuerey, JFM 949, 2022; Kochkov et al., PNAS 118, 2021). Each step is recomputed in the
backward pass (``torch.utils.checkpoint``), so memory holds one step's graph, not ``steps``.

Loss of one sample: the squared error of the three cell-centred velocity components, each
divided by the variance of that component's fluctuations in the target (so that v and w count as
much as u), averaged over the components.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import torch
from torch.utils.checkpoint import checkpoint

from .solver.channel import ChannelSolver, ChannelState

__all__ = ["ClosureSample", "a_posteriori_loss", "train_closure_step", "unroll"]


@dataclass(frozen=True)
class ClosureSample:
    """One training sample: a start state and the filtered DNS ``steps`` solver steps later.

    ``target`` holds ``u, v, w`` at the cell centres, ``(3, nx, ny, nz)`` in u_tau.
    """

    initial: ChannelState
    target: torch.Tensor
    steps: int


def unroll(solver: ChannelSolver, state: ChannelState, steps: int, dt: float, recompute: bool = True) -> ChannelState:
    """``steps`` solver steps of size ``dt`` (h/u_tau), differentiable; ``recompute`` checkpoints each step."""

    def advance(u, v, w, p):
        new = solver.step(replace(state, u=u, v=v, w=w, p=p), dt)
        return new.u, new.v, new.w, new.p

    fields = (state.u, state.v, state.w, state.p)
    for _ in range(steps):
        fields = checkpoint(advance, *fields, use_reentrant=False) if recompute else advance(*fields)
    u, v, w, p = fields
    return replace(state, u=u, v=v, w=w, p=p, time=state.time + steps * dt, step=state.step + steps)


def a_posteriori_loss(
    solver: ChannelSolver, sample: ClosureSample, dt: float, recompute: bool = True
) -> torch.Tensor:
    """The loss of the module docstring for one sample (a 0-d tensor with a graph to the closure)."""
    final = unroll(solver, sample.initial, sample.steps, dt, recompute)
    predicted = torch.stack(solver.ops.to_centres(final.u, final.v, final.w))
    target = sample.target.to(predicted)
    scale = target.var(dim=(1, 3), keepdim=True).mean(dim=2, keepdim=True)  # fluctuation variance per component
    return ((predicted - target) ** 2 / scale).mean()


def train_closure_step(
    solver: ChannelSolver,
    samples: Sequence[ClosureSample] | Iterable[ClosureSample],
    optimizer: torch.optim.Optimizer,
    dt: float,
    recompute: bool = True,
    max_grad_norm: float = 1.0,
) -> float:
    """One optimiser step on the mean loss of ``samples``; returns that loss (before the step).

    The gradient is clipped to norm ``max_grad_norm``: an eddy viscosity past the explicit
    diffusion limit of ``dt`` makes the unrolled solver (and its gradient) explode, and one such
    gradient would otherwise wreck the optimiser's state. A non-finite loss leaves the weights
    as they were.
    """
    optimizer.zero_grad(set_to_none=True)
    losses = [a_posteriori_loss(solver, sample, dt, recompute) for sample in samples]
    loss = torch.stack(losses).mean()
    if not torch.isfinite(loss):
        return float("nan")
    loss.backward()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    optimizer.step()
    return float(loss.detach())
