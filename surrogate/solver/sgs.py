"""Subgrid-scale eddy-viscosity models for large-eddy simulation of channel flow.

Every model returns a non-negative eddy viscosity ``nu_t`` at the cell centres, shape
``(nx, ny, nz)``, in ``u_tau h`` (the solver's units: lengths in ``h``, velocities in ``u_tau``,
``nu = 1 / Re_tau``). The deviatoric subgrid stress is then modelled as
``tau_ij - tau_kk delta_ij / 3 = -2 nu_t S_ij``.

Conventions shared by all models
--------------------------------
* The resolved velocity gradient ``g[i, j] = d u_i / d x_j`` is evaluated at the cell centres
  by :func:`velocity_gradient` (second order, trace equal to the discrete divergence).
* The strain rate is ``S_ij = (g_ij + g_ji) / 2`` and its magnitude
  ``|S| = sqrt(2 S_ij S_ij)``, in ``u_tau / h``.
* The grid filter width of cell ``(i, j, k)`` is the cube root of its volume,
  ``Delta_j = (dx * dy_j * dz)^(1/3)`` in ``h`` (Deardorff 1970); it varies with ``y`` only
  (:func:`filter_width`).

Models
------
* :class:`Smagorinsky` -- Smagorinsky (1963) with optional van Driest (1956) wall damping;
* :class:`WALE` -- wall-adapting local eddy viscosity of Nicoud & Ducros (1999);
* :class:`DynamicSmagorinsky` -- the dynamic procedure of Germano et al. (1991) with the
  least-squares contraction of Lilly (1992) and plane averaging in the homogeneous ``x-z``
  directions.

:func:`build_sgs_model` builds a model from its registry name and parameters, e.g. the
``describe()`` dictionary of another model.

References
----------
Deardorff, J. W. (1970). A numerical study of three-dimensional turbulent channel flow at large
Reynolds numbers. J. Fluid Mech. 41, 453-480.

Germano, M., Piomelli, U., Moin, P. & Cabot, W. H. (1991). A dynamic subgrid-scale eddy
viscosity model. Phys. Fluids A 3, 1760-1765.

Lilly, D. K. (1992). A proposed modification of the Germano subgrid-scale closure method.
Phys. Fluids A 4, 633-635.

Nicoud, F. & Ducros, F. (1999). Subgrid-scale stress modelling based on the square of the
velocity gradient tensor. Flow Turb. Combust. 62, 183-200.

Smagorinsky, J. (1963). General circulation experiments with the primitive equations.
Mon. Weather Rev. 91, 99-164.

van Driest, E. R. (1956). On turbulent flow near a wall. J. Aeronaut. Sci. 23, 1007-1011.
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from typing import Any

import torch

from .operators import StaggeredOperators

__all__ = [
    "DynamicSmagorinsky",
    "EddyViscosityModel",
    "SGS_MODELS",
    "Smagorinsky",
    "WALE",
    "build_sgs_model",
    "filter_width",
    "strain_rate",
    "strain_rate_magnitude",
    "velocity_gradient",
]

# the six independent components of a symmetric 3x3 tensor
_SYM_PAIRS: tuple[tuple[int, int], ...] = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


# ---------------------------------------------------------------------------------------------
# discrete derivatives and tensor helpers
# ---------------------------------------------------------------------------------------------
# Internally a 3 x 3 tensor field is handled as its component fields, ``t[i][j]`` (rows of
# cell-centred tensors) and a symmetric one as its six components ``(11, 22, 33, 12, 13, 23)``:
# element-wise arithmetic on single fields, which torch.compile fuses into a few loops and which
# eager mode runs without copying fields into stacked tensors. ``t[i][j]`` indexes a
# ``(3, 3, ...)`` tensor in the same way, so the helpers accept either. Sums are accumulated in
# place into a fresh temporary (never into an argument): in eager mode every new full-size
# temporary costs more than the arithmetic on it.
def _centred_periodic(a: torch.Tensor, dim: int, spacing: float) -> torch.Tensor:
    """Centred difference ``(a[i + 1] - a[i - 1]) / (2 h)`` along a periodic dimension."""
    return torch.roll(a, -1, dims=dim).sub_(torch.roll(a, 1, dims=dim)).div_(2.0 * spacing)


def _ddy_centres(ops: StaggeredOperators, *fields: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Wall-normal derivative of cell-centred fields that vanish on the walls (stretched grid).

    The non-uniform three-point formula (exact for quadratics) is applied to the sequence
    ``[0, a[:, 0], ..., a[:, -1], 0]`` located at ``[0, y_0, ..., y_{ny-1}, 2]``: with
    ``h- = y_j - y_{j-1}`` and ``h+ = y_{j+1} - y_j``,

    ``da/dy_j = -h+ / (h- (h- + h+)) a_{j-1} + (h+ - h-) / (h- h+) a_j + h- / (h+ (h- + h+)) a_{j+1}``.

    Parameters
    ----------
    ops
        Operators of the grid.
    *fields
        Cell-centred fields ``a``, each of shape ``(nx, ny, nz)``, with wall value 0.

    Returns
    -------
    tuple of torch.Tensor
        ``da/dy`` of each field at the cell centres, shape ``(nx, ny, nz)``, in units of ``a``
        per ``h``.
    """
    gap_lower = torch.full((1, 1, 1), ops.wall_gap_lower, dtype=ops.dtype, device=ops.device)
    gap_upper = torch.full((1, 1, 1), ops.wall_gap_upper, dtype=ops.dtype, device=ops.device)
    h_minus = torch.cat([gap_lower, ops.dyc], dim=1)
    h_plus = torch.cat([ops.dyc, gap_upper], dim=1)
    c_minus = -h_plus / (h_minus * (h_minus + h_plus))
    c_centre = (h_plus - h_minus) / (h_minus * h_plus)
    c_plus = h_minus / (h_plus * (h_minus + h_plus))
    derivatives = []
    for a in fields:
        extended = torch.nn.functional.pad(a, (0, 0, 1, 1))  # zero wall values in y
        derivative = (c_centre * a).addcmul_(c_minus, extended[:, :-2]).addcmul_(c_plus, extended[:, 2:])
        derivatives.append(derivative)
    return tuple(derivatives)


