"""Tests for export and import of field Datasets in the HDF5 layout of the_well (surrogate.data.the_well)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from surrogate.data.the_well import export_the_well, import_the_well
from surrogate.fields import FieldError, make_fields, write_fields
from surrogate.grid import ChannelGrid

GRID = ChannelGrid(8, 9, 6, stretching=1.5)
RE_TAU = 180.0
NT = 3


def trajectory(
    seed: int,
    *,
    grid: ChannelGrid = GRID,
    nt: int = NT,
    start: float = 2.0,
    pressure: bool = True,
    dtype: type = np.float64,
) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    u, v, w, p = rng.standard_normal((4, nt) + grid.shape).astype(dtype)
    time = start + 0.25 * np.arange(nt)  # binary-exact steps: times round trip exactly
    return make_fields(grid, u, v, w, p=p if pressure else None, re_tau=RE_TAU, time=time,
                       attrs={"source": "dns", "case": f"run{seed}"})


def assert_same(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name].values, b[name].values)
    for name in ("time", "x", "y", "z"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert a.attrs == b.attrs


@pytest.mark.parametrize("n_traj", [1, 3])
@pytest.mark.parametrize("pressure", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact(tmp_path: Path, n_traj: int, pressure: bool, dtype: type) -> None:
    originals = [trajectory(i, start=2.0 + 10.5 * i, pressure=pressure, dtype=dtype) for i in range(n_traj)]
    source = originals[0] if n_traj == 1 else originals
    path = export_the_well(source, tmp_path / "channel.hdf5")
    assert path == tmp_path / "channel.hdf5" and path.is_file()
    imported = import_the_well(path)
    assert len(imported) == n_traj
    for original, back in zip(originals, imported):
        assert_same(original, back)
        assert back.attrs["re_tau"] == RE_TAU
    assert_same(import_the_well(path, trajectory=n_traj - 1), originals[-1])


def test_round_trip_from_netcdf_paths(tmp_path: Path) -> None:
    originals = [trajectory(i, start=1.0 + i) for i in range(2)]
    paths = [write_fields(ds, tmp_path / f"traj{i}.nc") for i, ds in enumerate(originals)]
    imported = import_the_well(export_the_well(paths, tmp_path / "channel.hdf5"))
    for original, back in zip(originals, imported):
        np.testing.assert_array_equal(original["u"].values, back["u"].values)
        np.testing.assert_array_equal(original["time"].values, back["time"].values)
        assert back.attrs["case"] == original.attrs["case"]


def test_times_with_decimal_steps_round_trip_to_rounding(tmp_path: Path) -> None:
    ds = trajectory(0).assign_coords(time=("time", 100.1 + 0.1 * np.arange(NT), {"units": "h/u_tau"}))
    back = import_the_well(export_the_well(ds, tmp_path / "c.hdf5"), trajectory=0)
    np.testing.assert_allclose(back["time"].values, ds["time"].values, rtol=1e-15, atol=0)


def test_written_layout_follows_the_well(tmp_path: Path) -> None:
    originals = [trajectory(i, start=5.0 * i) for i in range(2)]
    path = export_the_well(originals, tmp_path / "channel.hdf5", dataset_name="my_channel")
    nx, ny, nz = GRID.shape
    with h5py.File(path, "r") as f:
        assert set(f) == {"dimensions", "boundary_conditions", "scalars", "t0_fields", "t1_fields", "t2_fields"}
        assert f.attrs["dataset_name"] == "my_channel"
        assert f.attrs["grid_type"] == "cartesian"
        assert f.attrs["n_spatial_dims"] == 3 and f.attrs["n_trajectories"] == 2
        assert list(f.attrs["simulation_parameters"]) == ["Re_tau"] and f.attrs["Re_tau"] == RE_TAU

        dims = f["dimensions"]
        assert list(dims.attrs["spatial_dims"]) == ["x", "y", "z"]
        np.testing.assert_array_equal(dims["time"][()], [0.0, 0.25, 0.5])
        np.testing.assert_array_equal(f.attrs["time_start"], [0.0, 5.0])
        assert not dims["time"].attrs["sample_varying"] and dims["time"].attrs["time_varying"]
        for name in ("x", "y", "z"):
            np.testing.assert_array_equal(dims[name][()], getattr(GRID, name))
            assert not dims[name].attrs["sample_varying"] and not dims[name].attrs["time_varying"]

        bcs = f["boundary_conditions"]
        assert set(bcs) == {"x_periodic", "y_wall", "z_periodic"}
        for name, dim, kind, n in (("x_periodic", "x", "PERIODIC", nx), ("z_periodic", "z", "PERIODIC", nz),
                                   ("y_wall", "y", "WALL", ny)):
            bc = bcs[name]
            assert bc.attrs["bc_type"] == kind and list(bc.attrs["associated_dims"]) == [dim]
            assert not bc.attrs["sample_varying"] and not bc.attrs["time_varying"]
            mask = bc["mask"][()]
            assert mask.dtype == bool and mask.shape == (n,)
            assert mask[0] and mask[-1] and not mask[1:-1].any()

        assert list(f["scalars"].attrs["field_names"]) == ["Re_tau"]
        assert f["scalars/Re_tau"].shape == () and f["scalars/Re_tau"][()] == RE_TAU
        assert list(f["t0_fields"].attrs["field_names"]) == ["pressure"]
        assert list(f["t1_fields"].attrs["field_names"]) == ["velocity"]
        assert list(f["t2_fields"].attrs["field_names"]) == [] and len(f["t2_fields"]) == 0

        velocity = f["t1_fields/velocity"]
        assert velocity.shape == (2, NT, nx, ny, nz, 3)
        for k, name in enumerate(("u", "v", "w")):
            np.testing.assert_array_equal(velocity[1, ..., k], originals[1][name].values)
        np.testing.assert_array_equal(f["t0_fields/pressure"][0], originals[0]["p"].values)
        for field in (velocity, f["t0_fields/pressure"]):
            assert list(field.attrs["dim_varying"]) == [True, True, True]
            assert field.attrs["sample_varying"] and field.attrs["time_varying"]

        assert f.attrs["grid_stretching"] == 1.5 and f.attrs["grid_ny"] == 9 and f.attrs["re_tau"] == RE_TAU
        assert f.attrs["source"] == "dns"  # shared provenance as a root attribute
        assert "case" not in f.attrs  # differs between trajectories: only in trajectory_attrs


def test_file_without_grid_attrs_recovers_the_grid(tmp_path: Path) -> None:
    ds = trajectory(0)
    path = export_the_well(ds, tmp_path / "c.hdf5")
    with h5py.File(path, "r+") as f:
        ours = [key for key in f.attrs if key.startswith("grid_")] + ["re_tau", "nu", "lx", "lz", "trajectory_attrs"]
        for key in ours:
            del f.attrs[key]
    back = import_the_well(path, trajectory=0)
    assert abs(back.attrs["grid_stretching"] - GRID.stretching) < 1e-8
    assert back.attrs["grid_lx"] == pytest.approx(GRID.lx, rel=1e-14)
    assert back.attrs["grid_lz"] == pytest.approx(GRID.lz, rel=1e-14)
    assert back.attrs["re_tau"] == RE_TAU  # from the the_well attribute Re_tau
    np.testing.assert_allclose(back["y"].values, GRID.y, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(back["u"].values, ds["u"].values)
    assert back.attrs["source"] == "the_well"


def test_file_with_float32_coordinates_and_no_grid_attrs(tmp_path: Path) -> None:
    path = export_the_well(trajectory(0), tmp_path / "c.hdf5")
    with h5py.File(path, "r+") as f:
        for key in [key for key in f.attrs if key.startswith("grid_")]:
            del f.attrs[key]
        for name in ("x", "y", "z"):
            values = f[f"dimensions/{name}"][()].astype(np.float32)
            del f[f"dimensions/{name}"]
            f["dimensions"].create_dataset(name, data=values)
    back = import_the_well(path, trajectory=0)
    assert abs(back.attrs["grid_stretching"] - GRID.stretching) < 1e-5


def test_y_that_is_not_a_tanh_grid_is_refused(tmp_path: Path) -> None:
    path = export_the_well(trajectory(0), tmp_path / "c.hdf5")
    with h5py.File(path, "r+") as f:
        for key in [key for key in f.attrs if key.startswith("grid_")]:
            del f.attrs[key]
        f["dimensions/y"][4] += 1e-3
    with pytest.raises(FieldError, match=r"dimensions/y is not the package's wall-normal grid.*tanh"):
        import_the_well(path)


def test_x_not_starting_at_zero_is_refused(tmp_path: Path) -> None:
    path = export_the_well(trajectory(0), tmp_path / "c.hdf5")
    with h5py.File(path, "r+") as f:
        for key in [key for key in f.attrs if key.startswith("grid_")]:
            del f.attrs[key]
        f["dimensions/x"][:] += 0.5 * GRID.dx
    with pytest.raises(FieldError, match=r"dimensions/x starts at .* starting at 0"):
        import_the_well(path)


@pytest.mark.parametrize(
    "second, message",
    [
        (trajectory(1, grid=ChannelGrid(8, 9, 6, stretching=1.0)), r"trajectory 1 .*all must share one grid"),
        (trajectory(1, nt=NT + 1), r"trajectory 1 .*4 snapshots but trajectory 0 has 3"),
        (trajectory(1, pressure=False), r"trajectory 1 .*variables"),
        (trajectory(1, dtype=np.float32), r"trajectory 1 .*dtypes"),
    ],
)
def test_mismatched_trajectories_are_refused_and_leave_no_file(
    tmp_path: Path, second: xr.Dataset, message: str
) -> None:
    target = tmp_path / "c.hdf5"
    with pytest.raises(FieldError, match=message):
        export_the_well([trajectory(0), second], target)
    assert not target.exists()
    assert not (tmp_path / "c.hdf5.partial").exists()


def test_different_relative_times_are_refused(tmp_path: Path) -> None:
    second = trajectory(1).assign_coords(time=("time", [0.0, 0.3, 0.5], {"units": "h/u_tau"}))
    with pytest.raises(FieldError, match="same relative times"):
        export_the_well([trajectory(0), second], tmp_path / "c.hdf5")


def test_failed_export_keeps_the_previous_file(tmp_path: Path) -> None:
    target = export_the_well(trajectory(0), tmp_path / "c.hdf5")
    with pytest.raises(FileExistsError):
        export_the_well(trajectory(0), target)
    with pytest.raises(FieldError):
        export_the_well([trajectory(0), trajectory(1, nt=2)], target, overwrite=True)
    assert len(import_the_well(target)) == 1  # still the complete earlier file


def test_missing_velocity_is_named(tmp_path: Path) -> None:
    path = export_the_well(trajectory(0), tmp_path / "c.hdf5")
    with h5py.File(path, "r+") as f:
        del f["t1_fields/velocity"]
    with pytest.raises(FieldError, match=r"missing t1_fields/velocity.*velocity of shape"):
        import_the_well(path)


def test_wrong_velocity_shape_is_refused(tmp_path: Path) -> None:
    path = export_the_well(trajectory(0), tmp_path / "c.hdf5")
    with h5py.File(path, "r+") as f:
        del f["t1_fields/velocity"]
        f["t1_fields"].create_dataset("velocity", data=np.zeros((1, NT, 8, 9, 6, 2)))
    with pytest.raises(FieldError, match=r"t1_fields/velocity has shape \(1, 3, 8, 9, 6, 2\)"):
        import_the_well(path)


def test_coordinates_not_matching_the_grid_attrs_are_refused(tmp_path: Path) -> None:
    path = export_the_well(trajectory(0), tmp_path / "c.hdf5")
    with h5py.File(path, "r+") as f:
        f.attrs["grid_nz"] = 7
    with pytest.raises(FieldError, match=r"dimensions/z has 6 points"):
        import_the_well(path)


def test_trajectory_index_out_of_range(tmp_path: Path) -> None:
    path = export_the_well(trajectory(0), tmp_path / "c.hdf5")
    with pytest.raises(IndexError, match="1 trajectories"):
        import_the_well(path, trajectory=1)
