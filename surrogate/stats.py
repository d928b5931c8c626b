r"""Turbulence statistics on field Datasets: mean and rms profiles, friction velocity, wall units.

Input is the package's field Dataset: variables ``u, v, w`` on cell centres with dims
``(time, x, y, z)`` (``time`` optional), ``y`` in channel half-heights from the lower wall
(``0 < y < 2``), velocities in the nominal friction velocity ``u_tau`` and
``attrs["nu"] = 1 / Re_tau`` (nominal). Statistics are averages over the homogeneous
directions ``x`` and ``z`` and over ``time`` where present, written with angle brackets:

.. math::

    U(y) = \langle u \rangle, \qquad u' = u - U, \qquad
    u_{rms}(y) = \langle u'^2 \rangle^{1/2}, \qquad
    \overline{uv}(y) = \langle u' v' \rangle.

The reductions are xarray operations, so a lazily loaded (dask-backed) Dataset gives lazy
profiles; call ``.compute()`` on the result.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

__all__ = [
    "mean_profiles",
    "fold_profiles",
    "wall_shear_rate",
    "friction_velocity",
    "re_tau_measured",
    "wall_units",
]

#: Dimensions averaged over for one-point statistics (those present in the Dataset).
AVERAGE_DIMS: tuple[str, ...] = ("time", "x", "z")
#: Cell centres ``y_j`` and ``2 - y_(ny-1-j)`` must agree to this tolerance to fold.
FOLD_TOLERANCE = 1e-10

_SYMMETRIC = ("U", "W", "u_rms", "v_rms", "w_rms")
_ANTISYMMETRIC = ("V", "uv")
_VAR_ATTRS = {
    "U": ("mean streamwise velocity", "u_tau"),
    "V": ("mean wall-normal velocity", "u_tau"),
    "W": ("mean spanwise velocity", "u_tau"),
    "u_rms": ("rms streamwise velocity fluctuation", "u_tau"),
    "v_rms": ("rms wall-normal velocity fluctuation", "u_tau"),
    "w_rms": ("rms spanwise velocity fluctuation", "u_tau"),
    "uv": ("Reynolds shear stress <u'v'>", "u_tau^2"),
}


def _require(ds: xr.Dataset, names: tuple[str, ...]) -> None:
    missing = [name for name in names if name not in ds.variables]
    if missing:
        raise KeyError(f"field Dataset lacks {', '.join(missing)} (has {', '.join(map(str, ds.data_vars))})")
    if "y" not in ds.dims:
        raise ValueError(f"field Dataset has no 'y' dimension (dims: {tuple(ds.dims)})")


def _average_dims(da: xr.DataArray) -> list[str]:
    return [dim for dim in AVERAGE_DIMS if dim in da.dims]


def mean_profiles(ds: xr.Dataset, *, fold: bool = True) -> xr.Dataset:
    r"""Mean velocity, rms fluctuation and Reynolds shear stress profiles.

    Parameters
    ----------
    ds
        Field Dataset with ``u, v, w`` on dims ``(time, x, y, z)`` (``time`` optional) and a
        ``y`` coordinate in ``h``.
    fold
        Average the two channel halves (see :func:`fold_profiles`), giving profiles against the
        wall distance ``0 < y < 1``. Requires the cell centres to be symmetric about ``y = 1``.

    Returns
    -------
    xarray.Dataset
        Over dim ``y`` (length ``ny``, or ``ceil(ny / 2)`` folded): ``U, V, W`` (means),
        ``u_rms, v_rms, w_rms`` (about the mean at each ``y``) in ``u_tau``, and
        ``uv = <u'v'>`` in ``u_tau^2``. ``attrs`` are those of ``ds`` plus ``folded`` (0/1)
        and ``averaged_over``.

    Notes
    -----
    Fluctuations are taken about the mean over all of ``x``, ``z`` and ``time`` (two-pass:
    mean first, then ``<(u - U)^2>``), which avoids the cancellation of
    ``<u^2> - U^2`` in single precision.
    """
    _require(ds, ("u", "v", "w"))
    dims = _average_dims(ds["u"])
    means = {name.upper(): ds[name].mean(dims) for name in ("u", "v", "w")}
    fluct = {name: ds[name] - means[name.upper()] for name in ("u", "v", "w")}
    out = dict(means)
    for name in ("u", "v", "w"):
        out[f"{name}_rms"] = np.sqrt((fluct[name] ** 2).mean(dims))
    out["uv"] = (fluct["u"] * fluct["v"]).mean(dims)
    profiles = xr.Dataset(out, attrs=dict(ds.attrs))
    profiles = profiles.drop_vars([c for c in profiles.coords if c != "y"])
    for name, (long_name, units) in _VAR_ATTRS.items():
        profiles[name].attrs = {"long_name": long_name, "units": units}
    profiles.attrs["averaged_over"] = ", ".join(dims)
    profiles.attrs["folded"] = 0
    if fold:
        profiles = fold_profiles(profiles)
    return profiles


def fold_profiles(profiles: xr.Dataset) -> xr.Dataset:
    r"""Average a profile Dataset over the two channel halves.

    With ``j' = ny - 1 - j`` the mirror cell of ``j`` (``y_j' = 2 - y_j``),

    .. math::

        \phi_{fold}(y_j) = \tfrac12\left[\phi(y_j) + s\, \phi(y_{j'})\right],
        \qquad j = 0 \ldots \lceil ny/2 \rceil - 1,

    with ``s = +1`` for the quantities even under the reflection ``y -> 2 - y``
    (``U, W, u_rms, v_rms, w_rms``) and ``s = -1`` for the odd ones (``V`` and ``uv``, since
    ``v`` changes sign). The lower-half sign convention is kept: ``uv < 0`` near the wall.
    For odd ``ny`` the centre cell is its own mirror (its odd quantities become 0). Variables
    with other names are treated as even.

    Parameters
    ----------
    profiles
        Profiles over dim ``y`` spanning the whole channel (``0 < y < 2``).

    Returns
    -------
    xarray.Dataset
        Over dim ``y`` = wall distance of the lower-half cell centres (``0 < y <= 1``),
        ``attrs["folded"] = 1``.

    Raises
    ------
    ValueError
        If the cell centres are not symmetric about ``y = 1`` within 1e-10 (a grid from
        :class:`surrogate.grid.ChannelGrid` always is).
    """
    if profiles.attrs.get("folded", 0):
        raise ValueError("profiles are already folded (attrs['folded'] = 1)")
    y = np.asarray(profiles["y"].values, dtype=float)
    ny = y.size
    mismatch = np.max(np.abs(y + y[::-1] - 2.0)) if ny else 0.0
    if ny < 1 or mismatch > FOLD_TOLERANCE:
        raise ValueError(
            "cannot fold the profiles about the centreline y = 1: the cell centres y_j and "
            f"2 - y_(ny-1-j) differ by up to {mismatch:.3g} h (tolerance {FOLD_TOLERANCE:g}); "
            "fold only data on a grid symmetric about y = 1 (a ChannelGrid is), or pass fold=False"
        )
    nh = (ny + 1) // 2
    lower = profiles.isel(y=np.arange(nh))
    upper = profiles.isel(y=np.arange(ny - 1, ny - 1 - nh, -1)).assign_coords(y=lower["y"])
    folded = {}
    for name in profiles.data_vars:
        sign = -1.0 if name in _ANTISYMMETRIC else 1.0
        folded[name] = 0.5 * (lower[name] + sign * upper[name])
        folded[name].attrs = dict(profiles[name].attrs)
    out = xr.Dataset(folded, attrs=dict(profiles.attrs))
    out["y"].attrs = {"units": "h", "long_name": "distance from the wall"}
    out.attrs["folded"] = 1
    return out


def _mean_u(ds: xr.Dataset) -> xr.DataArray:
    """Unfolded mean streamwise velocity over ``y`` from a field or profile Dataset."""
    if "u" in ds.variables:
        _require(ds, ("u",))
        return ds["u"].mean(_average_dims(ds["u"]))
    if "U" in ds.variables and not ds.attrs.get("folded", 0):
        return ds["U"].mean(_average_dims(ds["U"]))
    raise KeyError("need a field Dataset with 'u' (or unfolded profiles with 'U') to estimate the wall shear")


def _slope_at_wall(d: np.ndarray, u: np.ndarray, order: int) -> float:
    r"""``dU/dd`` at ``d = 0`` from values ``u`` at wall distances ``d`` (nearest first), ``U(0) = 0``."""
    if order == 1:
        return float(u[0] / d[0])
    d1, d2 = d[0], d[1]
    return float((u[0] * d2**2 - u[1] * d1**2) / (d1 * d2 * (d2 - d1)))


def wall_shear_rate(ds: xr.Dataset, *, order: Literal[1, 2] = 2) -> tuple[float, float]:
    r"""Mean wall shear rates ``dU/dn`` at the lower and upper wall, in ``u_tau / h``.

    ``n`` is the distance from the respective wall (``y`` at the lower, ``2 - y`` at the upper
    wall), so both rates are positive for flow in ``+x``. With the no-slip value ``U(0) = 0``
    and the first two cell centres at wall distances ``d_1 < d_2``:

    * ``order=1``: :math:`U_1 / d_1`, the slope of the chord from the wall to the first cell
      centre. First order: its error is :math:`-\tfrac12 U''(0)\, d_1 + O(d_1^2)`; it assumes
      ``U`` is linear between the wall and the first centre (the viscous sublayer resolves
      the first cell, ``d_1^+ \lesssim 1``).
    * ``order=2`` (default): the slope at the wall of the parabola through
      ``(0, 0), (d_1, U_1), (d_2, U_2)``,

      .. math:: \frac{dU}{dn}\Big|_0 \approx \frac{U_1 d_2^2 - U_2 d_1^2}{d_1 d_2 (d_2 - d_1)},

      exact for a quadratic profile (e.g. laminar flow), error :math:`O(d_1 d_2)`.

    Parameters
    ----------
    ds
        Field Dataset with ``u`` (or unfolded profiles with ``U``) over the whole channel.
    order
        1 or 2, see above.

    Returns
    -------
    (lower, upper) : tuple of float
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    mean_u = _mean_u(ds)
    y = np.asarray(mean_u["y"].values, dtype=float)
    values = np.asarray(mean_u.values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"mean u should be a profile over y only, got dims {mean_u.dims}")
    if y.size < order:
        raise ValueError(f"need at least {order} cell centres in y, got {y.size}")
    lower = _slope_at_wall(y, values, order)
    upper = _slope_at_wall(2.0 - y[::-1], values[::-1], order)
    return lower, upper


def _nu(ds: xr.Dataset) -> float:
    if "nu" in ds.attrs:
        return float(ds.attrs["nu"])
    if "re_tau" in ds.attrs:
        return 1.0 / float(ds.attrs["re_tau"])
    raise KeyError("the Dataset has neither attrs['nu'] nor attrs['re_tau'] (the field Dataset carries both)")


def friction_velocity(ds: xr.Dataset, *, order: Literal[1, 2] = 2) -> float:
    r"""Friction velocity from the mean wall shear, in units of the nominal ``u_tau``.

    .. math::

        u_\tau = \sqrt{\tau_w / \rho}, \qquad
        \tau_w / \rho = \nu\, \tfrac12\left(\frac{dU}{dn}\Big|_{lower} + \frac{dU}{dn}\Big|_{upper}\right),

    the wall shear averaged over both walls, with ``dU/dn`` from :func:`wall_shear_rate`
    (``order=2``: second-order one-sided estimate, the default; ``order=1``: ``U(y_1) / y_1``)
    and ``nu = attrs["nu"]`` (the nominal ``1 / Re_tau``). A run exactly at its nominal
    Reynolds number gives 1.

    Parameters
    ----------
    ds
        Field Dataset (``u`` over the whole channel, ``attrs["nu"]`` or ``attrs["re_tau"]``).
    order
        Order of the wall-gradient estimate, 1 or 2.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the mean wall shear is not positive.
    """
    nu = _nu(ds)
    lower, upper = wall_shear_rate(ds, order=order)
    tau = nu * 0.5 * (lower + upper)
    if not tau > 0:
        raise ValueError(f"mean wall shear nu dU/dn = {tau:.4g} is not positive; no friction velocity")
    return float(np.sqrt(tau))


def re_tau_measured(ds: xr.Dataset, *, order: Literal[1, 2] = 2) -> float:
    r"""Friction Reynolds number realised by the run.

    Velocities are in the nominal friction velocity :math:`u_{\tau,0}` and
    ``nu = 1 / Re_tau,0`` in ``u_tau,0 h`` units, so with the measured
    :math:`u_\tau = \hat u_\tau u_{\tau,0}` (:func:`friction_velocity` returns
    :math:`\hat u_\tau`)

    .. math:: Re_{\tau} = \frac{u_\tau h}{\nu} = \frac{\hat u_\tau}{\nu} = \hat u_\tau\, Re_{\tau,0}.

    Parameters
    ----------
    ds
        Field Dataset with ``attrs["nu"]`` (or ``attrs["re_tau"]``).
    order
        Passed to :func:`friction_velocity`.
    """
    return friction_velocity(ds, order=order) / _nu(ds)


def wall_units(profiles: xr.Dataset, u_tau: float, nu: float) -> xr.Dataset:
    r"""Rescale profiles to wall units.

    .. math::

        y^+ = \frac{y\, u_\tau}{\nu}, \quad U^+ = \frac{U}{u_\tau}, \quad
        u_{rms}^+ = \frac{u_{rms}}{u_\tau}, \quad \overline{uv}^+ = \frac{\overline{uv}}{u_\tau^2}.

    Parameters
    ----------
    profiles
        Output of :func:`mean_profiles`. For unfolded profiles (``y`` beyond 1) the wall distance
        ``min(y, 2 - y)`` is used for ``y_plus``.
    u_tau
        Friction velocity in the units of the profiles (e.g. from :func:`friction_velocity`).
    nu
        Kinematic viscosity in the same units (``attrs["nu"]``).

    Returns
    -------
    xarray.Dataset
        Same dims; a ``y_plus`` coordinate along ``y``; ``U, V, W`` and the ``*_rms`` divided
        by ``u_tau``, ``uv`` by ``u_tau^2``, other variables unchanged; ``attrs`` gain
        ``u_tau``, ``nu`` and ``re_tau_wall = u_tau / nu`` (Re_tau for ``h = 1``).
    """
    if not (u_tau > 0 and nu > 0):
        raise ValueError(f"u_tau and nu must be positive, got u_tau={u_tau!r}, nu={nu!r}")
    out = profiles.copy()
    for name in out.data_vars:
        if name in ("U", "V", "W") or name.endswith("_rms"):
            scale = u_tau
        elif name == "uv":
            scale = u_tau**2
        else:
            continue
        attrs = dict(out[name].attrs)
        out[name] = out[name] / scale
        attrs["units"] = "1 (wall units)"
        out[name].attrs = attrs
    y = out["y"]
    distance = y if float(y.max()) <= 1.0 + FOLD_TOLERANCE else np.minimum(y, 2.0 - y)
    y_plus = (distance * (u_tau / nu)).assign_attrs(units="1", long_name="wall distance in wall units")
    out = out.assign_coords(y_plus=y_plus)
    out.attrs.update(u_tau=float(u_tau), nu=float(nu), re_tau_wall=float(u_tau / nu))
    return out
