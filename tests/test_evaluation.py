"""Reference profiles (MKM, Lee & Moser), metrics, rollout errors, the report and ``surrogate validate``."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from surrogate.fields import make_fields, write_fields
from surrogate.grid import ChannelGrid
from surrogate.references import (
    LM_RE_TAU,
    MKM_RE_TAU,
    REFERENCE_NAMES,
    default_reference_dir,
    load_lee_moser,
    load_mkm,
    load_published,
)
from surrogate.report import plot_profiles_vs_reference, write_report
from surrogate.evaluation import (
    TABLE_METRICS,
    ValidationError,
    evaluate,
    load_reference,
    open_run,
    profile_deviation,
    relative_l2,
    rollout_errors,
    run_metrics,
    run_statistics,
    spectrum_error,
    validate,
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
    assert ds.attrs["re_tau_measured"] == 178.12
    assert ds.attrs["re_tau"] == 180
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
    assert ds.attrs["re_tau"] == nominal
    assert ds.attrs["re_tau_measured"] == exact
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
    from surrogate.evaluation import compare_with_mkm

    re_tau = float(mkm180.attrs["re_tau_measured"])
    grid = ChannelGrid(4, 96, 4, stretching=2.5)
    wall_distance_plus = np.minimum(grid.y, 2.0 - grid.y) * re_tau
    profile = np.interp(wall_distance_plus, mkm180["y_plus"].values, mkm180["U"].values)
    u = np.broadcast_to(profile[None, :, None], (2, *grid.shape)).copy()
    zeros = np.zeros_like(u)
    ds = make_fields(grid, u, zeros, zeros, re_tau=re_tau, time=np.array([0.0, 1.0]))
    profiles, reference, deviation = compare_with_mkm(ds, t_start=0.0)
    assert reference.attrs["re_tau_measured"] == re_tau
    assert deviation["n_snapshots"] == 2
    assert abs(deviation["re_tau"] / re_tau - 1.0) < 0.01
    assert deviation["U"] < 0.1
    assert float(profiles["u_rms"].max()) < 1e-12


# ====================================================================== Lee & Moser, references
def test_lee_moser_files_match_their_sources_entry() -> None:
    folder = default_reference_dir()
    sources = (folder / "SOURCES.md").read_text()
    for re_tau in LM_RE_TAU:
        for kind in ("mean_prof", "vel_fluc_prof"):
            name = f"lm2015_re{re_tau}_{kind}.dat"
            match = re.search(rf"`{name}` \| .*? \| `([0-9a-f]{{64}})`", sources)
            assert match is not None, f"{name} has no SOURCES.md row with its sha256"
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == match.group(1)


def test_load_lee_moser_180_known_rows() -> None:
    ds = load_lee_moser(180)
    assert ds.sizes["y_plus"] == 96
    assert ds.attrs["re_tau_measured"] == 182.088
    assert ds.attrs["re_tau"] == 180
    assert "doi:10.1017/jfm.2015.268" in ds.attrs["source"]
    assert set(ds.data_vars) == {"U", "u_rms", "v_rms", "w_rms", "uv"}
    # LM_Channel_0180 row 21: y/delta 4.553216965344320e-02, y+ 8.290879507882680, U+ 7.424476521405005;
    # u'u' 5.532573639845174, v'v' 5.649592472004494e-02, w'w' 6.111474817699647e-01, u'v' -2.605101038780337e-01
    row = ds.isel(y_plus=20)
    assert float(row["y"]) == 4.553216965344320e-02
    assert float(row["y_plus"]) == 8.290879507882680
    assert float(row["U"]) == 7.424476521405005
    assert float(row["u_rms"]) == pytest.approx(np.sqrt(5.532573639845174), rel=1e-15)
    assert float(row["v_rms"]) == pytest.approx(np.sqrt(5.649592472004494e-02), rel=1e-15)
    assert float(row["w_rms"]) == pytest.approx(np.sqrt(6.111474817699647e-01), rel=1e-15)
    assert float(row["uv"]) == -2.605101038780337e-01
    # the files stop just below the centreline
    assert float(ds["y"][-1]) == pytest.approx(0.9915979301650304)
    assert float(ds["U"][-1]) == pytest.approx(18.26830831045079)
    np.testing.assert_allclose(ds["y_plus"], ds["y"] * 182.088, rtol=1e-5)


def test_load_lee_moser_550_and_nearest_case() -> None:
    ds = load_lee_moser(540)
    assert ds.sizes["y_plus"] == 192
    assert ds.attrs["re_tau_measured"] == 543.496 and ds.attrs["re_tau"] == 550
    assert float(ds["U"][-1]) == pytest.approx(21.00016126414640)
    assert load_lee_moser(200).attrs["re_tau"] == 180
    with pytest.raises(ValueError, match="Lee-Moser"):
        load_lee_moser(300)


def test_published_references_by_name() -> None:
    expected = {"mkm180": 178.12, "mkm395": 392.24, "mkm590": 587.19, "lm180": 182.088, "lm550": 543.496}
    assert set(REFERENCE_NAMES) == set(expected) | {"fdns180"}
    for name, re_tau in expected.items():
        ds = load_reference(name)
        assert ds.attrs["re_tau_measured"] == re_tau
        assert ds.attrs["label"]
        assert {"U", "u_rms", "v_rms", "w_rms", "uv"} <= set(ds.data_vars)
    assert load_reference("LM180").attrs["re_tau_measured"] == 182.088


def test_the_shipped_filtered_dns_is_a_field_reference() -> None:
    """``fdns180`` is measured like a run: its Re_tau is its own wall gradient's, near the nominal 180."""
    stats = load_reference("fdns180")
    assert stats.attrs["label"] == "fdns180" and stats.attrs["n_snapshots"] == 41
    assert stats.attrs["re_tau"] == 180.0
    assert abs(stats.attrs["re_tau_measured"] - 186.0) < 1.0  # the filtered DNS of the dataset, Re_tau 185.9 over all 201
    assert float(stats["U"].max()) > 15 and float(stats["uv"].min()) < -0.25  # resolved part only (the rest is subgrid)


