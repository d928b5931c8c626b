"""The ``surrogate les`` command: subgrid models from case files, and the commands' checks."""

from __future__ import annotations

import json

import numpy as np

import pytest

from surrogate.cli import main
from surrogate.fields import open_fields

LES_CASE = """
name: tiny_les
grid: {nx: 8, ny: 9, nz: 8, lx: 2.0, lz: 1.0, stretching: 1.5}
physics: {re_tau: 100.0, forcing: constant_flow_rate}
initial: {kind: turbulent, seed: 1, amplitude: 0.2}
sgs: {model: MODEL, parameters: PARAMETERS}
run: {t_end: 0.02, snapshot_interval: 0.01, checkpoint_interval: 0.01}
"""


def _case(tmp_path, model="wale", parameters="{}"):
    path = tmp_path / "les.yaml"
    path.write_text(LES_CASE.replace("MODEL", model).replace("PARAMETERS", parameters))
    return path


@pytest.mark.parametrize(
    "model, parameters",
    [("smagorinsky", "{cs: 0.12, a_plus: 26.0}"), ("wale", "{cw: 0.5}"), ("dynamic_smagorinsky", "{}"), ("none", "{}")],
)
def test_les_runs_each_model_and_records_it(tmp_path, model, parameters):
    case = _case(tmp_path, model, parameters)
    assert main(["les", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 0
    ds = open_fields(tmp_path / "tiny_les" / "fields.nc")
    recorded = ds.attrs["sgs_model"]
    if model == "none":
        assert recorded == "none"
    else:
        assert json.loads(recorded)["name"] == model


def test_les_needs_an_sgs_section_and_dns_refuses_one(tmp_path, capsys):
    case = _case(tmp_path)
    assert main(["dns", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 2
    assert "surrogate les" in capsys.readouterr().err
    plain = tmp_path / "dns.yaml"
    plain.write_text(LES_CASE.replace("sgs: {model: MODEL, parameters: PARAMETERS}\n", ""))
    assert main(["les", str(plain), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 2
    assert "needs one" in capsys.readouterr().err


def test_bad_model_parameter_is_named(tmp_path, capsys):
    case = _case(tmp_path, "wale", "{cs: 0.1}")
    assert main(["les", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "sgs.parameters" in err and "cs" in err


def test_unknown_model_name_suggests_the_closest(tmp_path, capsys):
    case = _case(tmp_path, "wael")
    assert main(["les", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 2
    assert "did you mean 'wale'" in capsys.readouterr().err


def test_an_les_starts_from_the_shipped_developed_field_in_any_folder(tmp_path, monkeypatch):
    from pathlib import Path

    from surrogate.cli import main
    from surrogate.fields import open_fields
    from surrogate.references import field_reference_path

    case = Path(__file__).resolve().parents[1] / "cases" / "les_re180_learned.yaml"
    monkeypatch.chdir(tmp_path)
    args = ["les", str(case), "sgs={model: wale}", "run.t_end=60.2", "run.snapshot_interval=0.1", "--quiet"]
    assert main(args) == 0
    ds = open_fields(tmp_path / "runs" / "les_re180_learned" / "fields.nc")
    np.testing.assert_allclose(ds.time.values, [60.0, 60.1, 60.2], atol=1e-9)
    start = open_fields(field_reference_path("fdns180")).isel(time=-1)
    assert float(abs(ds.u.isel(time=0) - start.u).mean()) < 0.1 * float(abs(start.u).mean())
    learned = ["les", str(case), "run.t_end=60.1", "run.snapshot_interval=0.1", "name=learned", "--quiet"]
    assert main(learned) == 0  # the shipped closure neural-energy-target-re180, found by name
    assert "neural-energy-target-re180" in open_fields(tmp_path / "runs" / "learned" / "fields.nc").attrs["sgs_model"]


def test_an_les_starts_from_a_finer_field_of_the_same_box_and_refuses_a_coarser_one(tmp_path, capsys):
    from surrogate.filtering import filter_to_grid
    from surrogate.grid import ChannelGrid
    from surrogate.solver import ChannelSolver

    fine_grid = ChannelGrid(16, 17, 16, lx=2.0, lz=1.0, stretching=1.8)
    fine = ChannelSolver(fine_grid, 100.0, "constant_flow_rate")
    developed = fine.to_dataset(fine.initial_condition("turbulent", seed=5, amplitude=0.4))
    developed.to_netcdf(tmp_path / "developed.nc")
    case = _case(tmp_path, "wale", "{}")
    start = ["initial.kind=file", f"initial.path={tmp_path}/developed.nc", "run.t_end=0.01"]
    assert main(["les", str(case), *start, f"run.output={tmp_path}/{{name}}", "--quiet"]) == 0
    first = open_fields(tmp_path / "tiny_les" / "fields.nc").isel(time=0)
    les = ChannelSolver(ChannelGrid(8, 9, 8, lx=2.0, lz=1.0, stretching=1.5), 100.0, "constant_flow_rate")
    expected = les.to_dataset(les.from_dataset(filter_to_grid(developed, les.grid)))  # filtered, then projected
    trip = les.to_dataset(les.initial_condition("turbulent", seed=1, amplitude=0.2))
    for name in ("u", "v", "w"):
        np.testing.assert_allclose(first[name].values, expected[name].values, rtol=0, atol=1e-5)
        assert float(abs(first[name] - trip[name]).max()) > 0.1

    coarse_grid = ChannelGrid(4, 5, 4, lx=2.0, lz=1.0, stretching=1.5)
    coarse = ChannelSolver(coarse_grid, 100.0, "constant_flow_rate")
    coarse.to_dataset(coarse.initial_condition("turbulent", seed=5)).to_netcdf(tmp_path / "coarse.nc")
    start[1] = f"initial.path={tmp_path}/coarse.nc"
    assert main(["les", str(case), *start, f"run.output={tmp_path}/{{name}}", "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"initial.path {tmp_path}/coarse.nc is on 4 x 5 x 4 cells" in err and "at least as many cells" in err


def test_initial_time_picks_a_snapshot_of_the_file_and_names_a_missing_one(tmp_path, capsys):
    from surrogate.fields import grid_of
    from surrogate.solver import ChannelSolver

    case = _case(tmp_path, "wale", "{}")
    assert main(["les", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 0  # snapshots at t = 0, 0.01, 0.02
    source = tmp_path / "tiny_les" / "fields.nc"
    start = ["initial.kind=file", f"initial.path={source}", "run.t_end=0.02", f"run.output={tmp_path}/from/{{name}}", "--quiet"]
    assert main(["les", str(case), *start, "initial.time=0.01"]) == 0
    with open_fields(source) as ds, open_fields(tmp_path / "from" / "tiny_les" / "fields.nc") as run:
        solver = ChannelSolver(grid_of(ds), 100.0, "constant_flow_rate")
        for time in (0.01, 0.0):  # the state the solver makes of the snapshot at 0.01, not of the one at 0
            made = solver.to_dataset(solver.from_dataset(ds.sel(time=[time])))
            close = np.allclose(run["u"].isel(time=0).values, made["u"].values, rtol=0, atol=1e-5)
            assert close == (time == 0.01)
        assert float(run["time"][0]) == pytest.approx(0.01)  # the run continues the snapshot's clock
    assert main(["les", str(case), *start, "initial.time=0.5", "--overwrite"]) == 2
    assert "initial.time = 0.5 h/u_tau is not a snapshot of" in capsys.readouterr().err
    assert main(["les", str(case), "initial.time=0.5", "--quiet"]) == 2
    assert "time is only used with kind 'file'" in capsys.readouterr().err
