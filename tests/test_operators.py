"""Staggered operators: the eddy-viscous force against the discrete Laplacian and its dissipation, the
summed momentum flux against its three terms apart; the LES step's evaluations of the subgrid model,
and the compiled step against the eager one; the model held over a step."""

from __future__ import annotations

import pytest
import torch

from surrogate.grid import ChannelGrid
from surrogate.solver.channel import ChannelSolver

GRID = ChannelGrid(16, 17, 12, lx=2.0, lz=1.0, stretching=2.0)


def _turbulent_state(seed: int = 4):
    solver = ChannelSolver(GRID, re_tau=180.0)
    return solver, solver.initial_condition("turbulent", seed=seed, amplitude=1.0)


def test_uniform_eddy_viscosity_force_is_the_discrete_laplacian_without_a_wall_flux():
    solver, state = _turbulent_state()
    ops = solver.ops
    nu_t = torch.full(GRID.shape, 0.37, dtype=torch.float64)
    forces = ops.eddy_viscous_force(nu_t, state.u, state.v, state.w)
    laplacians = (
        ops.laplacian_xz(state.u) + ops.d2y_centres(state.u),
        ops.laplacian_xz(state.v) + ops.d2y_faces(state.v),
        ops.laplacian_xz(state.w) + ops.d2y_centres(state.w),
    )
    expected = [0.37 * laplacian for laplacian in laplacians]
    for k, velocity in ((0, state.u), (2, state.w)):  # nu_t = 0 on the wall edges: no eddy-viscous wall flux
        wall_gradient = ops.ddy_at_faces(velocity)
        expected[k][:, 0] += 0.37 * wall_gradient[:, 0] / ops.dy[:, 0]
        expected[k][:, -1] -= 0.37 * wall_gradient[:, -1] / ops.dy[:, -1]
    for force, reference in zip(forces, expected):
        assert float((force - reference).abs().max()) < 1e-12 * float(force.abs().max())
    assert float((forces[0][:, 0] - 0.37 * laplacians[0][:, 0]).abs().max()) > 1e-3  # the wall rows do differ


def test_eddy_viscous_force_dissipates_kinetic_energy():
    solver, state = _turbulent_state(seed=7)
    ops = solver.ops
    generator = torch.Generator().manual_seed(0)
    nu_t = torch.rand(GRID.shape, generator=generator, dtype=torch.float64)
    fu, fv, fw = ops.eddy_viscous_force(nu_t, state.u, state.v, state.w)
    v_heights = torch.nn.functional.pad(ops.dyc, (0, 0, 1, 1))
    power = (state.u * fu * ops.dy).sum() + (state.v * fv * v_heights).sum() + (state.w * fw * ops.dy).sum()
    assert float(power) < 0


