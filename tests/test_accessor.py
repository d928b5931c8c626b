"""The ``channel`` accessor of field Datasets: thin wrappers over stats, validation and report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import surrogate as sg
from surrogate import stats
from surrogate.fields import FieldError
from surrogate.grid import ChannelGrid
from surrogate.references import load_mkm
from surrogate.evaluation import ValidationError, load_reference, run_statistics

GRID = ChannelGrid(8, 9, 6, stretching=1.5)
RE_TAU = 180.0


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    """A known mean profile ``U = 20 y (2 - y)`` plus random fluctuations of zero plane mean, 4 snapshots."""
    rng = np.random.default_rng(7)
    times = np.arange(4.0)
    noise = rng.normal(size=(3, times.size, *GRID.shape))
    noise -= noise.mean(axis=(2, 4), keepdims=True)
    mean = 20.0 * GRID.y * (2.0 - GRID.y)
    u = mean[None, None, :, None] + 0.5 * noise[0]
    return sg.make_fields(GRID, u, 0.3 * noise[1], 0.4 * noise[2], re_tau=RE_TAU, time=times, attrs={"case": "toy"})


def test_import_registers_the_accessor(ds: xr.Dataset) -> None:
    assert hasattr(xr.Dataset, "channel")
    assert ds.channel.grid == GRID


def test_statistics_are_those_of_the_wrapped_functions(ds: xr.Dataset) -> None:
    window = ds.isel(time=slice(2, None))
    xr.testing.assert_identical(ds.channel.stats(), stats.mean_profiles(ds))
    xr.testing.assert_identical(ds.channel.stats(t_start=2.0), stats.mean_profiles(window))
    xr.testing.assert_identical(ds.channel.stats(fold=False), stats.mean_profiles(ds, fold=False))
    xr.testing.assert_identical(ds.channel.wall_units(), run_statistics(ds))
    xr.testing.assert_identical(ds.channel.wall_units(t_start=2.0, u_tau=1.1), run_statistics(ds, t_start=2.0, u_tau=1.1))
    assert ds.channel.re_tau() == stats.re_tau_measured(ds)
    assert ds.channel.re_tau(t_start=2.0) == stats.re_tau_measured(window)
    xr.testing.assert_identical(ds.channel.moments(), stats.higher_moments(ds))
    xr.testing.assert_identical(ds.channel.moments(t_start=2.0), stats.higher_moments(window))
    xr.testing.assert_identical(ds.channel.total_stress(), stats.total_stress(ds))
    xr.testing.assert_identical(ds.channel.total_stress(t_start=2.0, u_tau=1.0), stats.total_stress(window, u_tau=1.0))
    xr.testing.assert_identical(ds.channel.vorticity(), stats.vorticity(ds))


def test_wall_units_use_the_measured_friction_velocity(ds: xr.Dataset) -> None:
    profiles = ds.channel.wall_units()
    u_tau = stats.friction_velocity(ds)
    assert profiles.attrs["u_tau"] == u_tau
    assert profiles.attrs["re_tau_measured"] == pytest.approx(u_tau * RE_TAU) and profiles.attrs["re_tau"] == RE_TAU
    np.testing.assert_allclose(profiles["U"], stats.mean_profiles(ds)["U"] / u_tau)
    assert ds.channel.wall_units(u_tau=2.0).attrs["u_tau"] == 2.0


def test_spectra_and_pdfs_are_those_of_the_wrapped_functions(ds: xr.Dataset) -> None:
    window = ds.isel(time=slice(1, None))
    xr.testing.assert_identical(ds.channel.spectra(), stats.energy_spectra(ds))
    xr.testing.assert_identical(ds.channel.spectra(y_plus=[5.0, 30.0]), stats.energy_spectra(ds, y_plus=[5.0, 30.0]))
    xr.testing.assert_identical(
        ds.channel.spectra(y=0.5, premultiplied=True, t_start=1.0),
        stats.energy_spectra(window, y=0.5, premultiplied=True),
    )
    xr.testing.assert_identical(
        ds.channel.spectra(y_plus=30.0, u_tau=0.9), stats.energy_spectra(ds, y_plus=30.0, u_tau=0.9)
    )
    xr.testing.assert_identical(ds.channel.pdfs(y_plus=30.0), stats.velocity_pdfs(ds, y_plus=30.0))
    xr.testing.assert_identical(
        ds.channel.pdfs(y=[0.1, 0.9], bins=21, variables=("u", "v"), t_start=1.0),
        stats.velocity_pdfs(window, y=[0.1, 0.9], bins=21, variables=("u", "v")),
    )


def test_window_errors(ds: xr.Dataset) -> None:
    with pytest.raises(ValidationError, match="no snapshot at time >= 9"):
        ds.channel.stats(t_start=9.0)


def test_plot_profiles_returns_a_figure_and_writes_a_png(tmp_path: Path, ds: xr.Dataset) -> None:
    from matplotlib.figure import Figure

    fig = ds.channel.plot_profiles()
    assert isinstance(fig, Figure)
    ax_mean, ax_rms = fig.axes
    assert len(ax_mean.lines) == 2 + 2  # the log law and U+ = y+, the reference, the run
    assert [line.get_label() for line in ax_mean.lines][-1] == "toy"
    reference_u = load_mkm(180)["U"].values
    np.testing.assert_array_equal(ax_mean.lines[2].get_ydata(), reference_u[1:])  # y+ > 0 drawn on the log axis
    np.testing.assert_allclose(ax_mean.lines[3].get_ydata(), run_statistics(ds)["U"].values)

    out = tmp_path / "figs" / "profiles.png"
    fig = ds.channel.plot_profiles(ref="lm180", t_start=1.0, path=out, label="run A", title="toy run")
    assert isinstance(fig, Figure)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [line.get_label() for line in fig.axes[0].lines][-1] == "run A"

    own = Figure()
    axes = own.subplots(1, 2)
    assert ds.channel.plot_profiles(ref=ds, ax=axes) is own  # a run as the reference, drawn into given axes
    assert len(axes[0].lines) == 4 and len(axes[1].lines) == 2 * 4
    single = Figure().subplots()
    assert ds.channel.plot_profiles(ax=single) is single.figure
    assert len(single.lines) == 4


def test_reference_of_plot_profiles_is_load_reference(ds: xr.Dataset) -> None:
    fig = ds.channel.plot_profiles(ref="mkm395")
    np.testing.assert_array_equal(fig.axes[0].lines[2].get_ydata(), load_reference("mkm395")["U"].values[1:])


@pytest.mark.parametrize(
    "call",
    [
        lambda acc: acc.grid,
        lambda acc: acc.stats(),
        lambda acc: acc.wall_units(),
        lambda acc: acc.re_tau(),
        lambda acc: acc.spectra(y_plus=30.0),
        lambda acc: acc.pdfs(y_plus=30.0),
        lambda acc: acc.moments(),
        lambda acc: acc.total_stress(),
        lambda acc: acc.vorticity(),
        lambda acc: acc.plot_profiles(),
    ],
    ids=["grid", "stats", "wall_units", "re_tau", "spectra", "pdfs", "moments", "total_stress", "vorticity",
         "plot_profiles"],
)
def test_a_dataset_that_is_not_a_field_dataset_gives_the_field_error(ds: xr.Dataset, call) -> None:
    profiles = stats.mean_profiles(ds)  # a Dataset, but of profiles
    with pytest.raises(FieldError) as raised:
        call(profiles.channel)
    with pytest.raises(FieldError) as expected:
        sg.check_fields(profiles)
    assert str(raised.value) == str(expected.value)
    no_grid = ds.copy()
    no_grid.attrs = {k: v for k, v in ds.attrs.items() if k != "grid_ny"}
    with pytest.raises(FieldError, match="grid_ny"):
        call(no_grid.channel)
