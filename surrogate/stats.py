r"""Turbulence statistics on field Datasets.

Mean and rms profiles, friction velocity and wall units; vorticity; one-dimensional energy
spectra; PDFs, skewness and flatness of the fluctuations; the mean shear-stress budget.

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
profiles; call ``.compute()`` on the result (:func:`velocity_pdfs` computes, one time block at
a time).

Folding over the two walls pairs the cell centre ``y_j`` with its mirror ``y_(ny-1-j) = 2 - y_j``.
The reflection ``y -> 2 - y`` maps ``v -> -v``, so ``v``, ``omega_x``, ``omega_z``, ``V``,
``<u'v'>`` and the shear stresses are odd, and ``u``, ``w``, ``omega_y``, the energies even.
"""

from __future__ import annotations

from typing import Collection, Iterator, Literal, Sequence

import numpy as np
import xarray as xr

__all__ = [
    "mean_profiles",
    "fold_profiles",
    "wall_shear_rate",
    "friction_velocity",
    "re_tau_measured",
    "wall_units",
    "vorticity",
    "energy_spectra",
    "velocity_pdfs",
    "higher_moments",
    "total_stress",
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
    means = {name.upper(): ds[name].mean(dims, skipna=False) for name in ("u", "v", "w")}  # NaN stays NaN
    fluct = {name: ds[name] - means[name.upper()] for name in ("u", "v", "w")}
    out = dict(means)
    for name in ("u", "v", "w"):
        out[f"{name}_rms"] = np.sqrt((fluct[name] ** 2).mean(dims, skipna=False))
    out["uv"] = (fluct["u"] * fluct["v"]).mean(dims, skipna=False)
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
    return _fold(profiles, _ANTISYMMETRIC, hint="or pass fold=False")


def _half_size(y: np.ndarray, hint: str = "") -> int:
    """``ceil(ny / 2)``, the number of lower-half cell centres, after checking the grid is symmetric."""
    y = np.asarray(y, dtype=float)
    mismatch = np.max(np.abs(y + y[::-1] - 2.0)) if y.size else 0.0
    if y.size < 1 or mismatch > FOLD_TOLERANCE:
        raise ValueError(
            "cannot fold the profiles about the centreline y = 1: the cell centres y_j and "
            f"2 - y_(ny-1-j) differ by up to {mismatch:.3g} h (tolerance {FOLD_TOLERANCE:g}); "
            f"fold only data on a grid symmetric about y = 1 (a ChannelGrid is){', ' + hint if hint else ''}"
        )
    return (y.size + 1) // 2


def _wall_distance_coord(y: xr.DataArray) -> xr.DataArray:
    out = y.copy()
    out.attrs = {"units": "h", "long_name": "distance from the wall"}
    return out


def _fold(profiles: xr.Dataset, odd: Collection[str], hint: str = "") -> xr.Dataset:
    """Average ``profiles`` (over the whole channel in ``y``) with their mirror; ``odd`` change sign."""
    ny = profiles.sizes["y"]
    nh = _half_size(profiles["y"].values, hint)
    lower = profiles.isel(y=np.arange(nh))
    upper = profiles.isel(y=np.arange(ny - 1, ny - 1 - nh, -1)).assign_coords(y=lower["y"])
    folded = {}
    for name in profiles.data_vars:
        sign = -1.0 if name in odd else 1.0
        folded[name] = 0.5 * (lower[name] + sign * upper[name])
        folded[name].attrs = dict(profiles[name].attrs)
    out = xr.Dataset(folded, attrs=dict(profiles.attrs))
    out["y"] = _wall_distance_coord(out["y"])
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


# ====================================================================== planes and derivatives

#: Variables that change sign under the reflection ``y -> 2 - y`` (which maps ``v -> -v``).
ODD_UNDER_REFLECTION: frozenset[str] = frozenset({"v", "omega_x", "omega_z"})
_VORTICITY = ("omega_x", "omega_y", "omega_z")


def _period(ds: xr.Dataset, dim: str) -> float:
    """Periodic length along ``x`` or ``z`` in h: ``attrs["lx"]`` / ``["lz"]``, else ``n * spacing``."""
    for key in (f"l{dim}", f"grid_l{dim}"):
        if key in ds.attrs:
            return float(ds.attrs[key])
    coord = np.asarray(ds[dim].values, dtype=float)
    if coord.size < 2:
        raise ValueError(f"cannot infer the period in {dim} from one point; set attrs['l{dim}']")
    return float(coord.size * (coord[1] - coord[0]))


def _plane_index(ds: xr.Dataset, y: float | Sequence[float] | None, y_plus: float | Sequence[float] | None,
                 u_tau: float | None) -> np.ndarray:
    """Sorted lower-half indices ``j < ceil(ny / 2)`` of the cell centres nearest the requested planes.

    A plane in the upper half maps to its mirror ``ny - 1 - j``; neither ``y`` nor ``y_plus`` gives
    every lower-half plane.
    """
    centres = np.asarray(ds["y"].values, dtype=float)
    nh = _half_size(centres)
    if y is not None and y_plus is not None:
        raise ValueError("give the planes either as y or as y_plus, not both")
    if y is None and y_plus is None:
        return np.arange(nh)
    if y is not None:
        targets = np.atleast_1d(np.asarray(y, dtype=float))
        if np.any((targets < 0) | (targets > 2)):
            raise ValueError(f"plane positions y must lie between the walls 0 and 2 h, got {targets}")
        j = np.abs(centres[None, :] - targets[:, None]).argmin(axis=1)
        j = np.minimum(j, centres.size - 1 - j)
    else:
        targets = np.atleast_1d(np.asarray(y_plus, dtype=float))
        if np.any(targets < 0):
            raise ValueError(f"wall distances y_plus must be non-negative, got {targets}")
        re_tau = (1.0 if u_tau is None else u_tau) / _nu(ds)
        j = np.abs(centres[None, :nh] * re_tau - targets[:, None]).argmin(axis=1)
    return np.unique(j)


def _stack_halves(ds: xr.Dataset, names: Sequence[str], index: np.ndarray) -> xr.Dataset:
    """Planes ``index`` of the lower half and their mirrors, stacked along a new dim ``half`` (size 2).

    The mirror planes carry the lower-half ``y`` (wall distance) and the variables in
    :data:`ODD_UNDER_REFLECTION` with their sign flipped, so that averaging over ``half`` folds.
    """
    ny = ds.sizes["y"]
    lower = ds[list(names)].isel(y=index)
    upper = ds[list(names)].isel(y=ny - 1 - index).assign_coords(y=lower["y"])
    for name in names:
        if name in ODD_UNDER_REFLECTION:
            upper[name] = -upper[name]
    stacked = xr.concat([lower, upper], dim="half", coords="minimal", compat="override", join="override")
    return stacked.assign_coords(y=_wall_distance_coord(stacked["y"]))


def _with_y_plus(out: xr.Dataset, ds: xr.Dataset, u_tau: float | None) -> xr.Dataset:
    """Add a ``y_plus`` coordinate (wall distance times ``u_tau / nu``) where ``nu`` is known."""
    try:
        re_tau = (1.0 if u_tau is None else u_tau) / _nu(ds)
    except KeyError:
        return out
    y_plus = (out["y"] * re_tau).assign_attrs(units="1", long_name="wall distance in wall units")
    return out.assign_coords(y_plus=y_plus)


def _spectral_ddx(values: np.ndarray, length: float) -> np.ndarray:
    """Spectral derivative along the last (periodic) axis; the Nyquist mode of even ``n`` is dropped."""
    n = values.shape[-1]
    spectrum = np.fft.rfft(values, axis=-1) * (2j * np.pi * np.fft.rfftfreq(n, d=length / n))
    if n % 2 == 0:
        spectrum[..., -1] = 0.0
    return np.fft.irfft(spectrum, n=n, axis=-1)


def _wall_normal_ddy(values: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Second-order three-point ``d/dy`` on the cell centres ``y``, last axis, zero at ``y = 0, 2``."""
    nodes = np.concatenate([[0.0], y, [2.0]])
    padded = np.pad(values, [(0, 0)] * (values.ndim - 1) + [(1, 1)])
    h1, h2 = nodes[1:-1] - nodes[:-2], nodes[2:] - nodes[1:-1]
    return (
        -h2 / (h1 * (h1 + h2)) * padded[..., :-2]
        + (h2 - h1) / (h1 * h2) * padded[..., 1:-1]
        + h1 / (h2 * (h1 + h2)) * padded[..., 2:]
    )


def _derivative(da: xr.DataArray, dim: str, length: float | None = None) -> xr.DataArray:
    """``d da / d dim``: spectral in periodic ``x``/``z`` (period ``length``), finite differences in ``y``."""
    if dim == "y":
        func, kwargs = _wall_normal_ddy, {"y": np.asarray(da["y"].values, dtype=float)}
    else:
        func, kwargs = _spectral_ddx, {"length": length}
    return xr.apply_ufunc(
        func, da, kwargs=kwargs, input_core_dims=[[dim]], output_core_dims=[[dim]],
        dask="parallelized", output_dtypes=[da.dtype], dask_gufunc_kwargs={"allow_rechunk": True},
    ).transpose(*da.dims)


def vorticity(ds: xr.Dataset) -> xr.Dataset:
    r"""Vorticity of the cell-centred velocity field.

    .. math::

        \omega_x = \partial_y w - \partial_z v, \quad
        \omega_y = \partial_z u - \partial_x w, \quad
        \omega_z = \partial_x v - \partial_y u,

    with spectral derivatives in the periodic ``x`` and ``z`` (period ``attrs["lx"]``,
    ``attrs["lz"]``, else the number of points times the spacing; the Nyquist mode of an even
    size is dropped) and the second-order three-point difference on the non-uniform cell
    centres in ``y``, using the no-slip value 0 at the walls ``y = 0, 2`` as the outer
    neighbours of the first and last centre (exact for quadratics, error ``O(dy^2)`` on a
    smoothly stretched grid).

    Parameters
    ----------
    ds
        Field Dataset with ``u, v, w`` on ``(time, x, y, z)`` (``time`` optional); may be
        dask-backed (each block needs all of ``x``, ``y``, ``z``).

    Returns
    -------
    xarray.Dataset
        ``omega_x, omega_y, omega_z`` on the dims of ``u``, in ``u_tau / h``; lazy for a lazy input.
    """
    _require(ds, ("u", "v", "w"))
    lx, lz = _period(ds, "x"), _period(ds, "z")
    u, v, w = ds["u"], ds["v"], ds["w"]
    out = xr.Dataset(
        {
            "omega_x": _derivative(w, "y") - _derivative(v, "z", lz),
            "omega_y": _derivative(u, "z", lz) - _derivative(w, "x", lx),
            "omega_z": _derivative(v, "x", lx) - _derivative(u, "y"),
        },
        attrs=dict(ds.attrs),
    )
    for name, axis in zip(_VORTICITY, "xyz"):
        out[name].attrs = {"units": "u_tau/h", "long_name": f"{axis}-vorticity"}
    return out


# ====================================================================== spectra


def _one_sided_power(fluct: xr.DataArray, dim: str, k_dim: str) -> xr.DataArray:
    r"""``c_n |\hat q_n|^2`` over ``n = 0 .. n_dim // 2`` along ``dim`` (``\hat q_n`` normalised by ``1/N``)."""
    n = fluct.sizes[dim]
    spectrum = xr.apply_ufunc(
        np.fft.rfft, fluct, kwargs={"axis": -1, "norm": "forward"},
        input_core_dims=[[dim]], output_core_dims=[[k_dim]], dask="parallelized",
        output_dtypes=[np.result_type(fluct.dtype, np.complex64)],
        dask_gufunc_kwargs={"output_sizes": {k_dim: n // 2 + 1}, "allow_rechunk": True},
    )
    weight = np.full(n // 2 + 1, 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    return (spectrum.real**2 + spectrum.imag**2) * xr.DataArray(weight, dims=(k_dim,))


def energy_spectra(
    ds: xr.Dataset,
    *,
    y: float | Sequence[float] | None = None,
    y_plus: float | Sequence[float] | None = None,
    u_tau: float | None = None,
    premultiplied: bool = False,
) -> xr.Dataset:
    r"""One-dimensional streamwise and spanwise energy spectra of the velocity fluctuations.

    For each plane the fluctuation ``q' = q - <q>`` (``q = u, v, w``, mean over ``x``, ``z``,
    ``time``) is transformed along ``x`` (length ``L = lx``, ``N = nx`` points)

    .. math::

        \hat q_n = \frac1N \sum_{j=0}^{N-1} q'(x_j)\, e^{-i k_n x_j}, \qquad
        k_n = n\, \Delta k, \quad \Delta k = \frac{2\pi}{L}, \quad n = 0 \ldots \lfloor N/2 \rfloor,

    and the one-sided spectrum is

    .. math::

        E_{qq}(k_n) = \frac{c_n \langle |\hat q_n|^2 \rangle}{\Delta k}, \qquad
        c_0 = 1,\ c_{N/2} = 1 \text{ (even } N),\ c_n = 2 \text{ otherwise},

    averaged over ``z``, ``time`` and the two mirror planes, so that (Parseval)

    .. math:: \sum_n E_{qq}(k_n)\, \Delta k = \langle q'^2 \rangle

    at every plane, the ``k = 0`` term holding the energy of the ``x``-independent part of
    ``q'``. The spanwise spectrum is the same along ``z`` (``L = lz``), averaged over ``x``,
    ``time`` and the mirror planes. The two walls are folded: the spectra at the lower-half
    plane ``y_j`` are averaged with those at its mirror ``y_(ny-1-j) = 2 - y_j`` (energies are
    even under the reflection, so no sign enters).

    Parameters
    ----------
    ds
        Field Dataset with ``u, v, w`` on ``(time, x, y, z)`` (``time`` optional), ``y``
        symmetric about 1; may be dask-backed (the result is then lazy).
    y
        Plane positions in h (either half); the nearest cell centres are used.
    y_plus
        Plane wall distances in wall units ``min(y, 2 - y) * u_tau / nu``; nearest cell centres.
    u_tau
        Friction velocity for ``y_plus``, default the nominal 1 (``Re_tau = 1 / nu``).
    premultiplied
        Return ``k E(k)`` (``u_tau^2``) instead of ``E(k)`` (``u_tau^2 h``).

    Returns
    -------
    xarray.Dataset
        ``E_uu_kx, E_vv_kx, E_ww_kx`` over ``(k_x, y)`` and ``E_uu_kz, E_vv_kz, E_ww_kz`` over
        ``(k_z, y)``; coordinates ``k_x``, ``k_z`` in ``1/h`` (length ``n // 2 + 1``), ``y`` the
        wall distance of the (unique, sorted) planes in h, ``y_plus`` where ``nu`` is known.
        ``attrs``: those of ``ds`` plus ``premultiplied`` (0/1) and ``dk_x``, ``dk_z``.

    Raises
    ------
    ValueError
        If both ``y`` and ``y_plus`` are given, or the grid is not symmetric about ``y = 1``.
    """
    _require(ds, ("u", "v", "w"))
    index = _plane_index(ds, y, y_plus, u_tau)
    planes = _stack_halves(ds, ("u", "v", "w"), index)
    averaged = [dim for dim in AVERAGE_DIMS if dim in planes["u"].dims]
    fluct = planes - planes.mean(averaged)
    out = {}
    for dim, direction in (("x", "streamwise"), ("z", "spanwise")):
        k_dim, dk = f"k_{dim}", 2.0 * np.pi / _period(ds, dim)
        k = xr.DataArray(dk * np.arange(ds.sizes[dim] // 2 + 1), dims=(k_dim,),
                         attrs={"units": "1/h", "long_name": f"{direction} wavenumber"})
        others = [d for d in (*averaged, "half") if d != dim]
        for name in ("u", "v", "w"):
            spectrum = (_one_sided_power(fluct[name], dim, k_dim).mean(others) / dk).assign_coords({k_dim: k})
            if premultiplied:
                spectrum = spectrum * k
            out[f"E_{name}{name}_k{dim}"] = spectrum.transpose(k_dim, "y").assign_attrs(
                units="u_tau^2" if premultiplied else "u_tau^2 h",
                long_name=f"{'premultiplied ' if premultiplied else ''}{name}{name} spectrum in {k_dim}",
            )
    result = xr.Dataset(out, attrs=dict(ds.attrs))
    result = result.drop_vars([c for c in result.coords if c not in ("y", "k_x", "k_z")])
    result.attrs.update(premultiplied=int(premultiplied), dk_x=2 * np.pi / _period(ds, "x"),
                        dk_z=2 * np.pi / _period(ds, "z"), folded=1)
    return _with_y_plus(result, ds, u_tau)


# ====================================================================== PDFs and moments


def _time_blocks(da: xr.DataArray) -> Iterator[np.ndarray]:
    """``da`` as numpy blocks along ``time`` (its dask chunks, else one snapshot each)."""
    if "time" not in da.dims:
        yield np.asarray(da.values)
        return
    sizes = da.chunksizes["time"] if da.chunks is not None else (1,) * da.sizes["time"]
    start = 0
    for size in sizes:
        yield np.asarray(da.isel(time=slice(start, start + size)).values)
        start += size


def _histogram_columns(samples: np.ndarray, low: float, width: float, bins: int) -> np.ndarray:
    """Counts of each column of ``samples`` (shape ``(n, m)``) in ``bins`` equal bins from ``low``; ``(m, bins)``."""
    with np.errstate(invalid="ignore"):
        position = (samples - low) / width
        inside = np.isfinite(position) & (position >= 0) & (position <= bins)
    which = np.minimum(np.floor(position[inside]).astype(np.int64), bins - 1)
    column = np.broadcast_to(np.arange(samples.shape[1]), samples.shape)[inside]
    return np.bincount(column * bins + which, minlength=samples.shape[1] * bins).reshape(samples.shape[1], bins)


def _fields_with(ds: xr.Dataset, variables: Sequence[str]) -> xr.Dataset:
    """``ds`` plus the vorticity components among ``variables`` (computed only if asked for)."""
    wanted = [name for name in variables if name in _VORTICITY]
    fields = ds.assign(vorticity(ds)[wanted]) if wanted else ds
    _require(fields, tuple(variables))
    return fields


def velocity_pdfs(
    ds: xr.Dataset,
    *,
    y_plus: float | Sequence[float] | None = None,
    y: float | Sequence[float] | None = None,
    bins: int = 101,
    range_sigma: float = 6.0,
    variables: Sequence[str] = ("u", "v", "w", "omega_x", "omega_y", "omega_z"),
    u_tau: float | None = None,
) -> xr.Dataset:
    r"""PDFs of the standardised velocity and vorticity fluctuations at chosen planes.

    For each variable ``q`` and plane, ``s = q' / q_rms`` with ``q' = q - <q>`` (mean over
    ``x``, ``z``, ``time`` of that plane) and ``q_rms^2 = <q'^2>``. The two walls are folded by
    pooling the samples of the plane ``y_j`` with those of its mirror ``2 - y_j``, where ``v``,
    ``omega_x`` and ``omega_z`` change sign under the reflection ``y -> 2 - y`` (and are
    negated on the mirror plane) while ``u``, ``w``, ``omega_y`` (and ``p``) do not. The
    density on ``bins`` equal bins of width ``Delta s = 2 range_sigma / bins`` over
    ``[-range_sigma, range_sigma]`` is

    .. math:: P(s_i) = \frac{\text{count in bin } i}{N\, \Delta s},

    with ``N`` all pooled samples of the plane, so that
    :math:`\sum_i P(s_i)\, \Delta s = 1` up to the fraction of samples beyond ``range_sigma``
    (about ``2e-9`` for a Gaussian at 6). Vorticity is from :func:`vorticity`.

    Two passes over the data, the histogram one time block at a time (one snapshot, or one
    dask chunk), so a lazily loaded Dataset is never loaded whole.

    Parameters
    ----------
    ds
        Field Dataset (``u, v, w``; ``y`` symmetric about 1, ``attrs["nu"]`` for ``y_plus``).
    y_plus, y
        Planes as wall distances in wall units or positions in h (nearest cell centres, see
        :func:`energy_spectra`); neither: every lower-half plane.
    bins
        Number of bins.
    range_sigma
        Half-width of the histogram range in rms units.
    variables
        Any of ``u, v, w, omega_x, omega_y, omega_z`` and other variables of ``ds``.
    u_tau
        Friction velocity for ``y_plus``, default the nominal 1.

    Returns
    -------
    xarray.Dataset
        ``pdf_<q>`` over ``(value, y)`` (``value`` = bin centres of ``s``, dimensionless) and
        ``<q>_rms`` over ``y``; ``NaN`` where ``q_rms = 0``; ``attrs["bin_width"]``.
    """
    if bins < 1 or not range_sigma > 0:
        raise ValueError(f"need bins >= 1 and range_sigma > 0, got {bins!r}, {range_sigma!r}")
    variables = tuple(variables)
    index = _plane_index(ds, y, y_plus, u_tau)
    planes = _stack_halves(_fields_with(ds, variables), variables, index)
    per_plane = [dim for dim in AVERAGE_DIMS if dim in planes[variables[0]].dims]
    means = planes.mean(per_plane).compute()
    rms = np.sqrt(((planes - means) ** 2).mean([*per_plane, "half"])).compute()
    width = 2.0 * range_sigma / bins
    centres = -range_sigma + width * (np.arange(bins) + 0.5)
    out = {}
    for name in variables:
        scale = rms[name].where(rms[name] > 0)
        standardised = ((planes[name] - means[name]) / scale).transpose(..., "y")
        counts = np.zeros((index.size, bins))
        total = 0
        for block in _time_blocks(standardised):
            samples = block.reshape(-1, index.size)
            counts += _histogram_columns(samples, -range_sigma, width, bins)
            total += samples.shape[0]
        pdf = xr.DataArray(counts.T / (total * width), dims=("value", "y"))
        out[f"pdf_{name}"] = pdf.where(scale.notnull()).assign_attrs(
            units="1", long_name=f"PDF of {name}' / {name}_rms")
        out[f"{name}_rms"] = rms[name].assign_attrs(
            units=ds[name].attrs.get("units", "u_tau") if name in ds else "u_tau/h", long_name=f"rms of {name}'")
    value = xr.DataArray(centres, dims=("value",), attrs={"units": "1", "long_name": "fluctuation / rms"})
    result = xr.Dataset(out, coords={"value": value, "y": planes["y"]}, attrs=dict(ds.attrs))
    result = result.drop_vars([c for c in result.coords if c not in ("y", "value")])
    result.attrs.update(bin_width=width, range_sigma=float(range_sigma), folded=1)
    return _with_y_plus(result, ds, u_tau)


def higher_moments(ds: xr.Dataset) -> xr.Dataset:
    r"""Skewness and flatness profiles of the velocity fluctuations, folded over the two walls.

    .. math::

        S_q(y) = \frac{\langle q'^3 \rangle}{\langle q'^2 \rangle^{3/2}}, \qquad
        F_q(y) = \frac{\langle q'^4 \rangle}{\langle q'^2 \rangle^{2}}, \qquad q = u, v, w,

    with ``q'`` about the mean over ``x``, ``z``, ``time`` of each plane and the moments pooled
    over the plane ``y_j`` and its mirror ``2 - y_j``, ``v`` negated on the mirror (so ``S_v``
    keeps the lower-half sign; ``S_v = 0`` on the centre cell of an odd ``ny``). A Gaussian
    field gives ``S = 0``, ``F = 3``. xarray reductions: lazy for a dask-backed ``ds``.

    Parameters
    ----------
    ds
        Field Dataset with ``u, v, w`` on ``(time, x, y, z)``, ``y`` symmetric about 1.

    Returns
    -------
    xarray.Dataset
        ``S_u, S_v, S_w, F_u, F_v, F_w`` (dimensionless) over ``y`` = wall distance of the
        ``ceil(ny / 2)`` lower-half cell centres.
    """
    _require(ds, ("u", "v", "w"))
    planes = _stack_halves(ds, ("u", "v", "w"), np.arange(_half_size(ds["y"].values)))
    per_plane = [dim for dim in AVERAGE_DIMS if dim in planes["u"].dims]
    fluct = planes - planes.mean(per_plane)
    out = {}
    for name in ("u", "v", "w"):
        m2, m3, m4 = ((fluct[name] ** p).mean([*per_plane, "half"]) for p in (2, 3, 4))
        out[f"S_{name}"] = (m3 / m2**1.5).assign_attrs(units="1", long_name=f"skewness of {name}'")
        out[f"F_{name}"] = (m4 / m2**2).assign_attrs(units="1", long_name=f"flatness of {name}'")
    result = xr.Dataset(out, attrs=dict(ds.attrs))
    result = result.drop_vars([c for c in result.coords if c != "y"])
    result.attrs["folded"] = 1
    return result


# ====================================================================== shear stress balance


def total_stress(
    ds: xr.Dataset,
    *,
    u_tau: float | None = None,
    nu: float | None = None,
    tau_sgs: xr.DataArray | None = None,
) -> xr.Dataset:
    r"""Mean shear-stress budget against the linear profile of a statistically steady channel.

    .. math::

        \tau(y) = \underbrace{\nu \frac{dU}{dy}}_{viscous}
        \underbrace{- \langle u'v' \rangle}_{reynolds}
        \underbrace{- \langle \tau^{sgs}_{xy} \rangle}_{sgs}
        \;=\; u_\tau^2 \left(1 - \frac{y}{h}\right) \quad (expected),

    with ``dU/dy`` the second-order three-point difference on the cell centres using
    ``U = 0`` at the walls (exact for a quadratic ``U``), ``<u'v'>`` as in
    :func:`mean_profiles`. Every term is odd under the reflection ``y -> 2 - y``; the profiles
    are folded with that antisymmetry, ``(phi(y) - phi(2 - y)) / 2``, giving the lower-half
    sign convention (all positive near the lower wall for flow in ``+x``).

    Parameters
    ----------
    ds
        Field Dataset with ``u, v`` (``w`` unused) over the whole channel, ``y`` symmetric about 1.
    u_tau
        Friction velocity for the expected profile, default :func:`friction_velocity` of ``ds``.
    nu
        Kinematic viscosity, default ``attrs["nu"]``.
    tau_sgs
        Mean SGS shear stress ``<tau_xy>`` in ``u_tau^2`` over the same ``y`` as ``ds`` (the whole
        channel, unfolded); other dims (``time``, ``x``, ``z``) are averaged over.

    Returns
    -------
    xarray.Dataset
        Over ``y`` = wall distance of the lower-half cell centres, in ``u_tau^2``: ``viscous``,
        ``reynolds``, ``sgs`` (if ``tau_sgs`` is given), ``total`` and ``expected``.
        ``attrs["max_deviation"] = max |total - expected| / u_tau^2``, plus ``u_tau`` and ``nu``.
    """
    _require(ds, ("u", "v"))
    nu = _nu(ds) if nu is None else float(nu)
    u_tau = friction_velocity(ds) if u_tau is None else float(u_tau)
    dims = _average_dims(ds["u"])
    mean_u, mean_v = ds["u"].mean(dims), ds["v"].mean(dims)
    terms = {
        "viscous": nu * _derivative(mean_u, "y"),
        "reynolds": -((ds["u"] - mean_u) * (ds["v"] - mean_v)).mean(dims),
    }
    if tau_sgs is not None:
        sgs = tau_sgs.mean(_average_dims(tau_sgs))
        same_y = sgs.dims == ("y",) and sgs.sizes["y"] == ds.sizes["y"]
        if same_y and "y" in sgs.coords:
            same_y = np.allclose(sgs["y"].values, ds["y"].values, rtol=0, atol=FOLD_TOLERANCE)
        if not same_y:
            raise ValueError(f"tau_sgs must be a profile over the y of ds ({ds.sizes['y']} cell centres), "
                             f"got dims {dict(tau_sgs.sizes)}")
        terms["sgs"] = -sgs.assign_coords(y=ds["y"])
    terms["total"] = sum(terms.values())
    terms["expected"] = u_tau**2 * (1.0 - ds["y"])
    long_names = {"viscous": "viscous shear stress nu dU/dy", "reynolds": "Reynolds shear stress -<u'v'>",
                  "sgs": "SGS shear stress -<tau_xy>", "total": "total shear stress",
                  "expected": "steady-channel shear stress u_tau^2 (1 - y/h)"}
    profiles = xr.Dataset({name: term.assign_attrs(units="u_tau^2", long_name=long_names[name])
                           for name, term in terms.items()}, attrs=dict(ds.attrs))
    profiles = profiles.drop_vars([c for c in profiles.coords if c != "y"])
    out = _fold(profiles, odd=tuple(terms))
    out.attrs.update(u_tau=u_tau, nu=nu,
                     max_deviation=float(np.abs(out["total"] - out["expected"]).max()) / u_tau**2)
    return out
