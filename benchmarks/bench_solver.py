"""Cost of one solver time step against FFTs of the same grid, measured in the same run.

For each grid the script times a full RK3 step (three substeps: convection, implicit wall-normal
diffusion, pressure projection) of a turbulent-like state and one forward + inverse 3-D real
FFT of the three velocity components, and prints their ratio (the aim on a CPU: at most 2.5). The
two are timed in alternation and each figure is the least of ``--repeats`` rounds, so that a
machine shared with other work disturbs both alike.

    python benchmarks/bench_solver.py                       # CPU, eager and compiled
    python benchmarks/bench_solver.py --device cuda --sizes 64 128 256
"""

from __future__ import annotations

import argparse
import math

import torch

from surrogate.grid import ChannelGrid
from surrogate.solver.channel import ChannelSolver
from timing import interleaved_min_seconds


def benchmark(n: int, device: torch.device, dtype: torch.dtype, compile: bool, repeats: int) -> dict:
    grid = ChannelGrid(n, n + 1, n, lx=2 * math.pi, lz=math.pi, stretching=2.0)
    solver = ChannelSolver(grid, 180.0, "constant_flow_rate", device=device, dtype=dtype, compile=compile)
    state = solver.initial_condition("turbulent", seed=0)
    dt = 0.5 * solver.stable_dt(state)
    solver.step(state, dt)  # compile / warm caches for this dt
    fields = [state.u, state.u.clone(), state.w]

    def fft_round_trip():
        for field in fields:
            torch.fft.irfftn(torch.fft.rfftn(field), s=field.shape)

    seconds = interleaved_min_seconds({"step": lambda: solver.step(state, dt), "fft": fft_round_trip}, device, repeats)
    step, fft = seconds["step"], seconds["fft"]
    return {"grid": f"{n}x{n + 1}x{n}", "step_s": step, "fft_s": fft, "ratio": step / fft}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    print(f"device {device}, {args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'grid':>12} {'mode':>9} {'step [ms]':>10} {'3 FFT round trips [ms]':>23} {'ratio':>6}")
    for n in args.sizes:
        for mode in args.modes:
            r = benchmark(n, device, dtype, mode == "compiled", args.repeats)
            print(f"{r['grid']:>12} {mode:>9} {1e3 * r['step_s']:10.2f} {1e3 * r['fft_s']:23.2f} {r['ratio']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
