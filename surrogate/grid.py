"""The channel geometry: domain, grid sizes, wall-normal stretching and coordinates.

The channel is periodic in the streamwise ``x`` and spanwise ``z`` directions and bounded by
no-slip walls at ``y = 0`` and ``y = 2``. Lengths are in channel half-heights ``h``.

The grid is a staggered (marker-and-cell) finite-volume grid:

* cell centres (pressure points and the points of every field Dataset) are at
  ``x[i] = i * dx``, ``y[j]`` (midpoints of the wall-normal faces) and ``z[k] = k * dz``;
* ``u`` lives on x-faces ``x[i] + dx / 2``, ``v`` on the wall-normal faces ``y_faces[j]`` and
  ``w`` on z-faces ``z[k] + dz / 2``.

The wall-normal faces cluster toward both walls with a hyperbolic-tangent map::

    y_faces[j] = 1 + tanh(s * eta_j) / tanh(s),   eta_j = -1 + 2 j / ny,   j = 0 .. ny

where ``s`` is ``stretching`` (``s = 0`` gives uniform faces).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import xarray as xr

__all__ = ["ChannelGrid"]

_COORD_ATTRS = {
    "x": {"units": "h", "long_name": "streamwise coordinate", "axis": "X"},
    "y": {"units": "h", "long_name": "wall-normal coordinate", "axis": "Y"},
    "z": {"units": "h", "long_name": "spanwise coordinate", "axis": "Z"},
}


@dataclass(frozen=True)
class ChannelGrid:
    """A staggered channel grid with walls at ``y = 0`` and ``y = 2``.

    Parameters
    ----------
    nx, ny, nz
        Number of cells in x, y and z (``ny`` cell centres between the walls, ``ny + 1``
        wall-normal faces including both walls).
    lx, lz
        Periodic box lengths in x and z, in channel half-heights ``h``.
    stretching
        Strength ``s >= 0`` of the tanh clustering of wall-normal faces toward both walls;
        0 gives a uniform grid, 2-3 is usual for wall-resolved DNS.
    """

    nx: int
    ny: int
    nz: int
    lx: float = 2.0 * math.pi
    lz: float = math.pi
    stretching: float = 0.0

    def __post_init__(self) -> None:
        for name in ("nx", "ny", "nz"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ChannelGrid.{name} must be a positive integer, got {value!r}")
        if self.ny < 2:
            raise ValueError(f"ChannelGrid.ny must be at least 2 cells between the walls, got {self.ny}")
        for name in ("lx", "lz"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ChannelGrid.{name} must be a positive length in h, got {value!r}")
        if not (math.isfinite(self.stretching) and self.stretching >= 0):
            raise ValueError(f"ChannelGrid.stretching must be >= 0, got {self.stretching!r}")

    # ------------------------------------------------------------------ spacings
    @property
    def dx(self) -> float:
        """Streamwise cell size in h."""
        return self.lx / self.nx

    @property
    def dz(self) -> float:
        """Spanwise cell size in h."""
        return self.lz / self.nz

    @property
    def shape(self) -> tuple[int, int, int]:
        """Cell-centre array shape ``(nx, ny, nz)``."""
        return (self.nx, self.ny, self.nz)

    # ------------------------------------------------------------------ coordinates
    @cached_property
    def x(self) -> np.ndarray:
        """Cell-centre x, shape ``(nx,)``, in h."""
        return np.arange(self.nx) * self.dx

    @cached_property
    def z(self) -> np.ndarray:
        """Cell-centre z, shape ``(nz,)``, in h."""
        return np.arange(self.nz) * self.dz

    @cached_property
    def x_faces(self) -> np.ndarray:
        """x of the ``u`` points (east faces of the cells), shape ``(nx,)``, in h."""
        return self.x + 0.5 * self.dx

    @cached_property
    def z_faces(self) -> np.ndarray:
        """z of the ``w`` points (top faces in z of the cells), shape ``(nz,)``, in h."""
        return self.z + 0.5 * self.dz

    @cached_property
    def y_faces(self) -> np.ndarray:
        """Wall-normal faces including both walls, shape ``(ny + 1,)``, from 0 to 2, in h."""
        eta = np.linspace(-1.0, 1.0, self.ny + 1)
        if self.stretching == 0:
            faces = 1.0 + eta
        else:
            faces = 1.0 + np.tanh(self.stretching * eta) / math.tanh(self.stretching)
        faces[0], faces[-1] = 0.0, 2.0
        return faces

    @cached_property
    def y(self) -> np.ndarray:
        """Cell-centre y (midpoints of the faces), shape ``(ny,)``, in h."""
        faces = self.y_faces
        return 0.5 * (faces[1:] + faces[:-1])

    @cached_property
    def dy(self) -> np.ndarray:
        """Cell heights ``y_faces[j + 1] - y_faces[j]``, shape ``(ny,)``, in h."""
        return np.diff(self.y_faces)

    @cached_property
    def dy_centres(self) -> np.ndarray:
        """Distances between neighbouring cell centres, shape ``(ny - 1,)``, in h."""
        return np.diff(self.y)

    def centre_to_face_interpolation(self) -> np.ndarray:
        """Linear interpolation of cell-centre profiles to the wall-normal faces, ``(ny + 1, ny)``.

        Rows 0 and ``ny`` (the walls) are zero: the interpolated quantity vanishes on the walls.
        """
        y, faces = self.y, self.y_faces
        interp = np.zeros((self.ny + 1, self.ny))
        for j in range(1, self.ny):
            weight = (faces[j] - y[j - 1]) / (y[j] - y[j - 1])
            interp[j, j - 1], interp[j, j] = 1.0 - weight, weight
        return interp

    def wall_distance(self) -> np.ndarray:
        """Distance of each cell centre to the nearest wall, shape ``(ny,)``, in h."""
        return np.minimum(self.y, 2.0 - self.y)

    # ------------------------------------------------------------------ xarray
    def coords(self) -> dict[str, xr.DataArray]:
        """Cell-centre coordinates as xarray DataArrays with CF attributes."""
        return {
            name: xr.DataArray(getattr(self, name), dims=(name,), attrs=dict(_COORD_ATTRS[name]))
            for name in ("x", "y", "z")
        }

    def to_attrs(self) -> dict[str, Any]:
        """The grid definition as flat attributes (``grid_nx``, ``grid_lx``, ...) for a Dataset."""
        return {f"grid_{key}": value for key, value in asdict(self).items()}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "ChannelGrid":
        """Rebuild a grid from the attributes written by :meth:`to_attrs`."""
        missing = [f"grid_{name}" for name in cls.__dataclass_fields__ if f"grid_{name}" not in attrs]
        if missing:
            raise KeyError(f"grid attributes missing: {', '.join(missing)} (a Dataset written by surrogate has them)")
        return cls(
            nx=int(attrs["grid_nx"]),
            ny=int(attrs["grid_ny"]),
            nz=int(attrs["grid_nz"]),
            lx=float(attrs["grid_lx"]),
            lz=float(attrs["grid_lz"]),
            stretching=float(attrs["grid_stretching"]),
        )

    @classmethod
    def from_coords(cls, x: Any, y: Any, z: Any, atol: float = 1e-10) -> "ChannelGrid":
        """The grid whose cell centres are ``x, y, z`` (in h), to ``atol``.

        ``x`` and ``z`` must be uniform and start at 0 (``x[i] = i * dx``, so ``lx = nx * dx``);
        ``y`` must be the midpoints of tanh-stretched faces from 0 to 2 (module docstring). The
        faces follow from the centres exactly (``f[0] = 0``, ``f[j + 1] = 2 y[j] - f[j]``) and the
        stretching from the first interior face.

        Raises
        ------
        ValueError
            Naming the coordinate that is not one of such a grid and by how much it misses.
        """
        spacing = {}
        for name, values in (("x", x), ("z", z)):
            values = np.asarray(values, dtype=np.float64).ravel()
            if values.size < 2:
                raise ValueError(f"coordinate {name} has {values.size} point(s); at least 2 are needed to know the box length")
            step = values[-1] / (values.size - 1)
            error = float(np.max(np.abs(values - step * np.arange(values.size))))
            if not (step > 0 and error <= atol):
                raise ValueError(
                    f"coordinate {name} is not uniform cell centres from 0 (x[i] = i * d{name}): "
                    f"largest difference {error:.3g} h"
                )
            spacing[name] = (values.size, step * values.size)
        y = np.asarray(y, dtype=np.float64).ravel()
        if y.size < 2:
            raise ValueError(f"coordinate y has {y.size} point(s); expected at least 2 cell centres between the walls")
        faces = np.zeros(y.size + 1)
        for j, centre in enumerate(y):
            faces[j + 1] = 2.0 * centre - faces[j]
        if not abs(faces[-1] - 2.0) <= 1e3 * atol:
            raise ValueError(
                f"coordinate y is not cell centres between walls at y = 0 and y = 2 h "
                f"(its faces end at {faces[-1]:.6g} h)"
            )
        eta = -1.0 + 2.0 / y.size
        uniform = 1.0 + eta
        stretching = 0.0
        if faces[1] < uniform - atol:
            from scipy.optimize import brentq

            stretching = float(brentq(lambda s: 1.0 + math.tanh(s * eta) / math.tanh(s) - faces[1], 1e-9, 50.0, xtol=1e-15))
        (nx, lx), (nz, lz) = spacing["x"], spacing["z"]
        grid = cls(nx=nx, ny=y.size, nz=nz, lx=float(lx), lz=float(lz), stretching=stretching)
        error = float(np.max(np.abs(grid.y - y)))
        if not error <= atol:
            raise ValueError(
                f"coordinate y is not the cell centres of a tanh-stretched channel grid (grid module "
                f"docstring): the closest, stretching {stretching:.6g}, misses by {error:.3g} h"
            )
        return grid

    def y_plus(self, re_tau: float) -> np.ndarray:
        """Wall distance of the cell centres in wall units, shape ``(ny,)``."""
        return self.wall_distance() * re_tau
