r"""Coarse graining of DNS fields onto a coarser :class:`~surrogate.grid.ChannelGrid`.

:func:`filter_to_grid` turns a field Dataset on a fine (DNS) grid into one on a coarse (LES or
surrogate) grid with the same periodic box. The filter is a linear operator applied separately
in the homogeneous directions and in the wall-normal direction (the two parts act on different
axes, so their order does not matter).

Horizontal (periodic ``x`` and ``z``)
    Write a fine field as a Fourier series in box wavenumbers ``m`` (``k_x = 2 pi m / lx``)::

        u(x, z) = sum_{m, n} u_hat[m, n] exp(i (2 pi m x / lx + 2 pi n z / lz)).

    ``"spectral"`` (sharp cutoff) keeps the modes the coarse grid resolves unambiguously,

    .. math:: |m| < N_x^c / 2, \qquad |n| < N_z^c / 2,

    and drops all others, including the coarse Nyquist modes ``|m| = N_x^c / 2`` (for even
    ``N_x^c``): on the coarse grid a Nyquist mode cannot be told from its alias and its sine part
    vanishes at the sample points, so keeping it would give an ambiguous, non-invertible
    representation. The kept series is evaluated exactly at the coarse cell centres
    ``x_i = i lx / N_x^c``, ``z_k = k lz / N_z^c`` (both grids start at 0), by truncating the
    fine ``rfft`` and transforming back with the coarse sizes (amplitude-normalised transforms,
    so the coefficients ``u_hat`` are the same on both grids).

    ``"box"`` first applies the top-hat (box) average over one coarse cell,
    ``dx_c x dz_c``, centred on each point, exactly in Fourier space through its transfer function

    .. math:: G(k_x, k_z) = \frac{\sin(k_x \Delta_x / 2)}{k_x \Delta_x / 2}
              \frac{\sin(k_z \Delta_z / 2)}{k_z \Delta_z / 2},
              \qquad \Delta_x = lx / N_x^c, \quad \Delta_z = lz / N_z^c,

    (``G = 1`` at ``k = 0``), i.e. the exact top-hat average of the fine field's trigonometric
    interpolant, followed by the same cutoff and sampling.

Wall-normal (``y``, walls at 0 and 2)
    ``"average"`` is the conservative finite-volume average: fine cell values are read as cell
    averages (piecewise constant over the fine cells) and each coarse cell gets

    .. math:: \bar u_J = \frac{1}{\Delta y^c_J} \sum_j u_j\,
              \bigl|[y^c_J, y^c_{J+1}] \cap [y^f_j, y^f_{j+1}]\bigr|,

    which conserves the integral over the channel, :math:`\sum_J \bar u_J \Delta y^c_J = \sum_j
    u_j \Delta y^f_j`, so the bulk velocity is preserved to round-off on any pair of grids.

    ``"interpolate"`` interpolates the fine cell-centre values linearly to the coarse cell
    centres, using the no-slip wall value 0 for ``u, v, w`` at ``y = 0`` and ``y = 2`` and
    constant extrapolation (zero wall-normal gradient) for ``p`` between a wall and the first
    fine cell centre.

Only :mod:`surrogate.grid` and :mod:`surrogate.fields` are used, as the package design asks.
"""

from __future__ import annotations

import json
import math
from typing import Literal

import numpy as np
import xarray as xr

from .fields import check_fields, make_fields, provenance_attrs, re_tau_of
from .grid import ChannelGrid

__all__ = ["filter_to_grid", "wall_normal_matrix"]

HorizontalFilter = Literal["spectral", "box"]
WallNormalFilter = Literal["average", "interpolate"]

_HORIZONTAL = ("spectral", "box")
_WALL_NORMAL = ("average", "interpolate")
_FIELDS = ("u", "v", "w", "p")
_VELOCITIES = ("u", "v", "w")
_LENGTH_RTOL = 1e-12