def _velocity_gradient_components(
    ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor
) -> tuple[tuple[torch.Tensor, ...], ...]:
    """The nine fields ``g[i][j] = d u_i / d x_j`` of :func:`velocity_gradient`, as rows."""
    uc, vc, wc = ops.to_centres(u, v, w)
    du_dy, dw_dy = _ddy_centres(ops, uc, wc)
    return (
        ((u - torch.roll(u, 1, dims=0)).div_(ops.dx), du_dy, _centred_periodic(uc, 2, ops.dz)),
        (_centred_periodic(vc, 0, ops.dx), (v[:, 1:] - v[:, :-1]).mul_(ops.inv_dy), _centred_periodic(vc, 2, ops.dz)),
        (_centred_periodic(wc, 0, ops.dx), dw_dy, (w - torch.roll(w, 1, dims=2)).div_(ops.dz)),
    )


def velocity_gradient(
    ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """The resolved velocity-gradient tensor ``g[i, j] = d u_i / d x_j`` at the cell centres.

    Second-order finite differences on the staggered grid of :class:`StaggeredOperators`:

    * diagonal terms are the staggered differences of :meth:`StaggeredOperators.divergence`,
      ``du/dx = (u_i - u_{i-1}) / dx``, ``dv/dy = (v_{j+1/2} - v_{j-1/2}) / dy_j``,
      ``dw/dz = (w_k - w_{k-1}) / dz``, so that ``trace(g)`` equals the discrete divergence;
    * off-diagonal terms are centred differences of the cell-centre averages of
      :meth:`StaggeredOperators.to_centres`: periodic ``(a_{i+1} - a_{i-1}) / (2 dx)`` in ``x``
      and ``z``, and in ``y`` the non-uniform three-point first derivative, where the first and
      last cells use the wall value ``0`` of ``u`` and ``w`` at wall distance ``y_0`` resp.
      ``2 - y_{ny-1}`` (for ``v`` the wall-face values ``v[:, 0]`` and ``v[:, -1]``).

    Parameters
    ----------
    ops
        Operators of the grid (device and dtype of the velocities).
    u, w
        Streamwise and spanwise velocity at their face points, shape ``(nx, ny, nz)``, in u_tau.
    v
        Wall-normal velocity on the wall-normal faces, shape ``(nx, ny + 1, nz)``, in u_tau.

    Returns
    -------
    torch.Tensor
        ``g`` with shape ``(3, 3, nx, ny, nz)`` in ``u_tau / h``; ``g[0, 1]`` is ``du/dy``.
    """
    return torch.stack([torch.stack(row) for row in _velocity_gradient_components(ops, u, v, w)])


def strain_rate(g: torch.Tensor) -> torch.Tensor:
    """Resolved strain-rate tensor ``S_ij = (g_ij + g_ji) / 2``.

    Parameters
    ----------
    g
        Velocity gradient, shape ``(3, 3, ...)``, in ``u_tau / h``.

    Returns
    -------
    torch.Tensor
        ``S`` with the shape and units of ``g``.
    """
    return 0.5 * (g + g.transpose(0, 1))


def _strain_components(g) -> tuple[torch.Tensor, ...]:
    """The six components ``(11, 22, 33, 12, 13, 23)`` of ``S_ij = (g_ij + g_ji) / 2``."""
    return (
        g[0][0],
        g[1][1],
        g[2][2],
        (g[0][1] + g[1][0]).mul_(0.5),
        (g[0][2] + g[2][0]).mul_(0.5),
        (g[1][2] + g[2][1]).mul_(0.5),
    )


def _sum_of_products(*pairs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``sum_k a_k b_k`` over the pairs ``(a_k, b_k)``, accumulated in one new field."""
    (a, b), *rest = pairs
    total = a * b
    for a, b in rest:
        total.addcmul_(a, b)
    return total


def _contract_symmetric(a, b) -> torch.Tensor:
    """``A_ij B_ij`` for symmetric tensors given as six components ``(11, 22, 33, 12, 13, 23)``
    (a sequence of fields, or a tensor with the components along its first dimension)."""
    diagonal = _sum_of_products((a[0], b[0]), (a[1], b[1]), (a[2], b[2]))
    return diagonal.add_(_sum_of_products((a[3], b[3]), (a[4], b[4]), (a[5], b[5])), alpha=2.0)


def _deviatoric_symmetric(a) -> tuple[torch.Tensor, ...]:
    """Deviatoric part ``A_ij - A_kk delta_ij / 3`` of a six-component symmetric tensor."""
    third = (a[0] + a[1]).add_(a[2]).div_(3.0)
    return (a[0] - third, a[1] - third, a[2] - third, a[3], a[4], a[5])


def _magnitude(s) -> torch.Tensor:
    """``sqrt(2 S_ij S_ij)`` of a six-component symmetric tensor."""
    return _contract_symmetric(s, s).mul_(2.0).sqrt_()


def strain_rate_magnitude(g: torch.Tensor) -> torch.Tensor:
    """Strain-rate magnitude ``|S| = sqrt(2 S_ij S_ij)`` of a velocity gradient.

    Parameters
    ----------
    g
        Velocity gradient, shape ``(3, 3, ...)`` (or its components ``g[i][j]``), in
        ``u_tau / h``.

    Returns
    -------
    torch.Tensor
        ``|S|`` with shape ``g.shape[2:]``, in ``u_tau / h``.
    """
    return _magnitude(_strain_components(g))


def filter_width(ops: StaggeredOperators) -> torch.Tensor:
    """Grid filter width ``Delta_j = (dx * dy_j * dz)^(1/3)`` (cube root of the cell volume).

    Parameters
    ----------
    ops
        Operators of the grid.

    Returns
    -------
    torch.Tensor
        ``Delta`` with shape ``(1, ny, 1)`` (broadcastable to the cell centres), in ``h``.
    """
    return (ops.dx * ops.dy * ops.dz) ** (1.0 / 3.0)


def _test_filter_xz(a: torch.Tensor) -> torch.Tensor:
    """Discrete test filter in the homogeneous directions: weights ``1/4, 1/2, 1/4`` along ``x``
    and then along ``z`` (periodic), acting on the last three dimensions ``(x, y, z)``."""
    for dim in (a.dim() - 3, a.dim() - 1):
        a = torch.roll(a, 1, dims=dim).add_(torch.roll(a, -1, dims=dim)).mul_(0.25).add_(a, alpha=0.5)
    return a


def _test_filter_xyz(a: torch.Tensor) -> torch.Tensor:
    """:func:`_test_filter_xz`, then weights ``1/4, 1/2, 1/4`` along ``y`` over the cell rows
    (in index space); the two wall rows are left unfiltered in ``y``."""
    a = _test_filter_xz(a)
    out = a.clone()
    out[..., 1:-1, :] = 0.25 * (a[..., :-2, :] + a[..., 2:, :]) + 0.5 * a[..., 1:-1, :]
    return out


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
SGS_MODELS: dict[str, type["EddyViscosityModel"]] = {}
"""Every subgrid model by its registry name (filled as the model classes are defined)."""


class EddyViscosityModel(ABC):
    """Interface of a subgrid-scale eddy-viscosity model.

    Subclasses name themselves in the class statement (``class WALE(EddyViscosityModel,
    name="wale")``: the registry name of :func:`build_sgs_model`, :data:`SGS_MODELS`, and the
    ``sgs.model`` of case files) and implement :meth:`eddy_viscosity` and :meth:`parameters`.

    ``fused``: whether a compiled solver evaluates ``nu_t`` inside each substep's graph (the
    default) or in a graph of its own. Fused, ``nu_t`` need not be stored, but the compiler may
    recompute it at every point of the eddy-viscous force's stencil, which costs more than storing
    it for a model with many products per point (WALE; ``benchmarks/README.md``).
    """

    name: str = ""
    fused: bool = True

    def __init_subclass__(cls, name: str = "", **kwargs: Any) -> None:
        """``class WALE(EddyViscosityModel, name="wale")`` joins :data:`SGS_MODELS` under ``name``."""
        super().__init_subclass__(**kwargs)
        if name:
            cls.name = name
            SGS_MODELS[name] = cls

    @abstractmethod
    def eddy_viscosity(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu: float
    ) -> torch.Tensor:
        """Eddy viscosity ``nu_t >= 0`` at the cell centres.

        Parameters
        ----------
        ops
            Operators of the grid.
        u, w
            Staggered streamwise and spanwise velocities, shape ``(nx, ny, nz)``, in u_tau.
        v
            Wall-normal velocity on the faces, shape ``(nx, ny + 1, nz)``, in u_tau.
        nu
            Kinematic viscosity ``1 / Re_tau`` in ``u_tau h``.

        Returns
        -------
        torch.Tensor
            ``nu_t``, shape ``(nx, ny, nz)``, in ``u_tau h``, on the device and in the dtype of
            the velocities.
        """

    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """The constructor arguments of this model (plain Python values)."""

    def mean_field_viscosity(self, ops: StaggeredOperators, nu: float) -> torch.Tensor | None:
        """A mean-field eddy viscosity ``nu_T(y) >= 0`` on the ``ny + 1`` wall-normal faces, shape
        ``(1, ny + 1, 1)`` in ``u_tau h``, whose stress ``nu_T dU/dy`` acts on the plane-mean shear
        alone (:meth:`StaggeredOperators.mean_shear_force`); ``None``, the default, for none."""
        return None

    def residual_stress_coefficient(self, ops: StaggeredOperators, nu: float) -> torch.Tensor | None:
        """The wall-normal profile that :meth:`residual_stress` scales with, evaluated once per time
        step (a network of the wall distance, say); ``None``, the default, for no residual stress."""
        return None

    def residual_stress(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, coefficient: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """A subgrid stress beside the eddy-viscous one, six components ``(xx, yy, zz, xy, xz, yz)``
        at the cell centres in ``u_tau^2`` (its divergence enters the momentum equations through
        :meth:`StaggeredOperators.stress_divergence`), for the ``coefficient`` of
        :meth:`residual_stress_coefficient`; called only where that is not ``None``."""
        raise NotImplementedError(f"{type(self).__name__} has a residual_stress_coefficient but no residual_stress")

    def residual_force(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, coefficient: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The force of the residual terms at the u, v and w points, in ``u_tau^2 / h``, for the
        ``coefficient`` of :meth:`residual_stress_coefficient`: by default ``-d tau_ij / dx_j`` of
        :meth:`residual_stress`. The solver adds it to the momentum equations explicitly."""
        force_u, force_v, force_w = ops.stress_divergence(self.residual_stress(ops, u, v, w, coefficient))
        return -force_u, -force_v, -force_w

    def describe(self) -> dict[str, Any]:
        """Provenance record: ``{"name": ..., <constructor arguments>}``.

        ``build_sgs_model(**model.describe())`` rebuilds an equivalent model.
        """
        return {"name": self.name, **self.parameters()}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.parameters().items())
        return f"{type(self).__name__}({args})"


