"""Tests for coarse graining DNS fields onto a coarser channel grid (surrogate.filtering)."""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import pytest
import xarray as xr

from surrogate.fields import FieldError, check_fields, make_fields
from surrogate.filtering import filter_to_grid, wall_normal_matrix
from surrogate.grid import ChannelGrid

RE_TAU = 180.0
# Non-nested wall-normal grids: the coarse faces are not a subset of the fine faces.
FINE = ChannelGrid(16, 17, 12, stretching=1.5)
COARSE = ChannelGrid(8, 9, 6, stretching=1.0)
# Nested: same stretching and ny_f = 2 ny_c, so every coarse face is a fine face.
NESTED = [
    (ChannelGrid(16, 18, 12), ChannelGrid(8, 9, 6)),
    (ChannelGrid(16, 18, 12, stretching=1.5), ChannelGrid(8, 9, 6, stretching=1.5)),
]


def dataset(grid: ChannelGrid, u: np.ndarray, v: np.ndarray, w: np.ndarray, p: np.ndarray | None = None,
            time: Any = None, **attrs: Any) -> xr.Dataset:
    return make_fields(grid, u, v, w, p=p, re_tau=RE_TAU, time=time, attrs=attrs or None)


def random_dataset(grid: ChannelGrid, nt: int = 2, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    u, v, w, p = rng.standard_normal((4, nt) + grid.shape)
    return dataset(grid, u, v, w, p, time=np.arange(nt) * 0.5, source="dns", case="tiny")


def low_modes(grid: ChannelGrid, seed: int) -> np.ndarray:
    """A random real combination of Fourier modes |m| <= 3 in x and |n| <= 2 in z, shape (nx, nz).

    These are all resolved below the cutoff of an 8 x 6 coarse grid (|m| < 4, |n| < 3).
    """
    rng = np.random.default_rng(seed)
    kx = 2 * np.pi * grid.x / grid.lx
    kz = 2 * np.pi * grid.z / grid.lz
    total = np.zeros((grid.nx, grid.nz))
    for m in range(4):
        for n in range(-2, 3):
            a, b = rng.standard_normal(2)
            phase = m * kx[:, None] + n * kz[None, :]
            total += a * np.cos(phase) + b * np.sin(phase)
    return total


def faces_nested(fine: ChannelGrid, coarse: ChannelGrid) -> bool:
    return all(np.any(np.isclose(face, fine.y_faces, rtol=0, atol=1e-14)) for face in coarse.y_faces)


def plane_mean(a: np.ndarray) -> np.ndarray:
    """x-z mean of an array (..., x, y, z), shape (..., y)."""
    return a.mean(axis=(-3, -1))


# ---------------------------------------------------------------------- resolved fields


@pytest.mark.parametrize("fine, coarse", NESTED)
def test_resolved_field_passes_through_average(fine: ChannelGrid, coarse: ChannelGrid) -> None:
    """Low modes x a profile constant in each coarse cell are reproduced exactly."""
    assert faces_nested(fine, coarse)
    rng = np.random.default_rng(1)
    cell = np.searchsorted(coarse.y_faces, fine.y) - 1  # coarse cell of each fine centre
    profiles = rng.standard_normal((4, coarse.ny))
    fields_f, fields_c = [], []
    for index, profile in enumerate(profiles):
        fields_f.append(low_modes(fine, index)[:, None, :] * profile[cell][None, :, None])
        fields_c.append(low_modes(coarse, index)[:, None, :] * profile[None, :, None])
    out = filter_to_grid(dataset(fine, *fields_f), coarse, horizontal="spectral", wall_normal="average")
    for name, expected in zip("uvwp", fields_c):
        np.testing.assert_allclose(out[name].values, expected, rtol=0, atol=1e-12)


def test_resolved_field_passes_through_interpolate() -> None:
    """Low modes x a linear profile are reproduced exactly between the outermost fine centres."""
    assert not faces_nested(FINE, COARSE)
    assert FINE.y[0] <= COARSE.y[0] and COARSE.y[-1] <= FINE.y[-1]  # no wall rule involved
    arrays_f, arrays_c = [], []
    for index in range(4):
        a, b = low_modes(FINE, 2 * index), low_modes(FINE, 2 * index + 1)
        arrays_f.append(a[:, None, :] + b[:, None, :] * FINE.y[None, :, None])
        a, b = low_modes(COARSE, 2 * index), low_modes(COARSE, 2 * index + 1)
        arrays_c.append(a[:, None, :] + b[:, None, :] * COARSE.y[None, :, None])
    out = filter_to_grid(dataset(FINE, *arrays_f), COARSE, horizontal="spectral", wall_normal="interpolate")
    for name, expected in zip("uvwp", arrays_c):
        np.testing.assert_allclose(out[name].values, expected, rtol=0, atol=1e-12)


def test_interpolate_wall_rules() -> None:
    """Below the first fine centre velocities go linearly to 0 at the wall, p stays constant."""
    fine, coarse = ChannelGrid(4, 8, 4), ChannelGrid(4, 8, 4, stretching=2.5)
    near = coarse.y < fine.y[0]
    assert near.any()
    ones = np.ones(fine.shape)
    out = filter_to_grid(dataset(fine, ones, ones, ones, ones), coarse, wall_normal="interpolate")
    ramp = np.minimum(1.0, np.minimum(coarse.y / fine.y[0], (2.0 - coarse.y) / (2.0 - fine.y[-1])))
    assert ramp.min() < 0.9
    for name in "uvw":
        np.testing.assert_allclose(out[name].values, np.broadcast_to(ramp[None, :, None], coarse.shape), atol=1e-13)
    np.testing.assert_allclose(out["p"].values, 1.0, atol=1e-13)


# ---------------------------------------------------------------------- horizontal filters


@pytest.mark.parametrize("horizontal", ["spectral", "box"])
@pytest.mark.parametrize("wall_normal", ["average", "interpolate"])
def test_mean_profile_preserved(horizontal: str, wall_normal: str) -> None:
    """The k = 0 mode passes both horizontal filters: x-z mean profiles are unchanged."""
    fine = FINE
    coarse = ChannelGrid(7, fine.ny, 5, stretching=fine.stretching)  # odd sizes: no Nyquist mode at all
    ds = random_dataset(fine)
    out = filter_to_grid(ds, coarse, horizontal=horizontal, wall_normal=wall_normal)
    for name in "uvwp":
        np.testing.assert_allclose(plane_mean(out[name].values), plane_mean(ds[name].values), rtol=0, atol=1e-13)
    # the fluctuations were filtered, so the test compares more than a copy
    assert out["u"].values.var() < 0.9 * ds["u"].values.var()


@pytest.mark.parametrize("coarse_sizes", [(8, 6), (7, 5)])
def test_parseval_energy_removed_by_cutoff(coarse_sizes: tuple[int, int]) -> None:
    """<u^2>_fine - <u^2>_coarse on each plane = energy of the Fourier modes beyond the cutoff."""
    nx_c, nz_c = coarse_sizes
    coarse = ChannelGrid(nx_c, FINE.ny, nz_c, stretching=FINE.stretching)
    ds = random_dataset(FINE, nt=1, seed=3)
    out = filter_to_grid(ds, coarse, horizontal="spectral")
    u = ds["u"].values[0]
    removed = plane_mean(u**2) - plane_mean(out["u"].values[0] ** 2)

    # Independently: full complex 2-D spectrum, mode energy |u_hat / N|^2 (Parseval).
    u_hat = np.fft.fft2(np.moveaxis(u, 1, 0)) / (FINE.nx * FINE.nz)  # (y, x, z)
    m = np.abs(np.fft.fftfreq(FINE.nx, 1.0 / FINE.nx))
    n = np.abs(np.fft.fftfreq(FINE.nz, 1.0 / FINE.nz))
    cut = (m[:, None] >= nx_c / 2) | (n[None, :] >= nz_c / 2)
    expected = (np.abs(u_hat) ** 2 * cut).sum(axis=(1, 2))
    assert np.all(expected > 0.3 * plane_mean(u**2))
    np.testing.assert_allclose(removed, expected, rtol=1e-12, atol=1e-13)


def test_box_filter_transfer_function() -> None:
    """sin(2 pi m x / lx) is damped by sin(k D / 2) / (k D / 2), D = coarse dx; the z direction likewise."""
    grid = ChannelGrid(16, 4, 12)
    coarse = ChannelGrid(8, 4, 6)
    dx, dz = coarse.dx, coarse.dz
    x = grid.x[:, None, None] * np.ones(grid.shape)
    z = grid.z[None, None, :] * np.ones(grid.shape)
    xc = coarse.x[:, None, None] * np.ones(coarse.shape)
    zc = coarse.z[None, None, :] * np.ones(coarse.shape)
    for m in (1, 2, 3):
        k = 2 * np.pi * m / grid.lx
        kz = 2 * np.pi * m / grid.lz if m < 3 else 0.0  # |n| < 3 resolved in z
        ds = dataset(grid, np.sin(k * x), np.cos(k * x), np.cos(kz * z))
        out = filter_to_grid(ds, coarse, horizontal="box")
        # top-hat averages over [x - D/2, x + D/2] integrated by hand
        sin_avg = (np.cos(k * (xc - dx / 2)) - np.cos(k * (xc + dx / 2))) / (k * dx)
        cos_avg = (np.sin(k * (xc + dx / 2)) - np.sin(k * (xc - dx / 2))) / (k * dx)
        np.testing.assert_allclose(out["u"].values, sin_avg, atol=1e-13)
        np.testing.assert_allclose(out["v"].values, cos_avg, atol=1e-13)
        gain = np.sin(k * dx / 2) / (k * dx / 2)
        np.testing.assert_allclose(out["u"].values, gain * np.sin(k * xc), atol=1e-13)
        gain_z = np.sin(kz * dz / 2) / (kz * dz / 2) if kz else 1.0
        np.testing.assert_allclose(out["w"].values, gain_z * np.cos(kz * zc), atol=1e-13)
        assert gain < 1 - 1e-3 and (gain_z < 1 - 1e-3 or not kz)


@pytest.mark.parametrize("horizontal", ["spectral", "box"])
def test_modes_at_and_beyond_the_coarse_nyquist_are_removed(horizontal: str) -> None:
    grid, coarse = ChannelGrid(16, 4, 12), ChannelGrid(8, 4, 6)
    x = grid.x[:, None, None] * np.ones(grid.shape)
    z = grid.z[None, None, :] * np.ones(grid.shape)
    nyquist = np.cos(2 * np.pi * 4 * x / grid.lx)  # |m| = nx_c / 2: dropped
    beyond = np.sin(2 * np.pi * 5 * x / grid.lx)
    nyquist_z = np.cos(2 * np.pi * 3 * z / grid.lz)
    out = filter_to_grid(dataset(grid, nyquist, beyond, nyquist_z), coarse, horizontal=horizontal)
    for name in "uvw":
        np.testing.assert_allclose(out[name].values, 0.0, atol=1e-13)


# ---------------------------------------------------------------------- wall-normal average


@pytest.mark.parametrize(
    "fine, coarse",
    [
        (ChannelGrid(16, 17, 12, stretching=2.0), ChannelGrid(8, 9, 6, stretching=1.2)),
        (ChannelGrid(8, 17, 6, stretching=2.5), ChannelGrid(8, 17, 6, stretching=0.5)),
        (ChannelGrid(8, 18, 6, stretching=1.5), ChannelGrid(8, 9, 6, stretching=1.5)),
    ],
)
@pytest.mark.parametrize("horizontal", ["spectral", "box"])
def test_average_conserves_bulk(fine: ChannelGrid, coarse: ChannelGrid, horizontal: str) -> None:
    """sum_J <u>_J dy_c[J] = sum_j <u>_j dy_f[j]: the bulk velocity is preserved exactly."""
    ds = random_dataset(fine, seed=5)
    out = filter_to_grid(ds, coarse, horizontal=horizontal, wall_normal="average")
    for name in "uvwp":
        bulk_f = plane_mean(ds[name].values) @ fine.dy / 2
        bulk_c = plane_mean(out[name].values) @ coarse.dy / 2
        np.testing.assert_allclose(bulk_c, bulk_f, rtol=0, atol=1e-14)
    matrix = wall_normal_matrix(fine, coarse, "average")
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-14)
    np.testing.assert_allclose(coarse.dy @ matrix, fine.dy, atol=1e-15)
    # Interpolation is not conservative in general, so the check above has teeth. (With 2:1 nested
    # faces the coarse centre splits the two fine centres in the ratio of their cell heights, and
    # linear interpolation then coincides with the overlap average.)
    interp = filter_to_grid(ds, coarse, horizontal=horizontal, wall_normal="interpolate")
    gap = plane_mean(interp["u"].values) @ coarse.dy - plane_mean(ds["u"].values) @ fine.dy  # one per time
    if faces_nested(fine, coarse) and fine.ny == 2 * coarse.ny:
        np.testing.assert_allclose(interp["u"].values, out["u"].values, atol=1e-14)
    else:
        assert np.all(np.abs(gap) > 1e-6)


