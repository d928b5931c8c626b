"""Export and import of channel-flow fields in the HDF5 layout of *the_well*.

`the_well <https://github.com/PolymathicAI/the_well>`_ (PolymathicAI) is a large collection of
physics simulations stored as HDF5 files that all follow one layout (their ``docs/data_format.md``,
checked by their ``scripts/check_thewell_formatting.py`` and read by
``the_well.data.WellDataset`` and ``the_well.utils.export.hdf5_to_xarray``).
:func:`export_the_well` writes field Datasets (:mod:`surrogate.fields`) of one grid as such a file,
:func:`import_the_well` reads one back as field Datasets, one per trajectory.

Layout written (``@`` marks an HDF5 attribute; ``B`` trajectories, ``T`` snapshots)::

    /  @dataset_name = "turbulent_channel"   @grid_type = "cartesian"   @n_spatial_dims = 3
       @n_trajectories = B   @simulation_parameters = ["Re_tau"]   @Re_tau = re_tau
       -- surrogate extras (ignored by the_well's readers):
       @grid_nx, @grid_ny, @grid_nz, @grid_lx, @grid_lz, @grid_stretching   (ChannelGrid)
       @re_tau, @nu, @lx, @lz       @time_start = float64(B): absolute start time of each trajectory
       @trajectory_attrs = JSON list of each trajectory's provenance attributes (source, case, ...)
       @source, @case, ...          provenance attributes shared by all trajectories
      dimensions/     @spatial_dims = ["x", "y", "z"]
        time  float64(T)  times relative to the first snapshot   @sample_varying=False @time_varying=True
        x, y, z  float64(nx), (ny), (nz)  cell centres            @sample_varying=False @time_varying=False
      boundary_conditions/
        x_periodic/  @bc_type="PERIODIC" @associated_dims=["x"]  mask bool(nx), True at both ends
        z_periodic/  @bc_type="PERIODIC" @associated_dims=["z"]  mask bool(nz), True at both ends
        y_wall/      @bc_type="WALL"     @associated_dims=["y"]  mask bool(ny), True at both ends
                     (each also @associated_fields=[] @sample_varying=False @time_varying=False; the
                     mask marks the cells next to each boundary, which is what the_well's reader
                     looks at; no "values" dataset: no field value is prescribed at a cell centre)
      scalars/        @field_names = ["Re_tau"]
        Re_tau  float64 scalar (shape ())                          @sample_varying=False @time_varying=False
      t0_fields/      @field_names = ["pressure"] (or [] without p)
        pressure  (B, T, nx, ny, nz)                               @dim_varying=[True]*3
      t1_fields/      @field_names = ["velocity"]                  @sample_varying=True @time_varying=True
        velocity  (B, T, nx, ny, nz, 3), last axis (u, v, w) = the (x, y, z) components
      t2_fields/      @field_names = []

Units are the package's: lengths in channel half-heights h (walls at y = 0 and y = 2, periodic x
and z, coordinates at the cell centres of the :class:`~surrogate.grid.ChannelGrid`), velocities in
friction velocities u_tau, pressure in rho u_tau^2, time in h/u_tau. Variable mapping:
``u, v, w`` <-> ``t1_fields/velocity[..., 0 / 1 / 2]``, ``p`` <-> ``t0_fields/pressure``,
``re_tau`` <-> ``Re_tau``. Fields keep their dtype (float32 stays float32; the_well's own datasets
are float32); coordinates and times are stored as float64 so that the grid is rebuilt exactly.

Times: the file written has one time axis shared by all trajectories (as in the_well's own
datasets), so every trajectory must have the same number of snapshots at the same times relative to
its first one (to ``1e-9 * max(1, largest |time|)`` h/u_tau). ``dimensions/time`` holds those
relative times and the root attribute ``time_start`` the absolute start of each trajectory; import
restores ``time_start[i] + dimensions/time``: the original times up to rounding of that sum
(exactly when the differences are exact in binary, e.g. steps of 0.25). the_well itself also
allows a sample-varying time of shape ``(B, T)``; :func:`import_the_well` reads that too.

Files from other tools (without the ``grid_*`` attributes) are imported by fitting the grid to the
coordinates: ``x`` and ``z`` must be uniform and start at 0 (``lx = nx dx``, ``lz = nz dz``) and
``y`` must be the cell centres of the package's tanh-stretched wall-normal grid, whose stretching is
found by a root find on the first cell centre; each coordinate must match the rebuilt grid to
``max(1e-8, 4 eps |coordinate|)`` h (eps of the stored floating type, so float32 coordinates fit).
``Re_tau`` comes from the root attribute ``re_tau`` or ``Re_tau`` or the dataset ``scalars/Re_tau``.
"""

