r"""Normalisation statistics of a dataset: per-variable mean and standard deviation.

For each variable ``q`` (``u, v, w`` and optionally ``p``) over the training snapshots,

.. math::
    \mu_q(y) = \langle q \rangle_{x,z,t}, \qquad
    \sigma_q(y) = \sqrt{\langle q^2 \rangle_{x,z,t} - \mu_q(y)^2}

per wall-normal plane (``mode="plane"``), and the same averages over all points
(``mode="component"``, one number per variable, as in the IFactFormer-m study). Normalised data
are ``(q - mu) / sigma``. Plane standard deviations below ``1e-6`` times the variable's global
standard deviation (e.g. a component that vanishes identically on a plane) are raised to that
floor so normalising never divides by zero; a variable that is constant everywhere gets
``sigma = 1``.

Stored as ``normalization.nc``: variables ``plane_mean``, ``plane_std`` (dims ``variable, y``),
``mean``, ``std`` (dim ``variable``), in the units of the fields (u_tau, rho u_tau^2).
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Iterable, Literal, Sequence

import netCDF4
import numpy as np
import torch
import xarray as xr

__all__ = ["Normalization", "compute_normalization"]

Mode = Literal["plane", "component"]
_STD_FLOOR = 1e-6


@dataclass
class Normalization:
    """Means and standard deviations of the variables of a dataset.

    Attributes
    ----------
    variables
        Variable names in channel order, e.g. ``("u", "v", "w")``.
    y
        Cell-centre wall-normal coordinates in h, shape ``(ny,)``.
    plane_mean, plane_std
        Per-plane statistics, shape ``(n_var, ny)``.
    mean, std
        Global statistics, shape ``(n_var,)``.
    mode
        Which of the two :meth:`normalize` uses: ``"plane"`` or ``"component"``.
    """

    variables: tuple[str, ...]
    y: np.ndarray
    plane_mean: np.ndarray
    plane_std: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    mode: Mode = "plane"

    def __post_init__(self) -> None:
        if self.mode not in ("plane", "component"):
            raise ValueError(f"mode must be 'plane' or 'component', got {self.mode!r}")

    # ------------------------------------------------------------------ applying
    def _moments(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std shaped to broadcast against ``(..., n_var, nx, ny, nz)``."""
        if self.mode == "plane":
            mean, std = self.plane_mean[:, None, :, None], self.plane_std[:, None, :, None]
        else:
            mean, std = self.mean[:, None, None, None], self.std[:, None, None, None]
        return (
            torch.as_tensor(mean, dtype=like.dtype, device=like.device),
            torch.as_tensor(std, dtype=like.dtype, device=like.device),
        )

    def _check(self, x: torch.Tensor) -> None:
        n_var, ny = len(self.variables), self.y.size
        if x.ndim < 4 or x.shape[-4] != n_var or x.shape[-2] != ny:
            raise ValueError(
                f"expected a tensor of shape (..., {n_var}, nx, {ny}, nz) for variables {self.variables}, "
                f"got {tuple(x.shape)}"
            )

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mu) / sigma`` for ``x`` of shape ``(..., n_var, nx, ny, nz)`` in physical units."""
        self._check(x)
        mean, std = self._moments(x)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """``x sigma + mu``: the inverse of :meth:`normalize`."""
        self._check(x)
        mean, std = self._moments(x)
        return x * std + mean

    def with_mode(self, mode: Mode) -> "Normalization":
        """The same statistics applied per plane or per component."""
        return Normalization(self.variables, self.y, self.plane_mean, self.plane_std, self.mean, self.std, mode)

    def select(self, variables: Sequence[str]) -> "Normalization":
        """The statistics of a subset of the variables, in the given order."""
        missing = [name for name in variables if name not in self.variables]
        if missing:
            raise ValueError(f"no normalisation statistics for {missing}; the dataset has {list(self.variables)}")
        idx = [self.variables.index(name) for name in variables]
        return Normalization(tuple(variables), self.y, self.plane_mean[idx], self.plane_std[idx], self.mean[idx], self.std[idx], self.mode)

    # ------------------------------------------------------------------ storage
    def to_dataset(self) -> xr.Dataset:
        """The statistics as an xarray Dataset (the ``normalization.nc`` layout)."""
        coords = {"variable": list(self.variables), "y": ("y", self.y, {"units": "h"})}
        return xr.Dataset(
            {
                "plane_mean": (("variable", "y"), self.plane_mean),
                "plane_std": (("variable", "y"), self.plane_std),
                "mean": (("variable",), self.mean),
                "std": (("variable",), self.std),
            },
            coords=coords,
            attrs={"description": "mean and standard deviation of the training snapshots, per wall-normal plane and global"},
        )

    def save(self, path: str | PathLike[str]) -> Path:
        """Write ``normalization.nc`` atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        self.to_dataset().to_netcdf(tmp)
        tmp.replace(path)
        return path

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, mode: Mode = "plane") -> "Normalization":
        """Rebuild from :meth:`to_dataset` output (e.g. stored in a checkpoint)."""
        missing = [name for name in ("plane_mean", "plane_std", "mean", "std") if name not in ds]
        if missing:
            raise ValueError(f"normalisation statistics lack {missing}; expected plane_mean, plane_std, mean, std")
        return cls(
            tuple(str(v) for v in ds["variable"].values),
            np.asarray(ds["y"].values, dtype=np.float64),
            np.asarray(ds["plane_mean"].values, dtype=np.float64),
            np.asarray(ds["plane_std"].values, dtype=np.float64),
            np.asarray(ds["mean"].values, dtype=np.float64),
            np.asarray(ds["std"].values, dtype=np.float64),
            mode,
        )

    @classmethod
    def load(cls, path: str | PathLike[str], mode: Mode = "plane") -> "Normalization":
        """Read ``normalization.nc``."""
        with xr.open_dataset(path) as ds:
            return cls.from_dataset(ds.load(), mode)


