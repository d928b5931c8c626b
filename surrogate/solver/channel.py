"""The incompressible Navier–Stokes channel solver.

Equations, in wall units (lengths in h, velocities in u_tau, time in h/u_tau, nu = 1/Re_tau)::

    du/dt + div(u u) = -grad p + nu lap u + f e_x,    div u = 0,    u = 0 on y = 0, 2

Discretisation: second-order finite differences on the staggered grid of
:class:`~surrogate.solver.operators.StaggeredOperators`; the low-storage three-substep
Runge–Kutta scheme of Spalart, Moser & Rogers (1991) for convection and wall-parallel diffusion
with Crank–Nicolson for wall-normal diffusion (coefficients of Le & Moin 1991); a pressure
projection after every substep with the exact discrete Poisson solve of
:class:`~surrogate.solver.poisson.PoissonSolver`. The driving force ``f = -dP/dx`` is either
fixed to 1 (constant pressure gradient, so that the mean wall shear is u_tau^2) or chosen every
substep so that the bulk velocity stays at its target (constant flow rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Literal, get_args

import numpy as np
import torch

from ..grid import ChannelGrid
from .operators import StaggeredOperators
from .poisson import PoissonSolver
from .wall_normal import EigenOperator, WallNormalMatrix, apply_along_y, centre_dirichlet_operator, face_dirichlet_operator

__all__ = ["ChannelSolver", "ChannelState", "SolverDivergedError", "dean_bulk_velocity"]

Forcing = Literal["constant_pressure_gradient", "constant_flow_rate"]
FORCINGS: tuple[str, ...] = get_args(Forcing)
SgsUpdate = Literal["substep", "step"]
SGS_UPDATES: tuple[str, ...] = get_args(SgsUpdate)
#: A subgrid model's mean-field ``nu_T`` and residual-stress coefficient (:meth:`ChannelSolver.wall_profiles`).
WallProfiles = tuple[torch.Tensor | None, torch.Tensor | None]

# low-storage RK3: u_k = u_{k-1} + dt [gamma_k H_{k-1} + zeta_k H_{k-2} + alpha_k L u_{k-1} + beta_k L u_k]
RK3_GAMMA = (8.0 / 15.0, 5.0 / 12.0, 3.0 / 4.0)
RK3_ZETA = (0.0, -17.0 / 60.0, -5.0 / 12.0)
RK3_ALPHA = (4.0 / 15.0, 1.0 / 15.0, 1.0 / 6.0)
RK3_BETA = RK3_ALPHA
#: Extent of the stability region of three-stage third-order Runge–Kutta on the negative real axis.
RK3_REAL_AXIS_STABILITY = 2.51


#: Compiled graphs kept per process: three Runge–Kutta stages (and the subgrid model) per compiled solver.
COMPILED_GRAPH_LIMIT = 96


#: Fewest wall-normal cells for which a compiled solver applies its wall-normal operators as even and
#: odd blocks (:func:`~surrogate.solver.wall_normal.fold`). Measured on one CPU thread: the compiled
#: step 20 % cheaper on 64 x 65 x 64 and 6-13 % on 128 x 129 x 128, no gain on 33 cells, and eager
#: steps 23 % dearer on 33 cells (the folds are extra kernels there). benchmarks/README.md.
SPLIT_MIN_CELLS = 64


def _allow_compiled_solvers() -> None:
    """Let torch.compile keep the graphs of many solver instances in one process.

    Each compiled :class:`ChannelSolver` specialises the substep to its own operators and stage,
    three graphs per instance; dynamo's default limit of 8 graphs per function would otherwise
    send the fourth instance back to eager execution without notice.
    """
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), COMPILED_GRAPH_LIMIT))
            return


class SolverDivergedError(RuntimeError):
    """Raised when the velocity field stops being finite."""


def dean_bulk_velocity(re_tau: float) -> float:
    """Bulk velocity ``U_b / u_tau`` of turbulent channel flow from Dean's correlation.

    ``Re_tau = 0.09 Re_b^0.88`` with ``Re_b = 2 h U_b / nu`` (Pope 2000, eq. 7.4; fitted to
    Dean 1978); gives 15.6 at Re_tau = 180.
    """
    re_bulk = (re_tau / 0.09) ** (1.0 / 0.88)
    return re_bulk / (2.0 * re_tau)


@dataclass
class ChannelState:
    """The solver state: staggered velocities, pressure, time and forcing.

    Attributes
    ----------
    u, w : torch.Tensor, shape ``(nx, ny, nz)``
        Streamwise and spanwise velocity at their face points, in u_tau.
    v : torch.Tensor, shape ``(nx, ny + 1, nz)``
        Wall-normal velocity on the wall-normal faces (zero on the walls), in u_tau.
    p : torch.Tensor, shape ``(nx, ny, nz)``
        Kinematic pressure of the last projection at cell centres, in u_tau^2.
    time : float
        Simulation time in h/u_tau.
    step : int
        Number of completed time steps.
    pressure_gradient : float
        ``-dP/dx`` applied in the last substep, in u_tau^2/h.
    """

    u: torch.Tensor
    v: torch.Tensor
    w: torch.Tensor
    p: torch.Tensor
    time: float = 0.0
    step: int = 0
    pressure_gradient: float = 1.0

    def clone(self) -> "ChannelState":
        """A deep copy."""
        return replace(self, u=self.u.clone(), v=self.v.clone(), w=self.w.clone(), p=self.p.clone())

    def to_dict(self) -> dict:
        """Plain dictionary (tensors moved to the CPU) for checkpoints."""
        return {
            "u": self.u.cpu(),
            "v": self.v.cpu(),
            "w": self.w.cpu(),
            "p": self.p.cpu(),
            "time": self.time,
            "step": self.step,
            "pressure_gradient": self.pressure_gradient,
        }

    @classmethod
    def from_dict(
        cls, raw: dict, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
    ) -> "ChannelState":
        """The state that :meth:`to_dict` wrote, on ``device`` (in ``dtype``, else the stored one)."""
        tensors = {name: raw[name].to(device=device, dtype=dtype or raw[name].dtype) for name in ("u", "v", "w", "p")}
        return cls(**tensors, time=float(raw["time"]), step=int(raw["step"]), pressure_gradient=float(raw["pressure_gradient"]))


class ChannelSolver:
    """Direct (or, with ``sgs``, large-eddy) simulation of turbulent channel flow.

    Parameters
    ----------
    grid
        The staggered grid.
    re_tau
        Nominal friction Reynolds number; sets ``nu = 1 / re_tau`` (velocities in u_tau units).
    forcing
        ``"constant_pressure_gradient"`` (``-dP/dx = 1``) or ``"constant_flow_rate"``.
    bulk_velocity
        Target bulk velocity for constant flow rate, in u_tau; ``None`` takes Dean's
        correlation (:func:`dean_bulk_velocity`).
    sgs
        A subgrid-scale eddy-viscosity model (an object with
        ``eddy_viscosity(ops, u, v, w, nu) -> nu_t`` giving ``nu_t >= 0`` at cell centres, see
        :mod:`surrogate.solver.sgs`), or ``None`` for DNS. Its stress ``2 nu_t S`` enters the
        momentum equations explicitly, summed into the convective flux
        (:meth:`~surrogate.solver.operators.StaggeredOperators.explicit_momentum`); a model whose
        ``eddy_viscosity`` returns ``None`` has no pointwise part, and one with a
        ``mean_field_viscosity(ops, nu)`` adds the stress of that ``nu_T(y)`` on the mean shear
        (:meth:`~surrogate.solver.operators.StaggeredOperators.mean_shear_force`), and one with a
        ``residual_stress_coefficient(ops, nu)`` (not ``None``) the force of its
        ``residual_force(ops, u, v, w, coefficient)`` (the divergence of its ``residual_stress`` for
        an :class:`~surrogate.solver.sgs.EddyViscosityModel`). Both profiles are evaluated once per step
        (once per :meth:`run` without gradients).
    sgs_update
        When the model's pointwise ``nu_t`` is evaluated: ``"substep"`` (default) at the start of
        every Runge–Kutta substep, from that substep's velocities; ``"step"`` once per step, from
        the step's initial velocities, and held over its three substeps (the subgrid stress is then
        first-order accurate in time within a step; a third of the model evaluations).
    cfl
        Default CFL number of the adaptive time step.
    device, dtype
        Where and in what precision the state lives (float64 by default).
    compile
        Fuse each Runge–Kutta substep with :func:`torch.compile` (several times faster on CPUs
        and GPUs after a one-off compilation of some seconds; results agree with the eager
        solver to round-off, not bit for bit).
    """

    def __init__(
        self,
        grid: ChannelGrid,
        re_tau: float,
        forcing: Forcing = "constant_pressure_gradient",
        *,
        bulk_velocity: float | None = None,
        sgs: object | None = None,
        sgs_update: SgsUpdate = "substep",
        cfl: float = 0.8,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
        compile: bool = False,
    ) -> None:
        if forcing not in FORCINGS:
            raise ValueError(f"forcing must be one of {FORCINGS}, got {forcing!r}")
        if sgs_update not in SGS_UPDATES:
            raise ValueError(f"sgs_update must be one of {SGS_UPDATES}, got {sgs_update!r}")
        if not (math.isfinite(re_tau) and re_tau > 0):
            raise ValueError(f"re_tau must be a positive number, got {re_tau!r}")
        if sgs is not None and not callable(getattr(sgs, "eddy_viscosity", None)):
            raise TypeError(
                f"sgs must be a subgrid-scale model with an eddy_viscosity(ops, u, v, w, nu) method, got {sgs!r}"
            )
        self.grid = grid
        self.re_tau = float(re_tau)
        self.nu = 1.0 / self.re_tau
        self.forcing = forcing
        self.bulk_velocity = float(bulk_velocity) if bulk_velocity is not None else dean_bulk_velocity(re_tau)
        self.sgs = sgs
        self.sgs_update = sgs_update
        self.cfl = cfl
        self.device = torch.device(device)
        self.dtype = dtype
        self.ops = StaggeredOperators(grid, self.device, dtype)
        # the wall-normal products split by parity where that is faster: compiled, with many cells
        self.split_wall_normal = compile and grid.ny >= SPLIT_MIN_CELLS
        self.poisson = PoissonSolver(grid, self.device, dtype, split=self.split_wall_normal)
        self.centre_y, self.face_y = (
            EigenOperator(*operator(grid), device=self.device, dtype=dtype, split=self.split_wall_normal)
            for operator in (centre_dirichlet_operator, face_dirichlet_operator)
        )
        self._ones = torch.ones(grid.ny, 1, device=self.device, dtype=dtype)
        self._eddy_viscosity_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.compiled = compile
        if compile:
            _allow_compiled_solvers()
        self._substep_fn = torch.compile(self._substep, dynamic=False) if compile else self._substep
        self._rates_fn = torch.compile(self._rates, dynamic=False) if compile else self._rates
        # the model's nu_t for the time-step bound (the first substep's) runs outside the substeps
        self._sgs_fn = None if sgs is None else torch.compile(sgs.eddy_viscosity, dynamic=False) if compile else sgs.eddy_viscosity
        self._mean_field_fn = getattr(sgs, "mean_field_viscosity", None)
        self._stress_coefficient_fn = getattr(sgs, "residual_stress_coefficient", None)

    # ------------------------------------------------------------------ states
    def _zeros(self) -> torch.Tensor:
        return torch.zeros(self.grid.shape, device=self.device, dtype=self.dtype)

    def laminar_profile(self, bulk_velocity: float | None = None) -> torch.Tensor:
        """The discrete steady laminar profile ``U(y)``, shape ``(ny,)``, in u_tau.

        With ``bulk_velocity=None`` it solves ``nu d2U/dy2 = -1`` (the laminar flow driven by
        ``-dP/dx = 1``, ``U = Re_tau y (2 - y) / 2`` up to the discretisation); otherwise the
        same shape is scaled to that bulk velocity.
        """
        op = self.centre_y
        inverse_eigs = torch.where(op.eigenvalues == 0, 0.0, 1.0 / op.eigenvalues)
        profile = -(op.backward * inverse_eigs[None, :]) @ (op.forward @ self._ones) / self.nu
        profile = profile[:, 0]
        if bulk_velocity is not None:
            profile = profile * (bulk_velocity / self._bulk_of_profile(profile))
        return profile

    def _bulk_of_profile(self, profile: torch.Tensor) -> float:
        return float((profile * self.ops.dy.view(-1)).sum() / 2.0)

    def _state_from_velocity(self, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, time: float) -> ChannelState:
        """A divergence-free state; its pressure stays zero until the first time step computes it."""
        state = ChannelState(u, v, w, self._zeros(), time=float(time), pressure_gradient=self._initial_forcing())
        return replace(self.project(state), p=self._zeros())

    def _initial_forcing(self) -> float:
        return 1.0 if self.forcing == "constant_pressure_gradient" else 0.0

    def initial_condition(
        self, kind: Literal["laminar", "turbulent"] = "turbulent", *, seed: int = 0, amplitude: float = 0.3
    ) -> ChannelState:
        """An initial state at ``time = 0``.

        Parameters
        ----------
        kind
            ``"laminar"``: the discrete steady laminar flow (driven by ``-dP/dx = 1`` for a
            constant pressure gradient, scaled to the bulk velocity for a constant flow rate).
            ``"turbulent"``: the laminar profile scaled to the turbulent bulk velocity plus
            large-scale divergence-free random perturbations that trip the flow to turbulence.
        seed
            Seed of the perturbations (the same seed gives the same field on every device).
        amplitude
            Root-mean-square of the perturbation velocity relative to the bulk velocity.
        """
        nx, ny, nz = self.grid.shape
        if kind == "laminar":
            bulk = None if self.forcing == "constant_pressure_gradient" else self.bulk_velocity
            profile = self.laminar_profile(bulk)
            u = profile.view(1, ny, 1).expand(nx, ny, nz).clone()
            return self._state_from_velocity(u, self.ops.zeros_v(nx, nz), self._zeros(), 0.0)
        if kind == "turbulent":
            profile = self.laminar_profile(self.bulk_velocity)
            perturbation = random_perturbation(self.grid, seed)
            u, v, w = self.ops.from_centres(
                *(torch.as_tensor(c, device=self.device, dtype=self.dtype) for c in perturbation)
            )
            state = self._state_from_velocity(u, v, w, 0.0)
            state.u = state.u - state.u.mean(dim=(0, 2), keepdim=True)  # keep the bulk velocity
            state.w = state.w - state.w.mean(dim=(0, 2), keepdim=True)
            rms = math.sqrt(sum(float((c**2).mean()) for c in self.ops.to_centres(state.u, state.v, state.w)) / 3.0)
            scale = amplitude * self.bulk_velocity / rms
            state.u = profile.view(1, ny, 1) + scale * state.u
            state.v = scale * state.v
            state.w = scale * state.w
            return state
        raise ValueError(f"initial condition kind must be 'laminar' or 'turbulent', got {kind!r}")

    def from_dataset(self, ds, time: float | None = None) -> ChannelState:
        """A state from a cell-centred field Dataset on this solver's grid.

        The velocities are interpolated to the staggered points and projected onto
        divergence-free fields. With a ``time`` dimension, the snapshot at ``time`` (default:
        the last one) is used.
        """
        from ..fields import check_fields_on_grid

        check_fields_on_grid(ds, self.grid, what=f"the solver's grid {self.grid!r} (filter or interpolate the fields to it first)")
        if "time" in ds.dims:
            ds = ds.isel(time=-1) if time is None else ds.sel(time=time, method="nearest")
        t0 = float(ds["time"]) if "time" in ds.coords else 0.0
        centres = [
            torch.as_tensor(np.asarray(ds[name].transpose("x", "y", "z").values), device=self.device, dtype=self.dtype)
            for name in ("u", "v", "w")
        ]
        for name, values in zip("uvw", centres):
            if not torch.isfinite(values).all():
                raise ValueError(f"variable {name!r} of the Dataset has non-finite values")
        return self.state_from_centres(torch.stack(centres), t0)

    def state_from_centres(self, velocity: torch.Tensor, time: float = 0.0) -> ChannelState:
        """A divergence-free state from cell-centred ``u, v, w``, ``(3, nx, ny, nz)`` in u_tau, at ``time``."""
        velocity = velocity.to(device=self.device, dtype=self.dtype)
        return self._state_from_velocity(*self.ops.from_centres(*velocity), time)

    def to_dataset(self, state: ChannelState, attrs: dict | None = None):
        """The state as a cell-centred field Dataset (one snapshot with a scalar ``time``)."""
        from ..fields import make_fields

        uc, vc, wc = self.ops.to_centres(state.u, state.v, state.w)
        meta = {
            "source": "surrogate.ChannelSolver",
            "forcing": self.forcing,
            "pressure_gradient": state.pressure_gradient,
            "step": state.step,
        }
        if self.forcing == "constant_flow_rate":
            meta["bulk_velocity"] = self.bulk_velocity
        meta.update(attrs or {})
        return make_fields(self.grid, uc, vc, wc, p=state.p, time=state.time, re_tau=self.re_tau, attrs=meta)

    # ------------------------------------------------------------------ diagnostics
    def divergence(self, state: ChannelState) -> torch.Tensor:
        """Discrete divergence at the cell centres, shape ``(nx, ny, nz)``, in u_tau/h."""
        return self.ops.divergence(state.u, state.v, state.w)

    def bulk(self, state: ChannelState) -> float:
        """Bulk (volume-averaged streamwise) velocity, in u_tau."""
        return float(self.ops.bulk_mean(state.u))

    def wall_shear(self, state: ChannelState) -> float:
        """Mean of the two walls' ``nu dU/dy`` (first-cell estimate), in u_tau^2."""
        mean = state.u.mean(dim=(0, 2))
        return 0.5 * self.nu * float(mean[0] / self.ops.wall_gap_lower + mean[-1] / self.ops.wall_gap_upper)

    def eddy_viscosity(self, state: ChannelState) -> torch.Tensor | None:
        """The subgrid model's ``nu_t`` at cell centres for ``state`` (``None`` without a model, or
        for a model without a pointwise part, whose ``eddy_viscosity`` returned ``None`` once)."""
        if self._sgs_fn is None:
            return None
        cached = self._eddy_viscosity_cache
        if cached is not None and cached[0] is state.u:
            return cached[1]
        nu_t = self._pointwise_viscosity(state.u, state.v, state.w)
        # a nu_t with a graph (a closure being trained) is recomputed: step recomputation under
        # torch.utils.checkpoint must save what the first pass saved
        self._eddy_viscosity_cache = None if nu_t is None or nu_t.requires_grad else (state.u, nu_t)
        return nu_t

    def _pointwise_viscosity(self, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor | None:
        """The subgrid model's ``nu_t`` of staggered velocities, ``(nx, ny, nz)`` (``None`` as in
        :meth:`eddy_viscosity`), compiled apart from the substeps."""
        if self._sgs_fn is None:
            return None
        nu_t = self._sgs_fn(self.ops, u, v, w, self.nu)
        if nu_t is None:
            self._sgs_fn = None  # no pointwise part: nothing to evaluate again
        return nu_t

    def mean_field_viscosity(self) -> torch.Tensor | None:
        """The subgrid model's mean-field ``nu_T`` on the faces, ``(1, ny + 1, 1)`` (``None`` without one)."""
        return None if self._mean_field_fn is None else self._mean_field_fn(self.ops, self.nu)

    def _rates(self, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu_t: torch.Tensor | None) -> torch.Tensor:
        """The largest convective rate ``|u|/dx + |v|/dy + |w|/dz`` and eddy-viscous diffusion rate
        ``nu_t (4/dx^2 + 4/dy^2 + 4/dz^2)`` over the cells (0 without ``nu_t``), in u_tau/h, as one
        ``(2,)`` tensor (compiled when the substeps are: one pass over the fields and one transfer)."""
        ops = self.ops
        uc, vc, wc = ops.to_centres(u, v, w)
        rate = (uc.abs() / ops.dx + vc.abs() * ops.inv_dy + wc.abs() / ops.dz).amax()
        if nu_t is None:
            return torch.stack([rate, torch.zeros_like(rate)])
        eddy = (nu_t.detach() * (4.0 / ops.dx**2 + 4.0 / ops.dz**2 + 4.0 * ops.inv_dy**2)).amax()
        return torch.stack([rate, eddy])

    def stable_dt(self, state: ChannelState, cfl: float | None = None, *, profiles: WallProfiles | None = None) -> float:
        """Largest time step allowed by the convective CFL number and the explicit diffusion.

        Explicit diffusion is the molecular one in x and z and the eddy viscosity's in all
        directions; the bound keeps it inside the RK3 stability interval with a margin of 0.8.
        ``profiles``: those of :meth:`wall_profiles`, when the caller keeps them (evaluated afresh
        by default). Raises :class:`SolverDivergedError` when the velocity is not finite.
        """
        cfl = self.cfl if cfl is None else cfl
        ops = self.ops
        rate, eddy_diffusion = self._rates_fn(state.u, state.v, state.w, self.eddy_viscosity(state)).tolist()
        if not math.isfinite(rate):
            raise SolverDivergedError(
                f"the velocity field became non-finite at t = {state.time:.6g} (step {state.step}); "
                "reduce the time step or CFL number, or check the resolution"
            )
        diffusion = self.nu * (4.0 / ops.dx**2 + 4.0 / ops.dz**2) + eddy_diffusion
        nu_mean = self.mean_field_viscosity() if profiles is None else profiles[0]
        if nu_mean is not None:  # explicit y-diffusion of the mean: 4 nu_T over the smallest neighbouring spacings
            nearest = torch.maximum(ops.inv_dy[:, :-1], ops.inv_dy[:, 1:]) * ops.inv_dyc
            diffusion = float((nu_mean.detach()[:, 1:-1] * nearest).max()) * 4.0 + diffusion
        limit = 0.8 * RK3_REAL_AXIS_STABILITY / diffusion
        return min(cfl / rate if rate > 0 else math.inf, limit)

    # ------------------------------------------------------------------ time stepping
    def project(self, state: ChannelState, dt_effective: float = 1.0) -> ChannelState:
        """Make the velocity divergence-free: ``u <- u - dt G phi`` with ``D G phi = D u / dt``."""
        phi = self.poisson.solve(self.ops.divergence(state.u, state.v, state.w) / dt_effective)
        gx, gy, gz = self.ops.gradient(phi)
        return replace(
            state,
            u=state.u - dt_effective * gx,
            v=state.v - dt_effective * gy,
            w=state.w - dt_effective * gz,
            p=phi,
        )

    def _implicit_operators(self, coefficient: torch.Tensor) -> tuple[WallNormalMatrix, WallNormalMatrix, torch.Tensor]:
        """``(I - c A)^{-1}`` at centres and faces (for :func:`apply_along_y`: even and odd blocks on
        the symmetric grid) and the response to a uniform force, ``(1, ny, 1)``, for the 0-d
        ``coefficient`` c (formed inside the compiled substep: with an adaptive step, a new c each
        step)."""
        centre = self.centre_y.helmholtz_blocks(coefficient)
        return centre, self.face_y.helmholtz_blocks(coefficient), apply_along_y(centre, self._ones.view(1, -1, 1))

    def wall_profiles(self) -> WallProfiles:
        """The subgrid model's profiles of the wall distance: its mean-field ``nu_T`` on the faces,
        ``(1, ny + 1, 1)``, and its residual-stress coefficient, ``(1, ny, 1)`` (each ``None`` without
        one). They depend on the model's weights alone: :meth:`run` evaluates them once when no
        gradient is recorded, else once per step."""
        coefficient = None if self._stress_coefficient_fn is None else self._stress_coefficient_fn(self.ops, self.nu)
        return self.mean_field_viscosity(), coefficient

    def _explicit_terms(self, u, v, w, nu_t=None, profiles=(None, None)):
        """Convection, wall-parallel molecular diffusion and the subgrid stress divergence
        (``nu_t``: the model's pointwise viscosity at ``u, v, w``, evaluated here when ``None``;
        ``profiles``: :meth:`wall_profiles`)."""
        nu = self.nu
        if self.sgs is not None and nu_t is None:
            nu_t = self.sgs.eddy_viscosity(self.ops, u, v, w, nu)
        terms = list(self.ops.explicit_momentum(u, v, w, nu, nu_t))
        if self.sgs is not None:
            nu_mean, coefficient = profiles
            if nu_mean is not None:
                terms[0] = terms[0] + self.ops.mean_shear_force(nu_mean, u)
            if coefficient is not None:
                forces = self.sgs.residual_force(self.ops, u, v, w, coefficient)
                terms = [term + force for term, force in zip(terms, forces)]
        return tuple(terms)

    def _substep(
        self,
        stage: int,
        u: torch.Tensor,
        v: torch.Tensor,
        w: torch.Tensor,
        previous: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        dt: torch.Tensor,
        nu_t: torch.Tensor | None = None,
        profiles: WallProfiles = (None, None),
    ):
        """One RK3 substep: explicit terms, implicit wall-normal diffusion, forcing, projection.

        Returns the new ``u, v, w, p``, the forcing ``-dP/dx`` (0-d tensor) and the explicit
        terms for the next substep.
        """
        ops, nu = self.ops, self.nu
        gamma, zeta, alpha, beta = RK3_GAMMA[stage], RK3_ZETA[stage], RK3_ALPHA[stage], RK3_BETA[stage]
        explicit = self._explicit_terms(u, v, w, nu_t, profiles)
        centre_inv, face_inv, response = self._implicit_operators(beta * nu * dt)
        dt_eff = (alpha + beta) * dt
        ru = u + dt * (gamma * explicit[0] + alpha * nu * ops.d2y_centres(u))
        rv = v + dt * (gamma * explicit[1] + alpha * nu * ops.d2y_faces(v))
        rw = w + dt * (gamma * explicit[2] + alpha * nu * ops.d2y_centres(w))
        if previous is not None:
            ru = ru + (dt * zeta) * previous[0]
            rv = rv + (dt * zeta) * previous[1]
            rw = rw + (dt * zeta) * previous[2]
        u = apply_along_y(centre_inv, ru)
        v = ops.pad_faces(apply_along_y(face_inv, rv[:, 1:-1]))
        w = apply_along_y(centre_inv, rw)
        if self.forcing == "constant_pressure_gradient":
            forcing = torch.ones((), device=u.device, dtype=u.dtype)
        else:
            bulk_response = (response.view(-1) * ops.dy.view(-1)).sum() / 2.0
            forcing = (self.bulk_velocity - ops.bulk_mean(u)) / (dt_eff * bulk_response)
        u = u + (dt_eff * forcing) * response.view(1, -1, 1)
        phi = self.poisson.solve(ops.divergence(u, v, w) / dt_eff)
        gx, gy, gz = ops.gradient(phi)
        return u - dt_eff * gx, v - dt_eff * gy, w - dt_eff * gz, phi, forcing, explicit

    def step(self, state: ChannelState, dt: float, *, profiles: WallProfiles | None = None) -> ChannelState:
        """Advance one full RK3 step of size ``dt`` (h/u_tau) and return the new state;
        ``profiles`` as in :meth:`stable_dt`."""
        u, v, w, p = state.u, state.v, state.w, state.p
        dt_tensor = torch.tensor(dt, device=self.device, dtype=self.dtype)
        previous = None
        profiles = self.wall_profiles() if profiles is None else profiles
        for stage in range(len(RK3_BETA)):
            if stage == 0:
                nu_t = self.eddy_viscosity(state)
            elif self.sgs_update == "substep":  # else the first nu_t is held over the step
                # inside the substep, or apart for a model that is not fused (see EddyViscosityModel)
                nu_t = None if getattr(self.sgs, "fused", True) else self._pointwise_viscosity(u, v, w)
            u, v, w, p, forcing, previous = self._substep_fn(stage, u, v, w, previous, dt_tensor, nu_t, profiles)
        return ChannelState(
            u, v, w, p, time=state.time + dt, step=state.step + 1, pressure_gradient=float(forcing.detach())
        )

    def run(
        self,
        state: ChannelState,
        *,
        t_end: float | None = None,
        steps: int | None = None,
        dt: float | None = None,
        cfl: float | None = None,
        callback: Callable[[ChannelState], None] | None = None,
    ) -> ChannelState:
        """Advance to the absolute time ``t_end`` or by ``steps`` steps.

        Parameters
        ----------
        state
            Start state (not modified).
        t_end
            Absolute simulation time to stop at, in h/u_tau; the last step is shortened to land
            on it exactly.
        steps
            Number of steps instead of ``t_end``.
        dt
            Fixed time step; ``None`` chooses every step from the CFL number.
        cfl
            CFL number of the adaptive step (default: the solver's).
        callback
            Called with the state after every step (e.g. to update a progress bar; the solver
            itself prints nothing, :func:`surrogate.simulation.run_case` shows one).
        """
        if (t_end is None) == (steps is None):
            raise ValueError("give exactly one of t_end and steps")
        if t_end is not None and t_end < state.time:
            raise ValueError(f"t_end = {t_end} lies before the state's time {state.time}")
        if dt is not None and not dt > 0:
            raise ValueError(f"dt must be positive, got {dt}")
        n_done = 0
        profiles = None if torch.is_grad_enabled() else self.wall_profiles()
        while True:
            if steps is not None and n_done >= steps:
                break
            if t_end is not None and t_end - state.time <= 1e-12 * max(1.0, abs(t_end)):
                break
            step_dt = self.stable_dt(state, cfl, profiles=profiles) if dt is None else dt
            if dt is not None:
                self._check_finite(state)
            if t_end is not None:
                remaining = t_end - state.time
                if step_dt >= remaining * (1 - 1e-9):
                    step_dt = remaining
            state = self.step(state, step_dt, profiles=profiles)
            if t_end is not None and abs(state.time - t_end) < 1e-12 * max(1.0, abs(t_end)):
                state.time = float(t_end)
            n_done += 1
            if callback is not None:
                callback(state)
        self._check_finite(state)
        return state

    def _check_finite(self, state: ChannelState) -> None:
        if not (torch.isfinite(state.u).all() and torch.isfinite(state.v).all() and torch.isfinite(state.w).all()):
            raise SolverDivergedError(
                f"the velocity field became non-finite at t = {state.time:.6g} (step {state.step}); "
                "reduce the time step or CFL number, or check the resolution"
            )


def random_perturbation(
    grid: ChannelGrid, seed: int, modes_x: int = 4, modes_z: int = 8, modes_y: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth random cell-centre velocity fields that vanish on the walls, each ``(nx, ny, nz)``.

    Each component is a sum of ``sin(m pi y / 2)`` for ``m = 1 .. modes_y`` times random
    wall-parallel Fourier modes with ``|k_x| <= modes_x`` and ``|k_z| <= modes_z`` (box
    wavenumber units), unit-variance Gaussian coefficients from ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = grid.shape
    mx = min(modes_x, nx // 2)
    mz = min(modes_z, (nz - 1) // 2 if nz > 1 else 0)
    components = []
    for _ in range(3):
        field = np.zeros((nx, ny, nz))
        for m in range(1, modes_y + 1):
            spectrum = np.zeros((nx, nz // 2 + 1), dtype=complex)
            kx = np.r_[0 : mx + 1, -mx:0]
            coefficients = rng.standard_normal((kx.size, mz + 1)) + 1j * rng.standard_normal((kx.size, mz + 1))
            spectrum[kx, : mz + 1] = coefficients
            plane = np.fft.irfft2(spectrum, s=(nx, nz)) * nx * nz
            field += plane[:, None, :] * np.sin(m * math.pi * grid.y / 2.0)[None, :, None]
        components.append(field)
    return components[0], components[1], components[2]
