"""A shipped surrogate's rollout against the WALE LES on the same grid, per h/u_tau, alternated.

``bench_rollout.py`` times the LES and the rollout one after the other, from the LES's turbulent
trip; on a machine shared with other work two such runs drift apart by tens of percent. Here the
WALE case ``cases/les_re180_wale.yaml`` runs on the model's own grid from the shipped developed
field ``fdns180`` (so every segment is developed flow), once with ``nu_t`` every substep and once
held over each step (``solver.sgs_update``), both compiled; the compiled model predicts from the
first window of the committed test trajectory without writing its states. After a warm-up each
(which compiles), the three advance ``--segment`` h/u_tau in turn for ``--rounds`` rounds; the
table gives each one's least and median seconds per h/u_tau over the rounds and the LES's cost over
the rollout's, both from the least times.

    python benchmarks/bench_surrogate_vs_les.py
    OMP_NUM_THREADS=1 python benchmarks/bench_surrogate_vs_les.py --rounds 8
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench_rollout import LES_CASE, first_window, grid_overrides
from surrogate.config import load_case
from surrogate.pretrained import load_pretrained
from surrogate.rollout import Predictions
from surrogate.simulation import build_solver, initial_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ifactformer_m-re180", help="a shipped model")
    parser.add_argument("--segment", type=float, default=1.0, help="h/u_tau each run advances per round")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    model, checkpoint = load_pretrained(args.model)
    grid = checkpoint["grid"]
    own = grid_overrides(grid)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.model} on {grid.nx} x {grid.ny} x {grid.nz}, "
          f"{args.rounds} rounds of {args.segment:g} h/u_tau each")

    advance = {}
    for update in ("substep", "step"):
        case = load_case(LES_CASE, [*own, "initial.kind=file", "initial.path=fdns180", f"solver.sgs_update={update}"])
        solver = build_solver(case)
        state = [initial_state(case, solver)]

        def les(duration: float, solver=solver, state=state) -> None:
            state[0] = solver.run(state[0], t_end=state[0].time + duration)

        advance[f"WALE LES, nu_t every {update} (compiled)"] = les

    predictions = Predictions(model, first_window(), normalization=checkpoint["normalization"], grid=grid, dt=checkpoint["dt"],
                              re_tau=checkpoint["re_tau"], compile=True)
    per_segment = max(1, round(args.segment / checkpoint["dt"]))
    stream = predictions.run(10**9)

    def rollout(_duration: float) -> None:  # called with the segment only: per_segment predictions
        for _ in range(per_segment):
            next(stream)

    advance[f"{args.model} rollout (compiled, no output)"] = rollout
    seconds = {label: [] for label in advance}
    with torch.no_grad():
        for label, run in advance.items():  # warm-up: compiles
            run(args.segment)
        for _ in range(args.rounds):
            for label, run in advance.items():
                start = time.perf_counter()
                run(args.segment)
                seconds[label].append(time.perf_counter() - start)
    model_label = list(advance)[-1]
    model_best = min(seconds[model_label]) / args.segment
    print(f"({per_segment} predictions of dt = {checkpoint['dt']:g} per segment)")
    print("| run | least s per h/u_tau | median s per h/u_tau | least over the rollout's |\n| --- | ---: | ---: | ---: |")
    for label, samples in seconds.items():
        best, median = min(samples) / args.segment, statistics.median(samples) / args.segment
        print(f"| {label} | {best:.4f} | {median:.4f} | {best / model_best:.2f}x |")


if __name__ == "__main__":
    main()