def filter_to_grid(
    ds: xr.Dataset,
    coarse: ChannelGrid,
    *,
    horizontal: HorizontalFilter = "spectral",
    wall_normal: WallNormalFilter = "average",
) -> xr.Dataset:
    r"""Coarse-grain a field Dataset onto the cell centres of a coarser grid.

    Parameters
    ----------
    ds
        Field Dataset (see :mod:`surrogate.fields`) on the fine grid: ``u, v, w`` in u_tau and
        optionally ``p`` in rho u_tau^2, dims ``(time, x, y, z)`` or ``(x, y, z)``, shape
        ``(nt, nx_f, ny_f, nz_f)`` or ``(nx_f, ny_f, nz_f)``. May be lazily loaded (dask): it is
        read and filtered one time slice at a time, so memory holds one fine snapshot plus the
        coarse result.
    coarse
        The target grid: same ``lx`` and ``lz`` (in h) as the fine grid and
        ``nx_c <= nx_f``, ``ny_c <= ny_f``, ``nz_c <= nz_f``; its wall-normal stretching may
        differ.
    horizontal
        ``"spectral"``: sharp Fourier cutoff keeping ``|m| < nx_c / 2`` and ``|n| < nz_c / 2``
        (box wavenumbers; coarse Nyquist modes dropped). ``"box"``: top-hat average over one
        coarse cell ``dx_c x dz_c``, transfer function
        ``G = sinc(k_x dx_c / 2) sinc(k_z dz_c / 2)`` with ``sinc(a) = sin(a) / a``, then the
        same cutoff.
    wall_normal
        ``"average"``: conservative overlap average of the fine cells over each coarse cell
        (preserves the bulk integral exactly). ``"interpolate"``: linear interpolation of fine
        cell-centre values to coarse cell centres (wall value 0 for velocities, constant
        extrapolation for ``p``).

    Returns
    -------
    xarray.Dataset
        Field Dataset on ``coarse``, shape ``(nt, nx_c, ny_c, nz_c)`` (or without ``time`` as the
        input), the same variables, ``time`` coordinate, ``re_tau`` and provenance attributes
        (``source``, ``case``, ...) as ``ds``, plus ``filter_horizontal``,
        ``filter_wall_normal``, ``filter_source_grid`` (the fine grid as JSON) and
        ``filter_description``. Computed in float64 and stored in the input's floating precision.

    Raises
    ------
    FieldError
        If ``ds`` is not a field Dataset (e.g. a velocity component is missing).
    ValueError
        If the box lengths differ, the coarse grid is finer than the fine one in some direction,
        or ``horizontal`` / ``wall_normal`` is not one of the options.

    Examples
    --------
    >>> coarse = ChannelGrid(32, 33, 32, stretching=1.5)  # doctest: +SKIP
    >>> les = filter_to_grid(dns, coarse, horizontal="box")  # doctest: +SKIP
    """
    fine = check_fields(ds)
    if horizontal not in _HORIZONTAL:
        raise ValueError(f"horizontal must be one of {', '.join(_HORIZONTAL)}; got {horizontal!r}")
    if wall_normal not in _WALL_NORMAL:
        raise ValueError(f"wall_normal must be one of {', '.join(_WALL_NORMAL)}; got {wall_normal!r}")
    _check_grids(fine, coarse)

    names = [name for name in _FIELDS if name in ds.data_vars]
    matrices = {
        name: wall_normal_matrix(fine, coarse, wall_normal, wall_value="zero" if name in _VELOCITIES else "extrapolate")
        for name in names
    }
    dtype = np.result_type(*(ds[name].dtype for name in names))
    has_time = "time" in ds.dims
    nt = ds.sizes["time"] if has_time else 1
    out = {name: np.empty((nt,) + coarse.shape, dtype=dtype) for name in names}
    for t in range(nt):
        for name in names:
            field = ds[name].isel(time=t) if has_time else ds[name]
            fine_slice = np.asarray(field.values, dtype=np.float64)  # loads one snapshot of a lazy Dataset
            column = np.einsum("Jj,xjz->xJz", matrices[name], fine_slice)
            out[name][t] = _horizontal_filter(column, fine, coarse, horizontal)

    if has_time:
        arrays, time = out, np.asarray(ds["time"].values)
    else:
        arrays = {name: value[0] for name, value in out.items()}
        time = ds["time"].values.item() if "time" in ds.coords else None
    attrs = provenance_attrs(ds.attrs)
    attrs.update(
        filter_horizontal=horizontal,
        filter_wall_normal=wall_normal,
        filter_source_grid=_grid_json(fine),
        filter_description=_describe(fine, coarse, horizontal, wall_normal),
    )
    return make_fields(
        coarse,
        arrays["u"],
        arrays["v"],
        arrays["w"],
        p=arrays.get("p"),
        re_tau=re_tau_of(ds),
        time=time,
        attrs=attrs,
    )


