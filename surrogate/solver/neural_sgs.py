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
(the no-model LES, to round-off: the LES sums the eddy-viscous flux into the convective one before
differencing). The damping keeps ``nu_t`` from limiting the explicit time step
at the wall. The last layer starts at zero weights and bias ``cs``, i.e. the Smagorinsky model
with ``C_s = cs`` and this damping, which training through the solver then corrects
(:mod:`surrogate.closure_training`). Every operation is differentiable with torch autograd, on
any device and dtype.

With ``mean_field=True`` the closure has a second part, a mean-field eddy viscosity
``nu_T(d) = nu (m(d) D)^2`` of the wall distance alone (``m`` a second small MLP of
``exp(-d+ / 25)`` and ``d``) whose stress ``nu_T dU/dy`` acts on the plane-mean shear only: the
two-part models of Schumann (1975) and Sullivan, McWilliams & Moeng (1994), which carry the mean
subgrid shear stress that a coarse grid's resolved motions cannot, without damping those motions.
It dissipates only mean-flow energy (``nu_T (dU/dy)^2 >= 0``). :func:`a_priori_mean_field_viscosity`
estimates it from the resolved momentum balance of filtered-DNS statistics, and
:meth:`NeuralEddyViscosity.fit_mean_field` starts the network there. With ``fluctuating=False``
the pointwise part is left out (no per-cell network to evaluate).

With ``rotation=True`` it has a third part, a stress that moves energy between the velocity
components and dissipates none: ``tau_ij = r(d) D^2 Delta^2 (S_ik Omega_kj - Omega_ik S_kj)``
(the strain-rotation commutator of the nonlinear and tensor-basis models, e.g. Lund & Novikov
1992, Pope 1975; its contraction with ``S_ij`` vanishes), with ``r`` a third small MLP of the wall
distance, started at zero. A coarse grid's streaks hold too much streamwise and too little
spanwise energy; this is the term that can redistribute it.

With ``anisotropy=True`` it has a fourth part, the two quadratic terms of the tensor basis that
the commutator lacks, ``tau_ij = D^2 Delta^2 (a_S(d) (S S)^d_ij + a_O(d) (Omega Omega)^d_ij)``
(``^d``: the traceless part; Pope 1975; the gradient model of Clark, Ferziger & Reynolds 1979
holds both), with ``a_S, a_O`` the two outputs of a fourth small MLP of the wall distance,
started at zero. In a plane shear flow the commutator has no spanwise normal stress and these
terms do, so they are the part that can move energy into or out of the spanwise component. Unlike
the commutator they are not free of work against the strain (``tr(S S S)`` and ``tr(Omega Omega
S)`` have no sign); training a posteriori is what keeps them stable.

With ``linear_forcing=True`` it has a fifth part, which is not a stress: a force on each velocity
component's fluctuation about its plane mean, ``f_i = lambda_i (u_i - <u_i>_xz)``. A positive rate
feeds a component's fluctuations (the linear forcing of Lundgren 2003 and Rosales & Meneveau 2005,
here one rate per component and height), a negative one damps them; it adds no momentum to any
plane. A fifth small MLP ``l`` of the wall distance (four outputs, started at zero) gives three free
rates ``rho_i`` and the rate ``r`` of a return to isotropy of the plane's component energies
(Rotta 1951), each ``LINEAR_FORCING_BOUND tanh(l)``; on each plane they are combined and shifted
so that the forcing never does positive work there (:func:`linear_forcing_rates`): it can only
move energy between the components, as the pressure-strain correlation does, or remove it. It is
the direct way to pass the spanwise fluctuations the energy that a coarse grid's redistribution
fails to give them, out of too-strong streaks; the bound keeps ``|lambda_i| dt`` far inside the
explicit RK3 stability interval at the convective time steps of LES grids.

With ``forcing_target=True`` (and ``linear_forcing``) the forcing has one more rate, a return of
each component's plane energy toward a target of the wall distance: ``s (E_i / c_i - 1)``, with
``c_i`` the plane energy of the fluctuations averaged to the cell centres (where filtered DNS and
the statistics live), target energies ``E_i(d) = exp(a_i(d))`` and a rate ``s(d)``, from a sixth
small MLP (four outputs, started at zero: ``s = 0``, no term). Like the other rates it is bounded
by the rule that the forcing never works on a plane, so it can only move energy between the
components or remove it: where a plane holds more energy than the targets it drains the excess,
where it holds the right total in the wrong components it redistributes it. It acts on the resolved
flow's own state, so it acts differently on two boxes whose resolved flows differ, as rates of the
wall distance alone cannot. :meth:`NeuralEddyViscosity.fit_forcing_target` starts it at given
energies and rate, e.g. the training split's resolved energies (``surrogate closure`` does so for a
target the closure file lacks): a learned relaxation toward the resolved statistics of one flow at
one resolution, not a model that carries over to other Reynolds numbers or grids unretrained.

