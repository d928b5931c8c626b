"""Mean/rms profiles, friction velocity, wall units, spectra, PDFs and stresses on analytic fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from surrogate.grid import ChannelGrid
from surrogate.stats import (
    energy_spectra,
    fold_profiles,
    friction_velocity,
    higher_moments,
    mean_profiles,
    re_tau_measured,
    total_stress,
    velocity_pdfs,
    vorticity,
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


# ---------------------------------------------------------------------- energy spectra


def folded_planes(grid: ChannelGrid, values: np.ndarray) -> np.ndarray:
    """Average of a per-plane quantity (last axis ``y``) over each lower-half plane and its mirror."""
    nh = (grid.ny + 1) // 2
    return 0.5 * (values[..., :nh] + values[..., ::-1][..., :nh])


@pytest.mark.parametrize("nx", [16, 15])
def test_spectrum_of_a_single_mode(nx: int) -> None:
    grid = ChannelGrid(nx=nx, ny=9, nz=6, stretching=1.5)
    x, y, z = mesh(grid)
    amp, n0 = 0.7, 3
    k0 = 2 * np.pi * n0 / grid.lx
    f = 1.0 + y  # not symmetric: the fold averages the lower plane with its mirror
    ds = make_dataset(grid, laminar(y) + amp * np.cos(k0 * x) * f, ntime=2)
    spectra = energy_spectra(ds)
    dk_x, dk_z = 2 * np.pi / grid.lx, 2 * np.pi / grid.lz
    variance = folded_planes(grid, amp**2 * (1.0 + grid.y) ** 2 / 2)  # <u'^2> = A^2 f^2 / 2
    e_kx = spectra["E_uu_kx"]
    assert e_kx.dims == ("k_x", "y") and e_kx.sizes["k_x"] == nx // 2 + 1
    np.testing.assert_allclose(spectra["k_x"], dk_x * np.arange(nx // 2 + 1), rtol=1e-14)
    np.testing.assert_allclose(e_kx.sel(k_x=k0, method="nearest") * dk_x, variance, rtol=1e-12)
    np.testing.assert_allclose(e_kx.drop_sel(k_x=e_kx["k_x"].values[n0]), 0.0, atol=1e-12)
    # uniform in z: all the energy is at k_z = 0
    np.testing.assert_allclose(spectra["E_uu_kz"].isel(k_z=0) * dk_z, variance, rtol=1e-12)
    np.testing.assert_allclose(spectra["E_uu_kz"].isel(k_z=slice(1, None)), 0.0, atol=1e-12)
    for name in ("E_vv_kx", "E_ww_kx", "E_vv_kz", "E_ww_kz"):
        np.testing.assert_allclose(spectra[name], 0.0, atol=1e-14)
    np.testing.assert_allclose(spectra["y"], grid.y[:5], atol=1e-14)
    np.testing.assert_allclose(spectra["y_plus"], grid.y[:5] * RE_TAU, rtol=1e-14)


def random_dataset(grid: ChannelGrid, ntime: int, seed: int = 0, dist: str = "normal") -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (ntime, *grid.shape)
    fields = [getattr(rng, dist)(size=shape) for _ in range(3)]
    ds = make_dataset(grid, *[np.zeros(grid.shape)] * 3, ntime=ntime)
    for name, value in zip("uvw", fields):
        ds[name] = (("time", "x", "y", "z"), value)
    return ds


def test_spectra_parseval_and_premultiplied() -> None:
    grid = ChannelGrid(nx=12, ny=6, nz=7, stretching=2.0)
    ds = random_dataset(grid, ntime=3)
    spectra = energy_spectra(ds)
    pre = energy_spectra(ds, premultiplied=True)
    for name in "uvw":
        fluct = ds[name].values - ds[name].values.mean(axis=(0, 1, 3), keepdims=True)
        variance = folded_planes(grid, (fluct**2).mean(axis=(0, 1, 3)))
        for k, var in (("k_x", f"E_{name}{name}_kx"), ("k_z", f"E_{name}{name}_kz")):
            e = spectra[var]
            np.testing.assert_allclose((e * spectra.attrs[f"d{k}"]).sum(k), variance, rtol=1e-12)
            np.testing.assert_allclose(pre[var], e * e[k], rtol=1e-14)
    assert pre.attrs["premultiplied"] == 1 and pre["E_uu_kx"].attrs["units"] == "u_tau^2"


def test_spectra_plane_selection() -> None:
    grid = ChannelGrid(nx=8, ny=10, nz=4, stretching=2.0)
    ds = random_dataset(grid, ntime=1)
    everything = energy_spectra(ds)
    # y = 1.95 is the mirror of the first cell centre region; y = 0.9 the fifth centre
    some = energy_spectra(ds, y=[2.0 - grid.y[0] + 1e-3, grid.y[4], grid.y[4] - 1e-3])
    np.testing.assert_allclose(some["y"], grid.y[[0, 4]], atol=1e-14)
    xr.testing.assert_allclose(some, everything.isel(y=[0, 4]))
    by_plus = energy_spectra(ds, y_plus=grid.y[1] * RE_TAU * 0.5 + 0.1, u_tau=0.5)  # Re_tau = 90
    np.testing.assert_allclose(by_plus["y"], grid.y[[1]], atol=1e-14)
    with pytest.raises(ValueError, match="either"):
        energy_spectra(ds, y=[0.1], y_plus=[5.0])
    with pytest.raises(ValueError, match="symmetric"):
        energy_spectra(ds.assign_coords(y=grid.y + 0.01))


# ---------------------------------------------------------------------- vorticity, PDFs, moments


def analytic_vorticity(grid: ChannelGrid, g, dg, h, dh) -> tuple[xr.Dataset, dict[str, np.ndarray]]:
    """u = sin(kz z) g(y), v = cos(kx x) g(y), w = sin(kx x) h(y) and their exact vorticity."""
    x, y, z = mesh(grid)
    kx, kz = 2 * np.pi / grid.lx, 2 * np.pi * 2 / grid.lz
    u, v, w = np.sin(kz * z) * g(y), np.cos(kx * x) * g(y), np.sin(kx * x) * h(y)
    ds = make_dataset(grid, u, v, w)
    exact = {
        "omega_x": np.sin(kx * x) * dh(y),  # dw/dy - dv/dz
        "omega_y": kz * np.cos(kz * z) * g(y) - kx * np.cos(kx * x) * h(y),  # du/dz - dw/dx
        "omega_z": -kx * np.sin(kx * x) * g(y) - np.sin(kz * z) * dg(y),  # dv/dx - du/dy
    }
    return ds, exact


@pytest.mark.parametrize("stretching", [0.0, 2.0])
def test_vorticity_exact_for_quadratic_profiles(stretching: float) -> None:
    grid = ChannelGrid(nx=8, ny=7, nz=6, stretching=stretching)
    ds, exact = analytic_vorticity(grid, lambda y: y * (2 - y), lambda y: 2 - 2 * y,
                                   lambda y: 3 * y * (2 - y), lambda y: 6 - 6 * y)
    omega = vorticity(ds)
    for name, value in exact.items():
        assert omega[name].dims == ("x", "y", "z") and omega[name].attrs["units"] == "u_tau/h"
        np.testing.assert_allclose(omega[name], value, atol=1e-11)


@pytest.mark.parametrize("stretching", [0.0, 1.5])
def test_vorticity_second_order_in_y(stretching: float) -> None:
    errors = []
    for ny in (16, 32, 64):
        grid = ChannelGrid(nx=8, ny=ny, nz=6, stretching=stretching)
        ds, exact = analytic_vorticity(grid, lambda y: np.sin(np.pi * y), lambda y: np.pi * np.cos(np.pi * y),
                                       lambda y: np.sin(np.pi * y / 2) * y * (2 - y),
                                       lambda y: np.pi / 2 * np.cos(np.pi * y / 2) * y * (2 - y)
                                       + np.sin(np.pi * y / 2) * (2 - 2 * y))
        omega = vorticity(ds)
        errors.append(max(float(np.abs(omega[name] - exact[name]).max()) for name in exact))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(ratios > 3.5) and np.all(ratios < 4.5), (errors, ratios)


def gaussian_bin_probability(edges: np.ndarray) -> np.ndarray:
    cdf = np.array([0.5 * (1.0 + math.erf(e / math.sqrt(2.0))) for e in edges])
    return np.diff(cdf)


def test_gaussian_moments_and_pdfs() -> None:
    grid = ChannelGrid(nx=32, ny=4, nz=32, stretching=1.0)
    ds = random_dataset(grid, ntime=4, seed=1)
    n = 2 * 4 * 32 * 32  # samples per folded plane: two mirror planes
    moments = higher_moments(ds)
    assert moments.sizes["y"] == 2 and moments.attrs["folded"] == 1
    # sampling standard deviations of skewness and flatness of a Gaussian: sqrt(6 / n), sqrt(24 / n)
    for name in "uvw":
        assert np.all(np.abs(moments[f"S_{name}"]) < 5 * np.sqrt(6 / n))
        assert np.all(np.abs(moments[f"F_{name}"] - 3) < 5 * np.sqrt(24 / n))
    pdfs = velocity_pdfs(ds, variables=("u", "v", "w"), bins=41, range_sigma=4.0)
    width = pdfs.attrs["bin_width"]
    assert pdfs["pdf_u"].dims == ("value", "y") and pdfs.sizes["value"] == 41
    edges = np.linspace(-4.0, 4.0, 42)
    np.testing.assert_allclose(pdfs["value"], 0.5 * (edges[1:] + edges[:-1]), atol=1e-14)
    p = gaussian_bin_probability(edges)[:, None]
    sigma = np.sqrt(p * (1 - p) / n + 1.0 / n**2) / width  # binomial counts, floor of one count
    outside = 2 * (1 - 0.5 * (1 + math.erf(4 / math.sqrt(2))))
    for name in "uvw":
        pdf = pdfs[f"pdf_{name}"].values
        np.testing.assert_allclose(pdf.sum(axis=0) * width, 1.0 - outside, atol=5 * np.sqrt(outside / n) + 1e-12)
        assert np.all(np.abs(pdf - p / width) < 5 * sigma)
    wide = velocity_pdfs(ds, variables=("u",), range_sigma=6.0)
    np.testing.assert_allclose(wide["pdf_u"].sum("value") * wide.attrs["bin_width"], 1.0, atol=1e-12)


def mirrored_dataset(grid: ChannelGrid, seed: int = 2) -> xr.Dataset:
    """Skewed random field symmetric under y -> 2 - y: u, w even, v odd about y = 1."""
    rng = np.random.default_rng(seed)
    nh = grid.ny // 2
    lower = [rng.exponential(size=(3, grid.nx, nh, grid.nz)) for _ in range(3)]
    full = [np.concatenate([q, sign * q[:, :, ::-1]], axis=2) for q, sign in zip(lower, (1.0, -1.0, 1.0))]
    ds = make_dataset(grid, *[np.zeros(grid.shape)] * 3, ntime=3)
    for name, value in zip("uvw", full):
        ds[name] = (("time", "x", "y", "z"), value)
    return ds


def test_fold_signs_of_pdfs_and_moments() -> None:
    grid = ChannelGrid(nx=8, ny=8, nz=6, stretching=1.5)
    ds = mirrored_dataset(grid)
    nh = grid.ny // 2
    omega = vorticity(ds)
    for name, sign in (("omega_x", -1), ("omega_y", 1), ("omega_z", -1)):
        np.testing.assert_allclose(omega[name][:, :, ::-1], sign * omega[name], atol=1e-12)
    # a reflection-symmetric field: folding must reproduce the lower half alone
    fields = ds.assign(omega)
    pdfs = velocity_pdfs(ds, bins=31, range_sigma=5.0)
    edges = np.linspace(-5.0, 5.0, 32)
    moments = higher_moments(ds)
    for name in ("u", "v", "w", *omega.data_vars):
        values = fields[name].values[:, :, :nh]
        fluct = values - values.mean(axis=(0, 1, 3), keepdims=True)
        rms = np.sqrt((fluct**2).mean(axis=(0, 1, 3)))
        np.testing.assert_allclose(pdfs[f"{name}_rms"], rms, rtol=1e-12)
        for j in range(nh):
            counts, _ = np.histogram(fluct[:, :, j] / rms[j], bins=edges)
            density = counts / (fluct[:, :, j].size * (edges[1] - edges[0]))
            np.testing.assert_allclose(pdfs[f"pdf_{name}"][:, j], density, rtol=1e-12)
        if name in "uvw":
            skew = (fluct**3).mean(axis=(0, 1, 3)) / rms**3
            np.testing.assert_allclose(moments[f"S_{name}"], skew, rtol=1e-10)
            np.testing.assert_allclose(moments[f"F_{name}"], (fluct**4).mean(axis=(0, 1, 3)) / rms**4, rtol=1e-10)
            assert np.all(moments[f"S_{name}"] > 1.0)  # exponential samples: skewness about 2
    # an upper-half plane selects its mirror; planes by y_plus
    some = velocity_pdfs(ds, y=[2.0 - grid.y[1]], variables=("v",), bins=31, range_sigma=5.0)
    xr.testing.assert_allclose(some["pdf_v"], pdfs["pdf_v"].isel(y=[1]))
    assert some["y_plus"].values[0] == pytest.approx(grid.y[1] * RE_TAU)


def test_pdf_of_a_constant_is_nan() -> None:
    grid = ChannelGrid(nx=4, ny=4, nz=4)
    ds = random_dataset(grid, ntime=1)
    ds["w"] = xr.zeros_like(ds["w"])
    pdfs = velocity_pdfs(ds, variables=("u", "w"))
    assert np.all(np.isnan(pdfs["pdf_w"])) and np.all(pdfs["w_rms"] == 0)
    assert np.all(np.isfinite(pdfs["pdf_u"]))


# ---------------------------------------------------------------------- total shear stress


@pytest.mark.parametrize("ny", [8, 9])
@pytest.mark.parametrize("stretching", [0.0, 2.0])
def test_total_stress_laminar(ny: int, stretching: float) -> None:
    grid = ChannelGrid(nx=4, ny=ny, nz=3, stretching=stretching)
    _, y, _ = mesh(grid)
    stress = total_stress(make_dataset(grid, laminar(y)))
    nh = (ny + 1) // 2
    assert stress.sizes["y"] == nh and "sgs" not in stress
    np.testing.assert_allclose(stress["viscous"], 1.0 - grid.y[:nh], atol=1e-12)
    np.testing.assert_allclose(stress["reynolds"], 0.0, atol=1e-14)
    np.testing.assert_allclose(stress["total"], stress["expected"], atol=1e-12)
    assert stress.attrs["max_deviation"] < 1e-12 and stress.attrs["u_tau"] == pytest.approx(1.0)


def test_total_stress_with_reynolds_and_sgs_stress() -> None:
    grid = ChannelGrid(nx=16, ny=10, nz=4, stretching=2.0)
    x, y, _ = mesh(grid)
    s = np.sin(2 * np.pi * x / grid.lx)
    a, b = np.sin(np.pi * y / 2.0), np.sin(np.pi * y)  # even and odd about y = 1
    ds = make_dataset(grid, laminar(y) + a * s, -b * s, ntime=2)  # -<u'v'> = a b / 2 > 0 in the lower half
    tau = xr.DataArray(0.1 * (1.0 - grid.y), dims=("y",), coords={"y": grid.y})
    stress = total_stress(ds, tau_sgs=tau)
    yl = grid.y[:5]
    reynolds = 0.5 * np.sin(np.pi * yl / 2) * np.sin(np.pi * yl)
    np.testing.assert_allclose(stress["reynolds"], reynolds, atol=1e-13)
    np.testing.assert_allclose(stress["sgs"], -0.1 * (1.0 - yl), atol=1e-14)
    np.testing.assert_allclose(stress["total"], 1.0 - yl + reynolds - 0.1 * (1.0 - yl), atol=1e-12)
    deviation = np.abs(reynolds - 0.1 * (1.0 - yl)).max()
    assert stress.attrs["max_deviation"] == pytest.approx(deviation, rel=1e-10)
    # an explicit u_tau rescales the expected profile and the deviation
    doubled = total_stress(ds, u_tau=2.0)
    np.testing.assert_allclose(doubled["expected"], 4.0 * (1.0 - yl), atol=1e-12)
    with pytest.raises(ValueError, match="tau_sgs"):
        total_stress(ds, tau_sgs=tau.isel(y=slice(0, 5)))


def test_new_statistics_on_a_lazy_dataset() -> None:
    pytest.importorskip("dask")
    grid = ChannelGrid(nx=8, ny=6, nz=4, stretching=1.0)
    ds = random_dataset(grid, ntime=4, seed=3)
    ds["u"] = ds["u"] + laminar(ds["y"])
    lazy = ds.chunk({"time": 1})
    spectra = energy_spectra(lazy, y=[0.3])
    assert spectra["E_uu_kx"].chunks is not None
    xr.testing.assert_allclose(spectra.compute(), energy_spectra(ds, y=[0.3]))
    moments = higher_moments(lazy)
    assert moments["F_u"].chunks is not None
    xr.testing.assert_allclose(moments.compute(), higher_moments(ds))
    xr.testing.assert_allclose(velocity_pdfs(lazy, bins=21), velocity_pdfs(ds, bins=21))
    xr.testing.assert_allclose(vorticity(lazy).compute(), vorticity(ds))
    xr.testing.assert_allclose(total_stress(lazy), total_stress(ds))
