"""The learned eddy viscosity and its training through the differentiable solver."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from surrogate.closure_training import ClosureSample, a_posteriori_loss, train_closure_step, unroll
from surrogate.grid import ChannelGrid
from surrogate.solver import ChannelSolver, NeuralEddyViscosity
from surrogate.solver.sgs import Smagorinsky, build_sgs_model, strain_rate_magnitude, velocity_gradient

GRID = ChannelGrid(8, 9, 8, lx=2.0, lz=1.0, stretching=1.5)
RE_TAU, DT = 100.0, 0.005  # within the explicit diffusion limit of every closure here


def _solver(sgs) -> ChannelSolver:
    return ChannelSolver(GRID, RE_TAU, "constant_flow_rate", sgs=sgs, dtype=torch.float64)


def _start(solver: ChannelSolver):
    return solver.initial_condition("turbulent", seed=2, amplitude=0.5)


def _assert_the_no_model_les(closure: NeuralEddyViscosity, steps: int, *, exact: bool = True) -> None:
    """``steps`` LES steps with ``closure`` equal those of the no-model LES bit for bit, or with
    ``exact=False`` to round-off (relative 1e-13; a closure with a pointwise ``nu_t`` sums its
    stress into the convective flux before differencing, which rounds differently)."""
    plain, learned = _solver(None), _solver(closure)
    a, b = _start(plain), _start(learned)
    for _ in range(steps):
        a, b = plain.step(a, DT), learned.step(b, DT)
    for name in ("u", "v", "w", "p"):
        expected, actual = getattr(a, name), getattr(b, name).detach()
        if exact:
            assert torch.equal(expected, actual), name
        else:
            assert float((actual - expected).abs().max()) < 1e-13 * float(expected.abs().max()), name


def test_a_zero_network_is_the_no_model_les_to_round_off() -> None:
    closure = NeuralEddyViscosity()
    torch.nn.init.zeros_(closure.network.head.bias)
    _assert_the_no_model_les(closure, steps=5, exact=False)


def test_nu_t_is_non_negative_and_starts_as_damped_smagorinsky() -> None:
    solver = _solver(None)
    state = _start(solver)
    closure = NeuralEddyViscosity(cs=0.13)
    undamped = Smagorinsky(cs=0.13, van_driest=False).eddy_viscosity(solver.ops, state.u, state.v, state.w, solver.nu)
    distance = torch.as_tensor(GRID.wall_distance(), dtype=torch.float64).view(1, -1, 1)
    damping = 1 - torch.exp(-distance * RE_TAU / 25.0)  # van Driest with the nominal u_tau
    torch.testing.assert_close(closure.eddy_viscosity(solver.ops, state.u, state.v, state.w, solver.nu), undamped * damping**2)
    torch.manual_seed(0)
    for parameter in closure.network.parameters():
        torch.nn.init.normal_(parameter, std=2.0)
    nu_t = closure.eddy_viscosity(solver.ops, state.u, state.v, state.w, solver.nu)
    assert nu_t.shape == GRID.shape and bool((nu_t >= 0).all()) and float(nu_t.detach().max()) > 0
    magnitude = strain_rate_magnitude(velocity_gradient(solver.ops, state.u, state.v, state.w))
    assert float((nu_t * magnitude**2).detach().mean()) > 0  # dissipation 2 nu_t S_ij S_ij = nu_t |S|^2


def test_save_and_load_round_trip(tmp_path) -> None:
    torch.manual_seed(1)
    closure = NeuralEddyViscosity(hidden=8, layers=3)
    for parameter in closure.network.parameters():
        torch.nn.init.normal_(parameter)
    closure.save(tmp_path / "closure.pt")
    loaded = build_sgs_model(**NeuralEddyViscosity(hidden=8, layers=3, weights=str(tmp_path / "closure.pt")).describe())
    solver = _solver(None)
    state = _start(solver)
    args = (solver.ops, state.u, state.v, state.w, solver.nu)
    assert torch.equal(loaded.eddy_viscosity(*args), closure.eddy_viscosity(*args))
    with pytest.raises(ValueError, match="hold a closure with hidden=8, layers=3; the case asks for hidden=16, layers=2"):
        NeuralEddyViscosity(hidden=16, layers=2, weights=str(tmp_path / "closure.pt"))
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot be read as a closure file"):
        NeuralEddyViscosity(weights=str(tmp_path / "bad.pt"))


def _sample(truth_cs: float, steps: int) -> ClosureSample:
    """The LES with the closure at ``C_s = truth_cs`` from the start state, ``steps`` steps later."""
    truth = _solver(NeuralEddyViscosity(cs=truth_cs))
    start = _start(truth)
    with torch.no_grad():
        final = unroll(truth, start, steps, DT, recompute=False)
    return ClosureSample(start, torch.stack(truth.ops.to_centres(final.u, final.v, final.w))[None], steps)



def test_profile_weights_weigh_the_statistics_error_of_the_a_posteriori_loss() -> None:
    """With w_rms weighed 3, the loss is (5 * unweighted + 2 * w_rms alone) / 7."""
    sample = _sample(0.3, steps=2)
    solver = _solver(NeuralEddyViscosity(cs=0.1))
    loss = lambda weights: float(  # noqa: E731
        a_posteriori_loss(solver, sample, DT, 1.0, recompute=False, field_weight=0.0, profile_weights=weights)
    )
    plain, weighed = loss(None), loss({"w_rms": 3.0})
    alone = loss({"U": 0.0, "u_rms": 0.0, "v_rms": 0.0, "uv": 0.0})
    assert alone > 0 and weighed != pytest.approx(plain, rel=1e-6)
    assert weighed == pytest.approx((5 * plain + 2 * alone) / 7, rel=1e-12)

def test_the_gradient_through_the_solver_matches_finite_differences() -> None:
    sample = _sample(0.3, steps=3)
    closure = NeuralEddyViscosity(hidden=4, layers=1)
    torch.manual_seed(2)
    for parameter in closure.network.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    solver = _solver(closure)
    loss = a_posteriori_loss(solver, sample, DT, 1.0)
    loss.backward()
    for parameter, index in ((closure.network.head.bias, (0,)), (closure.network.body[0].weight, (1, 2))):
        analytic = float(parameter.grad[index])
        step = 1e-6
        with torch.no_grad():
            parameter[index] += step
            plus = float(a_posteriori_loss(solver, sample, DT, 1.0, recompute=False))
            parameter[index] -= 2 * step
            minus = float(a_posteriori_loss(solver, sample, DT, 1.0, recompute=False))
            parameter[index] += step
        assert analytic == pytest.approx((plus - minus) / (2 * step), rel=1e-5)
        assert abs(analytic) > 1e-8


def test_recomputed_steps_give_the_same_state_and_gradient() -> None:
    sample = _sample(0.3, steps=2)
    grads = []
    for recompute in (True, False):
        closure = NeuralEddyViscosity(hidden=4, layers=1)
        loss = a_posteriori_loss(_solver(closure), sample, DT, recompute=recompute)
        loss.backward()
        grads.append(closure.network.head.bias.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=0)
    state = unroll(_solver(None), sample.initial, 2, DT)
    assert state.step == 2 and state.time == pytest.approx(2 * DT)


def test_training_through_the_solver_recovers_the_closure_of_the_truth() -> None:
    sample = _sample(0.2, steps=4)  # truth: the closure at C_s = 0.2
    closure = NeuralEddyViscosity(hidden=4, layers=1, cs=0.1)
    solver = _solver(closure)
    optimizer = torch.optim.Adam(closure.network.parameters(), lr=0.01)
    losses = [train_closure_step(solver, [sample], optimizer, DT) for _ in range(25)]
    assert max(losses[-5:]) < 0.15 * losses[0]  # the field error is a norm: 0.15 here is a 44x smaller squared error
    state = sample.initial
    args = (solver.ops, state.u, state.v, state.w, solver.nu)
    learned = closure.eddy_viscosity(*args).detach().mean()
    truth, start = (NeuralEddyViscosity(cs=cs).eddy_viscosity(*args).detach().mean() for cs in (0.2, 0.1))
    assert abs(float(learned / truth) - 1) < 0.25 < abs(float(start / truth) - 1)


LES_CASE = """
name: tiny_neural
grid: {nx: 8, ny: 9, nz: 8, lx: 2.0, lz: 1.0, stretching: 1.5}
physics: {re_tau: 100.0, forcing: constant_flow_rate}
initial: {kind: turbulent, seed: 1, amplitude: 0.2}
solver: {cfl: 0.8}
sgs: {model: neural, parameters: {hidden: 4, layers: 1, weights: closure.pt}}
run: {t_end: 0.04, snapshot_interval: 0.02, checkpoint_interval: 0.02}
"""


def test_surrogate_les_runs_a_trained_closure_from_a_case_file(tmp_path, monkeypatch, capsys) -> None:
    import json

    from surrogate.cli import main
    from surrogate.fields import open_fields

    closure = NeuralEddyViscosity(hidden=4, layers=1, cs=0.17)
    (tmp_path / "cases").mkdir()
    closure.save(tmp_path / "cases" / "closure.pt")
    (tmp_path / "cases" / "les.yaml").write_text(LES_CASE)
    monkeypatch.chdir(tmp_path)  # the weights are found beside the case file, not in the working folder
    assert main(["les", "cases/les.yaml", "--quiet"]) == 0
    described = json.loads(open_fields(tmp_path / "runs" / "tiny_neural" / "fields.nc").attrs["sgs_model"])
    assert described["name"] == "neural" and described["hidden"] == 4 and described["weights"].endswith("cases/closure.pt")
    assert main(["les", "cases/les.yaml", "sgs.model=nueral", "--overwrite", "--quiet"]) == 2
    assert "did you mean 'neural'" in capsys.readouterr().err


def _tiny_closure_case(tmp_path, name: str, closure: str, epochs: int, samples: int):
    """A closure training case file on the tiny advected dataset of conftest."""
    from conftest import advected_dataset

    manifest = advected_dataset(tmp_path)
    case = tmp_path / "closure.yaml"
    case.write_text(
        f"name: {name}\ndataset: {manifest.parent}\nclosure: {closure}\n"
        f"training: {{epochs: {epochs}, samples_per_epoch: {samples}, batch_size: 2, test_samples: 2, steps_per_snapshot: 10}}\n"
        f"output: {tmp_path}/{{name}}\n"
    )
    return case


def test_surrogate_closure_trains_resumes_and_writes_a_loadable_closure(tmp_path, capsys) -> None:
    import csv

    from surrogate.cli import main

    case = _tiny_closure_case(tmp_path, "tiny_closure", "{hidden: 4, layers: 1}", epochs=2, samples=4)
    assert main(["closure", str(case), "training.steps_per_snapshot=1", "--quiet"]) == 2
    assert "past the solver's stability limit" in capsys.readouterr().err
    assert main(["closure", str(case), "training.field_weight=0", "training.statistics_weight=0", "--quiet"]) == 2
    assert "not both 0" in capsys.readouterr().err
    assert main(["closure", str(case), "--quiet"]) == 0
    folder = tmp_path / "tiny_closure"
    assert main(["closure", str(case), "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["closure", str(case), "training.epochs=3", "--resume", "--quiet"]) == 0
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3]
    assert all(float(row["test_loss"]) > 0 and float(row["no_model_test_loss"]) > 0 for row in rows)
    loaded = NeuralEddyViscosity(hidden=4, layers=1, weights=str(folder / "closure.pt"))
    assert loaded.describe()["weights"] == str(folder / "closure.pt")


# ---------------------------------------------------------------------------------------------
# the mean-field part
# ---------------------------------------------------------------------------------------------
def _random_mean_field(seed: int = 3) -> NeuralEddyViscosity:
    closure = NeuralEddyViscosity(hidden=6, layers=2, mean_field=True, fluctuating=False)
    torch.manual_seed(seed)
    for parameter in closure.mean_network.parameters():
        torch.nn.init.normal_(parameter, std=0.7)
    return closure


def test_a_zero_mean_field_alone_is_the_no_model_les_bit_for_bit() -> None:
    closure = NeuralEddyViscosity(mean_field=True, fluctuating=False)  # the mean-field network starts at zero
    assert closure.eddy_viscosity(*(None,) * 5) is None
    _assert_the_no_model_les(closure, steps=5)


def test_the_discrete_poiseuille_flow_with_a_mean_field_viscosity_is_steady() -> None:
    """Under -dP/dx = 1 a plane-uniform flow is steady when (nu + nu_T) dU/dy = 1 - y on every face:
    the profile built face by face from that balance stays put, and its wall shear is the molecular 1."""
    closure = _random_mean_field()
    solver = ChannelSolver(GRID, RE_TAU, "constant_pressure_gradient", sgs=closure, dtype=torch.float64)
    nu_t = closure.mean_field_viscosity(solver.ops, solver.nu).detach().reshape(-1)
    assert float(nu_t[0]) == float(nu_t[-1]) == 0.0 and float(nu_t[1:-1].min()) > 0.0
    faces = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(torch.as_tensor(GRID.dy), 0)])  # the solver's faces, from the wall
    gaps = torch.cat([torch.tensor([solver.ops.wall_gap_lower], dtype=torch.float64), solver.ops.dyc.reshape(-1)])
    profile = torch.cumsum(gaps * (1.0 - faces[:-1]) / (solver.nu + nu_t[:-1]), dim=0)
    state = solver.initial_condition("laminar")
    state = replace(state, u=profile.view(1, -1, 1).expand(GRID.shape).clone())
    after = solver.run(state, steps=20, dt=0.01)
    assert float((after.u - state.u).detach().abs().max()) < 1e-10 * float(profile.max())
    assert solver.wall_shear(after) == pytest.approx(1.0, rel=1e-10)
    without = ChannelSolver(GRID, RE_TAU, "constant_pressure_gradient", dtype=torch.float64).run(state, steps=20, dt=0.01)
    assert float((without.u - state.u).detach().abs().max()) > 1e-3  # without nu_T that profile is not steady


def test_the_mean_field_part_removes_mean_flow_energy_and_no_momentum() -> None:
    closure = _random_mean_field(seed=5)
    solver = _solver(closure)
    state = _start(solver)
    force = solver.ops.mean_shear_force(closure.mean_field_viscosity(solver.ops, solver.nu), state.u).detach()
    mean = state.u.mean(dim=(0, 2), keepdim=True)
    dy = solver.ops.dy
    assert abs(float((force * dy).sum())) < 1e-12  # no momentum through the walls
    assert float((force * mean * dy).sum()) < 0.0  # -int nu_T (dU/dy)^2 dy


def test_the_a_priori_mean_field_viscosity_closes_the_momentum_balance() -> None:
    """From profiles whose resolved stress falls short of 1 - y by nu_T dU/dy, the estimate recovers nu_T."""
    from surrogate.solver.neural_sgs import a_priori_mean_field_viscosity

    closure = _random_mean_field(seed=7)
    solver = ChannelSolver(GRID, RE_TAU, "constant_pressure_gradient", sgs=closure, dtype=torch.float64)
    ops, nu = solver.ops, solver.nu
    truth = closure.mean_field_viscosity(ops, nu).detach()
    # the discrete Poiseuille profile with nu + nu_T carries 1 - y; with <u'v'> = 0 its resolved stress is
    # nu dU/dy, and the deficit nu_T dU/dy is what the estimate attributes to the mean subgrid stress
    faces = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(torch.as_tensor(GRID.dy), 0)])  # the solver's faces, from the wall
    gaps = torch.cat([torch.tensor([ops.wall_gap_lower], dtype=torch.float64), ops.dyc.reshape(-1)])
    profile = torch.cumsum(gaps * (1.0 - faces[:-1]) / (nu + truth.reshape(-1)[:-1]), dim=0)
    estimate = a_priori_mean_field_viscosity(ops, nu, profile, torch.zeros_like(profile))
    torch.testing.assert_close(estimate, truth, rtol=1e-9, atol=1e-15)
    fitted = NeuralEddyViscosity(hidden=16, layers=2, mean_field=True, fluctuating=False)
    assert fitted.fit_mean_field(ops, nu, estimate, iterations=2000) < 0.05


def test_a_two_part_closure_saves_and_loads_and_names_a_mismatch(tmp_path) -> None:
    closure = _random_mean_field()
    closure.save(tmp_path / "two_part.pt")
    loaded = build_sgs_model(**NeuralEddyViscosity(hidden=6, layers=2, mean_field=True, fluctuating=False,
                                                   weights=str(tmp_path / "two_part.pt")).describe())
    ops, nu = _solver(None).ops, 1.0 / RE_TAU
    assert torch.equal(loaded.mean_field_viscosity(ops, nu), closure.mean_field_viscosity(ops, nu))
    with pytest.raises(ValueError, match="hold a closure with hidden=6, fluctuating=False; the case asks for hidden=8, fluctuating=True"):
        NeuralEddyViscosity(hidden=8, layers=2, fluctuating=True, weights=str(tmp_path / "two_part.pt"))
    bare = NeuralEddyViscosity(weights=str(tmp_path / "two_part.pt"))  # sizes and parts from the file
    assert (bare.hidden, bare.mean_field, bare.fluctuating, bare.rotation) == (6, True, False, False)
    assert torch.equal(bare.mean_field_viscosity(ops, nu), closure.mean_field_viscosity(ops, nu))
    with pytest.raises(ValueError, match="one of mean_field, fluctuating, rotation"):
        NeuralEddyViscosity(mean_field=False, fluctuating=False)


# ---------------------------------------------------------------------------------------------
# the strain-rotation part
# ---------------------------------------------------------------------------------------------
def _random_rotation(seed: int = 4) -> NeuralEddyViscosity:
    closure = NeuralEddyViscosity(hidden=6, layers=2, fluctuating=False, rotation=True)
    torch.manual_seed(seed)
    for parameter in closure.rotation_network.parameters():
        torch.nn.init.normal_(parameter, std=0.7)
    return closure


def test_a_zero_rotation_part_is_the_no_model_les_bit_for_bit() -> None:
    closure = NeuralEddyViscosity(fluctuating=False, rotation=True)  # the rotation network starts at zero
    _assert_the_no_model_les(closure, steps=5)


def test_the_rotation_stress_does_no_work_against_the_strain() -> None:
    """(S Omega - Omega S)_ij S_ij = 0 pointwise: the stress moves energy between components only."""
    from surrogate.solver.sgs import _contract_symmetric, _strain_components, _velocity_gradient_components

    closure = _random_rotation()
    solver = _solver(closure)
    state = _start(solver)
    coefficient = closure.residual_stress_coefficient(solver.ops, solver.nu)
    tau = closure.residual_stress(solver.ops, state.u, state.v, state.w, coefficient)
    strain = _strain_components(_velocity_gradient_components(solver.ops, state.u, state.v, state.w))
    work = _contract_symmetric(tau, strain).detach()
    size = _contract_symmetric(tau, tau).detach().sqrt() * _contract_symmetric(strain, strain).sqrt()
    assert float(size.max()) > 0 and float((work.abs() / (size + 1e-300)).max()) < 1e-12


def test_a_stress_divergence_adds_no_momentum_and_differences_a_plane_stress() -> None:
    solver = _solver(None)
    ops = solver.ops
    torch.manual_seed(0)
    tau = tuple(torch.randn(GRID.shape, dtype=torch.float64) for _ in range(6))
    force_u, force_v, force_w = ops.stress_divergence(tau)
    for force in (force_u, force_w):
        assert abs(float((force * ops.dy).sum())) < 1e-10 * float((force.abs() * ops.dy).sum())
    assert float(force_v[:, 0].abs().max()) == float(force_v[:, -1].abs().max()) == 0.0
    # a shear stress that depends on y alone: d tau_xy / dy from the stress interpolated to the faces
    y = torch.as_tensor(GRID.y, dtype=torch.float64).view(1, -1, 1)
    profile = torch.sin(torch.pi * y).expand(GRID.shape)
    zero = torch.zeros(GRID.shape, dtype=torch.float64)
    force_u, _, force_w = ops.stress_divergence((zero, zero, zero, profile, zero, zero))
    faces = ops.pad_faces(ops.y_interpolate(torch.sin(torch.pi * y)))
    torch.testing.assert_close(force_u, ((faces[:, 1:] - faces[:, :-1]) * ops.inv_dy).expand(GRID.shape))
    assert float(force_w.abs().max()) == 0.0


def test_the_gradient_reaches_a_rotation_part_that_starts_at_zero() -> None:
    sample = _sample(0.3, steps=2)
    closure = NeuralEddyViscosity(hidden=4, layers=1, fluctuating=False, rotation=True)
    loss = a_posteriori_loss(_solver(closure), sample, DT, 1.0)
    loss.backward()
    assert float(closure.rotation_network.head.bias.grad.abs()) > 0


def test_surrogate_closure_starts_the_mean_field_a_priori_and_keeps_frozen_parts(tmp_path, capsys) -> None:
    from surrogate.cli import main

    closure = "{hidden: 4, layers: 1, mean_field: true, fluctuating: false}"
    case = _tiny_closure_case(tmp_path, "tiny_two_part", closure, epochs=0, samples=2)
    assert main(["closure", str(case), "--quiet"]) == 0  # epochs 0: the a-priori start is the closure
    start = NeuralEddyViscosity(hidden=4, layers=1, mean_field=True, fluctuating=False,
                                weights=str(tmp_path / "tiny_two_part" / "closure.pt"))
    grid_ops = _solver(None).ops
    assert float(start.mean_field_viscosity(grid_ops, 0.01).max()) > 0.0
    assert main(["closure", str(case), "training.frozen=[mean_field]", "--overwrite", "--quiet"]) == 2
    assert "nothing to train" in capsys.readouterr().err
    assert main(["closure", str(case), "closure.forcing_target=true", "--overwrite", "--quiet"]) == 2
    assert "forcing_target needs linear_forcing: true" in capsys.readouterr().err
    overrides = ["closure.rotation=true", "training.frozen=[mean_field]", "training.epochs=1", "name=tiny_rotation"]
    assert main(["closure", str(case), *overrides, "--quiet"]) == 0
    trained = NeuralEddyViscosity(hidden=4, layers=1, mean_field=True, fluctuating=False, rotation=True,
                                  weights=str(tmp_path / "tiny_rotation" / "closure.pt"))
    for a, b in zip(trained.mean_network.parameters(), start.mean_network.parameters()):
        assert torch.equal(a, b)  # the frozen mean-field part is its a-priori start


def test_the_strain_rotation_commutator_is_the_matrix_product_and_differentiable() -> None:
    from surrogate.solver.neural_sgs import strain_rotation_commutator

    torch.manual_seed(3)
    g = torch.randn(3, 3, 7, dtype=torch.float64, requires_grad=True)
    strain, spin = 0.5 * (g + g.transpose(0, 1)), 0.5 * (g - g.transpose(0, 1))
    s, o = strain.permute(2, 0, 1), spin.permute(2, 0, 1)
    expected = (s @ o - o @ s).permute(1, 2, 0)
    got = strain_rotation_commutator(g)
    for value, (i, j) in zip(got, ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
        torch.testing.assert_close(value, expected[i, j], rtol=1e-14, atol=1e-14)
    assert torch.autograd.gradcheck(lambda g: torch.stack(strain_rotation_commutator(g)), (g,))



# ---------------------------------------------------------------------------------------------
# the anisotropy part
# ---------------------------------------------------------------------------------------------
def test_the_traceless_squares_are_the_matrix_products_and_differentiable() -> None:
    from surrogate.solver.neural_sgs import traceless_squares

    torch.manual_seed(5)
    g = torch.randn(3, 3, 7, dtype=torch.float64, requires_grad=True)
    s = (0.5 * (g + g.transpose(0, 1))).permute(2, 0, 1)
    o = (0.5 * (g - g.transpose(0, 1))).permute(2, 0, 1)
    eye = torch.eye(3, dtype=torch.float64)
    for got, square in zip(traceless_squares(g), (s @ s, o @ o)):
        expected = (square - square.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None] * eye / 3.0).permute(1, 2, 0)
        for value, (i, j) in zip(got, ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
            torch.testing.assert_close(value, expected[i, j], rtol=1e-13, atol=1e-13)
    assert torch.autograd.gradcheck(lambda g: torch.stack([c for t in traceless_squares(g) for c in t]), (g,))


def test_the_anisotropy_terms_give_a_plane_shear_a_spanwise_normal_stress_and_the_commutator_none() -> None:
    """For du/dy = G alone: (S S)^d = G^2/4 diag(1/3, 1/3, -2/3), (Omega Omega)^d its negative, and
    S Omega - Omega S = G^2/2 diag(-1, 1, 0)."""
    from surrogate.solver.neural_sgs import strain_rotation_commutator, traceless_squares

    shear = 2.0
    g = torch.zeros(3, 3, 1, dtype=torch.float64)
    g[0, 1] = shear
    ss, oo = traceless_squares(g)
    q = shear**2 / 4.0
    torch.testing.assert_close(torch.cat(ss), torch.tensor([q / 3, q / 3, -2 * q / 3, 0, 0, 0], dtype=torch.float64))
    torch.testing.assert_close(torch.cat(oo), -torch.cat(ss))
    commutator = torch.cat(strain_rotation_commutator(g))
    torch.testing.assert_close(commutator, torch.tensor([-2 * q, 2 * q, 0, 0, 0, 0], dtype=torch.float64))


def test_a_zero_anisotropy_part_is_the_no_model_les_bit_for_bit_and_a_trained_one_acts() -> None:
    closure = NeuralEddyViscosity(fluctuating=False, rotation=True, anisotropy=True)  # both start at zero
    _assert_the_no_model_les(closure, steps=3)
    torch.nn.init.constant_(closure.anisotropy_network.head.bias, 0.3)
    plain, learned = _solver(None), _solver(closure)
    coefficient = closure.residual_stress_coefficient(learned.ops, learned.nu)
    assert coefficient.shape == (3, 1, GRID.shape[1], 1)
    moved = learned.step(_start(learned), DT)
    assert float((moved.w - plain.step(_start(plain), DT).w).abs().max()) > 0


def test_the_gradient_reaches_an_anisotropy_part_that_starts_at_zero_and_it_round_trips(tmp_path) -> None:
    sample = _sample(0.3, steps=2)
    closure = NeuralEddyViscosity(hidden=4, layers=1, fluctuating=False, anisotropy=True)
    loss = a_posteriori_loss(_solver(closure), sample, DT, 1.0)
    loss.backward()
    assert bool((closure.anisotropy_network.head.bias.grad.abs() > 0).all())
    with torch.no_grad():
        closure.anisotropy_network.head.bias.copy_(torch.tensor([0.2, -0.1]))
    path = closure.save(tmp_path / "anisotropy.pt")
    again = NeuralEddyViscosity(weights=str(path))
    assert (again.anisotropy, again.rotation, again.fluctuating) == (True, False, False)
    ops = _solver(None).ops
    assert torch.equal(again.residual_stress_coefficient(ops, 0.01), closure.residual_stress_coefficient(ops, 0.01))


def test_a_run_without_gradients_keeps_the_wall_profiles_and_matches_step_by_step() -> None:
    """run() evaluates the closure's profiles once when no gradient is recorded; the states equal
    those of steps that evaluate them afresh, bit for bit."""
    closure = _random_rotation()
    closure.mean_network = closure.rotation_network.__class__(6, 2, 0.0, n_features=2).double()
    torch.nn.init.normal_(closure.mean_network.head.bias, std=0.5)
    solver = _solver(closure)
    start = _start(solver)
    with torch.no_grad():
        kept = solver.run(start, steps=3, dt=DT)
    fresh = start
    for _ in range(3):
        fresh = solver.step(fresh, DT)
    for name in ("u", "v", "w", "p"):
        assert torch.equal(getattr(kept, name), getattr(fresh, name).detach()), name
    assert float((kept.u - start.u).abs().max()) > 0


# ---------------------------------------------------------------------------------------------
# the linear-forcing part
# ---------------------------------------------------------------------------------------------
def _set_rates(closure: NeuralEddyViscosity, rates: tuple[float, float, float], isotropy: float = 0.0) -> None:
    """Constant free rates ``rho_i`` and return-to-isotropy rate ``r`` (u_tau / h) through the
    forcing network's last bias."""
    from surrogate.solver.neural_sgs import LINEAR_FORCING_BOUND

    wanted = torch.tensor([*rates, isotropy], dtype=torch.float64)
    with torch.no_grad():
        closure.forcing_network.head.bias.copy_(torch.atanh(wanted / LINEAR_FORCING_BOUND))


