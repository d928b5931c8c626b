"""A learned eddy viscosity: a small network of local, dimensionless flow invariants.

``nu_t = (c(q) D Delta)^2 |S|`` at every cell centre, where ``Delta`` and ``|S|`` are those of the
classical models (:func:`surrogate.solver.sgs.filter_width`, ``|S| = sqrt(2 S_ij S_ij)``),
``D = 1 - exp(-y+ / 25)`` is van Driest's wall damping with the nominal wall distance
``y+ = d / nu`` (``d`` to the nearest wall, ``u_tau = 1``), and ``c`` is a pointwise multilayer
perceptron of three invariants ``q``:

* ``(Omega_ij Omega_ij - S_ij S_ij) / (Omega_ij Omega_ij + S_ij S_ij)`` in ``[-1, 1]``: rotation
  against strain (pure shear 0, solid-body rotation 1, pure strain -1);
* ``exp(-y+ / 25)``: the wall region;
* ``log(1 + Delta^2 |S| / nu)``: the cell Reynolds number of the resolved strain.

Squaring ``c`` makes ``nu_t >= 0``, so the model only dissipates resolved energy
(``2 nu_t S_ij S_ij >= 0``), and a network whose last layer is zero gives ``nu_t = 0`` exactly
(the no-model LES, bit for bit). The damping keeps ``nu_t`` from limiting the explicit time step
at the wall. The last layer starts at zero weights and bias ``cs``, i.e. the Smagorinsky model
with ``C_s = cs`` and this damping, which training through the solver then corrects
(:mod:`surrogate.closure_training`). Every operation is differentiable with torch autograd, on
any device and dtype.
"""

from __future__ import annotations

import math
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .operators import StaggeredOperators
from .sgs import (
    EddyViscosityModel,
    _contract_symmetric,
    _strain_components,
    _velocity_gradient_components,
    filter_width,
)

__all__ = ["ClosureNetwork", "NeuralEddyViscosity", "N_FEATURES", "shipped_closures"]

N_FEATURES = 3
_A_PLUS = 25.0


class ClosureNetwork(nn.Module):
    """Pointwise MLP ``(..., N_FEATURES) -> (...)``: ``layers`` tanh layers of width ``hidden``."""

    def __init__(self, hidden: int = 16, layers: int = 2, cs: float = 0.1) -> None:
        super().__init__()
        sizes = [N_FEATURES] + [hidden] * layers
        blocks: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(n_in, n_out), nn.Tanh()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(sizes[-1], 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, cs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(features)).squeeze(-1)


