"""LES runs from a developed field against the filtered DNS: the test trajectory's (fdns180) and the training one's.

Each run's statistics over ``time >= --t-start`` in its own wall units against two references: the
shipped ``fdns180`` (every fifth snapshot of the test trajectory of
``validation/data/dataset_re180``), on which results are reported, and the whole training
trajectory, on which closure variants are compared and chosen (the test trajectory is not used
to choose). Prints one markdown table per reference.

    python validation/les_learned_re180.py runs/les_dev/les_re180_dev_{none,wale,mean_field} --t-start 110

Runs of one closure from several starts, named ``NAME_t<start>``, are summarised with
``--spread``: one row per ``NAME``, each figure as the mean over its runs and their range, the
statistics of each run from ``--after`` h/u_tau past its own first snapshot:

    python validation/les_learned_re180.py runs/les_spread/* --after 50 --spread
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from surrogate.evaluation import load_reference, open_run, run_statistics
from surrogate.evaluation.metrics import run_metrics

HERE = Path(__file__).resolve().parent
TRAINING = HERE / "data" / "dataset_re180" / "trajectory_000.nc"
COLUMNS = ("re_tau", "U_max_abs", "U_l2", "u_rms_l2", "v_rms_l2", "w_rms_l2", "uv_l2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="LES run folders")
    window = parser.add_mutually_exclusive_group(required=True)
    window.add_argument("--t-start", type=float, help="start of the statistics window, h/u_tau")
    window.add_argument("--after", type=float, help="statistics from this many h/u_tau past each run's first snapshot")
    parser.add_argument("--spread", action="store_true", help="one row per run name less its _t<start>: mean (min-max)")
    args = parser.parse_args()
    references = {"fdns180 (test trajectory)": load_reference("fdns180"),
                  "training trajectory": run_statistics(open_run(TRAINING))}
    runs = {}
    for folder in args.runs:
        try:
            record = open_run(folder)
        except (FileNotFoundError, ValueError) as exc:  # no fields yet, or not a field file: say which
            parser.error(str(exc))
        start = args.t_start if args.after is None else float(record["time"][0]) + args.after
        runs[folder.name] = run_statistics(record, t_start=start)
    for label, reference in references.items():
        print(f"\nagainst {label}, Re_tau {float(reference.attrs['re_tau_measured']):.1f}\n")
        print("| run | " + ("runs | " if args.spread else "") + " | ".join(COLUMNS) + " |")
        print("| --- |" + " ---: |" * (len(COLUMNS) + args.spread))
        groups: dict[str, list[dict]] = {}
        for name, stats in runs.items():
            groups.setdefault(re.sub(r"_t\d+$", "", name) if args.spread else name, []).append(run_metrics(stats, reference))
        for name, metrics in groups.items():
            cells = [_cell(np.array([float(m[c]) for m in metrics]), c) for c in COLUMNS]
            print(f"| {name} | " + (f"{len(metrics)} | " if args.spread else "") + " | ".join(cells) + " |")


def _cell(values: np.ndarray, column: str) -> str:
    """One figure, or the mean and range of several."""
    form = "{:.1f}" if column == "re_tau" else "{:.3g}"
    if values.size == 1:
        return form.format(values[0])
    return f"{form.format(values.mean())} ({form.format(values.min())}-{form.format(values.max())})"


if __name__ == "__main__":
    main()
