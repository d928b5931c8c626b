"""The field Dataset: building, checking, reading and writing velocity/pressure snapshots.

Every stage of the package exchanges flow fields as one kind of object, an
:class:`xarray.Dataset` with

* dims ``(time, x, y, z)`` (a single snapshot may omit ``time``, optionally keeping a scalar
  ``time`` coordinate);
* variables ``u, v, w`` and optionally ``p`` at the cell centres of a
  :class:`~surrogate.grid.ChannelGrid` (coordinates from :meth:`ChannelGrid.coords`);
* velocities in friction velocities u_tau, pressure in rho u_tau^2, time in h/u_tau, lengths in
  channel half-heights h, each variable with CF ``units`` and ``long_name`` attributes;
* global attributes ``re_tau``, ``nu = 1 / re_tau``, the grid (``grid_nx``, ... from
  :meth:`ChannelGrid.to_attrs`), ``lx``, ``lz`` and provenance (``source``, ``case``,
  ``created``, ``surrogate_version``, ``Conventions``).

:func:`make_fields` builds such a Dataset, :func:`check_fields` verifies one, :func:`open_fields`
and :func:`write_fields` read and (atomically) write netCDF files, and :class:`FieldWriter` streams
snapshots of a long run into one netCDF file that only gets its final name once the run finished.
"""

from __future__ import annotations

import datetime
import json
import math
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import netCDF4
import numpy as np
import xarray as xr

from .atomic import publish
from .grid import ChannelGrid

__all__ = [
    "FieldError",
    "VARIABLE_ATTRS",
    "TIME_ATTRS",
    "PARTIAL_SUFFIX",
    "make_fields",
    "check_fields",
    "check_fields_on_grid",
    "grid_of",
    "re_tau_of",
    "open_fields",
    "provenance_attrs",
    "write_fields",
    "FieldWriter",
]

PARTIAL_SUFFIX = ".partial"
"""Suffix of a file that is still being written (or whose writer did not finish)."""

VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "u": {"units": "u_tau", "long_name": "streamwise velocity"},
    "v": {"units": "u_tau", "long_name": "wall-normal velocity"},
    "w": {"units": "u_tau", "long_name": "spanwise velocity"},
    "p": {"units": "rho u_tau^2", "long_name": "pressure"},
}
"""CF attributes of the field variables."""

TIME_ATTRS: dict[str, str] = {"units": "h/u_tau", "long_name": "time", "axis": "T"}
"""CF attributes of the time coordinate."""

_VELOCITIES = ("u", "v", "w")
_SPACE_DIMS = ("x", "y", "z")
_TIME_DIMS = ("time",) + _SPACE_DIMS
_COORD_ATOL = 1e-10
_NU_RTOL = 1e-12
_RESERVED_ATTRS = ("re_tau", "nu", "lx", "lz")


class FieldError(ValueError):
    """A field Dataset or file does not follow the package's conventions."""


# ====================================================================== building