# ---------------------------------------------------------------------- divergence


Profile = Callable[[np.ndarray], np.ndarray]


def stream_function_velocities(grid: ChannelGrid, q: Profile, dq: Profile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divergence-free u, v, w at the cell centres of ``grid`` from two stream functions.

    psi(x, y) = sin(k_x x) q(y) gives (u, v) = (dpsi/dy, -dpsi/dx); phi(z, y) = sin(k_z z) q(y)
    gives (w, v) = (dphi/dy, -dphi/dz); plus a mean flow U(y) = 1 - (y - 1)^2. One mode each
    (m = n = 1), below every cutoff used here.
    """
    x, y, z = np.meshgrid(grid.x, grid.y, grid.z, indexing="ij")
    kx, kz = 2 * np.pi / grid.lx, 2 * np.pi / grid.lz
    u = np.sin(kx * x) * dq(y) + 1.0 - (y - 1.0) ** 2
    v = -(kx * np.cos(kx * x) + kz * np.cos(kz * z)) * q(y)
    w = np.sin(kz * z) * dq(y)
    return u, v, w


def centred_divergence(grid: ChannelGrid, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """du/dx + dv/dy + dw/dz at interior cell centres, and the largest velocity gradient.

    x and z derivatives are spectral (exact for the resolved modes); dv/dy is the centred
    difference (v[j+1] - v[j-1]) / (y[j+1] - y[j-1]), shape (nx, ny - 2, nz).
    """

    def spectral(a: np.ndarray, length: float, axis: int) -> np.ndarray:
        k = 2j * np.pi / length * np.fft.fftfreq(a.shape[axis], 1.0 / a.shape[axis])
        shape = [1, 1, 1]
        shape[axis] = -1
        return np.fft.ifft(k.reshape(shape) * np.fft.fft(a, axis=axis), axis=axis).real

    dudx = spectral(u, grid.lx, 0)[:, 1:-1]
    dwdz = spectral(w, grid.lz, 2)[:, 1:-1]
    dvdy = (v[:, 2:] - v[:, :-2]) / (grid.y[2:] - grid.y[:-2])[None, :, None]
    scale = max(np.abs(dudx).max(), np.abs(dvdy).max(), np.abs(dwdz).max())
    return dudx + dvdy + dwdz, scale


@pytest.mark.parametrize("horizontal", ["spectral", "box"])
def test_divergence_free_exactly_where_the_discretisation_is_exact(horizontal: str) -> None:
    """Uniform nested grids, q(y) = y (2 - y): the filtered field is divergence free to round-off.

    Both horizontal filters are Fourier multipliers, so they commute with d/dx and d/dz and damp
    u, v, w of one mode alike. In y, q is quadratic and q' linear: the fine centre values differ
    from fine cell averages by the constant -q'' dy_f^2 / 24, the nested coarse average is then the
    exact coarse cell average minus that constant, and on a uniform grid the centred difference
    of cell averages of a quadratic is exactly q' at the centre, as is the cell average of u.
    Every discretisation error vanishes, so any residual would be the filter's own.
    """
    fine, coarse = NESTED[0]
    u, v, w = stream_function_velocities(fine, lambda y: y * (2 - y), lambda y: 2 - 2 * y)
    out = filter_to_grid(dataset(fine, u, v, w), coarse, horizontal=horizontal, wall_normal="average")
    div, scale = centred_divergence(coarse, *(out[name].values for name in "uvw"))
    assert scale > 1.0
    assert np.abs(div).max() <= 1e-12 * scale


@pytest.mark.parametrize("horizontal", ["spectral", "box"])
@pytest.mark.parametrize("wall_normal", ["average", "interpolate"])
def test_divergence_small_on_stretched_grids(horizontal: str, wall_normal: str) -> None:
    """Stretched, non-nested grids, q(y) = (y (2 - y))^2 (u = v = w = 0 at the walls).

    The filter commutes with the divergence (horizontal Fourier multipliers; in y, the cell
    average turns dv/dy into a face difference and linear interpolation is second-order
    accurate), so what remains is the truncation error of the centred difference on the coarse
    grid, O(dy_c^2 q''') ~ 10 % of the gradients at dy_c ~ 0.3. The bound: no more than 1.5 x
    the divergence the same operator finds in the exact (divergence-free) field sampled at the
    coarse centres, and at most 15 % of the largest velocity gradient.
    """
    q = lambda y: (y * (2 - y)) ** 2  # noqa: E731
    dq = lambda y: 2 * y * (2 - y) * (2 - 2 * y)  # noqa: E731
    out = filter_to_grid(dataset(FINE, *stream_function_velocities(FINE, q, dq)), COARSE,
                         horizontal=horizontal, wall_normal=wall_normal)
    div, scale = centred_divergence(COARSE, *(out[name].values for name in "uvw"))
    reference, _ = centred_divergence(COARSE, *stream_function_velocities(COARSE, q, dq))
    assert scale > 1.0
    assert np.abs(div).max() <= 1.5 * np.abs(reference).max()
    assert np.abs(div).max() <= 0.15 * scale


# ---------------------------------------------------------------------- output Dataset


def test_output_dataset_metadata() -> None:
    ds = random_dataset(FINE).astype(np.float32)
    ds.attrs.update(random_dataset(FINE).attrs)
    out = filter_to_grid(ds, COARSE, horizontal="box", wall_normal="interpolate")
    assert check_fields(out, require_pressure=True, require_time=True) == COARSE
    assert out["u"].dims == ("time", "x", "y", "z") and out["u"].dtype == np.float32
    np.testing.assert_array_equal(out["time"].values, ds["time"].values)
    assert out.attrs["re_tau"] == RE_TAU and out.attrs["source"] == "dns" and out.attrs["case"] == "tiny"
    assert out.attrs["grid_nx"] == 8 and out.attrs["grid_stretching"] == 1.0
    assert out.attrs["filter_horizontal"] == "box" and out.attrs["filter_wall_normal"] == "interpolate"
    assert ChannelGrid(**json.loads(out.attrs["filter_source_grid"])) == FINE
    assert "16x17x12" in out.attrs["filter_description"] and "8x9x6" in out.attrs["filter_description"]


def test_single_snapshot_and_lazy_input_match() -> None:
    pytest.importorskip("dask")
    ds = random_dataset(FINE, nt=3, seed=7)
    full = filter_to_grid(ds, COARSE)
    lazy = filter_to_grid(ds.chunk({"time": 1}), COARSE)
    xr.testing.assert_allclose(lazy[["u", "v", "w", "p"]], full[["u", "v", "w", "p"]], rtol=0, atol=1e-14)
    one = filter_to_grid(ds.isel(time=1), COARSE)
    assert one["u"].dims == ("x", "y", "z") and float(one["time"]) == 0.5
    np.testing.assert_allclose(one["u"].values, full["u"].values[1], atol=1e-14)
    bare = ds.isel(time=0).drop_vars(["time", "p"])
    out = filter_to_grid(bare, COARSE)
    assert "time" not in out.coords and "p" not in out.data_vars


# ---------------------------------------------------------------------- errors


def test_errors() -> None:
    ds = random_dataset(FINE, nt=1)
    with pytest.raises(ValueError, match=r"lx = 6\.0.*lx = 6\.28"):
        filter_to_grid(ds, ChannelGrid(8, 9, 6, lx=6.0))
    with pytest.raises(ValueError, match=r"finer.*nx = 16 > 8.*wrong way round"):
        filter_to_grid(random_dataset(COARSE, nt=1), FINE)
    with pytest.raises(ValueError, match=r"ny = 18 > 17"):
        filter_to_grid(ds, ChannelGrid(8, 18, 6))
    with pytest.raises(FieldError, match="missing variable.*v"):
        filter_to_grid(ds.drop_vars("v"), COARSE)
    with pytest.raises(ValueError, match="horizontal"):
        filter_to_grid(ds, COARSE, horizontal="gaussian")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="wall_normal"):
        filter_to_grid(ds, COARSE, wall_normal="spline")  # type: ignore[arg-type]
