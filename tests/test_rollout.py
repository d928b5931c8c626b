"""Autoregressive rollout: streaming to a field file, projection, stopping on blow-up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from surrogate.cli import main
from surrogate.config import ConfigError
from surrogate.constraints import ConstraintSettings
from surrogate.data import Normalization, WindowDataset
from surrogate.fields import open_fields
from surrogate.models import SurrogateModel
from surrogate.projection import CentredProjection
from surrogate.rollout import rollout, rollout_case
from surrogate.config import load_train_case
from surrogate.training import train
from conftest import SMALL_GRID, logged_messages


class ScaledPersistence(SurrogateModel, name="test_scaled_persistence"):
    """Returns ``gain`` times the last state, turning non-finite after ``nan_after`` calls."""

    def __init__(self, n_var: int = 3, n_history: int = 1, gain: float = 1.0, nan_after: int = -1) -> None:
        super().__init__()
        self.gain, self.nan_after, self.calls = gain, nan_after, 0
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, coords):
        self.calls += 1
        out = self.gain * x[:, -1] + self.dummy
        return out * float("nan") if self.calls == self.nan_after else out


def _truth(manifest):
    data = WindowDataset(manifest, "test", normalization=None)
    stats = Normalization.load(manifest.parent / "normalization.nc", mode="component")
    return data, stats


def _roll(manifest, tmp_path, model, steps=5, **kwargs):
    data, stats = _truth(manifest)
    history, _ = data[0]
    return rollout(
        model, history, steps, tmp_path / "roll.nc", normalization=stats, grid=data.grid, dt=data.dt,
        re_tau=data.re_tau, t0=1.0, progress=False, **kwargs,
    )


def test_rollout_streams_every_state(advected, tmp_path):
    result = _roll(advected, tmp_path, ScaledPersistence(), steps=6)
    assert result.completed and result.steps == 6
    ds = open_fields(result.path)
    np.testing.assert_allclose(ds.time.values, 1.0 + 0.1 * np.arange(7), atol=1e-12)
    np.testing.assert_allclose(ds.u.values[6], ds.u.values[0], atol=1e-5)  # persistence, float32 round-off
    assert ds.attrs["rollout_status"] == "completed" and ds.attrs["rollout_steps"] == 6


def test_rollout_writes_every_kth_state(advected, tmp_path):
    result = _roll(advected, tmp_path, ScaledPersistence(gain=0.9), steps=7, output_every=3)
    ds = open_fields(result.path)
    assert result.steps == 7 and ds.attrs["rollout_steps"] == 7 and ds.attrs["rollout_output_every"] == 3
    assert ds.attrs["rollout_seconds_per_step"] == result.seconds_per_step > 0  # steady cost, after the first step
    assert ds.attrs["rollout_warm_up_s"] == result.warm_up_s > 0
    np.testing.assert_allclose(ds.time.values, 1.0 + 0.1 * np.array([0, 3, 6]), atol=1e-12)
    every = open_fields(_roll(advected, tmp_path / "all", ScaledPersistence(gain=0.9), steps=7).path)
    np.testing.assert_array_equal(ds.u.values, every.u.values[[0, 3, 6]])
    with pytest.raises(ConfigError, match="output_every must be >= 1, got 0"):
        _roll(advected, tmp_path / "zero", ScaledPersistence(), steps=2, output_every=0)


def test_compiled_rollout_matches_the_eager_one(advected, tmp_path):
    """torch.compile of a real model: the same states as eager to float32 round-off."""
    from surrogate.models import build_model

    torch.manual_seed(0)
    model = build_model("ifactformer_m", dim=12, heads=2, dim_head=4, kernel_multiplier=2, n_layer=2)
    eager = open_fields(_roll(advected, tmp_path / "eager", model, steps=4).path)
    compiled = open_fields(_roll(advected, tmp_path / "compiled", model, steps=4, compile=True).path)
    scale = float(np.abs(eager.u.values).max())
    for name in "uvw":
        np.testing.assert_allclose(compiled[name].values, eager[name].values, rtol=0, atol=1e-5 * scale)
    assert float(np.abs(eager.u.values[4] - eager.u.values[0]).max()) > 1e-3 * scale  # the model changes the state


def test_a_failed_compile_falls_back_to_the_eager_model_with_a_warning(advected, tmp_path, monkeypatch):
    class InductorFailure(Exception):
        pass

    InductorFailure.__module__ = "torch._inductor.exc"  # the kind of error torch.compile raises

    def failing_compile(model, **options):
        def compiled(*args):
            raise InductorFailure("no C++ compiler found")
        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    with logged_messages() as messages:
        result = _roll(advected, tmp_path / "fallback", ScaledPersistence(gain=0.9), steps=3, compile=True)
    assert result.completed and any("torch.compile of test_scaled_persistence failed" in m and "rolling out eager" in m for m in messages)
    fallback, eager = open_fields(result.path), open_fields(_roll(advected, tmp_path / "eager", ScaledPersistence(gain=0.9), steps=3).path)
    np.testing.assert_array_equal(fallback.u.values, eager.u.values)
    assert fallback.attrs["rollout_compiled"] == 0 and "no C++ compiler found" in fallback.attrs["rollout_compile_error"]
    assert eager.attrs["rollout_compile_error"] == ""


def test_rollout_stops_when_energy_grows_past_the_bound(advected, tmp_path):
    result = _roll(advected, tmp_path, ScaledPersistence(gain=2.0), steps=50, energy_bound=10.0)
    assert not result.completed and "exceeds 10.0 x the initial" in result.status
    ds = open_fields(result.path)  # a finished file with the steps before the blow-up
    assert ds.sizes["time"] == result.steps + 1 and 1 <= result.steps < 50


def test_rollout_stops_on_non_finite_values(advected, tmp_path):
    result = _roll(advected, tmp_path, ScaledPersistence(nan_after=3), steps=10)
    assert result.steps == 2 and "non-finite" in result.status
    assert np.isfinite(open_fields(result.path).u.values).all()


def test_a_rollout_too_large_for_its_bound_is_refused_before_it_writes(advected, tmp_path):
    with pytest.raises(ConfigError, match=r"a rollout of 100000 steps .* writes about .* GB .*rollout.max_output_gb = 0.01"):
        _roll(advected, tmp_path, ScaledPersistence(), steps=100_000, max_output_gb=0.01)
    assert not list(tmp_path.glob("roll.nc*"))


def test_projected_rollout_is_divergence_free(advected, tmp_path):
    result = _roll(advected, tmp_path, ScaledPersistence(), steps=3, constraints=ConstraintSettings(project=True))
    ds = open_fields(result.path)
    projection = CentredProjection(SMALL_GRID)
    fields = torch.as_tensor(np.stack([ds[n].values for n in "uvw"], axis=1), dtype=torch.float64)
    div = projection.divergence(fields).abs().amax(dim=(1, 2, 3))
    scale = fields[:, 0].abs().max() / SMALL_GRID.dy.min()
    assert float(div[0]) > 1e-2 * float(scale)  # the true initial state of random data is not
    assert float(div[1:].max()) < 1e-5 * float(scale)


def test_rollout_case_and_command(advected, tmp_path):
    spec = {
        "name": "roll",
        "dataset": str(advected.parent),
        "model": {"name": "fno", "parameters": {"width": 4, "modes": [2, 2, 2], "n_layers": 1}},
        "training": {"epochs": 1},
        "rollout": {"steps": 4, "start": 1},
        "output": str(tmp_path / "{name}"),
    }
    train(load_train_case(spec), progress=False)
    result = rollout_case(load_train_case(spec), progress=False)
    ds = open_fields(result.path)
    truth = WindowDataset(advected, "test", normalization=None)
    assert ds.sizes["time"] == 5 and ds.attrs["model"] == "fno" and ds.attrs["truth_first_snapshot"] == 1
    np.testing.assert_allclose(ds.time.values[0], truth.times(1)[0])
    np.testing.assert_allclose(ds.u.values[0], truth[1][0][0, 0].numpy(), rtol=1e-6)
    path = tmp_path / "roll.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["rollout", str(path), "--quiet"]) == 2  # rollout.nc exists
    assert main(["rollout", str(path), "--overwrite", "--quiet", "rollout.steps=2"]) == 0
    assert open_fields(result.path).sizes["time"] == 3
    with pytest.raises(FileNotFoundError, match="train the model first"):
        rollout_case(load_train_case({**spec, "output": str(tmp_path / "untrained" / "{name}")}))
