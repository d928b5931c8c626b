"""Compare the Re_tau = 180 LES runs (and, if given, the DNS) with Moser, Kim & Mansour (1999).

Run the cases, then this script::

    for m in nomodel smagorinsky wale dynamic; do surrogate les cases/les_re180_$m.yaml; done
    python validation/les_re180.py runs/les_re180_{nomodel,smagorinsky,wale,dynamic} --dns runs/dns_re180

It prints one row per run (Re_tau reached, largest deviations from MKM, time steps per unit of
simulated time h/u_tau, which with the per-step cost of ``benchmarks/bench_les.py`` gives the
cost of a run independent of what else the machine was doing) and writes ``validation/les_re180/profiles.png`` and
``validation/les_re180/summary.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import yaml

from surrogate.fields import open_fields
from surrogate.report import plot_profiles_vs_reference
from surrogate.evaluation import compare_with_mkm

HERE = Path(__file__).resolve().parent


def _steps_per_time_unit(folder: Path, t_start: float) -> float:
    """Time steps per h/u_tau over the statistically steady window, from the run's diagnostics."""
    with open(folder / "diagnostics.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if float(row["time"]) >= t_start]
    first, last = rows[0], rows[-1]
    return (int(last["step"]) - int(first["step"])) / (float(last["time"]) - float(first["time"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders of the LES cases")
    parser.add_argument("--dns", type=Path, help="run folder of the DNS, drawn and listed too")
    parser.add_argument("--out", type=Path, default=HERE / "les_re180")
    args = parser.parse_args()

    folders = list(args.runs) + ([args.dns] if args.dns else [])
    profiles, summary, reference = {}, {}, None
    for folder in folders:
        case = yaml.safe_load((folder / "case.yaml").read_text())
        model = (case.get("sgs") or {}).get("model", "DNS")
        label = f"{model} {case['grid']['nx']}x{case['grid']['ny']}x{case['grid']['nz']}"
        run_profiles, reference, deviation = compare_with_mkm(
            open_fields(folder / "fields.nc"), t_start=case["run"]["stats_start"]
        )
        profiles[label] = run_profiles
        summary[label] = {**deviation, "steps_per_time_unit": _steps_per_time_unit(folder, case["run"]["stats_start"])}
    args.out.mkdir(parents=True, exist_ok=True)
    plot_profiles_vs_reference(profiles, reference, args.out / "profiles.png", title="Turbulent channel, Re_tau = 180")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    header = f"{'run':<28} {'Re_tau':>7} {'max|dU+|':>9} {'max|du_rms+|':>13} {'max|dv_rms+|':>13} {'max|dw_rms+|':>13} {'steps per h/u_tau':>18}"
    print(header)
    for label, row in summary.items():
        print(
            f"{label:<28} {row['re_tau']:7.1f} {row['U']:9.2f} {row['u_rms']:13.3f} {row['v_rms']:13.3f} "
            f"{row['w_rms']:13.3f} {row['steps_per_time_unit']:18.1f}"
        )


if __name__ == "__main__":
    main()
