"""Compare the Re_tau = 180 LES runs with the DNS filtered to their resolution (and with MKM).

Run from the repository root (about 15 s on one core)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python validation/les_vs_filtered_dns.py \\
        --dns /work/runs_dns/dns_re180 \\
        --coarse /work/runs_les/les_re180_{nomodel,smagorinsky,wale,dynamic} \\
        --fine /work/runs_les2/les_re180_{nomodel,smagorinsky,wale,dynamic}

It writes ``validation/les_filtered_dns/summary.json``, ``comparison.md`` (tables against the
filtered DNS and against MKM, per-model verdicts against the no-model control, and a table of the
same comparison for all four filter combinations unless ``--no-sensitivity``) and ``profiles.png``.

What is compared
    For each set of LES runs sharing one grid (``--coarse``, ``--fine``) the DNS window
    (``time >= --dns-t-start``, default the DNS case's ``run.stats_start``) is filtered with
    :func:`surrogate.filtering.filter_to_grid` to a grid on the DNS box with the LES cell sizes:
    ``nx = lx_DNS / dx_LES``, ``nz = lz_DNS / dz_LES`` (must be whole numbers), and the LES's
    ``ny`` and stretching. For the 32 x 33 x 16 LES on 4 pi x 2 x 4 pi/3 this is 16 x 33 x 12 on
    2 pi x 2 x pi; for the 32 x 33 x 32 LES on 2 pi x 2 x pi it is that grid itself. The filtered
    DNS has the same Fourier cutoff in physical wavenumbers and the same cell centres in ``y`` as
    the LES. One-point statistics of the filtered field come from :func:`surrogate.stats.mean_profiles`.

Wall units
    As ``validation/les_re180.py`` (through :func:`surrogate.evaluation.compare_with_mkm`) does,
    each LES is put in its own wall units: velocities divided by its measured friction velocity
    (:func:`surrogate.stats.friction_velocity`, second-order wall gradient of the mean profile over
    the statistics window) and ``y+ = y u_tau / nu``. The filtered DNS is put in the wall units of
    the (unfiltered) DNS's own friction velocity, because filtering does not change the physical
    wall shear and the wall gradient of a filtered profile on a coarse grid is a biased estimate of it. The
    filtered DNS's gradient-based Re_tau is reported for information only.

Deviations
    :func:`surrogate.evaluation.profile_deviation` (largest absolute deviation, the reference
    interpolated linearly in ``y+`` onto the run's points), plus the relative L2 deviation of
    :func:`surrogate.evaluation.relative_l2`, ``sqrt(sum_j w_j (q_j - q_ref,j)^2 / sum_j w_j q_ref,j^2)``
    over the same points, weighted by the run's cell heights ``w_j`` (the centre cell counted half,
    since half of it lies in the folded half channel).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import time as timer
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from surrogate.fields import open_fields
from surrogate.filtering import filter_to_grid
from surrogate.grid import ChannelGrid
from surrogate.references import load_mkm
from surrogate.stats import mean_profiles, re_tau_measured, wall_units
from surrogate.evaluation import (
    DEVIATION_VARIABLES,
    compare_with_mkm,
    profile_deviation,
    relative_l2,
    run_statistics,
)

HERE = Path(__file__).resolve().parent
MODEL_NAMES = {
    "none": "no model (control)",
    "smagorinsky": "Smagorinsky",
    "wale": "WALE",
    "dynamic_smagorinsky": "dynamic Smagorinsky",
}
MODEL_COLOURS = {"none": "C0", "smagorinsky": "C1", "wale": "C2", "dynamic_smagorinsky": "C3"}
STRESS_NAMES = {"u_rms": "u_rms+", "v_rms": "v_rms+", "w_rms": "w_rms+", "uv": "uv+"}
#: Relative tolerance for the LES cell sizes to tile the DNS box a whole number of times.
WHOLE_TOLERANCE = 1e-9


# ---------------------------------------------------------------------------------- helpers
def equivalent_grid(les: ChannelGrid, dns: ChannelGrid) -> ChannelGrid:
    """The grid on the DNS box with the LES's cell sizes, ``ny`` and stretching."""
    sizes = []
    for length, cell, name in ((dns.lx, les.dx, "x"), (dns.lz, les.dz, "z")):
        count = length / cell
        if abs(count - round(count)) > WHOLE_TOLERANCE * count:
            raise ValueError(
                f"the LES cell size d{name} = {cell:.6g} h does not divide the DNS box l{name} = {length:.6g} h "
                f"({count:.6g} cells); no grid on the DNS box has the LES resolution"
            )
        sizes.append(int(round(count)))
    return ChannelGrid(sizes[0], les.ny, sizes[1], lx=dns.lx, lz=dns.lz, stretching=les.stretching)


