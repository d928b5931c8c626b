"""Mean/rms profiles, friction velocity and wall units on analytic fields."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from surrogate.grid import ChannelGrid
from surrogate.stats import (
    fold_profiles,
    friction_velocity,
    mean_profiles,
    re_tau_measured,
    wall_shear_rate,
    wall_units,
)

RE_TAU = 180.0


def make_dataset(
    grid: ChannelGrid,
    u: np.ndarray,
    v: np.ndarray | None = None,
    w: np.ndarray | None = None,
    *,
    ntime: int | None = None,
    re_tau: float = RE_TAU,
) -> xr.Dataset:
    """Field Dataset from (x, y, z) arrays; repeated over ``ntime`` snapshots if given."""
    zeros = np.zeros(grid.shape)
    arrays = {"u": u, "v": zeros if v is None else v, "w": zeros if w is None else w}
    coords = grid.coords()
    dims: tuple[str, ...] = ("x", "y", "z")
    if ntime is not None:
        arrays = {k: np.broadcast_to(a, (ntime, *grid.shape)) for k, a in arrays.items()}
        coords["time"] = xr.DataArray(np.arange(ntime, dtype=float), dims=("time",))
        dims = ("time", *dims)
    data = {k: (dims, np.asarray(a, dtype=float)) for k, a in arrays.items()}
    return xr.Dataset(data, coords=coords, attrs={"re_tau": re_tau, "nu": 1.0 / re_tau})


def mesh(grid: ChannelGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.meshgrid(grid.x, grid.y, grid.z, indexing="ij")


def laminar(y: np.ndarray, re_tau: float = RE_TAU) -> np.ndarray:
    """Laminar profile with wall shear nu dU/dy = 1 (u_tau = 1): U = (Re_tau / 2) y (2 - y)."""
    return 0.5 * re_tau * y * (2.0 - y)


@pytest.mark.parametrize("ny", [8, 9])
@pytest.mark.parametrize("stretching", [0.0, 2.0])
def test_laminar_profile(ny: int, stretching: float) -> None:
    grid = ChannelGrid(nx=4, ny=ny, nz=3, stretching=stretching)
    _, y, _ = mesh(grid)
    ds = make_dataset(grid, laminar(y))
    assert friction_velocity(ds) == pytest.approx(1.0, rel=1e-12)
    assert re_tau_measured(ds) == pytest.approx(RE_TAU, rel=1e-12)
    lower, upper = wall_shear_rate(ds)
    assert lower == pytest.approx(RE_TAU, rel=1e-12) and upper == pytest.approx(RE_TAU, rel=1e-12)
    # first order underestimates by U'' d1 / 2 relative to the slope: (d1 / 2) / 1 relative
    d1 = grid.y[0]
    assert friction_velocity(ds, order=1) == pytest.approx(np.sqrt(1.0 - d1 / 2.0), rel=1e-12)

    prof = mean_profiles(ds)
    nh = (ny + 1) // 2
    assert prof.sizes["y"] == nh
    np.testing.assert_allclose(prof["y"], grid.y[:nh], atol=1e-14)
    np.testing.assert_allclose(prof["U"], laminar(grid.y[:nh]), rtol=1e-12)
    for name in ("V", "W", "u_rms", "v_rms", "w_rms", "uv"):
        np.testing.assert_allclose(prof[name], 0.0, atol=1e-12)
    assert prof.attrs["folded"] == 1 and prof.attrs["re_tau"] == RE_TAU


def test_nominal_scaling_of_re_tau() -> None:
    # the same flow at twice the friction velocity: U doubles, nu fixed -> tau quadruples
    grid = ChannelGrid(nx=2, ny=10, nz=2, stretching=1.5)
    _, y, _ = mesh(grid)
    ds = make_dataset(grid, 4.0 * laminar(y))  # tau_w = 4 nu dU/dy|laminar = 4
    assert friction_velocity(ds) == pytest.approx(2.0, rel=1e-12)
    assert re_tau_measured(ds) == pytest.approx(2.0 * RE_TAU, rel=1e-12)


@pytest.mark.parametrize("ny", [6, 7])
def test_rms_of_a_travelling_wave(ny: int) -> None:
    grid = ChannelGrid(nx=16, ny=ny, nz=4, stretching=1.0)
    x, y, z = mesh(grid)
    amp = 0.3
    ds = make_dataset(grid, laminar(y) + amp * np.sin(2 * np.pi * x / grid.lx), ntime=3)
    prof = mean_profiles(ds)
    np.testing.assert_allclose(prof["u_rms"], amp / np.sqrt(2.0), rtol=1e-12)
    np.testing.assert_allclose(prof["U"], laminar(prof["y"].values), rtol=1e-12)
    np.testing.assert_allclose(prof["v_rms"], 0.0, atol=1e-14)
    assert "time" in prof.attrs["averaged_over"]


def test_reynolds_stress_and_fold_signs() -> None:
    grid = ChannelGrid(nx=16, ny=10, nz=8, stretching=2.0)
    x, y, z = mesh(grid)
    k = 2 * np.pi / grid.lx
    s = np.sin(k * x)
    a = np.sin(np.pi * y / 2.0)  # even about y = 1
    b = np.sin(np.pi * y)  # odd about y = 1
    # u' = a s, v' = -b s: <u'v'> = -a b / 2, negative near the lower wall, odd about y = 1
    ds = make_dataset(grid, laminar(y) + a * s, -b * s, 0.1 * np.cos(2 * np.pi * z / grid.lz))
    prof = mean_profiles(ds, fold=False)
    assert prof.attrs["folded"] == 0 and prof.sizes["y"] == grid.ny
    expected_uv = -0.5 * np.sin(np.pi * grid.y / 2) * np.sin(np.pi * grid.y)
    np.testing.assert_allclose(prof["uv"], expected_uv, atol=1e-13)
    np.testing.assert_allclose(prof["w_rms"], 0.1 / np.sqrt(2.0), rtol=1e-12)
    folded = fold_profiles(prof)
    nh = grid.ny // 2
    np.testing.assert_allclose(folded["uv"], expected_uv[:nh], atol=1e-13)
    assert np.all(folded["uv"] < 0)
    np.testing.assert_allclose(folded["v_rms"], np.abs(np.sin(np.pi * grid.y[:nh])) / np.sqrt(2), rtol=1e-12)
    xr.testing.assert_allclose(folded, mean_profiles(ds))


def test_fold_odd_ny_centre_cell() -> None:
    grid = ChannelGrid(nx=8, ny=7, nz=2)
    y = grid.y
    mean_v = 0.01 * (y - 1.0)  # odd: V(2 - y) = -V(y)
    uv = np.cos(y)  # neither: fold keeps the odd part, (uv(y) - uv(2 - y)) / 2
    prof = xr.Dataset(
        {"U": ("y", y * (2 - y)), "V": ("y", mean_v), "uv": ("y", uv)},
        coords={"y": y},
    )
    folded = fold_profiles(prof)
    assert folded.sizes["y"] == 4 and folded["y"].values[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(folded["V"], mean_v[:4], atol=1e-15)
    np.testing.assert_allclose(folded["uv"], 0.5 * (uv[:4] - uv[::-1][:4]), atol=1e-15)
    assert folded["uv"].values[-1] == 0.0
    np.testing.assert_allclose(folded["U"], (y * (2 - y))[:4], rtol=1e-14)


def test_fold_rejects_asymmetric_grid() -> None:
    y = np.array([0.1, 0.5, 1.2, 1.9])
    prof = xr.Dataset({"U": ("y", y)}, coords={"y": y})
    with pytest.raises(ValueError, match="symmetric"):
        fold_profiles(prof)


def test_wall_units() -> None:
    grid = ChannelGrid(nx=4, ny=12, nz=2, stretching=1.0)
    x, y, _ = mesh(grid)
    ds = make_dataset(grid, 4.0 * laminar(y) + np.sin(2 * np.pi * x / grid.lx), np.sin(2 * np.pi * x / grid.lx))
    u_tau = friction_velocity(ds)
    nu = ds.attrs["nu"]
    prof = mean_profiles(ds)
    plus = wall_units(prof, u_tau, nu)
    np.testing.assert_allclose(plus["y_plus"], prof["y"] * u_tau / nu)
    np.testing.assert_allclose(plus["U"], prof["U"] / u_tau)
    np.testing.assert_allclose(plus["u_rms"], prof["u_rms"] / u_tau)
    np.testing.assert_allclose(plus["uv"], prof["uv"] / u_tau**2)
    assert plus.attrs["u_tau"] == u_tau
    # viscous sublayer of a laminar profile in wall units: U+ ~ y+ near the wall
    assert float(plus["U"][0]) == pytest.approx(float(plus["y_plus"][0]), rel=grid.y[0])
    unfolded = wall_units(mean_profiles(ds, fold=False), u_tau, nu)
    np.testing.assert_allclose(unfolded["y_plus"], grid.wall_distance() * u_tau / nu)


def test_missing_variables_and_attrs() -> None:
    grid = ChannelGrid(nx=2, ny=4, nz=2)
    ds = make_dataset(grid, np.ones(grid.shape))
    with pytest.raises(KeyError, match="w"):
        mean_profiles(ds.drop_vars("w"))
    ds.attrs = {}
    with pytest.raises(KeyError, match="nu"):
        friction_velocity(ds)


def test_lazy_dataset() -> None:
    pytest.importorskip("dask")
    grid = ChannelGrid(nx=8, ny=6, nz=4)
    x, y, _ = mesh(grid)
    ds = make_dataset(grid, laminar(y) + np.sin(2 * np.pi * x / grid.lx), ntime=4).chunk({"time": 1})
    prof = mean_profiles(ds)
    assert prof["u_rms"].chunks is not None
    np.testing.assert_allclose(prof["u_rms"].compute(), 1 / np.sqrt(2), rtol=1e-12)
    assert friction_velocity(ds) == pytest.approx(1.0, rel=1e-12)
