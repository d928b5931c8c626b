"""Cost per h/u_tau of the LES with the shipped learned closure against the no-model LES, in one run.

Both start from the developed field of ``cases/les_re180_learned.yaml`` (the last ``fdns180``
snapshot) on the dataset grid and advance with adaptive steps, so the figure holds both the cost
of a step and the number of steps per h/u_tau (the closure's flow sets its own CFL step); each
run is timed over ``--repeats`` spans of ``--time`` h/u_tau. Process CPU time by default (a
machine shared with other work does not inflate it). Aim of the closure issue: at most 1.5x the
no-model LES.

    OMP_NUM_THREADS=1 python benchmarks/bench_closure_les.py [--weights runs/NAME/closure.pt]
    python benchmarks/bench_closure_les.py --compile --time 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from surrogate.config import load_case
from surrogate.simulation import build_solver, initial_state

CASE = Path(__file__).resolve().parents[1] / "cases" / "les_re180_learned.yaml"


def seconds_per_time_unit(overrides: list[str], span: float, repeats: int, clock) -> tuple[float, float]:
    """``(seconds, steps)`` per h/u_tau over ``repeats`` consecutive spans of ``span`` h/u_tau after
    one warm-up h/u_tau: the cost of a step is the fastest span's (timing noise only adds), the
    steps per h/u_tau are those of all spans (the flow sets them)."""
    case = load_case(CASE, overrides)
    solver = build_solver(case)
    per_step, steps = float("inf"), 0
    with torch.no_grad():
        state = initial_state(case, solver)
        state = solver.run(state, t_end=state.time + 1.0)  # warm-up (and the compile, when compiled)
        for _ in range(repeats):
            first_step, started = state.step, clock()
            state = solver.run(state, t_end=state.time + span)
            per_step = min(per_step, (clock() - started) / (state.step - first_step))
            steps += state.step - first_step
    steps_per_time = steps / (span * repeats)
    return per_step * steps_per_time, steps_per_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=float, default=5.0, help="h/u_tau per timed span (after a 1 h/u_tau warm-up)")
    parser.add_argument("--repeats", type=int, default=4, help="timed spans per run (the fastest sets the cost of a step)")
    parser.add_argument("--compile", action="store_true", help="both solvers compiled (solver.compile=true)")
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    parser.add_argument("--weights", help="a closure file (or shipped closure name) to time instead of the case's")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    common = [f"solver.compile={'true' if args.compile else 'false'}"]
    label, closure = "learned closure (the case's)", common
    if args.weights:
        label, closure = f"learned closure ({args.weights})", common + [f"sgs.parameters={{weights: {args.weights}}}"]
    runs = {"no model": common + ["sgs={model: none}"], label: closure}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock, "
          f"{'compiled' if args.compile else 'eager'}, {args.repeats} spans of {args.time:g} h/u_tau")
    print(f"{'run':>30} {'s per h/u_tau':>14} {'steps per h/u_tau':>18} {'vs no model':>12}")
    baseline = None
    for label, overrides in runs.items():
        seconds, steps = seconds_per_time_unit(overrides, args.time, args.repeats, clock)
        baseline = baseline or seconds
        print(f"{label:>30} {seconds:14.3f} {steps:18.1f} {seconds / baseline:11.2f}x", flush=True)


if __name__ == "__main__":
    main()
