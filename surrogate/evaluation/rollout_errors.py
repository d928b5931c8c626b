r"""A rollout against its true trajectory, snapshot by snapshot (:func:`rollout_errors`)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..grid import ChannelGrid
from .runs import TIME_MATCH_TOLERANCE, ValidationError

__all__ = [
    "rollout_errors",
]


def _velocity(ds: xr.Dataset, index: int) -> np.ndarray:
    return np.stack([np.asarray(ds[name].isel(time=index).values, dtype=np.float64) for name in ("u", "v", "w")])


def rollout_errors(rollout_ds: xr.Dataset, truth_ds: xr.Dataset) -> xr.Dataset:
    r"""Error and correlation of a rollout against the true trajectory, snapshot by snapshot.

    The snapshots are paired by time value (within :data:`TIME_MATCH_TOLERANCE` h/u_tau);
    rollout times without a true snapshot are left out. With ``q = (u, v, w)``, sums over all
    cells and the three components weighted by the cell heights ``dy`` (uniform weights when
    the grid is unknown) and ``q'`` the fluctuation about each snapshot's ``x``-``z`` plane mean,

    .. math::

        \epsilon(t) = \left(\frac{\sum (q_{roll} - q_{true})^2}{\sum q_{true}^2}\right)^{1/2},
        \qquad
        \rho(t) = \frac{\sum q'_{roll} q'_{true}}{\left(\sum q'^2_{roll} \sum q'^2_{true}\right)^{1/2}}.

    Parameters
    ----------
    rollout_ds
        Field Dataset of the rollout (dims ``(time, x, y, z)``).
    truth_ds
        Field Dataset of the truth on the same grid (e.g. the dataset trajectory the rollout
        started from, its ``attrs["truth_file"]``).

    Returns
    -------
    xarray.Dataset
        Over dim ``time`` (the common times): ``relative_l2`` and ``correlation``; coord
        ``step`` (the rollout's snapshot index).

    Raises
    ------
    ValidationError
        If either has no ``time`` dim, the grids differ, or no time is shared.
    """
    for ds, what in ((rollout_ds, "rollout"), (truth_ds, "truth")):
        missing = [name for name in ("u", "v", "w") if name not in ds.data_vars]
        if missing:
            raise ValidationError(f"the {what} lacks {', '.join(missing)}")
        if "time" not in ds["u"].dims:
            raise ValidationError(f"the {what} has no time dimension; rollout errors compare trajectories")
    for dim in ("x", "y", "z"):
        a, b = np.asarray(rollout_ds[dim].values, dtype=float), np.asarray(truth_ds[dim].values, dtype=float)
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-8):
            raise ValidationError(
                f"the rollout and the truth are on different grids: {dim} has {a.size} vs {b.size} points"
                + ("" if a.shape != b.shape else " at different positions")
            )
    t_roll = np.asarray(rollout_ds["time"].values, dtype=float)
    t_true = np.asarray(truth_ds["time"].values, dtype=float)
    order = np.argsort(t_true, kind="stable")
    sorted_true = t_true[order]
    position = np.clip(np.searchsorted(sorted_true, t_roll), 1, max(sorted_true.size - 1, 1))
    candidates = np.stack([position - 1, np.minimum(position, sorted_true.size - 1)])
    nearest = np.take_along_axis(candidates, np.abs(sorted_true[candidates] - t_roll).argmin(0)[None], 0)[0]
    matched = np.abs(sorted_true[nearest] - t_roll) <= TIME_MATCH_TOLERANCE
    if not np.any(matched):
        raise ValidationError(
            f"the rollout (t = {t_roll.min():g} .. {t_roll.max():g}) and the truth (t = {t_true.min():g} .. "
            f"{t_true.max():g}) share no snapshot time"
        )
    try:
        weights = np.asarray(ChannelGrid.from_attrs(truth_ds.attrs).dy, dtype=float)
        if weights.size != truth_ds.sizes["y"]:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        weights = np.ones(truth_ds.sizes["y"])
    dims = truth_ds["u"].dims
    space = [dim for dim in dims if dim != "time"]
    shape = [1] * (1 + len(space))  # (component, *space)
    shape[1 + space.index("y")] = -1
    w = weights.reshape(shape)
    plane_axes = tuple(1 + k for k, dim in enumerate(space) if dim != "y")
    rollout_t, truth_t = rollout_ds[["u", "v", "w"]].transpose(*dims), truth_ds[["u", "v", "w"]].transpose(*dims)
    steps = np.flatnonzero(matched)
    errors, correlations = [], []
    for i in steps:
        roll = _velocity(rollout_t, int(i))
        true = _velocity(truth_t, int(order[nearest[i]]))
        norm = float(np.sum(w * true**2))
        errors.append(float(np.sqrt(np.sum(w * (roll - true) ** 2) / norm)) if norm > 0 else float("nan"))
        roll_f = roll - roll.mean(axis=plane_axes, keepdims=True)
        true_f = true - true.mean(axis=plane_axes, keepdims=True)
        denominator = float(np.sqrt(np.sum(w * roll_f**2) * np.sum(w * true_f**2)))
        correlations.append(float(np.sum(w * roll_f * true_f)) / denominator if denominator > 0 else float("nan"))
    time = xr.DataArray(t_roll[steps], dims=("time",), attrs={"units": "h/u_tau", "long_name": "time", "axis": "T"})
    return xr.Dataset(
        {
            "relative_l2": ("time", np.array(errors), {"units": "1", "long_name": "relative L2 error of (u, v, w)"}),
            "correlation": (
                "time",
                np.array(correlations),
                {"units": "1", "long_name": "correlation coefficient of the fluctuations with the truth"},
            ),
        },
        coords={"time": time, "step": ("time", steps, {"long_name": "rollout snapshot index"})},
        attrs={
            "model": str(rollout_ds.attrs.get("model", "")),
            "rollout_status": str(rollout_ds.attrs.get("rollout_status", "")),
        },
    )
