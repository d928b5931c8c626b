"""A solver or LES step of an earlier commit against the working tree's, alternated in one process.

On a machine shared with other work, timings of separate runs drift by tens of percent within
minutes. Here the earlier commit is checked out in a temporary worktree and imported beside the
working tree's package (as ``surrogate_base``; the package imports itself relatively), both
solvers step the same state in alternation, and each figure is the least time per step over
``--rounds`` rounds. The last column is the largest difference of ``u`` after the timed runs, to
show whether the two compute the same thing.

    python benchmarks/ab_step.py 97ffc94 --grids 64x65x64 128x129x128 --compiled
    python benchmarks/ab_step.py HEAD~1 --grids 32x33x16_4pi --models none smagorinsky wale --compiled
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from bench_les import GRIDS, MODELS
from surrogate.grid import ChannelGrid
from surrogate.solver.channel import ChannelSolver
from surrogate.solver.sgs import build_sgs_model

GRIDS = {**GRIDS, "128x129x128": ChannelGrid(128, 129, 128, lx=2 * torch.pi, lz=torch.pi, stretching=2.0)}


def import_base(worktree: Path):
    """The package of ``worktree`` imported as ``surrogate_base``."""
    spec = importlib.util.spec_from_file_location(
        "surrogate_base", worktree / "surrogate" / "__init__.py", submodule_search_locations=[str(worktree / "surrogate")]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["surrogate_base"] = module
    spec.loader.exec_module(module)
    return module


def least_seconds_per_step(solvers: dict, states: dict, steps: int, rounds: int) -> dict[str, float]:
    best = {label: float("inf") for label in solvers}
    for _ in range(rounds):
        for label, solver in solvers.items():
            start = time.perf_counter()
            solver.run(states[label], steps=steps)
            best[label] = min(best[label], (time.perf_counter() - start) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the earlier commit")
    parser.add_argument("--grids", nargs="+", choices=list(GRIDS), default=["32x33x16_4pi", "64x65x64"])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["none"])
    parser.add_argument("--compiled", action="store_true")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    root = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(worktree), args.rev], capture_output=True, check=True)
        try:
            with warnings.catch_warnings():  # its xarray accessor replaces the working tree's
                warnings.simplefilter("ignore")
                base = import_base(worktree)
            from surrogate_base.solver.channel import ChannelSolver as BaseSolver  # noqa: PLC0415
            from surrogate_base.solver.sgs import build_sgs_model as base_sgs  # noqa: PLC0415

            print(f"{args.rev} against the working tree, {'compiled' if args.compiled else 'eager'}, torch {torch.__version__}, "
                  f"{torch.get_num_threads()} threads, least of {args.rounds} alternated rounds")
            print(f"{'grid':>14} {'model':>20} {'base [ms]':>10} {'tree [ms]':>10} {'tree/base':>10} {'max |du|':>9}")
            for label in args.grids:
                grid = GRIDS[label]
                base_grid = base.grid.ChannelGrid(**{f.name: getattr(grid, f.name) for f in dataclasses.fields(grid) if f.init})
                steps = max(1, round(2e5 / (grid.nx * grid.ny * grid.nz)))
                for model in args.models:
                    name, params = MODELS[model]
                    solvers = {
                        side: solver(cells, 180.0, "constant_flow_rate", compile=args.compiled,
                                     sgs=None if name == "none" else sgs(name, **params))
                        for side, solver, sgs, cells in (("base", BaseSolver, base_sgs, base_grid),
                                                         ("tree", ChannelSolver, build_sgs_model, grid))
                    }
                    states = {k: s.initial_condition("turbulent", seed=0) for k, s in solvers.items()}
                    with torch.no_grad():
                        for k, s in solvers.items():
                            states[k] = s.run(states[k], steps=2)
                        best = least_seconds_per_step(solvers, states, steps, args.rounds)
                        ends = {k: s.run(states[k], steps=2).u for k, s in solvers.items()}
                    diff = float((ends["tree"] - ends["base"]).abs().max())
                    print(f"{label:>14} {model:>20} {1e3 * best['base']:10.2f} {1e3 * best['tree']:10.2f} "
                          f"{best['tree'] / best['base']:10.3f} {diff:9.1e}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(worktree)], capture_output=True)


if __name__ == "__main__":
    main()
