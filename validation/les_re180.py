"""Compare the Re_tau = 180 LES runs (and, if given, the DNS) with Moser, Kim & Mansour (1999).

Run the cases, then this script::

    for m in nomodel smagorinsky wale dynamic; do surrogate les cases/les_re180_$m.yaml; done
    python validation/les_re180.py runs/les_re180_{nomodel,smagorinsky,wale,dynamic} --dns runs/dns_re180

It prints one row per run (Re_tau reached, from the mean wall gradient and from the mean driving
force, largest deviations from MKM, the largest deviation of the mean shear-stress budget
``nu dU/dy - <u'v'> + <2 nu_t S_xy>`` from the steady ``1 - y`` with and without the model's
stress, time steps per unit of simulated time h/u_tau, which with the per-step cost of
``benchmarks/bench_les.py`` gives the cost of a run independent of what else the machine was
doing) and writes ``validation/les_re180/profiles.png`` and ``validation/les_re180/summary.json``.
The model's stress is recomputed from the stored snapshots (cell-centre velocities, interpolated
back to the staggered points by the solver).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr
import yaml

from surrogate.config import load_case
from surrogate.evaluation import compare_with_mkm, time_window
from surrogate.fields import open_fields
from surrogate.report import plot_profiles_vs_reference
from surrogate.simulation import build_solver
from surrogate.solver.sgs import velocity_gradient
from surrogate.stats import total_stress
from surrogate.study import forcing_re_tau

HERE = Path(__file__).resolve().parent


def _steps_per_time_unit(folder: Path, t_start: float) -> float:
    """Time steps per h/u_tau over the statistically steady window, from the run's diagnostics."""
    with open(folder / "diagnostics.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if float(row["time"]) >= t_start]
    first, last = rows[0], rows[-1]
    return (int(last["step"]) - int(first["step"])) / (float(last["time"]) - float(first["time"]))


def sgs_shear_stress(folder: Path, window: xr.Dataset) -> xr.DataArray:
    """The mean modelled SGS shear stress ``<tau_xy> = -<2 nu_t S_xy> - nu_T dU/dy`` over the window's
    snapshots (the second term for a closure with a mean-field part), ``(y,)`` in u_tau^2."""
    solver = build_solver(load_case(folder / "case.yaml", ["solver.compile=false"]))
    profile = np.zeros(window.sizes["y"])
    if solver.sgs is not None:
        for index in range(window.sizes["time"]):
            state = solver.from_dataset(window.isel(time=[index]))
            with torch.no_grad():
                nu_t = solver.eddy_viscosity(state)
                if nu_t is not None:
                    g = velocity_gradient(solver.ops, state.u, state.v, state.w)
                    profile += (-(nu_t * (g[0, 1] + g[1, 0])).mean(dim=(0, 2))).cpu().numpy()
                nu_mean = solver.mean_field_viscosity()
                if nu_mean is not None:
                    faces = -nu_mean * solver.ops.ddy_at_faces(state.u.mean(dim=(0, 2), keepdim=True))
                    profile += (0.5 * (faces[:, 1:] + faces[:, :-1])).reshape(-1).cpu().numpy()
        profile /= window.sizes["time"]
    return xr.DataArray(profile, dims=("y",), coords={"y": window["y"].values})


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
        label = f"{case['name']} {case['grid']['nx']}x{case['grid']['ny']}x{case['grid']['nz']}"
        run_profiles, reference, deviation = compare_with_mkm(
            open_fields(folder / "fields.nc"), t_start=case["run"]["stats_start"]
        )
        profiles[label] = run_profiles
        t_start = case["run"]["stats_start"]
        window = time_window(open_fields(folder / "fields.nc"), t_start).load()
        budget = {
            "stress_budget_deviation": total_stress(window, tau_sgs=sgs_shear_stress(folder, window)).attrs["max_deviation"],
            "stress_budget_deviation_without_sgs": total_stress(window).attrs["max_deviation"],
            "re_tau_forcing": forcing_re_tau(folder / "diagnostics.csv", case["physics"]["re_tau"], t_start),
        }
        summary[label] = {**deviation, **budget, "steps_per_time_unit": _steps_per_time_unit(folder, t_start)}
    args.out.mkdir(parents=True, exist_ok=True)
    plot_profiles_vs_reference(profiles, reference, args.out / "profiles.png", title="Turbulent channel, Re_tau = 180")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("| run | Re_tau | Re_tau from forcing | max abs(dU+) | max abs(du_rms+) | max abs(dv_rms+) | max abs(dw_rms+) "
          "| stress budget off by | without the SGS stress | steps per h/u_tau |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, row in summary.items():
        print(
            f"| {label} | {row['re_tau']:.1f} | {row['re_tau_forcing']:.1f} | {row['U']:.2f} | {row['u_rms']:.3f} | "
            f"{row['v_rms']:.3f} | {row['w_rms']:.3f} | {row['stress_budget_deviation']:.3f} | "
            f"{row['stress_budget_deviation_without_sgs']:.3f} | {row['steps_per_time_unit']:.1f} |"
        )


if __name__ == "__main__":
    main()
