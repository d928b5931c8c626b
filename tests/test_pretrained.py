"""The shipped models: cards, loading, a rollout from a user's bare Dataset, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import surrogate as sg
from surrogate.cli import main
from surrogate.fields import FieldError
from surrogate.references import field_reference_path
from surrogate.evaluation import load_reference
from surrogate.pretrained import export_pretrained, load_pretrained, pretrained_dir, pretrained_models, rollout_pretrained

TEST_TRAJECTORY = Path(__file__).resolve().parents[1] / "validation" / "data" / "dataset_re180" / "trajectory_001.nc"
NAMES = [card.name for card in pretrained_models()]


def _bare(ds: xr.Dataset) -> xr.Dataset:
    """The velocities on their coordinates, every attribute dropped: a user's own Dataset."""
    bare = xr.Dataset({name: (ds[name].dims, ds[name].values) for name in ("u", "v", "w")},
                      coords={name: ds[name].values for name in ("time", "x", "y", "z")})
    assert not bare.attrs and not bare["u"].attrs
    return bare


@pytest.fixture(scope="module")
def snapshots() -> xr.Dataset:
    with sg.open_fields(TEST_TRAJECTORY) as ds:
        return _bare(ds.isel(time=slice(0, 4)).load())


def test_a_model_ships_with_its_card():
    assert NAMES, f"no model in {pretrained_dir()}"
    for card in pretrained_models():
        assert (pretrained_dir() / f"{card.name}.pt").is_file()
        assert card.command and card.trained_on and card.rollout


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_rolls_out_from_a_bare_dataset(name, snapshots, tmp_path):
    model, checkpoint = load_pretrained(name)
    assert not model.training
    assert checkpoint["grid"].shape == (snapshots.sizes["x"], snapshots.sizes["y"], snapshots.sizes["z"])
    result = rollout_pretrained(name, snapshots, 3, tmp_path / "r.nc", t_start=float(snapshots.time[2]), progress=False)
    assert result.completed and result.steps == 3
    with sg.open_fields(result.path) as out:
        assert out.attrs["pretrained"] == name
        np.testing.assert_allclose(out.time.values, float(snapshots.time[2]) + checkpoint["dt"] * np.arange(4), atol=1e-9)
        np.testing.assert_array_equal(out.u.isel(time=0).values, snapshots.u.isel(time=2).values.astype(np.float32))
        assert np.isfinite(out.u.values).all() and not np.allclose(out.u.isel(time=-1), out.u.isel(time=0))


def test_export_keeps_what_a_rollout_needs_and_drops_the_optimiser(tmp_path):
    import torch

    shipped = pretrained_dir() / f"{NAMES[0]}.pt"
    path = export_pretrained(shipped, tmp_path / "again.pt")
    a, b = torch.load(shipped, weights_only=False), torch.load(path, weights_only=False)
    assert "optimizer" not in b and set(a) == set(b)
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0)


def test_another_grid_is_refused_with_the_coordinate_named(snapshots, tmp_path):
    coarse = snapshots.isel(z=slice(0, 6))
    with pytest.raises(FieldError, match=r"coordinate z has 6 points.*expects 12"):
        rollout_pretrained(NAMES[0], coarse, 2, tmp_path / "r.nc", progress=False)
    shifted = snapshots.assign_coords(y=snapshots.y + 0.01)
    with pytest.raises(FieldError, match="coordinate y does not match the model's grid"):
        rollout_pretrained(NAMES[0], shifted, 2, tmp_path / "r.nc", progress=False)
    assert not list(tmp_path.iterdir())


def test_bad_start_is_refused(snapshots, tmp_path):
    nan = snapshots.copy(deep=True)
    nan["v"][-1, 0, 0, 0] = np.nan
    with pytest.raises(FieldError, match="NaN"):
        rollout_pretrained(NAMES[0], nan, 2, tmp_path / "r.nc", progress=False)
    with pytest.raises(ValueError, match="t_start = 99 lies outside"):
        rollout_pretrained(NAMES[0], snapshots, 2, tmp_path / "r.nc", t_start=99.0, progress=False)
    with pytest.raises(ValueError, match="no pretrained model 'nope'; shipped: " + NAMES[0]):
        load_pretrained("nope")


def test_pretrained_command(tmp_path, snapshots, capsys):
    assert main(["pretrained"]) == 0
    assert NAMES[0] in capsys.readouterr().out
    start = tmp_path / "start.nc"
    sg.write_fields(sg.open_fields(TEST_TRAJECTORY).isel(time=slice(0, 2)).load(), start)
    out = tmp_path / "rollout.nc"
    assert main(["pretrained", NAMES[0], "--initial", str(start), "--steps", "2", "--out", str(out), "--quiet"]) == 0
    assert sg.open_fields(out).sizes["time"] == 3
    assert main(["pretrained", NAMES[0], "--initial", str(start), "--steps", "2", "--out", str(out), "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["pretrained", NAMES[0], "--steps", "2"]) == 2
    assert "needs --out FILE" in capsys.readouterr().err
    assert main(["pretrained", "nope", "--initial", str(start), "--out", str(out)]) == 2
    assert "no pretrained model 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("name", NAMES)
def test_a_shipped_model_rolls_out_from_its_shipped_window_and_validates(name, tmp_path, capsys):
    """No dataset on disk: 20 steps from the card's window, then the report against that reference."""
    card = next(card for card in pretrained_models() if card.name == name)
    out = tmp_path / "rollout.nc"
    assert main(["pretrained", name, "--steps", "20", "--out", str(out), "--quiet"]) == 0
    rolled = sg.open_fields(out)
    reference = sg.open_fields(field_reference_path(card.initial))
    assert rolled.sizes["time"] == 21 and float(rolled.time[0]) == float(reference.time[0])
    np.testing.assert_array_equal(rolled["u"].isel(time=0).values, reference["u"].isel(time=0).values)
    assert main(["validate", str(out), "--reference", card.initial, "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert card.initial in report
    # 20 steps (4 h/u_tau) from a developed state keep the mean profile of the reference
    stats = load_reference(out)
    assert abs(stats.attrs["re_tau_measured"] / load_reference(card.initial).attrs["re_tau_measured"] - 1) < 0.1


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_card_figures_reproduce(name, tmp_path):
    """The 1000-step rollout of each shipped model from the test trajectory gives its card's figures."""
    import torch

    from surrogate.study import energy_ratio
    from surrogate.training import step_change
    from surrogate.evaluation import evaluate

    card = next(card for card in pretrained_models() if card.name == name)
    expected = dict(card.rollout)
    result = rollout_pretrained(name, TEST_TRAJECTORY, expected.pop("steps"), tmp_path / "r.nc", t_start=20.0, progress=False)
    assert result.completed
    with sg.open_fields(result.path) as ds:
        half = ds.isel(time=slice(ds.sizes["time"] // 2, None))
        measured = {
            "energy_ratio": energy_ratio(ds),
            "step_change": step_change(torch.as_tensor(np.stack([half[n].values for n in ("u", "v", "w")], axis=1))),
        }
        table = evaluate({"r": ds}, TEST_TRAJECTORY.parent, figures=False).table
        measured.update({key: float(table[key].sel(run="r")) for key in expected if key not in measured})
    for key, value in expected.items():
        assert measured[key] == pytest.approx(value, rel=0.02, abs=0.005), (key, measured[key], value)