def test_the_summed_momentum_flux_is_convection_diffusion_and_the_eddy_viscous_force():
    """The solver's one-divergence form of its explicit terms against the three terms apart."""
    solver, state = _turbulent_state(seed=5)
    ops, (u, v, w) = solver.ops, (state.u, state.v, state.w)
    nu_t = torch.rand(GRID.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    plain = [c + solver.nu * ops.laplacian_xz(a) for c, a in zip(ops.convection(u, v, w), (u, v, w))]
    for nu_t_or_none in (None, nu_t):
        forces = (0, 0, 0) if nu_t_or_none is None else ops.eddy_viscous_force(nu_t, u, v, w)
        for term, reference, force in zip(ops.explicit_momentum(u, v, w, solver.nu, nu_t_or_none), plain, forces):
            expected = reference + force
            assert float((term - expected).abs().max()) < 1e-13 * float(expected.abs().max())
    assert float(ops.explicit_momentum(u, v, w, solver.nu, nu_t)[1][:, [0, -1]].abs().max()) == 0.0  # v rows on walls


class _ZeroModel:
    def eddy_viscosity(self, ops, u, v, w, nu):
        return torch.zeros_like(u)


def test_les_with_zero_eddy_viscosity_reproduces_the_dns_to_round_off():
    """The LES sums its eddy-viscous flux into the convective one before differencing (see
    ``explicit_momentum``): a zero ``nu_t`` then rounds differently from the DNS, by ~1e-15."""
    dns = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate")
    les = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate", sgs=_ZeroModel())
    start = dns.initial_condition("turbulent", seed=2)
    a = dns.run(start, steps=5)
    b = les.run(start, steps=5)
    for name in ("u", "v", "w", "p"):
        expected = getattr(a, name)
        assert float((getattr(b, name) - expected).abs().max()) < 1e-13 * float(expected.abs().max()), name
    assert a.time == b.time


def test_eddy_viscosity_shortens_the_time_step():
    class Constant:
        def eddy_viscosity(self, ops, u, v, w, nu):
            return torch.full_like(u, 1.0)

    state = ChannelSolver(GRID, re_tau=180.0).initial_condition("laminar")
    dns_dt = ChannelSolver(GRID, re_tau=180.0).stable_dt(state)
    les_dt = ChannelSolver(GRID, re_tau=180.0, sgs=Constant()).stable_dt(state)
    assert les_dt < dns_dt


class _Counting:
    """A subgrid model that counts its evaluations."""

    def __init__(self, model) -> None:
        self.model, self.calls, self.fused = model, 0, model.fused

    def eddy_viscosity(self, ops, u, v, w, nu):
        self.calls += 1
        return self.model.eddy_viscosity(ops, u, v, w, nu)


@pytest.mark.parametrize("name", ["wale", "smagorinsky"])  # nu_t apart from the substeps, and inside them
def test_an_adaptive_step_evaluates_the_model_three_times_and_matches_a_step_that_evaluates_it_afresh(name):
    from surrogate.solver.sgs import build_sgs_model

    counted = _Counting(build_sgs_model(name))
    kept = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate", sgs=counted)
    fresh = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate", sgs=build_sgs_model(name))
    a = b = kept.initial_condition("turbulent", seed=5, amplitude=1.0)
    for _ in range(4):
        dt = kept.stable_dt(a)  # its nu_t is the first substep's
        a = kept.step(a, dt)
        b = fresh.step(b.clone(), dt)  # new tensors: every substep evaluates nu_t afresh
    assert counted.calls == 3 * 4
    for name in ("u", "v", "w", "p"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_the_compiled_les_step_matches_the_eager_one():
    from surrogate.solver.sgs import WALE

    eager = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate", sgs=WALE())
    fused = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate", sgs=WALE(), compile=True)
    start = eager.initial_condition("turbulent", seed=6, amplitude=1.0)
    a, b = eager.run(start, steps=3), fused.run(start, steps=3)
    assert a.time == b.time
    for name in ("u", "v", "w"):
        torch.testing.assert_close(getattr(b, name), getattr(a, name), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["wale", "smagorinsky"])
def test_a_step_that_updates_the_model_once_holds_the_first_substeps_nu_t(name):
    from surrogate.solver.sgs import build_sgs_model

    model = build_sgs_model(name)
    counted = _Counting(model)
    once = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate", sgs=counted, sgs_update="step")
    start = once.initial_condition("turbulent", seed=5, amplitude=1.0)
    dt = once.stable_dt(start)
    a = once.step(start, dt)
    assert counted.calls == 1
    nu_t = model.eddy_viscosity(once.ops, start.u, start.v, start.w, once.nu)

    class Frozen:  # the step's first nu_t at every substep
        def eddy_viscosity(self, ops, u, v, w, nu):
            return nu_t

    frozen = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate", sgs=Frozen()).step(start, dt)
    every = ChannelSolver(GRID, re_tau=180.0, forcing="constant_flow_rate", sgs=build_sgs_model(name)).step(start, dt)
    for field in ("u", "v", "w", "p"):
        assert torch.equal(getattr(a, field), getattr(frozen, field)), field
    assert not torch.equal(a.u, every.u)  # the per-substep update is another scheme


def test_an_unknown_subgrid_update_is_refused():
    with pytest.raises(ValueError, match="sgs_update must be one of"):
        ChannelSolver(GRID, re_tau=180.0, sgs_update="stage")