def make_fields(
    grid: ChannelGrid,
    u: Any,
    v: Any,
    w: Any,
    *,
    re_tau: float,
    p: Any = None,
    time: float | Any = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build a field Dataset on the cell centres of ``grid``.

    Parameters
    ----------
    grid
        The grid the fields live on.
    u, v, w
        Velocity components in u_tau, numpy arrays or torch tensors of shape ``(nx, ny, nz)``
        or ``(nt, nx, ny, nz)``, at the cell centres.
    re_tau
        Friction Reynolds number; ``nu = 1 / re_tau`` is stored alongside.
    p
        Optional pressure in rho u_tau^2, same shape as the velocities.
    time
        Time in h/u_tau: ``None`` or a scalar for a single snapshot (3-D arrays; a scalar becomes
        a scalar ``time`` coordinate), a 1-D array of length ``nt`` for 4-D arrays.
    attrs
        Extra global attributes (``source``, ``case``, ...). Booleans are stored as 0/1 and
        mappings as JSON text, since netCDF attributes hold only numbers and strings.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, x, y, z)`` or ``(x, y, z)``, variables ``u, v, w`` (and ``p``).

    Raises
    ------
    FieldError
        If an array has the wrong shape, ``time`` does not fit the arrays, ``re_tau`` is not a
        positive number or ``attrs`` conflicts with the grid or ``re_tau``.
    """
    arrays = {name: _to_numpy(value, name) for name, value in (("u", u), ("v", v), ("w", w), ("p", p))}
    arrays = {name: value for name, value in arrays.items() if value is not None}
    times = _time_values(time, arrays["u"].ndim)
    dims = _TIME_DIMS if times is not None and times.ndim == 1 else _SPACE_DIMS
    expected = ((len(times),) if dims == _TIME_DIMS else ()) + grid.shape
    for name, array in arrays.items():
        _check_shape(name, array.shape, expected, dims)
    coords: dict[str, Any] = dict(grid.coords())
    if times is not None:
        coords["time"] = xr.Variable(dims[:1] if times.ndim else (), times, attrs=dict(TIME_ATTRS))
    data_vars = {name: xr.Variable(dims, array, attrs=dict(VARIABLE_ATTRS[name])) for name, array in arrays.items()}
    return xr.Dataset(data_vars, coords=coords, attrs=_global_attrs(grid, re_tau, attrs))


def _to_numpy(value: Any, name: str) -> np.ndarray | None:
    """Convert a numpy array, torch tensor or sequence to a floating numpy array."""
    if value is None:
        return None
    if hasattr(value, "detach"):  # torch tensor, without importing torch
        tensor = value.detach().cpu()
        try:
            value = tensor.numpy()
        except TypeError:  # dtypes numpy lacks, e.g. bfloat16
            value = tensor.float().numpy()
    array = np.asarray(value)
    if np.iscomplexobj(array):
        raise FieldError(f"{name} is complex ({array.dtype}); expected real velocities/pressure")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def _time_values(time: Any, ndim: int) -> np.ndarray | None:
    """Time as a 0-d or 1-d float64 array matching arrays of dimension ``ndim``."""
    if ndim not in (3, 4):
        return None if time is None else np.asarray(time, dtype=np.float64)
    if time is None:
        if ndim == 4:
            raise FieldError("arrays of shape (nt, nx, ny, nz) need time: a 1-D array of nt times in h/u_tau")
        return None
    times = np.asarray(_to_numpy(time, "time"), dtype=np.float64)
    if times.ndim > 1:
        raise FieldError(f"time must be a scalar or a 1-D array in h/u_tau, got shape {times.shape}")
    if ndim == 4 and times.ndim == 0:
        times = times.reshape(1)
    if ndim == 3 and times.ndim == 1:
        raise FieldError(
            f"time has {times.size} values but the arrays are single snapshots of shape (nx, ny, nz); "
            "pass a scalar time, or arrays of shape (nt, nx, ny, nz)"
        )
    return times


def _check_shape(name: str, shape: tuple[int, ...], expected: tuple[int, ...], dims: tuple[str, ...]) -> None:
    """Raise :class:`FieldError` if ``shape`` differs from ``expected``."""
    if tuple(shape) != tuple(expected):
        sizes = ", ".join("nt" if dim == "time" else f"n{dim}" for dim in dims)
        raise FieldError(f"{name} has shape {tuple(shape)}; expected {tuple(expected)} = ({sizes})")


def _global_attrs(grid: ChannelGrid, re_tau: float, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Physical, grid and provenance attributes of a field Dataset or file."""
    if isinstance(re_tau, bool) or not isinstance(re_tau, (int, float, np.number)) or not (
        math.isfinite(re_tau) and re_tau > 0
    ):
        raise FieldError(f"re_tau must be a positive number, got {re_tau!r}")
    physical = {"re_tau": float(re_tau), "nu": 1.0 / float(re_tau), "lx": float(grid.lx), "lz": float(grid.lz)}
    physical.update(_netcdf_attrs(grid.to_attrs()))
    attrs: dict[str, Any] = {
        "Conventions": "CF-1.8",
        "source": "surrogate",
        "case": "",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "surrogate_version": _package_version(),
    }
    for key, value in _netcdf_attrs(extra or {}).items():
        if key in physical and not _same_attr(value, physical[key]):
            raise FieldError(
                f"attrs[{key!r}] = {value!r} conflicts with the grid/re_tau value {physical[key]!r}; "
                "set it through the grid or the re_tau argument"
            )
        attrs[key] = value
    attrs.update(physical)
    return attrs


