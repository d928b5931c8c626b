"""Tests for the field Dataset: building, checking and netCDF I/O."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from surrogate.fields import FieldError, FieldWriter, check_fields, make_fields, open_fields, write_fields
from surrogate.grid import ChannelGrid

GRID = ChannelGrid(nx=4, ny=5, nz=3, stretching=1.5)
RE_TAU = 180.0


def random_fields(nt: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    shape = GRID.shape if nt is None else (nt,) + GRID.shape
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape) for name in ("u", "v", "w", "p")}


def snapshot(i: int) -> dict[str, np.ndarray]:
    """A reproducible snapshot number ``i``."""
    return random_fields(seed=100 + i)


@pytest.fixture
def ds() -> xr.Dataset:
    arrays = random_fields(nt=2)
    return make_fields(GRID, arrays["u"], arrays["v"], arrays["w"], p=arrays["p"], re_tau=RE_TAU,
                       time=[0.0, 0.5], attrs={"source": "test", "case": "tiny"})


# ---------------------------------------------------------------------- make / check


def test_make_fields_layout(ds):
    assert ds["u"].dims == ("time", "x", "y", "z")
    assert ds["u"].attrs == {"units": "u_tau", "long_name": "streamwise velocity"}
    assert ds["p"].attrs["units"] == "rho u_tau^2"
    assert ds["time"].attrs["units"] == "h/u_tau"
    np.testing.assert_allclose(ds["y"].values, GRID.y)
    assert ds.attrs["re_tau"] == RE_TAU and ds.attrs["nu"] == pytest.approx(1 / RE_TAU)
    assert ds.attrs["grid_ny"] == 5 and ds.attrs["lx"] == GRID.lx
    assert ds.attrs["source"] == "test" and ds.attrs["case"] == "tiny"
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert ds.attrs["surrogate_version"] == "0.1.0"
    assert check_fields(ds, require_pressure=True, require_time=True) == GRID


def test_single_snapshot_and_torch_input():
    torch = pytest.importorskip("torch")
    u = torch.ones(GRID.shape, dtype=torch.float32, requires_grad=True)
    one = make_fields(GRID, u, u * 2, u * 3, re_tau=RE_TAU, time=1.5)
    assert one["u"].dims == ("x", "y", "z") and one["u"].dtype == np.float32
    assert float(one["time"]) == 1.5 and "time" not in one.dims
    np.testing.assert_array_equal(one["w"].values, 3.0)
    assert check_fields(one) == GRID
    with pytest.raises(FieldError, match=r"expected \('time', 'x', 'y', 'z'\).*expand_dims"):
        check_fields(one, require_time=True)
    with pytest.raises(FieldError, match="missing variable"):
        check_fields(one, require_pressure=True)


def test_missing_variable_lists_missing_and_present(ds):
    with pytest.raises(FieldError) as info:
        check_fields(ds.drop_vars(["v", "w"]))
    message = str(info.value)
    assert "missing variable(s) v, w" in message
    assert "present: u, p" in message


def test_wrong_shape_names_variable_and_shapes():
    arrays = random_fields()
    bad_v = np.zeros((4, 5, 2))
    with pytest.raises(FieldError, match=r"v has shape \(4, 5, 2\); expected \(4, 5, 3\) = \(nx, ny, nz\)"):
        make_fields(GRID, arrays["u"], bad_v, arrays["w"], re_tau=RE_TAU)
    with pytest.raises(FieldError, match=r"expected \(3, 4, 5, 3\) = \(nt, nx, ny, nz\)"):
        make_fields(GRID, *(random_fields(nt=2)[n] for n in "uvw"), re_tau=RE_TAU, time=[0, 1, 2])


def test_coordinate_mismatch(ds):
    shifted = ds.assign_coords(y=ds["y"] + 1e-6)
    with pytest.raises(FieldError, match=r"coordinate y does not match the grid"):
        check_fields(shifted)
    other_grid = ds.assign_attrs(grid_stretching=0.0)
    with pytest.raises(FieldError, match=r"coordinate y"):
        check_fields(other_grid)


def test_dims_and_attrs_errors(ds):
    with pytest.raises(FieldError, match=r"u has dims \('time', 'y', 'x', 'z'\)"):
        check_fields(ds.transpose("time", "y", "x", "z"))
    with pytest.raises(FieldError, match="re_tau=.*nu=.*disagree"):
        check_fields(ds.assign_attrs(nu=1 / 190))
    no_grid = ds.copy()
    del no_grid.attrs["grid_nz"]
    with pytest.raises(FieldError, match="cannot rebuild the grid.*grid_nz"):
        check_fields(no_grid)


# ---------------------------------------------------------------------- files


def test_write_and_open_round_trip(ds, tmp_path):
    path = write_fields(ds, tmp_path / "fields.nc")
    assert path.exists() and not (tmp_path / "fields.nc.partial").exists()
    with open_fields(path) as back:
        xr.testing.assert_identical(back.load().drop_encoding(), ds)


def test_write_fields_is_atomic(ds, tmp_path, monkeypatch):
    path = tmp_path / "fields.nc"
    write_fields(ds, path)
    before = path.read_bytes()

    def failing_to_netcdf(self, target, *args, **kwargs):
        open(target, "wb").write(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", failing_to_netcdf)
    with pytest.raises(RuntimeError, match="disk full"):
        write_fields(ds.assign(u=ds["u"] + 1), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fields.nc"]


def test_open_fields_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.nc"):
        open_fields(tmp_path / "nothing.nc")
    bad = tmp_path / "bad.nc"
    xr.Dataset({"u": ("x", np.zeros(3))}).to_netcdf(bad)
    with pytest.raises(FieldError, match=r"bad\.nc.*missing variable"):
        open_fields(bad)


def _write_run(path, times, *, finalize=True, dtype="float64"):
    writer = FieldWriter(path, GRID, re_tau=RE_TAU, dtype=dtype, pressure=True, attrs={"case": "tiny"})
    for i, t in enumerate(times):
        fields = snapshot(i)
        writer.append(t, fields["u"], fields["v"], fields["w"], p=fields["p"])
    if finalize:
        writer.finalize()
    else:
        writer.close_partial()
    return writer


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_writer_round_trip(tmp_path, dtype):
    times = [0.0, 0.5, 1.0]
    path = tmp_path / "run.nc"
    _write_run(path, times, dtype=dtype)
    assert path.exists() and not (tmp_path / "run.nc.partial").exists()
    expected = make_fields(
        GRID,
        *(np.stack([snapshot(i)[n] for i in range(3)]).astype(dtype) for n in "uvw"),
        p=np.stack([snapshot(i)["p"] for i in range(3)]).astype(dtype),
        re_tau=RE_TAU,
        time=times,
    )
    with open_fields(path) as back:
        assert back.attrs["complete"] == 1 and back.attrs["case"] == "tiny"
        assert back["u"].dtype == np.dtype(dtype)
        for name in ("u", "v", "w", "p", "time", "x", "y", "z"):
            np.testing.assert_array_equal(back[name].values, expected[name].values)
            assert back[name].attrs == expected[name].attrs
        for key in ("re_tau", "nu", "grid_nx", "grid_stretching", "lx", "lz", "Conventions"):
            assert back.attrs[key] == expected.attrs[key]


def test_unfinished_writer_leaves_only_partial(tmp_path):
    path = tmp_path / "run.nc"
    with pytest.raises(RuntimeError, match="boom"):
        with FieldWriter(path, GRID, re_tau=RE_TAU) as writer:
            writer.append(0.0, *(snapshot(0)[n] for n in "uvw"))
            raise RuntimeError("boom")
    partial = tmp_path / "run.nc.partial"
    assert partial.exists() and not path.exists()
    with pytest.raises(FileNotFoundError, match=r"no field file.*run\.nc\.partial exists.*unfinished"):
        open_fields(path)
    with pytest.raises(FieldError, match=r"unfinished.*Resume"):
        open_fields(partial)
    with xr.open_dataset(partial, decode_times=False) as raw:
        assert raw.attrs["complete"] == 0 and raw.sizes["time"] == 1
    with pytest.raises(FileExistsError, match="resume"):
        FieldWriter(path, GRID, re_tau=RE_TAU)


def test_writer_rejects_bad_snapshots(tmp_path):
    with FieldWriter(tmp_path / "run.nc", GRID, re_tau=RE_TAU) as writer:
        fields = snapshot(0)
        writer.append(1.0, fields["u"], fields["v"], fields["w"])
        with pytest.raises(FieldError, match="later than"):
            writer.append(1.0, fields["u"], fields["v"], fields["w"])
        with pytest.raises(FieldError, match=r"w has shape \(4, 5\)"):
            writer.append(2.0, fields["u"], fields["v"], fields["w"][:, :, 0])
        with pytest.raises(FieldError, match="pressure=False"):
            writer.append(2.0, fields["u"], fields["v"], fields["w"], p=fields["p"])
    assert writer.n_snapshots == 1


def test_resume_drops_later_snapshots_and_matches_uninterrupted_run(tmp_path):
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    reference = tmp_path / "reference.nc"
    _write_run(reference, times)

    path = tmp_path / "run.nc"
    _write_run(path, times[:4], finalize=False)  # crashed after 4 snapshots
    writer = FieldWriter.resume(path, t_resume=0.5)  # last checkpoint at t = 0.5
    assert writer.n_snapshots == 2 and writer.last_time == 0.5
    with writer:
        for i in range(2, 5):
            fields = snapshot(i)
            writer.append(times[i], fields["u"], fields["v"], fields["w"], p=fields["p"])
    with open_fields(path) as resumed, open_fields(reference) as uninterrupted:
        assert resumed.attrs.pop("created") and uninterrupted.attrs.pop("created")
        xr.testing.assert_identical(resumed.load(), uninterrupted.load())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference.nc", "run.nc"]


def test_resume_without_dropping_and_missing_file(tmp_path):
    path = tmp_path / "run.nc"
    _write_run(path, [0.0, 1.0], finalize=False)
    with FieldWriter.resume(path, t_resume=5.0) as writer:
        assert writer.n_snapshots == 2
        fields = snapshot(2)
        writer.append(2.0, fields["u"], fields["v"], fields["w"], p=fields["p"])
    with open_fields(path) as back:
        np.testing.assert_array_equal(back["time"].values, [0.0, 1.0, 2.0])
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        FieldWriter.resume(tmp_path / "other.nc", 0.0)


def test_a_truncated_partial_file_is_named_on_resume(tmp_path):
    path = tmp_path / "run.nc"
    _write_run(path, [0.0, 1.0], finalize=False)
    partial = tmp_path / "run.nc.partial"
    partial.write_bytes(partial.read_bytes()[:1500])
    with pytest.raises(FieldError, match=r"run.nc.partial cannot be read .*damaged.*start over with --overwrite"):
        FieldWriter.resume(path, 1.0)


def test_crash_mid_snapshot_is_dropped_on_resume(tmp_path):
    netCDF4 = pytest.importorskip("netCDF4")
    path = tmp_path / "run.nc"
    _write_run(path, [0.0, 1.0], finalize=False)
    with netCDF4.Dataset(tmp_path / "run.nc.partial", "a") as nc:  # u of a third snapshot, no time
        nc.variables["u"][2, :, :, :] = np.ones(GRID.shape)
    with FieldWriter.resume(path, t_resume=10.0) as writer:
        assert writer.n_snapshots == 2
    with open_fields(path) as back:
        assert back.sizes["time"] == 2


def test_resume_extends_a_finished_run(tmp_path):
    path = tmp_path / "run.nc"
    _write_run(path, [0.0, 1.0])
    writer = FieldWriter.resume(path, t_resume=1.0)
    assert path.exists() and (tmp_path / "run.nc.partial").exists()
    with writer:
        fields = snapshot(2)
        writer.append(2.0, fields["u"], fields["v"], fields["w"], p=fields["p"])
    assert not (tmp_path / "run.nc.partial").exists()
    with open_fields(path) as back:
        np.testing.assert_array_equal(back["time"].values, [0.0, 1.0, 2.0])
        np.testing.assert_array_equal(back["u"].values[1], snapshot(1)["u"])
