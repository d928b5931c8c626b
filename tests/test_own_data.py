"""A user's own Dataset: coordinates are the contract, attributes a convenience."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import surrogate as sg
from surrogate.cli import main
from surrogate.fields import FieldError, check_fields, grid_of
from surrogate.filtering import filter_to_grid
from surrogate.grid import ChannelGrid

GRID = ChannelGrid(8, 13, 6, lx=2 * math.pi, lz=math.pi, stretching=1.8)
RE_TAU = 180.0


def own_dataset(grid: ChannelGrid = GRID, **attrs) -> xr.Dataset:
    """Velocities on ``grid`` built with plain xarray: a laminar-like mean and random fluctuations."""
    rng = np.random.default_rng(3)
    times = np.arange(3.0)
    shape = (times.size, *grid.shape)
    mean = 15.0 * grid.y * (2.0 - grid.y)
    wall = (grid.y * (2.0 - grid.y))[None, None, :, None]
    u = mean[None, None, :, None] + wall * rng.normal(size=shape)
    v, w = (wall * rng.normal(size=shape) for _ in range(2))
    dims = ("time", "x", "y", "z")
    return xr.Dataset(
        {"u": (dims, u), "v": (dims, v), "w": (dims, w)},
        coords={"time": times, "x": grid.x, "y": grid.y, "z": grid.z},
        attrs=attrs,
    )


@pytest.mark.parametrize(
    "grid",
    [GRID, ChannelGrid(4, 5, 3), ChannelGrid(32, 65, 32, lx=4 * math.pi, lz=4 * math.pi / 3, stretching=2.5)],
)
def test_the_grid_follows_from_the_cell_centres(grid: ChannelGrid) -> None:
    rebuilt = ChannelGrid.from_coords(grid.x, grid.y, grid.z)
    assert rebuilt.shape == grid.shape
    assert rebuilt.lx == pytest.approx(grid.lx, rel=1e-14) and rebuilt.lz == pytest.approx(grid.lz, rel=1e-14)
    assert rebuilt.stretching == pytest.approx(grid.stretching, abs=1e-12)
    np.testing.assert_allclose(rebuilt.y_faces, grid.y_faces, atol=1e-13)


def test_coordinates_of_no_channel_grid_are_named() -> None:
    with pytest.raises(ValueError, match="coordinate x is not uniform"):
        ChannelGrid.from_coords(GRID.x ** 1.1, GRID.y, GRID.z)
    with pytest.raises(ValueError, match="coordinate z is not uniform cell centres from 0"):
        ChannelGrid.from_coords(GRID.x, GRID.y, GRID.z + 0.1)
    with pytest.raises(ValueError, match="walls at y = 0 and y = 2"):
        ChannelGrid.from_coords(GRID.x, GRID.y * 0.9, GRID.z)
    cosine = 1.0 - np.cos(np.pi * (np.arange(GRID.ny) + 0.5) / GRID.ny)  # centres of no tanh grid
    faces = np.concatenate([[0.0], 0.5 * (cosine[1:] + cosine[:-1]), [2.0]])
    with pytest.raises(ValueError, match="not the cell centres of a tanh-stretched channel grid"):
        ChannelGrid.from_coords(GRID.x, 0.5 * (faces[1:] + faces[:-1]), GRID.z)


def test_a_dataset_without_grid_attributes_is_checked_by_its_coordinates() -> None:
    ds = own_dataset(re_tau=RE_TAU)
    grid = check_fields(ds, require_time=True)
    assert grid.shape == GRID.shape and grid.stretching == pytest.approx(GRID.stretching, abs=1e-12)
    assert grid_of(own_dataset(nu=1 / RE_TAU)).shape == GRID.shape
    with pytest.raises(FieldError, match=r"attribute re_tau \(or nu = 1 / re_tau\) missing.*assign_attrs"):
        check_fields(own_dataset())
    with pytest.raises(FieldError, match="cannot rebuild the grid from the coordinates: coordinate y"):
        check_fields(own_dataset(re_tau=RE_TAU).assign_coords(y=GRID.y + 0.01))


def test_statistics_of_an_own_dataset_are_those_of_the_same_fields_with_attributes() -> None:
    own = own_dataset(re_tau=RE_TAU)
    written = sg.make_fields(GRID, own["u"].values, own["v"].values, own["w"].values, re_tau=RE_TAU, time=own["time"].values)
    xr.testing.assert_allclose(own.channel.stats(), written.channel.stats())
    assert own.channel.re_tau() == pytest.approx(written.channel.re_tau(), rel=1e-12)
    coarse = ChannelGrid(4, 13, 3, lx=GRID.lx, lz=GRID.lz, stretching=GRID.stretching)
    filtered = filter_to_grid(own_dataset(nu=1 / RE_TAU), coarse)
    np.testing.assert_allclose(filtered["u"].values, filter_to_grid(written, coarse)["u"].values, rtol=1e-12)
    assert filtered.attrs["re_tau"] == pytest.approx(RE_TAU)


def test_the_solver_takes_an_own_dataset_without_any_attribute() -> None:
    solver = sg.ChannelSolver(GRID, RE_TAU, dtype=__import__("torch").float64)
    own = own_dataset()
    state = solver.from_dataset(own)
    written = sg.make_fields(GRID, own["u"].values, own["v"].values, own["w"].values, re_tau=RE_TAU, time=own["time"].values)
    reference = solver.from_dataset(written)
    for name in ("u", "v", "w"):
        assert getattr(state, name).equal(getattr(reference, name))
    assert state.time == 2.0
    other = ChannelGrid(8, 13, 6, lx=2 * math.pi, lz=math.pi, stretching=1.0)
    with pytest.raises(FieldError, match="coordinate y does not match the solver's grid"):
        solver.from_dataset(own_dataset(other))


def test_surrogate_validate_reads_an_own_netcdf_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.nc"
    own_dataset(re_tau=RE_TAU).to_netcdf(path)
    assert main(["validate", str(path), "--reference", "mkm180"]) == 0
    assert "mine" in capsys.readouterr().out
    own_dataset().to_netcdf(tmp_path / "bare.nc")
    assert main(["validate", str(tmp_path / "bare.nc"), "--reference", "mkm180"]) == 2
    assert "re_tau" in capsys.readouterr().err


def test_t_start_past_the_one_snapshot_of_a_dataset_is_refused() -> None:
    from surrogate.evaluation import ValidationError, time_window

    one = own_dataset(re_tau=RE_TAU).isel(time=-1)  # a scalar time coordinate, t = 2
    assert time_window(one, 1.5) is one
    with pytest.raises(ValidationError, match=r"its one snapshot is at t = 2 h/u_tau, before --t-start 5"):
        time_window(one, 5.0)
