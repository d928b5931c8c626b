"""`surrogate run`: a whole study in one folder, stages reused by content, interrupted stages resumed."""

from __future__ import annotations

import math
import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from surrogate.cli import main
from surrogate.config import ConfigError
from surrogate.data import load_dataset_case
from surrogate.fields import open_fields
from surrogate.study import read_study_manifest, run_study
from surrogate.config import load_study_case
from conftest import logged_messages

CASES = Path(__file__).resolve().parents[1] / "cases"

# A DNS of 1.5 h/u_tau on 16 x 17 x 16 cells (not turbulent, but every stage has real data),
# filtered onto 8 x 9 x 8; two LES; one small FNO; a 5-step rollout; the report against the data.
TINY = {
    "name": "tiny",
    "dataset": {
        "case": str(CASES / "dataset_quick.yaml"),
        "overrides": [
            f"source.case={CASES / 'quick.yaml'}",
            "source.overrides=[run.t_end=1.5, grid.nx=16, grid.ny=17, grid.nz=16]",
            "source.t_start=0.5",
            "coarse_grid={nx: 8, ny: 9, nz: 8, stretching: 2.0}",
        ],
    },
    "les": {"models": ["none", "wale"], "t_end": 0.6, "stats_start": 0.2, "snapshot_interval": 0.1, "checkpoint_interval": 0.2},
    "surrogates": [
        {
            "label": "fno",
            "model": {"name": "fno", "parameters": {"width": 4, "modes": [2, 2, 2], "n_layers": 1, "projection_width": 8}},
            "training": {"epochs": 2},
        }
    ],
    "rollout": {"steps": 5},
    "validation": {"references": ["dataset"]},
}
STAGES = ["dataset", "les/none", "les/wale", "train/fno", "rollout/fno", "report"]


