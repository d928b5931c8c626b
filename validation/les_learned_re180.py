"""LES runs from a developed field against the filtered DNS: the test trajectory's (fdns180) and the training one's.

Each run's statistics over ``time >= --t-start`` in its own wall units against two references: the
shipped ``fdns180`` (every fifth snapshot of the test trajectory of
``validation/data/dataset_re180``), on which results are reported, and the whole training
trajectory, on which closure variants are compared and chosen (the test trajectory is not used
to choose). Prints one markdown table per reference.

    python validation/les_learned_re180.py runs/les_dev/les_re180_dev_{none,wale,mean_field} --t-start 110
"""

from __future__ import annotations

import argparse
from pathlib import Path

from surrogate.evaluation import load_reference, open_run, run_statistics
from surrogate.evaluation.metrics import run_metrics

HERE = Path(__file__).resolve().parent
TRAINING = HERE / "data" / "dataset_re180" / "trajectory_000.nc"
COLUMNS = ("re_tau", "U_max_abs", "U_l2", "u_rms_l2", "v_rms_l2", "w_rms_l2", "uv_l2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="LES run folders")
    parser.add_argument("--t-start", type=float, required=True, help="start of the statistics window, h/u_tau")
    args = parser.parse_args()
    references = {"fdns180 (test trajectory)": load_reference("fdns180"),
                  "training trajectory": run_statistics(open_run(TRAINING))}
    runs = {folder.name: run_statistics(open_run(folder), t_start=args.t_start) for folder in args.runs}
    for label, reference in references.items():
        print(f"\nagainst {label}, Re_tau {float(reference.attrs['re_tau_measured']):.1f}\n")
        print("| run | " + " | ".join(COLUMNS) + " |")
        print("| --- |" + " ---: |" * len(COLUMNS))
        for name, stats in runs.items():
            metrics = run_metrics(stats, reference)
            print(f"| {name} | " + " | ".join(f"{metrics[c]:.1f}" if c == "re_tau" else f"{metrics[c]:.3g}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