def l2_deviations(profile_plus: xr.Dataset, reference: xr.Dataset) -> dict[str, float]:
    """:func:`surrogate.evaluation.relative_l2` with the keys ``U_l2``, ``u_rms_l2``, ...."""
    l2 = relative_l2(profile_plus, reference)
    return {f"{name}_l2": l2[name] for name in DEVIATION_VARIABLES if name in l2}


def deviations(profile_plus: xr.Dataset, reference: xr.Dataset) -> dict[str, float]:
    """``profile_deviation`` plus the relative L2 deviations."""
    return {**profile_deviation(profile_plus, reference), **l2_deviations(profile_plus, reference)}


def profile_table(profile_plus: xr.Dataset) -> dict[str, list[float]]:
    """The wall-unit profiles as lists, for the JSON summary."""
    out = {"y": [float(v) for v in profile_plus["y"].values], "y_plus": [float(v) for v in profile_plus["y_plus"].values]}
    for name in DEVIATION_VARIABLES:
        out[name] = [float(v) for v in profile_plus[name].values]
    return out


def read_case(folder: Path) -> dict:
    return yaml.safe_load((folder / "case.yaml").read_text())


def grid_of(case: dict) -> ChannelGrid:
    g = case["grid"]
    return ChannelGrid(int(g["nx"]), int(g["ny"]), int(g["nz"]), lx=float(g["lx"]), lz=float(g["lz"]),
                       stretching=float(g["stretching"]))


def grid_text(grid: ChannelGrid) -> str:
    def length(value: float) -> str:
        ratio = value / math.pi
        for denominator in (1, 2, 3, 4, 6):
            numerator = ratio * denominator
            if abs(numerator - round(numerator)) < 1e-9:
                n = int(round(numerator))
                top = "pi" if n == 1 else f"{n} pi"
                return top if denominator == 1 else f"{top}/{denominator}"
        return f"{value:.4g}"

    return f"{grid.nx} x {grid.ny} x {grid.nz} on {length(grid.lx)} x 2 x {length(grid.lz)} (stretching {grid.stretching:g})"


# ---------------------------------------------------------------------------------- analysis
def analyse_dns(folder: Path, t_start: float | None) -> dict:
    """The DNS window (loaded, u, v, w only), its profiles in its own wall units, its Re_tau and MKM deviations."""
    case = read_case(folder)
    t_start = float(case["run"]["stats_start"]) if t_start is None else t_start
    ds = open_fields(folder / "fields.nc")
    window = ds[["u", "v", "w"]].sel(time=slice(t_start, None)).load()
    plus = run_statistics(window)  # in its own wall units; attrs u_tau, nu, re_tau_measured, the window
    mkm = load_mkm(plus.attrs["re_tau"])
    return {
        "folder": folder,
        "grid": grid_of(case),
        "window": window,
        "nu": plus.attrs["nu"],
        "u_tau": plus.attrs["u_tau"],
        "re_tau": plus.attrs["re_tau_measured"],
        "plus": plus,
        "mkm": mkm,
        "vs_mkm": deviations(plus, mkm),
        "t_start": plus.attrs["t_start"],
        "t_end": plus.attrs["t_end"],
        "n_snapshots": plus.attrs["n_snapshots"],
    }