Rotta, J. (1951). Statistische Theorie nichthomogener Turbulenz. Z. Phys. 129, 547-572.

Schumann, U. (1975). Subgrid scale model for finite difference simulations of turbulent flows in
plane channels and annuli. J. Comput. Phys. 18, 376-404.

Lundgren, T. S. (2003). Linearly forced isotropic turbulence. Annual Research Briefs, Center for
Turbulence Research, 461-473.

Lund, T. S. & Novikov, E. A. (1992). Parameterization of subgrid-scale stress by the velocity
gradient tensor. Annual Research Briefs, Center for Turbulence Research, 27-43.

Clark, R. A., Ferziger, J. H. & Reynolds, W. C. (1979). Evaluation of subgrid-scale models using
an accurately simulated turbulent flow. J. Fluid Mech. 91, 1-16.

Rosales, C. & Meneveau, C. (2005). Linear forcing in numerical simulations of isotropic
turbulence: physical space implementations and convergence properties. Phys. Fluids 17, 095106.

Pope, S. B. (1975). A more general effective-viscosity hypothesis. J. Fluid Mech. 72, 331-340.

Sullivan, P. P., McWilliams, J. C. & Moeng, C.-H. (1994). A subgrid-scale model for large-eddy
simulation of planetary boundary-layer flows. Boundary-Layer Meteorol. 71, 247-276.
"""

from __future__ import annotations

import math
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..closure_parts import CLOSURE_PARTS, LINEAR_FORCING_BOUND
from .operators import StaggeredOperators
from .sgs import (
    EddyViscosityModel,
    _contract_symmetric,
    _strain_components,
    _velocity_gradient_components,
    filter_width,
)

__all__ = ["ClosureNetwork", "LINEAR_FORCING_BOUND", "NeuralEddyViscosity", "N_FEATURES", "a_priori_mean_field_viscosity", "linear_forcing_rates", "shipped_closures", "strain_rotation_commutator", "traceless_squares"]

N_FEATURES = 3
_A_PLUS = 25.0
#: Network sizes and parts of a closure built without weights (with weights: those of the file).
_DEFAULT_SIZES = {"hidden": 16, "layers": 2, **{part: part == "fluctuating" for part in CLOSURE_PARTS}}
#: The parts of a closure beside the pointwise one, with the key of their weights in a closure file.
_PART_STATES = {"mean_field": "mean_state_dict", "rotation": "rotation_state_dict", "anisotropy": "anisotropy_state_dict",
                "linear_forcing": "forcing_state_dict", "forcing_target": "forcing_target_state_dict"}
#: Parts that start as no term, so that a case may add them to a closure file that lacks them and
#: start from that closure unchanged.
_NEUTRAL_PARTS = tuple(part for part in CLOSURE_PARTS if part != "fluctuating")


class ClosureNetwork(nn.Module):
    """Pointwise MLP ``(..., n_features) -> (...)`` (``(..., n_outputs)`` for more than one output):
    ``layers`` tanh layers of width ``hidden``, a last layer of zero weights and bias ``cs``."""

    def __init__(
        self, hidden: int = 16, layers: int = 2, cs: float = 0.1, n_features: int = N_FEATURES, n_outputs: int = 1
    ) -> None:
        super().__init__()
        sizes = [n_features] + [hidden] * layers
        blocks: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(n_in, n_out), nn.Tanh()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(sizes[-1], n_outputs)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, cs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(features))
        return out.squeeze(-1) if out.shape[-1] == 1 else out


def _damping(distance: torch.Tensor, nu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``exp(-d+ / 25)`` and van Driest's ``D = 1 - exp(-d+ / 25)`` at wall distances ``d`` (``u_tau = 1``)."""
    wall = torch.exp(-distance / (nu * _A_PLUS))
    return wall, 1.0 - wall