_WRITTEN_ATTRS = ("re_tau", "nu", "lx", "lz", "Conventions", "created", "surrogate_version", "complete")


def provenance_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance part of a field Dataset's ``attrs`` (``source``, ``case``, filter, ...).

    Drops what :func:`make_fields` and :class:`FieldWriter` write themselves (``re_tau``, ``nu``,
    the box lengths and ``grid_*`` attributes, ``Conventions``, ``created``, the package version,
    the ``complete`` flag), so the result can be passed as ``attrs`` for a field on another grid.
    """
    return {key: value for key, value in attrs.items() if key not in _WRITTEN_ATTRS and not key.startswith("grid_")}


def _netcdf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Make attribute values storable in netCDF (numbers, strings, 1-D numeric arrays)."""
    result = {}
    for key, value in attrs.items():
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        elif isinstance(value, Mapping):
            value = json.dumps(value, sort_keys=True, default=str)
        elif value is None:
            value = ""
        elif isinstance(value, (list, tuple)) and not all(
            isinstance(item, (int, float, np.number)) and not isinstance(item, bool) for item in value
        ):
            value = json.dumps(list(value), default=str)
        elif not isinstance(value, (str, int, float, np.number, np.ndarray, list, tuple)):
            raise FieldError(f"attribute {key!r} has type {type(value).__name__}; expected a number or a string")
        result[str(key)] = value
    return result


def _same_attr(a: Any, b: Any) -> bool:
    """Compare two attribute values, numbers to within rounding."""
    try:
        return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=0))
    except (TypeError, ValueError):
        return a == b


def _package_version() -> str:
    """``surrogate.__version__`` if the package can be imported, else ``"unknown"``."""
    try:
        from surrogate import __version__
    except ImportError:
        return "unknown"
    return str(__version__)


# ====================================================================== checking


def check_fields(ds: xr.Dataset, *, require_pressure: bool = False, require_time: bool = False) -> ChannelGrid:
    """Check that ``ds`` is a field Dataset and return its grid.

    Parameters
    ----------
    ds
        The Dataset to check.
    require_pressure
        Also require a ``p`` variable.
    require_time
        Require a ``time`` dimension (dims ``(time, x, y, z)``).

    Returns
    -------
    ChannelGrid
        The grid of :func:`grid_of` (the ``grid_*`` attributes, else the coordinates), which the
        coordinates match. Of the attributes only ``re_tau`` or ``nu`` is required.

    Raises
    ------
    FieldError
        Naming the missing variable, wrong dims, mismatched coordinate or inconsistent
        attribute, and what was expected.
    """
    if not isinstance(ds, xr.Dataset):
        raise FieldError(f"expected an xarray.Dataset of fields, got {type(ds).__name__}")
    _check_variables(ds, require_pressure)
    _check_dims(ds, require_time)
    grid = grid_of(ds)
    _check_coords(ds, grid)
    _check_time(ds)
    _check_viscosity(ds.attrs)
    return grid


def grid_of(ds: xr.Dataset) -> ChannelGrid:
    """The grid of a field Dataset: from its ``grid_*`` attributes, else from its coordinates.

    A Dataset written by surrogate carries the attributes; a user's own Dataset needs only the
    cell-centre coordinates ``x, y, z`` (:meth:`ChannelGrid.from_coords`).
    """
    if any(key.startswith("grid_") for key in ds.attrs):
        return _grid_from_attrs(ds.attrs)
    missing = [name for name in _SPACE_DIMS if name not in ds.coords]
    if missing:
        raise FieldError(
            f"coordinate(s) {', '.join(missing)} missing and no grid_* attributes; expected the cell "
            "centres x, y, z of the channel grid in h"
        )
    try:
        return ChannelGrid.from_coords(*(ds[name].values for name in _SPACE_DIMS), atol=_COORD_ATOL)
    except ValueError as exc:
        raise FieldError(f"cannot rebuild the grid from the coordinates: {exc}") from None


def re_tau_of(ds: xr.Dataset) -> float:
    """The nominal friction Reynolds number: ``attrs["re_tau"]``, else ``1 / attrs["nu"]``."""
    _check_viscosity(ds.attrs)
    return float(ds.attrs["re_tau"]) if "re_tau" in ds.attrs else 1.0 / float(ds.attrs["nu"])


