"""The ``surrogate dns`` command: a tiny case end to end, overrides, errors and resume."""

from __future__ import annotations

import numpy as np
import torch
import pytest
import xarray as xr

from surrogate.cli import main
from surrogate.fields import open_fields
from surrogate.solver.checkpoint import load_checkpoint

TINY_CASE = """
name: tiny
grid: {nx: 8, ny: 9, nz: 8, lx: 2.0, lz: 1.0, stretching: 1.5}
physics: {re_tau: 100.0, forcing: constant_flow_rate}
initial: {kind: turbulent, seed: 1, amplitude: 0.2}
solver: {cfl: 0.8}
run: {t_end: 0.06, snapshot_interval: 0.02, checkpoint_interval: 0.03, snapshot_dtype: float64}
"""


@pytest.fixture()
def case_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_CASE)
    return path


def _run(case_file, tmp_path, *extra):
    return main(["dns", str(case_file), f"run.output={tmp_path}/{{name}}", "--quiet", *extra])


def test_dns_writes_snapshots_checkpoint_and_diagnostics(case_file, tmp_path):
    assert _run(case_file, tmp_path) == 0
    folder = tmp_path / "tiny"
    ds = open_fields(folder / "fields.nc")
    np.testing.assert_allclose(ds.time.values, [0.0, 0.02, 0.04, 0.06], atol=1e-12)
    assert set(ds.data_vars) == {"u", "v", "w", "p"}
    assert (folder / "checkpoint.pt").exists()
    rows = (folder / "diagnostics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4
    assert not (folder / "fields.nc.partial").exists()


def test_resumed_run_equals_uninterrupted_run(case_file, tmp_path):
    assert _run(case_file, tmp_path / "a") == 0
    assert _run(case_file, tmp_path / "b", "run.t_end=0.03") == 0
    assert _run(case_file, tmp_path / "b", "--resume") == 0
    with xr.open_dataset(tmp_path / "a" / "tiny" / "fields.nc") as a, xr.open_dataset(
        tmp_path / "b" / "tiny" / "fields.nc"
    ) as b:
        np.testing.assert_array_equal(a.time.values, b.time.values)
        for name in ("u", "v", "w", "p"):
            np.testing.assert_array_equal(a[name].values, b[name].values)


def test_second_start_without_resume_is_refused(case_file, tmp_path, capsys):
    assert _run(case_file, tmp_path) == 0
    assert _run(case_file, tmp_path) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_refuses_a_changed_case(case_file, tmp_path, capsys):
    assert _run(case_file, tmp_path, "run.t_end=0.03") == 0
    assert _run(case_file, tmp_path, "physics.re_tau=120", "--resume") == 2
    err = capsys.readouterr().err
    assert "other physics" in err and "physics.re_tau: 100.0 -> 120.0" in err


def test_unknown_override_names_the_closest_key(case_file, tmp_path, capsys):
    assert _run(case_file, tmp_path, "solver.cfll=1.0") == 2
    err = capsys.readouterr().err
    assert "solver.cfll" in err and "cfl" in err


def test_diverging_run_keeps_its_last_checkpoint_and_no_complete_file(case_file, tmp_path, capsys):
    assert _run(case_file, tmp_path) == 0
    # a fixed step far beyond the convective stability limit blows the run up after a few steps
    unstable = ("run.t_end=50.0", "run.snapshot_interval=0.04", "run.checkpoint_interval=0.04", "solver.dt=0.04")
    assert _run(case_file, tmp_path, *unstable, "--overwrite") == 1
    assert "diverged" in capsys.readouterr().err
    folder = tmp_path / "tiny"
    assert not (folder / "fields.nc").exists(), "the earlier run's file must not pass for this run's result"
    assert (folder / "fields.nc.partial").exists()
    state, _ = load_checkpoint(folder / "checkpoint.pt")
    assert state.time > 0 and bool(torch.isfinite(state.u).all())


def test_resume_accepts_a_checkpoint_written_before_keys_were_added_to_the_schema(case_file, tmp_path):
    assert _run(case_file, tmp_path, "run.t_end=0.03") == 0
    path = tmp_path / "tiny" / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    for section, key in (("solver", "compile"), ("run", "snapshot_dtype")):
        payload["meta"]["case"][section].pop(key)
    payload["meta"]["case"].pop("sgs")
    payload["meta"]["physics_hash"] = "written by an older schema"
    torch.save(payload, path)
    assert _run(case_file, tmp_path, "--resume") == 0


def test_a_snapshot_interval_longer_than_the_run_is_refused(case_file, tmp_path, capsys):
    assert _run(case_file, tmp_path, "run.snapshot_interval=1.0") == 2
    err = capsys.readouterr().err
    assert "run.snapshot_interval = 1 h/u_tau is longer than the run (t = 0 .. 0.06)" in err
    assert not (tmp_path / "tiny").exists()


def test_ctrl_c_before_the_first_checkpoint_leaves_a_checkpoint_to_resume(case_file, tmp_path, monkeypatch, capsys):
    from surrogate.solver.channel import ChannelSolver

    assert _run(case_file, tmp_path / "a") == 0
    original, calls = ChannelSolver.run, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first snapshot is written, no checkpoint yet
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ChannelSolver, "run", interrupted)
    assert _run(case_file, tmp_path / "b") == 130
    assert "continue with --resume" in capsys.readouterr().err
    state, _ = load_checkpoint(tmp_path / "b" / "tiny" / "checkpoint.pt")
    assert state.time == pytest.approx(0.02)
    monkeypatch.setattr(ChannelSolver, "run", original)
    assert _run(case_file, tmp_path / "b", "--resume") == 0
    with xr.open_dataset(tmp_path / "a" / "tiny" / "fields.nc") as a, xr.open_dataset(tmp_path / "b" / "tiny" / "fields.nc") as b:
        np.testing.assert_array_equal(a.time.values, b.time.values)
        np.testing.assert_array_equal(a.u.values, b.u.values)


def test_a_full_disk_at_the_first_checkpoint_gives_one_line_and_a_way_on(case_file, tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write failed"
        )

    monkeypatch.setattr(torch, "save", full)
    assert _run(case_file, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint.pt (is the disk full?)" in err and "Traceback" not in err
    folder = tmp_path / "tiny"
    assert not (folder / "checkpoint.pt.tmp").exists() and not (folder / "fields.nc").exists()
    monkeypatch.undo()
    assert _run(case_file, tmp_path) == 2
    assert "no checkpoint to resume from; start over with --overwrite" in capsys.readouterr().err
    assert _run(case_file, tmp_path, "--overwrite") == 0


def test_an_unwritable_output_gives_one_line(case_file, tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the run folder's parent should be")
    assert main(["dns", str(case_file), f"run.output={blocked}/{{name}}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("surrogate dns: error: cannot write") and str(blocked) in err