def test_load_published_by_name() -> None:
    xr.testing.assert_identical(load_published(" LM550 "), load_lee_moser(550))
    xr.testing.assert_identical(load_published("mkm395"), load_mkm(395))
    with pytest.raises(ValueError, match="mkm180, mkm395, mkm590, lm180, lm550"):
        load_published("mkm200")


def test_unknown_reference_name_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="mkm180, mkm395, mkm590, lm180, lm550"):
        load_reference("mkm200")
    with pytest.raises(FileNotFoundError, match="mkm180"):
        load_reference(tmp_path / "missing" / "fields.nc")


# ====================================================================== synthetic fields
RE_MKM = 178.12
FINE = ChannelGrid(6, 96, 4, stretching=2.5)


def mkm_mean(grid: ChannelGrid, mkm: xr.Dataset) -> np.ndarray:
    """The MKM U+ profile on the cell centres of ``grid`` (wall distance in its Re_tau)."""
    wall_plus = np.minimum(grid.y, 2.0 - grid.y) * float(mkm.attrs["re_tau_measured"])
    return np.interp(wall_plus, mkm["y_plus"].values, mkm["U"].values)


def field(
    grid: ChannelGrid,
    mean: np.ndarray,
    *,
    fluct: float = 0.0,
    times: np.ndarray = np.arange(3.0),
    seed: int = 0,
    re_tau: float = RE_MKM,
    **attrs,
) -> xr.Dataset:
    """Field ``u = mean(y) + fluct * n``, ``v, w = fluct * n`` with ``n`` random, zero mean over x and z."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(3, times.size, *grid.shape))
    noise -= noise.mean(axis=(2, 4), keepdims=True)
    u = mean[None, None, :, None] + fluct * noise[0]
    return make_fields(grid, u, fluct * noise[1], fluct * noise[2], re_tau=re_tau, time=times, attrs=attrs)


def test_field_built_on_mkm_scores_about_zero(mkm180: xr.Dataset) -> None:
    ds = field(FINE, mkm_mean(FINE, mkm180))
    metrics = run_metrics(run_statistics(ds), mkm180)
    assert abs(metrics["re_tau_error"]) < 0.01
    assert metrics["U_max_abs"] < 0.1
    assert metrics["U_l2"] < 0.005
    # no fluctuations at all: the rms and stress profiles are 0, a relative L2 deviation of exactly 1
    for name in ("u_rms_l2", "v_rms_l2", "w_rms_l2", "uv_l2"):
        assert metrics[name] == pytest.approx(1.0, abs=1e-12)


def test_bump_in_the_mean_gives_its_height_as_max_du(mkm180: xr.Dataset) -> None:
    mean = mkm_mean(FINE, mkm180)
    j = 30  # y+ ~ 45, far from the two cells that set the wall shear
    bump = np.zeros(FINE.ny)
    bump[[j, FINE.ny - 1 - j]] = 0.75
    base, bumped = field(FINE, mean), field(FINE, mean + bump)
    run, ref = run_statistics(bumped), load_reference(base)
    u_tau = float(ref.attrs["u_tau"])
    assert float(run.attrs["u_tau"]) == u_tau  # the bump leaves the wall shear alone
    metrics = run_metrics(run, ref)
    assert metrics["re_tau_error"] == 0.0
    assert metrics["U_max_abs"] == pytest.approx(0.75 / u_tau, rel=1e-12)
    weights = FINE.dy[: FINE.ny // 2]  # ny even: the lower-half cells, no shared centre cell
    expected = np.sqrt(weights[j] * (0.75 / u_tau) ** 2 / np.sum(weights * ref["U"].values ** 2))
    assert metrics["U_l2"] == pytest.approx(expected, rel=1e-10)
    # against MKM the same bump shows up to the small error of the base profile
    against_mkm = run_metrics(run, mkm180)
    assert against_mkm["U_max_abs"] == pytest.approx(0.75, abs=0.05)


def test_re_tau_error_of_a_scaled_mean(mkm180: xr.Dataset) -> None:
    mean = mkm_mean(FINE, mkm180)
    ref = load_reference(field(FINE, mean))
    metrics = run_metrics(run_statistics(field(FINE, 1.21 * mean)), ref)
    assert metrics["re_tau_error"] == pytest.approx(0.1, rel=1e-10)  # u_tau ~ sqrt(wall shear)


def test_relative_l2_falls_back_to_trapezoid_weights(mkm180: xr.Dataset) -> None:
    y_plus = np.geomspace(1.0, 170.0, 30)
    run = run_like(mkm180, y_plus)
    run["U"] = run["U"] * 1.05
    l2 = relative_l2(run, mkm180)
    assert l2["U"] == pytest.approx(0.05, rel=1e-12)
    assert l2["u_rms"] < 1e-12 and l2["n_points"] == 30


def test_spectrum_error_of_scaled_fluctuations(mkm180: xr.Dataset) -> None:
    grid = ChannelGrid(12, 48, 10, stretching=2.0)
    mean = mkm_mean(grid, mkm180)
    ref = field(grid, mean, fluct=0.5, seed=1)
    assert spectrum_error(ref, ref) == 0.0
    scaled = field(grid, mean, fluct=0.5 * 1.5, seed=1)  # same noise, amplitudes x 1.5: spectra x 2.25
    assert spectrum_error(scaled, ref) == pytest.approx(2 * np.log10(1.5), rel=1e-6)
    other = field(grid, mean, fluct=0.5, seed=2)
    assert 0.01 < spectrum_error(other, ref) < 1.0


# ====================================================================== rollouts
def test_rollout_errors_of_the_truth_and_of_scaled_fields(mkm180: xr.Dataset) -> None:
    grid = ChannelGrid(8, 17, 6, stretching=1.5)
    truth = field(grid, mkm_mean(grid, mkm180), fluct=0.8, times=np.arange(6.0), seed=3)
    same = rollout_errors(truth.isel(time=slice(2, None)), truth)
    np.testing.assert_array_equal(same["time"], [2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(same["step"], [0, 1, 2, 3])
    np.testing.assert_array_equal(same["relative_l2"], 0.0)
    np.testing.assert_allclose(same["correlation"], 1.0, rtol=1e-12)

    scaled = truth.copy()
    for name in ("u", "v", "w"):
        scaled[name] = 1.1 * truth[name]
    errors = rollout_errors(scaled, truth)
    np.testing.assert_allclose(errors["relative_l2"], 0.1, rtol=1e-10)
    np.testing.assert_allclose(errors["correlation"], 1.0, rtol=1e-12)

    mirrored = truth.copy()  # fluctuations reversed about the plane means: correlation -1
    for name in ("u", "v", "w"):
        plane_mean = truth[name].mean(("x", "z"))
        mirrored[name] = 2 * plane_mean - truth[name]
    np.testing.assert_allclose(rollout_errors(mirrored, truth)["correlation"], -1.0, rtol=1e-12)


def test_rollout_errors_align_on_time_values(mkm180: xr.Dataset) -> None:
    grid = ChannelGrid(8, 17, 6, stretching=1.5)
    truth = field(grid, mkm_mean(grid, mkm180), fluct=0.8, times=np.arange(6.0), seed=3)
    shifted = truth.isel(time=[1, 3, 4]).assign_coords(time=[1.0, 3.5, 4.0])
    errors = rollout_errors(shifted, truth)
    np.testing.assert_array_equal(errors["time"], [1.0, 4.0])  # 3.5 has no true snapshot
    np.testing.assert_array_equal(errors["step"], [0, 2])
    np.testing.assert_array_equal(errors["relative_l2"], 0.0)
    with pytest.raises(ValidationError, match="share no snapshot time"):
        rollout_errors(truth.assign_coords(time=truth["time"] + 10.5), truth)
    coarse = field(ChannelGrid(4, 17, 6, stretching=1.5), mkm_mean(grid, mkm180), times=np.arange(6.0))
    with pytest.raises(ValidationError, match="different grids"):
        rollout_errors(coarse, truth)


# ====================================================================== report, validate, CLI
@pytest.fixture()
def run_files(tmp_path: Path, mkm180: xr.Dataset) -> dict[str, Path]:
    """A field on the MKM profile (run folder), a perturbed one (file), a rollout file with its truth."""
    grid = ChannelGrid(8, 96, 6, stretching=2.5)
    mean = mkm_mean(grid, mkm180)
    times = np.arange(0.0, 4.0)
    good = write_fields(field(grid, mean, fluct=0.3, times=times, case="good"), tmp_path / "good" / "fields.nc")
    bump = np.where(np.abs(grid.y - 1.0) < 0.5, 0.5, 0.0)
    worse = write_fields(field(grid, mean + bump, fluct=0.4, times=times, seed=1), tmp_path / "worse.nc")
    truth = write_fields(field(grid, mean, fluct=0.3, times=np.arange(0.0, 6.0), seed=2), tmp_path / "truth.nc")
    roll = field(grid, mean, fluct=0.3, times=np.arange(2.0, 6.0), seed=2, truth_file=str(truth),
                 rollout_status="completed")
    roll["u"] = roll["u"] * 1.05
    rollout = write_fields(roll, tmp_path / "model" / "rollout.nc")
    return {"good": good.parent, "worse": worse, "rollout": rollout, "truth": truth}


def test_validate_without_report_returns_the_table(run_files: dict[str, Path]) -> None:
    import surrogate

    assert surrogate.validate is validate
    table = validate([run_files["good"], run_files["worse"]], "mkm180", t_start=1.0)
    assert list(table["run"].values) == ["good", "worse"]
    assert set(TABLE_METRICS) <= set(table.data_vars)
    assert all(table[name].dims == ("run",) for name in TABLE_METRICS)
    np.testing.assert_array_equal(table["n_snapshots"], [3, 3])
    assert float(table["U_max_abs"].sel(run="good")) < 0.1
    assert float(table["U_max_abs"].sel(run="worse")) == pytest.approx(0.5, abs=0.1)  # the bump, wall shear kept
    assert np.isnan(table["spectrum_log_error"]).all()  # published reference: no spectra
    assert np.isnan(table["rollout_error_last"]).all()
    assert table.attrs["reference_re_tau"] == 178.12
    with pytest.raises(ValidationError, match="no snapshot at time >= 9"):
        validate(run_files["good"], "mkm180", t_start=9.0)
    with pytest.raises(ValidationError, match="2 labels for 1 runs"):
        validate(run_files["good"], "mkm180", labels=["a", "b"])


def test_evaluate_gives_the_table_of_validate(run_files: dict[str, Path]) -> None:
    runs = {"good": open_run(run_files["good"]), "worse": open_run(run_files["worse"])}
    evaluation = evaluate(runs, "mkm180", t_start=1.0, figures=False)
    xr.testing.assert_identical(evaluation.table, validate([run_files["good"], run_files["worse"]], "mkm180", t_start=1.0))
    assert [r.label for r in evaluation.runs] == ["good", "worse"]
    assert all(r.pdfs is None and r.spectra is None for r in evaluation.runs)
    assert evaluation.reference.fields is None and "No spectrum error" in evaluation.notes[0]
    with pytest.raises(ValidationError, match="unknown run"):
        evaluate(runs, "mkm180", truth={"other": runs["good"]})


def test_report_against_a_run_with_a_rollout(tmp_path: Path, run_files: dict[str, Path]) -> None:
    out = tmp_path / "report"
    table = validate(
        [run_files["worse"], run_files["rollout"]], run_files["good"], out_dir=out, labels=["worse", "model"],
        command="surrogate validate ...",
    )
    assert list(table["run"].values) == ["worse", "model"]
    assert float(table["spectrum_log_error"].sel(run="worse")) > 0.0
    assert float(table["rollout_error_last"].sel(run="model")) > 0.0
    assert np.isnan(float(table["rollout_error_last"].sel(run="worse")))
    markdown = (out / "report.md").read_text()
    html_text = (out / "report.html").read_text()
    assert "surrogate validate ..." in markdown and "surrogate validate ..." in html_text
    rows = [line for line in markdown.splitlines() if line.startswith("| worse |") or line.startswith("| model |")]
    assert len(rows) == 4  # runs table and metrics table, one row per run each
    for name in ("mean_velocity.png", "stresses.png", "spectra.png", "pdfs.png", "moments.png", "rollout.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"]({name})" in markdown and f'src="{name}"' in html_text
    assert html_text.count("<tr>") == 2 * 3


def test_write_report_with_explicit_truth(tmp_path: Path, run_files: dict[str, Path]) -> None:
    roll = open_run(run_files["rollout"])
    truth = open_run(run_files["truth"])
    table = write_report({"model": roll}, "lm180", tmp_path / "r", truth=truth)
    errors = rollout_errors(roll, truth)
    assert float(table["rollout_error_last"][0]) == float(errors["relative_l2"][-1])
    assert (tmp_path / "r" / "rollout.png").is_file()
    assert "Lee & Moser" in (tmp_path / "r" / "report.md").read_text()


def test_dataset_folder_as_reference(advected: Path) -> None:
    folder = advected.parent if advected.is_file() else advected
    fields = open_run(folder)
    assert fields.attrs["dataset_split"] == "test"
    ref = load_reference(folder)
    assert ref.attrs["label"] == folder.name
    assert ref.attrs["n_snapshots"] == fields.sizes["time"]


def test_cli_validate(tmp_path: Path, run_files: dict[str, Path], capsys) -> None:
    from surrogate.cli import main

    status = main(["validate", str(run_files["good"]), str(run_files["worse"]), "--reference", "mkm180",
                   "--labels", "A", "B", "--t-start", "1"])  # the report itself is tested above (slow figures)
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "against MKM 1999, Re_tau = 178.12"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["A", "B"]

    assert main(["validate", str(run_files["good"]), "--reference", "mkm999"]) == 2
    assert "mkm180, mkm395, mkm590, lm180, lm550" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "nothing.nc"), "--reference", "mkm180"]) == 2
    assert "nothing.nc" in capsys.readouterr().err
    assert main(["validate", str(run_files["good"]), "--reference", str(tmp_path / "nothing")]) == 2
    assert main(["validate", str(run_files["good"]), "--reference", "lm180", "--labels", "A", "B"]) == 2
    assert main(["validate", str(run_files["good"]), "--reference", "lm180", "--t-start", "99"]) == 2
    assert main(["validate", str(run_files["good"]), "--reference", "lm180", "x=1"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(run_files["good"])])
    assert exit_info.value.code == 2


def test_nan_fields_are_named_in_stats_and_validate(tmp_path: Path, mkm180: xr.Dataset, capsys) -> None:
    from surrogate.cli import main

    grid = ChannelGrid(8, 96, 6, stretching=2.5)
    ds = field(grid, mkm_mean(grid, mkm180), fluct=0.3, times=np.arange(0.0, 4.0), case="blown")
    ds["v"][2, 3, 40, 1] = np.nan
    with pytest.raises(ValidationError, match=r"the Dataset: v holds NaN or infinite values \(first at t = 2 h/u_tau\)"):
        ds.channel.stats()
    assert np.isfinite(ds.channel.stats(t_start=3.0)["v_rms"]).all()  # the window after the NaN is fine
    path = write_fields(ds, tmp_path / "blown.nc")
    assert main(["validate", str(path), "--reference", "mkm180"]) == 2
    err = capsys.readouterr().err
    assert "blown: v holds NaN or infinite values (first at t = 2 h/u_tau)" in err and "wall shear" not in err