class NeuralEddyViscosity(EddyViscosityModel, name="neural"):
    """The learned eddy viscosity of the module docstring (registry name ``neural``).

    Parameters
    ----------
    hidden, layers
        Width and number of hidden layers of the network.
    cs
        Initial output of the network: the Smagorinsky constant it starts from.
    weights
        A file written by :meth:`save`, or the name of a shipped closure (:func:`shipped_closures`,
        e.g. ``"neural-re180"``); its network replaces the initial one.
    """


    def __init__(self, hidden: int = 16, layers: int = 2, cs: float = 0.1, weights: str | None = None) -> None:
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"NeuralEddyViscosity.hidden must be a positive integer, got {hidden!r}")
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise ValueError(f"NeuralEddyViscosity.layers must be a positive integer, got {layers!r}")
        if not (isinstance(cs, (int, float)) and math.isfinite(cs)):
            raise ValueError(f"NeuralEddyViscosity.cs must be a finite number, got {cs!r}")
        self.hidden, self.layers, self.cs = hidden, layers, float(cs)
        self.weights = None if weights is None else str(weights)
        self.network = ClosureNetwork(hidden, layers, self.cs).double()
        if weights is not None:
            self.network.load_state_dict(_read_weights(_weights_path(str(weights)), hidden, layers))

    def parameters(self) -> dict[str, Any]:
        """``{"hidden", "layers", "cs", "weights"}`` (``weights`` only when loaded from a file)."""
        out: dict[str, Any] = {"hidden": self.hidden, "layers": self.layers, "cs": self.cs}
        if self.weights is not None:
            out["weights"] = self.weights
        return out

    def features(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The invariants ``(nx, ny, nz, N_FEATURES)`` and ``(D Delta)^2 |S|`` ``(nx, ny, nz)`` in ``u_tau h``."""
        g = _velocity_gradient_components(ops, u, v, w)
        strain = _strain_components(g)
        ss = _contract_symmetric(strain, strain)
        rotation = [0.5 * (g[j][i] - g[i][j]) for i, j in ((1, 2), (2, 0), (0, 1))]
        oo = 2.0 * (rotation[0] ** 2 + rotation[1] ** 2 + rotation[2] ** 2)  # Omega_ij Omega_ij
        tiny = torch.finfo(u.dtype).tiny
        magnitude = torch.sqrt(2.0 * ss + tiny)  # |S|, differentiable at S = 0
        delta = filter_width(ops).to(u)
        scale = delta**2 * magnitude
        y = (torch.cumsum(ops.dy, dim=1) - 0.5 * ops.dy).to(u)
        wall = torch.exp(-torch.minimum(y, 2.0 - y) / (nu * _A_PLUS)).expand_as(ss)
        features = torch.stack([(oo - ss) / (oo + ss + tiny), wall, torch.log1p(scale / nu)], dim=-1)
        return features, scale * (1.0 - wall) ** 2

    def eddy_viscosity(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu: float
    ) -> torch.Tensor:
        """``nu_t = (c D Delta)^2 |S| >= 0``, shape ``(nx, ny, nz)``, in ``u_tau h``."""
        features, scale = self.features(ops, u, v, w, nu)
        self.network.to(device=u.device, dtype=u.dtype)
        return scale * self.network(features) ** 2

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the network's weights and sizes atomically (read back with ``weights=path``)."""
        from ..atomic import save_torch

        state = {key: value.detach().cpu() for key, value in self.network.state_dict().items()}
        return save_torch({"closure": self.name, "hidden": self.hidden, "layers": self.layers, "state_dict": state}, path)


def shipped_closures() -> list[str]:
    """Names of the closures that ship with the package (``weights=NAME``)."""
    folder = resources.files("surrogate.resources") / "closures"
    return sorted(item.name[:-3] for item in folder.iterdir() if item.name.endswith(".pt")) if folder.is_dir() else []


def _weights_path(weights: str) -> Path:
    """A shipped closure's file for its name, else ``weights`` as a path."""
    if weights in shipped_closures():
        return Path(str(resources.files("surrogate.resources") / "closures" / f"{weights}.pt"))
    return Path(weights)


def _read_weights(path: Path, hidden: int, layers: int) -> dict[str, torch.Tensor]:
    """The state dict of a closure file, checked against the sizes asked for."""
    if not path.is_file():
        raise ValueError(
            f"sgs weights {str(path)!r}: no such file (written by NeuralEddyViscosity.save) and no shipped "
            f"closure of that name (shipped: {', '.join(shipped_closures()) or 'none'})"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, empty or not a torch file
        raise ValueError(f"sgs weights {path} cannot be read as a closure file: {type(exc).__name__}") from None
    if not isinstance(payload, dict) or payload.get("closure") != NeuralEddyViscosity.name:
        raise ValueError(f"sgs weights {path} is not a file written by NeuralEddyViscosity.save")
    if (payload["hidden"], payload["layers"]) != (hidden, layers):
        raise ValueError(
            f"sgs weights {path} hold a network with hidden={payload['hidden']}, layers={payload['layers']}; "
            f"the case asks for hidden={hidden}, layers={layers}"
        )
    return {key: value.double() for key, value in payload["state_dict"].items()}
