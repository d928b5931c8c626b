"""Cost of an LES time step with each subgrid model relative to the no-model solver.

A step is the mean over a run of ``STEPS`` adaptive steps (each: the CFL and eddy-viscosity
time-step bound, whose ``nu_t`` the first substep takes, then three RK3 substeps). Every model
is measured in the same run on the same grid and state (aim on a CPU: Smagorinsky and WALE at
most 1.3x, dynamic Smagorinsky at most 2x, the neural closure at most 1.5x): the runs of a grid
are timed in alternation and each figure is the least of ``--repeats`` rounds. ``--sgs-update``
times the models with ``nu_t`` evaluated every substep, once per step, or both side by side.

    python benchmarks/bench_les.py                      # the IFactFormer-m LES grid and 64^3
    python benchmarks/bench_les.py --device cuda --compiled
    python benchmarks/bench_les.py --compiled --clock cpu   # CPU time: for a machine shared with other work
    python benchmarks/bench_les.py --compiled --grids 64x65x64 --models smagorinsky wale
    python benchmarks/bench_les.py --compiled --models smagorinsky wale --sgs-update substep step
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from surrogate.grid import ChannelGrid
from surrogate.solver.channel import SGS_UPDATES, ChannelSolver
from surrogate.solver.sgs import build_sgs_model
from timing import interleaved_min_seconds

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
    parser.add_argument("--sgs-update", nargs="+", choices=SGS_UPDATES, default=["substep"],
                        help="evaluate nu_t every substep (default), once per step, or time both")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu measures CPU devices only")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"device {device}, {args.dtype}, {'compiled' if args.compiled else 'eager'}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.clock} clock, least of {args.repeats} alternated rounds")
    print(f"{'grid':>28} {'model':>20} {'nu_t every':>10} {'step [ms]':>10} {'vs no model':>12}")
    for label in args.grids:
        grid = GRIDS[label]
        state = ChannelSolver(grid, 180.0, device=device, dtype=dtype).initial_condition("turbulent", seed=0)
        runs = {}
        for label_model in ["none", *args.models]:
            name, parameters = MODELS[label_model]
            for update in ["substep"] if name == "none" else args.sgs_update:
                sgs = None if name == "none" else build_sgs_model(name, **parameters)
                update_option = {} if update == "substep" else {"sgs_update": update}  # the default: as earlier commits run
                solver = ChannelSolver(grid, 180.0, "constant_flow_rate", sgs=sgs, device=device, dtype=dtype,
                                       compile=args.compiled, **update_option)
                runs[(label_model, update)] = lambda solver=solver: solver.run(state, steps=STEPS)
        with torch.no_grad():  # as surrogate les runs (the neural closure's weights need no gradient)
            seconds = interleaved_min_seconds(runs, device, args.repeats, clock)
        baseline = seconds[("none", "substep")]
        for (label_model, update), total in seconds.items():
            update = "-" if label_model == "none" else update
            print(f"{label:>28} {label_model:>20} {update:>10} {1e3 * total / STEPS:10.2f} {total / baseline:11.2f}x", flush=True)


if __name__ == "__main__":
    main()
