"""Reference MKM profiles, deviation measures and the comparison figure."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from surrogate.validation import (
    MKM_RE_TAU,
    default_reference_dir,
    load_mkm,
    plot_profiles_vs_reference,
    profile_deviation,
)


@pytest.fixture(scope="module")
def mkm180() -> xr.Dataset:
    return load_mkm(180)


def test_reference_files_are_shipped() -> None:
    folder = default_reference_dir()
    for re_tau in MKM_RE_TAU:
        for kind in ("means.dat", "reystress.dat", "profiles_README.txt"):
            assert (folder / f"mkm1999_re{re_tau}_{kind}").is_file()
    assert (folder / "SOURCES.md").is_file()


def test_load_180_known_row(mkm180: xr.Dataset) -> None:
    ds = mkm180
    assert ds.sizes["y_plus"] == 65
    assert ds.attrs["re_tau"] == 178.12
    assert ds.attrs["re_tau_nominal"] == 180
    assert "doi:10.1063/1.869966" in ds.attrs["source"]
    # chan180 row 11: y = 2.9969e-02, y+ = 5.3381, U+ = 5.1133; R_uu 3.1074, R_vv 1.7023e-02,
    # R_ww 3.7999e-01, R_uv -9.9746e-02
    row = ds.isel(y_plus=10)
    assert float(row["y"]) == pytest.approx(2.9969e-02)
    assert float(row["y_plus"]) == pytest.approx(5.3381)
    assert float(row["U"]) == pytest.approx(5.1133)
    assert float(row["u_rms"]) == pytest.approx(np.sqrt(3.1074))
    assert float(row["v_rms"]) == pytest.approx(np.sqrt(1.7023e-02))
    assert float(row["w_rms"]) == pytest.approx(np.sqrt(3.7999e-01))
    assert float(row["uv"]) == pytest.approx(-9.9746e-02)
    # wall and centreline rows
    assert float(ds["y"][0]) == 0.0 and float(ds["U"][0]) == 0.0
    assert float(ds["y"][-1]) == 1.0
    assert float(ds["y_plus"][-1]) == pytest.approx(178.12)
    assert float(ds["U"][-1]) == pytest.approx(18.301)
    assert np.all(np.diff(ds["y_plus"].values) > 0)
    np.testing.assert_allclose(ds["y_plus"], ds["y"] * 178.12, rtol=2e-4)


def test_viscous_sublayer(mkm180: xr.Dataset) -> None:
    sub = mkm180.where((mkm180["y_plus"] > 0) & (mkm180["y_plus"] < 1), drop=True)
    assert sub.sizes["y_plus"] >= 3
    np.testing.assert_allclose(sub["U"], sub["y_plus"], rtol=0.01)


def test_uv_negative_and_peak_values(mkm180: xr.Dataset) -> None:
    inner = mkm180.isel(y_plus=slice(1, -1))
    assert np.all(inner["uv"] < 0)
    # textbook Re_tau = 180 values: u'+ peak ~ 2.6 near y+ ~ 15, -uv+ peak ~ 0.7
    peak = int(np.argmax(mkm180["u_rms"].values))
    assert 2.5 < float(mkm180["u_rms"][peak]) < 2.8
    assert 10 < float(mkm180["y_plus"][peak]) < 20
    assert 0.65 < float(-mkm180["uv"].min()) < 0.75


@pytest.mark.parametrize(
    ("wanted", "nominal", "exact", "rows"),
    [(180, 180, 178.12, 65), (178.12, 180, 178.12, 65), (200, 180, 178.12, 65), (395, 395, 392.24, 129),
     (350, 395, 392.24, 129), (550, 590, 587.19, 129), (590.0, 590, 587.19, 129)],
)
def test_nearest_selection(wanted: float, nominal: int, exact: float, rows: int) -> None:
    ds = load_mkm(wanted)
    assert ds.attrs["re_tau_nominal"] == nominal
    assert ds.attrs["re_tau"] == exact
    assert ds.sizes["y_plus"] == rows


@pytest.mark.parametrize("wanted", [100, 150, 270, 700, 1000, -5])
def test_out_of_range(wanted: float) -> None:
    with pytest.raises(ValueError):
        load_mkm(wanted)


def test_missing_files_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        load_mkm(180, reference_dir=tmp_path / "nowhere")
    shutil.copy(default_reference_dir() / "mkm1999_re180_means.dat", tmp_path)
    with pytest.raises(FileNotFoundError, match="mkm1999_re180_reystress.dat"):
        load_mkm(180, reference_dir=tmp_path)


def test_deviation_of_reference_against_itself(mkm180: xr.Dataset) -> None:
    dev = profile_deviation(mkm180, mkm180)
    for name in ("U", "u_rms", "v_rms", "w_rms", "uv"):
        assert dev[name] == 0.0
        assert dev[f"{name}_rel"] == 0.0
    assert dev["n_points"] == 65


def run_like(reference: xr.Dataset, y_plus: np.ndarray, shift: float = 0.0) -> xr.Dataset:
    """A 'run' on its own y+ points: the reference interpolated there, U+ shifted by ``shift``."""
    ref_y = reference["y_plus"].values
    data = {
        name: ("y", np.interp(y_plus, ref_y, reference[name].values) + (shift if name == "U" else 0.0))
        for name in ("U", "u_rms", "v_rms", "w_rms", "uv")
    }
    return xr.Dataset(data, coords={"y": y_plus / 178.12, "y_plus": ("y", y_plus)})


def test_deviation_of_shifted_profile(mkm180: xr.Dataset) -> None:
    y_plus = np.concatenate([np.geomspace(0.5, 178.0, 40), [200.0, 250.0]])  # last two outside
    run = run_like(mkm180, y_plus, shift=0.75)
    dev = profile_deviation(run, mkm180)
    assert dev["n_points"] == 40
    assert dev["U"] == pytest.approx(0.75, rel=1e-12)
    assert dev["U_rel"] == pytest.approx(0.75 / float(mkm180["U"].max()), rel=1e-12)
    for name in ("u_rms", "v_rms", "w_rms", "uv"):
        assert dev[name] < 1e-12

    scaled = run.copy()
    scaled["u_rms"] = scaled["u_rms"] * 1.1
    dev = profile_deviation(scaled, mkm180)
    peak = float(mkm180["u_rms"].max())
    assert dev["u_rms_rel"] == pytest.approx(dev["u_rms"] / peak)
    assert 0.05 < dev["u_rms_rel"] <= 0.1 + 1e-12


def test_deviation_errors(mkm180: xr.Dataset) -> None:
    far = run_like(mkm180, np.array([300.0, 400.0]))
    with pytest.raises(ValueError, match="range"):
        profile_deviation(far, mkm180)
    with pytest.raises(KeyError, match="y_plus"):
        profile_deviation(far.drop_vars("y_plus"), mkm180)


def test_plot_profiles(tmp_path: Path, mkm180: xr.Dataset) -> None:
    y_plus = np.geomspace(0.3, 178.0, 30)
    runs = {"shifted": run_like(mkm180, y_plus, 1.0), "exact": run_like(mkm180, y_plus)}
    out = plot_profiles_vs_reference(runs, mkm180, tmp_path / "figs" / "profiles.png")
    assert out == tmp_path / "figs" / "profiles.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_compare_with_mkm_recovers_the_reference_from_a_field_built_on_it(mkm180: xr.Dataset) -> None:
    from surrogate.fields import make_fields
    from surrogate.grid import ChannelGrid
    from surrogate.validation import compare_with_mkm

    re_tau = float(mkm180.attrs["re_tau"])
    grid = ChannelGrid(4, 96, 4, stretching=2.5)
    wall_distance_plus = np.minimum(grid.y, 2.0 - grid.y) * re_tau
    profile = np.interp(wall_distance_plus, mkm180["y_plus"].values, mkm180["U"].values)
    u = np.broadcast_to(profile[None, :, None], (2, *grid.shape)).copy()
    zeros = np.zeros_like(u)
    ds = make_fields(grid, u, zeros, zeros, re_tau=re_tau, time=np.array([0.0, 1.0]))
    profiles, reference, deviation = compare_with_mkm(ds, t_start=0.0)
    assert reference.attrs["re_tau"] == re_tau
    assert deviation["n_snapshots"] == 2
    assert abs(deviation["re_tau"] / re_tau - 1.0) < 0.01
    assert deviation["U"] < 0.1
    assert float(profiles["u_rms"].max()) < 1e-12
