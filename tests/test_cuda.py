"""The CUDA path: solver, subgrid models, differentiable closure, rollout and training on a GPU agree with the CPU.

Every test here needs a CUDA device and is skipped without one (the model tests of
``test_models_*.py`` check each network's CUDA forward the same way). ``benchmarks/gpu_checks.sh``
runs them on a lent GPU with the GPU benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from surrogate.closure_training import unroll
from surrogate.fields import open_fields
from surrogate.grid import ChannelGrid
from surrogate.pretrained import rollout_pretrained
from surrogate.solver import ChannelSolver, NeuralEddyViscosity
from surrogate.solver.channel import ChannelState
from surrogate.solver.sgs import build_sgs_model
from surrogate.training import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

GRID = ChannelGrid(16, 17, 12, lx=2 * math.pi, lz=math.pi, stretching=2.0)
RE_TAU, DT = 180.0, 0.002


def _solver(sgs_name: str | None, device: str, dtype: torch.dtype = torch.float64, compile: bool = False) -> ChannelSolver:
    sgs = build_sgs_model(sgs_name) if sgs_name else None
    return ChannelSolver(GRID, RE_TAU, "constant_flow_rate", sgs=sgs, device=device, dtype=dtype, compile=compile)


def _to(state: ChannelState, device: str) -> ChannelState:
    return replace(state, u=state.u.to(device), v=state.v.to(device), w=state.w.to(device), p=state.p.to(device))


@pytest.mark.parametrize("sgs_name", [None, "smagorinsky", "wale", "dynamic_smagorinsky"])
def test_ten_solver_steps_on_cuda_match_the_cpu_in_float64(sgs_name) -> None:
    cpu, gpu = _solver(sgs_name, "cpu"), _solver(sgs_name, "cuda")
    a = cpu.initial_condition("turbulent", seed=3)
    b = _to(a, "cuda")
    for _ in range(10):
        a, b = cpu.step(a, DT), gpu.step(b, DT)
    for name in ("u", "v", "w"):
        reference = getattr(a, name)
        error = float((getattr(b, name).cpu() - reference).norm() / reference.norm())
        assert error < 1e-12, (name, error)
    assert float(gpu.ops.divergence(b.u, b.v, b.w).abs().max()) < 1e-10


def test_compiled_float32_solver_on_cuda_matches_the_eager_one() -> None:
    eager, fused = _solver("wale", "cuda", torch.float32), _solver("wale", "cuda", torch.float32, compile=True)
    a = eager.initial_condition("turbulent", seed=1)
    b = a.clone()
    for _ in range(5):
        a, b = eager.step(a, DT), fused.step(b, DT)
    torch.testing.assert_close(b.u, a.u, rtol=1e-4, atol=1e-4)


def test_gradient_of_an_unrolled_learned_closure_on_cuda_matches_the_cpu() -> None:
    grads = []
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        closure = NeuralEddyViscosity(hidden=8, layers=2)
        solver = ChannelSolver(GRID, RE_TAU, "constant_flow_rate", sgs=closure, device=device, dtype=torch.float64)
        state = solver.initial_condition("turbulent", seed=2, amplitude=0.5)
        end = unroll(solver, state, 3, DT)
        (end.u.square().mean() + end.w.square().mean()).backward()
        grads.append(torch.cat([p.grad.flatten().cpu() for p in closure.network.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-12)


def test_the_shipped_model_rolls_out_on_cuda_as_on_the_cpu(tmp_path) -> None:
    rollout_pretrained("ifactformer_m-re180", steps=5, path=tmp_path / "cpu.nc", progress=False)
    rollout_pretrained("ifactformer_m-re180", steps=5, path=tmp_path / "gpu.nc", device="cuda", progress=False)
    with open_fields(tmp_path / "cpu.nc") as cpu, open_fields(tmp_path / "gpu.nc") as gpu:
        for name in ("u", "v", "w"):
            error = float(abs(gpu[name] - cpu[name]).max() / abs(cpu[name]).max())
            assert error < 1e-3, (name, error)


def test_training_on_cuda_lowers_the_loss(advected, tmp_path) -> None:
    from surrogate.config import load_train_case

    case = load_train_case({
        "name": "tiny_cuda",
        "dataset": str(advected.parent),
        "model": {"name": "ifactformer_m", "parameters": {"dim": 12, "heads": 2, "dim_head": 4, "kernel_multiplier": 3, "n_layer": 2}},
        "data": {"n_history": 1, "n_target": 2, "normalization": "plane"},
        "training": {"epochs": 3, "batch_size": 4, "lr": 3e-3, "device": "cuda", "statistics_weight": 1.0, "field_steps": 1},
        "output": str(tmp_path / "{name}"),
    })
    folder = train(case, progress=False)
    rows = (folder / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    losses = [float(row.split(",")[header.index("train_loss")]) for row in rows[1:]]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
