"""Verification of the channel solver: exact solutions, conservation, round-off divergence, restarts."""

from __future__ import annotations

import math

import pytest
import torch

from surrogate.grid import ChannelGrid
from surrogate.solver.channel import ChannelSolver, ChannelState, SolverDivergedError, dean_bulk_velocity
from surrogate.solver.checkpoint import load_checkpoint, save_checkpoint

STRETCHED = ChannelGrid(16, 17, 12, lx=2.0, lz=1.0, stretching=2.0)


def _max_velocity(state: ChannelState) -> float:
    return max(float(state.u.abs().max()), float(state.v.abs().max()), float(state.w.abs().max()))


def test_laminar_poiseuille_is_steady_to_round_off():
    solver = ChannelSolver(STRETCHED, re_tau=50.0, forcing="constant_pressure_gradient")
    state = solver.initial_condition("laminar")
    end = solver.run(state, steps=50, dt=0.01)
    scale = float(state.u.abs().max())
    assert float((end.u - state.u).abs().max()) < 1e-12 * scale
    assert float(end.v.abs().max()) < 1e-12 * scale
    assert float(end.w.abs().max()) < 1e-12 * scale


def test_laminar_profile_is_the_parabola_to_second_order():
    errors = []
    for ny in (16, 32, 64):
        grid = ChannelGrid(4, ny, 4, stretching=1.5)
        solver = ChannelSolver(grid, re_tau=40.0)
        y = torch.tensor(grid.y, dtype=torch.float64)
        exact = 40.0 / 2 * y * (2 - y)
        errors.append(float((solver.laminar_profile() - exact).abs().max() / exact.max()))
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert errors[-1] < 2e-3
    assert min(orders) > 1.8, (errors, orders)


def test_perturbed_laminar_flow_returns_to_poiseuille_at_low_reynolds_number():
    solver = ChannelSolver(STRETCHED, re_tau=10.0, forcing="constant_pressure_gradient")
    laminar = solver.initial_condition("laminar")
    state = solver.initial_condition("turbulent", seed=3, amplitude=0.2)
    state = ChannelState(laminar.u + (state.u - state.u.mean(dim=(0, 2), keepdim=True)), state.v, state.w, state.p)
    start = float((state.u - laminar.u).abs().max())
    end = solver.run(state, t_end=40.0)
    assert float((end.u - laminar.u).abs().max()) < 1e-3 * start
    assert float(end.v.abs().max()) < 1e-3 * start


def test_divergence_stays_at_round_off_after_every_step_on_a_stretched_grid():
    solver = ChannelSolver(STRETCHED, re_tau=180.0, forcing="constant_flow_rate")
    state = solver.initial_condition("turbulent", seed=1)
    scale = _max_velocity(state) / float(STRETCHED.dy.min())
    worst = []
    solver.run(state, steps=25, callback=lambda s: worst.append(float(solver.divergence(s).abs().max())))
    assert len(worst) == 25
    assert max(worst) < 1e-12 * scale, max(worst) / scale


def test_constant_flow_rate_holds_the_bulk_velocity():
    solver = ChannelSolver(STRETCHED, re_tau=180.0, forcing="constant_flow_rate", bulk_velocity=15.0)
    state = solver.initial_condition("turbulent", seed=2)
    assert solver.bulk(state) == pytest.approx(15.0, rel=1e-12)
    end = solver.run(state, steps=20)
    assert solver.bulk(end) == pytest.approx(15.0, rel=1e-12)
    assert end.pressure_gradient != 1.0


def test_convection_conserves_kinetic_energy_on_a_stretched_grid():
    solver = ChannelSolver(STRETCHED, re_tau=180.0)
    state = solver.initial_condition("turbulent", seed=4, amplitude=1.0)
    ops = solver.ops
    cu, cv, cw = ops.convection(state.u, state.v, state.w)
    v_heights = torch.nn.functional.pad(ops.dyc, (0, 0, 1, 1))
    production = (
        (state.u * cu * ops.dy).sum() + (state.v * cv * v_heights).sum() + (state.w * cw * ops.dy).sum()
    ) * ops.dx * ops.dz
    magnitude = ((state.u * cu).abs() * ops.dy).sum() * ops.dx * ops.dz
    assert abs(float(production)) < 1e-12 * float(magnitude)


