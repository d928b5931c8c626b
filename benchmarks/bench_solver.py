"""Cost of one solver time step against FFTs of the same grid, measured in the same run.

For each grid the script times a full RK3 step (three substeps: convection, implicit wall-normal
diffusion, pressure projection) of a turbulent-like state and one forward + inverse 3-D real
FFT of the three velocity components, and prints their ratio (the aim on a CPU: at most 2.5). The
two are timed in alternation and each figure is the least of ``--repeats`` rounds, so that a
machine shared with other work disturbs both alike. ``--floor`` also times, in the same
alternation, the two parts of a step that no fusion removes: the pressure solve's FFT calls and the
wall-normal matrix products (the implicit diffusion of u, v, w and the pressure's two transforms),
three substeps of each, with the solver's own matrices on columns of the step's sizes.

    python benchmarks/bench_solver.py                       # CPU, eager and compiled
    python benchmarks/bench_solver.py --sizes 64 128 --modes compiled --floor
    python benchmarks/bench_solver.py --device cuda --sizes 64 128 256
"""

from __future__ import annotations

import argparse
import math

import torch

from surrogate.grid import ChannelGrid
from surrogate.solver.channel import RK3_BETA, ChannelSolver
from timing import interleaved_min_seconds


def floor_parts(solver: ChannelSolver, dt: float) -> dict:
    """The step's pressure FFT calls and its wall-normal matrix products, three substeps of each, as
    two functions (the calls :meth:`PoissonSolver.solve` and the implicit diffusion make, with the
    solver's matrices; the products on random columns of the same sizes)."""
    grid, options = solver.grid, dict(device=solver.device, dtype=solver.dtype)
    rhs = torch.randn(grid.nx, grid.ny, grid.nz, **options)

    def ffts():
        for _ in RK3_BETA:
            spectrum = torch.fft.rfft2(rhs, dim=(0, 2))
            columns = torch.view_as_real(spectrum.transpose(0, 1).contiguous())
            torch.fft.irfft2(torch.view_as_complex(columns).transpose(0, 1), s=(grid.nx, grid.nz), dim=(0, 2))

    coefficient = torch.tensor(dt * solver.nu, **options)
    centre, face, _ = solver._implicit_operators(coefficient)
    implicit = [m for op in (centre, centre, face) for m in (op if isinstance(op, tuple) else (op,))]  # u, w, v
    spectral = grid.nx * (grid.nz // 2 + 1) * 2
    pairs = [(m, torch.randn(m.shape[1], grid.nx * grid.nz, **options)) for m in implicit]
    pairs += [(m, torch.randn(m.shape[1], spectral, **options)) for back, _, fwd in solver.poisson.wall_normal.parts for m in (fwd, back)]

    def products():
        for _ in RK3_BETA:
            for matrix, columns in pairs:
                matrix @ columns

    return {"ffts": ffts, "products": products}


def benchmark(n: int, device: torch.device, dtype: torch.dtype, compile: bool, repeats: int, floor: bool) -> dict:
    grid = ChannelGrid(n, n + 1, n, lx=2 * math.pi, lz=math.pi, stretching=2.0)
    solver = ChannelSolver(grid, 180.0, "constant_flow_rate", device=device, dtype=dtype, compile=compile)
    state = solver.initial_condition("turbulent", seed=0)
    dt = 0.5 * solver.stable_dt(state)
    solver.step(state, dt)  # compile / warm caches for this dt
    fields = [state.u, state.u.clone(), state.w]

    def fft_round_trip():
        for field in fields:
            torch.fft.irfftn(torch.fft.rfftn(field), s=field.shape)

    runs = {"step": lambda: solver.step(state, dt), "fft": fft_round_trip, **(floor_parts(solver, dt) if floor else {})}
    seconds = interleaved_min_seconds(runs, device, repeats)
    return {"grid": f"{n}x{n + 1}x{n}", **{f"{name}_s": value for name, value in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    parser.add_argument("--floor", action="store_true", help="also time the step's FFT calls and wall-normal products alone")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    print(f"device {device}, {args.dtype}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    floor = " | its FFTs [ms] (ratio) | its products [ms] (ratio)" if args.floor else ""
    print(f"{'grid':>12} {'mode':>9} {'step [ms]':>10} {'3 FFT round trips [ms]':>23} {'ratio':>6}{floor}")
    for n in args.sizes:
        for mode in args.modes:
            r = benchmark(n, device, dtype, mode == "compiled", args.repeats, args.floor)
            parts = "".join(f" | {1e3 * r[k]:8.2f} ({r[k] / r['fft_s']:.2f})" for k in ("ffts_s", "products_s") if k in r)
            print(f"{r['grid']:>12} {mode:>9} {1e3 * r['step_s']:10.2f} {1e3 * r['fft_s']:23.2f} {r['step_s'] / r['fft_s']:6.2f}{parts}",
                  flush=True)


if __name__ == "__main__":
    main()
