"""Rollout constraints: flow rate, zero mean v, projection, the mean profile from the momentum equation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surrogate.constraints import ConstraintSettings, RolloutConstraints
from surrogate.mean_flow import MeanMomentum, bulk_velocity, plane_statistics
from surrogate.projection import CentredProjection
from conftest import SMALL_GRID


def _state(seed: int, bulk_shift: float = 0.0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    state = torch.as_tensor(rng.normal(size=(3,) + SMALL_GRID.shape))
    y = torch.as_tensor(SMALL_GRID.y)
    state[0] += (10 + bulk_shift) * (y * (2 - y))[None, :, None]
    return state


def _bulk(state: torch.Tensor) -> float:
    return float(bulk_velocity(state[0].mean(dim=(0, 2)), SMALL_GRID))


def _apply(settings: ConstraintSettings, prediction: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    return RolloutConstraints(settings, previous, SMALL_GRID, re_tau=100.0, dt=0.1)(prediction, previous)


def test_nothing_imposed_leaves_the_prediction():
    constraints = RolloutConstraints(ConstraintSettings(), _state(0), SMALL_GRID, 100.0, 0.1)
    prediction = _state(1)
    assert constraints.describe() == "none"
    assert torch.equal(constraints(prediction, _state(0)), prediction)


def test_held_flow_rate_and_zero_mean_v():
    initial, prediction = _state(0), _state(1, bulk_shift=3.0)
    out = _apply(ConstraintSettings(zero_mean_v=True, hold_flow_rate=True), prediction, initial)
    assert _bulk(prediction) != pytest.approx(_bulk(initial), rel=1e-3)
    assert _bulk(out) == pytest.approx(_bulk(initial), rel=1e-12)
    assert float(out[1].mean(dim=(0, 2)).abs().max()) < 1e-12
    # only plane means change: the fluctuations are the prediction's
    fluct = lambda q: q - q.mean(dim=(1, 3), keepdim=True)  # noqa: E731
    torch.testing.assert_close(fluct(out), fluct(prediction))


def test_projection_makes_the_prediction_divergence_free():
    out = _apply(ConstraintSettings(project=True), _state(1), _state(0))
    projection = CentredProjection(SMALL_GRID)
    assert float(projection.divergence(out).abs().max()) < 1e-10 * float(out.abs().max())


def test_mean_momentum_replaces_the_predicted_mean_profile():
    previous, prediction = _state(0), _state(1, bulk_shift=5.0)
    settings = ConstraintSettings(mean_momentum=True, hold_flow_rate=True)
    constraints = RolloutConstraints(settings, previous, SMALL_GRID, 100.0, 0.1)
    out = constraints(prediction, previous)
    before = plane_statistics(previous)
    momentum = MeanMomentum(SMALL_GRID, 100.0, 0.1)
    u_expected, _ = momentum.step(before.mean[0], before.uv, _bulk(previous))
    w_expected, _ = momentum.step(before.mean[2], before.vw, None)
    after = out.mean(dim=(1, 3))
    torch.testing.assert_close(after[0], u_expected)
    torch.testing.assert_close(after[2], w_expected)
    torch.testing.assert_close(after[1], prediction[1].mean(dim=(0, 2)))  # v: the model's
    assert _bulk(out) == pytest.approx(_bulk(previous), rel=1e-12)
    assert constraints.describe() == "mean_momentum, hold_flow_rate"