def check_fields_on_grid(ds: xr.Dataset, grid: ChannelGrid, *, what: str = "the grid", require_time: bool = False) -> None:
    """Check that ``ds`` holds ``u, v, w`` on ``grid``: its coordinates are the contract.

    For a Dataset whose grid is known from elsewhere (a model's or a solver's), so that a user's own
    Dataset needs no attributes: ``x, y, z`` must be the cell centres of ``grid`` to 1e-10 h.

    Raises
    ------
    FieldError
        Naming the missing variable, wrong dims or the coordinate that differs from ``what``.
    """
    if not isinstance(ds, xr.Dataset):
        raise FieldError(f"expected an xarray.Dataset of fields, got {type(ds).__name__}")
    _check_variables(ds, False)
    _check_dims(ds, require_time)
    try:
        _check_coords(ds, grid)
    except FieldError as exc:
        raise FieldError(str(exc).replace("the grid rebuilt from the attributes", what)) from None
    _check_time(ds)


def _check_variables(ds: xr.Dataset, require_pressure: bool) -> None:
    """Require ``u, v, w`` (and ``p`` if asked)."""
    required = _VELOCITIES + (("p",) if require_pressure else ())
    missing = [name for name in required if name not in ds.data_vars]
    if missing:
        present = ", ".join(map(str, ds.data_vars)) or "none"
        raise FieldError(
            f"missing variable(s) {', '.join(missing)}; present: {present}; "
            f"expected {', '.join(required)}{'' if require_pressure else ' (and optionally p)'}"
        )


def _check_dims(ds: xr.Dataset, require_time: bool) -> None:
    """Require dims ``(x, y, z)`` or ``(time, x, y, z)``, the same for every field variable."""
    allowed = [_TIME_DIMS] if require_time else [_TIME_DIMS, _SPACE_DIMS]
    reference = ds["u"].dims
    for name in [n for n in ("u", "v", "w", "p") if n in ds.data_vars]:
        dims = ds[name].dims
        if dims not in allowed:
            options = " or ".join(str(option) for option in allowed)
            raise FieldError(f"{name} has dims {dims}; expected {options}{_dims_hint(dims, require_time)}")
        if dims != reference:
            raise FieldError(f"{name} has dims {dims} but u has {reference}; all fields must share dims")


def _dims_hint(dims: tuple, require_time: bool) -> str:
    """Suggest the xarray call that fixes a dims problem, if there is a simple one."""
    if sorted(dims) == sorted(_SPACE_DIMS):
        if require_time:
            return " (add a time dimension with ds.expand_dims('time'))"
        return f" (reorder with ds.transpose{_SPACE_DIMS})"
    if sorted(dims) == sorted(_TIME_DIMS):
        return f" (reorder with ds.transpose{_TIME_DIMS})"
    return ""