from __future__ import annotations

import contextlib
import json
from os import PathLike
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, Union, overload

import h5py
import numpy as np
import xarray as xr
from scipy.optimize import brentq

from ..atomic import publish
from ..fields import PARTIAL_SUFFIX, FieldError, check_fields, make_fields, open_fields
from ..grid import ChannelGrid

__all__ = ["export_the_well", "import_the_well"]

FieldSource = Union[xr.Dataset, str, "PathLike[str]"]
"""A field Dataset with a time dimension, or the path of a field netCDF file."""

_SPACE_DIMS = ("x", "y", "z")
_GRID_KEYS = tuple(f"grid_{name}" for name in ChannelGrid.__dataclass_fields__)
# Attributes describing the grid and physics (stored once, rebuilt by make_fields on import).
_PHYSICS_KEYS = ("re_tau", "nu", "lx", "lz", "complete") + _GRID_KEYS
_WELL_ROOT_KEYS = ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories", "simulation_parameters", "Re_tau")
_TIME_START = "time_start"
_TRAJECTORY_ATTRS = "trajectory_attrs"
_RESERVED_ROOT_KEYS = _WELL_ROOT_KEYS + _PHYSICS_KEYS + (_TIME_START, _TRAJECTORY_ATTRS)
_TIME_RTOL = 1e-9
_COORD_TOL = 1e-8
_MAX_STRETCHING = 50.0
_LAYOUT = (
    "a the_well file has groups dimensions (datasets time, x, y, z), t0_fields (optional pressure), "
    "t1_fields (velocity of shape (n_trajectories, n_time, nx, ny, nz, 3)), t2_fields, scalars and "
    "boundary_conditions"
)


# ====================================================================== export