def wall_normal_matrix(
    fine: ChannelGrid,
    coarse: ChannelGrid,
    kind: WallNormalFilter = "average",
    *,
    wall_value: Literal["zero", "extrapolate"] = "zero",
) -> np.ndarray:
    r"""The linear map from fine to coarse cell-centre values along ``y``.

    Parameters
    ----------
    fine, coarse
        Source and target grids (only their wall-normal faces are used).
    kind
        ``"average"``: ``W[J, j] = |[y^c_J, y^c_{J+1}] \cap [y^f_j, y^f_{j+1}]| / dy^c_J``
        (overlap length over coarse cell height, in h / h). ``"interpolate"``: linear
        interpolation weights from the fine cell centres to the coarse cell centres.
    wall_value
        For ``"interpolate"`` only: ``"zero"`` uses the value 0 at the walls ``y = 0, 2``
        (no-slip velocities); ``"extrapolate"`` copies the nearest fine cell value (pressure).

    Returns
    -------
    numpy.ndarray
        Matrix ``W`` of shape ``(ny_c, ny_f)``, float64, with ``coarse = W @ fine`` along ``y``.
        For ``"average"`` every row sums to 1 and ``dy_c @ W = dy_f`` (conservation).
    """
    if kind == "average":
        fa, ca = fine.y_faces, coarse.y_faces
        lower = np.maximum(ca[:-1, None], fa[None, :-1])
        upper = np.minimum(ca[1:, None], fa[None, 1:])
        return np.clip(upper - lower, 0.0, None) / coarse.dy[:, None]
    if kind != "interpolate":
        raise ValueError(f"kind must be 'average' or 'interpolate'; got {kind!r}")
    # Abscissae: lower wall, the fine cell centres, upper wall (columns 0 and ny_f + 1 are walls).
    nodes = np.concatenate(([0.0], fine.y, [2.0]))
    target = coarse.y
    upper = np.clip(np.searchsorted(nodes, target, side="right"), 1, nodes.size - 1)
    lower = upper - 1
    weight = (target - nodes[lower]) / (nodes[upper] - nodes[lower])
    full = np.zeros((target.size, nodes.size))
    rows = np.arange(target.size)
    full[rows, lower] += 1.0 - weight
    full[rows, upper] += weight
    matrix = full[:, 1:-1].copy()
    if wall_value == "extrapolate":
        matrix[:, 0] += full[:, 0]
        matrix[:, -1] += full[:, -1]
    elif wall_value != "zero":
        raise ValueError(f"wall_value must be 'zero' or 'extrapolate'; got {wall_value!r}")
    return matrix