def test_restart_matches_an_uninterrupted_run_bit_for_bit(tmp_path):
    solver = ChannelSolver(STRETCHED, re_tau=180.0, forcing="constant_flow_rate")
    start = solver.initial_condition("turbulent", seed=5)
    straight = solver.run(start, steps=10)
    half = solver.run(start, steps=5)
    save_checkpoint(tmp_path / "c.pt", half, {"note": "half way"})
    restored, meta = load_checkpoint(tmp_path / "c.pt")
    assert meta == {"note": "half way"}
    resumed = ChannelSolver(STRETCHED, re_tau=180.0, forcing="constant_flow_rate").run(restored, steps=5)
    for name in ("u", "v", "w", "p"):
        assert torch.equal(getattr(straight, name), getattr(resumed, name)), name
    assert resumed.time == straight.time and resumed.step == straight.step == 10


def test_run_lands_exactly_on_t_end():
    solver = ChannelSolver(STRETCHED, re_tau=180.0)
    state = solver.run(solver.initial_condition("turbulent"), t_end=0.0123)
    assert state.time == 0.0123


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_non_finite_velocity_raises_a_clear_error(compile):
    solver = ChannelSolver(STRETCHED, re_tau=180.0, compile=compile)  # the time-step bound is a compiled reduction
    state = solver.initial_condition("laminar")
    state.u[3, 4, 5] = float("nan")
    with pytest.raises(SolverDivergedError, match="non-finite"):
        solver.run(state, steps=1)
    with pytest.raises(SolverDivergedError, match="non-finite"):
        solver.run(state, steps=1, dt=1e-3)


def test_dataset_round_trip():
    solver = ChannelSolver(STRETCHED, re_tau=180.0)
    laminar = solver.initial_condition("laminar")
    ds = solver.to_dataset(laminar)
    assert set(ds.data_vars) == {"u", "v", "w", "p"}
    assert ds.attrs["re_tau"] == 180.0
    again = solver.from_dataset(ds)
    assert float((again.u - laminar.u).abs().max()) < 1e-12 * float(laminar.u.abs().max())
    # any cell-centred field becomes a divergence-free state
    turbulent = solver.from_dataset(solver.to_dataset(solver.initial_condition("turbulent", seed=6)))
    assert float(solver.divergence(turbulent).abs().max()) < 1e-10


def test_from_dataset_rejects_another_grid():
    solver = ChannelSolver(STRETCHED, re_tau=180.0)
    other = ChannelSolver(ChannelGrid(8, 9, 8, stretching=1.0), re_tau=180.0)
    ds = other.to_dataset(other.initial_condition("laminar"))
    with pytest.raises(ValueError, match="filter or interpolate"):
        solver.from_dataset(ds)


def test_float32_solver_runs_and_stays_divergence_free():
    solver = ChannelSolver(STRETCHED, re_tau=180.0, dtype=torch.float32)
    state = solver.run(solver.initial_condition("turbulent"), steps=3)
    assert state.u.dtype == torch.float32
    assert float(solver.divergence(state).abs().max()) < 1e-3


def test_dean_bulk_velocity_at_re_tau_180():
    assert dean_bulk_velocity(180.0) == pytest.approx(15.6, abs=0.1)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="forcing"):
        ChannelSolver(STRETCHED, re_tau=180.0, forcing="constant_mass")
    with pytest.raises(ValueError, match="re_tau"):
        ChannelSolver(STRETCHED, re_tau=-1.0)
    solver = ChannelSolver(STRETCHED, re_tau=180.0)
    with pytest.raises(ValueError, match="exactly one"):
        solver.run(solver.initial_condition("laminar"))