def _positive_constant(owner: str, label: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}.{label} must be a positive finite number, got {value!r}")
    return float(value)


class Smagorinsky(EddyViscosityModel, name="smagorinsky"):
    """Smagorinsky (1963) eddy viscosity with optional van Driest (1956) wall damping.

    ``nu_t = (C_s Delta D)^2 |S|`` with ``|S| = sqrt(2 S_ij S_ij)`` and
    ``Delta = (dx dy_j dz)^(1/3)`` (:func:`filter_width`).

    With ``van_driest=True`` the damping is ``D = 1 - exp(-y+ / A+)``, where ``y+`` is the
    distance ``d`` of the cell centre to the *nearest* wall in the wall units of that wall,
    ``y+ = d u_tau,wall / nu``. Each wall's friction velocity is estimated from the plane-averaged
    streamwise velocity ``U`` of its first cell: ``u_tau,wall = sqrt(nu |U_first| / d_first)``
    (``d_first = y_0`` for the lower wall and ``2 - y_{ny-1}`` for the upper one). A wall with
    no mean shear therefore gets ``D = 0`` throughout its half of the channel. Cells with
    ``y <= 1`` belong to the lower wall (a cell on the centreline, odd ``ny``, is equally far
    from both walls and may be assigned to either within round-off). Without damping ``D = 1``.

    Parameters
    ----------
    cs
        Smagorinsky constant ``C_s`` (0.1 is usual for channel flow; 0.17 for isotropic turbulence).
    a_plus
        Van Driest damping constant ``A+`` (26 in van Driest 1956; 25 is a common choice).
    van_driest
        Whether to apply the wall damping.
    """


    def __init__(self, cs: float = 0.1, a_plus: float = 25.0, van_driest: bool = True) -> None:
        self.cs = _positive_constant("Smagorinsky", "cs", cs)
        self.a_plus = _positive_constant("Smagorinsky", "a_plus", a_plus)
        self.van_driest = bool(van_driest)

    def parameters(self) -> dict[str, Any]:
        """``{"cs", "a_plus", "van_driest"}``."""
        return {"cs": self.cs, "a_plus": self.a_plus, "van_driest": self.van_driest}

    def _nu_t_from_gradient(
        self, g: torch.Tensor, delta: torch.Tensor | float, damping: torch.Tensor | float = 1.0
    ) -> torch.Tensor:
        """``nu_t = (C_s Delta D)^2 |S|`` from a velocity gradient.

        Parameters
        ----------
        g
            Velocity gradient, shape ``(3, 3, ...)`` (or its components ``g[i][j]``), in
            ``u_tau / h``; not modified.
        delta
            Filter width in ``h``, broadcastable to ``g.shape[2:]``.
        damping
            Wall damping ``D`` (dimensionless), broadcastable to ``g.shape[2:]``.

        Returns
        -------
        torch.Tensor
            ``nu_t`` with shape ``g.shape[2:]``, in ``u_tau h``.
        """
        return (self.cs * delta * damping) ** 2 * strain_rate_magnitude(g)

    def damping(self, ops: StaggeredOperators, u: torch.Tensor, nu: float) -> torch.Tensor:
        """Van Driest damping ``D = 1 - exp(-y+ / A+)`` of each cell row, shape ``(1, ny, 1)``.

        ``y+`` is measured from the nearest wall with that wall's friction velocity (see the
        class docstring). Returns ones when ``van_driest`` is off.
        """
        y = torch.cumsum(ops.dy, dim=1) - 0.5 * ops.dy  # cell centres, (1, ny, 1)
        y = y.to(dtype=u.dtype, device=u.device)
        if not self.van_driest:
            return torch.ones_like(y)
        mean = u.mean(dim=(0, 2))
        u_tau_lower = torch.sqrt(nu * mean[0].abs() / ops.wall_gap_lower)
        u_tau_upper = torch.sqrt(nu * mean[-1].abs() / ops.wall_gap_upper)
        lower_half = y <= 1.0
        distance = torch.where(lower_half, y, 2.0 - y)
        u_tau = torch.where(lower_half, u_tau_lower, u_tau_upper)
        y_plus = distance * u_tau / nu
        return 1.0 - torch.exp(-y_plus / self.a_plus)

    def eddy_viscosity(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu: float
    ) -> torch.Tensor:
        """``nu_t = (C_s Delta D)^2 |S|``, shape ``(nx, ny, nz)``, in ``u_tau h``; ``nu`` (in
        ``u_tau h``) sets the wall units of the damping."""
        g = _velocity_gradient_components(ops, u, v, w)
        return self._nu_t_from_gradient(g, filter_width(ops), self.damping(ops, u, nu))