def _centre_distance(ops: StaggeredOperators) -> torch.Tensor:
    """Wall distance of the ``ny`` cell centres, ``(1, ny, 1)`` in ``h``."""
    y = torch.cumsum(ops.dy, dim=1) - 0.5 * ops.dy
    return torch.minimum(y, 2.0 - y)


def _face_distance(ops: StaggeredOperators) -> torch.Tensor:
    """Wall distance of the ``ny + 1`` wall-normal faces (walls included), ``(1, ny + 1, 1)`` in ``h``."""
    faces = torch.cat([torch.zeros_like(ops.dy[:, :1]), torch.cumsum(ops.dy, dim=1)], dim=1)
    return torch.minimum(faces, 2.0 - faces)


def _rotation_components(g) -> tuple[torch.Tensor, ...]:
    """``(Omega_12, Omega_13, Omega_23)`` of ``Omega_ij = (g_ij - g_ji) / 2``."""
    return tuple((g[i][j] - g[j][i]).mul_(0.5) for i, j in ((0, 1), (0, 2), (1, 2)))


def strain_rotation_commutator(g) -> tuple[torch.Tensor, ...]:
    """``C = S Omega - Omega S`` of a velocity gradient, six components ``(xx, yy, zz, xy, xz, yz)``.

    ``S`` and ``Omega`` are the symmetric and antisymmetric parts of ``g`` (``g[i][j] = du_i/dx_j``,
    nine fields or a ``(3, 3, ...)`` tensor, in ``u_tau / h``). ``C`` is symmetric and traceless
    (``C = P + P^T`` with ``P = S Omega``): fifteen products of the six strain components and the
    three rotation components ``Omega_12, Omega_13, Omega_23`` give it, in ``(u_tau / h)^2``.
    """
    return _commutator(_strain_components(g), _rotation_components(g))


