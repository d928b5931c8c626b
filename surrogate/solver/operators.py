"""Second-order finite-difference operators on the staggered channel grid.

Array layout (all torch tensors, cell index order ``(x, y, z)``):

* ``u``: shape ``(nx, ny, nz)`` at ``(x_faces[i], y[j], z[k])``;
* ``v``: shape ``(nx, ny + 1, nz)`` at ``(x[i], y_faces[j], z[k])``, including both walls where
  ``v = 0`` always;
* ``w``: shape ``(nx, ny, nz)`` at ``(x[i], y[j], z_faces[k])``;
* ``p`` and every scalar: shape ``(nx, ny, nz)`` at cell centres.

Periodic differences in x and z use :func:`torch.roll`. The convective term is the divergence
form with face mass fluxes that satisfy discrete continuity on every momentum control volume
and arithmetic averages of the transported velocity, so that convection conserves kinetic
energy on the stretched wall-normal grid (Morinishi et al. 1998 for uniform grids; the
stretched-grid weights follow from the control-volume heights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..grid import ChannelGrid

__all__ = ["StaggeredOperators"]


def _east(a: torch.Tensor, dim: int) -> torch.Tensor:
    """Neighbour at index ``i + 1`` along a periodic dimension."""
    return torch.roll(a, -1, dims=dim)


def _west(a: torch.Tensor, dim: int) -> torch.Tensor:
    """Neighbour at index ``i - 1`` along a periodic dimension."""
    return torch.roll(a, 1, dims=dim)


@dataclass
class StaggeredOperators:
    """Discrete operators of one :class:`ChannelGrid` on a given device and dtype.

    Attributes hold the grid metrics as broadcastable tensors of shape ``(1, n, 1)``:
    ``dy`` cell heights (``ny``), ``dyc`` distances between wall-normal velocity neighbours,
    i.e. the heights of the v control volumes of the interior faces (``ny - 1``), and the
    distances from the first and last cell centres to their walls.
    """

    grid: ChannelGrid
    device: torch.device
    dtype: torch.dtype

    def __post_init__(self) -> None:
        g = self.grid
        kw = dict(device=self.device, dtype=self.dtype)
        self.dx = g.dx
        self.dz = g.dz
        self.dy = torch.tensor(g.dy, **kw).view(1, -1, 1)
        self.dyc = torch.tensor(g.dy_centres, **kw).view(1, -1, 1)
        self.inv_dy = 1.0 / self.dy
        self.inv_dyc = 1.0 / self.dyc
        self.wall_gap_lower = float(g.y[0])
        self.wall_gap_upper = float(2.0 - g.y[-1])
        # weights of the height-weighted average of two neighbouring cells at an interior face
        lower, upper = self.dy[:, :-1], self.dy[:, 1:]
        self.weight_lower = lower / (lower + upper)
        self.weight_upper = upper / (lower + upper)

    # ------------------------------------------------------------------ helpers
    def zeros_v(self, nx: int, nz: int) -> torch.Tensor:
        """A wall-normal velocity array of zeros, shape ``(nx, ny + 1, nz)``."""
        return torch.zeros(nx, self.grid.ny + 1, nz, device=self.device, dtype=self.dtype)

    def pad_faces(self, interior: torch.Tensor) -> torch.Tensor:
        """Add zero wall values to interior-face data ``(nx, ny - 1, nz)`` → ``(nx, ny + 1, nz)``."""
        return torch.nn.functional.pad(interior, (0, 0, 1, 1))

    def y_average(self, a: torch.Tensor) -> torch.Tensor:
        """Arithmetic mean of neighbouring cell values at the interior faces, ``(nx, ny - 1, nz)``."""
        return 0.5 * (a[:, 1:] + a[:, :-1])

    def y_volume_average(self, a: torch.Tensor) -> torch.Tensor:
        """Cell-height weighted mean at the interior faces (mass flux through a v-cell side)."""
        return a[:, :-1] * self.weight_lower + a[:, 1:] * self.weight_upper

    def y_interpolate(self, a: torch.Tensor) -> torch.Tensor:
        """Linear interpolation of cell-centre values to the interior faces, ``(nx, ny - 1, nz)``."""
        return a[:, :-1] * self.weight_upper + a[:, 1:] * self.weight_lower

    # ------------------------------------------------------------------ div and grad
    def divergence(self, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Cell-centred divergence ``du/dx + dv/dy + dw/dz``, shape ``(nx, ny, nz)``."""
        return (
            (u - _west(u, 0)) / self.dx
            + (v[:, 1:] - v[:, :-1]) * self.inv_dy
            + (w - _west(w, 2)) / self.dz
        )

    def gradient(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradient of a cell-centred scalar at the u, v and w points (v at walls is zero)."""
        gx = (_east(p, 0) - p) / self.dx
        gy = self.pad_faces((p[:, 1:] - p[:, :-1]) * self.inv_dyc)
        gz = (_east(p, 2) - p) / self.dz
        return gx, gy, gz

    # ------------------------------------------------------------------ diffusion
    def laplacian_xz(self, a: torch.Tensor) -> torch.Tensor:
        """Periodic second differences ``d2a/dx2 + d2a/dz2`` of any array."""
        return (_east(a, 0) - 2 * a + _west(a, 0)) / self.dx**2 + (
            _east(a, 2) - 2 * a + _west(a, 2)
        ) / self.dz**2

    def ddy_at_faces(self, a: torch.Tensor) -> torch.Tensor:
        """``da/dy`` on all ``ny + 1`` faces of a cell-centred quantity that vanishes on the walls."""
        inner = (a[:, 1:] - a[:, :-1]) * self.inv_dyc
        lower = a[:, :1] / self.wall_gap_lower
        upper = -a[:, -1:] / self.wall_gap_upper
        return torch.cat([lower, inner, upper], dim=1)

    def d2y_centres(self, a: torch.Tensor) -> torch.Tensor:
        """``d2a/dy2`` of a cell-centred quantity that vanishes on both walls, ``(nx, ny, nz)``."""
        flux = self.ddy_at_faces(a)
        return (flux[:, 1:] - flux[:, :-1]) * self.inv_dy

    def d2y_faces(self, v: torch.Tensor) -> torch.Tensor:
        """``d2v/dy2`` at the faces of a face quantity with zero wall values; zero on walls."""
        flux = (v[:, 1:] - v[:, :-1]) * self.inv_dy
        return self.pad_faces((flux[:, 1:] - flux[:, :-1]) * self.inv_dyc)

    # ------------------------------------------------------------------ convection
    def _convective_fluxes(self, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """The momentum fluxes ``u_i u_j`` of the energy-conserving convective form, each where its
        divergence needs it: ``xx``, ``zz`` (u and w momentum) and ``yy`` (v) at cell centres, ``xz``
        on the (x-face, z-face) edges, ``xy_u``/``yz_w`` on all ``ny + 1`` wall-normal faces (zero on
        the walls, v = 0 there) and ``xy_v``/``yz_v`` on the interior faces, with the height-weighted
        averages that keep the v control volumes conservative."""
        v_x = 0.5 * (v + _east(v, 0))  # (i+1/2, j_f, k)
        v_z = 0.5 * (v + _east(v, 2))  # (i, j_f, k+1/2)
        return {
            "xx": (0.5 * (u + _west(u, 0))) ** 2,
            "zz": (0.5 * (w + _west(w, 2))) ** 2,
            "yy": (0.5 * (v[:, 1:] + v[:, :-1])) ** 2,
            "xz": 0.5 * (u + _east(u, 2)) * 0.5 * (w + _east(w, 0)),  # (i+1/2, j, k+1/2)
            "xy_u": self.pad_faces(v_x[:, 1:-1] * self.y_average(u)),
            "yz_w": self.pad_faces(v_z[:, 1:-1] * self.y_average(w)),
            "xy_v": self.y_volume_average(u) * v_x[:, 1:-1],
            "yz_v": self.y_volume_average(w) * v_z[:, 1:-1],
        }

    def _flux_divergence(self, xx, zz, yy, xz_u, xz_w, xy_u, yz_w, xy_v, yz_v) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``-d F_ij / dx_j`` at the u, v and w points for momentum fluxes laid out as in
        :meth:`_convective_fluxes` (``xz_u`` and ``xz_w``: the (x-face, z-face) flux of u and of w
        momentum)."""
        dx, dz = self.dx, self.dz
        term_u = -((_east(xx, 0) - xx) / dx + (xy_u[:, 1:] - xy_u[:, :-1]) * self.inv_dy + (xz_u - _west(xz_u, 2)) / dz)
        term_w = -((xz_w - _west(xz_w, 0)) / dx + (yz_w[:, 1:] - yz_w[:, :-1]) * self.inv_dy + (_east(zz, 2) - zz) / dz)
        term_v = -((xy_v - _west(xy_v, 0)) / dx + (yy[:, 1:] - yy[:, :-1]) * self.inv_dyc + (yz_v - _west(yz_v, 2)) / dz)
        return term_u, self.pad_faces(term_v), term_w

    def convection(
        self, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Convective terms ``-div(u u)`` at the u, v and w points, energy-conserving form."""
        f = self._convective_fluxes(u, v, w)
        return self._flux_divergence(f["xx"], f["zz"], f["yy"], f["xz"], f["xz"], f["xy_u"], f["yz_w"], f["xy_v"], f["yz_v"])

    # ------------------------------------------------------------------ eddy viscosity
    def _edge_viscosities(self, nu_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A cell-centred ``nu_t`` averaged to the (x-face, y-face), (y-face, z-face) and (x-face,
        z-face) edges; zero on the wall edges (``nu_t`` vanishes at a no-slip wall)."""
        wall = torch.zeros_like(nu_t[:, :1])
        nu_faces = torch.cat([wall, self.y_average(nu_t), wall], dim=1)
        nu_xy = 0.5 * (nu_faces + _east(nu_faces, 0))
        nu_yz = 0.5 * (nu_faces + _east(nu_faces, 2))
        nu_xz = 0.25 * (nu_t + _east(nu_t, 0) + _east(nu_t, 2) + _east(_east(nu_t, 0), 2))
        return nu_xy, nu_yz, nu_xz

    def eddy_viscous_force(
        self, nu_t: torch.Tensor, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``d/dx_j (2 nu_t S_ij)`` at the u, v and w points for a cell-centred ``nu_t``.

        The strain rate ``S_ij = (du_i/dx_j + du_j/dx_i) / 2`` is formed where the staggered
        differences are exact: diagonal components at cell centres, ``S_xy`` on the
        (x-face, y-face) edges including the walls (``du/dy`` from the wall value 0 there),
        ``S_xz`` on (x-face, z-face) edges and ``S_yz`` on (y-face, z-face) edges. ``nu_t`` is
        averaged from the centres to each edge and zero on the wall edges, so the wall shear stress
        is the molecular one alone. With a uniform ``nu_t`` and a discretely divergence-free
        velocity the result equals ``nu_t`` times the discrete Laplacian the solver uses for
        molecular diffusion, less the wall flux in the wall rows of ``u`` and ``w``.

        Parameters
        ----------
        nu_t : torch.Tensor, shape ``(nx, ny, nz)``
            Eddy viscosity at cell centres, in u_tau h.
        u, v, w
            Staggered velocities.
        """
        dx, dz = self.dx, self.dz
        # strain rates
        s_xx = (u - _west(u, 0)) / dx
        s_yy = (v[:, 1:] - v[:, :-1]) * self.inv_dy
        s_zz = (w - _west(w, 2)) / dz
        s_xy = 0.5 * (self.ddy_at_faces(u) + (_east(v, 0) - v) / dx)  # (i+1/2, j_f, k), ny+1 faces
        s_yz = 0.5 * (self.ddy_at_faces(w) + (_east(v, 2) - v) / dz)  # (i, j_f, k+1/2)
        s_xz = 0.5 * ((_east(u, 2) - u) / dz + (_east(w, 0) - w) / dx)  # (i+1/2, j, k+1/2)

        nu_xy, nu_yz, nu_xz = self._edge_viscosities(nu_t)
        t_xx, t_yy, t_zz = 2 * nu_t * s_xx, 2 * nu_t * s_yy, 2 * nu_t * s_zz
        t_xy, t_yz, t_xz = 2 * nu_xy * s_xy, 2 * nu_yz * s_yz, 2 * nu_xz * s_xz

        force_u = (
            (_east(t_xx, 0) - t_xx) / dx + (t_xy[:, 1:] - t_xy[:, :-1]) * self.inv_dy + (t_xz - _west(t_xz, 2)) / dz
        )
        force_w = (
            (t_xz - _west(t_xz, 0)) / dx + (t_yz[:, 1:] - t_yz[:, :-1]) * self.inv_dy + (_east(t_zz, 2) - t_zz) / dz
        )
        force_v = (
            (t_xy - _west(t_xy, 0))[:, 1:-1] / dx
            + (t_yy[:, 1:] - t_yy[:, :-1]) * self.inv_dyc
            + (t_yz - _west(t_yz, 2))[:, 1:-1] / dz
        )
        return force_u, self.pad_faces(force_v), force_w

    def explicit_momentum(
        self, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor, nu: float, nu_t: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The solver's explicit terms at the u, v and w points as the divergence of one momentum flux.

        Equal, to round-off, to :meth:`convection` plus ``nu`` times :meth:`laplacian_xz` plus (with
        ``nu_t``) :meth:`eddy_viscous_force`. Each of those is the difference of a flux that lies on the
        same points (the convective products, ``nu`` times the wall-parallel velocity differences and
        ``2 nu_t S_ij``), so the three fluxes are summed first and differenced once: one divergence
        instead of three, with the strain components shared between the molecular and the eddy-viscous
        fluxes.

        ``nu``: molecular viscosity in u_tau h; ``nu_t``: cell-centred eddy viscosity ``(nx, ny, nz)``
        in u_tau h, or ``None`` for none.
        """
        if nu_t is None:  # without a stress to share the divergence, the plain sum compiles to faster code
            conv = self.convection(u, v, w)
            return tuple(term + nu * self.laplacian_xz(a) for term, a in zip(conv, (u, v, w)))
        dx, dz = self.dx, self.dz
        du_dx = (u - _west(u, 0)) / dx  # centres
        dw_dz = (w - _west(w, 2)) / dz  # centres
        du_dz = (_east(u, 2) - u) / dz  # (i+1/2, j, k+1/2)
        dw_dx = (_east(w, 0) - w) / dx  # (i+1/2, j, k+1/2)
        dv_dx = (_east(v, 0) - v) / dx  # (i+1/2, j_f, k)
        dv_dz = (_east(v, 2) - v) / dz  # (i, j_f, k+1/2)
        nu_xy, nu_yz, nu_xz = self._edge_viscosities(nu_t)
        t_xy = nu_xy * (self.ddy_at_faces(u) + dv_dx)  # 2 nu_t S_xy on all ny + 1 faces
        t_yz = nu_yz * (self.ddy_at_faces(w) + dv_dz)
        t_xz = nu_xz * (du_dz + dw_dx)
        # the convective flux, less the molecular wall-parallel and the eddy-viscous ones
        f = self._convective_fluxes(u, v, w)
        return self._flux_divergence(
            f["xx"] - (nu + 2 * nu_t) * du_dx,
            f["zz"] - (nu + 2 * nu_t) * dw_dz,
            f["yy"] - 2 * nu_t * (v[:, 1:] - v[:, :-1]) * self.inv_dy,
            f["xz"] - nu * du_dz - t_xz,
            f["xz"] - nu * dw_dx - t_xz,
            f["xy_u"] - t_xy,
            f["yz_w"] - t_yz,
            (f["xy_v"] - nu * dv_dx[:, 1:-1]) - t_xy[:, 1:-1],
            (f["yz_v"] - nu * dv_dz[:, 1:-1]) - t_yz[:, 1:-1],
        )

    def stress_divergence(self, tau) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``d tau_ij / dx_j`` at the u, v and w points for a symmetric stress at the cell centres.

        ``tau``: its six components ``(xx, yy, zz, xy, xz, yz)``, each ``(nx, ny, nz)``. The normal
        stresses are differenced where they lie; the shear stresses are averaged to the edges the
        divergence needs (``xy`` to (x-face, y-face), ``yz`` to (y-face, z-face), ``xz`` to
        (x-face, z-face)) and are zero on the wall edges, so the stress moves momentum inside the
        channel and adds none through the walls.
        """
        xx, yy, zz, xy, xz, yz = tau
        dx, dz = self.dx, self.dz
        t_xy = self.pad_faces(self.y_interpolate(0.5 * (xy + _east(xy, 0))))  # (i+1/2, j_f, k)
        t_yz = self.pad_faces(self.y_interpolate(0.5 * (yz + _east(yz, 2))))  # (i, j_f, k+1/2)
        t_xz = 0.25 * (xz + _east(xz, 0) + _east(xz, 2) + _east(_east(xz, 0), 2))  # (i+1/2, j, k+1/2)
        force_u = (
            (_east(xx, 0) - xx) / dx + (t_xy[:, 1:] - t_xy[:, :-1]) * self.inv_dy + (t_xz - _west(t_xz, 2)) / dz
        )
        force_w = (
            (t_xz - _west(t_xz, 0)) / dx + (t_yz[:, 1:] - t_yz[:, :-1]) * self.inv_dy + (_east(zz, 2) - zz) / dz
        )
        force_v = (
            (t_xy - _west(t_xy, 0))[:, 1:-1] / dx
            + (yy[:, 1:] - yy[:, :-1]) * self.inv_dyc
            + (t_yz - _west(t_yz, 2))[:, 1:-1] / dz
        )
        return force_u, self.pad_faces(force_v), force_w

    def mean_shear_force(self, nu_faces: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``d/dy (nu_T dU/dy)`` at the u points for a face viscosity ``nu_T(y)`` and the plane mean ``U`` of ``u``.

        ``nu_faces``: ``(1, ny + 1, 1)`` in u_tau h, zero on the walls, so that the force moves
        momentum between planes and adds none at the walls. Returns ``(1, ny, 1)``, the same on every
        point of a plane.
        """
        flux = nu_faces * self.ddy_at_faces(u.mean(dim=(0, 2), keepdim=True))
        return (flux[:, 1:] - flux[:, :-1]) * self.inv_dy

    # ------------------------------------------------------------------ staggered <-> centres
    def to_centres(
        self, u: torch.Tensor, v: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Average the staggered velocities to cell centres, each ``(nx, ny, nz)``."""
        return 0.5 * (u + _west(u, 0)), 0.5 * (v[:, 1:] + v[:, :-1]), 0.5 * (w + _west(w, 2))

    def from_centres(
        self, uc: torch.Tensor, vc: torch.Tensor, wc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Interpolate cell-centre velocities to the staggered points (v = 0 on the walls)."""
        return 0.5 * (uc + _east(uc, 0)), self.pad_faces(self.y_interpolate(vc)), 0.5 * (wc + _east(wc, 2))

    def bulk_mean(self, a: torch.Tensor) -> torch.Tensor:
        """Volume average of a cell-centred (or u/w-point) quantity over the channel (scalar)."""
        return (a.mean(dim=(0, 2), keepdim=True) * self.dy).sum() / 2.0