def export_the_well(
    trajectories: FieldSource | Sequence[FieldSource],
    path: str | PathLike[str],
    *,
    dataset_name: str = "turbulent_channel",
    overwrite: bool = False,
) -> Path:
    """Write field trajectories to one HDF5 file in the layout of the_well.

    The file is written to ``path + ".partial"`` and renamed to ``path`` only when complete, so
    ``path`` is never a partly written file. Trajectories are read and written one snapshot at a
    time, so memory holds one snapshot, not the trajectories.

    Parameters
    ----------
    trajectories
        One trajectory or a sequence of them: field Datasets with dims ``(time, x, y, z)`` (u, v, w
        in u_tau, optionally p in rho u_tau^2, time in h/u_tau) or paths of field netCDF files
        (opened with :func:`~surrogate.fields.open_fields`). All on the same grid, with the same
        ``re_tau``, the same variables and dtypes, the same number of snapshots and the same times
        relative to their first snapshot.
    path
        The HDF5 file to write (the_well uses ``.hdf5``).
    dataset_name
        The root attribute ``dataset_name``.
    overwrite
        Replace an existing file at ``path`` (only once the new one is complete).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FieldError
        If a trajectory is not a field Dataset with a time dimension or does not match the first
        one (grid, re_tau, variables, dtype, number of snapshots, relative times); the message
        names the trajectory.
    """
    sources: list[FieldSource] = (
        [trajectories] if isinstance(trajectories, (xr.Dataset, str, PathLike)) else list(trajectories)
    )
    if not sources:
        raise ValueError("no trajectories to export; pass a field Dataset, a file path or a sequence of them")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    try:
        with h5py.File(partial, "w") as file:
            _write_file(file, sources, dataset_name)
        return publish(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


class _Reference:
    """What every trajectory must share with the first one."""

    def __init__(self, ds: xr.Dataset, grid: ChannelGrid) -> None:
        self.grid = grid
        self.re_tau = float(ds.attrs["re_tau"])
        self.names = tuple(name for name in ("u", "v", "w", "p") if name in ds.data_vars)
        self.dtypes = {name: ds[name].dtype for name in self.names}
        times = np.asarray(ds["time"].values, dtype=np.float64)
        self.relative_times = times - times[0]

    def check(self, ds: xr.Dataset, grid: ChannelGrid) -> None:
        """Raise :class:`FieldError` naming the first difference between ``ds`` and the reference."""
        if grid != self.grid:
            raise FieldError(f"it is on {grid!r} but trajectory 0 is on {self.grid!r}; all must share one grid")
        if float(ds.attrs["re_tau"]) != self.re_tau:
            raise FieldError(f"it has re_tau = {ds.attrs['re_tau']!r} but trajectory 0 has {self.re_tau!r}")
        names = tuple(name for name in ("u", "v", "w", "p") if name in ds.data_vars)
        if names != self.names:
            raise FieldError(f"it has variables {names} but trajectory 0 has {self.names}")
        dtypes = {name: ds[name].dtype for name in names}
        if dtypes != self.dtypes:
            raise FieldError(f"it has dtypes {_dtype_text(dtypes)} but trajectory 0 has {_dtype_text(self.dtypes)}")
        times = np.asarray(ds["time"].values, dtype=np.float64)
        if times.size != self.relative_times.size:
            raise FieldError(
                f"it has {times.size} snapshots but trajectory 0 has {self.relative_times.size}; "
                "a the_well file has one time axis, so all trajectories need the same number of snapshots"
            )
        relative = times - times[0]
        scale = max(1.0, float(np.max(np.abs(times))), float(np.max(np.abs(self.relative_times))))
        error = float(np.max(np.abs(relative - self.relative_times)))
        if not error <= _TIME_RTOL * scale:
            raise FieldError(
                f"its snapshot times relative to its first one differ from trajectory 0's by up to {error:.3g} "
                f"h/u_tau (allowed {_TIME_RTOL * scale:.3g}); a the_well file has one time axis, so all "
                "trajectories need the same relative times"
            )


def _write_file(file: h5py.File, sources: Sequence[FieldSource], dataset_name: str) -> None:
    """Write all trajectories and the layout into an open, empty HDF5 file."""
    reference: _Reference | None = None
    starts: list[float] = []
    provenance: list[dict[str, Any]] = []
    for index, source in enumerate(sources):
        with _opened(source, index) as ds:
            try:
                grid = check_fields(ds, require_time=True)
                if reference is None:
                    reference = _Reference(ds, grid)
                    _write_layout(file, reference, len(sources), dataset_name)
                else:
                    reference.check(ds, grid)
            except FieldError as exc:
                raise FieldError(f"trajectory {index} ({_describe(source)}): {exc}") from None
            _write_trajectory(file, ds, index)
            starts.append(float(ds["time"].values[0]))
            provenance.append({key: value for key, value in ds.attrs.items() if key not in _PHYSICS_KEYS})
    assert reference is not None
    _write_root_attrs(file, reference, starts, provenance)


@contextlib.contextmanager
def _opened(source: FieldSource, index: int) -> Iterator[xr.Dataset]:
    """Yield ``source`` as a Dataset, opening (and afterwards closing) a file path."""
    if isinstance(source, xr.Dataset):
        yield source
        return
    if not isinstance(source, (str, PathLike)):
        raise FieldError(f"trajectory {index} is a {type(source).__name__}; expected a field Dataset or a file path")
    ds = open_fields(source)
    try:
        yield ds
    finally:
        ds.close()


def _describe(source: FieldSource) -> str:
    return "a Dataset" if isinstance(source, xr.Dataset) else str(source)


def _dtype_text(dtypes: Mapping[str, np.dtype]) -> str:
    return ", ".join(f"{name}: {dtype}" for name, dtype in dtypes.items())


def _flags(obj: h5py.HLObject, *, sample: bool, time: bool) -> None:
    obj.attrs["sample_varying"] = sample
    obj.attrs["time_varying"] = time


def _names(values: Sequence[str]) -> np.ndarray:
    """A list of names as an HDF5 string-array attribute (also when empty)."""
    return np.array(list(values), dtype=h5py.string_dtype())


def _write_layout(file: h5py.File, ref: _Reference, n_traj: int, dataset_name: str) -> None:
    """Create the groups, coordinates, boundary conditions, scalars and empty field datasets."""
    grid, nt = ref.grid, ref.relative_times.size
    file.attrs["dataset_name"] = dataset_name
    file.attrs["grid_type"] = "cartesian"
    file.attrs["n_spatial_dims"] = 3
    file.attrs["n_trajectories"] = n_traj
    file.attrs["simulation_parameters"] = _names(["Re_tau"])
    file.attrs["Re_tau"] = ref.re_tau

    dims = file.create_group("dimensions")
    dims.attrs["spatial_dims"] = _names(_SPACE_DIMS)
    _flags(dims.create_dataset("time", data=ref.relative_times), sample=False, time=True)
    for name in _SPACE_DIMS:
        coordinate = dims.create_dataset(name, data=np.asarray(getattr(grid, name), dtype=np.float64))
        _flags(coordinate, sample=False, time=False)

    bcs = file.create_group("boundary_conditions")
    boundaries = (("x_periodic", "x", "PERIODIC"), ("z_periodic", "z", "PERIODIC"), ("y_wall", "y", "WALL"))
    for group_name, dim, bc_type in boundaries:
        bc = bcs.create_group(group_name)
        bc.attrs["associated_dims"] = _names([dim])
        bc.attrs["associated_fields"] = _names([])
        bc.attrs["bc_type"] = bc_type
        _flags(bc, sample=False, time=False)
        mask = np.zeros(getattr(grid, f"n{dim}"), dtype=bool)
        mask[[0, -1]] = True
        bc.create_dataset("mask", data=mask)

    scalars = file.create_group("scalars")
    scalars.attrs["field_names"] = _names(["Re_tau"])
    _flags(scalars.create_dataset("Re_tau", data=np.float64(ref.re_tau)), sample=False, time=False)

    has_p = "p" in ref.names
    velocity_dtype = np.result_type(*(ref.dtypes[name] for name in ("u", "v", "w")))
    specs = {
        "t0_fields": {"pressure": ((n_traj, nt) + grid.shape, ref.dtypes["p"])} if has_p else {},
        "t1_fields": {"velocity": ((n_traj, nt) + grid.shape + (3,), velocity_dtype)},
        "t2_fields": {},
    }
    for group_name, fields in specs.items():
        group = file.create_group(group_name)
        group.attrs["field_names"] = _names(list(fields))
        for name, (shape, dtype) in fields.items():
            dset = group.create_dataset(name, shape=shape, dtype=dtype, chunks=(1, 1) + shape[2:])
            dset.attrs["dim_varying"] = np.ones(3, dtype=bool)
            _flags(dset, sample=True, time=True)


def _write_trajectory(file: h5py.File, ds: xr.Dataset, index: int) -> None:
    """Copy one trajectory into the field datasets, one snapshot at a time."""
    velocity = file["t1_fields/velocity"]
    pressure = file["t0_fields/pressure"] if "pressure" in file["t0_fields"] else None
    for k in range(ds.sizes["time"]):
        velocity[index, k] = np.stack([np.asarray(ds[name][k].values) for name in ("u", "v", "w")], axis=-1)
        if pressure is not None:
            pressure[index, k] = np.asarray(ds["p"][k].values)


def _write_root_attrs(
    file: h5py.File, ref: _Reference, starts: list[float], provenance: list[dict[str, Any]]
) -> None:
    """The package's grid, physics, start times and provenance as extra root attributes."""
    for key, value in ref.grid.to_attrs().items():
        file.attrs[key] = value
    file.attrs.update({"re_tau": ref.re_tau, "nu": 1.0 / ref.re_tau, "lx": ref.grid.lx, "lz": ref.grid.lz})
    file.attrs[_TIME_START] = np.asarray(starts, dtype=np.float64)
    file.attrs[_TRAJECTORY_ATTRS] = json.dumps(provenance, default=_json_value)
    def text(value: Any) -> str:
        return json.dumps(value, default=_json_value)

    for key, value in provenance[0].items():
        if key not in _RESERVED_ROOT_KEYS and all(text(other.get(key)) == text(value) for other in provenance):
            file.attrs[key] = value


def _json_value(value: Any) -> Any:
    """JSON form of numpy attribute values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"attribute value of type {type(value).__name__} cannot be stored as JSON")


# ====================================================================== import


@overload
def import_the_well(path: str | PathLike[str], *, trajectory: None = None) -> list[xr.Dataset]: ...


@overload
def import_the_well(path: str | PathLike[str], *, trajectory: int) -> xr.Dataset: ...


def import_the_well(path: str | PathLike[str], *, trajectory: int | None = None) -> list[xr.Dataset] | xr.Dataset:
    """Read a the_well HDF5 file of channel-flow fields as field Datasets.

    Parameters
    ----------
    path
        A file written by :func:`export_the_well`, or by other tools in the_well's layout with
        spatial dims ``x, y, z`` on the package's grid (see the module docstring for how the grid
        is rebuilt when the ``grid_*`` attributes are absent).
    trajectory
        Read only this trajectory (``0 <= trajectory < n_trajectories``) and return its Dataset.

    Returns
    -------
    list of xarray.Dataset or xarray.Dataset
        One field Dataset per trajectory (dims ``(time, x, y, z)``, u, v, w and p if the file has
        ``t0_fields/pressure``, in the file's dtype), with the absolute times restored, ``re_tau``
        and the provenance attributes; the single Dataset if ``trajectory`` is given.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FieldError
        If a group, dataset or attribute is missing, the velocity or pressure has the wrong shape,
        the coordinates do not fit the package's channel grid or do not match the grid attributes,
        or the file is an unfinished ``.partial`` export; the message names the path.
    IndexError
        If ``trajectory`` is out of range.
    """
    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        raise FieldError(f"{path} is an unfinished export (still named {PARTIAL_SUFFIX}); export it again")
    if not path.is_file():
        raise FileNotFoundError(f"no the_well file at {str(path)!r}")
    with h5py.File(path, "r") as file:
        try:
            layout = _Layout(file, path)
        except FieldError as exc:
            raise FieldError(f"{path}: {exc}") from None
        if trajectory is None:
            return [layout.read(i) for i in range(layout.n_traj)]
        if not (isinstance(trajectory, (int, np.integer)) and 0 <= trajectory < layout.n_traj):
            raise IndexError(f"trajectory {trajectory!r} out of range: {path} has {layout.n_traj} trajectories")
        return layout.read(int(trajectory))


class _Layout:
    """The checked structure of an open the_well file: grid, times, re_tau, field datasets."""

    def __init__(self, file: h5py.File, path: Path) -> None:
        self.file, self.path = file, path
        dims = _require(file, "dimensions")
        spatial = [str(name) for name in dims.attrs.get("spatial_dims", _SPACE_DIMS)]
        if tuple(spatial) != _SPACE_DIMS:
            raise FieldError(f"dimensions@spatial_dims is {spatial}; expected {list(_SPACE_DIMS)} (a 3-D channel)")
        coords = {}
        for name in _SPACE_DIMS:
            values = _require(file, f"dimensions/{name}")[()]
            if np.ndim(values) != 1:
                raise FieldError(
                    f"dimensions/{name} has shape {np.shape(values)}; "
                    "expected 1-D coordinates (not sample- or time-varying)"
                )
            coords[name] = values
        self.velocity = _require(file, "t1_fields/velocity")
        shape = self.velocity.shape
        sizes = tuple(coords[name].size for name in _SPACE_DIMS)
        if len(shape) != 6 or shape[2:] != sizes + (3,):
            raise FieldError(
                f"t1_fields/velocity has shape {shape}; expected (n_trajectories, n_time, nx, ny, nz, 3) "
                f"= (B, T, {', '.join(map(str, sizes))}, 3) from the lengths of dimensions/x, y, z"
            )
        self.n_traj, n_time = shape[:2]
        declared = file.attrs.get("n_trajectories", self.n_traj)
        if int(declared) != self.n_traj:
            raise FieldError(f"@n_trajectories = {declared} but t1_fields/velocity holds {self.n_traj} trajectories")
        self.pressure = file["t0_fields/pressure"] if "t0_fields/pressure" in file else None
        if self.pressure is not None and self.pressure.shape != shape[:-1]:
            raise FieldError(
                f"t0_fields/pressure has shape {self.pressure.shape}; "
                f"expected {shape[:-1]}, the velocity's without its last axis"
            )
        self.times = self._times(_require(file, "dimensions/time")[()], n_time)
        self.grid = _grid(file.attrs, coords)
        self.re_tau = self._re_tau()
        self.attrs = self._attrs()

    def _times(self, time: np.ndarray, n_time: int) -> np.ndarray:
        """Absolute times, shape (n_traj, n_time), in h/u_tau."""
        time = np.asarray(time, dtype=np.float64)
        if time.shape not in ((n_time,), (self.n_traj, n_time)):
            raise FieldError(
                f"dimensions/time has shape {time.shape}; expected ({n_time},) or ({self.n_traj}, {n_time}) "
                "to match t1_fields/velocity"
            )
        start = np.asarray(self.file.attrs.get(_TIME_START, np.zeros(self.n_traj)), dtype=np.float64)
        if start.shape != (self.n_traj,):
            raise FieldError(
                f"@{_TIME_START} has shape {start.shape}; expected one start time per trajectory, ({self.n_traj},)"
            )
        return start[:, None] + np.broadcast_to(time, (self.n_traj, n_time))

    def _re_tau(self) -> np.ndarray:
        """The friction Reynolds number of each trajectory, shape (n_traj,)."""
        attrs = self.file.attrs
        if "re_tau" in attrs or "Re_tau" in attrs:
            value = np.asarray(attrs["re_tau"] if "re_tau" in attrs else attrs["Re_tau"], dtype=np.float64)
        elif "scalars/Re_tau" in self.file:
            value = np.asarray(self.file["scalars/Re_tau"][()], dtype=np.float64)
        else:
            raise FieldError(
                "no friction Reynolds number: expected a root attribute re_tau or Re_tau, or a dataset scalars/Re_tau"
            )
        if value.size == 1:
            return np.full(self.n_traj, float(value.reshape(())))
        if value.shape != (self.n_traj,):
            raise FieldError(
                f"Re_tau has shape {value.shape}; expected one value or one per trajectory, ({self.n_traj},)"
            )
        return value

    def _attrs(self) -> list[dict[str, Any]]:
        """Each trajectory's provenance attributes."""
        if _TRAJECTORY_ATTRS in self.file.attrs:
            stored = json.loads(self.file.attrs[_TRAJECTORY_ATTRS])
            if not (isinstance(stored, list) and len(stored) == self.n_traj):
                raise FieldError(f"@{_TRAJECTORY_ATTRS} does not hold one attribute set per trajectory ({self.n_traj})")
            return [{key: value for key, value in item.items() if key not in _PHYSICS_KEYS} for item in stored]
        name = str(self.file.attrs.get("dataset_name", ""))
        return [
            {"source": "the_well", "case": name, "the_well_file": self.path.name, "the_well_trajectory": i}
            for i in range(self.n_traj)
        ]

    def read(self, i: int) -> xr.Dataset:
        """Trajectory ``i`` as a checked field Dataset."""
        velocity = self.velocity[i]
        u, v, w = (np.ascontiguousarray(velocity[..., k]) for k in range(3))
        p = None if self.pressure is None else self.pressure[i]
        ds = make_fields(self.grid, u, v, w, p=p, re_tau=float(self.re_tau[i]), time=self.times[i], attrs=self.attrs[i])
        check_fields(ds, require_time=True)
        return ds


def _require(file: h5py.File, name: str) -> Any:
    """The group or dataset ``name``, or a :class:`FieldError` describing the layout."""
    if name not in file:
        raise FieldError(f"missing {name}; {_LAYOUT}")
    return file[name]


def _tolerance(values: np.ndarray) -> float:
    """How closely stored coordinates must match the grid, in h."""
    dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.dtype(np.float64)
    return max(_COORD_TOL, 4.0 * float(np.finfo(dtype).eps) * float(np.max(np.abs(values), initial=1.0)))


def _grid(attrs: Mapping[str, Any], coords: Mapping[str, np.ndarray]) -> ChannelGrid:
    """The grid from the ``grid_*`` attributes, else fitted to the coordinates; checked against them."""
    if all(key in attrs for key in _GRID_KEYS):
        try:
            grid = ChannelGrid.from_attrs(attrs)
        except (TypeError, ValueError) as exc:
            raise FieldError(f"the grid_* attributes describe no valid grid: {exc}") from None
        source = "the grid_* attributes"
    else:
        grid = ChannelGrid(
            coords["x"].size,
            coords["y"].size,
            coords["z"].size,
            lx=_periodic_length("x", coords["x"]),
            lz=_periodic_length("z", coords["z"]),
            stretching=_fit_stretching(coords["y"]),
        )
        source = "the fit to the coordinates"
    for name in _SPACE_DIMS:
        expected, actual = getattr(grid, name), np.asarray(coords[name], dtype=np.float64)
        if actual.shape != expected.shape:
            raise FieldError(
                f"dimensions/{name} has {actual.size} points but {source} give {grid!r} with {expected.size}"
            )
        error, tol = float(np.max(np.abs(actual - expected))), _tolerance(coords[name])
        if not error <= tol:
            raise FieldError(
                f"dimensions/{name} differs from the cell centres of {grid!r} (from {source}) by up to "
                f"{error:.3g} h; expected at most {tol:.3g} h"
            )
    return grid


def _periodic_length(name: str, values: np.ndarray) -> float:
    """Box length ``n * d`` of uniform periodic cell centres ``i * d``, i = 0 .. n-1, in h."""
    c = np.asarray(values, dtype=np.float64)
    n, tol = c.size, _tolerance(values)
    if n < 2:
        raise FieldError(
            f"dimensions/{name} has {n} point(s); "
            f"need at least 2 to infer the periodic length l{name} = n{name} * d{name}"
        )
    if abs(c[0]) > tol:
        raise FieldError(
            f"dimensions/{name} starts at {c[0]!r} h; expected uniform periodic cell centres {name} = i * d{name} "
            "starting at 0 (the package's grid), so shift the coordinates"
        )
    spacing = c[-1] / (n - 1)
    error = float(np.max(np.abs(c - np.arange(n) * spacing)))
    if not (spacing > 0 and error <= tol):
        raise FieldError(
            f"dimensions/{name} is not uniform: it deviates from i * d{name} (d{name} = {spacing!r} h) by up to "
            f"{error:.3g} h, expected at most {tol:.3g} h; a periodic direction needs uniform cell centres"
        )
    return n * spacing


def _fit_stretching(values: np.ndarray) -> float:
    """The tanh stretching whose first cell centre equals ``values[0]``, checked on all of ``values``."""
    y = np.asarray(values, dtype=np.float64)
    ny, tol = y.size, _tolerance(values)
    if ny < 2:
        raise FieldError(f"dimensions/y has {ny} point(s); the channel needs at least 2 cells between the walls")

    def first_centre_error(s: float) -> float:
        return float(ChannelGrid(1, ny, 1, stretching=s).y[0] - y[0])

    if first_centre_error(0.0) <= 0 or first_centre_error(_MAX_STRETCHING) >= 0:
        stretching = 0.0  # no root in range: the check below reports the misfit
    else:
        root = brentq(first_centre_error, 0.0, _MAX_STRETCHING, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
        stretching = float(root)
    error = float(np.max(np.abs(ChannelGrid(1, ny, 1, stretching=stretching).y - y)))
    if not error <= tol:
        raise FieldError(
            f"dimensions/y is not the package's wall-normal grid: expected {ny} cell centres between walls at "
            "y = 0 and y = 2 h, midpoints of faces 1 + tanh(s eta) / tanh(s), eta = -1 + 2 j / ny "
            f"(0 <= s <= {_MAX_STRETCHING:g}); the best fit s = {stretching:.10g} to the first centre misses "
            f"by up to {error:.3g} h, expected at most {tol:.3g} h"
        )
    return stretching
