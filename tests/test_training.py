"""Training: losses, checkpoints, resume, overfitting a small dataset, data-parallel training."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from surrogate.cli import main
from surrogate.models import load_model
from surrogate.projection import CentredProjection
from surrogate.config import load_train_case
from surrogate.training import TrainingError, divergence_error, load_trained_model, relative_l2, spectral_error, train
from conftest import SMALL_GRID

TINY_FNO = {"name": "fno", "parameters": {"width": 6, "modes": [3, 3, 2], "n_layers": 2}}


def _case(manifest, folder, data=None, **training):
    spec = {
        "name": "tiny",
        "dataset": str(manifest.parent),
        "model": TINY_FNO,
        "data": {"n_history": 1, "normalization": "component", **(data or {})},
        "training": {"epochs": 3, "batch_size": 4, "lr": 3e-3, **training},
        "output": str(folder / "{name}"),
    }
    return load_train_case(spec)


def _metrics(folder):
    with open(folder / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------------------- losses


def test_relative_l2_of_known_fields():
    target = torch.ones(2, 3, 4, 5, 6)
    pred = target.clone()
    pred[1] *= 1.5
    torch.testing.assert_close(relative_l2(pred, target), torch.tensor([0.0, 0.5]))


def test_spectral_error_ignores_shifts_but_not_amplitude():
    field = torch.randn(1, 3, *SMALL_GRID.shape, dtype=torch.float64)
    shifted = torch.roll(field, shifts=(3, 2), dims=(2, 4))
    assert float(spectral_error(shifted, field)) < 1e-6
    assert float(spectral_error(1.2 * field, field)) == pytest.approx(0.2, rel=1e-5)


def test_divergence_error_vanishes_on_projected_fields():
    projection = CentredProjection(SMALL_GRID)
    field = torch.randn(2, 3, *SMALL_GRID.shape, dtype=torch.float64)
    assert float(divergence_error(projection(field), projection).max()) < 1e-10
    assert float(divergence_error(field, projection).min()) > 0.1


# ---------------------------------------------------------------------------- the run


def test_training_writes_checkpoints_and_metrics_and_learns(advected, tmp_path):
    folder = train(_case(advected, tmp_path, epochs=4), progress=False)
    rows = _metrics(folder)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert all(math.isfinite(float(r["test_loss"])) for r in rows)
    model, checkpoint = load_model(folder / "checkpoint.pt")
    assert checkpoint["epoch"] == 4 and "optimizer" in checkpoint and "rng" in checkpoint
    assert checkpoint["normalization"]["variables"] == ("u", "v", "w")
    best = torch.load(folder / "best.pt", weights_only=False)
    assert best["test_loss"] == pytest.approx(min(float(r["test_loss"]) for r in rows))
    assert yaml.safe_load((folder / "case.yaml").read_text())["model"]["name"] == "fno"


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(advected, tmp_path):
    straight = train(_case(advected, tmp_path / "a", epochs=4), progress=False)
    train(_case(advected, tmp_path / "b", epochs=2), progress=False)
    resumed = train(_case(advected, tmp_path / "b", epochs=4), resume=True, progress=False)
    a, _ = load_model(straight / "checkpoint.pt")
    b, _ = load_model(resumed / "checkpoint.pt")
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert [r["train_loss"] for r in _metrics(straight)] == [r["train_loss"] for r in _metrics(resumed)]


def test_an_existing_run_needs_resume_or_overwrite(advected, tmp_path):
    case = _case(advected, tmp_path, epochs=1)
    train(case, progress=False)
    with pytest.raises(TrainingError, match="--resume or start over with --overwrite"):
        train(case, progress=False)
    train(case, overwrite=True, progress=False)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(_case(advected, tmp_path / "elsewhere", epochs=1), resume=True, progress=False)


def test_resume_refuses_another_model(advected, tmp_path):
    train(_case(advected, tmp_path, epochs=1), progress=False)
    other = _case(advected, tmp_path, epochs=2)
    other.model.parameters["width"] = 8
    with pytest.raises(TrainingError, match="resume with the case it was started with"):
        train(other, resume=True, progress=False)


def test_a_small_model_overfits_a_small_dataset(tmp_path):
    from conftest import advected_dataset

    manifest = advected_dataset(tmp_path, trajectories=1, snapshots=6)
    case = _case(manifest, tmp_path, epochs=150, batch_size=4, lr=1e-2, schedule="cosine", grad_clip=None)
    case.model.parameters = {"width": 8, "modes": [4, 5, 3], "n_layers": 1}
    folder = train(case, progress=False)
    losses = [float(r["train_loss"]) for r in _metrics(folder)]
    assert losses[-1] < losses[0] / 100, (losses[0], losses[-1])


def test_penalties_and_bf16_autocast_train(advected, tmp_path):
    case = _case(advected, tmp_path, epochs=1, divergence_weight=0.1, spectral_weight=0.1, amp="bf16", max_batches=1)
    rows = _metrics(train(case, progress=False))
    assert math.isfinite(float(rows[0]["train_loss"]))


def test_unrolled_targets_train(advected, tmp_path):
    case = _case(advected, tmp_path, epochs=1)
    case.data.n_target = 3
    rows = _metrics(train(case, progress=False))
    assert math.isfinite(float(rows[0]["train_loss"]))


def test_train_command(advected, tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"name": "cli", "dataset": str(advected.parent), "model": TINY_FNO, "training": {"epochs": 1}}))
    assert main(["train", str(path), f"output={tmp_path}/{{name}}", "--quiet"]) == 0
    assert (tmp_path / "cli" / "best.pt").exists()
    assert main(["train", str(path), f"output={tmp_path}/{{name}}", "--quiet"]) == 2
    assert main(["train", str(path), f"output={tmp_path}/{{name}}", "model.name=fnoo", "--quiet"]) == 2


def test_a_truncated_trajectory_file_is_named_as_damaged(advected, tmp_path, capsys):
    files = sorted(advected.parent.glob("*.nc"))
    trajectory = next(p for p in files if p.name.startswith("trajectory"))
    trajectory.write_bytes(trajectory.read_bytes()[:4000])
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"name": "cli", "dataset": str(advected.parent), "model": TINY_FNO, "training": {"epochs": 1}}))
    assert main(["train", str(path), f"output={tmp_path}/{{name}}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"error: cannot read: {trajectory}" in err and "damaged or truncated" in err and "Traceback" not in err


def test_data_parallel_on_two_processes_matches_one(advected, tmp_path):
    single = _metrics(train(_case(advected, tmp_path / "one", epochs=2, batch_size=4), progress=False))
    path = tmp_path / "ddp.yaml"
    spec = {
        "name": "tiny",
        "dataset": str(advected.parent),
        "model": TINY_FNO,
        "data": {"n_history": 1, "normalization": "component"},
        "training": {"epochs": 2, "batch_size": 4, "lr": 3e-3},
        "output": str(tmp_path / "two" / "{name}"),
    }
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SURROGATE_BACKEND": "gloo"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "surrogate.cli", "train", str(path), "--quiet"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    double = _metrics(tmp_path / "two" / "tiny")
    for a, b in zip(single, double):
        np.testing.assert_allclose(float(b["train_loss"]), float(a["train_loss"]), rtol=1e-5)
        np.testing.assert_allclose(float(b["test_loss"]), float(a["test_loss"]), rtol=1e-5)


def test_rollout_recipe_trains_and_selects_by_rollout_statistics(advected, tmp_path):
    case = _case(
        advected, tmp_path, data={"n_target": 3, "augment": ["reflect_y", "reflect_z", "shift"]}, epochs=3, loss="field",
        statistics_weight=0.5, spectral_weight=0.1, pushforward=1, input_noise=0.01, selection="rollout", selection_steps=4,
    )
    case.rollout.zero_mean_v = case.rollout.hold_flow_rate = True
    folder = train(case, progress=False)
    rows = _metrics(folder)
    errors = [float(r["rollout_error"]) for r in rows]
    assert all(math.isfinite(float(r["train_loss"])) for r in rows) and all(e > 0 for e in errors)
    best = torch.load(folder / "best.pt", weights_only=False)
    assert best["selection_score"] == pytest.approx(min(errors))
    assert best["epoch"] == 1 + errors.index(min(errors))


def test_pushforward_must_leave_a_step_with_gradient(advected, tmp_path):
    from surrogate.config import ConfigError

    with pytest.raises(ConfigError, match="pushforward"):
        load_train_case(
            {"name": "x", "dataset": str(advected.parent), "model": TINY_FNO, "data": {"n_target": 2}, "training": {"pushforward": 2}}
        )


def test_pushforward_steps_carry_no_gradient(advected, tmp_path):
    """With pushforward = n_target - 1 the loss sees one step; the gradient equals that of a one-step loss from the pushed state."""
    from surrogate.training import _Run

    case = _case(advected, tmp_path, data={"n_target": 2}, pushforward=1)
    run = _Run(case, progress=False)
    history, target = run._stack([0, 1], run.train_set)
    run.module.zero_grad()
    run._loss(history, target).backward()
    grads = [p.grad.clone() for p in run.module.parameters()]
    with torch.no_grad():
        pushed = run.model(history, run.coords)[:, None]
    run.module.zero_grad()
    run._step_loss(run.norm.denormalize(run.model(pushed, run.coords)), run.norm.denormalize(target[:, 1])).sum().backward()
    for a, p in zip(grads, run.module.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_field_steps_leave_the_later_unrolled_steps_the_statistics_error_alone(advected, tmp_path):
    """field_steps = 1 with n_target = 3: field + statistics on step 1, statistics only on steps 2 and 3,
    all with gradient through the unroll."""
    from surrogate.losses import field_error, statistics_error
    from surrogate.training import _Run

    case = _case(advected, tmp_path, data={"n_target": 3}, loss="field", statistics_weight=0.5, field_steps=1)
    run = _Run(case, progress=False)
    history, target = run._stack([0, 1], run.train_set)
    expected, window = 0.0, history
    for k in range(3):
        pred = run.model(window, run.coords)
        p, t = run.norm.denormalize(pred), run.norm.denormalize(target[:, k])
        step = 0.5 * statistics_error(p, t)
        expected = expected + (step + field_error(p, t) if k == 0 else step).sum()
        window = pred[:, None]
    torch.testing.assert_close(run._loss(history, target), expected / 3)
    full = _Run(_case(advected, tmp_path, data={"n_target": 3}, loss="field", statistics_weight=0.5), progress=False)
    full.module.load_state_dict(run.module.state_dict())
    assert float(full._loss(history, target)) > float(expected / 3)  # the field error of steps 2 and 3 is left out
    from surrogate.config import ConfigError

    with pytest.raises(ConfigError, match="field_steps .* set statistics_weight > 0"):
        _case(advected, tmp_path, field_steps=1)
    with pytest.raises(ConfigError, match="field_steps must be >= 1 or null, got 0"):
        _case(advected, tmp_path, field_steps=0, statistics_weight=1.0)


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
def test_a_damaged_checkpoint_gets_one_clear_message(advected, tmp_path, damage, capsys):
    folder = train(_case(advected, tmp_path, epochs=1), progress=False)
    for name in ("checkpoint.pt", "best.pt"):
        data = (folder / name).read_bytes()
        bad = {"truncated": data[: len(data) // 2], "empty": b"", "random": np.random.default_rng(0).bytes(4096)}[damage]
        (folder / name).write_bytes(bad)
    with pytest.raises(TrainingError, match=r"checkpoint.pt cannot be read as a checkpoint .*start over with --overwrite"):
        train(_case(advected, tmp_path, epochs=2), resume=True, progress=False)
    with pytest.raises(TrainingError, match=r"best.pt cannot be read as a checkpoint \(truncated, empty or not written by torch.save\)"):
        load_trained_model(folder / "best.pt")
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "dataset": str(advected.parent), "model": TINY_FNO, "output": str(tmp_path / "{name}")}))
    assert main(["rollout", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "best.pt cannot be read" in err and "Traceback" not in err and "weights_only" not in err


@pytest.mark.parametrize(
    "command, override, message",
    [
        ("train", "data.n_history=500", "split 'train' has no window of 501 snapshots (n_history 500 + n_target 1)"),
        ("rollout", "rollout.start=999", "rollout.start = 999, but split 'test' has"),
        ("rollout", "rollout.split=validation", "split 'validation' is not in the dataset"),
    ],
)
def test_windows_that_do_not_exist_get_one_line(advected, tmp_path, command, override, message, capsys):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"name": "w", "dataset": str(advected.parent), "model": TINY_FNO, "training": {"epochs": 1},
                                    "output": str(tmp_path / "{name}")}))
    if command == "rollout":
        assert main(["train", str(path), "--quiet"]) == 0
    assert main([command, str(path), override, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