def analyse_set(name: str, folders: list[Path], dns: dict, horizontal: str, wall_normal: str) -> dict:
    """Filter the DNS to the set's resolution and compare each LES with it and with MKM."""
    cases = [read_case(folder) for folder in folders]
    grids = {grid_of(case) for case in cases}
    if len(grids) != 1:
        raise ValueError(f"the runs of the {name} set are on different grids: {sorted(map(grid_text, grids))}")
    les_grid = grids.pop()
    target = equivalent_grid(les_grid, dns["grid"])
    started = timer.perf_counter()
    filtered = filter_to_grid(dns["window"], target, horizontal=horizontal, wall_normal=wall_normal)
    filter_seconds = timer.perf_counter() - started
    mkm = dns["mkm"]
    f_plus = wall_units(mean_profiles(filtered), dns["u_tau"], dns["nu"])
    fdns = {
        "grid": grid_text(target),
        "description": filtered.attrs["filter_description"],
        "re_tau_dns": dns["re_tau"],
        "re_tau_gradient_info_only": re_tau_measured(filtered),
        "vs_mkm": deviations(f_plus, mkm),
        "filter_seconds": filter_seconds,
    }
    runs, plots = {}, {}
    for folder, case in zip(folders, cases):
        model = (case.get("sgs") or {}).get("model", "none")
        t_start = float(case["run"]["stats_start"])
        ds = open_fields(folder / "fields.nc")
        les_plus, _, vs_mkm = compare_with_mkm(ds, t_start=t_start)
        re_tau = vs_mkm["re_tau"]  # measured over the window, as re_tau_measured
        vs_mkm.update(l2_deviations(les_plus, mkm))
        vs_fdns = deviations(les_plus, f_plus)
        vs_fdns["re_tau_minus_dns"] = re_tau - dns["re_tau"]
        same_y = np.allclose(les_plus["y"].values, f_plus["y"].values, rtol=0.0, atol=1e-12)
        if same_y:  # outer units (nominal u_tau), same cell centres: no rescaling, no interpolation
            u_les = np.asarray(les_plus["U"].values) * les_plus.attrs["u_tau"]
            u_dns = np.asarray(f_plus["U"].values) * f_plus.attrs["u_tau"]
            vs_fdns["U_nominal_units_same_y"] = float(np.max(np.abs(u_les - u_dns)))
        runs[folder.name] = {
            "folder": str(folder),
            "model": model,
            "label": MODEL_NAMES.get(model, model),
            "sgs_parameters": (case.get("sgs") or {}).get("parameters", {}),
            "t_start": vs_mkm["t_start"],
            "t_end": vs_mkm["t_end"],
            "n_snapshots": vs_mkm["n_snapshots"],
            "re_tau": re_tau,
            "vs_filtered_dns": vs_fdns,
            "vs_mkm": vs_mkm,
            "profiles_plus": profile_table(les_plus),
        }
        plots[folder.name] = (model, les_plus)
    fdns["profiles_plus"] = profile_table(f_plus)
    return {
        "les_grid": grid_text(les_grid),
        "filter_grid": grid_text(target),
        "filtered_dns": fdns,
        "runs": runs,
        "_plots": plots,
        "_fdns_plus": f_plus,
        "_target": target,
    }


def filter_sensitivity(dns: dict, result: dict) -> list[dict]:
    """The filtered-DNS peaks and each run's deviations for all four filter combinations."""
    rows = []
    for horizontal in ("box", "spectral"):
        for wall_normal in ("average", "interpolate"):
            filtered = filter_to_grid(dns["window"], result["_target"], horizontal=horizontal, wall_normal=wall_normal)
            f_plus = wall_units(mean_profiles(filtered), dns["u_tau"], dns["nu"])
            peaks = {name: float(np.max(np.abs(f_plus[name].values))) for name in ("u_rms", "v_rms", "w_rms", "uv")}
            runs = {}
            for key, (model, les_plus) in result["_plots"].items():
                d = profile_deviation(les_plus, f_plus)
                runs[key] = {name: d[name] for name in DEVIATION_VARIABLES}
            control = next((runs[k] for k, (m, _) in result["_plots"].items() if m == "none"), None)
            beats_u = ({k: runs[k]["U"] < control["U"] for k, (m, _) in result["_plots"].items() if m != "none"}
                       if control else {})
            rows.append({
                "horizontal": horizontal,
                "wall_normal": wall_normal,
                "filtered_dns_peaks": peaks,
                "re_tau_gradient_info_only": re_tau_measured(filtered),
                "runs": runs,
                "beats_control_U_max": beats_u,
            })
    return rows