class WALE(EddyViscosityModel, name="wale"):
    """Wall-adapting local eddy viscosity of Nicoud & Ducros (1999).

    With ``g2 = g @ g`` (``g2_ij = g_ik g_kj``), the traceless symmetric part of the squared
    gradient is ``S^d_ij = (g2_ij + g2_ji) / 2 - delta_ij g2_kk / 3`` and

    ``nu_t = (C_w Delta)^2 (S^d_ij S^d_ij)^(3/2) / ((S_ij S_ij)^(5/2) + (S^d_ij S^d_ij)^(5/4))``

    with ``Delta = (dx dy_j dz)^(1/3)``. ``nu_t`` vanishes in pure shear and near walls it falls
    off as ``y^3`` without any damping function. It does not vanish for a solid-body rotation
    (there ``S = 0`` and ``nu_t = (C_w Delta)^2 (S^d_ij S^d_ij)^(1/4)``).

    Evaluation: with ``S`` and the rotation rate ``Omega_ij = (g_ij - g_ji) / 2 = -eps_ijk r_k``,
    the symmetric part of ``g2`` is ``S S + Omega Omega = S S + r r^T - |r|^2 I``, so ``S^d`` is
    the deviatoric part of ``S S + r r^T``, six components of four products each. This is exact
    for any ``g``; Nicoud & Ducros' form in the invariants of ``S`` and ``Omega`` also assumes
    ``S_kk = 0``, which the discrete gradient satisfies only to the solver's tolerance.

    Round-off guard: the ratio is homogeneous of degree one in ``(S, r)``, so it is computed for
    ``S' = S / m`` and ``r' = r / m`` with ``m`` the largest magnitude of the six components of
    ``S`` and the three of ``r`` at each point (entries of order one: no power of the gradient
    over- or underflows) and multiplied by ``m``. The denominator gets
    ``eps = torch.finfo(dtype).tiny`` (the smallest normal number, 2.2e-308 in float64) added,
    which only matters in the ``0/0`` case ``g = 0``, where it gives ``nu_t = 0``; for any
    ``g != 0`` the normalised denominator is of order one (``S^d = 0`` and ``S = 0`` together
    imply ``g = 0``).

    Parameters
    ----------
    cw
        Model constant ``C_w``. Nicoud & Ducros (1999) relate it to the Smagorinsky constant by
        ``C_w^2 ~ 10.6 C_s^2`` (``C_w`` = 0.55-0.60 for ``C_s`` = 0.17-0.18 in isotropic
        turbulence); the smaller 0.325 is the value commonly used for wall-bounded flows.
    """

    fused = False

    def __init__(self, cw: float = 0.325) -> None:
        self.cw = _positive_constant("WALE", "cw", cw)

    def parameters(self) -> dict[str, Any]:
        """``{"cw"}``."""
        return {"cw": self.cw}

    def _nu_t_from_gradient(self, g: torch.Tensor, delta: torch.Tensor | float) -> torch.Tensor:
        """WALE ``nu_t`` from a velocity gradient.

        Parameters
        ----------
        g
            Velocity gradient, shape ``(3, 3, ...)`` (or its components ``g[i][j]``), in
            ``u_tau / h``; not modified.
        delta
            Filter width in ``h``, broadcastable to ``g.shape[2:]``.

        Returns
        -------
        torch.Tensor
            ``nu_t`` with shape ``g.shape[2:]``, in ``u_tau h``.
        """
        strain = _strain_components(g)
        rotation = [(g[j][i] - g[i][j]).mul_(0.5) for i, j in ((1, 2), (2, 0), (0, 1))]
        # the ratio is homogeneous of degree one in (S, r): evaluate it for (S, r) / m, m the
        # largest magnitude of their nine components (entries of order one, so that no power
        # over- or underflows), and rescale
        scale = strain[0].abs()
        for component in (*strain[1:], *rotation):
            scale.clamp_min_(component.abs())  # running maximum
        inverse = torch.where(scale > 0, scale, 1.0).reciprocal_()
        s11, s22, s33, s12, s13, s23 = s = [component * inverse for component in strain]
        r1, r2, r3 = (component * inverse for component in rotation)
        # sym(g2) = S S + Omega Omega, where Omega_ij = (g_ij - g_ji) / 2 = -eps_ijk r_k gives
        # Omega Omega = r r^T - |r|^2 I, whose isotropic part drops out of S^d
        sd = _deviatoric_symmetric(
            [
                _sum_of_products((s11, s11), (s12, s12), (s13, s13), (r1, r1)),
                _sum_of_products((s12, s12), (s22, s22), (s23, s23), (r2, r2)),
                _sum_of_products((s13, s13), (s23, s23), (s33, s33), (r3, r3)),
                _sum_of_products((s11, s12), (s12, s22), (s13, s23), (r1, r2)),
                _sum_of_products((s11, s13), (s12, s23), (s13, s33), (r1, r3)),
                _sum_of_products((s12, s13), (s22, s23), (s23, s33), (r2, r3)),
            ]
        )
        ss = _contract_symmetric(s, s)
        sdsd = _contract_symmetric(sd, sd)
        # the powers 3/2, 5/2 and 5/4 from square roots (much cheaper than pow)
        root_sdsd = sdsd.sqrt()
        numerator = sdsd * root_sdsd
        denominator = (ss * ss).mul_(ss.sqrt()).addcmul_(sdsd, root_sdsd.sqrt())
        denominator.add_(torch.finfo(ss.dtype).tiny)
        return numerator.div_(denominator).mul_(scale).mul_((self.cw * delta) ** 2)

    def eddy_viscosity(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu: float
    ) -> torch.Tensor:
        """WALE ``nu_t``, shape ``(nx, ny, nz)``, in ``u_tau h`` (independent of ``nu``)."""
        return self._nu_t_from_gradient(_velocity_gradient_components(ops, u, v, w), filter_width(ops))


