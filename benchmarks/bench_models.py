"""Cost of the surrogates on the IFactFormer-m coarse grid, and of their rollout against the WALE LES.

For each model and preset (``paper``, ``cpu``) on 32 x 33 x 16 cells: parameters, forward and
forward + backward time per sample (batch 1, float32) and the peak resident memory the
forward + backward adds above the memory held before it (a fresh process per model; Linux
``VmHWM`` reset through ``/proc/self/clear_refs``; on CUDA the allocator's peak). Then the
cost of advancing one unit of simulated time (h/u_tau): a surrogate makes one forward per
snapshot spacing ``--dt`` (the dataset's, 0.2 h/u_tau for ``cases/dataset_re180.yaml``); the WALE
LES on the same grid takes ``--les-steps`` time steps per h/u_tau (94.8 for the Re_tau = 180 WALE
run recorded in validation/README.md), each timed here in the same run.

    python benchmarks/bench_models.py
    python benchmarks/bench_models.py --presets cpu --device cuda
    python benchmarks/bench_models.py --models encoder_processor_decoder --presets cpu vit_cpu pooling_cpu

A model without one of the ``--presets`` is skipped for that preset (the encoder-processor-decoder
model has a preset per encoder kind, e.g. ``vit_cpu``, besides ``cpu`` and ``paper``).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
from pathlib import Path

import torch

from surrogate.grid import ChannelGrid
from surrogate.models import available_models, build_model, count_parameters, model_presets
from timing import median_seconds, status_kib

GRID = ChannelGrid(32, 33, 16, lx=4 * math.pi, lz=4 * math.pi / 3, stretching=2.0)


def measure(name: str, preset: str, device: str, repeats: int, queue) -> None:
    """Time one model in this (fresh) process and put the figures on ``queue``."""
    torch.manual_seed(0)
    dev = torch.device(device)
    model = build_model(name, preset).to(dev)
    x = torch.randn(1, 1, 3, *GRID.shape, device=dev)
    coords = {axis: torch.as_tensor(getattr(GRID, axis), dtype=torch.float32, device=dev) for axis in "xyz"}
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set size
    before = status_kib("VmRSS")

    def forward() -> None:
        with torch.no_grad():
            model(x, coords)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        model(x, coords).square().mean().backward()

    t_backward = median_seconds(forward_backward, dev, repeats)
    peak = status_kib("VmHWM") - before
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        forward_backward()
        peak = torch.cuda.max_memory_allocated(dev) // 1024
    queue.put((count_parameters(model), median_seconds(forward, dev, repeats), t_backward, peak / 1024))


def les_step_seconds(device: str, repeats: int) -> float:
    """Median wall time of one compiled WALE LES step (float64) on the grid."""
    from surrogate.solver.channel import ChannelSolver
    from surrogate.solver.sgs import build_sgs_model

    dev = torch.device(device)
    solver = ChannelSolver(GRID, 180.0, sgs=build_sgs_model("wale"), device=dev, compile=True)
    state = solver.initial_condition("turbulent", seed=0)
    return median_seconds(lambda: solver.run(state, steps=1), dev, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    parser.add_argument("--models", nargs="+", default=available_models())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dt", type=float, default=0.2, help="surrogate time step, h/u_tau")
    parser.add_argument("--les-steps", type=float, default=94.8, help="WALE LES time steps per h/u_tau")
    args = parser.parse_args()
    les = les_step_seconds(args.device, args.repeats) * args.les_steps
    print(f"device {args.device}, float32 models, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"grid {GRID.nx}x{GRID.ny}x{GRID.nz}")
    print(f"WALE LES (compiled, float64): {les:.2f} s per h/u_tau ({args.les_steps} steps)")
    print(f"{'model':>25} {'preset':>17} {'parameters':>11} {'forward [s]':>12} {'fwd+bwd [s]':>12} "
          f"{'peak [MiB]':>11} {'s per h/u_tau':>14} {'faster than LES':>16}")
    context = multiprocessing.get_context("spawn")
    for preset in args.presets:
        for name in args.models:
            if preset not in model_presets(name):
                continue
            queue = context.Queue()
            process = context.Process(target=measure, args=(name, preset, args.device, args.repeats, queue))
            process.start()
            params, forward, backward, peak = queue.get()
            process.join()
            per_time = forward / args.dt
            print(f"{name:>25} {preset:>17} {params:>11,} {forward:12.4f} {backward:12.4f} {peak:11.1f} "
                  f"{per_time:14.3f} {les / per_time:15.1f}x", flush=True)


if __name__ == "__main__":
    main()