def test_a_zero_linear_forcing_is_the_no_model_les_bit_for_bit() -> None:
    _assert_the_no_model_les(NeuralEddyViscosity(fluctuating=False, linear_forcing=True), steps=3)
    _assert_the_no_model_les(NeuralEddyViscosity(fluctuating=False, rotation=True, linear_forcing=True), steps=3)


def _plane_fluctuations(*velocities: torch.Tensor) -> list[torch.Tensor]:
    return [velocity - velocity.mean(dim=(0, 2), keepdim=True) for velocity in velocities]


@pytest.mark.parametrize("rates", [(-1.5, -0.5, -2.0), (1.5, 0.5, 2.0), (-3.0, 0.0, 3.0)])
def test_the_linear_forcing_is_a_rate_times_each_plane_fluctuation_and_never_works_on_a_plane(rates) -> None:
    """Damping rates act unshifted; rates that would feed a plane are shifted until the work on it,
    sum_i lambda_i <u_i'^2>, is zero; the forcing adds no momentum to any plane."""
    from surrogate.solver.neural_sgs import linear_forcing_rates

    solver = _solver(None)
    state = _start(solver)
    ops = solver.ops
    closure = NeuralEddyViscosity(fluctuating=False, linear_forcing=True)
    _set_rates(closure, rates)
    profiles = closure.residual_stress_coefficient(ops, solver.nu)
    wanted_profiles = torch.tensor(rates, dtype=torch.float64)[:, None].expand(3, GRID.shape[1])
    torch.testing.assert_close(profiles[:3, 0, :, 0], wanted_profiles)
    fluctuations = _plane_fluctuations(state.u, state.v, state.w)
    lam = linear_forcing_rates(ops, profiles, *fluctuations)
    force = closure.residual_force(ops, state.u, state.v, state.w, profiles)
    for f, fluctuation, rate in zip(force, fluctuations, (lam[0], ops.pad_faces(ops.y_interpolate(lam[1])), lam[2])):
        torch.testing.assert_close(f, rate * fluctuation, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(f.mean(dim=(0, 2)), torch.zeros_like(f.mean(dim=(0, 2))), rtol=0, atol=1e-12)
    u2, v2, w2 = (q.square().mean(dim=(0, 2), keepdim=True) for q in fluctuations)
    energy = torch.cat([u2, ops.y_average(v2), w2])[:, :, 0]  # (3, ny)
    work = (lam[:, 0, :, 0] * energy).sum(0)
    torch.testing.assert_close(work, (wanted_profiles * energy).sum(0).clamp(max=0.0), rtol=1e-10, atol=1e-12)
    if all(rate <= 0 for rate in rates):
        torch.testing.assert_close(lam[:, 0, :, 0], wanted_profiles)
    if all(rate >= 0 for rate in rates):
        assert float(work.detach().abs().max()) < 1e-12 * float((wanted_profiles * energy).detach().abs().max())


def test_the_linear_forcing_beside_a_stress_part_adds_the_two_forces() -> None:
    solver = _solver(None)
    state = _start(solver)
    ops = solver.ops
    both = NeuralEddyViscosity(fluctuating=False, rotation=True, linear_forcing=True)
    stress, forcing = NeuralEddyViscosity(fluctuating=False, rotation=True), NeuralEddyViscosity(fluctuating=False, linear_forcing=True)
    torch.nn.init.constant_(both.rotation_network.head.bias, 0.4)
    stress.rotation_network.load_state_dict(both.rotation_network.state_dict())
    for closure in (both, forcing):
        _set_rates(closure, (-1.5, 0.5, 2.0))
    profiles = both.residual_stress_coefficient(ops, solver.nu)
    assert profiles.shape == (5, 1, GRID.shape[1], 1)
    rest = both.residual_force(ops, state.u, state.v, state.w, profiles)
    for part in (stress, forcing):
        apart = part.residual_force(ops, state.u, state.v, state.w, part.residual_stress_coefficient(ops, solver.nu))
        rest = [f - g for f, g in zip(rest, apart)]
    for f in rest:
        torch.testing.assert_close(f, torch.zeros_like(f), rtol=0, atol=1e-12)


def test_the_return_to_isotropy_feeds_the_components_below_a_third_of_the_energy_and_does_no_work() -> None:
    """Rates (0, 0, 0) and r = 2: lambda_i = 2 (k2 / (3 e_i) - 1) where no rate reaches the bound,
    positive for a component with less than a third of the plane's energy, negative for one with
    more, and sum_i lambda_i e_i = 0."""
    from surrogate.solver.neural_sgs import linear_forcing_rates

    solver = _solver(None)
    state = _start(solver)
    ops = solver.ops
    closure = NeuralEddyViscosity(fluctuating=False, linear_forcing=True)
    _set_rates(closure, (0.0, 0.0, 0.0), isotropy=2.0)
    u, v, w = _plane_fluctuations(state.u, state.v, state.w)
    lam = linear_forcing_rates(ops, closure.residual_stress_coefficient(ops, solver.nu), u, v, w)[:, 0, :, 0].detach()
    u2, v2, w2 = (q.square().mean(dim=(0, 2), keepdim=True) for q in (u, v, w))
    energy = torch.cat([u2, ops.y_average(v2), w2])[:, :, 0]
    inside = (lam.abs() < 19.0).all(dim=0)  # planes where no rate is clipped (not the wall rows, where v vanishes)
    assert int(inside.sum()) >= GRID.shape[1] - 4
    torch.testing.assert_close(lam[:, inside], (2.0 * (energy.sum(0) / (3.0 * energy) - 1.0))[:, inside])
    torch.testing.assert_close((lam * energy).sum(0)[inside], torch.zeros(int(inside.sum()), dtype=torch.float64), rtol=0, atol=1e-12)
    below = energy < energy.sum(0) / 3.0
    assert bool((lam[below & inside] > 0).all()) and bool((lam[~below & inside] < 0).all())


def test_a_spanwise_feeding_rate_moves_streamwise_energy_into_the_spanwise_fluctuations_and_adds_none() -> None:
    """One step with rates (0, 0, 10): the spanwise fluctuation energy ends above the no-model
    step's, the streamwise below, and the sum of all three no higher."""
    closure = NeuralEddyViscosity(fluctuating=False, linear_forcing=True)
    _set_rates(closure, (0.0, 0.0, 10.0))
    plain, learned = _solver(None), _solver(closure)
    a, b = plain.step(_start(plain), DT), learned.step(_start(learned), DT)
    energy = lambda x: float(x.square().mean())  # noqa: E731
    (au, av, aw), (bu, bv, bw) = _plane_fluctuations(a.u, a.v, a.w), _plane_fluctuations(b.u, b.v, b.w)
    assert energy(bw) > energy(aw) and energy(bu) < energy(au)
    assert energy(bu) + energy(bv) + energy(bw) <= energy(au) + energy(av) + energy(aw)


def test_the_gradient_reaches_a_linear_forcing_that_starts_at_zero_and_it_round_trips(tmp_path) -> None:
    sample = _sample(0.3, steps=2)
    closure = NeuralEddyViscosity(hidden=4, layers=1, fluctuating=False, linear_forcing=True)
    a_posteriori_loss(_solver(closure), sample, DT, 1.0).backward()
    assert bool((closure.forcing_network.head.bias.grad.abs() > 0).all())
    _set_rates(closure, (-1.0, 0.2, 3.0), isotropy=0.5)
    again = NeuralEddyViscosity(weights=str(closure.save(tmp_path / "forcing.pt")))
    assert (again.linear_forcing, again.rotation, again.fluctuating) == (True, False, False)
    ops = _solver(None).ops
    assert torch.equal(again.residual_stress_coefficient(ops, 0.01), closure.residual_stress_coefficient(ops, 0.01))


# ---------------------------------------------------------------------------------------------
# the learned target of the forcing's return
# ---------------------------------------------------------------------------------------------
def _set_target(closure: NeuralEddyViscosity, energies: tuple[float, float, float], rate: float) -> None:
    """Constant target energies ``E_i`` and rate ``s`` through the target network's last bias."""
    from surrogate.solver.neural_sgs import LINEAR_FORCING_BOUND

    bias = [math.atanh(rate / LINEAR_FORCING_BOUND), *(math.log(e) for e in energies)]
    with torch.no_grad():
        closure.target_network.head.bias.copy_(torch.tensor(bias, dtype=torch.float64))


@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_the_return_to_target_energies_compares_the_centred_energies_and_never_works(scale) -> None:
    """Free and Rotta rates zero, targets scale * (0.6, 0.1, 0.3) at s = 2: with c_i the plane
    energies of the fluctuations averaged to the cell centres and e_i those of the staggered ones,
    mu_i = 2 (E_i / c_i - 1) and lambda_i = mu_i - max(0, sum_j mu_j e_j / k2) where no rate reaches
    the bound; the work sum_i lambda_i e_i is never positive, and with targets far below the
    plane energies (scale 1e-3) every component is drained at close to the rate s."""
    from surrogate.solver.neural_sgs import linear_forcing_rates

    solver = _solver(None)
    state = _start(solver)
    ops = solver.ops
    closure = NeuralEddyViscosity(fluctuating=False, linear_forcing=True, forcing_target=True)
    targets = scale * torch.tensor([0.6, 0.1, 0.3], dtype=torch.float64)
    _set_target(closure, tuple(targets.tolist()), rate=2.0)
    profiles = closure.residual_stress_coefficient(ops, solver.nu)
    assert profiles.shape == (8, 1, GRID.shape[1], 1)
    u, v, w = _plane_fluctuations(state.u, state.v, state.w)
    lam = linear_forcing_rates(ops, profiles, u, v, w)[:, 0, :, 0].detach()
    u2, v2, w2 = (q.square().mean(dim=(0, 2), keepdim=True) for q in (u, v, w))
    energy = torch.cat([u2, ops.y_average(v2), w2])[:, :, 0]
    centred = torch.stack([q.square().mean(dim=(0, 2)) for q in ops.to_centres(u, v, w)])
    mu = 2.0 * (targets[:, None] / centred - 1.0)
    expected = mu - ((mu * energy).sum(0) / energy.sum(0)).clamp(min=0.0)
    inside = (lam.abs() < 19.0).all(dim=0)
    assert int(inside.sum()) >= GRID.shape[1] - 4
    torch.testing.assert_close(lam[:, inside], expected[:, inside])
    assert float((lam * energy).sum(0)[inside].max()) <= 1e-12
    if scale < 1.0:
        assert bool((lam[:, inside] < -1.9).all())


def test_a_target_added_to_a_closure_file_starts_as_that_closure_fits_and_round_trips(tmp_path) -> None:
    """A forcing closure saved without a target, loaded with ``forcing_target=True``: its LES steps
    equal the file's bit for bit; the gradient reaches the target; fitted to energies and a rate,
    the target holds them; the extended closure round-trips; a target without the forcing is refused."""
    closure = NeuralEddyViscosity(hidden=4, layers=1, fluctuating=False, linear_forcing=True)
    _set_rates(closure, (-1.0, 0.5, 2.0), isotropy=1.5)
    path = closure.save(tmp_path / "forcing.pt")
    extended = NeuralEddyViscosity(weights=str(path), forcing_target=True)
    assert (extended.linear_forcing, extended.forcing_target, extended.hidden) == (True, True, 4)
    assert extended.fresh_parts == {"forcing_target"} and not NeuralEddyViscosity(weights=str(path)).fresh_parts
    plain, learned = _solver(NeuralEddyViscosity(weights=str(path))), _solver(extended)
    a, b = _start(plain), _start(learned)
    for _ in range(3):
        a, b = plain.step(a, DT), learned.step(b, DT)
    for name in ("u", "v", "w", "p"):
        assert torch.equal(getattr(a, name).detach(), getattr(b, name).detach()), name
    a_posteriori_loss(_solver(extended), _sample(0.3, steps=2), DT, 1.0).backward()
    assert bool((extended.target_network.head.weight.grad.abs() > 0).any())
    ops = _solver(None).ops
    y = torch.linspace(-1.0, 1.0, GRID.shape[1], dtype=torch.float64).abs()  # 1 at the wall rows, 0 at the centre
    energies = torch.stack([4.0 + 3.0 * y, 0.3 - 0.2 * y, 0.6 - 0.1 * y])  # of the wall distance, as the network
    assert extended.fit_forcing_target(ops, 0.01, energies, rate=1.5) < 0.03
    profiles = extended.residual_stress_coefficient(ops, 0.01).detach()
    torch.testing.assert_close(profiles[4, 0, :, 0], torch.full_like(y, 1.5), rtol=0, atol=0.03)
    torch.testing.assert_close(profiles[5:, 0, :, 0], energies, rtol=0.03, atol=0)
    again = NeuralEddyViscosity(weights=str(extended.save(tmp_path / "target.pt")))
    assert again.forcing_target and not again.fresh_parts
    assert torch.equal(again.residual_stress_coefficient(ops, 0.01), extended.residual_stress_coefficient(ops, 0.01))
    with pytest.raises(ValueError, match="forcing_target needs linear_forcing=True"):
        NeuralEddyViscosity(fluctuating=False, rotation=True, forcing_target=True)


# ---------------------------------------------------------------------------------------------
# training on the closure LES's own developed states
# ---------------------------------------------------------------------------------------------
def test_pooled_statistics_are_the_moments_over_every_plane_of_every_state() -> None:
    from surrogate.closure_training import pooled_statistics
    from surrogate.mean_flow import plane_statistics

    torch.manual_seed(7)
    states = torch.randn(3, 3, 4, 5, 6, dtype=torch.float64) + torch.arange(3.0, dtype=torch.float64).view(3, 1, 1, 1, 1)
    each, pooled = plane_statistics(states), pooled_statistics(states)
    mean = each.mean.mean(dim=0)
    torch.testing.assert_close(pooled.mean[0], mean)
    torch.testing.assert_close(pooled.rms[0] ** 2, (each.rms**2 + (each.mean - mean) ** 2).mean(dim=0))


def test_the_attractor_loss_pools_its_unroll_and_its_gradient_reaches_a_forcing_that_starts_at_zero() -> None:
    from surrogate.closure_training import attractor_loss, pooled_statistics

    closure = NeuralEddyViscosity(hidden=4, layers=1, fluctuating=False, linear_forcing=True)
    solver = _solver(closure)
    start = _start(solver)
    plain = _solver(None)
    with torch.no_grad():
        reference = [plain.step(start, DT)]
        for _ in range(3):
            reference.append(plain.step(reference[-1], DT))
    target = pooled_statistics(torch.stack([torch.stack(plain.ops.to_centres(s.u, s.v, s.w)) for s in reference]))
    loss, end = attractor_loss(solver, start, snapshots=2, steps=2, dt=DT, target=target)
    assert end.step == start.step + 4 and end.time == pytest.approx(start.time + 4 * DT)
    # a zero forcing is the no-model LES: the pooled statistics of its states 2 and 4 against those of states 1-4
    assert 0.0 < float(loss.detach()) < 0.2
    loss.backward()
    assert bool((closure.forcing_network.head.bias.grad.abs() > 0).all())


def _forcing_start(tmp_path) -> NeuralEddyViscosity:
    """A small forcing closure with constant rates, saved as ``start.pt`` in ``tmp_path``."""
    start = NeuralEddyViscosity(hidden=4, layers=1, fluctuating=False, linear_forcing=True)
    _set_rates(start, (-0.5, 0.0, 0.5), isotropy=0.2)
    start.save(tmp_path / "start.pt")
    return start


def test_surrogate_closure_trains_on_the_les_attractor_from_a_closure_file_and_resumes(tmp_path, capsys) -> None:
    import csv

    from surrogate.cli import main

    start = _forcing_start(tmp_path)
    parts = "{hidden: 4, layers: 1, fluctuating: false, linear_forcing: true, weights: start.pt}"
    case = _tiny_closure_case(tmp_path, "tiny_attractor", parts, epochs=1, samples=2)
    assert main(["closure", str(case), "training.start=attractor", "--quiet"]) == 2
    assert "field_weight: 0" in capsys.readouterr().err
    assert main(["closure", str(case), "training.select_hours=1", "--quiet"]) == 2
    assert "select_hours and start_fields carry LES states, which start: attractor does" in capsys.readouterr().err
    attractor = ["training.start=attractor", "training.field_weight=0", "training.spin_up=0.05", "training.gap=0.02",
                 "training.select_hours=0.04"]
    assert main(["closure", str(case), *attractor, "--quiet"]) == 0
    folder = tmp_path / "tiny_attractor"
    saved = torch.load(folder / "checkpoint.pt", weights_only=True)
    (carried,) = saved["carried"]  # the LES states of the dataset grid the next epoch goes on from
    assert len(carried) == 2 and carried[0]["v"].shape[1] == carried[0]["u"].shape[1] + 1 and carried[0]["time"] > 0
    assert main(["closure", str(case), *attractor, "training.epochs=2", "--resume", "--quiet"]) == 0
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    assert all(0 < float(row["test_loss"]) < 10 and float(row["no_model_test_loss"]) > 0 for row in rows)
    # closure.pt is chosen by the long run of the carried states, not by the test split
    selection = [float(row["select_loss"]) for row in rows]
    assert all(0 < value < 10 for value in selection)
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["best"] == pytest.approx(min(selection))
    trained = torch.load(folder / "checkpoint.pt", weights_only=True)["networks"]
    assert not torch.equal(trained["linear_forcing.head.bias"], start.forcing_network.head.bias.detach())


def test_surrogate_closure_starts_an_added_target_at_the_training_splits_energies(tmp_path, capsys) -> None:
    """A forcing closure file extended by ``forcing_target`` (epochs 0): closure.pt holds the file's
    forcing and a target at ``training.target_rate`` whose energies are the training split's squared
    rms profiles, symmetrised about the centreline."""
    from surrogate.cli import main
    from surrogate.evaluation import open_run

    start = _forcing_start(tmp_path)
    parts = "{hidden: 4, layers: 1, fluctuating: false, linear_forcing: true, forcing_target: true, weights: start.pt}"
    case = _tiny_closure_case(tmp_path, "tiny_target", parts, epochs=0, samples=2)
    assert main(["closure", str(case), "training.target_rate=1.5", "--quiet"]) == 0
    closure = NeuralEddyViscosity(weights=str(tmp_path / "tiny_target" / "closure.pt"))
    assert closure.forcing_target and torch.equal(closure.forcing_network.head.bias, start.forcing_network.head.bias)
    record = open_run(str(tmp_path / "dataset"), split="train")
    energy = torch.stack([torch.as_tensor(((record[c] - record[c].mean(("time", "x", "z"))) ** 2).mean(("time", "x", "z")).values)
                          for c in "uvw"]).double()
    energy = 0.5 * (energy + energy.flip(-1))
    ops = _solver(None).ops
    profiles = closure.residual_stress_coefficient(ops, 1.0 / RE_TAU).detach()[:, 0, :, 0]
    torch.testing.assert_close(profiles[4], torch.full_like(profiles[4], 1.5), rtol=0, atol=0.03)
    torch.testing.assert_close(profiles[5:], energy, rtol=0.05, atol=0.01 * float(energy.max()))
    # a case that leaves the target out of a closure file holding one is told so, without a traceback
    held = "{hidden: 4, layers: 1, fluctuating: false, linear_forcing: true, weights: tiny_target/closure.pt}"
    other = _tiny_closure_case(tmp_path, "tiny_other", held, epochs=0, samples=2)
    assert main(["closure", str(other), "--quiet"]) == 2
    assert "closure: sgs weights" in capsys.readouterr().err


def _start_field(tmp_path, name: str, tiles: int, ny: int | None = None):
    """A field file on the tiny dataset's grid repeated ``tiles`` times in x (a box ``tiles`` times as
    long), from the last state of the dataset's test split (the other trajectory: the training split's
    states are one field moved along x); with ``ny``, on that many wall-normal cells."""
    from dataclasses import replace as replaced

    from surrogate.evaluation import open_run
    from surrogate.fields import grid_of, make_fields, write_fields

    record = open_run(str(tmp_path / "dataset"), split="test").isel(time=-1)
    grid = grid_of(record)
    grid = replaced(grid, nx=tiles * grid.nx, lx=tiles * grid.lx, ny=ny or grid.ny)
    u, v, w = (np.resize(np.tile(record[c].values, (tiles, 1, 1)), grid.shape) for c in "uvw")
    return write_fields(make_fields(grid, u, v, w, re_tau=100.0, time=0.0), tmp_path / name)


def test_surrogate_closure_carries_and_selects_on_a_second_grid_from_a_start_field(tmp_path, capsys) -> None:
    """``training.start_fields``: a box twice as long carries one more LES state; the selection loss is
    the mean of the two grids', and the checkpoint holds each grid's states to resume from."""
    import csv

    from surrogate.cli import main

    parts = "{hidden: 4, layers: 1, fluctuating: false, linear_forcing: true}"
    case = _tiny_closure_case(tmp_path, "tiny_two_grids", parts, epochs=1, samples=2)
    long_box, other_cells = _start_field(tmp_path, "long.nc", tiles=2), _start_field(tmp_path, "coarse_y.nc", tiles=1, ny=7)
    attractor = ["training.start=attractor", "training.field_weight=0", "training.spin_up=0.05", "training.gap=0.02",
                 "training.select_hours=0.04"]
    assert main(["closure", str(case), *attractor, "training.start_fields=[missing.nc]", "--quiet"]) == 2
    assert "training.start_fields: missing.nc is not a file" in capsys.readouterr().err
    assert main(["closure", str(case), *attractor, f"training.start_fields=[{other_cells}]", "--quiet"]) == 2
    assert "has 7 wall-normal cells" in capsys.readouterr().err
    assert main(["closure", str(case), *attractor, f"training.start_fields=[{long_box}]", "--quiet"]) == 0
    folder = tmp_path / "tiny_two_grids"
    dataset_grid, long_grid = torch.load(folder / "checkpoint.pt", weights_only=True)["carried"]
    assert len(dataset_grid) == 2 and len(long_grid) == 1
    assert long_grid[0]["u"].shape[0] == 2 * dataset_grid[0]["u"].shape[0] and long_grid[0]["time"] > 0
    assert main(["closure", str(case), *attractor, f"training.start_fields=[{long_box}]", "training.epochs=2", "--resume", "--quiet"]) == 0
    rows = list(csv.DictReader(open(folder / "metrics.csv")))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    for row in rows:
        by_grid = [float(value) for value in row["select_loss_by_grid"].split()]
        assert len(by_grid) == 2 and by_grid[0] != by_grid[1]
        assert float(row["select_loss"]) == pytest.approx(sum(by_grid) / 2)