def compute_normalization(segments: Iterable[tuple[Path, int, int]], variables: Sequence[str]) -> Normalization:
    """Statistics over snapshot ranges of field files, streamed one snapshot at a time.

    Parameters
    ----------
    segments
        ``(path, start, stop)``: snapshots ``start <= n < stop`` of the field file ``path``.
    variables
        Variables to include, e.g. ``["u", "v", "w"]``.

    Raises
    ------
    ValueError
        If the segments hold no snapshot.
    """
    sums = sumsq = None
    count = 0
    y = None
    for path, start, stop in segments:
        with netCDF4.Dataset(path) as nc:
            y = np.asarray(nc["y"][:], dtype=np.float64)
            for n in range(start, stop):
                snap = np.stack([np.asarray(nc[name][n], dtype=np.float64) for name in variables])  # (n_var, nx, ny, nz)
                plane_sum = snap.sum(axis=(1, 3))
                plane_sumsq = np.square(snap).sum(axis=(1, 3))
                sums = plane_sum if sums is None else sums + plane_sum
                sumsq = plane_sumsq if sumsq is None else sumsq + plane_sumsq
                count += snap.shape[1] * snap.shape[3]
    if count == 0:
        raise ValueError("the training split holds no snapshot: no normalisation statistics can be computed")
    plane_mean = sums / count
    plane_var = np.maximum(sumsq / count - plane_mean**2, 0.0)
    mean = sums.sum(axis=1) / (count * y.size)
    var = np.maximum(sumsq.sum(axis=1) / (count * y.size) - mean**2, 0.0)
    std = np.sqrt(var)
    std = np.where(std > 0, std, 1.0)
    plane_std = np.maximum(np.sqrt(plane_var), _STD_FLOOR * std[:, None])
    return Normalization(tuple(variables), y, plane_mean, plane_std, mean, std)
