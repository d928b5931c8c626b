"""Training losses: each component on its own scale, plane statistics, spectra without the mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surrogate.losses import field_error, spectral_error, statistics_error
from conftest import SMALL_GRID


def _batch(seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    q = torch.as_tensor(rng.normal(size=(2, 3) + SMALL_GRID.shape))
    q[:, 0] = 15 + 2 * q[:, 0]
    q[:, 1:] *= 0.5
    return q


def test_field_error_weighs_each_component_by_its_fluctuations():
    true = _batch()
    assert torch.equal(field_error(true, true), torch.zeros(2, dtype=true.dtype))
    noise = torch.as_tensor(np.random.default_rng(1).normal(size=SMALL_GRID.shape))
    errors = []
    for c, rms in ((0, 2.0), (1, 0.5)):  # the same relative error in u and in v
        pred = true.clone()
        pred[:, c] += 0.1 * rms * (noise - noise.mean(dim=(0, 2), keepdim=True))
        errors.append(field_error(pred, true))
    torch.testing.assert_close(errors[0], errors[1], rtol=0.05, atol=0)


def test_field_error_sees_a_mean_bias_that_relative_l2_hides():
    from surrogate.losses import relative_l2

    true = _batch()
    biased = true.clone()
    biased[:, 0] += 0.05  # a plane-mean bias of 0.05 u_tau
    assert float(relative_l2(biased, true).max()) < 0.005
    assert float(field_error(biased, true).min()) > 0.02 / 3 * 0.9


def test_statistics_error_ignores_shifts_but_not_a_loss_of_fluctuations():
    true = _batch()
    shifted = true.roll(3, dims=2)
    assert float(statistics_error(shifted, true).max()) < 1e-12
    damped = true.clone()
    damped[:, 1:] = damped[:, 1:] - 0.5 * (damped[:, 1:] - damped[:, 1:].mean(dim=(2, 4), keepdim=True))
    assert float(statistics_error(damped, true).min()) > 0.1


def test_statistics_terms_weigh_each_profile():
    true = _batch()
    pred = true.clone()
    w = pred[:, 2]
    pred[:, 2] = w + 0.3 * (w - w.mean(dim=(1, 3), keepdim=True))  # only w_rms is wrong (by 30 %)
    even = statistics_error(pred, true)
    assert float(even.min()) > 0.3 / 5 * 0.9
    torch.testing.assert_close(statistics_error(pred, true, {"w_rms": 0.0}), torch.zeros_like(even), atol=1e-12, rtol=0)
    torch.testing.assert_close(statistics_error(pred, true, {"w_rms": 4.0}), even * 5 * 4 / 8)


def test_statistics_terms_are_checked_in_the_case():
    from surrogate.config import TrainingConfig

    with pytest.raises(ValueError, match=r"statistics_terms: unknown profile\(s\) \['ww'\]"):
        TrainingConfig(statistics_terms={"ww": 1.0}).validate()
    with pytest.raises(ValueError, match="not all 0"):
        TrainingConfig(statistics_terms=dict.fromkeys(("U", "u_rms", "v_rms", "w_rms", "uv"), 0.0)).validate()


def test_spectral_error_without_the_mean_ignores_a_mean_offset():
    true = _batch()
    offset = true + 1.0
    assert float(spectral_error(offset, true).min()) > 1e-3
    assert float(spectral_error(offset, true, include_mean=False).max()) < 1e-5