def verdicts(result: dict) -> dict[str, dict]:
    """Per model: does it beat the no-model control against the filtered DNS on U+ and Re_tau?"""
    control = next((row for row in result["runs"].values() if row["model"] == "none"), None)
    if control is None:
        return {}
    c = control["vs_filtered_dns"]
    out = {}
    for key, row in result["runs"].items():
        if row["model"] == "none":
            continue
        d = row["vs_filtered_dns"]
        out[key] = {
            "U_max": d["U"] < c["U"],
            "U_l2": d["U_l2"] < c["U_l2"],
            "re_tau": abs(d["re_tau_minus_dns"]) < abs(c["re_tau_minus_dns"]),
        }
    return out


# ---------------------------------------------------------------------------------- output
def write_markdown(path: Path, args: argparse.Namespace, dns: dict, results: dict[str, dict], command: str) -> None:
    lines = [
        "# Re_tau = 180 LES against the filtered DNS",
        "",
        f"Written by `validation/les_vs_filtered_dns.py` on {datetime.date.today().isoformat()}:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"DNS: `{dns['folder']}`, {grid_text(dns['grid'])}, statistics over t = {dns['t_start']:g} .. "
        f"{dns['t_end']:g} h/u_tau ({dns['n_snapshots']} snapshots); Re_tau from its own wall shear "
        f"{dns['re_tau']:.1f} (MKM: {dns['mkm'].attrs['re_tau_measured']}).",
        f"Filter: `horizontal=\"{args.horizontal}\"`, `wall_normal=\"{args.wall_normal}\"` "
        "(`surrogate.filtering.filter_to_grid`).",
        "",
        "**Box.** Filtering needs the DNS box (2 pi x 2 x pi). The coarse LES box is 4 pi x 2 x 4 pi/3, "
        "but its cells (dx = pi/8, dz = pi/12 h) are those of a 16 x 33 x 12 grid on 2 pi x 2 x pi, so "
        "the DNS filtered to that grid has the LES's cut-off wavenumbers (k_x < 8, k_z < 12 per h) and "
        "the LES's cell centres in y. The fine LES is on the DNS box and the DNS is filtered to its own grid. "
        "One-point statistics (mean and rms profiles) of channel flow at Re_tau = 180 do not depend on the "
        "box once it is as large as 2 pi x pi (cf. Lozano-Duran & Jimenez 2014, Phys. Fluids 26, 011702), so "
        "profiles of a 4 pi x 4 pi/3 run and of a 2 pi x pi run can be compared at the same y; both sets of "
        "profiles lie on the same cell centres y_j.",
        "",
        "**Wall units.** As in `validation/les_re180.py` (`compare_with_mkm`), each LES is scaled by its own "
        "measured friction velocity (second-order wall gradient of its mean profile), so its Re_tau is "
        "`re_tau_measured` of its window and y+ = y Re_tau. The filtered DNS is scaled by the unfiltered "
        "DNS's friction velocity (Re_tau = "
        f"{dns['re_tau']:.1f}): filtering does not change the physical wall shear, while the wall gradient of a "
        "filtered mean profile on a coarse grid is a biased estimate of it. The Re_tau column 'against filtered DNS' is "
        "therefore the LES's Re_tau minus the DNS's own; the filtered profiles' gradient-based Re_tau is "
        "listed for information only. Deviations: max = largest |difference| over the run's points "
        "(`profile_deviation`, reference interpolated in y+), L2 = relative L2 norm weighted by cell height. "
        "The rms values of the LES and of the filtered DNS are both resolved-scale rms (no subgrid part).",
        "",
    ]
    for set_name, result in results.items():
        fd = result["filtered_dns"]
        lines += [
            f"## {set_name} set: LES {result['les_grid']}",
            "",
            f"Filtered DNS: {result['filter_grid']}. {fd['description']} "
            f"Its gradient-based Re_tau (information only): {fd['re_tau_gradient_info_only']:.1f}; "
            f"the DNS's own: {fd['re_tau_dns']:.1f}.",
            "",
            "### Against the filtered DNS",
            "",
            "| run | window (h/u_tau) | Re_tau | Re_tau - Re_tau,DNS | max abs(dU+) | L2 U+ | max abs(du_rms+) | "
            "max abs(dv_rms+) | max abs(dw_rms+) | max abs(d uv+) | max abs(dU) same y, nominal u_tau |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in result["runs"].values():
            d = row["vs_filtered_dns"]
            same_y = d.get("U_nominal_units_same_y")
            lines.append(
                f"| {row['label']} | {row['t_start']:g} .. {row['t_end']:g} | {row['re_tau']:.1f} | "
                f"{d['re_tau_minus_dns']:+.1f} | {d['U']:.2f} | {100 * d['U_l2']:.1f} % | {d['u_rms']:.3f} | "
                f"{d['v_rms']:.3f} | {d['w_rms']:.3f} | {d['uv']:.3f} | "
                + (f"{same_y:.2f} |" if same_y is not None else "- |")
            )
        lines += [
            "",
            "### Against MKM (as the existing records)",
            "",
            "| run | Re_tau | max abs(dU+) | L2 U+ | max abs(du_rms+) | max abs(dv_rms+) | max abs(dw_rms+) | "
            "max abs(d uv+) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        rows = [(row["label"], row["re_tau"], row["vs_mkm"]) for row in result["runs"].values()]
        rows.append((f"filtered DNS {result['filter_grid'].split(' on ')[0]} (DNS wall units)", fd["re_tau_dns"], fd["vs_mkm"]))
        rows.append((f"DNS {dns['grid'].nx} x {dns['grid'].ny} x {dns['grid'].nz}, unfiltered", dns["re_tau"], dns["vs_mkm"]))
        for label, re_tau, d in rows:
            lines.append(
                f"| {label} | {re_tau:.1f} | {d['U']:.2f} | {100 * d['U_l2']:.1f} % | {d['u_rms']:.3f} | "
                f"{d['v_rms']:.3f} | {d['w_rms']:.3f} | {d['uv']:.3f} |"
            )
        lines += ["", "### Subgrid models against the no-model control (reference: filtered DNS)", ""]
        control = next((row for row in result["runs"].values() if row["model"] == "none"), None)
        for key, verdict in verdicts(result).items():
            row, c = result["runs"][key], control
            d, cd = row["vs_filtered_dns"], c["vs_filtered_dns"]
            u_word = "beats" if verdict["U_max"] else "does not beat"
            l2_note = (
                f"L2 {100 * d['U_l2']:.1f} % vs {100 * cd['U_l2']:.1f} %"
                + ("" if verdict["U_l2"] == verdict["U_max"] else ", which ranks them the other way")
            )
            r_word = "beats" if verdict["re_tau"] else "does not beat"
            laminar = max(row["profiles_plus"]["v_rms"]) < 0.1 * max(result["filtered_dns"]["profiles_plus"]["v_rms"])
            better = [STRESS_NAMES[name] for name in STRESS_NAMES if d[name] < cd[name]]
            lines.append(
                f"- **{row['label']}**"
                + (" (laminar: v_rms+ and w_rms+ ~ 0, so its small rms and uv 'deviations' are no success)" if laminar else "")
                + f": U+ {u_word} the control (max abs(dU+) {d['U']:.2f} vs {cd['U']:.2f}; "
                f"{l2_note}); Re_tau {r_word} it ({row['re_tau']:.1f} vs {c['re_tau']:.1f}, i.e. "
                f"{d['re_tau_minus_dns']:+.1f} vs {cd['re_tau_minus_dns']:+.1f} from the DNS's {dns['re_tau']:.1f}). "
                f"Smaller max deviation than the control in: {', '.join(better) if better else 'none of the rms and uv profiles'}."
            )
        lines.append("")
        if result.get("sensitivity"):
            keys = [k for k in result["runs"]]
            lines += [
                "### Sensitivity to the filter (max abs(dU+) of each run against the filtered DNS)",
                "",
                "| horizontal | wall-normal | peak u_rms+ | peak v_rms+ | peak w_rms+ | peak -uv+ | gradient Re_tau | "
                + " | ".join(result["runs"][k]["label"] for k in keys) + " | models beating the control on max abs(dU+) |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in keys) + " | --- |",
            ]
            for srow in result["sensitivity"]:
                p = srow["filtered_dns_peaks"]
                winners = [result["runs"][k]["label"] for k, v in srow["beats_control_U_max"].items() if v]
                lines.append(
                    f"| {srow['horizontal']} | {srow['wall_normal']} | {p['u_rms']:.3f} | {p['v_rms']:.3f} | "
                    f"{p['w_rms']:.3f} | {p['uv']:.3f} | {srow['re_tau_gradient_info_only']:.1f} | "
                    + " | ".join(f"{srow['runs'][k]['U']:.2f}" for k in keys)
                    + f" | {', '.join(winners) if winners else 'none'} |"
                )
            dp = {name: float(np.max(np.abs(dns['plus'][name].values))) for name in ("u_rms", "v_rms", "w_rms", "uv")}
            lines += [
                "",
                f"(Unfiltered DNS peaks: u_rms+ {dp['u_rms']:.3f}, v_rms+ {dp['v_rms']:.3f}, w_rms+ {dp['w_rms']:.3f}, "
                f"-uv+ {dp['uv']:.3f}. The filter leaves U+ nearly unchanged and lowers the resolved rms and uv.)",
                "",
            ]
    lines += ["![LES against filtered DNS and MKM](profiles.png)", ""]
    path.write_text("\n".join(lines))


def plot(path: Path, dns: dict, results: dict[str, dict]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = (("U", r"$U^+$"), ("u_rms", r"$u'^+_{rms}$"), ("v_rms", r"$v'^+_{rms}$"),
              ("w_rms", r"$w'^+_{rms}$"), ("uv", r"$-\overline{u'v'}^+$"))
    fig = Figure(figsize=(22.0, 4.6 * len(results)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(len(results), len(panels), squeeze=False))
    mkm = dns["mkm"]

    def draw(ax_row, ds: xr.Dataset, label: str, **style) -> None:
        y_plus = np.asarray(ds["y_plus"].values, dtype=float)
        keep = y_plus > 0
        for ax, (name, _) in zip(ax_row, panels):
            values = np.asarray(ds[name].values, dtype=float)
            ax.plot(y_plus[keep], (-values if name == "uv" else values)[keep], label=label, **style)

    for row, (set_name, result) in zip(axes, results.items()):
        draw(row, mkm, f"MKM (Re_tau = {mkm.attrs['re_tau_measured']})", color="black", ls="--", lw=1.4)
        draw(row, dns["plus"], f"DNS {dns['grid'].nx}x{dns['grid'].ny}x{dns['grid'].nz} unfiltered "
             f"(Re_tau = {dns['re_tau']:.1f})", color="0.6", ls=":", lw=1.4)
        draw(row, result["_fdns_plus"], f"filtered DNS {result['filter_grid'].split(' on ')[0]}",
             color="black", ls="-", lw=2.0, marker=".", ms=4)
        for key, (model, les_plus) in result["_plots"].items():
            info = result["runs"][key]
            draw(row, les_plus, f"{info['label']} (Re_tau = {info['re_tau']:.1f})",
                 color=MODEL_COLOURS.get(model, None), lw=1.3, marker=".", ms=3)
        for ax, (name, ylabel) in zip(row, panels):
            ax.set_xlabel(r"$y^+$")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            if name == "U":
                ax.set_xscale("log")
            else:
                ax.set_xlim(0.0, 200.0)
        row[0].set_title(f"{set_name}: LES {result['les_grid']}", loc="left", fontsize="medium")
        row[0].legend(fontsize="x-small", loc="upper left")
    fig.suptitle("Re_tau = 180: LES (own wall units) against the DNS filtered to the LES resolution "
                 "(DNS wall units) and MKM")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, ChannelGrid):
        return grid_text(value)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dns", type=Path, required=True, help="run folder of the DNS (case.yaml, fields.nc)")
    parser.add_argument("--dns-t-start", type=float, default=None,
                        help="start of the DNS statistics window in h/u_tau (default: the DNS case's run.stats_start)")
    parser.add_argument("--coarse", type=Path, nargs="+", default=[], help="LES run folders of the coarse set (one grid)")
    parser.add_argument("--fine", type=Path, nargs="+", default=[], help="LES run folders of the fine set (one grid)")
    parser.add_argument("--horizontal", choices=("box", "spectral"), default="box", help="filter in x and z")
    parser.add_argument("--wall-normal", choices=("average", "interpolate"), default="average", help="filter in y")
    parser.add_argument("--no-sensitivity", action="store_true",
                        help="skip the table of results for all four filter combinations")
    parser.add_argument("--out", type=Path, default=HERE / "les_filtered_dns", help="output folder")
    args = parser.parse_args()
    sets = {name: folders for name, folders in (("coarse", args.coarse), ("fine", args.fine)) if folders}
    if not sets:
        parser.error("give the LES run folders of at least one set (--coarse, --fine)")

    started = timer.perf_counter()
    dns = analyse_dns(args.dns, args.dns_t_start)
    results = {name: analyse_set(name, folders, dns, args.horizontal, args.wall_normal) for name, folders in sets.items()}
    if not args.no_sensitivity:
        for result in results.values():
            result["sensitivity"] = filter_sensitivity(dns, result)
    command = "OMP_NUM_THREADS=1 PYTHONPATH=. python validation/les_vs_filtered_dns.py --dns " + str(args.dns)
    for name, folders in sets.items():
        command += f" \\\n    --{name} " + " ".join(str(f) for f in folders)
    if args.horizontal != "box" or args.wall_normal != "average":
        command += f" \\\n    --horizontal {args.horizontal} --wall-normal {args.wall_normal}"

    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "command": command,
        "filter": {"horizontal": args.horizontal, "wall_normal": args.wall_normal},
        "wall_units": "each LES in its own measured u_tau (friction_velocity, order 2, over its window); "
                      "filtered DNS in the unfiltered DNS's measured u_tau",
        "dns": {
            "folder": dns["folder"], "grid": dns["grid"], "t_start": dns["t_start"], "t_end": dns["t_end"],
            "n_snapshots": dns["n_snapshots"], "re_tau": dns["re_tau"], "vs_mkm": dns["vs_mkm"],
            "profiles_plus": profile_table(dns["plus"]),
        },
        "mkm_re_tau": dns["mkm"].attrs["re_tau_measured"],
        "sets": {name: {**result, "beats_control_vs_filtered_dns": verdicts(result)} for name, result in results.items()},
        "elapsed_seconds": timer.perf_counter() - started,
    }
    (args.out / "summary.json").write_text(json.dumps(jsonable(summary), indent=2) + "\n")
    write_markdown(args.out / "comparison.md", args, dns, results, command)
    plot(args.out / "profiles.png", dns, results)

    print(f"DNS Re_tau = {dns['re_tau']:.2f} over t = {dns['t_start']:g} .. {dns['t_end']:g} ({dns['n_snapshots']} snapshots)")
    for name, result in results.items():
        fd = result["filtered_dns"]
        print(f"\n{name}: LES {result['les_grid']}; filtered DNS {result['filter_grid']} "
              f"(gradient Re_tau {fd['re_tau_gradient_info_only']:.1f}, filtering {fd['filter_seconds']:.1f} s)")
        print(f"{'run':<22} {'Re_tau':>7} {'dRe':>6} {'dU+':>6} {'L2U+':>6} {'du':>6} {'dv':>6} {'dw':>6} {'duv':>6}"
              f" | MKM: {'dU+':>6} {'L2U+':>6} {'du':>6} {'dv':>6} {'dw':>6} {'duv':>6}")
        for row in result["runs"].values():
            d, m = row["vs_filtered_dns"], row["vs_mkm"]
            print(f"{row['label']:<22} {row['re_tau']:7.1f} {d['re_tau_minus_dns']:+6.1f} {d['U']:6.2f} {d['U_l2']:6.3f} "
                  f"{d['u_rms']:6.3f} {d['v_rms']:6.3f} {d['w_rms']:6.3f} {d['uv']:6.3f} | MKM: {m['U']:6.2f} "
                  f"{m['U_l2']:6.3f} {m['u_rms']:6.3f} {m['v_rms']:6.3f} {m['w_rms']:6.3f} {m['uv']:6.3f}")
        m = fd["vs_mkm"]
        print(f"{'filtered DNS':<22} {fd['re_tau_dns']:7.1f} {'':>6} {'':>6} {'':>6} {'':>6} {'':>6} {'':>6} {'':>6}"
              f" | MKM: {m['U']:6.2f} {m['U_l2']:6.3f} {m['u_rms']:6.3f} {m['v_rms']:6.3f} {m['w_rms']:6.3f} {m['uv']:6.3f}")
    print(f"\nwrote {args.out}/summary.json, comparison.md, profiles.png in {timer.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