def _run(case=TINY, overrides=(), messages=None):
    study = load_study_case(case, overrides)
    with logged_messages() as logged:
        folder = run_study(study, progress=False)
    if messages is not None:
        messages.extend(logged)
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A folder whose ``runs/tiny`` holds the finished tiny study."""
    folder = tmp_path_factory.mktemp("study")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        _run()
    finally:
        os.chdir(cwd)
    return folder


@pytest.fixture
def copy(finished, tmp_path, monkeypatch) -> Path:
    """A private copy of the finished study, as the working directory."""
    shutil.copytree(finished / "runs", tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "runs" / "tiny"


def test_every_stage_is_recorded_done_with_its_key_and_time(finished):
    manifest = read_study_manifest(finished / "runs" / "tiny")
    assert list(manifest["stages"]) == STAGES
    for name, record in manifest["stages"].items():
        assert record["status"] == "done", name
        assert len(record["key"]) == 12 and record["wall_s"] >= 0
    assert manifest["stages"]["dataset"]["dns_wall_s"] > 0
    assert manifest["stages"]["rollout/fno"]["rollout_status"] == "completed"
    assert manifest["stages"]["rollout/fno"]["steps"] == 5
    assert manifest["case"]["name"] == "tiny"


def test_summary_has_each_method_with_its_statistics_and_cost(finished):
    folder = finished / "runs" / "tiny"
    with open(folder / "summary.csv", newline="") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"LES none", "LES wale", "fno"}
    for row in rows.values():
        assert float(row["re_tau"]) > 0 and float(row["cost"]) > 0
    assert float(rows["LES wale"]["speed_up"]) == pytest.approx(1.0)
    assert rows["fno"]["stable"] == "yes" and 0 < float(rows["fno"]["one_step_l2"]) < 10
    assert float(rows["fno"]["energy_ratio"]) > 0 and rows["LES wale"]["energy_ratio"] == "nan"
    assert float(rows["LES wale"]["re_tau_forcing"]) > 0 and rows["fno"]["re_tau_forcing"] == "nan"
    summary = (folder / "summary.md").read_text()
    assert "| fno | surrogate | yes |" in summary and "x faster than LES wale" in summary
    for name in ("report.md", "report.html", "mean_velocity.png", "rollout.png"):
        assert (folder / "report" / "dataset" / name).is_file()


def test_the_les_start_from_the_last_training_snapshot_of_the_dataset(finished):
    folder = finished / "runs" / "tiny"
    manifest = yaml.safe_load((folder / "dataset" / "manifest.yaml").read_text())
    train = manifest["splits"]["train"][0]
    with open_fields(folder / "dataset" / train["file"]) as ds:
        start = ds.isel(time=train["stop"] - 1).load()
    with open_fields(folder / "les" / "none" / "fields.nc") as les:
        first = les.isel(time=0).load()
    assert float(first["time"]) == float(start["time"])  # the LES continue the snapshot's clock
    case = yaml.safe_load((folder / "les" / "none" / "case.yaml").read_text())
    assert case["run"]["t_end"] == pytest.approx(float(start["time"]) + TINY["les"]["t_end"])
    error = float(np.sqrt(((first["u"] - start["u"]) ** 2).mean() / (start["u"] ** 2).mean()))
    assert error < 0.05, error  # the projection onto divergence-free fields changes the filtered field a little
    for name in ("v", "w"):
        correlation = float(np.corrcoef(first[name].values.ravel(), start[name].values.ravel())[0, 1])
        assert correlation > 0.8, (name, correlation)


def test_second_run_reuses_every_stage(copy):
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*.nc")}
    messages: list[str] = []
    _run(messages=messages)
    assert [m for m in messages if "up to date" in m] == [f"{name}: up to date ({read_study_manifest(copy)['stages'][name]['key']})" for name in STAGES]
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*.nc")} == before


def test_changed_rollout_redoes_only_the_rollout_and_the_report(copy):
    old = read_study_manifest(copy)["stages"]
    messages: list[str] = []
    _run(overrides=["rollout.steps=3"], messages=messages)
    new = read_study_manifest(copy)["stages"]
    redone = [name for name in STAGES if new[name]["key"] != old[name]["key"]]
    assert redone == ["rollout/fno", "report"]
    assert new["rollout/fno"]["steps"] == 3
    assert any(m.startswith("rollout/fno: settings or inputs changed") for m in messages)


def test_changed_dataset_redoes_the_stages_that_read_it(copy):
    old = read_study_manifest(copy)["stages"]
    dataset = {**TINY["dataset"], "overrides": [*TINY["dataset"]["overrides"], "dt_snapshot=0.2"]}
    _run({**TINY, "dataset": dataset})
    new = read_study_manifest(copy)["stages"]
    redone = [name for name in STAGES if new[name]["key"] != old[name]["key"]]
    assert redone == STAGES  # the LES start from the dataset's last training snapshot
    manifest = yaml.safe_load((copy / "dataset" / "manifest.yaml").read_text())
    assert manifest["dt_snapshot"] == 0.2
    _run({**TINY, "dataset": dataset, "les": {**TINY["les"], "start": "case"}})
    again = read_study_manifest(copy)["stages"]
    assert [name for name in STAGES if again[name]["key"] != new[name]["key"]] == ["les/none", "les/wale", "report"]
    dataset["overrides"] = TINY["dataset"]["overrides"]
    _run({**TINY, "dataset": dataset, "les": {**TINY["les"], "start": "case"}})
    last = read_study_manifest(copy)["stages"]  # from the trip, the LES read only the grid
    assert [name for name in STAGES if last[name]["key"] != again[name]["key"]] == ["dataset", "train/fno", "rollout/fno", "report"]


def test_interrupted_training_is_resumed_and_its_time_summed(copy, monkeypatch):
    import surrogate.training as training

    real_train = training.train
    calls = []

    def interrupted(case, **kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            real_train(case, **kwargs)
            raise KeyboardInterrupt
        return real_train(case, **kwargs)

    monkeypatch.setattr(training, "train", interrupted)
    three_epochs = {**TINY, "surrogates": [{**TINY["surrogates"][0], "training": {"epochs": 3}}]}
    with pytest.raises(KeyboardInterrupt):
        _run(three_epochs)
    record = read_study_manifest(copy)["stages"]["train/fno"]
    assert record["status"] == "failed"
    first = record["wall_s"]
    _run(three_epochs)
    assert calls[0] == {"resume": False, "overwrite": True, "progress": False}
    assert calls[1]["resume"] is True
    record = read_study_manifest(copy)["stages"]["train/fno"]
    assert record["status"] == "done" and record["epochs"] == 3 and record["wall_s"] >= first


def test_existing_dataset_folder_is_used_as_it_is(copy):
    case = {**TINY, "name": "reuse", "dataset": {"path": str(copy / "dataset")}, "les": None}
    _run(case)
    stages = read_study_manifest(copy.parent / "reuse")["stages"]
    assert stages["dataset"]["made_here"] is False and stages["dataset"]["path"] == str(copy / "dataset")
    assert list(stages) == ["dataset", "train/fno", "rollout/fno", "report"]


def test_cli_runs_a_study_case_file(copy, capsys):
    path = copy.parent.parent / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    assert main(["run", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| fno | surrogate | yes |" in out and "summary in" in out


@pytest.mark.parametrize(
    "change, message",
    [
        ({"dataset": {"case": "a.yaml", "path": "b"}}, "exactly one of 'case'"),
        ({"validation": {"speed_baseline": "dynamic_smagorinsky"}}, "speed_baseline"),
        ({"surrogates": [TINY["surrogates"][0]] * 2}, "labels must be distinct"),
        ({"les": {"models": ["wale"], "parameters": {"smagorinsky": {"cs": 0.1}}}}, "not in models"),
        ({"rolout": {"steps": 3}}, "rolout"),
        ({"surrogates": [{**TINY["surrogates"][0], "training": {"pushforward": 1}}]}, r"surrogates\[0\].*pushforward \(1\) must be less than data.n_target \(1\)"),
    ],
)
def test_bad_study_case_names_what_is_wrong(change, message):
    with pytest.raises(ConfigError, match=message):
        load_study_case({**TINY, **change})


def test_missing_existing_dataset_is_a_clear_error(tmp_path):
    case = load_study_case({**TINY, "dataset": {"path": str(tmp_path / "nowhere")}, "output": str(tmp_path / "{name}")})
    with pytest.raises(FileNotFoundError, match="no manifest.yaml"):
        run_study(case, progress=False)


@pytest.mark.parametrize("path", sorted(CASES.glob("study_*.yaml")) + [CASES / "quickstart.yaml"], ids=lambda p: p.name)
def test_shipped_study_cases_load_with_their_dataset_cases(path):
    study = load_study_case(path)
    if study.dataset.case is not None:
        load_dataset_case(study.dataset.case, study.dataset.overrides)
    assert study.surrogates and study.les is not None


@pytest.mark.slow
def test_quickstart_study_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(CASES / "quickstart.yaml"), "--quiet"]) == 0
    folder = tmp_path / "runs" / "quickstart"
    stages = read_study_manifest(folder)["stages"]
    assert all(record["status"] == "done" for record in stages.values())
    with open(folder / "summary.csv", newline="") as handle:
        methods = [row["method"] for row in csv.DictReader(handle)]
    assert methods == [
        "LES none", "LES smagorinsky", "LES wale", "LES dynamic_smagorinsky",
        "ifactformer_m", "ifactformer_o", "fno", "ifno", "encoder",
    ]
    for reference in ("dataset", "mkm180"):
        assert (folder / "report" / reference / "report.html").is_file()


def test_redo_runs_the_named_stage_again_and_leaves_the_others(copy):
    with logged_messages() as messages:
        run_study(load_study_case(TINY), redo=["les"], progress=False)
    redone = [m.split(":")[0] for m in messages if ": done in " in m]
    assert redone == ["les/none", "les/wale"]


def test_forcing_re_tau_balances_the_mean_pressure_gradient_of_the_window(tmp_path):
    from surrogate.study import forcing_re_tau

    path = tmp_path / "diagnostics.csv"
    rows = [(0.0, 0.0), (1.0, 3.0), (2.0, 0.81), (3.0, 0.64), (4.0, 1.0)]  # (time, -dP/dx in u_tau^2/h)
    path.write_text("time,pressure_gradient\n" + "".join(f"{t},{g}\n" for t, g in rows))
    assert forcing_re_tau(path, 180.0, t_start=2.0) == pytest.approx(180.0 * math.sqrt((0.81 + 0.64 + 1.0) / 3))
    assert forcing_re_tau(path, 180.0, t_start=9.0) != forcing_re_tau(path, 180.0, t_start=9.0)  # no rows: NaN


def test_solver_cost_ignores_start_up_and_the_restart_of_a_resumed_run(tmp_path):
    from surrogate.study import solver_cost

    rows = [(0.0, 0.0), (1.0, 30.0)]                         # compilation in the first interval
    rows += [(t, 30.0 + 2.0 * (t - 1.0)) for t in (2.0, 3.0, 4.0, 5.0)]  # 2 s per h/u_tau
    rows += [(4.0, 0.1), (5.0, 2.1), (6.0, 4.1), (7.0, 6.1)]   # resumed at t = 4: the clock restarts
    path = tmp_path / "diagnostics.csv"
    path.write_text("time,wall_seconds\n" + "".join(f"{t},{w}\n" for t, w in rows))
    assert solver_cost(path) == pytest.approx(2.0)
