"""Cost of an LES time step with each subgrid model relative to the no-model solver.

A step is the mean over a run of ``STEPS`` adaptive steps (each: the CFL and eddy-viscosity
time-step bound, whose ``nu_t`` the first substep takes, then three RK3 substeps). Every model
is measured in the same run on the same grid and state (aim on a CPU: Smagorinsky and WALE at
most 1.3x, dynamic Smagorinsky at most 2x, the neural closure at most 1.5x).

    python benchmarks/bench_les.py                      # the IFactFormer-m LES grid and 64^3
    python benchmarks/bench_les.py --device cuda --compiled
    python benchmarks/bench_les.py --compiled --clock cpu   # CPU time: for a machine shared with other work
    python benchmarks/bench_les.py --compiled --grids 64x65x64 --models smagorinsky wale
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from surrogate.grid import ChannelGrid
from surrogate.solver.channel import ChannelSolver
from surrogate.solver.sgs import build_sgs_model
from timing import median_seconds

GRIDS = {  # cells and box (2 pi x 2 x pi unless named)
    "16x33x12": ChannelGrid(16, 33, 12, lx=2 * math.pi, lz=math.pi, stretching=2.0),
    "32x33x16_4pi": ChannelGrid(32, 33, 16, lx=4 * math.pi, lz=4 * math.pi / 3, stretching=2.0),
    "64x65x64": ChannelGrid(64, 65, 64, lx=2 * math.pi, lz=math.pi, stretching=2.0),
}
#: adaptive steps of one timed run
STEPS = 10
#: label -> (subgrid model name, its parameters); "neural mean field" is the two-part closure's
#: mean-field part alone (the form of neural-mean-field-re180), "neural mean rotation" that with the
#: strain-rotation stress (the form of the shipped neural-mean-rotation-re180)
MODELS = {
    "none": ("none", {}),
    "smagorinsky": ("smagorinsky", {}),
    "wale": ("wale", {}),
    "dynamic_smagorinsky": ("dynamic_smagorinsky", {}),
    "neural": ("neural", {}),
    "neural mean field": ("neural", {"mean_field": True, "fluctuating": False}),
    "neural mean rotation": ("neural", {"mean_field": True, "fluctuating": False, "rotation": True}),
}


def median_cpu_seconds(fn, repeats: int) -> float:
    """Median CPU time of this process for ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    samples.sort()
    return samples[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--compiled", action="store_true", help="fuse substeps with torch.compile")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="wall time, or CPU time of this process (CPU only; not inflated by other processes' turns on the CPU)",
    )
    parser.add_argument("--grids", nargs="+", choices=list(GRIDS), default=list(GRIDS), metavar="GRID",
                        help=f"grids to time (default all: {', '.join(GRIDS)})")
    parser.add_argument("--models", nargs="+", choices=list(MODELS)[1:], default=list(MODELS)[1:], metavar="MODEL",
                        help="subgrid models to time against the no-model step (default all: "
                        f"{', '.join(list(MODELS)[1:])})")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu measures CPU devices only")
    print(f"device {device}, {args.dtype}, {'compiled' if args.compiled else 'eager'}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.clock} clock")
    print(f"{'grid':>28} {'model':>20} {'step [ms]':>10} {'vs no model':>12}")
    for label in args.grids:
        grid = GRIDS[label]
        state = ChannelSolver(grid, 180.0, device=device, dtype=dtype).initial_condition("turbulent", seed=0)
        baseline = None
        for label_model in ["none", *args.models]:
            name, parameters = MODELS[label_model]
            sgs = None if name == "none" else build_sgs_model(name, **parameters)
            solver = ChannelSolver(
                grid, 180.0, "constant_flow_rate", sgs=sgs, device=device, dtype=dtype, compile=args.compiled
            )
            @torch.no_grad()  # as surrogate les runs (the neural closure's weights need no gradient)
            def steps() -> None:
                solver.run(state, steps=STEPS)

            if args.clock == "wall":
                seconds = median_seconds(steps, device, args.repeats) / STEPS
            else:
                seconds = median_cpu_seconds(steps, args.repeats) / STEPS
            baseline = baseline or seconds
            print(f"{label:>28} {label_model:>20} {1e3 * seconds:10.2f} {seconds / baseline:11.2f}x", flush=True)


if __name__ == "__main__":
    main()