class DynamicSmagorinsky(EddyViscosityModel, name="dynamic_smagorinsky"):
    """Dynamic Smagorinsky model: Germano et al. (1991) with Lilly's (1992) least squares.

    ``nu_t = C(y) Delta^2 |S|`` with ``Delta = (dx dy_j dz)^(1/3)``, where the coefficient
    ``C`` (the square of a Smagorinsky constant) is found per wall-normal cell row ``j``:

    * the test filter (written ``~``) is the discrete trapezoidal filter with weights
      ``1/4, 1/2, 1/4`` applied along ``x`` and then along ``z`` (the homogeneous, periodic
      directions); there is no filtering in ``y``;
    * with the cell-centre velocities ``u_i`` of :meth:`StaggeredOperators.to_centres`, the
      resolved (Leonard-type) stress is ``L_ij = ~(u_i u_j) - ~u_i ~u_j``;
    * with ``S_ij`` from :func:`velocity_gradient`,
      ``M_ij = 2 Delta^2 [ ~(|S| S_ij) - alpha^2 |~S| ~S_ij ]``; the filter commutes with the
      discrete derivatives (shift-invariant in ``x, z``, acting along other directions than
      ``y``), so ``~S_ij`` is the strain rate of the filtered velocity;
    * ``C = <L_ij M^d_ij> / <M^d_ij M^d_ij>`` with ``<.>`` the average over the ``x-z``
      plane and ``^d`` the deviatoric part (``M^d = M`` for a divergence-free field; the
      isotropic part of ``L`` drops out of the contraction, ``L_ij M^d_ij = L^d_ij M^d_ij``);
      ``C = 0`` where ``<M^d_ij M^d_ij> = 0`` (e.g. a quiescent plane).

    Width ratio ``alpha`` of the test filter to the grid filter, given as ``alpha_squared``: the
    default 4 is Germano et al.'s (1991) ratio 2 (also the 3-D test filter of channel LES codes such
    as CaLES). Taking the ``1/4, 1/2, 1/4`` weights as a box of width ``r`` cells in each filtered
    direction and widths as the cube root of the filter volume gives ``alpha^2 = r^(4/3)`` for the
    x-z filter (2.52 for ``r = 2``, 3.30 for ``r = sqrt(6)``, the width with the weights' second
    moment) and ``alpha^2 = r^2`` for the 3-D one; the model's sensitivity to this choice is
    recorded in ``validation/README.md``. The filter weights do not depend on ``alpha``.

    ``test_filter``: ``"xz"`` (above) or ``"xyz"``, which also applies the ``1/4, 1/2, 1/4``
    weights along ``y`` over the cell rows (in index space, the wall rows unfiltered in ``y``);
    ``~S_ij`` is then the filtered strain rate rather than that of the filtered velocity.

    Clipping: the model contract is ``nu_t >= 0``. With ``clip=True`` negative plane
    coefficients are set to zero, i.e. ``nu_t = max(C, 0) Delta^2 |S| >= 0`` (stricter than the
    weaker stability condition ``nu + nu_t >= 0``, which would allow some backscatter). With
    ``clip=False`` the raw coefficient is used and ``nu_t`` may be negative.

    The plane coefficients of the last call are kept for diagnostics: ``last_coefficient``
    (the applied, possibly clipped ``C``) and ``last_unclipped_coefficient``, each of shape
    ``(ny,)`` (``None`` before the first call).

    Parameters
    ----------
    alpha_squared
        Squared width ratio ``alpha^2 > 1`` of the test filter to the grid filter.
    clip
        Clip the coefficient to ``C >= 0`` (``nu_t >= 0``).
    test_filter
        ``"xz"`` (the homogeneous directions) or ``"xyz"``.
    """

    TEST_FILTERS = {"xz": _test_filter_xz, "xyz": _test_filter_xyz}

    def __init__(self, alpha_squared: float = 4.0, clip: bool = True, test_filter: str = "xz") -> None:
        value = _positive_constant("DynamicSmagorinsky", "alpha_squared", alpha_squared)
        if value <= 1.0:
            raise ValueError(f"DynamicSmagorinsky.alpha_squared must exceed 1 (a wider test filter), got {alpha_squared!r}")
        if test_filter not in self.TEST_FILTERS:
            raise ValueError(f"DynamicSmagorinsky.test_filter must be one of {sorted(self.TEST_FILTERS)}, got {test_filter!r}")
        self.alpha_squared, self.clip, self.test_filter = value, bool(clip), test_filter
        self.last_coefficient: torch.Tensor | None = None
        self.last_unclipped_coefficient: torch.Tensor | None = None

    def parameters(self) -> dict[str, Any]:
        """``{"alpha_squared", "clip", "test_filter"}``."""
        return {"alpha_squared": self.alpha_squared, "clip": self.clip, "test_filter": self.test_filter}

    def coefficient(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw least-squares coefficient and the strain-rate magnitude.

        Returns
        -------
        coefficient : torch.Tensor, shape ``(ny,)``
            Unclipped ``C(y) = <L_ij M^d_ij> / <M^d_ij M^d_ij>`` (dimensionless).
        magnitude : torch.Tensor, shape ``(nx, ny, nz)``
            ``|S|`` at the cell centres, in ``u_tau / h``.
        """
        delta = filter_width(ops)
        s = _strain_components(_velocity_gradient_components(ops, u, v, w))
        magnitude = _magnitude(s)

        test = self.TEST_FILTERS[self.test_filter]
        centres = ops.to_centres(u, v, w)
        centres_f = [test(c) for c in centres]
        # L_ij (its isotropic part drops out: L_ij M^d_ij = L^d_ij M^d_ij)
        leonard = [
            test(centres[i] * centres[j]).addcmul_(centres_f[i], centres_f[j], value=-1.0)
            for i, j in _SYM_PAIRS
        ]

        s_f = [test(component) for component in s]
        magnitude_f = _magnitude(s_f)
        factor, alpha_squared = 2.0 * delta**2, self.alpha_squared
        model = _deviatoric_symmetric(
            [
                test(magnitude * s_k).addcmul_(magnitude_f, s_f_k, value=-alpha_squared).mul_(factor)
                for s_k, s_f_k in zip(s, s_f)
            ]
        )

        numerator = _contract_symmetric(leonard, model).mean(dim=(0, 2))
        denominator = _contract_symmetric(model, model).mean(dim=(0, 2))
        positive = denominator > 0
        coefficient = torch.where(positive, numerator, 0.0) / torch.where(positive, denominator, 1.0)
        return coefficient, magnitude

    def eddy_viscosity(
        self, ops: StaggeredOperators, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu: float
    ) -> torch.Tensor:
        """``nu_t = C(y) Delta^2 |S|`` (``C >= 0`` with ``clip``), shape ``(nx, ny, nz)``, in
        ``u_tau h`` (independent of ``nu``); updates ``last_coefficient`` and
        ``last_unclipped_coefficient``."""
        coefficient, magnitude = self.coefficient(ops, u, v, w)
        applied = coefficient.clamp(min=0.0) if self.clip else coefficient
        self.last_unclipped_coefficient = coefficient.detach()
        self.last_coefficient = applied.detach()
        return applied.view(1, -1, 1) * filter_width(ops) ** 2 * magnitude


def build_sgs_model(name: str, **params: Any) -> EddyViscosityModel:
    """Build a subgrid-scale model from its registry name.

    Parameters
    ----------
    name
        A key of :data:`SGS_MODELS`: ``"smagorinsky"``, ``"wale"``, ``"dynamic_smagorinsky"``,
        ``"neural"`` (case and ``-``/``_`` insensitive).
    **params
        Constructor arguments of the model, e.g. ``cs=0.1``.

    Returns
    -------
    EddyViscosityModel
        The model.

    Raises
    ------
    ValueError
        For an unknown name (listing the valid names and the closest match) or parameters the
        model does not accept.
    """
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in SGS_MODELS:
        valid = ", ".join(repr(k) for k in SGS_MODELS)
        close = difflib.get_close_matches(key, list(SGS_MODELS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown subgrid-scale model {name!r}: valid names are {valid}{hint}")
    cls = SGS_MODELS[key]
    try:
        return cls(**params)
    except TypeError as error:
        raise ValueError(f"invalid parameters for subgrid-scale model {key!r}: {error}") from error
