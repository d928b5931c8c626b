"""Cost per h/u_tau of a shipped surrogate's rollout against the WALE LES, timed in the same run.

The surrogate: ``--steps`` predictions of a shipped model (``surrogate pretrained``) from the first
window of the committed Re_tau = 180 test trajectory, on its 16 x 33 x 12 grid, eager and through
``torch.compile`` (``rollout.compile``), streaming every state, every 5th (one per h/u_tau) or none
to a netCDF file as ``surrogate rollout`` does; the warm-up (which compiles) is timed apart. The LES: the WALE
case ``cases/les_re180_wale.yaml`` (CFL 1, C_w = 0.325, compiled as the case says) on the model's
own grid and box (the baseline: the same cells and domain) and on the study's 32 x 33 x 16 over
4 pi x 2 x 4 pi / 3, each advanced ``--les-time`` h/u_tau from its turbulent trip after a warm-up
of the same length (which also compiles it). Aim of the rollout issue: the rollout at
least 3x cheaper per h/u_tau. ``--sgs-update step`` runs the LES with the model's ``nu_t`` held over
each step (``solver.sgs_update``), the cheaper LES.

    python benchmarks/bench_rollout.py
    python benchmarks/bench_rollout.py --sgs-update step
    python benchmarks/bench_rollout.py --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from surrogate.config import load_case
from surrogate.fields import open_fields
from surrogate.pretrained import load_pretrained
from surrogate.rollout import Predictions, rollout
from surrogate.simulation import build_solver
from surrogate.solver.channel import SGS_UPDATES
from timing import synchronize

ROOT = Path(__file__).resolve().parents[1]
TRAJECTORY = ROOT / "validation" / "data" / "dataset_re180" / "trajectory_001.nc"
LES_CASE = ROOT / "cases" / "les_re180_wale.yaml"


def first_window() -> torch.Tensor:
    """The first window of the committed test trajectory, ``(1, 3, nx, ny, nz)`` float32 in u_tau."""
    initial = open_fields(TRAJECTORY).isel(time=slice(0, 1)).load()
    return torch.from_numpy(initial[["u", "v", "w"]].to_array("component").transpose("time", "component", ...).values).float()


def grid_overrides(grid) -> list[str]:
    """Command-line overrides that put a case on ``grid`` (a :class:`~surrogate.grid.ChannelGrid`)."""
    return [f"grid.{key}={getattr(grid, key)}" for key in ("nx", "ny", "nz", "lx", "lz", "stretching")]


def surrogate_seconds(name: str, steps: int, device: torch.device, compile: bool, output_every: int | None) -> tuple[float, float, float]:
    """(wall seconds, h/u_tau covered, seconds of the warm-up) of ``steps`` predictions, writing
    every ``output_every``-th state to a netCDF file as ``surrogate rollout`` does (``None``: no output).

    The warm-up (two predictions, which compile the model with ``compile``) is timed apart.
    """
    model, checkpoint = load_pretrained(name, map_location=device)
    window = first_window()
    options = dict(normalization=checkpoint["normalization"], grid=checkpoint["grid"], dt=checkpoint["dt"], re_tau=checkpoint["re_tau"])
    predictions = Predictions(model, window, device=device, compile=compile, **options)
    start = time.perf_counter()
    for _ in predictions.run(2):
        pass
    synchronize(device)
    warm_up = time.perf_counter() - start
    simulated = steps * checkpoint["dt"]
    start = time.perf_counter()
    if output_every is None:
        for _ in predictions.run(steps):
            pass
    else:
        with tempfile.TemporaryDirectory() as folder:
            rollout(model, window, steps, Path(folder) / "rollout.nc", device=device, compile=compile,
                    output_every=output_every, progress=False, **options)
    synchronize(device)
    return time.perf_counter() - start, simulated, warm_up


def les_seconds(duration: float, device: torch.device, overrides: list[str] = ()) -> tuple[float, float, int]:
    """(wall seconds, h/u_tau covered, steps) of the WALE LES case (with the command-line
    ``overrides``, e.g. of its grid) after an equal warm-up."""
    case = load_case(LES_CASE, [f"solver.device={device.type}", *overrides])
    solver = build_solver(case)
    state = solver.run(solver.initial_condition("turbulent", seed=0, amplitude=case.initial.amplitude), t_end=duration)
    synchronize(device)
    count = [0]
    start = time.perf_counter()
    solver.run(state, t_end=state.time + duration, callback=lambda _: count.__setitem__(0, count[0] + 1))
    synchronize(device)
    return time.perf_counter() - start, duration, count[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ifactformer_m-re180", help="a shipped model")
    parser.add_argument("--steps", type=int, default=200, help="surrogate predictions to time")
    parser.add_argument("--les-time", type=float, default=4.0, help="h/u_tau of LES to time")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sgs-update", choices=SGS_UPDATES, default="substep", help="the LES's solver.sgs_update")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    _, checkpoint = load_pretrained(args.model)
    grid = checkpoint["grid"]
    own = grid_overrides(grid)
    rows = []
    update = f"nu_t every {args.sgs_update}"
    for label, overrides in ((f"WALE LES on the model's grid, {grid.nx} x {grid.ny} x {grid.nz} (compiled, {update})", own),
                             (f"WALE LES of the study case, 32 x 33 x 16 over 4 pi x 2 x 4 pi/3 (compiled, {update})", [])):
        les, les_time, les_steps = les_seconds(args.les_time, device, [*overrides, f"solver.sgs_update={args.sgs_update}"])
        rows.append((label, les, les_time, f"{les_steps} steps"))
    variants = [(False, 1), (False, None), (True, 1), (True, 5), (True, None)]
    for compile, output_every in variants:
        seconds, simulated, warm_up = surrogate_seconds(args.model, args.steps, device, compile, output_every)
        output = {1: "every state written", None: "no output"}.get(output_every, f"every {output_every}th state written")
        mode = f"compiled (warm-up {warm_up:.1f} s)" if compile else "eager"
        rows.append((f"{args.model}, 16 x 33 x 12, {mode}, {output}", seconds, simulated, f"{args.steps} steps"))
    baseline = rows[0][1] / rows[0][2]  # the LES on the model's own grid and box
    print("| run | steps | s per h/u_tau | LES on the model's grid / run |\n| --- | ---: | ---: | ---: |")
    for label, seconds, simulated, steps in rows:
        per = seconds / simulated
        print(f"| {label} | {steps} | {per:.4f} | {baseline / per:.1f}x |")


if __name__ == "__main__":
    main()