def _commutator(strain: tuple[torch.Tensor, ...], rotation: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    s11, s22, s33, s12, s13, s23 = strain
    o12, o13, o23 = rotation
    return (
        (s12 * o12).addcmul_(s13, o13).mul_(-2.0),
        (s12 * o12).addcmul_(s23, o23, value=-1.0).mul_(2.0),
        (s13 * o13).addcmul_(s23, o23).mul_(2.0),
        (s11 - s22).mul_(o12).addcmul_(s13, o23, value=-1.0).addcmul_(s23, o13, value=-1.0),
        (s11 - s33).mul_(o13).addcmul_(s12, o23).addcmul_(s23, o12, value=-1.0),
        (s22 - s33).mul_(o23).addcmul_(s12, o13).addcmul_(s13, o12),
    )


def traceless_squares(g) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """The traceless parts of ``S S`` and ``Omega Omega`` of a velocity gradient, six components
    ``(xx, yy, zz, xy, xz, yz)`` each, in ``(u_tau / h)^2``.

    ``g`` as for :func:`strain_rotation_commutator`.
    """
    return _traceless_squares(_strain_components(g), _rotation_components(g))


def _traceless_squares(strain, rotation) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    s11, s22, s33, s12, s13, s23 = strain
    o12, o13, o23 = rotation
    q12, q13, q23 = s12 * s12, s13 * s13, s23 * s23
    d11, d22, d33 = s11 * s11 + q12 + q13, s22 * s22 + q12 + q23, s33 * s33 + q13 + q23
    third = (d11 + d22 + d33) / 3.0
    ss = (
        d11 - third, d22 - third, d33 - third,
        (s11 + s22).mul_(s12).addcmul_(s13, s23),
        (s11 + s33).mul_(s13).addcmul_(s12, s23),
        (s22 + s33).mul_(s23).addcmul_(s12, s13),
    )
    p12, p13, p23 = o12 * o12, o13 * o13, o23 * o23
    third = (p12 + p13 + p23) * (2.0 / 3.0)  # -tr(Omega Omega) / 3
    oo = (third - p12 - p13, third - p12 - p23, third - p13 - p23, -o13 * o23, o12 * o23, -o12 * o13)
    return ss, oo


class NeuralEddyViscosity(EddyViscosityModel, name="neural"):
    """The learned eddy viscosity of the module docstring (registry name ``neural``).

    Parameters
    ----------
    hidden, layers
        Width and number of hidden layers of each network (16 and 2 unless given, or those of
        ``weights``).
    cs
        Initial output of the pointwise network: the Smagorinsky constant it starts from.
    weights
        A file written by :meth:`save`, or the name of a shipped closure (:func:`shipped_closures`,
        e.g. ``"neural-mean-rotation-re180"``); its networks replace the initial ones, and its sizes
        and parts are the closure's (any given here must match them).
    mean_field
        Add the mean-field eddy viscosity ``nu_T(d)`` (starts at zero; default off).
    fluctuating
        Keep the pointwise eddy viscosity (default on; ``False``: the other parts alone).
    rotation
        Add the non-dissipative strain-rotation stress ``r(d)`` (starts at zero; default off).
    anisotropy
        Add the stress of the traceless squares of strain and rotation, ``a_S(d), a_O(d)`` (start
        at zero; default off).
    linear_forcing
        Add the linear forcing of each component's plane fluctuation: free rates and a return to
        isotropy, never working on a plane (rates start at zero; default off).
    forcing_target
        Add a return of each component's plane energy toward a learned target ``E_i(d)`` at a
        learned rate ``s(d)`` (starts at ``s = 0``; needs ``linear_forcing``; default off).

    A closure file's parts may be extended by the parts of :data:`_NEUTRAL_PARTS` it lacks: they
    start as no term, so the closure starts as the file's. :attr:`fresh_parts` names the parts not
    read from a file (every part without ``weights``).
    """

    def __init__(
        self,
        hidden: int | None = None,
        layers: int | None = None,
        cs: float = 0.1,
        weights: str | None = None,
        mean_field: bool | None = None,
        fluctuating: bool | None = None,
        rotation: bool | None = None,
        anisotropy: bool | None = None,
        linear_forcing: bool | None = None,
        forcing_target: bool | None = None,
    ) -> None:
        given = {"hidden": hidden, "layers": layers, "mean_field": mean_field, "fluctuating": fluctuating,
                 "rotation": rotation, "anisotropy": anisotropy, "linear_forcing": linear_forcing,
                 "forcing_target": forcing_target}
        states, added = None, set()
        if weights is not None:  # the file's sizes, where the caller gives none
            path = _weights_path(str(weights))
            held, states = _read_weights(path)
            added = {key for key in _NEUTRAL_PARTS if given[key] is True and not held[key]}
            clash = {key: value for key, value in given.items()
                     if value is not None and value != held[key] and key not in added}
            if clash:
                show = lambda d: ", ".join(f"{key}={d[key]}" for key in clash)  # noqa: E731
                raise ValueError(f"sgs weights {path} hold a closure with {show(held)}; the case asks for {show(clash)}")
            given = {**held, **{key: True for key in added}}
        hidden, layers, mean_field, fluctuating, rotation, anisotropy, linear_forcing, forcing_target = (
            _DEFAULT_SIZES[key] if value is None else value for key, value in given.items()
        )
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"NeuralEddyViscosity.hidden must be a positive integer, got {hidden!r}")
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise ValueError(f"NeuralEddyViscosity.layers must be a positive integer, got {layers!r}")
        if not (isinstance(cs, (int, float)) and math.isfinite(cs)):
            raise ValueError(f"NeuralEddyViscosity.cs must be a finite number, got {cs!r}")
        flags = dict(zip(CLOSURE_PARTS, (mean_field, fluctuating, rotation, anisotropy, linear_forcing, forcing_target)))
        if not all(isinstance(flag, bool) for flag in flags.values()) or not any(flags.values()):
            raise ValueError(f"NeuralEddyViscosity needs one of {', '.join(CLOSURE_PARTS)} true (booleans), got {flags}")
        if forcing_target and not linear_forcing:
            raise ValueError("NeuralEddyViscosity.forcing_target needs linear_forcing=True: it is a rate of that forcing")
        self.hidden, self.layers, self.cs = hidden, layers, float(cs)
        self.mean_field, self.fluctuating, self.rotation, self.anisotropy = mean_field, fluctuating, rotation, anisotropy
        self.linear_forcing, self.forcing_target = linear_forcing, forcing_target
        self.weights = None if weights is None else str(weights)
        self.network = ClosureNetwork(hidden, layers, self.cs).double()
        profile = lambda on, outputs=1: (  # noqa: E731  a network of the wall distance, starting at zero
            ClosureNetwork(hidden, layers, 0.0, n_features=2, n_outputs=outputs).double() if on else None
        )
        self.mean_network = profile(mean_field)
        self.rotation_network = profile(rotation)
        self.anisotropy_network = profile(anisotropy, 2)
        self.forcing_network = profile(linear_forcing, 4)
        self.target_network = profile(forcing_target, 4)
        self.fresh_parts = frozenset(part for part in CLOSURE_PARTS if flags[part] and (states is None or part in added))
        if states is not None:
            self.network.load_state_dict(states["state_dict"])
            for part, module in self._part_networks().items():
                if module is not None and _PART_STATES[part] in states:  # an added part keeps its start
                    module.load_state_dict(states[_PART_STATES[part]])

    def _part_networks(self) -> dict[str, nn.Module | None]:
        """The networks of the wall distance by part name (``None`` for a part the closure lacks)."""
        return {"mean_field": self.mean_network, "rotation": self.rotation_network, "anisotropy": self.anisotropy_network,
                "linear_forcing": self.forcing_network, "forcing_target": self.target_network}

    def _sizes(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "layers": self.layers, **{part: getattr(self, part) for part in CLOSURE_PARTS}}

    def parameters(self) -> dict[str, Any]:
        """``{"hidden", "layers", "cs"}``, the parts (:data:`~surrogate.closure_parts.CLOSURE_PARTS`)
        where not the default, ``weights`` when loaded from a file."""
        out: dict[str, Any] = {"hidden": self.hidden, "layers": self.layers, "cs": self.cs}
        out.update({key: value for key, value in self._sizes().items() if key not in out and value != _DEFAULT_SIZES[key]})
        if self.weights is not None:
            out["weights"] = self.weights
        return out

    def networks(self) -> nn.ModuleDict:
        """The networks in use, by part name, e.g. for an optimiser or ``.to()``."""
        used = {"fluctuating": self.network if self.fluctuating else None, **self._part_networks()}
        return nn.ModuleDict({key: module for key, module in used.items() if module is not None})

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
        wall, damping = _damping(_centre_distance(ops).to(u), nu)
        wall = wall.expand_as(ss)
        features = torch.stack([(oo - ss) / (oo + ss + tiny), wall, torch.log1p(scale / nu)], dim=-1)
        return features, scale * damping**2

    def eddy_viscosity(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu: float
    ) -> torch.Tensor | None:
        """``nu_t = (c D Delta)^2 |S| >= 0``, shape ``(nx, ny, nz)``, in ``u_tau h``; ``None`` without the
        pointwise part."""
        if not self.fluctuating:
            return None
        features, scale = self.features(ops, u, v, w, nu)
        self.network.to(device=u.device, dtype=u.dtype)
        return scale * self.network(features) ** 2

    def mean_field_viscosity(self, ops: StaggeredOperators, nu: float) -> torch.Tensor | None:
        """``nu_T = nu (m(d) D)^2 >= 0`` on the ``ny + 1`` wall-normal faces (zero on the walls),
        ``(1, ny + 1, 1)`` in ``u_tau h``; ``None`` without the mean-field part."""
        if self.mean_network is None:
            return None
        distance = _face_distance(ops)
        wall, damping = _damping(distance, nu)
        self.mean_network.to(device=distance.device, dtype=distance.dtype)
        return nu * (self.mean_network(torch.stack([wall, distance], dim=-1)) * damping) ** 2

    def residual_stress_coefficient(self, ops: StaggeredOperators, nu: float) -> torch.Tensor | None:
        """The profiles of the residual parts that the closure has, over the cell rows: the stress
        coefficients ``(r, a_S, a_O) D^2 Delta^2`` in ``h^2`` (rotation, then anisotropy), then the
        four rates ``(rho_u, rho_v, rho_w, r)`` of the linear forcing in ``u_tau / h`` and, with
        ``forcing_target``, the rate ``s`` and the energies ``E_i`` of its target in ``u_tau^2``
        (:func:`linear_forcing_rates`); ``(n_profiles, 1, ny, 1)``, ``None`` without any of these parts."""
        if self.rotation_network is None and self.anisotropy_network is None and self.forcing_network is None:
            return None
        distance = _centre_distance(ops)
        wall, damping = _damping(distance, nu)
        inputs = torch.stack([wall, distance], dim=-1)

        def rows(module: nn.Module) -> list[torch.Tensor]:
            module.to(device=distance.device, dtype=distance.dtype)
            out = module(inputs)
            return [out] if out.dim() == distance.dim() else list(out.movedim(-1, 0))

        stress = [row for module in (self.rotation_network, self.anisotropy_network) if module is not None for row in rows(module)]
        profiles = [row * (damping * filter_width(ops)) ** 2 for row in stress]
        if self.forcing_network is not None:
            profiles += [LINEAR_FORCING_BOUND * torch.tanh(row) for row in rows(self.forcing_network)]
        if self.target_network is not None:
            rate, *logs = rows(self.target_network)
            profiles += [LINEAR_FORCING_BOUND * torch.tanh(rate), *(torch.exp(log_energy) for log_energy in logs)]
        return torch.stack(profiles)

    def _n_stress_profiles(self) -> int:
        return (self.rotation_network is not None) + 2 * (self.anisotropy_network is not None)

    def residual_force(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, coefficient: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The force of the residual parts at the u, v and w points, in ``u_tau^2 / h``: minus the
        divergence of :meth:`residual_stress` plus the linear forcing ``lambda_i (u_i - <u_i>_xz)``
        (rates of :func:`linear_forcing_rates`, interpolated to the wall-normal faces for ``v``),
        for the profiles of :meth:`residual_stress_coefficient`."""
        n_stress = self._n_stress_profiles()
        if n_stress:
            forces = list(super().residual_force(ops, u, v, w, coefficient[:n_stress]))
        else:
            forces = [torch.zeros_like(u), torch.zeros_like(v), torch.zeros_like(w)]
        if self.forcing_network is not None:
            fluctuations = [velocity - velocity.mean(dim=(0, 2), keepdim=True) for velocity in (u, v, w)]
            rate_u, rate_v, rate_w = linear_forcing_rates(ops, coefficient[n_stress:], *fluctuations)
            rates = (rate_u, ops.pad_faces(ops.y_interpolate(rate_v)), rate_w)
            forces = [force + rate * fluctuation for force, rate, fluctuation in zip(forces, rates, fluctuations)]
        return tuple(forces)

    def residual_stress(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, coefficient: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """``tau_ij = D^2 Delta^2 (r (S Omega - Omega S) + a_S (S S)^d + a_O (Omega Omega)^d)_ij`` at the
        cell centres, six components ``(xx, yy, zz, xy, xz, yz)`` in ``u_tau^2``, for the
        stress profiles of :meth:`residual_stress_coefficient` (the terms of the parts the closure has)."""
        g = _velocity_gradient_components(ops, u, v, w)
        strain, rotation = _strain_components(g), _rotation_components(g)
        terms = []
        if self.rotation_network is not None:
            terms.append(_commutator(strain, rotation))
        if self.anisotropy_network is not None:
            terms.extend(_traceless_squares(strain, rotation))
        tau = [c.mul_(coefficient[0]) for c in terms[0]]
        for term, profile in zip(terms[1:], coefficient[1:]):
            for total, c in zip(tau, term):
                total.addcmul_(c, profile)
        return tuple(tau)

    def fit_mean_field(self, ops: StaggeredOperators, nu: float, target: torch.Tensor, iterations: int = 3000) -> float:
        """Fit the mean-field network to ``target`` ``nu_T`` on the faces (e.g.
        :func:`a_priori_mean_field_viscosity`) by least squares on ``m``; returns the relative
        L2 misfit of ``nu_T`` on the interior faces."""
        if self.mean_network is None:
            raise ValueError("fit_mean_field needs a closure with mean_field=True")
        distance = _face_distance(ops)[0, 1:-1, 0]
        wall, damping = _damping(distance, nu)
        self.mean_network.to(device=distance.device, dtype=distance.dtype)
        goal = torch.sqrt(target.reshape(-1)[1:-1].to(distance).clamp(min=0.0) / nu) / damping
        _fit_outputs(self.mean_network, torch.stack([wall, distance], dim=-1), goal, iterations)
        with torch.no_grad():
            fitted = self.mean_field_viscosity(ops, nu).reshape(-1)[1:-1]
            wanted = target.reshape(-1)[1:-1].to(fitted).clamp(min=0.0)
            return float(torch.linalg.vector_norm(fitted - wanted) / torch.linalg.vector_norm(wanted))

    def fit_forcing_target(
        self, ops: StaggeredOperators, nu: float, energies: torch.Tensor, rate: float, iterations: int = 3000
    ) -> float:
        """Fit the forcing target's network to the plane energies ``energies`` ``(3, ny)`` over the
        cell rows (``u_tau^2``, positive; e.g. the squared rms profiles of filtered DNS) and to the
        constant rate ``rate`` (``u_tau / h``, within ``+-LINEAR_FORCING_BOUND``) by least squares
        on its outputs; returns the largest relative misfit of an energy above 1 % of its
        component's peak."""
        if self.target_network is None:
            raise ValueError("fit_forcing_target needs a closure with forcing_target=True")
        if not abs(rate) < LINEAR_FORCING_BOUND:
            raise ValueError(f"fit_forcing_target: rate must lie within +-{LINEAR_FORCING_BOUND}, got {rate}")
        distance = _centre_distance(ops)[0, :, 0]
        wall, _ = _damping(distance, nu)
        self.target_network.to(device=distance.device, dtype=distance.dtype)
        energies = energies.to(distance)
        floor = 1e-6 * energies.amax(dim=1, keepdim=True)  # v at a wall row nearly vanishes; its log stays finite
        goal = torch.cat([torch.full_like(distance, math.atanh(rate / LINEAR_FORCING_BOUND))[None],
                          torch.log(energies.clamp(min=floor))]).T
        _fit_outputs(self.target_network, torch.stack([wall, distance], dim=-1), goal, iterations)
        with torch.no_grad():
            fitted = self.residual_stress_coefficient(ops, nu)[-3:, 0, :, 0]
            held = energies > 0.01 * energies.amax(dim=1, keepdim=True)
            return float(((fitted - energies) / energies)[held].abs().max())

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the network's weights and sizes atomically (read back with ``weights=path``)."""
        from ..atomic import save_torch

        def cpu(module: nn.Module) -> dict[str, torch.Tensor]:
            return {key: value.detach().cpu() for key, value in module.state_dict().items()}

        payload = {"closure": self.name, **self._sizes(), "state_dict": cpu(self.network)}
        for part, module in self._part_networks().items():
            if module is not None:
                payload[_PART_STATES[part]] = cpu(module)
        return save_torch(payload, path)


def _fit_outputs(module: nn.Module, inputs: torch.Tensor, goal: torch.Tensor, iterations: int) -> None:
    """Fit ``module(inputs)`` to ``goal`` by least squares (Adam, ``iterations`` steps)."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(iterations):
        optimizer.zero_grad()
        ((module(inputs) - goal) ** 2).mean().backward()
        optimizer.step()


def linear_forcing_rates(
    ops: StaggeredOperators, rates: torch.Tensor, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """The rates ``lambda_i`` of the linear forcing, ``(3, 1, ny, 1)`` over the cell rows in
    ``u_tau / h``, for the network's profiles ``(rho_u, rho_v, rho_w, r)`` (``rates``,
    ``(4, 1, ny, 1)``, or ``(8, 1, ny, 1)`` with the rate ``s`` and the energies ``(E_u, E_v, E_w)``
    of a target after them) and the fluctuations ``u, v, w`` (each about its plane mean, at its
    staggered points).

    With ``e_i`` the plane-mean squares of the fluctuations (``v``'s face values averaged to the
    cell rows) and ``k2 = sum_j e_j``, the rates are first
    ``mu_i = rho_i + r (k2 / (3 e_i) - 1) [+ t_i]``, clipped to ``+-LINEAR_FORCING_BOUND``: free
    rates, a return to isotropy (Rotta 1951) at the rate ``r``, whose work
    ``sum_i r (k2 / 3 - e_i)`` vanishes, and with a target ``s (E_i / c_i - 1)``, a return of
    each component's energy toward ``E_i`` at the rate ``s``. That one compares the energies ``c_i``
    of the fluctuations averaged to the cell centres, the points where filtered DNS and the
    statistics live (averaging the staggered velocities to the centres damps the shortest waves,
    and more so in some components than others).

    Then ``lambda_i = mu_i - max(0, sum_j mu_j e_j / k2)``: the forcing's work on a plane,
    ``sum_i lambda_i e_i = min(0, sum_i mu_i e_i)``, is never positive. It moves energy between the
    components and may remove it, but never adds any, so a rate that feeds one component takes
    what it feeds from the others.
    """
    energy = torch.stack([
        u.square().mean(dim=(0, 2), keepdim=True),
        ops.y_average(v.square().mean(dim=(0, 2), keepdim=True)),
        w.square().mean(dim=(0, 2), keepdim=True),
    ])
    tiny = torch.finfo(energy.dtype).tiny
    total = energy.sum(dim=0).clamp(min=tiny)
    isotropy = total / (3.0 * energy).clamp(min=tiny) - 1.0
    mu = rates[:3] + rates[3] * isotropy
    if rates.shape[0] == 8:
        centred = torch.stack([q.square().mean(dim=(0, 2), keepdim=True) for q in ops.to_centres(u, v, w)])
        mu = mu + rates[4] * (rates[5:] / centred.clamp(min=tiny) - 1.0)
    mu = mu.clamp(-LINEAR_FORCING_BOUND, LINEAR_FORCING_BOUND)
    return mu - ((mu * energy).sum(dim=0) / total).clamp(min=0.0)


def a_priori_mean_field_viscosity(
    ops: StaggeredOperators, nu: float, mean_u: torch.Tensor, uv: torch.Tensor
) -> torch.Tensor:
    """The mean-field eddy viscosity that closes the mean momentum balance of resolved statistics.

    In a statistically steady channel the total shear stress is ``tau_w (1 - y)``; the resolved
    part of filtered DNS carries ``nu dU/dy - <u'v'>``, and the rest is the mean subgrid stress,
    which ``nu_T dU/dy`` is to carry: ``nu_T = (tau_w (1 - y) - nu dU/dy + <u'v'>) / (dU/dy)`` on the
    faces, ``tau_w`` from the mean wall gradient of ``mean_u``. The two halves are averaged and
    negative values (where the resolved stress already exceeds the total) set to zero.

    Parameters
    ----------
    ops
        Operators of the grid of the statistics.
    nu
        Kinematic viscosity, ``1 / Re_tau``.
    mean_u, uv
        Unfolded profiles over the ``ny`` cell centres: the mean streamwise velocity (u_tau) and
        ``<u'v'>`` (u_tau^2), e.g. of :func:`surrogate.stats.mean_profiles` with ``fold=False``.

    Returns
    -------
    torch.Tensor
        ``nu_T`` on the ``ny + 1`` faces, ``(1, ny + 1, 1)``, in ``u_tau h`` (zero on the walls).
    """
    u = mean_u.to(ops.dy).reshape(1, -1, 1)
    gradient = ops.ddy_at_faces(u)
    tau_wall = 0.5 * nu * (u[0, 0, 0] / ops.wall_gap_lower + u[0, -1, 0] / ops.wall_gap_upper)
    faces = torch.cat([torch.zeros_like(ops.dy[:, :1]), torch.cumsum(ops.dy, dim=1)], dim=1)
    uv_faces = ops.pad_faces(ops.y_interpolate(uv.to(ops.dy).reshape(1, -1, 1)))
    deficit = tau_wall * (1.0 - faces) - nu * gradient + uv_faces
    tiny = torch.finfo(u.dtype).tiny
    viscosity = torch.where(gradient.abs() > tiny, deficit / torch.where(gradient.abs() > tiny, gradient, 1.0), 0.0)
    viscosity = 0.5 * (viscosity + viscosity.flip(1)).clamp(min=0.0)
    viscosity[:, 0] = viscosity[:, -1] = 0.0
    return viscosity


def shipped_closures() -> list[str]:
    """Names of the closures that ship with the package (``weights=NAME``)."""
    folder = resources.files("surrogate.resources") / "closures"
    return sorted(item.name[:-3] for item in folder.iterdir() if item.name.endswith(".pt")) if folder.is_dir() else []


def _weights_path(weights: str) -> Path:
    """A shipped closure's file for its name, else ``weights`` as a path."""
    if weights in shipped_closures():
        return Path(str(resources.files("surrogate.resources") / "closures" / f"{weights}.pt"))
    return Path(weights)


def _read_weights(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sizes (``hidden``, ``layers``, the parts) and the state dicts (``state_dict`` and those of
    :data:`_PART_STATES`) of a closure file."""
    if not path.is_file():
        raise ValueError(
            f"sgs weights {str(path)!r}: no such file (written by NeuralEddyViscosity.save) and no shipped "
            f"closure of that name (shipped: {', '.join(shipped_closures()) or 'none'})"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, empty or not a torch file
        raise ValueError(f"sgs weights {path} cannot be read as a closure file: {type(exc).__name__}") from None
    if not isinstance(payload, dict) or payload.get("closure") != NeuralEddyViscosity.name or "hidden" not in payload:
        raise ValueError(f"sgs weights {path} is not a file written by NeuralEddyViscosity.save")
    sizes = {key: payload.get(key, default) for key, default in _DEFAULT_SIZES.items()}
    states = {
        key: {name: value.double() for name, value in payload[key].items()}
        for key in ("state_dict", *_PART_STATES.values())
        if key in payload
    }
    return sizes, states