def _horizontal_filter(array: np.ndarray, fine: ChannelGrid, coarse: ChannelGrid, kind: str) -> np.ndarray:
    """Filter and resample one snapshot in x and z.

    Parameters
    ----------
    array
        Values at the fine x, z cell centres, shape ``(nx_f, ny, nz_f)``, float64.
    fine, coarse
        Source and target grids.
    kind
        ``"spectral"`` or ``"box"``.

    Returns
    -------
    numpy.ndarray
        Shape ``(nx_c, ny, nz_c)``, float64.
    """
    mx, mz = (coarse.nx - 1) // 2, (coarse.nz - 1) // 2  # largest kept |m|, |n|: |m| < n_c / 2
    kx = np.concatenate((np.arange(mx + 1), np.arange(-mx, 0)))  # signed box wavenumbers kept
    kz = np.arange(mz + 1)
    # Amplitude-normalised transforms ("forward"): u_hat is grid independent.
    spec = np.fft.rfft(array, axis=2, norm="forward")[:, :, : mz + 1]
    spec = np.fft.fft(spec, axis=0, norm="forward")[kx % fine.nx]
    if kind == "box":
        # sin(k D / 2) / (k D / 2) with k D / 2 = pi m / n_c; numpy's sinc(a) = sin(pi a) / (pi a).
        spec = spec * np.sinc(kx / coarse.nx)[:, None, None] * np.sinc(kz / coarse.nz)[None, None, :]
    padded = np.zeros((coarse.nx, array.shape[1], coarse.nz // 2 + 1), dtype=complex)
    padded[kx % coarse.nx, :, : mz + 1] = spec
    padded = np.fft.ifft(padded, axis=0, norm="forward")
    return np.fft.irfft(padded, n=coarse.nz, axis=2, norm="forward")


def _check_grids(fine: ChannelGrid, coarse: ChannelGrid) -> None:
    """Require the same periodic box and a coarse grid no finer than the fine one."""
    if not isinstance(coarse, ChannelGrid):
        raise TypeError(f"coarse must be a ChannelGrid, got {type(coarse).__name__}")
    for name in ("lx", "lz"):
        a, b = getattr(fine, name), getattr(coarse, name)
        if not math.isclose(a, b, rel_tol=_LENGTH_RTOL, abs_tol=0.0):
            raise ValueError(
                f"the coarse grid has {name} = {b!r} but the fields' grid has {name} = {a!r}; "
                "filtering needs the same periodic box"
            )
    finer = [f"n{d} = {getattr(coarse, 'n' + d)} > {getattr(fine, 'n' + d)}" for d in "xyz"
             if getattr(coarse, "n" + d) > getattr(fine, "n" + d)]
    if finer:
        raise ValueError(
            f"the coarse grid is finer than the fields' grid ({', '.join(finer)}); expected coarse sizes "
            f"at most the fine ones {fine.shape} (the arguments may be the wrong way round)"
        )


def _grid_json(grid: ChannelGrid) -> str:
    """The grid definition as JSON text (keys ``nx, ny, nz, lx, lz, stretching``)."""
    return json.dumps(
        {"nx": grid.nx, "ny": grid.ny, "nz": grid.nz, "lx": grid.lx, "lz": grid.lz, "stretching": grid.stretching},
        sort_keys=True,
    )


def _describe(fine: ChannelGrid, coarse: ChannelGrid, horizontal: str, wall_normal: str) -> str:
    """One sentence saying what the filter did."""
    size = "{0.nx}x{0.ny}x{0.nz} (stretching {0.stretching:g})".format
    cutoff = f"keeping Fourier modes |m| < {coarse.nx / 2:g} in x and |n| < {coarse.nz / 2:g} in z (box wavenumbers)"
    if horizontal == "spectral":
        first = f"sharp spectral cutoff {cutoff}"
    else:
        first = (f"top-hat average over {coarse.dx:.6g} x {coarse.dz:.6g} h in x and z (exact, in Fourier space), "
                 f"then {cutoff}")
    if wall_normal == "average":
        second = "conservative finite-volume average over the coarse cells in y"
    else:
        second = "linear interpolation to the coarse cell centres in y (velocities 0 at the walls, p extrapolated)"
    return f"Fields on a {size(fine)} grid filtered to a {size(coarse)} grid: {first}; {second}."