def _grid_from_attrs(attrs: Mapping[str, Any]) -> ChannelGrid:
    """Rebuild the grid from ``grid_*`` attributes, as a :class:`FieldError` on failure."""
    try:
        return ChannelGrid.from_attrs(attrs)
    except KeyError as exc:
        raise FieldError(f"cannot rebuild the grid: {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise FieldError(f"the grid attributes describe no valid grid: {exc}") from None


def _check_coords(ds: xr.Dataset, grid: ChannelGrid) -> None:
    """Require coordinates x, y, z equal (to 1e-10 h) to the grid's cell centres."""
    for name in _SPACE_DIMS:
        expected = getattr(grid, name)
        if name not in ds.coords:
            raise FieldError(f"coordinate {name} is missing; expected the {expected.size} cell centres of the grid")
        actual = np.asarray(ds[name].values, dtype=np.float64)
        if actual.shape != expected.shape:
            raise FieldError(
                f"coordinate {name} has {actual.size} points; the grid rebuilt from the attributes "
                f"expects {expected.size} ({grid!r})"
            )
        error = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
        if not error <= _COORD_ATOL:
            raise FieldError(
                f"coordinate {name} does not match the grid rebuilt from the attributes "
                f"({grid!r}): largest difference {error:.3g} h, expected at most {_COORD_ATOL:g} h"
            )


def _check_time(ds: xr.Dataset) -> None:
    """Require a strictly increasing ``time`` coordinate when there is a ``time`` dim."""
    if "time" not in ds.dims:
        return
    if "time" not in ds.coords:
        raise FieldError("dimension time has no coordinate; expected times in h/u_tau")
    times = np.asarray(ds["time"].values, dtype=np.float64)
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise FieldError(f"time must be strictly increasing, got {times[:10]}{' ...' if times.size > 10 else ''}")


def _check_viscosity(attrs: Mapping[str, Any]) -> None:
    """Require ``re_tau`` or ``nu`` (in h and u_tau), and ``nu * re_tau == 1`` when both are given."""
    present = [key for key in ("re_tau", "nu") if key in attrs]
    if not present:
        raise FieldError(
            "attribute re_tau (or nu = 1 / re_tau) missing: the nominal friction Reynolds number sets the "
            "wall units; add it with ds.assign_attrs(re_tau=...)"
        )
    try:
        values = {key: float(attrs[key]) for key in present}
    except (TypeError, ValueError):
        raise FieldError(f"attribute(s) {', '.join(f'{k}={attrs[k]!r}' for k in present)} must be numbers") from None
    if not all(value > 0 and math.isfinite(value) for value in values.values()):
        raise FieldError(f"attribute(s) {values} must be positive and finite")
    if len(values) == 2 and not abs(values["nu"] * values["re_tau"] - 1.0) <= _NU_RTOL:
        re_tau, nu = values["re_tau"], values["nu"]
        raise FieldError(
            f"attributes re_tau={re_tau!r} and nu={nu!r} disagree; expected nu = 1 / re_tau = {1 / re_tau!r}"
        )


# ====================================================================== files


def open_fields(path: str | PathLike[str]) -> xr.Dataset:
    """Open a field netCDF file lazily and check it.

    Parameters
    ----------
    path
        A file written by :func:`write_fields` or a finished :class:`FieldWriter`.

    Returns
    -------
    xarray.Dataset
        The fields (data loaded on access).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (mentioning an unfinished ``.partial`` beside it, if any).
    FieldError
        If the file is unfinished (``.partial`` or ``complete = 0``), unreadable or not a field
        Dataset; the message names the path.
    """
    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        raise FieldError(_unfinished_message(path))
    if not path.is_file():
        partial = _partial_path(path)
        note = f"; {partial} exists: {_unfinished_message(partial)}" if partial.exists() else ""
        raise FileNotFoundError(f"no field file at {str(path)!r}{note}")
    try:
        ds = xr.open_dataset(path, decode_times=False, decode_timedelta=False)
    except (OSError, ValueError) as exc:
        raise FieldError(f"{path}: cannot be read as a netCDF field file: {exc}") from None
    try:
        if ds.attrs.get("complete", 1) == 0:
            raise FieldError(_unfinished_message(path))
        check_fields(ds)
    except FieldError as exc:
        ds.close()
        raise FieldError(f"{path}: {exc}") from None
    return ds


def _unfinished_message(path: Path) -> str:
    """Explain that ``path`` is the output of a run that did not finish."""
    return (
        f"{path} is an unfinished output: the run writing it stopped before it completed "
        f"(still marked complete = 0). Resume the run from its last checkpoint to finish it; the "
        f"finished file will be {_final_path(path)}. To inspect the snapshots written so far, "
        f"use xarray.open_dataset({str(path)!r}) directly."
    )


def write_fields(ds: xr.Dataset, path: str | PathLike[str]) -> Path:
    """Check ``ds`` and write it to a netCDF file atomically.

    The data goes to ``path + ".partial"``, is flushed to disk and then renamed to ``path``,
    so ``path`` is either absent, the previous file, or the complete new file.

    Parameters
    ----------
    ds
        A field Dataset (see :func:`check_fields`).
    path
        Destination file, usually ending ``.nc``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    check_fields(ds)
    path = Path(path)
    partial = _partial_path(path)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    try:
        ds.to_netcdf(partial, format="NETCDF4", engine="netcdf4")
        return publish(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _partial_path(path: Path) -> Path:
    """``path`` with the ``.partial`` suffix appended."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _final_path(path: Path) -> Path:
    """``path`` without a trailing ``.partial`` suffix."""
    name = path.name
    return path.with_name(name[: -len(PARTIAL_SUFFIX)]) if name.endswith(PARTIAL_SUFFIX) else path


# ====================================================================== streaming writer


class FieldWriter:
    """Stream the snapshots of a long run into one netCDF file.

    While the run goes on the file is ``<path>.partial`` with global attribute ``complete = 0``;
    :meth:`finalize` (or :meth:`close`, or leaving a ``with`` block normally) sets
    ``complete = 1`` and renames it to ``path`` atomically. A run that crashes or is interrupted
    leaves only the ``.partial``, which :func:`open_fields` refuses and :meth:`resume` continues.

    Parameters
    ----------
    path
        Final file name, usually ending ``.nc``.
    grid
        The grid of the snapshots; arrays appended have shape ``grid.shape = (nx, ny, nz)``.
    re_tau
        Friction Reynolds number (``nu = 1 / re_tau`` is stored too).
    dtype
        Storage precision of the fields, ``"float64"`` or ``"float32"``.
    pressure
        Whether snapshots carry pressure ``p`` (then :meth:`append` requires it).
    attrs
        Extra global attributes (``source``, ``case``, ...), as in :func:`make_fields`.
    overwrite
        Replace an existing ``path`` or ``.partial``; without it either raises
        :class:`FileExistsError` (use :meth:`resume` to continue an unfinished run).

    Examples
    --------
    >>> with FieldWriter("run/fields.nc", grid, re_tau=180.0) as writer:  # doctest: +SKIP
    ...     for t, state in simulation:
    ...         writer.append(t, state.u, state.v, state.w)
    """

    def __init__(
        self,
        path: str | PathLike[str],
        grid: ChannelGrid,
        *,
        re_tau: float,
        dtype: str | np.dtype = "float64",
        pressure: bool = False,
        attrs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        path = _final_path(Path(path))
        partial = _partial_path(path)
        for existing in (path, partial):
            if existing.exists() and not overwrite:
                hint = " (an unfinished run: continue it with FieldWriter.resume)" if existing == partial else ""
                raise FileExistsError(f"{existing} already exists{hint}; pass overwrite=True to start over")
        storage = np.dtype(dtype)
        if storage not in (np.dtype("float64"), np.dtype("float32")):
            raise FieldError(f"dtype must be float64 or float32, got {storage}")
        global_attrs = _global_attrs(grid, re_tau, attrs)
        partial.parent.mkdir(parents=True, exist_ok=True)
        nc = netCDF4.Dataset(partial, "w", format="NETCDF4")
        try:
            _define_file(nc, grid, storage, pressure, global_attrs)
            nc.sync()
        except BaseException:
            nc.close()
            partial.unlink(missing_ok=True)
            raise
        self._attach(nc, path)

    # ------------------------------------------------------------------ resume
    @classmethod
    def resume(cls, path: str | PathLike[str], t_resume: float, *, tol: float = 1e-12) -> "FieldWriter":
        """Reopen the output of an interrupted run that restarts from a checkpoint at ``t_resume``.

        Snapshots with ``time > t_resume + tol`` (written after the checkpoint, so about to be
        recomputed) are dropped, so that resuming produces the same file as an uninterrupted run.
        netCDF files cannot shrink, so dropping copies the snapshots kept into a fresh
        ``.partial`` that atomically replaces the old one.

        Parameters
        ----------
        path
            The final file name (``<path>.partial`` is also accepted). If only a finished
            ``path`` exists, the run is being extended: its snapshots up to ``t_resume`` are
            copied into a new ``.partial`` and ``path`` stays until the new one is finalized.
        t_resume
            Simulation time of the checkpoint the run restarts from, in h/u_tau.
        tol
            Snapshots at ``time <= t_resume + tol`` are kept, in h/u_tau.

        Returns
        -------
        FieldWriter
            A writer positioned after the last kept snapshot.

        Raises
        ------
        FileNotFoundError
            If neither ``<path>.partial`` nor ``path`` exists.
        FieldError
            If the file was not written by a :class:`FieldWriter` or cannot be read (truncated).
        """
        path = _final_path(Path(path))
        partial = _partial_path(path)
        source = partial if partial.exists() else path
        if not source.exists():
            raise FileNotFoundError(f"nothing to resume: neither {partial} nor {path} exists")
        try:
            handle = netCDF4.Dataset(source, "r")
        except OSError as exc:  # truncated or overwritten: netCDF says "HDF error" or "Unknown file format"
            raise FieldError(
                f"{source} cannot be read ({exc.strerror or exc}): the field file of the interrupted run is damaged, "
                "so it cannot be continued; start over with --overwrite"
            ) from None
        with handle as nc:
            nc.set_auto_mask(False)
            _check_writer_file(nc, source)
            times = np.asarray(nc.variables["time"][:], dtype=np.float64)
            keep = _kept_records(times, t_resume + tol)
            if source != partial or keep < len(nc.dimensions["time"]):
                _copy_prefix(nc, partial, keep)
        nc = netCDF4.Dataset(partial, "a")
        nc.setncattr("complete", 0)
        nc.sync()
        writer = cls.__new__(cls)
        writer._attach(nc, path)
        return writer

    # ------------------------------------------------------------------ state
    def _attach(self, nc: netCDF4.Dataset, path: Path) -> None:
        """Take over an open ``.partial`` dataset and read the writer state from it."""
        self._nc: netCDF4.Dataset | None = nc
        self._path = path
        self._grid = ChannelGrid.from_attrs(nc.__dict__)
        self._pressure = "p" in nc.variables
        self._dtype = np.dtype(nc.variables["u"].dtype)
        times = np.asarray(nc.variables["time"][:], dtype=np.float64)
        self._count = len(times)
        self._last_time = float(times[-1]) if len(times) else -math.inf

    @property
    def path(self) -> Path:
        """The final file name (the file is ``path + ".partial"`` until finalized)."""
        return self._path

    @property
    def partial_path(self) -> Path:
        """The file being written."""
        return _partial_path(self._path)

    @property
    def grid(self) -> ChannelGrid:
        """The grid of the snapshots."""
        return self._grid

    @property
    def dtype(self) -> np.dtype:
        """Storage precision of the fields."""
        return self._dtype

    @property
    def n_snapshots(self) -> int:
        """Number of snapshots in the file."""
        return self._count

    @property
    def last_time(self) -> float | None:
        """Time of the last snapshot in h/u_tau, or None if there is none."""
        return None if self._count == 0 else self._last_time

    @property
    def closed(self) -> bool:
        """True once the writer was finalized or closed as partial."""
        return self._nc is None

    # ------------------------------------------------------------------ writing
    def append(self, time: float, u: Any, v: Any, w: Any, p: Any = None) -> None:
        """Append one snapshot and flush it to the file.

        Parameters
        ----------
        time
            Simulation time in h/u_tau, greater than the previous snapshot's.
        u, v, w
            Velocities in u_tau at the cell centres, shape ``(nx, ny, nz)``, numpy or torch.
        p
            Pressure in rho u_tau^2, same shape; required exactly when the writer was made with
            ``pressure=True``.
        """
        nc = self._open_dataset()
        time = float(time)
        if not (math.isfinite(time) and time > self._last_time):
            raise FieldError(
                f"snapshot time {time!r} must be finite and later than the last one ({self._last_time!r}) "
                f"in {self.partial_path}"
            )
        if (p is not None) != self._pressure:
            wanted = "needs p" if self._pressure else "was created with pressure=False, so p is not stored"
            raise FieldError(f"{self.partial_path}: this writer {wanted}")
        fields = {"u": u, "v": v, "w": w, "p": p} if self._pressure else {"u": u, "v": v, "w": w}
        arrays = {name: _to_numpy(value, name) for name, value in fields.items()}
        for name, array in arrays.items():
            _check_shape(name, array.shape, self._grid.shape, _SPACE_DIMS)
        index = self._count
        for name, array in arrays.items():
            nc.variables[name][index, :, :, :] = array.astype(self._dtype, copy=False)
        nc.variables["time"][index] = time  # written last: a record without its time is dropped on resume
        nc.sync()
        self._count += 1
        self._last_time = time

    def finalize(self, attrs: Mapping[str, Any] | None = None) -> Path:
        """Mark the file complete and rename it to :attr:`path` atomically.

        Parameters
        ----------
        attrs
            Global attributes known only at the end (e.g. how a rollout ended), stored as in
            :func:`make_fields`.

        Returns
        -------
        pathlib.Path
            The finished file. Calling again is a no-op.
        """
        if self._nc is None:
            return self._path
        nc, self._nc = self._nc, None
        try:
            nc.setncatts(_netcdf_attrs(attrs or {}))
            nc.setncattr("complete", 1)
        finally:
            nc.close()
        return publish(self.partial_path, self._path)

    close = finalize

    def close_partial(self) -> None:
        """Close the file without finishing it: it stays ``.partial`` with ``complete = 0``."""
        if self._nc is not None:
            nc, self._nc = self._nc, None
            nc.close()

    def _open_dataset(self) -> netCDF4.Dataset:
        """The open netCDF dataset, or an error if the writer is closed."""
        if self._nc is None:
            raise FieldError(f"the writer of {self._path} is closed")
        return self._nc

    def __enter__(self) -> "FieldWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.close_partial()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"FieldWriter({str(self._path)!r}, {self._count} snapshots, {self._dtype}, {state})"


def _define_file(
    nc: netCDF4.Dataset, grid: ChannelGrid, dtype: np.dtype, pressure: bool, attrs: Mapping[str, Any]
) -> None:
    """Create dims, coordinates, field variables and global attributes of a writer file."""
    nc.createDimension("time", None)
    for name, size in zip(_SPACE_DIMS, grid.shape):
        nc.createDimension(name, size)
    time = nc.createVariable("time", "f8", ("time",))
    time.setncatts(TIME_ATTRS)
    for name, coord in grid.coords().items():
        var = nc.createVariable(name, "f8", (name,))
        var.setncatts(coord.attrs)
        var[:] = coord.values
    names = _VELOCITIES + (("p",) if pressure else ())
    for name in names:
        var = nc.createVariable(name, dtype, _TIME_DIMS, chunksizes=(1,) + grid.shape)
        var.setncatts(VARIABLE_ATTRS[name])
    nc.setncatts(dict(attrs))
    nc.setncattr("complete", 0)


def _check_writer_file(nc: netCDF4.Dataset, path: Path) -> None:
    """Require the layout written by :class:`FieldWriter`."""
    missing = [name for name in ("time",) + _VELOCITIES if name not in nc.variables]
    if missing or "time" not in nc.dimensions or not nc.dimensions["time"].isunlimited():
        raise FieldError(
            f"{path} was not written by FieldWriter: expected an unlimited time dimension and variables "
            f"time, u, v, w; missing {', '.join(missing) or 'the unlimited time dimension'}"
        )
    try:
        ChannelGrid.from_attrs(nc.__dict__)
    except (KeyError, ValueError) as exc:
        raise FieldError(f"{path}: cannot rebuild the grid from its attributes: {exc}") from None


def _kept_records(times: np.ndarray, t_max: float) -> int:
    """Length of the leading run of snapshots with finite ``time <= t_max``."""
    keep = 0
    for t in times:
        if not (math.isfinite(t) and t <= t_max) or abs(t) >= 1e30:  # 1e30: unwritten (fill) time
            break
        keep += 1
    return keep


def _copy_prefix(src: netCDF4.Dataset, partial: Path, keep: int) -> None:
    """Write the first ``keep`` snapshots of ``src`` to a fresh file that replaces ``partial``."""
    tmp = partial.with_name(partial.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as dst:
            _copy_structure(src, dst)
            for name, var in src.variables.items():
                if var.dimensions[:1] == ("time",):
                    for index in range(keep):
                        dst.variables[name][index, ...] = var[index, ...]
                else:
                    dst.variables[name][...] = var[...]
            dst.setncattr("complete", 0)
        publish(tmp, partial)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_structure(src: netCDF4.Dataset, dst: netCDF4.Dataset) -> None:
    """Copy dimensions, variable definitions and attributes (no data) from ``src`` to ``dst``."""
    for name, dim in src.dimensions.items():
        dst.createDimension(name, None if dim.isunlimited() else len(dim))
    for name, var in src.variables.items():
        chunking = var.chunking()
        var_attrs = var.__dict__
        fill = var_attrs.get("_FillValue")
        new = dst.createVariable(
            name,
            var.dtype,
            var.dimensions,
            chunksizes=None if chunking == "contiguous" else chunking,
            fill_value=fill,
        )
        new.setncatts({key: value for key, value in var_attrs.items() if key != "_FillValue"})
    dst.setncatts(src.__dict__)
